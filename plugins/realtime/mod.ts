/**
 * The realtime plugin: agent and operator WebSockets, telemetry ingest, liveness for
 * tens of thousands of agents, the agent registry that routes messages to whichever
 * engine instance holds an agent's socket, and the operator event feed.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { principalOf, requireRole } from "../../core/auth.ts";
import { intEnv, setting } from "../../core/config.ts";
import { notice } from "../../core/notices.ts";
import { definePlugin, serviceKey } from "../../core/plugin.ts";
import { devicesKey, inventoryKey } from "../inventory/mod.ts";
import { operatorsKey } from "../operators/mod.ts";
import { sitesKey } from "../sites/mod.ts";
import { tokensKey } from "../tokens/mod.ts";
import { AcceptLimiter } from "./accept_limiter.ts";
import { AddressLimiter } from "./address_limiter.ts";
import { CLOSE, reconnectWindow, registerAgentSocket, shutdownReason } from "./agent_socket.ts";
import { socketMetrics } from "./metrics.ts";
import { AgentChannel, agentStatusChanged } from "./channel.ts";
import { Liveness } from "./liveness.ts";
import { OperatorHub, registerOperatorSocket } from "./operator_socket.ts";
import { AgentRegistry } from "./registry.ts";
import { registerSoftwareRoutes } from "./routes_software.ts";
import { SoftwareInventory } from "./software.ts";
import { registerTelemetryRoutes, TelemetryIngest } from "./telemetry.ts";

export { AgentChannel, agentStatusChanged, operatorEvent, telemetryReceived } from "./channel.ts";
export type {
  AgentHandler,
  AgentRef,
  OperatorEvent,
  OperatorHandler,
  OperatorLink,
} from "./channel.ts";
export type { AgentState, HeartbeatFields } from "./liveness.ts";
export type { SoftwareInventory, SoftwareRow } from "./software.ts";
export type { AgentMessage, SendResult } from "./registry.ts";
export type { Topic } from "./schemas.ts";
export { CLOSE } from "./agent_socket.ts";

/** Service key: `ctx.use(realtimeKey)` in plugins that require "realtime". */
export const realtimeKey = serviceKey<AgentChannel>("realtime.channel");

/** Service key of the reported software lists (`matching` names, in one query). */
export const softwareKey = serviceKey<SoftwareInventory>("realtime.software");

/** Internals exposed for tests and benchmarks (flush counters, registry size). */
export interface RealtimeInternals {
  liveness: Liveness;
  registry: AgentRegistry;
  hub: OperatorHub;
  limiter: AcceptLimiter;
  perAddress: AddressLimiter;
  flush(): Promise<number>;
}
export const realtimeInternalsKey = serviceKey<RealtimeInternals>("realtime.internals");

