/**
 * Test harness of the watchdogs tests: an engine with every plugin watchdogs needs, an
 * Admin, a site, reference agents enrolled through the real flow that report telemetry
 * over the real agent routes, and helpers that move the injected clock and wait for
 * the engine's tasks.
 *
 * @module
 */
import type { AnyPlugin } from "../../../core/plugin.ts";
import assemblies from "../../assemblies/mod.ts";
import realtime from "../../realtime/mod.ts";
import scheduler from "../../scheduler/mod.ts";
import watchdogs, { watchdogsKey } from "../mod.ts";
import {
  type IdentityHarness,
  identityPlugins,
  startIdentity,
} from "../../../tests/agent/harness.ts";
import type { Agent } from "../../../tests/agent/agent.ts";

/** Every plugin the watchdogs plugin needs, in load order. */
export const watchdogPlugins = [...identityPlugins, assemblies, realtime, scheduler, watchdogs];

/** A running watchdogs test setup. */
export interface WatchdogHarness extends IdentityHarness {
  /** Enrolls and approves an agent (in `site` or the harness's main site). */
  enrolled(hostname: string, siteCode?: string): Promise<Agent & { guid: string }>;
  /** Sends a heartbeat with metrics through `POST /api/agent/heartbeat`. */
  heartbeat(
    a: Agent,
    metrics?: Record<string, unknown>,
    extra?: Record<string, unknown>,
  ): Promise<void>;
  /** Sends a details document through `POST /api/agent/details`. */
  details(a: Agent, details: Record<string, unknown>): Promise<void>;
  /** Moves the clock (firing timers) and waits until no task runs. */
  tick(ms: number): Promise<void>;
  /** Evaluates dirty devices now (what the incremental task does). */
  flush(): Promise<void>;
  /** Creates a policy; returns its JSON. */
  policy(body: Record<string, unknown>): Promise<{ id: string } & Record<string, unknown>>;
  /** Incidents of a device (all states), newest first. */
  incidentsOf(guid: string): Promise<IncidentJson[]>;
}

/** An incident as the API shows it (the fields tests read). */
export interface IncidentJson {
  id: string;
  watchdog_id: string;
  state: string;
  trigger_count: number;
  resolution_reason: string | null;
  site_id: number | null;
  hostname: string;
  device_guid: string;
  action_summary: Array<Record<string, unknown>>;
  message: string;
}

/**
 * Starts the engine, an Admin and a site (`plugins`: watchdogPlugins plus any plugin
 * built on watchdogs).
 */
export async function startWatchdogs(
  env: Record<string, string> = {},
  plugins: readonly AnyPlugin[] = watchdogPlugins,
): Promise<WatchdogHarness> {
  const h = await startIdentity({
    plugins,
    env: {
      BOREALIS_ASSEMBLIES_CATALOG_DIR: await Deno.makeTempDir(),
      BOREALIS_SESSION_IDLE_SECONDS: "86400",
      // Fewer unrelated timers per simulated minute: these tests do not schedule jobs.
      BOREALIS_SCHEDULER_TICK_SECONDS: "3600",
      BOREALIS_SCHEDULER_DISPATCH_SECONDS: "600",
      BOREALIS_WATCHDOGS_INCREMENTAL_MS: "5000",
      ...env,
    },
  });
  const api = h.t.engine.service(watchdogsKey);
  const tick = async (ms: number) => {
    await h.t.clock.advance(ms);
    await h.t.engine.tasks.idle();
  };
  const ok = async (res: Response, what: string) => {
    if (res.status !== 200) throw new Error(`${what}: ${res.status} ${await res.text()}`);
    await res.body?.cancel();
  };
  return Object.assign(h, {
    async enrolled(hostname: string, siteCode = h.site.enrollment_code) {
      const a = await h.agent({ hostname });
      await a.requestEnrollment(siteCode);
      const res = await h.approve(hostname);
      await res.body?.cancel();
      await a.enroll(siteCode);
      return Object.assign(a, { guid: a.state.guid!.toUpperCase() });
    },
    async heartbeat(
      a: Agent,
      metrics: Record<string, unknown> = {},
      extra: Record<string, unknown> = {},
    ) {
      await ok(await a.call("POST", "/api/agent/heartbeat", { metrics, ...extra }), "heartbeat");
    },
    async details(a: Agent, details: Record<string, unknown>) {
      await ok(await a.call("POST", "/api/agent/details", { details }), "details");
    },
    tick,
    async flush() {
      await api.flushDirty();
    },
    async policy(body: Record<string, unknown>) {
      const res = await h.op("/api/watchdogs", { json: body });
      if (res.status !== 201) throw new Error(`policy create ${res.status}: ${await res.text()}`);
      return await res.json();
    },
    async incidentsOf(guid: string) {
      const res = await h.op(`/api/watchdogs/incidents?state=all&device_guid=${guid}`);
      if (res.status !== 200) throw new Error(`incidents ${res.status}: ${await res.text()}`);
      return (await res.json()).items as IncidentJson[];
    },
  });
}
