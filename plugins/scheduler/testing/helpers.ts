/**
 * Shared setup for scheduler tests: an engine with the scheduler and everything it
 * needs, enrolled reference agents with a real {@link ScriptRunner}, and small helpers.
 *
 * @module
 */
import assemblies from "../../assemblies/mod.ts";
import realtime from "../../realtime/mod.ts";
import scheduler, { type SchedulerInternals, schedulerInternalsKey } from "../mod.ts";
import type { TestEngineOptions } from "../../../tests/helpers/test_engine.ts";
import type { Agent } from "../../../tests/agent/agent.ts";
import {
  type IdentityHarness,
  identityPlugins,
  startIdentity,
} from "../../../tests/agent/harness.ts";
import { ScriptRunner } from "../../../tests/agent/runner.ts";
import { AgentSocket, type Frame } from "../../../tests/agent/socket.ts";

/** A parsed JSON body (tests index into it freely). */
// deno-lint-ignore no-explicit-any
export type Json = any;

/** Plugins the scheduler tests load. */
export const schedulerPlugins = [...identityPlugins, assemblies, realtime, scheduler];

/** Waits (real time) until `pred` holds. */
export async function until(pred: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A connected reference agent. */
export interface LiveAgent {
  agent: Agent;
  socket: AgentSocket;
  runner: ScriptRunner;
  guid: string;
}

/** The scheduler test setup. */
export interface SchedulerSetup {
  h: IdentityHarness;
  server: string;
  enroll(hostname: string, code?: string): Promise<Agent>;
  connect(
    agent: Agent,
    opts?: { server?: string; tamper?: (f: Frame) => void; runner?: ScriptRunner; run?: boolean },
  ): Promise<LiveAgent>;
  script(
    name: string,
    type: string,
    payload: string,
    metadata?: Record<string, unknown>,
  ): Promise<string>;
  json(
    path: string,
    init?: { method?: string; json?: unknown },
  ): Promise<{ status: number; body: Json }>;
  internals(): SchedulerInternals;
  close(): Promise<void>;
}

/** Starts an engine with the scheduler, listening on a real port. */
export async function startScheduler(
  options: Partial<TestEngineOptions> = {},
): Promise<SchedulerSetup> {
  const h = await startIdentity({ plugins: schedulerPlugins, ...options });
  const { port } = await h.t.engine.listen();
  const server = `http://127.0.0.1:${port}`;
  const sockets: AgentSocket[] = [];
  const json = async (path: string, init: { method?: string; json?: unknown } = {}) => {
    const res = await h.op(path, init);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  return {
    h,
    server,
    async enroll(hostname, code = h.site.enrollment_code) {
      const a = await h.agent({ hostname });
      await a.requestEnrollment(code);
      await h.approve(hostname);
      await a.enroll(code);
      return a;
    },
    async connect(agent, opts = {}) {
      const runner = opts.runner ??
        new ScriptRunner({ signingKey: agent.state.signing_key!, maxTimeoutMs: 20_000 });
      const socket: AgentSocket = new AgentSocket(agent, {
        server: opts.server ?? server,
        heartbeat: false,
        reconnect: false,
        onFrame: async (f) => {
          if (opts.run === false) return;
          if (opts.tamper && f.type === "quick_job_run") opts.tamper(f);
          await runner.onFrame(f);
        },
      });
      runner.attach(socket);
      await socket.start();
      // Under load the welcome can slip past AgentSocket before its message handler is
      // attached; a ping round trip proves the engine registered the socket either way.
      await socket.waitFor((f) => f.type === "welcome", 1500).catch(() => socket.request("ping"));
      sockets.push(socket);
      return { agent, socket, runner, guid: agent.state.guid!.toUpperCase() };
    },
    async script(name, type, payload, metadata = {}) {
      const r = await json("/api/assemblies", {
        json: {
          domain: "user_created",
          display_name: name,
          assembly_kind: "script",
          assembly_type: type,
          payload,
          metadata,
        },
      });
      if (r.status !== 201) {
        throw new Error(`assembly create ${r.status}: ${JSON.stringify(r.body)}`);
      }
      return r.body.assembly_guid as string;
    },
    json,
    internals: () => h.t.engine.service(schedulerInternalsKey),
    async close() {
      for (const s of sockets) s.stop();
      await h.close();
    },
  };
}
