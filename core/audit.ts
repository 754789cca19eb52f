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

/**
 * The caller's address: the TCP peer, or behind a proxy listed in
 * `BOREALIS_TRUSTED_PROXIES` the address it forwarded (core/client_ip.ts).
 */
export function clientIp(c: Context<AppEnv>): string | null {
  return c.env?.clientIp ?? c.env?.remoteAddr?.hostname ?? null;
}
