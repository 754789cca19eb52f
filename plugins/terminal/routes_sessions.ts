/**
 * `/api/terminal/sessions`: the session history (site-scoped: who, device, when, bytes,
 * why it ended), ending a live session (its operator or an Admin), and a recorded
 * session's transcript as asciicast v2 (Admins; opened from the vault and audited).
 * Sessions themselves are opened on the operator socket (`terminal_open`).
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { intParam } from "../../core/fields.ts";
import type { Auditor } from "../../core/audit.ts";
import { canSeeSite, principalOf, requireRole } from "../../core/auth.ts";
import { forbidden, notFound } from "../../core/errors.ts";
import type { Router } from "../../core/http.ts";
import { err, json } from "../../core/openapi.ts";
import { isGuid } from "../inventory/mod.ts";
import type { Vault } from "../aegis/mod.ts";
import type { TerminalSessions } from "./sessions.ts";
import { sessionView, type TerminalStore } from "./store.ts";
import { asciicastHeader } from "./transcript.ts";

const Session = z.object({
  id: z.string(),
  device_guid: z.string(),
  hostname: z.string(),
  site_id: z.number().nullable(),
  operator: z.string(),
  reason: z.string().nullable(),
  run_as: z.enum(["system", "user"]),
  status: z.enum(["opening", "open", "detached", "closed"]),
  recorded: z.boolean(),
  mode: z.enum(["pty", "line"]).nullable(),
  shell_user: z.string().nullable(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  end_reason: z.string().nullable(),
  exit_code: z.number().nullable(),
  bytes_in: z.number(),
  bytes_out: z.number(),
}).openapi("TerminalSession");

const Id = z.object({ id: z.uuid() });
const guarded = { 401: err("Not signed in") };

/** Installs the session routes. */
export function installSessionRoutes(
  http: Router,
  o: { store: TerminalStore; sessions: TerminalSessions; vault: Vault; audit: Auditor },
): void {
  const { store, sessions, vault, audit } = o;

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/terminal/sessions",
      summary: "Terminal sessions, newest first (sites the caller may see)",
      middleware: [requireRole("User")] as const,
      request: {
        query: z.object({
          device_guid: z.string().refine(isGuid, "a device GUID").optional(),
          status: z.enum(["live", "closed"]).optional(),
          limit: intParam({ min: 1, max: 500 }).default(100),
        }),
      },
      responses: {
        200: json(z.object({ sessions: z.array(Session) }), "Sessions"),
        400: err("Bad query"),
        ...guarded,
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const q = c.req.valid("query");
      const list = await store.listSessions({
        guid: q.device_guid?.toUpperCase(),
        status: q.status,
        sites: p.sites === "all" ? null : p.sites,
        limit: q.limit,
      });
      return c.json({ sessions: list }, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/terminal/sessions/{id}",
      summary: "One terminal session",
      middleware: [requireRole("User")] as const,
      request: { params: Id },
      responses: { 200: json(Session, "Session"), 404: err("No such session"), ...guarded },
    }),
    async (c) => {
      const p = await principalOf(c);
      const row = await store.session(c.req.valid("param").id);
      if (!row || !canSeeSite(p, row.site_id)) throw notFound("no such session");
      return c.json(sessionView(row), 200);
    },
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/terminal/sessions/{id}/close",
      summary: "End a live session (its operator, or an Admin)",
      middleware: [requireRole("User")] as const,
      request: { params: Id },
      responses: {
        200: json(Session, "Ended (or already ended)"),
        403: err("Another operator's session"),
        404: err("No such session"),
        ...guarded,
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const id = c.req.valid("param").id;
      const row = await store.session(id);
      if (!row || !canSeeSite(p, row.site_id)) throw notFound("no such session");
      if (row.operator_id !== p.id && p.role !== "Admin") {
        throw forbidden("not_your_session", "only its operator or an Admin may end a session");
      }
      if (row.status !== "closed") {
        await sessions.closeAnywhere(
          id,
          p.id === row.operator_id ? "operator_closed" : "admin_closed",
        );
        await audit(c, {
          action: "terminal.session.end",
          target: `device:${row.device_guid.toUpperCase()}`,
          details: { session_id: id, hostname: row.hostname },
        });
      }
      return c.json(sessionView((await store.session(id))!), 200);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/terminal/sessions/{id}/transcript",
      summary: "A recorded session's output as asciicast v2 (Admin; opened from the vault)",
      middleware: [requireRole("Admin")] as const,
      request: { params: Id },
      responses: {
        200: {
          description: "asciicast v2: a header line, then one JSON event per line",
          content: { "application/x-asciicast": { schema: z.string() } },
        },
        404: err("No such session, or nothing recorded (or past retention)"),
        423: err("Vault locked"),
        ...guarded,
      },
    }),
    async (c) => {
      const id = c.req.valid("param").id;
      const row = await store.session(id);
      if (!row || !row.recorded) throw notFound("no transcript for this session");
      const chunks = await store.transcript(id);
      if (!chunks.length) throw notFound("no transcript for this session (or past retention)");
      const parts = [
        asciicastHeader({
          cols: row.cols,
          rows: row.rows,
          startedAt: row.started_at ?? row.created_at,
          title: `${row.hostname} — ${row.operator_name}`,
        }) + "\n",
      ];
      for (const ch of chunks) {
        if (!ch.sealed) continue; // a chunk being written right now
        parts.push(
          await vault.open(ch.sealed, {
            table: "terminal_transcripts",
            column: "sealed",
            row: ch.id,
          }),
        );
      }
      await audit(c, {
        action: "terminal.transcript.read",
        target: `device:${row.device_guid.toUpperCase()}`,
        details: { session_id: id, hostname: row.hostname },
      });
      return c.body(parts.join(""), 200, {
        "Content-Type": "application/x-asciicast; charset=utf-8",
        "Content-Disposition": `attachment; filename="session-${id}.cast"`,
        "Cache-Control": "no-store",
      });
    },
  );
}
