/**
 * Quick run: one assembly to some devices now. The HTTP route checks scope first; the
 * service method trusts its caller (another plugin, e.g. a watchdog action).
 *
 * @module
 */
import type { Sql } from "../../core/db.ts";
import { badRequest } from "../../core/errors.ts";
import type { QuickRunRequest, QuickRunResult } from "./api.ts";
import type { Dispatcher } from "./dispatch.ts";

const CLAIM_BATCH = 500;

/** Runs quick jobs. */
export class QuickRunner {
  constructor(
    private readonly sql: Sql,
    private readonly dispatcher: Dispatcher,
    /** This engine instance: it owns the activities it records until it sends them. */
    private readonly instanceId: string,
  ) {}

  /** Prepares and signs once, records one activity per target, sends to each. */
  async run(req: QuickRunRequest): Promise<QuickRunResult> {
    const guids = [...new Set(req.deviceGuids.map((g) => g.toUpperCase()))];
    if (!guids.length) throw badRequest("missing_targets", "Missing hostnames[] or device_guids[]");
    const devices = await this.sql<{ guid: string; hostname: string; site_id: number | null }[]>`
      select guid::text, hostname, site_id from devices where guid = any(${guids}::uuid[])
        and status in ('active', 'quarantined')`;
    const found = new Map(devices.map((d) => [d.guid.toUpperCase(), d]));
    const missing = guids.filter((g) => !found.has(g));
    if (missing.length) {
      throw badRequest("unknown_devices", `unknown or revoked devices: ${missing.join(", ")}`, {
        device_guids: missing,
      });
    }
    const runMode = req.runMode ?? "system";
    const prepared = await this.dispatcher.prepare(req.assemblyGuid, req.variableValues, runMode);
    const jobId = crypto.randomUUID();
    const targets = guids.map((g) => {
      const d = found.get(g)!;
      return { guid: g, hostname: d.hostname, siteId: d.site_id };
    });
    const ids = await this.dispatcher.createActivities(prepared, targets, {
      runMode,
      requestedBy: req.requestedBy,
      quickJobId: jobId,
      status: "Running",
      owner: this.instanceId,
    });
    const offline: number[] = [];
    const out: QuickRunResult["targets"] = [];
    let claimed = new Set<number>();
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      const id = ids[i]!;
      // Claimed in batches just before sending, so a crash leaves the rest recognisably
      // undelivered (see Dispatcher.failUndelivered).
      if (i % CLAIM_BATCH === 0) {
        claimed = await this.dispatcher.claimForSending(ids.slice(i, i + CLAIM_BATCH));
      }
      if (!claimed.has(id)) {
        out.push({
          deviceGuid: t.guid,
          hostname: t.hostname,
          activityId: String(id),
          status: "Failed",
        });
        continue;
      }
      const status = await this.dispatcher.send(
        t.guid,
        this.dispatcher.frame(prepared, id, t.hostname, { quick_job_id: jobId }),
      );
      if (status === "offline") offline.push(id);
      out.push({
        deviceGuid: t.guid,
        hostname: t.hostname,
        activityId: String(id),
        status: status === "offline" ? "Pending" : "Running",
      });
    }
    await this.dispatcher.markPending(offline);
    return { jobId, targets: out };
  }
}
