/**
 * Quick run: one assembly to some devices now. The HTTP route resolves targets and
 * checks scope first; the service method trusts its caller (another plugin, e.g. a
 * watchdog action). The script is prepared and signed once; activity rows are written
 * in chunks, and each chunk's frames go out while the next chunk is being written, so a
 * fleet-wide run does not wait for every row before the first agent gets its script.
 * Each activity records the instance that owns it and is claimed just before its frame
 * goes out, so one a crash left unsent is recognisably undelivered.
 *
 * @module
 */
import { badRequest } from "../../core/errors.ts";
import type { InventoryService, TargetDevice } from "../inventory/mod.ts";
import type { QuickRunRequest, QuickRunResult } from "./api.ts";
import type { Dispatcher } from "./dispatch.ts";

/** Containment states a script may run in. */
export const RUNNABLE: ReadonlySet<string> = new Set(["active", "quarantined"]);

/** Activity rows written per statement (a chunk's frames go out during the next one). */
const CHUNK = 2000;

/** Activities claimed per statement just before their frames go out. */
const CLAIM_BATCH = 500;

/** Runs quick jobs. */
export class QuickRunner {
  constructor(
    private readonly inventory: InventoryService,
    private readonly dispatcher: Dispatcher,
    /** This engine instance: it owns the activities it records until it sends them. */
    private readonly instanceId: string,
  ) {}

  /** Looks the GUIDs up, then {@link runOn}. */
  async run(req: QuickRunRequest): Promise<QuickRunResult> {
    const guids = [...new Set(req.deviceGuids.map((g) => g.toUpperCase()))];
    if (!guids.length) throw badRequest("missing_targets", "Missing hostnames[] or device_guids[]");
    return await this.runOn(await this.inventory.targets({ guids }), req);
  }

  /**
   * Runs on devices already looked up (the route resolved them). Every GUID of
   * `req.deviceGuids` must be among them and runnable unless `req.skipUnavailable`.
   */
  async runOn(devices: TargetDevice[], req: QuickRunRequest): Promise<QuickRunResult> {
    const guids = [...new Set(req.deviceGuids.map((g) => g.toUpperCase()))];
    const found = new Map(devices.filter((d) => RUNNABLE.has(d.status)).map((d) => [d.guid, d]));
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
    const write = (chunk: TargetDevice[]) =>
      this.dispatcher.createActivities(
        prepared,
        chunk.map((d) => ({ guid: d.guid, hostname: d.hostname, siteId: d.site_id })),
        {
          runMode,
          requestedBy: req.requestedBy,
          quickJobId: jobId,
          status: "Running",
          owner: this.instanceId,
        },
      );
    const offline: number[] = [];
    const out: QuickRunResult["targets"] = [];
    let writing = write(targets.slice(0, CHUNK));
    for (let start = 0; start < targets.length; start += CHUNK) {
      const ids = await writing;
      const chunk = targets.slice(start, start + CHUNK);
      if (start + CHUNK < targets.length) {
        writing = write(targets.slice(start + CHUNK, start + 2 * CHUNK));
        writing.catch(() => {}); // awaited next round; never an unhandled rejection meanwhile
      }
      let claimed = new Set<number>();
      for (let i = 0; i < chunk.length; i++) {
        const t = chunk[i]!;
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
            presence: t.presence,
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
          presence: t.presence,
        });
      }
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
