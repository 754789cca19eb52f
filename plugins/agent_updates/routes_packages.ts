/**
 * What agents and installers download, without authentication (packages hold nothing
 * secret; their manifest is signed): the installers, the code-signing public key, and
 * each release's manifest, signature and gzip files. Plus the agent's own update routes
 * (DPoP-authenticated): `update/check` and `update/report`.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Router } from "../../core/http.ts";
import { body, err, json } from "../../core/openapi.ts";
import type { TokenService } from "../tokens/mod.ts";
import type { AgentUpdatesService } from "./service.ts";
import type { PackageStore } from "./store.ts";

const tags = ["agent"];
const Version = z.string().regex(
  /^\d{1,6}\.\d{1,6}\.\d{1,6}(?:-[0-9A-Za-z.-]{1,40})?(?:\+[0-9A-Za-z.-]{1,40})?$/,
);
const INSTALLERS = new URL("../../agent/service/files/", import.meta.url);

const installer = (name: "install.sh" | "install.ps1") =>
  createRoute({
    method: "get",
    path: `/api/agent/${name}`,
    tags,
    summary: name === "install.sh"
      ? "The Linux and macOS installer script"
      : "The Windows installer script",
    responses: {
      200: { description: "Script", content: { "text/plain": { schema: z.string() } } },
    },
  });

const signingKey = createRoute({
  method: "get",
  path: "/api/agent/code-signing-key",
  tags,
  summary: "The engine's code-signing public key (scripts and agent packages)",
  responses: {
    200: json(z.object({ sig_alg: z.literal("ed25519"), signing_key: z.string() }), "Key"),
    503: err("No code-signing key yet"),
  },
});

const meta = createRoute({
  method: "get",
  path: "/api/agent/packages/{version}/{name}",
  tags,
  summary: "A release's manifest.txt or manifest.sig",
  request: {
    params: z.object({ version: Version, name: z.enum(["manifest.txt", "manifest.sig"]) }),
  },
  responses: {
    200: { description: "File", content: { "text/plain": { schema: z.string() } } },
    404: err("No such release"),
  },
});

const file = createRoute({
  method: "get",
  path: "/api/agent/packages/{version}/{platform}/{file}",
  tags,
  summary: "One gzip-compressed file of a release's platform package",
  request: {
    params: z.object({ version: Version, platform: z.string().max(32), file: z.string().max(120) }),
  },
  responses: {
    200: { description: "gzip file", content: { "application/gzip": { schema: z.string() } } },
    404: err("No such file"),
  },
});

const check = createRoute({
  method: "post",
  path: "/api/agent/update/check",
  tags,
  summary: "The agent's version and last update outcome; answers whether to update and to what",
  request: body(z.object({
    version: z.string().min(1).max(64),
    platform: z.string().min(1).max(32),
    last_update: z.object({
      from: z.string().max(64).optional(),
      to: z.string().max(64),
      state: z.enum(["installed", "rolled_back", "failed"]),
      reason: z.string().max(2000).optional(),
    }).optional(),
  })),
  responses: {
    200: json(
      z.object({
        update: z.object({
          version: z.string(),
          manifest_url: z.string(),
          signature: z.string(),
          files_url: z.string(),
        }).nullable(),
        channel: z.string(),
        desired_version: z.string().nullable(),
        check_after_ms: z.number().int(),
      }),
      "What to do",
    ),
    401: err("Device authentication failed"),
  },
});

const report = createRoute({
  method: "post",
  path: "/api/agent/update/report",
  tags,
  summary: "Progress of an update the engine offered (downloading, staged, failed)",
  request: body(z.object({
    version: z.string().min(1).max(64),
    from_version: z.string().max(64).optional(),
    state: z.enum(["downloading", "staged", "failed"]),
    error: z.string().max(2000).optional(),
  })),
  responses: {
    200: json(z.object({ status: z.literal("ok") }), "Recorded"),
    401: err("Device authentication failed"),
  },
});

/** Registers the download and agent update routes. */
export function registerPackageRoutes(
  http: Router,
  svc: AgentUpdatesService,
  store: PackageStore,
  tokens: TokenService,
): void {
  for (const name of ["install.sh", "install.ps1"] as const) {
    http.openapi(installer(name), async (c) => {
      const text = await Deno.readTextFile(new URL(name, INSTALLERS));
      c.header("Cache-Control", "no-store");
      return c.body(text, 200, { "content-type": "text/plain; charset=utf-8" }) as never;
    });
  }

  http.openapi(signingKey, async (c) => {
    const key = await tokens.scriptSigningKey();
    if (!key) return c.json({ error: "no_signing_key", message: "no code-signing key yet" }, 503);
    return c.json({ sig_alg: "ed25519" as const, signing_key: key }, 200);
  });

  http.openapi(meta, async (c) => {
    const { version, name } = c.req.valid("param");
    const bytes = await store.meta(version, name);
    if (!bytes) return c.json({ error: "not_found", message: `no ${name} for ${version}` }, 404);
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "text/plain; charset=utf-8",
    }) as never;
  });

  http.openapi(file, async (c) => {
    const { version, platform, file } = c.req.valid("param");
    const f = await store.open(version, platform, file);
    if (!f) {
      return c.json({ error: "not_found", message: `no ${platform}/${file} in ${version}` }, 404);
    }
    return c.body(f.file.readable, 200, {
      "content-type": "application/gzip",
      "content-length": String(f.size),
      "cache-control": "public, max-age=31536000, immutable",
    }) as never;
  });

  const guard = tokens.auth.guard({ allowQuarantined: false });
  http.openapi({ ...check, middleware: [guard] as const }, async (c) => {
    const id = tokens.auth.identity(c);
    return c.json(
      await svc.check({ guid: id.guid, site_id: id.site_id }, c.req.valid("json")),
      200,
    );
  });
  http.openapi({ ...report, middleware: [guard] as const }, async (c) => {
    const id = tokens.auth.identity(c);
    return c.json(await svc.report({ guid: id.guid }, c.req.valid("json")), 200);
  });
}
