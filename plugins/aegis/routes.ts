/**
 * Vault administration: status (Admin), key rotation and force-reset (Admin + Dev Mode).
 * Rotation runs in the background in batches; every value carries its key id, so an
 * interrupted rotation simply resumes where values still name an old key.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requireDevMode, requireRole } from "../../core/auth.ts";
import { badRequest } from "../../core/errors.ts";
import type { PluginContext } from "../../core/plugin.ts";
import { err, json } from "../../core/openapi.ts";
import type { AegisVault } from "./vault.ts";

/** The typed confirmation force-reset needs. */
export const FORCE_RESET_CONFIRMATION = "DESTROY ALL SECRETS";

const Status = z.object({
  state: z.enum(["unconfigured", "locked", "unlocked"]),
  mode: z.enum(["passphrase", "keyfile"]).nullable(),
  key_id: z.string().nullable(),
  kdf: z.object({ name: z.literal("scrypt"), N: z.number(), r: z.number(), p: z.number() })
    .nullable(),
  keys: z.array(z.object({
    key_id: z.string(),
    created_at: z.string(),
    retired_at: z.string().nullable(),
    values: z.number(),
  })),
  sealed_columns: z.array(z.object({ table: z.string(), column: z.string() })),
  sealed_values: z.number(),
  rotation: z.object({
    target_key_id: z.string(),
    started_at: z.string(),
    finished_at: z.string().nullable(),
    moved: z.number(),
    failed: z.number(),
    pass: z.number().optional(),
    cursor: z.object({ column: z.number(), after: z.string().nullable() }).optional(),
    remaining: z.number(),
    running: z.boolean(),
  }).nullable(),
}).openapi("AegisStatus");

const statusRoute = createRoute({
  method: "get",
  path: "/api/aegis/status",
  summary: "Vault state, keys and rotation progress (Admin)",
  middleware: [requireRole("Admin")] as const,
  responses: {
    200: json(Status, "Status"),
    401: err("Not signed in"),
    403: err("Not an admin"),
  },
});

const rotateRoute = createRoute({
  method: "post",
  path: "/api/aegis/rotate",
  summary: "Re-encrypt every sealed value under a new key (Admin + Dev Mode)",
  middleware: [requireDevMode()] as const,
  request: {
    body: {
      required: false,
      content: {
        "application/json": {
          schema: z.object({ new_passphrase: z.string().min(12).max(1024).optional() }).strict(),
        },
      },
    },
  },
  responses: {
    202: json(Status, "Rotation started or resumed"),
    400: err("Bad body"),
    401: err("Not signed in"),
    403: err("Not an admin with Dev Mode"),
    409: err("Not configured / wrong mode"),
    423: err("Locked"),
  },
});

const forceResetRoute = createRoute({
  method: "post",
  path: "/api/aegis/force_reset",
  summary: "Destroy every sealed value and the keys (Admin + Dev Mode, typed confirmation)",
  middleware: [requireDevMode()] as const,
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z.object({ confirm: z.string().max(200) }).strict(),
        },
      },
    },
  },
  responses: {
    200: json(
      z.object({
        cleared: z.number(),
        columns: z.array(z.object({ table: z.string(), column: z.string(), cleared: z.number() })),
        status: Status,
      }),
      "Reset: what was destroyed per column; dependents are marked reset-required",
    ),
    400: err("Missing or wrong confirmation (confirmation_required)"),
    401: err("Not signed in"),
    403: err("Not an admin with Dev Mode"),
  },
});

/** Drives background rotation; returned so the plugin can resume and stop it. */
export interface RotationDriver {
  resumeIfPending(): void;
  /** Resolves when the current background rotation (if any) has stopped. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/** Registers the vault administration routes and returns the rotation driver. */
export function registerAegisRoutes(ctx: PluginContext, vault: AegisVault): RotationDriver {
  let running: Promise<void> | null = null;
  let stopping = false;
  const drive = () => {
    if (running || stopping) return;
    running = (async () => {
      try {
        for (;;) {
          if (stopping) return;
          const { done } = await vault.rotateStep();
          if (done || vault.state() !== "unlocked") return;
        }
      } catch (e) {
        ctx.log.error(`Aegis rotation paused: ${e instanceof Error ? e.message : e}`);
      } finally {
        running = null;
      }
    })();
  };
  const driver: RotationDriver = {
    resumeIfPending() {
      if (vault.state() !== "unlocked") return;
      vault.status().then((s) => {
        if (s.rotation?.running) {
          ctx.log.info(`Aegis: resuming key rotation to ${s.rotation.target_key_id}`);
          drive();
        }
      }).catch(() => {});
    },
    idle: async () => {
      while (running) await running;
    },
    async stop() {
      stopping = true;
      await driver.idle();
    },
  };
  vault.afterUnlock = () => driver.resumeIfPending();
  vault.rotationIdle = driver.idle;

  ctx.http.openapi(statusRoute, async (c) => c.json(await vault.status(), 200));

  ctx.http.openapi(rotateRoute, async (c) => {
    const body = c.req.valid("json") ?? {};
    const current = await vault.status();
    if (current.rotation?.running) {
      drive();
      await ctx.audit(c, {
        action: "aegis.rotate",
        target: current.rotation.target_key_id,
        details: { resumed: true },
      });
      return c.json(await vault.status(), 202);
    }
    try {
      const progress = await vault.startRotation(body.new_passphrase);
      await ctx.audit(c, {
        action: "aegis.rotate",
        target: progress.target_key_id,
        details: { new_passphrase: body.new_passphrase !== undefined },
      });
    } catch (e) {
      await ctx.audit(c, { action: "aegis.rotate", outcome: "failure" });
      throw e;
    }
    drive();
    return c.json(await vault.status(), 202);
  });

  ctx.http.openapi(forceResetRoute, async (c) => {
    if (c.req.valid("json").confirm !== FORCE_RESET_CONFIRMATION) {
      await ctx.audit(c, {
        action: "aegis.force_reset",
        target: "aegis",
        outcome: "failure",
        details: { reason: "confirmation_mismatch" },
      });
      throw badRequest(
        "confirmation_required",
        `send {"confirm": "${FORCE_RESET_CONFIRMATION}"} to destroy every sealed value`,
      );
    }
    await driver.stop();
    stopping = false;
    const { cleared, columns } = await vault.forceReset();
    await ctx.audit(c, {
      action: "aegis.force_reset",
      target: "aegis",
      details: { cleared, columns },
    });
    return c.json({ cleared, columns, status: await vault.status() }, 200);
  });

  return driver;
}
