/**
 * Enrollment routes: the agent's `enroll/request` and `enroll/poll` (no authentication;
 * possession of the key is proven by signature) and the operators' approval queue
 * (scoped by site, out-of-scope approvals are 404).
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import { clientIp } from "../../core/audit.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import { forbidden } from "../../core/errors.ts";
import { requiredFieldCodes, type Router } from "../../core/http.ts";
import type { TokenService } from "../tokens/mod.ts";
import type { EnrollmentService } from "./service.ts";

const Err = z.object({ error: z.string(), message: z.string(), details: z.unknown().optional() });
const err = (description: string) => ({
  description,
  content: { "application/json": { schema: Err } },
});
const ok = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { "application/json": { schema } },
});
const body = <T extends z.ZodType>(schema: T) => ({
  body: { required: true, content: { "application/json": { schema } } },
});

const enrollRequest = createRoute({
  method: "post",
  path: "/api/agent/enroll/request",
  tags: ["agent"],
  summary:
    "Ask to enroll: hostname, site enrollment code (or install token), Ed25519 SPKI key, client nonce",
  request: body(z.object({
    hostname: z.string().max(255),
    // One of the two is required (the service answers enrollment_code_required).
    enrollment_code: z.string().max(200).optional(),
    install_token: z.string().max(200).optional(),
    agent_pubkey: z.string().max(4096),
    client_nonce: z.string().max(1024),
    onboarding_context: z.object({
      job_id: z.string().max(200).optional(),
      run_id: z.string().max(200).optional(),
      target: z.string().max(200).optional(),
    }).optional(),
  })),
  responses: {
    200: ok(
      "Pending or approved",
      z.object({
        status: z.enum(["pending", "approved"]),
        approval_reference: z.string(),
        server_nonce: z.string(),
        poll_after_ms: z.number().int(),
        signing_key: z.string().nullable(),
        auto_approved: z.boolean().optional(),
      }),
    ),
    400: err("Missing or invalid field, or wrong enrollment code"),
    429: err("Rate limited (Retry-After)"),
  },
});

const enrollPoll = createRoute({
  method: "post",
  path: "/api/agent/enroll/poll",
  tags: ["agent"],
  summary: "Poll an enrollment with a proof of key possession; returns tokens once approved",
  request: body(z.object({
    approval_reference: z.string().max(64),
    client_nonce: z.string().max(1024),
    proof_sig: z.string().max(512),
  })),
  responses: {
    200: ok("Status, or tokens when approved", z.record(z.string(), z.unknown())),
    400: err("Bad proof or nonce"),
    404: ok(
      "Unknown approval",
      z.object({ status: z.literal("unknown"), error: z.string(), message: z.string() }),
    ),
    409: err("Proof replayed"),
  },
});

const Approval = z.record(z.string(), z.unknown()).openapi("DeviceApproval");
const StatusQuery = z.enum([
  "pending",
  "approved",
  "denied",
  "completed",
  "expired",
  "all",
  "wrong_code",
]);

const listApprovals = createRoute({
  method: "get",
  path: "/api/admin/device-approvals",
  tags: ["approvals"],
  summary:
    "Approval queue with hostname-conflict analysis (status=wrong_code: recent wrong codes, Admin)",
  middleware: [requireRole("User")] as const,
  request: { query: z.object({ status: StatusQuery.default("pending") }) },
  responses: { 200: ok("Approvals", z.object({ approvals: z.array(Approval) })) },
});

const approve = createRoute({
  method: "post",
  path: "/api/admin/device-approvals/{id}/approve",
  tags: ["approvals"],
  summary:
    "Approve; a hostname owned by another device needs overwrite or coexist unless the key matches",
  middleware: [requireRole("User")] as const,
  request: {
    params: z.object({ id: z.string().uuid() }),
    body: {
      required: false,
      content: {
        "application/json": {
          schema: z.object({
            guid: z.string().uuid().optional(),
            conflict_resolution: z.enum(["overwrite", "coexist"]).optional(),
          }).strict(),
        },
      },
    },
  },
  responses: {
    200: ok(
      "Approved",
      z.object({
        status: z.literal("approved"),
        guid: z.string().nullable(),
        conflict_resolution: z.string().optional(),
      }),
    ),
    404: err("No such approval in scope"),
    409: err("Not pending, or a conflict resolution is required"),
  },
});

const deny = createRoute({
  method: "post",
  path: "/api/admin/device-approvals/{id}/deny",
  tags: ["approvals"],
  summary: "Deny a pending enrollment",
  middleware: [requireRole("User")] as const,
  request: { params: z.object({ id: z.string().uuid() }) },
  responses: {
    200: ok("Denied", z.object({ status: z.literal("denied") })),
    404: err("No such approval in scope"),
    409: err("Not pending"),
  },
});

/** Registers the enrollment and approval routes. */
export function registerEnrollmentRoutes(
  http: Router,
  svc: EnrollmentService,
  tokens: TokenService,
  audit: Auditor,
): void {
  http.openapi(
    enrollRequest,
    async (c) => {
      const out = await svc.request(c.req.valid("json"), clientIp(c));
      return c.json(out as never, 200);
    },
    requiredFieldCodes({
      hostname: "hostname_required",
      agent_pubkey: "agent_pubkey_required",
      client_nonce: "client_nonce_required",
    }),
  );

  http.openapi(
    enrollPoll,
    async (c) => {
      const input = c.req.valid("json");
      const result = await svc.poll(input, async () => {
        // A DPoP proof on the poll binds the tokens to that key (else: the identity key).
        if (!c.req.raw.headers.has("dpop")) return null;
        return await tokens.auth.verifyProof(c, 400);
      });
      c.header("Cache-Control", "no-store");
      return c.json(result.body as never, result.status as 200);
    },
    requiredFieldCodes({
      approval_reference: "invalid_request",
      client_nonce: "invalid_request",
      proof_sig: "invalid_request",
    }),
  );

  http.openapi(listApprovals, async (c) => {
    const p = await principalOf(c);
    const { status } = c.req.valid("query");
    if (status === "wrong_code") {
      if (p.kind === "operator" && p.role !== "Admin") {
        throw forbidden("admin_required", "wrong-code attempts are Admin-only");
      }
      return c.json({ approvals: await svc.listFailures() }, 200);
    }
    return c.json({ approvals: await svc.listApprovals(p, status) }, 200);
  });

  http.openapi(approve, async (c) => {
    const p = await principalOf(c);
    const { id } = c.req.valid("param");
    let opts: { guid?: string; conflict_resolution?: "overwrite" | "coexist" } = {};
    if ((c.req.header("content-length") ?? "0") !== "0" || c.req.header("content-type")) {
      try {
        opts = c.req.valid("json") ?? {};
      } catch {
        opts = {};
      }
    }
    try {
      const out = await svc.approve(p, id, opts);
      await audit(c, { action: "approval.approve", target: `approval:${id}`, details: { ...out } });
      return c.json(out, 200);
    } catch (e) {
      await audit(c, {
        action: "approval.approve",
        target: `approval:${id}`,
        outcome: "failure",
        details: { error: e instanceof Error ? e.message : String(e) },
      });
      throw e;
    }
  });

  http.openapi(deny, async (c) => {
    const p = await principalOf(c);
    const { id } = c.req.valid("param");
    const out = await svc.deny(p, id);
    await audit(c, { action: "approval.deny", target: `approval:${id}` });
    return c.json(out, 200);
  });
}
