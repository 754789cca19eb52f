/**
 * Quick run: one assembly to some devices now. The HTTP route resolves targets and
 * checks scope first; the service method trusts its caller (another plugin, e.g. a
 * watchdog action). The script is prepared and signed once, one activity row per target
 * is written in one statement, and the frames go out in one pass.
 *
 * @module
 */
import { badRequest } from "../../core/errors.ts";
import type { InventoryService } from "../inventory/mod.ts";
import type { QuickRunRequest, QuickRunResult } from "./api.ts";
import type { Dispatcher } from "./dispatch.ts";

const RUNNABLE = new Set(["active", "quarantined"]);

/** Runs quick jobs. */
export class QuickRunner {
  constructor(
    private readonly inventory: InventoryService,
    private readonly dispatcher: Dispatcher,
  ) {}

  /** Prepares and signs once, records one activity per target, sends to each. */
  async run(req: QuickRunRequest): Promise<QuickRunResult> {
    const guids = [...new Set(req.deviceGuids.map((g) => g.toUpperCase()))];
    if (!guids.length) throw badRequest("missing_targets", "Missing hostnames[] or device_guids[]");
    const devices = await this.inventory.targets({ guids });
    const found = new Map(
      devices.filter((d) => RUNNABLE.has(d.status)).map((d) => [d.guid, d]),
    );
    const missing = guids.filter((g) => !found.has(g));
    if (missing.length && !req.skipUnavailable) {
      throw badRequest("unknown_devices", `unknown or revoked devices: ${missing.join(", ")}`, {
        device_guids: missing,
      });
    }
    const runMode = req.runMode ?? "system";
    const prepared = await this.dispatcher.prepare(req.assemblyGuid, req.variableValues, runMode);
    const jobId = crypto.randomUUID();
    const present = guids.flatMap((g) => found.get(g) ?? []);
    // Eligibility is the device list's presence: with onlineOnly, only online devices run.
    const targets = req.onlineOnly ? present.filter((d) => d.presence === "online") : present;
    const skipped = req.onlineOnly ? present.filter((d) => d.presence !== "online") : [];
    const ids = await this.dispatcher.createActivities(
      prepared,
      targets.map((d) => ({ guid: d.guid, hostname: d.hostname, siteId: d.site_id })),
      { runMode, requestedBy: req.requestedBy, quickJobId: jobId, status: "Running" },
    );
    const offline: number[] = [];
    const out: QuickRunResult["targets"] = [];
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i]!;
      const id = ids[i]!;
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
        presence: t.presence,
      });
    }
    await this.dispatcher.markPending(offline);
    for (const d of skipped) {
      out.push({
        deviceGuid: d.guid,
        hostname: d.hostname,
        activityId: "",
        status: "Skipped",
        presence: d.presence,
      });
    }
    return { jobId, targets: out };
  }
}
