/**
 * Live device actions: start, stop or restart a service; end a process; refresh the
 * services and processes snapshot now. Each is a row (the audit record and what the
 * console lists), a signed grant sent to the agent, and the agent's answer, which the
 * request waits for up to a setting; past it the request answers 202 and the row is
 * completed whenever the answer arrives.
 *
 * @module
 */
import type { z } from "@hono/zod-openapi";
import type { Auditor } from "../../core/audit.ts";
import type { Principal } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Logger } from "../../core/log.ts";
import type { InventoryService } from "../inventory/mod.ts";
import type { AgentChannel } from "../realtime/mod.ts";
import { liveDevice } from "./access.ts";
import type { ActionView } from "./api.ts";
import type { GrantSigner } from "./grant.ts";
import type { Relay, RelayedFrame } from "./relay.ts";
import type { ActionInput, AgentActionResult } from "./schemas.ts";
import type { TerminalStore } from "./store.ts";

/** What {@link DeviceActions} works with. */
export interface ActionDeps {
  store: TerminalStore;
  channel: AgentChannel;
  inventory: InventoryService;
  grants: GrantSigner;
  relay: Relay;
  clock: Clock;
  log: Logger;
  audit: Auditor;
  instanceId: string;
  timeoutMs: number;
}

interface Waiter {
  guid: string;
  resolve: (view: ActionView | undefined) => void;
}

/** Device actions of one engine instance. */
export class DeviceActions {
  readonly #waiting = new Map<string, Waiter>();

  constructor(private readonly d: ActionDeps) {
    d.relay.on("device_action_result", (f) => this.#result(f));
  }

  /** Runs an action; `done` is false when the agent did not answer in time (202). */
  async run(
    p: Principal,
    guid: string,
    input: z.infer<typeof ActionInput>,
  ): Promise<{ done: boolean; action: ActionView }> {
    const d = this.d;
    const device = await liveDevice(d.inventory, d.channel, p, guid);
    const { kind, ...params } = input;
    const id = crypto.randomUUID();
    const pending = await d.store.addAction({
      id,
      guid: device.guid,
      hostname: device.hostname,
      siteId: device.site_id,
      operatorId: p.id,
      operatorName: p.name,
      kind,
      params,
    });
    const grant = await d.grants.sign(d.clock.now(), {
      purpose: "device_action",
      id,
      guid: device.guid,
      operator: p.name,
      via: d.instanceId,
    }, { kind, params });
    const answered = new Promise<ActionView | undefined>((resolve) => {
      this.#waiting.set(id, { guid: device.guid, resolve });
    });
    const timer = d.clock.setTimeout(() => this.#waiting.get(id)?.resolve(undefined), d.timeoutMs);
    let view: ActionView | undefined;
    try {
      await d.channel.send(device.guid, { type: "device_action", data: grant });
      view = await answered;
    } finally {
      d.clock.clearTimeout(timer);
      this.#waiting.delete(id);
    }
    if (view) {
      await this.#audit(p, view);
      return { done: true, action: view };
    }
    const timedOut = await d.store.finishAction(id, "timed_out", {
      error: `the agent did not answer within ${Math.round(d.timeoutMs / 1000)} s`,
    });
    const action = timedOut ?? (await d.store.action(id)) ?? pending;
    await this.#audit(p, action);
    return { done: action.status !== "timed_out", action };
  }

  async #audit(p: Principal, a: ActionView): Promise<void> {
    await this.d.audit(null, {
      actor: p,
      action: `terminal.device_action.${a.kind}`,
      target: `device:${a.device_guid}`,
      outcome: a.status === "succeeded" ? "success" : "failure",
      details: {
        action_id: a.id,
        hostname: a.hostname,
        ...a.params,
        status: a.status,
        error: a.result?.error ?? null,
      },
    });
  }

  async #result(f: RelayedFrame): Promise<void> {
    const data = f.data as z.infer<typeof AgentActionResult>;
    const w = this.#waiting.get(data.action_id);
    if (w && w.guid !== f.guid) return;
    const result: Record<string, unknown> = {
      ...(data.output !== undefined ? { output: data.output } : {}),
      ...(data.error !== undefined ? { error: data.error } : {}),
      ...(data.details ? data.details : {}),
    };
    const row = await this.d.store.action(data.action_id);
    if (!row || row.device_guid !== f.guid) return;
    const view = await this.d.store.finishAction(
      data.action_id,
      data.ok ? "succeeded" : "failed",
      result,
    );
    w?.resolve(view);
  }
}
