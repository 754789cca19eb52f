/**
 * HTTP routes of watchdogs (upstream §5): policies, metadata, preview, incidents and the
 * device view with overrides. Reads need a signed-in operator (site-scoped); policy
 * writes need an Admin; incident and override actions need an operator who can see the
 * device's site. Static paths are registered before `{id}` paths.
 *
 * @module
 */
import { intParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import type { Router } from "../../core/http.ts";
import {
  Action,
  IncidentStateInput,
  MAX_RULES,
  OverrideInput,
  PolicyInput,
  ROLE_STATUSES,
  Rule,
  RULE_TYPES,
  Target,
  VERSION_OPERATORS,
} from "./schemas.ts";
import type { WatchdogService } from "./service.ts";

const ErrorBody = z.object({
  error: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
}).openapi("Error");
const err = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorBody } },
});
const json = <T extends z.ZodType>(schema: T, description = "OK") => ({
  description,
  content: { "application/json": { schema } },
});
const body = <T extends z.ZodType>(schema: T) => ({
  body: { required: true, content: { "application/json": { schema } } },
});

const PolicyView = PolicyInput.extend({
  id: z.string(),
  last_edited_by: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  last_evaluated_at: z.string().nullable(),
  targets: z.array(Target),
  criteria: z.object({ match_mode: z.enum(["all", "any"]), rules: z.array(Rule) }),
  actions: z.object({ actions: z.array(Action) }),
}).openapi("Watchdog");

const Incident = z.object({
  id: z.string(),
  watchdog_id: z.string(),
  watchdog_name: z.string(),
  device_guid: z.string(),
  hostname: z.string(),
  site_id: z.number().nullable(),
  severity: z.string(),
  state: z.enum(["open", "suppressed", "resolved"]),
  title: z.string(),
  message: z.string(),
  sample: z.unknown(),
  rule_summary: z.unknown(),
  action_summary: z.unknown(),
  opened_at: z.string(),
  updated_at: z.string(),
  last_matched_at: z.string().nullable(),
  resolved_at: z.string().nullable(),
  resolution_reason: z.string().nullable(),
  suppressed_reason: z.string().nullable(),
  acknowledged_at: z.string().nullable(),
  acknowledged_by: z.string().nullable(),
  trigger_count: z.number(),
}).openapi("WatchdogIncident");

const DeviceView = z.object({
  device_guid: z.string(),
  hostname: z.string(),
  site_id: z.number().nullable(),
  incidents: z.array(Incident),
  assignments: z.array(z.record(z.string(), z.unknown())),
  overrides: z.array(z.record(z.string(), z.unknown())),
}).openapi("DeviceWatchdogs");

const Id = z.object({ id: z.string().uuid() });
const Guid = z.object({
  guid: z.string().regex(
    /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
    "a device GUID",
  ),
});

/** The metadata route's answer: what the editor offers, with upstream defaults. */
export const metadata = {
  rule_types: RULE_TYPES,
  max_rules: MAX_RULES,
  match_modes: ["all", "any"],
  severities: ["info", "warning", "error"],
  site_modes: ["global", "specific_sites", "global_exclusions"],
  target_kinds: ["all_devices", "device", "filter"],
  action_types: ["do_nothing", "notification", "service_control", "assembly"],
  action_labels: {
    do_nothing: "Incident only",
    notification: "Notification",
    service_control: "Service control",
    assembly: "Run assembly",
  },
  role_statuses: ROLE_STATUSES,
  version_operators: VERSION_OPERATORS,
  service_actions: ["start", "stop", "restart"],
  incident_states: ["open", "suppressed", "resolved"],
  device_states: ["normal", "pending", "triggered", "suppressed", "disabled", "stale_data"],
  defaults: {
    evaluation_interval_seconds: 60,
    cooldown_seconds: 900,
    auto_resolve_after_seconds: 300,
    min_consecutive_matches: 1,
    boot_grace_seconds: 0,
    stale_after_seconds: 900,
    severity: "warning",
    device_offline: { offline_after_seconds: 300 },
    storage_usage_percent: { threshold: 90, drive_mode: "all" },
    agent_role_health: { trigger_statuses: ["unhealthy"] },
    software_presence_or_version: { require_present: true },
  },
};

