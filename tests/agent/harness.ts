/**
 * Test harness for identity tests: an engine with the identity plugins, an admin, a
 * site, and reference agents wired to the engine in-process (its fetch and its clock).
 *
 * @module
 */
import aegis from "../../plugins/aegis/mod.ts";
import enrollment from "../../plugins/enrollment/mod.ts";
import inventory from "../../plugins/inventory/mod.ts";
import operators from "../../plugins/operators/mod.ts";
import sites from "../../plugins/sites/mod.ts";
import tokens from "../../plugins/tokens/mod.ts";
import { createOperator, type TestOperator } from "../helpers/operators.ts";
import {
  startTestEngine,
  type TestEngine,
  type TestEngineOptions,
} from "../helpers/test_engine.ts";
import { Agent, type AgentOptions } from "./agent.ts";

/** The plugins identity tests load. */
export const identityPlugins = [sites, aegis, operators, inventory, tokens, enrollment];

/** A running identity test setup. */
export interface IdentityHarness {
  t: TestEngine;
  admin: TestOperator;
  site: { id: number; name: string; enrollment_code: string };
  /** A new agent talking to the engine in-process. */
  agent(opts?: Partial<AgentOptions>): Promise<Agent>;
  /** Operator request helper (JSON). */
  op(
    path: string,
    init?: { method?: string; json?: unknown; as?: TestOperator },
  ): Promise<Response>;
  /** Creates another site. */
  createSite(name: string): Promise<{ id: number; name: string; enrollment_code: string }>;
  /** Approves the pending approval for a hostname. */
  approve(hostname: string, body?: Record<string, unknown>): Promise<Response>;
  close(): Promise<void>;
}

/** Starts an engine with the identity plugins, one Admin and one site. */
export async function startIdentity(
  options: Partial<TestEngineOptions> = {},
): Promise<IdentityHarness> {
  const t = await startTestEngine({ plugins: identityPlugins, ...options });
  try {
    let admin = await createOperator(t, { role: "Admin" });
    const op: IdentityHarness["op"] = async (path, init = {}) => {
      const send = () =>
        t.request(path, {
          method: init.method ?? (init.json !== undefined ? "POST" : "GET"),
          json: init.json,
          headers: (init.as ?? admin).headers,
        });
      const res = await send();
      // Sessions idle out when a test moves the clock by hours: sign in again.
      if (res.status === 401 && !init.as) {
        await res.body?.cancel();
        admin = await createOperator(t, { role: "Admin" });
        return await send();
      }
      return res;
    };
    const createSite = async (name: string) => {
      const res = await op("/api/sites", { json: { name, description: "" } });
      if (res.status !== 201) throw new Error(`site create ${res.status}: ${await res.text()}`);
      return await res.json();
    };
    const site = await createSite("Main");
    const agent = (opts: Partial<AgentOptions> = {}) =>
      Agent.open({
        server: "http://127.0.0.1",
        fetch: (req) =>
          t.request(new URL(req.url).pathname + new URL(req.url).search, {
            method: req.method,
            headers: req.headers,
            body: req.body,
            duplex: "half",
          } as RequestInit),
        now: () => t.clock.now(),
        sleep: async () => {},
        ...opts,
      });
    const approve = async (hostname: string, body: Record<string, unknown> = {}) => {
      const list = await (await op("/api/admin/device-approvals?status=pending")).json();
      const row = list.approvals.find((a: { hostname_claimed: string }) =>
        a.hostname_claimed === hostname
      );
      if (!row) throw new Error(`no pending approval for ${hostname}`);
      return await op(`/api/admin/device-approvals/${row.id}/approve`, { json: body });
    };
    return {
      t,
      get admin() {
        return admin;
      },
      site,
      agent,
      op,
      createSite,
      approve,
      close: () => t.close(),
    };
  } catch (err) {
    await t.close();
    throw err;
  }
}
