/**
 * `/api/alerts/channels` (Admin): list, create, read, replace and delete channels, send
 * a test message (the answer reports what the remote side said), and give a generic
 * webhook a new signing secret. Secrets are write-only.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import type { Router } from "../../core/http.ts";
import { body, err, json } from "../../core/openapi.ts";
import { ChannelInput } from "./schemas.ts";
import type { AlertsService } from "./service.ts";
import { ChannelSaved, ChannelView, TestResult } from "./views.ts";

const Id = z.object({ id: z.uuid() });
const guarded = { 401: err("Not signed in"), 403: err("Admins only") };

/** Installs the channel routes. */
export function installChannelRoutes(http: Router, svc: AlertsService, audit: Auditor): void {
  const admin = requireRole("Admin");

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/alerts/channels",
      summary: "Alert channels with their delivery figures (Admin)",
      middleware: [admin] as const,
      responses: {
        200: json(z.object({ items: z.array(ChannelView) }), "Channels"),
        ...guarded,
      },
    }),
    async (c) => c.json({ items: await svc.listChannels() }, 200),
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/alerts/channels",
      summary: "Create a channel; a generic webhook's generated signing secret is answered once",
      middleware: [admin] as const,
      request: body(ChannelInput),
      responses: {
        201: json(ChannelSaved, "Created"),
        400: err("Invalid channel, or a target the SSRF rules refuse"),
        409: err("Name taken, or another channel carries operators' mail"),
        423: err("Vault locked"),
        ...guarded,
      },
    }),
    async (c) => {
      const saved = await svc.createChannel(await principalOf(c), c.req.valid("json"));
      await audit(c, {
        action: "alerts.channel.create",
        target: `alert_channel:${saved.channel.id}`,
        details: { name: saved.channel.name, kind: saved.channel.kind },
      });
      return c.json(saved, 201);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/alerts/channels/{id}",
      summary: "One channel (Admin)",
      middleware: [admin] as const,
      request: { params: Id },
      responses: { 200: json(ChannelView, "Channel"), 404: err("No such channel"), ...guarded },
    }),
    async (c) => c.json(await svc.getChannel(c.req.valid("param").id), 200),
  );

  http.openapi(
    createRoute({
      method: "put",
      path: "/api/alerts/channels/{id}",
      summary: "Replace a channel; secrets left out are kept",
      middleware: [admin] as const,
      request: { params: Id, ...body(ChannelInput) },
      responses: {
        200: json(ChannelSaved, "Replaced"),
        400: err("Invalid channel"),
        404: err("No such channel"),
        409: err("Name taken"),
        423: err("Vault locked"),
        ...guarded,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const saved = await svc.updateChannel(await principalOf(c), id, c.req.valid("json"));
      await audit(c, {
        action: "alerts.channel.update",
        target: `alert_channel:${id}`,
        details: { name: saved.channel.name, enabled: saved.channel.enabled },
      });
      return c.json(saved, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "delete",
      path: "/api/alerts/channels/{id}",
      summary: "Delete a channel with its routes' links and its delivery log",
      middleware: [admin] as const,
      request: { params: Id },
      responses: { 204: { description: "Deleted" }, 404: err("No such channel"), ...guarded },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await svc.removeChannel(id);
      await audit(c, { action: "alerts.channel.delete", target: `alert_channel:${id}` });
      return c.body(null, 204);
    },
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/alerts/channels/{id}/test",
      summary: "Send a test message now; answers what the remote side said (also when it failed)",
      middleware: [admin] as const,
      request: { params: Id },
      responses: {
        200: json(TestResult, "Sent or failed; `ok` tells"),
        400: err("No recipient"),
        404: err("No such channel"),
        409: err("Secrets missing"),
        423: err("Vault locked"),
        ...guarded,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const r = await svc.testChannel(await principalOf(c), id);
      await audit(c, {
        action: "alerts.channel.test",
        target: `alert_channel:${id}`,
        outcome: r.ok ? "success" : "failure",
        details: { status: r.status, error: r.error },
      });
      return c.json(r, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/alerts/channels/{id}/rotate_secret",
      summary: "Give a generic webhook a new signing secret (answered once; the old one stops)",
      middleware: [admin] as const,
      request: { params: Id },
      responses: {
        200: json(z.object({ signing_secret: z.string() }), "New secret"),
        400: err("Not a generic webhook"),
        404: err("No such channel"),
        423: err("Vault locked"),
        ...guarded,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const r = await svc.rotateSecret(id);
      await audit(c, { action: "alerts.channel.rotate_secret", target: `alert_channel:${id}` });
      return c.json(r, 200);
    },
  );
}
