/**
 * `GET /api/server/time`: the engine's clock and time zone, so a job editor can show
 * when a schedule fires in the engine's terms and warn about a skewed browser clock.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { requireRole } from "../../core/auth.ts";
import type { PluginContext } from "../../core/plugin.ts";
import { errors, json } from "./openapi.ts";

const ServerTime = z.object({
  now: z.string().describe("UTC, ISO 8601"),
  epoch_ms: z.number().int(),
  time_zone: z.string().describe("The engine's IANA time zone (from TZ, else the system's)"),
  utc_offset_minutes: z.number().int().describe("Offset of that zone now (east positive)"),
  local: z.string().describe("Wall-clock time in that zone, YYYY-MM-DDTHH:mm:ss"),
}).openapi("ServerTime");

/** Wall-clock parts of `ms` in `zone`. */
export function wallClock(ms: number, zone: string): { local: string; offsetMinutes: number } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]),
  );
  const local =
    `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}`;
  const asUtc = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  return { local, offsetMinutes: Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60_000) };
}

/** Registers the route. */
export function registerServerTimeRoute(ctx: PluginContext): void {
  ctx.http.openapi(
    createRoute({
      method: "get",
      path: "/api/server/time",
      summary: "The engine's current time and time zone",
      middleware: [requireRole("User")] as const,
      responses: { 200: json(ServerTime, "Server time"), ...errors },
    }),
    (c) => {
      const ms = ctx.clock.now();
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
      const { local, offsetMinutes } = wallClock(ms, zone);
      return c.json({
        now: new Date(ms).toISOString(),
        epoch_ms: ms,
        time_zone: zone,
        utc_offset_minutes: offsetMinutes,
        local,
      }, 200);
    },
  );
}
