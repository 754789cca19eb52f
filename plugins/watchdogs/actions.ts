/**
 * Remediation actions (upstream §5): record only, notify operators (site-scoped toast
 * with `{{hostname}}` templating), service control sent to the agent, or an assembly
 * run through the scheduler's quick run. Each action's outcome is returned so it can be
 * stored on the incident; a failing action never stops the others.
 *
 * @module
 */
import type { AgentChannel } from "../realtime/mod.ts";
import type { SchedulerService } from "../scheduler/api.ts";
import type { Action } from "./schemas.ts";

/** What one action did. */
export interface ActionOutcome {
  type: Action["type"];
  /** recorded | sent | delivered | routed | offline | dispatched | failed | skipped */
  status: string;
  at: string;
  detail?: string;
  job_id?: string;
  activity_id?: string;
}

/** The incident an action runs for. */
export interface ActionTarget {
  incidentId: string;
  watchdogId: string;
  watchdogName: string;
  severity: string;
  deviceGuid: string;
  hostname: string;
  siteId: number | null;
  summary: string;
}

/** Fills `{{hostname}}` (and a few other fields) into a message template. */
export function renderTemplate(template: string, t: ActionTarget): string {
  const values: Record<string, string> = {
    hostname: t.hostname,
    watchdog: t.watchdogName,
    watchdog_name: t.watchdogName,
    severity: t.severity,
    summary: t.summary,
    device_guid: t.deviceGuid,
  };
  return template.replace(/\{\{\s*([a-z_]+)\s*\}\}/g, (m, k: string) => values[k] ?? m);
}

/** Runs actions; `scheduler` is undefined only while the scheduler plugin is absent. */
export class ActionRunner {
  constructor(
    private readonly channel: AgentChannel,
    private readonly scheduler: () => SchedulerService | undefined,
    private readonly now: () => number,
  ) {}

  /** Runs every action in order and reports each outcome. */
  async run(actions: readonly Action[], t: ActionTarget): Promise<ActionOutcome[]> {
    const out: ActionOutcome[] = [];
    for (const a of actions) {
      const at = new Date(this.now()).toISOString();
      try {
        out.push({ ...(await this.#one(a, t)), type: a.type, at });
      } catch (err) {
        out.push({
          type: a.type,
          status: "failed",
          at,
          detail: err instanceof Error ? err.message.slice(0, 500) : String(err),
        });
      }
    }
    return out;
  }

  async #one(a: Action, t: ActionTarget): Promise<Omit<ActionOutcome, "type" | "at">> {
    switch (a.type) {
      case "do_nothing":
        return { status: "recorded", detail: "Incident only" };
      case "notification": {
        await this.channel.emitToOperators("notifications", "borealis_notification", {
          id: crypto.randomUUID(),
          title: renderTemplate(a.title, t),
          message: renderTemplate(a.message_template, t),
          icon: null,
          variant: a.variant,
          username: "watchdog",
          role: null,
          incident_id: t.incidentId,
          watchdog_id: t.watchdogId,
          device_guid: t.deviceGuid,
          hostname: t.hostname,
          created_at: new Date(this.now()).toISOString(),
        }, t.siteId);
        return { status: "sent" };
      }
      case "service_control": {
        const r = await this.channel.send(t.deviceGuid, {
          type: "service_control",
          id: `wd-${t.incidentId.slice(0, 8)}-${this.now().toString(36)}`,
          data: {
            action: a.action,
            service_name: a.service_name,
            incident_id: t.incidentId,
            watchdog_id: t.watchdogId,
          },
        });
        return {
          status: r.status,
          detail: `${a.action} ${a.service_name}${
            r.held_until ? ` (held until ${r.held_until})` : ""
          }`,
        };
      }
      case "assembly": {
        const scheduler = this.scheduler();
        if (!scheduler) return { status: "failed", detail: "the scheduler is not loaded" };
        const r = await scheduler.quickRun({
          assemblyGuid: a.assembly_guid.toLowerCase(),
          deviceGuids: [t.deviceGuid],
          variableValues: a.variable_values,
          runMode: a.run_mode,
          requestedBy: `watchdog:${t.watchdogId}`,
        });
        const target = r.targets[0];
        return {
          status: "dispatched",
          job_id: r.jobId,
          activity_id: target?.activityId,
          detail: target ? `${target.hostname}: ${target.status}` : "no target",
        };
      }
    }
  }
}