export default definePlugin({
  name: "realtime",
  description: "Agent and operator WebSockets, telemetry, liveness, agent registry",
  requires: ["sites", "tokens", "inventory"],
  // Ending an operator session closes the sockets it opened, when the operators are loaded.
  optional: ["operators"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: {
    heartbeatSeconds: setting(
      "BOREALIS_AGENT_HEARTBEAT_SECONDS",
      intEnv(30, 5, 3600),
      "seconds, 5 to 3600",
      "Heartbeat interval the engine asks agents to use on the socket.",
      "30",
    ),
    flushSeconds: setting(
      "BOREALIS_LIVENESS_FLUSH_SECONDS",
      intEnv(5, 1, 60),
      "seconds, 1 to 60",
      "How often in-memory last_seen and heartbeat fields are written (one statement per flush).",
      "5",
    ),
    statusThrottleSeconds: setting(
      "BOREALIS_AGENT_STATUS_THROTTLE_SECONDS",
      intEnv(10, 0, 3600),
      "seconds, 0 to 3600",
      "Minimum time between two agent_status_changed events of one device.",
      "10",
    ),
    coalesceSeconds: setting(
      "BOREALIS_TELEMETRY_COALESCE_SECONDS",
      intEnv(30, 0, 3600),
      "seconds, 0 to 3600",
      "Identical status payloads and byte-identical details within this window are coalesced.",
      "30",
    ),
    holdSeconds: setting(
      "BOREALIS_AGENT_MESSAGE_HOLD_SECONDS",
      intEnv(180, 0, 3600),
      "seconds, 0 to 3600",
      "How long a message for an offline agent is held for its reconnect.",
      "180",
    ),
    maxFrameBytes: setting(
      "BOREALIS_AGENT_WS_MAX_FRAME_BYTES",
      intEnv(1_048_576, 1024, 64 * 1_048_576),
      "bytes, 1024 to 67108864",
      "Largest agent socket frame.",
      "1048576",
    ),
    idleTimeoutSeconds: setting(
      "BOREALIS_AGENT_WS_IDLE_TIMEOUT_SECONDS",
      intEnv(90, 10, 3600),
      "seconds, 10 to 3600",
      "A socket that does not answer pings for this long is closed.",
      "90",
    ),
    acceptPerSecond: setting(
      "BOREALIS_AGENT_WS_ACCEPT_PER_SECOND",
      intEnv(1000, 0, 100_000),
      "an integer, 0 (off) to 100000",
      "Agent sockets accepted per second; the excess gets 503 with a jittered Retry-After.",
      "1000",
    ),
    reconnectMaxSeconds: setting(
      "BOREALIS_AGENT_RECONNECT_MAX_SECONDS",
      intEnv(30, 1, 3600),
      "seconds, 1 to 3600",
      "Longest reconnect delay a shutdown hints at (close 4503). Each agent gets its own delay, " +
        "drawn from a window that opens after the drain and is sized to the accept rate.",
      "30",
    ),
    acceptBurst: setting(
      "BOREALIS_AGENT_WS_ACCEPT_BURST",
      intEnv(2000, 1, 1_000_000),
      "an integer, 1 to 1000000",
      "Connections accepted at once before the rate applies.",
      "2000",
    ),
    acceptPerAddressPerSecond: setting(
      "BOREALIS_AGENT_WS_ACCEPT_PER_ADDRESS_PER_SECOND",
      intEnv(50, 0, 100_000),
      "an integer, 0 (off) to 100000",
      "Agent socket upgrades per second from one client address; the excess gets 429 with Retry-After.",
      "50",
    ),
    acceptPerAddressBurst: setting(
      "BOREALIS_AGENT_WS_ACCEPT_PER_ADDRESS_BURST",
      intEnv(200, 1, 1_000_000),
      "an integer, 1 to 1000000",
      "Upgrades one address may make at once before its rate applies.",
      "200",
    ),
  },
  async setup(ctx) {
    const s = ctx.settings;
    const tokens = ctx.use(tokensKey);
    const inventory = ctx.use(inventoryKey);
    const startedAt = ctx.clock.now();
    const registry = new AgentRegistry({
      sql: ctx.sql,
      clock: ctx.clock,
      events: ctx.events,
      log: ctx.log,
      instanceId: ctx.instanceId,
      holdMs: s.holdSeconds * 1000,
      instanceStaleMs: Math.max(30_000, s.flushSeconds * 6000),
    });
    const liveness = new Liveness({
      devices: ctx.use(devicesKey),
      clock: ctx.clock,
      thresholds: inventory.presence.thresholds,
      throttleMs: s.statusThrottleSeconds * 1000,
      connected: (guid) => registry.isConnected(guid),
    });
    const [state] = await ctx.sql<
      { last_alive_at: Date }[]
    >`select last_alive_at from realtime_cluster_state where id = 1`;
    await liveness.load(state ? state.last_alive_at.getTime() : null, startedAt);
    // The device list, filters and watchdogs judge presence with what this instance knows.
    inventory.presence.attach(liveness);
    await registry.maintain();

    const channel = new AgentChannel(registry, liveness, ctx.events);
    const telemetry = new TelemetryIngest(
      ctx.sql,
      ctx.clock,
      liveness,
      ctx.use(devicesKey),
      ctx.events,
      s.coalesceSeconds * 1000,
    );
    const hub = new OperatorHub(ctx.events, ctx.instanceId);
    const limiter = new AcceptLimiter(ctx.clock, s.acceptPerSecond, s.acceptBurst, 30);
    const perAddress = new AddressLimiter(
      ctx.clock,
      s.acceptPerAddressPerSecond,
      s.acceptPerAddressBurst,
    );
    ctx.provide(realtimeKey, channel);
    ctx.provide(softwareKey, new SoftwareInventory(ctx.sql));
    ctx.provide(realtimeInternalsKey, {
      liveness,
      registry,
      hub,
      limiter,
      perAddress,
      flush: () => liveness.flush(),
    });

    const devices = ctx.use(devicesKey);
    const agentSockets = registerAgentSocket(ctx, {
      tokens,
      devices,
      registry,
      liveness,
      channel,
      telemetry,
      limiter,
      perAddress,
      log: ctx.log,
      metrics: socketMetrics(ctx.metrics, () => registry.localCount),
      settings: {
        maxFrameBytes: s.maxFrameBytes,
        idleTimeoutSeconds: s.idleTimeoutSeconds,
        heartbeatIntervalSeconds: s.heartbeatSeconds,
      },
    });
    registerTelemetryRoutes(ctx, tokens, telemetry, channel, ctx.use(sitesKey));
    registerOperatorSocket(ctx, hub, channel);
    // Ending a session (here or on another instance) closes the sockets it opened; the
    // minute check also catches sessions that timed out.
    const operators = ctx.tryUse(operatorsKey);
    if (operators) {
      hub.setCredentialCheck((ids) => operators.liveCredentials(ids));
      operators.onAuthChanged(() => {
        hub.verify().catch((err) =>
          ctx.log.warn(`operator socket check failed: ${err instanceof Error ? err.message : err}`)
        );
      });
      ctx.tasks.every("verify_operator_sockets", 60_000, () => hub.verify());
    }
    registerSoftwareRoutes(ctx, inventory);

    ctx.http.openapi(
      createRoute({
        method: "get",
        path: "/api/agents",
        summary: "Connected agents (site-scoped)",
        middleware: [requireRole("User")] as const,
        responses: {
          200: {
            description: "Agents with an open socket",
            content: {
              "application/json": {
                schema: z.object({
                  agents: z.array(z.object({
                    guid: z.string(),
                    hostname: z.string(),
                    site_id: z.number().nullable(),
                    agent_id: z.string().nullable(),
                    service_mode: z.string().nullable(),
                    connected_at: z.string(),
                    instance_id: z.string(),
                    status: z.string(),
                  })),
                  count: z.number(),
                }),
              },
            },
          },
        },
      }),
      async (c) => {
        const p = await principalOf(c);
        const stale = new Date(ctx.clock.now() - Math.max(30_000, s.flushSeconds * 6000));
        const rows = await ctx.sql<
          {
            guid: string;
            hostname: string;
            site_id: number | null;
            agent_id: string | null;
            service_mode: string | null;
            connected_at: Date;
            instance_id: string;
          }[]
        >`
          select c.guid, d.hostname, d.site_id, c.agent_id, c.service_mode, c.connected_at, c.instance_id
          from agent_connections c
          join device_view d on d.guid = c.guid
          join realtime_instances i on i.instance_id = c.instance_id and i.alive_at >= ${stale}
          where ${
          p.sites === "all" ? ctx.sql`true` : ctx.sql`d.site_id = any(${[...p.sites]}::int[])`
        }
          order by d.hostname`;
        const agents = rows.map((r) => ({
          guid: r.guid.toUpperCase(),
          hostname: r.hostname,
          site_id: r.site_id,
          agent_id: r.agent_id,
          service_mode: r.service_mode,
          connected_at: r.connected_at.toISOString(),
          instance_id: r.instance_id,
          status: liveness.state(r.guid.toUpperCase()),
        }));
        return c.json({ agents, count: agents.length }, 200);
      },
    );

    // Containment closes the agent's socket wherever it is; it reconnects under its new status.
    inventory.onContainment(async (guid, action) => {
      await registry.disconnect(guid, CLOSE.contained, `device ${action}`);
      if (action === "purge") liveness.forget(guid.toUpperCase());
    });

    const announce = async (which: "local" | "remote") => {
      for (const change of liveness.sweep(which)) {
        const payload = {
          ...change,
          status: change.state,
          changed_at: new Date(ctx.clock.now()).toISOString(),
        };
        // One bus message: the plugin event and the operators' notice of it.
        await ctx.events.publish(agentStatusChanged, {
          guid: change.guid,
          hostname: change.hostname,
          site_id: change.site_id,
          status: change.state,
          previous: change.previous,
          changed_at: payload.changed_at,
        }, {
          with: notice({
            topic: "device_status",
            type: "agent_status_changed",
            data: {
              guid: change.guid,
              hostname: change.hostname,
              status: change.state,
              previous: change.previous,
              changed_at: payload.changed_at,
            },
            site_id: change.site_id,
          }),
        });
      }
    };
    ctx.tasks.every(
      "flush_liveness",
      s.flushSeconds * 1000,
      async () => void await liveness.flush(),
    );
    ctx.tasks.every("maintain", 5000, () => registry.maintain());
    ctx.tasks.every("sweep_local", 5000, async () => {
      // An open socket is a sign of life: a quiet one gets last_seen refreshed, so SQL that
      // judges presence (filters) agrees with this instance.
      const quiet = ctx.clock.now() - inventory.presence.thresholds.offlineMs / 4;
      for (const a of registry.locals()) {
        if ((liveness.lastSeen(a.guid) ?? 0) < quiet) {
          liveness.touch(a.guid, { hostname: a.hostname, siteId: a.siteId });
        }
      }
      await announce("local");
    });
    ctx.tasks.every("sweep_cluster", 15_000, async () => {
      await liveness.refreshRemote();
      await announce("remote");
    }, { clusterSingleton: true });
    ctx.tasks.every("prune", 60_000, () => registry.prune(), { clusterSingleton: true });
    ctx.tasks.every("prune_coalescing", 60_000, () => telemetry.prune());

    // Every agent socket gets its close frame before the listener shuts down (which would
    // close the sockets without one), each with its own reconnect delay.
    ctx.onDrain(async () => {
      const count = registry.localCount;
      const window = reconnectWindow(count, s.acceptPerSecond, s.reconnectMaxSeconds * 1000);
      const started = performance.now();
      await registry.closeAll(
        CLOSE.shutdown,
        () => shutdownReason(window),
        Infinity,
        agentSockets.open(),
      );
      ctx.log.info(
        `closed ${count} agent sockets (4503, reconnect in ${window.from}-${window.to} ms) in ${
          Math.round(performance.now() - started)
        } ms`,
      );
    });
    ctx.onStop(async () => {
      // Whatever the drain did not finish (its grace ran out) ends here.
      await registry.closeAll(
        CLOSE.shutdown,
        shutdownReason({ from: 1000, to: 3000 }),
        1000,
        agentSockets.open(),
      );
      hub.closeAll();
      await liveness.flush().catch((err) =>
        ctx.log.error(`final liveness flush failed: ${err.message}`)
      );
      await ctx.sql`
        insert into realtime_cluster_state (id, last_alive_at) values (1, ${new Date(
        ctx.clock.now(),
      )})
        on conflict (id) do update set last_alive_at = greatest(realtime_cluster_state.last_alive_at, excluded.last_alive_at)`;
    });
  },
});
