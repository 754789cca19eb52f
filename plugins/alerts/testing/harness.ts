/**
 * Test harness of the alerts tests: the watchdogs harness (engine, Admin, site, enrolled
 * reference agents reporting telemetry over the real routes) with the alerts plugin, a
 * real webhook receiver, and helpers to create channels and routes, open incidents and
 * run the delivery worker on the injected clock.
 *
 * @module
 */
import {
  startWatchdogs,
  type WatchdogHarness,
  watchdogPlugins,
} from "../../watchdogs/testing/harness.ts";
import alerts, { type AlertsApi, alertsKey } from "../mod.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./receivers.ts";

/** Every plugin the alerts plugin needs, in load order. */
export const alertPlugins = [...watchdogPlugins, alerts];

/** A running alerts test setup. */
export interface AlertsHarness extends WatchdogHarness {
  api: AlertsApi;
  receiver: WebhookReceiver;
  /** Creates a channel; returns the create answer (`channel`, `signing_secret`). */
  channel(body: Record<string, unknown>): Promise<{
    channel: { id: string } & Record<string, unknown>;
    signing_secret: string | null;
  }>;
  /** A signed generic webhook pointing at the receiver (its secret set on the receiver). */
  webhook(extra?: Record<string, unknown>): Promise<{ id: string }>;
  /** Creates a route; returns its JSON. */
  route(body: Record<string, unknown>): Promise<{ id: string } & Record<string, unknown>>;
  /** One worker cycle, then waits for every send it started. */
  deliver(): Promise<void>;
  /** The delivery log (newest first). */
  log(query?: string): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

/** Starts an engine with alerts, and a webhook receiver. */
export async function startAlerts(env: Record<string, string> = {}): Promise<AlertsHarness> {
  const h = await startWatchdogs({
    BOREALIS_ALERTS_ALLOW_PRIVATE_TARGETS: "true",
    BOREALIS_ALERTS_TIMEOUT_MS: "3000",
    // The tests run cycles themselves; the task's own ticks stay out of the way.
    BOREALIS_ALERTS_WORKER_MS: "60000",
    ...env,
  }, alertPlugins);
  const receiver = startWebhookReceiver();
  receiver.nowSeconds = () => Math.floor(h.t.clock.now() / 1000);
  const api = h.t.engine.service(alertsKey);
  const close = h.close.bind(h);
  const channel: AlertsHarness["channel"] = async (body) => {
    const res = await h.op("/api/alerts/channels", { json: body });
    if (res.status !== 201) throw new Error(`channel create ${res.status}: ${await res.text()}`);
    return await res.json();
  };
  return Object.assign(h, {
    api,
    receiver,
    channel,
    async webhook(extra: Record<string, unknown> = {}) {
      const r = await channel({
        kind: "webhook",
        name: `hook-${crypto.randomUUID().slice(0, 8)}`,
        url: `${receiver.url}/hook`,
        ...extra,
      });
      receiver.secret = r.signing_secret;
      return r.channel;
    },
    async route(body: Record<string, unknown>) {
      const res = await h.op("/api/alerts/routes", { json: { name: "route", ...body } });
      if (res.status !== 201) throw new Error(`route create ${res.status}: ${await res.text()}`);
      return await res.json();
    },
    async deliver() {
      await api.cycle();
      await api.drain();
    },
    async log(query = "") {
      const res = await h.op(`/api/alerts/deliveries?limit=500${query}`);
      if (res.status !== 200) throw new Error(`deliveries ${res.status}: ${await res.text()}`);
      return (await res.json()).items;
    },
    async close() {
      await receiver.close();
      await close();
    },
  });
}
