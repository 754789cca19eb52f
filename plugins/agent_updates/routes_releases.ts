/**
 * Agent releases: list, look for new packages on disk now, and move a release between
 * channels.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { requireRole } from "../../core/auth.ts";
import type { Router } from "../../core/http.ts";
import { body, err, json } from "../../core/openapi.ts";
import type { AgentUpdatesService } from "./service.ts";

const tags = ["agent updates"];
const Release = z.record(z.string(), z.unknown()).openapi("AgentRelease");
const Version = z.string().regex(
  /^\d{1,6}\.\d{1,6}\.\d{1,6}(?:-[0-9A-Za-z.-]{1,40})?(?:\+[0-9A-Za-z.-]{1,40})?$/,
);

const list = createRoute({
  method: "get",
  path: "/api/agent-updates/releases",
  tags,
  summary: "Agent releases the engine serves, newest first, with channel and package sizes",
  middleware: [requireRole("User")] as const,
  responses: {
    200: json(
      z.object({
        releases: z.array(Release),
        stable: z.string().nullable(),
        beta: z.string().nullable(),
      }),
      "Releases",
    ),
  },
});

const scan = createRoute({
  method: "post",
  path: "/api/agent-updates/releases/scan",
  tags,
  summary: "Register packages built by `deno task agent:package` now (also runs every minute)",
  middleware: [requireRole("Admin")] as const,
  responses: {
    200: json(z.object({ registered: z.array(z.string()) }), "Newly registered versions"),
  },
});

const channel = createRoute({
  method: "post",
  path: "/api/agent-updates/releases/{version}/channel",
  tags,
  summary: "Put a release in the stable or beta channel, or take it out (none)",
  middleware: [requireRole("Admin")] as const,
  request: {
    params: z.object({ version: Version }),
    ...body(z.object({ channel: z.enum(["stable", "beta", "none"]) }).strict()),
  },
  responses: { 200: json(Release, "Updated"), 404: err("No such release") },
});

/** Registers the release routes. */
export function registerReleaseRoutes(
  http: Router,
  svc: AgentUpdatesService,
  audit: Auditor,
): void {
  http.openapi(list, async (c) =>
    c.json({
      releases: await svc.releases(),
      stable: await svc.channelVersion("stable"),
      beta: await svc.channelVersion("beta"),
    }, 200));

  http.openapi(scan, async (c) => {
    const registered = await svc.scan();
    await audit(c, { action: "agent_release.scan", details: { registered } });
    return c.json({ registered }, 200);
  });

  http.openapi(channel, async (c) => {
    const { version } = c.req.valid("param");
    const { channel } = c.req.valid("json");
    const out = await svc.setReleaseChannel(version, channel);
    await audit(c, {
      action: "agent_release.channel",
      target: `agent_release:${version}`,
      details: { channel },
    });
    return c.json(out, 200);
  });
}
