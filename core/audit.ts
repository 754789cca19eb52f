/**
 * The audit trail: every operator mutation and every privileged action becomes an
 * `audit_log` row (who, what, target, outcome, details, UTC time) and a log line.
 * Details pass through the same redaction as log lines before they are stored.
 *
 * @module
 */
import type { Context } from "hono";
import type { Principal } from "./auth.ts";
import type { Clock } from "./clock.ts";
import type { Sql } from "./db.ts";
import type { AppEnv } from "./http.ts";
import { type Logger, redactFields } from "./log.ts";

/** Outcome of an audited action. */
export type AuditOutcome = "success" | "failure" | "denied";

/** One audit entry. */
export interface AuditEntry {
  action: string;
  target?: string;
  outcome?: AuditOutcome;
  details?: Record<string, unknown>;
}

/** Writes audit entries; `ctx.audit` in plugins. */
export interface Auditor {
  /** Records an action by the request's principal (anonymous when none). */
  (c: Context<AppEnv> | null, entry: AuditEntry & { actor?: Principal | null }): Promise<void>;
}

/** Creates the auditor bound to a database and logger. */
export function createAuditor(sql: Sql, log: Logger, clock: Clock): Auditor {
  return async function audit(c, entry) {
    const actor = entry.actor !== undefined ? entry.actor : c ? c.get("principal") ?? null : null;
    const outcome = entry.outcome ?? "success";
    const details = (redactFields(entry.details ?? {}) ?? {}) as Record<string, unknown>;
    const requestId = c?.env?.requestId ?? null;
    const ip = c ? clientIp(c) : null;
    await sql`
      insert into audit_log (at, actor_kind, actor_id, actor_name, action, target, outcome, details, request_id, ip)
      values (${new Date(clock.now())}, ${actor?.kind ?? "anonymous"}, ${actor?.id ?? null},
              ${actor?.name ?? null}, ${entry.action}, ${entry.target ?? null}, ${outcome},
              ${sql.json(details as never)}, ${requestId}, ${ip})`;
    log.info(
      `${actor ? `${actor.kind}:${actor.name}` : "anonymous"} ${entry.action}` +
        `${entry.target ? ` ${entry.target}` : ""} → ${outcome}`,
    );
  };
}

/** A stored audit entry as {@link readAudit} returns it. */
export interface AuditRow {
  id: string;
  at: Date;
  actor_kind: string;
  actor_id: string | null;
  actor_name: string | null;
  action: string;
  target: string | null;
  outcome: string;
  details: Record<string, unknown>;
  request_id: string | null;
  ip: string | null;
}

/** What {@link readAudit} selects. */
export interface AuditQuery {
  /** An actor's name or id. */
  actor?: string;
  /** An exact action, or a prefix ending in `*`. */
  action?: string;
  /** An exact target, or a prefix ending in `*`. */
  target?: string;
  outcome?: string;
  since?: Date;
  /** Entries before this time. */
  until?: Date;
  /** Entries with ids below this one (the page after a cursor). */
  before?: number | null;
  limit: number;
}

/**
 * Audit entries, newest first. The trail is the kernel's table, so its reader is here
 * and a plugin that shows it (the operators' `GET /api/audit`) names no table.
 */
export async function readAudit(sql: Sql, q: AuditQuery): Promise<AuditRow[]> {
  const match = (column: string, value: string | undefined) =>
    value?.endsWith("*")
      ? sql`and ${sql(column)} like ${value.slice(0, -1).replace(/[\\%_]/g, "\\$&") + "%"}`
      : value
      ? sql`and ${sql(column)} = ${value}`
      : sql``;
  return [
    ...await sql<AuditRow[]>`
      select id, at, actor_kind, actor_id, actor_name, action, target, outcome, details,
             request_id, ip
      from audit_log
      where true
        ${q.actor ? sql`and (actor_name = ${q.actor} or actor_id = ${q.actor})` : sql``}
        ${match("action", q.action)}
        ${match("target", q.target)}
        ${q.outcome ? sql`and outcome = ${q.outcome}` : sql``}
        ${q.since ? sql`and at >= ${q.since}` : sql``}
        ${q.until ? sql`and at < ${q.until}` : sql``}
        ${q.before ? sql`and id < ${q.before}` : sql``}
      order by id desc
      limit ${q.limit}`,
  ];
}

/**
 * The caller's address: the TCP peer, or behind a proxy listed in
 * `BOREALIS_TRUSTED_PROXIES` the address it forwarded (core/client_ip.ts).
 */
export function clientIp(c: Context<AppEnv>): string | null {
  return c.env?.clientIp ?? c.env?.remoteAddr?.hostname ?? null;
}
