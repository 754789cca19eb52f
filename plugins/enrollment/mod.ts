/**
 * The enrollment plugin: `enroll/request` and `enroll/poll`, the operator approval
 * queue with hostname-conflict resolution, site auto-approval, wrong-code tracking and
 * enrollment rate limits.
 *
 * @module
 */
import { intEnv, setting } from "../../core/config.ts";
import { definePlugin, serviceKey } from "../../core/plugin.ts";
import { inventoryKey } from "../inventory/mod.ts";
import { realtimeKey } from "../realtime/mod.ts";
import { tokensKey } from "../tokens/mod.ts";
import { registerEnrollmentRoutes } from "./routes.ts";
import { EnrollmentService } from "./service.ts";

export { approvalPending, AUTO_APPROVER, deviceEnrolled, EnrollmentService } from "./service.ts";
export type { InstallTokenResolver } from "./service.ts";
export { proofInput } from "./identity_key.ts";

/** Service key: `ctx.use(enrollmentKey)`. */
export const enrollmentKey = serviceKey<EnrollmentService>("enrollment.service");

export default definePlugin({
  name: "enrollment",
  description: "Agent enrollment, approval queue, auto-approval, wrong-code tracking",
  requires: ["inventory", "tokens"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: {
    ipPerMinute: setting(
      "BOREALIS_ENROLL_RATE_LIMIT_IP_PER_MINUTE",
      intEnv(40, 0, 1_000_000),
      "an integer from 0 (off) to 1000000",
      "Enrollment requests per client address per minute.",
      "40",
    ),
    fingerprintPerMinute: setting(
      "BOREALIS_ENROLL_RATE_LIMIT_FINGERPRINT_PER_MINUTE",
      intEnv(12, 0, 1_000_000),
      "an integer from 0 (off) to 1000000",
      "Enrollment requests per agent key fingerprint per minute.",
      "12",
    ),
    approvalTtlHours: setting(
      "BOREALIS_ENROLL_APPROVAL_TTL_HOURS",
      intEnv(24, 1, 24 * 90),
      "hours, an integer from 1 to 2160",
      "Pending and approved-but-unclaimed enrollments expire after this long.",
      "24",
    ),
  },
  setup(ctx) {
    const tokens = ctx.use(tokensKey);
    const svc = new EnrollmentService({
      sql: ctx.sql,
      clock: ctx.clock,
      log: ctx.log,
      events: ctx.events,
      inventory: ctx.use(inventoryKey),
      tokens,
      ipPerMinute: ctx.settings.ipPerMinute,
      fingerprintPerMinute: ctx.settings.fingerprintPerMinute,
      approvalTtlMs: ctx.settings.approvalTtlHours * 3_600_000,
      // Realtime is optional and sets up after this plugin: look it up when needed.
      notifyOperators: async (type, data, siteId) => {
        await ctx.tryUse(realtimeKey)?.emitToOperators("approvals", type, data, siteId);
      },
    });
    ctx.provide(enrollmentKey, svc);
    registerEnrollmentRoutes(ctx.http, svc, tokens, ctx.audit);
    ctx.tasks.every("expire_and_prune", 60_000, async () => {
      await svc.expire();
      await svc.prune();
    }, { clusterSingleton: true });
  },
});