/** Registers every watchdogs route. */
export function registerRoutes(http: Router, svc: WatchdogService, audit: Auditor): void {
  const user = requireRole("User");
  const admin = requireRole("Admin");

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/watchdogs",
      summary: "List watchdog policies (site-scoped)",
      middleware: [user] as const,
      request: {
        query: z.object({
          archived: z.enum(["true", "false", "1", "0"]).optional(),
        }),
      },
      responses: { 200: json(z.object({ items: z.array(PolicyView), count: z.number() })) },
    }),
    async (c) => {
      const p = await principalOf(c);
      const a = c.req.valid("query").archived;
      const items = await svc.list(p, a === "true" || a === "1");
      return c.json({ items, count: items.length }, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/watchdogs/metadata",
      summary: "Rule types, actions, defaults and limits",
      middleware: [user] as const,
      responses: { 200: json(z.record(z.string(), z.unknown())) },
    }),
    (c) => c.json(metadata as Record<string, unknown>, 200),
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/watchdogs/preview",
      summary: "What a policy would match now (no state, no incidents)",
      middleware: [user] as const,
      request: body(PolicyInput),
      responses: {
        200: json(z.object({
          device_count: z.number(),
          matched_count: z.number(),
          devices: z.array(z.record(z.string(), z.unknown())),
        })),
        400: err("Invalid policy"),
      },
    }),
    async (c) => c.json(await svc.preview(await principalOf(c), c.req.valid("json")), 200),
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/watchdogs",
      summary: "Create a watchdog policy (evaluated at once)",
      middleware: [admin] as const,
      request: body(PolicyInput),
      responses: {
        201: json(PolicyView, "Created"),
        400: err("Invalid policy"),
        409: err("Name taken"),
      },
    }),
    async (c) => {
      const w = await svc.create(await principalOf(c), c.req.valid("json"));
      await audit(c, {
        action: "watchdog.create",
        target: `watchdog:${w.id}`,
        details: { name: w.name },
      });
      return c.json(w, 201);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/watchdogs/incidents",
      summary: "Incidents by state, with counts (site-scoped)",
      middleware: [user] as const,
      request: {
        query: z.object({
          state: z.enum(["open", "suppressed", "resolved", "all"]).default("open"),
          watchdog_id: z.string().uuid().optional(),
          device_guid: Guid.shape.guid.optional(),
          limit: intParam({ min: 1, max: 1000 }).default(200),
        }),
      },
      responses: {
        200: json(z.object({
          items: z.array(Incident),
          counts: z.object({ open: z.number(), suppressed: z.number(), resolved: z.number() }),
        })),
      },
    }),
    async (c) => c.json(await svc.incidents(await principalOf(c), c.req.valid("query")), 200),
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/watchdogs/incidents/{id}/acknowledge",
      summary: "Acknowledge an incident",
      middleware: [user] as const,
      request: { params: Id },
      responses: { 200: json(Incident), 404: err("No such incident"), 409: err("Resolved") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const i = await svc.acknowledge(await principalOf(c), id);
      await audit(c, { action: "watchdog.incident.acknowledge", target: `incident:${id}` });
      return c.json(i, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/watchdogs/incidents/{id}/state",
      summary: "Suppress an incident with a reason, or re-open it",
      middleware: [user] as const,
      request: { params: Id, ...body(IncidentStateInput) },
      responses: {
        200: json(Incident),
        400: err("Invalid body"),
        404: err("No such incident"),
        409: err("Resolved"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const b = c.req.valid("json");
      const i = await svc.setState(await principalOf(c), id, b.state, b.reason);
      await audit(c, {
        action: `watchdog.incident.${b.state === "open" ? "reopen" : "suppress"}`,
        target: `incident:${id}`,
        details: { reason: b.reason },
      });
      return c.json(i, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/watchdogs/{id}",
      summary: "One watchdog policy",
      middleware: [user] as const,
      request: { params: Id },
      responses: { 200: json(PolicyView), 404: err("No such watchdog") },
    }),
    async (c) => c.json(await svc.get(await principalOf(c), c.req.valid("param").id), 200),
  );

  http.openapi(
    createRoute({
      method: "put",
      path: "/api/watchdogs/{id}",
      summary: "Replace a watchdog policy (re-evaluated at once; disabling resolves its incidents)",
      middleware: [admin] as const,
      request: { params: Id, ...body(PolicyInput) },
      responses: {
        200: json(PolicyView),
        400: err("Invalid policy"),
        404: err("No such watchdog"),
        409: err("Name taken"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const w = await svc.update(await principalOf(c), id, c.req.valid("json"));
      await audit(c, {
        action: "watchdog.update",
        target: `watchdog:${id}`,
        details: { name: w.name, enabled: w.enabled, archived: w.archived },
      });
      return c.json(w, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/watchdogs/{id}/archive",
      summary: "Archive (or unarchive) a policy; archiving resolves its incidents",
      middleware: [admin] as const,
      request: {
        params: Id,
        ...body(z.object({ archived: z.boolean().default(true) }).strict()),
      },
      responses: { 200: json(PolicyView), 404: err("No such watchdog") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { archived } = c.req.valid("json");
      const w = await svc.archive(await principalOf(c), id, archived);
      await audit(c, {
        action: archived ? "watchdog.archive" : "watchdog.unarchive",
        target: `watchdog:${id}`,
      });
      return c.json(w, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "delete",
      path: "/api/watchdogs/{id}",
      summary: "Delete a policy with its states, overrides and incidents",
      middleware: [admin] as const,
      request: { params: Id },
      responses: { 204: { description: "Deleted" }, 404: err("No such watchdog") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await svc.remove(await principalOf(c), id);
      await audit(c, { action: "watchdog.delete", target: `watchdog:${id}` });
      return c.body(null, 204);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/devices/{guid}/watchdogs",
      summary: "A device's incidents, watchdog assignments and overrides",
      middleware: [user] as const,
      request: { params: Guid },
      responses: { 200: json(DeviceView), 404: err("No such device") },
    }),
    async (c) => c.json(await svc.deviceView(await principalOf(c), c.req.valid("param").guid), 200),
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/devices/{guid}/watchdogs/overrides",
      summary: "Suppress or disable a watchdog for one device (optional expiry), or clear it",
      middleware: [user] as const,
      request: { params: Guid, ...body(OverrideInput) },
      responses: {
        200: json(DeviceView),
        400: err("Invalid body"),
        404: err("No such device or watchdog"),
      },
    }),
    async (c) => {
      const { guid } = c.req.valid("param");
      const b = c.req.valid("json");
      const view = await svc.setOverride(await principalOf(c), guid, b);
      await audit(c, {
        action: "watchdog.override",
        target: `device:${guid.toUpperCase()}`,
        details: {
          watchdog_id: b.watchdog_id,
          state: b.state,
          reason: b.reason,
          expires_at: b.expires_at ?? null,
        },
      });
      return c.json(view, 200);
    },
  );
}
