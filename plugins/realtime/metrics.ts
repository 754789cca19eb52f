/**
 * The realtime plugin's Prometheus figures: agents connected to this instance, socket
 * connects and refusals, frames received, and how long each frame took to answer (a
 * heartbeat's acknowledgement latency as the engine sees it).
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../../core/http.ts";
import type { Metrics } from "../../core/metrics.ts";

/** What the agent socket reports. */
export interface SocketMetrics {
  /** Middleware on the upgrade route: 101 counts a connect, anything else a refusal. */
  upgrades: MiddlewareHandler<AppEnv>;
  /** A frame arrived. */
  frame(): void;
  /** A reply of `type` went out `ms` after its frame arrived. */
  replied(type: string, ms: number): void;
}

/** Registers the figures; `connected` reads this instance's socket count at scrape time. */
export function socketMetrics(m: Metrics, connected: () => number): SocketMetrics {
  m.gauge("borealis_agents_connected", "Agent sockets this instance holds", {
    collect: (g) => g.set(connected()),
  });
  const connects = m.counter("borealis_agent_connects_total", "Agent sockets opened");
  const refusals = m.counter(
    "borealis_agent_refusals_total",
    "Agent socket upgrades refused, by status (503: accept limiter, 401/403: credentials)",
    ["status"],
  );
  const frames = m.counter("borealis_agent_frames_total", "Frames received from agents");
  const replies = m.histogram(
    "borealis_agent_reply_seconds",
    "Time from a frame's arrival to its answer, by answer type (heartbeat_ack: acknowledgement latency)",
    ["type"],
  );
  return {
    upgrades: async (c, next) => {
      await next();
      if (c.res.status === 101) connects.inc();
      else refusals.inc({ status: c.res.status });
    },
    frame: () => frames.inc(),
    replied: (type, ms) => replies.observe({ type }, ms / 1000),
  };
}
