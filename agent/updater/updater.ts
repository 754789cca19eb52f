/**
 * Self-update, the worker's half: ask the engine whether this device should run another
 * version (`POST /api/agent/update/check`), download that version's files for this
 * platform, verify the manifest's signature with the code-signing key pinned at
 * enrollment and every file against the manifest, and stage the version next to the
 * running one. The supervisor (./supervisor.ts) then tries it and keeps it or rolls back.
 *
 * @module
 */
import { join } from "node:path";
import type { Agent } from "../protocol/client.ts";
import { type AgentPaths, files } from "../service/paths.ts";
import { readJson, writeJsonAtomic } from "../service/fs.ts";
import {
  currentPlatform,
  downloadVerified,
  parseManifest,
  platformFiles,
  verifyManifestSignature,
  VERSION,
} from "./manifest.ts";

/** update.json: what the supervisor and the worker tell each other about an update. */
export interface UpdateState {
  state: "staged" | "trial" | "installed" | "rolled_back" | "failed";
  from: string;
  to: string;
  at: string;
  reason?: string;
  /** Set once the engine was told the outcome. */
  reported?: boolean;
}

/** The engine's answer to a check. */
export interface UpdateOffer {
  version: string;
  manifest_url: string;
  signature: string;
  files_url: string;
}

/** What a check returned. */
export interface CheckResult {
  update: UpdateOffer | null;
  check_after_ms: number;
  channel?: string;
}

/** Exit code of a worker that staged an update for the supervisor to try. */
export const EXIT_UPDATE_STAGED = 75;

/** Options of {@link Updater}. */
export interface UpdaterOptions {
  agent: Agent;
  server: string;
  paths: AgentPaths;
  version: string;
  emit: (event: string, data?: Record<string, unknown>) => void;
}

/** Checks for, downloads, verifies and stages new versions. */
export class Updater {
  #busy = false;
  constructor(readonly o: UpdaterOptions) {}

  #url(pathOrUrl: string): string {
    return /^https?:\/\//.test(pathOrUrl)
      ? pathOrUrl
      : this.o.server.replace(/\/+$/, "") + pathOrUrl;
  }

  /** Tells the engine this device's version and the outcome of the last update. */
  async check(): Promise<CheckResult> {
    const last = await readJson<UpdateState>(files.update(this.o.paths));
    const body: Record<string, unknown> = {
      version: this.o.version,
      platform: currentPlatform(),
    };
    if (last && !last.reported && last.state !== "staged" && last.state !== "trial") {
      body.last_update = { from: last.from, to: last.to, state: last.state, reason: last.reason };
    }
    const res = await this.o.agent.call("POST", "/api/agent/update/check", body);
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`update check: ${res.status} ${json.error ?? ""}`);
    if (last && body.last_update) {
      await writeJsonAtomic(files.update(this.o.paths), { ...last, reported: true });
    }
    return {
      update: json.update ?? null,
      check_after_ms: Number(json.check_after_ms ?? 3_600_000),
      channel: json.channel,
    };
  }

  async #report(to: string, state: string, error?: string): Promise<void> {
    try {
      const res = await this.o.agent.call("POST", "/api/agent/update/report", {
        version: to,
        from_version: this.o.version,
        state,
        ...(error ? { error: error.slice(0, 1000) } : {}),
      });
      await res.body?.cancel();
    } catch { /* the next check carries the outcome */ }
  }

  /**
   * Downloads, verifies and stages `offer`. Returns true when staged (the worker then
   * exits with {@link EXIT_UPDATE_STAGED}); false when it failed (reported to the engine).
   */
  async stage(offer: UpdateOffer): Promise<boolean> {
    if (this.#busy) return false;
    this.#busy = true;
    const { paths, emit } = this.o;
    const to = offer.version;
    try {
      if (!VERSION.test(to)) throw new Error(`refusing version name ${JSON.stringify(to)}`);
      const pinned = this.o.agent.state.signing_key;
      if (!pinned) throw new Error("no code-signing key pinned at enrollment: updates are refused");
      emit("update_downloading", { from: this.o.version, to });
      await this.#report(to, "downloading");
      const res = await fetch(this.#url(offer.manifest_url), {
        signal: AbortSignal.timeout(60_000),
      });
      if (!res.ok) throw new Error(`manifest download: HTTP ${res.status}`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (!(await verifyManifestSignature(bytes, offer.signature, pinned))) {
        throw new Error("the manifest signature does not verify with the pinned code-signing key");
      }
      const manifest = parseManifest(new TextDecoder().decode(bytes));
      if (manifest.version !== to) {
        throw new Error(`the manifest is for ${manifest.version}, not ${to}`);
      }
      const wanted = platformFiles(manifest, currentPlatform());
      const dir = files.version(paths, to);
      const partial = `${dir}.partial`;
      await Deno.remove(partial, { recursive: true }).catch(() => {});
      await Deno.mkdir(partial, { recursive: true });
      const base = this.#url(offer.files_url).replace(/\/+$/, "");
      for (const f of wanted) {
        // A stalled download must not block update checks forever.
        await downloadVerified(
          `${base}/${f.name}.gz`,
          f,
          join(partial, f.name),
          (url) => fetch(url, { signal: AbortSignal.timeout(30 * 60_000) }),
        );
      }
      await Deno.writeFile(join(partial, "manifest.txt"), bytes);
      await Deno.writeTextFile(join(partial, "manifest.sig"), offer.signature + "\n");
      // Never replace the running version's folder; any other copy of `to` is stale.
      if (to !== this.o.version) await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.rename(partial, dir);
      await writeJsonAtomic(
        files.update(paths),
        {
          state: "staged",
          from: this.o.version,
          to,
          at: new Date().toISOString(),
        } satisfies UpdateState,
      );
      await this.#report(to, "staged");
      emit("update_staged", { from: this.o.version, to });
      return true;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      emit("update_failed", { from: this.o.version, to, reason });
      await this.#report(to, "failed", reason);
      return false;
    } finally {
      this.#busy = false;
    }
  }
}
