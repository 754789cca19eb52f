/**
 * `/api/terminal/devices/{guid}/actions`: live device actions — a service started,
 * stopped or restarted, a process ended, the services and processes snapshot refreshed
 * now — and the device's recent actions. The answer comes from the agent (200); an agent
 * slower than BOREALIS_TERMINAL_ACTION_TIMEOUT_SECONDS gets 202 and the row completes
 * when it answers.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { intParam } from "../../core/fields.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import { notFound } from "../../core/errors.ts";
import type { Router } from "../../core/http.ts";
import { body, err, json } from "../../core/openapi.ts";
import { type InventoryService, isGuid } from "../inventory/mod.ts";
import type { DeviceActions } from "./actions.ts";
import { ActionInput } from "./schemas.ts";
import type { TerminalStore } from "./store.ts";

const Action = z.object({
  id: z.string(),
  device_guid: z.string(),
  hostname: z.string(),
  operator: z.string(),
  kind: z.enum(["service", "process_kill", "refresh"]),
  params: z.record(z.string(), z.unknown()),
  status: z.enum(["pending", "succeeded", "failed", "timed_out"]),
  result: z.record(z.string(), z.unknown()).nullable(),
  created_at: z.string(),
  finished_at: z.string().nullable(),
}).openapi("TerminalDeviceAction");

const Guid = z.object({ guid: z.string().refine(isGuid, "a device GUID") });

/** Installs the action routes. */
export function installActionRoutes(
  http: Router,
  o: { actions: DeviceActions; store: TerminalStore; inventory: InventoryService },
): void {
  const { actions, store, inventory } = o;

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/terminal/devices/{guid}/actions",
      summary: "Run a live action on a device (service control, end a process, refresh)",
      middleware: [requireRole("User")] as const,
      request: { params: Guid, ...body(ActionInput) },
      responses: {
        200: json(Action, "The agent answered (status succeeded or failed)"),
        202: json(Action, "Sent; the agent has not answered yet"),
        400: err("Bad body"),
        401: err("Not signed in"),
        403: err("Read-only token"),
        404: err("No such device"),
        409: err("The device is not active, or its agent is not connected"),
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const r = await actions.run(p, c.req.valid("param").guid, c.req.valid("json"));
      return r.done ? c.json(r.action, 200) : c.json(r.action, 202);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/terminal/devices/{guid}/actions",
      summary: "A device's recent live actions, newest first",
      middleware: [requireRole("User")] as const,
      request: {
        params: Guid,
        query: z.object({ limit: intParam({ min: 1, max: 500 }).default(50) }),
      },
      responses: {
        200: json(z.object({ actions: z.array(Action) }), "Actions"),
        401: err("Not signed in"),
        404: err("No such device"),
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const guid = c.req.valid("param").guid.toUpperCase();
      await inventory.visibleDevice(p, guid);
      return c.json({ actions: await store.listActions(guid, c.req.valid("query").limit) }, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/terminal/devices/{guid}/actions/{id}",
      summary: "One live action (poll a 202 here)",
      middleware: [requireRole("User")] as const,
      request: { params: Guid.extend({ id: z.uuid() }) },
      responses: {
        200: json(Action, "Action"),
        401: err("Not signed in"),
        404: err("No such action"),
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const { guid, id } = c.req.valid("param");
      await inventory.visibleDevice(p, guid.toUpperCase());
      const a = await store.action(id);
      if (!a || a.device_guid !== guid.toUpperCase()) throw notFound("no such action");
      const { site_id: _site, ...view } = a;
      return c.json(view, 200);
    },
  );
}
