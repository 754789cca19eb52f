/**
 * `GET /api/audit` (Admin): the audit trail, newest first, filtered by actor, action and
 * target (exact, or a prefix ending in `*`), outcome and a time range, paged with an
 * opaque cursor.
 *
 * @module
 */
import { intParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../core/auth.ts";
import { badRequest } from "../../core/errors.ts";
import type { Deps } from "./deps.ts";
import { err, guarded, json, plainText } from "./http_util.ts";

const Entry = z.object({
  id: z.number(),
  at: z.string(),
  actor_kind: z.string(),
  actor_id: z.string().nullable(),
  actor_name: z.string().nullable(),
  action: z.string(),
  target: z.string().nullable(),
  outcome: z.string(),
  details: z.record(z.string(), z.unknown()),
  request_id: z.string().nullable(),
  ip: z.string().nullable(),
}).openapi("AuditEntry");

const auditRoute = createRoute({
  method: "get",
  path: "/api/audit",
  summary: "Audit trail, newest first (Admin)",
  middleware: [requireRole("Admin")] as const,
  request: {
    query: z.object({
      actor: plainText(200).optional(),
      action: plainText(200).optional(),
      target: plainText(300).optional().describe("exact, or a prefix ending in *"),
      outcome: z.enum(["success", "failure", "denied"]).optional(),
      since: z.iso.datetime({ offset: true }).optional(),
      until: z.iso.datetime({ offset: true }).optional().describe("entries before this time"),
      limit: intParam({ min: 1, max: 1000 }).default(100),
      cursor: z.string().max(40).regex(/^[A-Za-z0-9_-]+$/).optional(),
    }),
  },
  responses: {
    200: json(z.object({ entries: z.array(Entry), next_cursor: z.string().nullable() }), "Entries"),
    400: err("Bad query"),
    ...guarded,
  },
});

const encodeCursor = (id: number) => btoa(String(id)).replaceAll("=", "");
const decodeCursor = (s: string) => {
  try {
    const n = Number(atob(s));
    if (Number.isSafeInteger(n) && n > 0) return n;
  } catch { /* fall through */ }
  throw badRequest("invalid_cursor", "the cursor is not one this API gave out");
};

/** Installs the audit query route. */
export function installAuditRoutes(deps: Deps): void {
  const { ctx } = deps;
  const sql = ctx.sql;
  ctx.http.openapi(auditRoute, async (c) => {
    const q = c.req.valid("query");
    const before = q.cursor ? decodeCursor(q.cursor) : null;
    const match = (column: string, value: string | undefined) =>
      value?.endsWith("*")
        ? sql`and ${sql(column)} like ${value.slice(0, -1).replace(/[\\%_]/g, "\\$&") + "%"}`
        : value
        ? sql`and ${sql(column)} = ${value}`
        : sql``;
    const rows = await sql<
      {
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
      }[]
    >`
      select id, at, actor_kind, actor_id, actor_name, action, target, outcome, details,
             request_id, ip
      from audit_log
      where true
        ${q.actor ? sql`and (actor_name = ${q.actor} or actor_id = ${q.actor})` : sql``}
        ${match("action", q.action)}
        ${match("target", q.target)}
        ${q.outcome ? sql`and outcome = ${q.outcome}` : sql``}
        ${q.since ? sql`and at >= ${new Date(q.since)}` : sql``}
        ${q.until ? sql`and at < ${new Date(q.until)}` : sql``}
        ${before ? sql`and id < ${before}` : sql``}
      order by id desc
      limit ${q.limit + 1}`;
    const page = rows.slice(0, q.limit);
    return c.json({
      entries: page.map((r) => ({ ...r, id: Number(r.id), at: r.at.toISOString() })),
      next_cursor: rows.length > q.limit ? encodeCursor(Number(page.at(-1)!.id)) : null,
    }, 200);
  });
}
