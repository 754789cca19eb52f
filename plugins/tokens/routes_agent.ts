/**
 * Agent routes that need only identity: the JWKS, token refresh, script/request and the
 * agent build hash (upstream §1.5, §3.3).
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requiredFieldCodes, type Router } from "../../core/http.ts";
import { badRequest, HttpError } from "../../core/errors.ts";
import type { InventoryService } from "../inventory/mod.ts";
import type { TokenService } from "./service.ts";

const Err = z.object({ error: z.string(), message: z.string(), details: z.unknown().optional() });
const err = (description: string) => ({
  description,
  content: { "application/json": { schema: Err } },
});
const ok = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { "application/json": { schema } },
});
const tags = ["agent"];
const dpopHeaders = z.object({
  authorization: z.string().optional().openapi({ description: "DPoP <access token>" }),
  dpop: z.string().optional().openapi({ description: "DPoP proof JWT (RFC 9449)" }),
});

const jwks = createRoute({
  method: "get",
  path: "/api/agent/jwks",
  tags,
  summary: "Public keys that verify device access tokens",
  responses: {
    200: ok("JWKS", z.object({ keys: z.array(z.record(z.string(), z.unknown())) })),
  },
});

const refresh = createRoute({
  method: "post",
  path: "/api/agent/token/refresh",
  tags,
  summary:
    "Exchange a refresh token (rotated on every use) for a new access token; needs a DPoP proof by the bound key",
  request: {
    headers: z.object({ dpop: z.string().optional() }),
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z.object({
            guid: z.string().max(64).optional(),
            refresh_token: z.string().max(512),
          }),
        },
      },
    },
  },
  responses: {
    200: ok(
      "New tokens",
      z.object({
        access_token: z.string(),
        expires_in: z.number().int(),
        token_type: z.literal("DPoP"),
        refresh_token: z.string(),
        guid: z.string(),
      }),
    ),
    400: err("Bad request or bad DPoP proof"),
    401: err("Refresh token unknown, expired, revoked or reused"),
    403: err("Device revoked"),
  },
});

/** Registers the agent identity routes. */
export function registerAgentRoutes(http: Router, svc: TokenService, inv: InventoryService): void {
  const quarantineOk = svc.auth.guard({ allowQuarantined: true });

  http.openapi(jwks, (c) => c.json(svc.keys.jwks(), 200));

  http.openapi(refresh, async (c) => {
    const body = c.req.valid("json");
    if (!body.refresh_token) throw badRequest("invalid_request", "refresh_token is required");
    const proof = await svc.auth.verifyProof(c, 400);
    const { guid, token } = await svc.refresh.rotate(body.guid, body.refresh_token, proof.jkt);
    const device = await svc.auth.deviceState(guid);
    if (!device) throw new HttpError(401, "device_purged", "device no longer exists; re-enroll");
    if (device.status === "revoked" || device.status === "decommissioned") {
      await svc.refresh.revokeDevice(guid, "device_revoked");
      throw new HttpError(403, "device_revoked", "this device has been revoked");
    }
    const access = await svc.access.issue({
      guid: device.guid.toUpperCase(),
      ssl_key_fingerprint: device.ssl_key_fingerprint!,
      token_version: device.token_version,
      jkt: proof.jkt,
    });
    if (svc.nonce.required) c.header("DPoP-Nonce", await svc.nonce.issue());
    c.header("Cache-Control", "no-store");
    return c.json({
      access_token: access.token,
      expires_in: access.expiresIn,
      token_type: "DPoP" as const,
      refresh_token: token,
      guid: device.guid.toUpperCase(),
    }, 200);
  }, requiredFieldCodes({ refresh_token: "invalid_request" }));

  const scriptRequest = createRoute({
    method: "post",
    path: "/api/agent/script/request",
    tags,
    summary: "Agent poll: idle or quarantined, with a poll hint and the script-signing key",
    middleware: [quarantineOk] as const,
    request: { headers: dpopHeaders },
    responses: {
      200: ok(
        "Poll answer",
        z.object({
          status: z.enum(["idle", "quarantined"]),
          poll_after_ms: z.number().int(),
          sig_alg: z.literal("ed25519"),
          signing_key: z.string().nullable(),
        }),
      ),
      401: err("Not authenticated"),
      403: err("Revoked"),
      429: err("Rate limited"),
    },
  });
  http.openapi(scriptRequest, async (c) => {
    const id = svc.auth.identity(c);
    const active = id.status === "active";
    return c.json({
      status: active ? "idle" as const : "quarantined" as const,
      poll_after_ms: active ? 30_000 : 60_000,
      sig_alg: "ed25519" as const,
      signing_key: await svc.scriptSigningKey(),
    }, 200);
  });

  const getHash = createRoute({
    method: "get",
    path: "/api/agent/hash",
    tags,
    summary: "The agent build hash the engine has on record for this device",
    middleware: [quarantineOk] as const,
    request: { headers: dpopHeaders },
    responses: {
      200: ok("Hash", z.object({ agent_guid: z.string(), agent_hash: z.string().nullable() })),
      401: err("Not authenticated"),
    },
  });
  http.openapi(getHash, async (c) => {
    const id = svc.auth.identity(c);
    const d = await inv.device(id.guid);
    return c.json({ agent_guid: id.guid, agent_hash: d?.agent_hash ?? null }, 200);
  });

  const postHash = createRoute({
    method: "post",
    path: "/api/agent/hash",
    tags,
    summary: "Record this device's agent build hash",
    middleware: [quarantineOk] as const,
    request: {
      headers: dpopHeaders,
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z.object({
              agent_hash: z.string().trim().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/),
            }),
          },
        },
      },
    },
    responses: {
      200: ok(
        "Stored",
        z.object({ status: z.literal("ok"), agent_guid: z.string(), agent_hash: z.string() }),
      ),
      400: err("Bad hash"),
      401: err("Not authenticated"),
    },
  });
  http.openapi(postHash, async (c) => {
    const id = svc.auth.identity(c);
    const { agent_hash } = c.req.valid("json");
    await inv.setAgentHash(id.guid, agent_hash);
    return c.json({ status: "ok" as const, agent_guid: id.guid, agent_hash }, 200);
  });
}
