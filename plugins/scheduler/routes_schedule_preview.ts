/**
 * `POST /api/scheduled_jobs/schedule_preview`: the next run times of a schedule, computed
 * by the same arithmetic the tick uses (cron in its IANA time zone across daylight-saving
 * changes, calendar months, intervals), so a job editor shows what the engine will do
 * rather than what the browser guesses.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../core/auth.ts";
import { badRequest } from "../../core/errors.ts";
import type { PluginContext } from "../../core/plugin.ts";
import { parseStart } from "./jobs.ts";
import { errors, json } from "./openapi.ts";
import { cronProblem, floorMinute, SCHEDULE_TYPES, slotAfter } from "./schedule.ts";
import { wallClock } from "./routes_server_time.ts";

const Body = z.object({
  schedule: z.object({
    type: z.enum(SCHEDULE_TYPES),
    start: z.union([z.number(), z.string().max(64)]).optional(),
    cron: z.string().max(200).optional(),
    timezone: z.string().max(64).optional(),
  }),
  count: z.number().int().min(1).max(50).default(5),
}).strict().openapi("SchedulePreviewBody");

const Run = z.object({
  at: z.string().describe("UTC, ISO 8601"),
  epoch: z.number().int().describe("Epoch seconds"),
  local: z.string().describe("Wall-clock time in the schedule's zone, YYYY-MM-DDTHH:mm"),
});

/** Registers the route. */
export function registerSchedulePreviewRoute(ctx: PluginContext): void {
  ctx.http.openapi(
    createRoute({
      method: "post",
      path: "/api/scheduled_jobs/schedule_preview",
      summary: "The next run times of a schedule, as the engine computes them",
      description: "Cron expressions are evaluated in `timezone` (IANA, default UTC); other " +
        "types are UTC. `immediately` answers the current minute once; `once` its start " +
        "if it is still ahead.",
      middleware: [requireRole("User")] as const,
      request: { body: { required: true, content: { "application/json": { schema: Body } } } },
      responses: {
        200: json(
          z.object({
            runs: z.array(Run),
            time_zone: z.string(),
            now: z.string(),
          }).openapi("SchedulePreview"),
          "Next run times (fewer when the schedule ends)",
        ),
        ...errors,
      },
    }),
    (c) => {
      const { schedule: s, count } = c.req.valid("json");
      const zone = s.type === "cron" ? s.timezone || "UTC" : "UTC";
      if (s.type === "cron") {
        const problem = s.cron ? cronProblem(s.cron, zone) : "required for type cron";
        if (problem) {
          throw badRequest("invalid_schedule", `schedule.cron: ${problem}`, [
            { field: "schedule.cron", message: problem },
          ]);
        }
      } else if (s.timezone && cronProblem("0 0 * * *", s.timezone)) {
        throw badRequest("invalid_schedule", `unknown time zone ${s.timezone}`, [
          { field: "schedule.timezone", message: "an IANA time zone" },
        ]);
      }
      const now = ctx.clock.now();
      const start = s.type === "immediately" ? floorMinute(now) : parseStart(s.start, now);
      const sched = { type: s.type, start, cron: s.cron ?? null, timezone: zone };
      const runs: number[] = [];
      if (s.type === "immediately") runs.push(start);
      else {
        for (let t = now - 1; runs.length < count;) {
          const next = slotAfter(sched, t);
          if (next === null) break;
          runs.push(next);
          t = next;
        }
      }
      return c.json({
        runs: runs.map((ms) => ({
          at: new Date(ms).toISOString(),
          epoch: Math.floor(ms / 1000),
          local: wallClock(ms, zone).local.slice(0, 16),
        })),
        time_zone: zone,
        now: new Date(now).toISOString(),
      }, 200);
    },
  );
}
