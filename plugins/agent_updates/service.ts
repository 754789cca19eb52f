/**
 * Agent releases, install tokens, channels and staged updates.
 *
 * - Releases: packages built by `deno task agent:package` are found on disk, checked,
 *   signed with the code-signing key (through the tokens plugin) and recorded with their
 *   channel (stable, beta or none).
 * - Install tokens: short-lived, revocable, per site; stored as SHA-256 (lookup) and
 *   sealed by the vault (so admins can see the site's current install command again).
 *   Enrollment maps a token to its site through {@link AgentUpdatesService.resolveInstallToken}.
 * - Updates: a device follows its own policy or its site's (stable, beta or a pinned
 *   version). Operators start rollouts (devices or a site, a version, a maximum number
 *   updating at once); with `auto_update` a policy updates devices without one, under a
 *   global limit. Agents learn what to do from `update/check` and report back.
 *
 * @module
 */
import type { Auditor } from "../../core/audit.ts";
import type { Principal } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { badRequest, conflict, notFound } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { VERSION } from "../../agent/updater/manifest.ts";
import type { Vault } from "../aegis/mod.ts";
import type { InventoryService } from "../inventory/mod.ts";
import type { TokenService } from "../tokens/mod.ts";
import type { Channel, DeviceAgentInfo, InstallCommands, UpdateState } from "./api.ts";
import type { PackageStore } from "./store.ts";

/** Orders versions like semver (a pre-release sorts before its release). */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre] = v.split("+")[0]!.split(/-(.*)/s);
    return { nums: core!.split(".").map(Number), pre: pre ?? null };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d) return Math.sign(d);
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === null) return 1;
  if (y.pre === null) return -1;
  // Pre-release identifiers: numbers numerically, text by character, numbers first.
  const xs = x.pre.split(".");
  const ys = y.pre.split(".");
  for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
    const a = xs[i];
    const b = ys[i];
    if (a === undefined) return -1;
    if (b === undefined) return 1;
    const an = /^\d+$/.test(a);
    const bn = /^\d+$/.test(b);
    if (an && bn && Number(a) !== Number(b)) return Math.sign(Number(a) - Number(b));
    if (an !== bn) return an ? -1 : 1;
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

async function sha256(text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Options of {@link AgentUpdatesService}. */
export interface AgentUpdatesOptions {
  sql: Sql;
  clock: Clock;
  log: Logger;
  audit: Auditor;
  vault: Vault;
  inventory: InventoryService;
  tokens: TokenService;
  store: PackageStore;
  /** The engine's public URL (install commands and download links). */
  publicUrl: string;
  checkSeconds: number;
  updateTimeoutMs: number;
  autoMaxConcurrent: number;
  tokenDefaultHours: number;
  /** Tells a connected agent to check now (realtime, when loaded). */
  nudge: (guid: string) => Promise<void>;
}

interface TokenRow {
  id: string;
  site_id: number;
  token_hash: string;
  token_sealed: string | null;
  token_prefix: string;
  auto_approve: boolean;
  max_uses: number | null;
  use_count: number;
  note: string;
  created_by: string;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_by: string | null;
  last_used_at: Date | null;
  refused_count: number;
  last_refused_at: Date | null;
}

interface ReleaseRow {
  version: string;
  channel: "stable" | "beta" | "none";
  manifest_sha256: string;
  signature: string;
  signing_kid: string;
  platforms: Record<string, { bytes: number; gz_bytes: number; files: number }>;
  built_at: Date;
  registered_at: Date;
}

interface DeviceRow {
  guid: string;
  site_id: number | null;
  version: string | null;
  platform: string | null;
  last_check_at: Date | null;
  state: UpdateState;
  target_version: string | null;
  rollout_id: string | null;
  state_changed_at: Date | null;
  last_error: string | null;
}

interface PolicyRow {
  scope: "site" | "device";
  scope_id: string;
  channel: Channel;
  pinned_version: string | null;
  auto_update: boolean;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const q = (s: string) => `'${s.replaceAll("'", "")}'`;

/** The plugin's service. */
export class AgentUpdatesService {
  constructor(readonly o: AgentUpdatesOptions) {}

  #now(): Date {
    return new Date(this.o.clock.now());
  }

  // ------------------------------------------------------------------ releases

  /**
   * Registers packages found on disk: checks files, signs the manifest, records it. A
   * version rebuilt in place (`agent:package --force`) is checked and signed again.
   */
  async scan(): Promise<string[]> {
    const { sql, store, tokens, log } = this.o;
    const known = new Map(
      (await sql<{ version: string; manifest_sha256: string }[]>`
        select version, manifest_sha256 from agent_releases`).map((
        r,
      ) => [r.version, r.manifest_sha256]),
    );
    const added: string[] = [];
    for (const version of await store.versions()) {
      const registered = known.get(version);
      if (registered && registered === await store.manifestSha256(version)) continue;
      const sign = tokens.codeSigner();
      if (!sign) {
        log.warn(
          "agent packages found but no code-signing key is available (scheduler not loaded)",
        );
        return added;
      }
      try {
        const pkg = await store.load(version);
        const sig = await sign(pkg.manifestBytes);
        await store.writeSignature(version, sig.signature);
        const platforms: ReleaseRow["platforms"] = {};
        for (const f of pkg.manifest.files) {
          const p = platforms[f.platform] ??= { bytes: 0, gz_bytes: 0, files: 0 };
          p.bytes += f.size;
          p.gz_bytes += f.gz_size;
          p.files++;
        }
        const now = this.#now();
        await sql`
          insert into agent_releases (version, channel, manifest_sha256, signature, signing_kid,
            platforms, built_at, registered_at)
          values (${version}, ${pkg.channel}, ${pkg.manifestSha256}, ${sig.signature}, ${sig.kid},
            ${sql.json(platforms as never)}, ${new Date(pkg.manifest.created)}, ${now})
          on conflict (version) do update set manifest_sha256 = excluded.manifest_sha256,
            signature = excluded.signature, signing_kid = excluded.signing_kid,
            platforms = excluded.platforms, built_at = excluded.built_at,
            registered_at = excluded.registered_at`;
        added.push(version);
        if (registered) log.warn(`agent release ${version} was rebuilt: signed again`);
        else log.info(`agent release ${version} registered (channel ${pkg.channel})`);
      } catch (err) {
        log.warn(`agent package ${version} skipped: ${err instanceof Error ? err.message : err}`);
      }
    }
    return added;
  }

  #releaseView(r: ReleaseRow) {
    return {
      version: r.version,
      channel: r.channel,
      manifest_sha256: r.manifest_sha256,
      signing_kid: r.signing_kid,
      platforms: r.platforms,
      built_at: r.built_at.toISOString(),
      registered_at: r.registered_at.toISOString(),
    };
  }

  /** Every release, newest first. */
  async releases() {
    const rows = await this.o.sql<ReleaseRow[]>`select * from agent_releases`;
    return rows.sort((a, b) => compareVersions(b.version, a.version)).map((r) =>
      this.#releaseView(r)
    );
  }

  async #release(version: string): Promise<ReleaseRow> {
    const [r] = await this.o.sql<
      ReleaseRow[]
    >`select * from agent_releases where version = ${version}`;
    if (!r) throw notFound(`no agent release ${version}`);
    return r;
  }

  /** Moves a release to a channel. */
  async setReleaseChannel(version: string, channel: "stable" | "beta" | "none") {
    await this.#release(version);
    await this.o.sql`update agent_releases set channel = ${channel} where version = ${version}`;
    return this.#releaseView(await this.#release(version));
  }

  /** The newest release a channel offers (beta also offers stable releases). */
  async channelVersion(channel: "stable" | "beta"): Promise<string | null> {
    const rows = await this.o.sql<{ version: string }[]>`
      select version from agent_releases
      where ${
      channel === "stable"
        ? this.o.sql`channel = 'stable'`
        : this.o.sql`channel in ('stable', 'beta')`
    }`;
    return rows.map((r) => r.version).sort(compareVersions).at(-1) ?? null;
  }

  // ------------------------------------------------------------------ policies

  async #policies(siteIds: (number | null)[], guids: string[]): Promise<PolicyRow[]> {
    return await this.o.sql<PolicyRow[]>`
      select scope, scope_id, channel, pinned_version, auto_update from agent_update_policies
      where (scope = 'site' and scope_id = any(${
      siteIds.filter((s) => s !== null).map(String)
    }::text[]))
         or (scope = 'device' and scope_id = any(${guids.map((g) => g.toLowerCase())}::text[]))`;
  }

  /** The policy in force for a device: its own, else its site's, else stable. */
  #effective(policies: PolicyRow[], guid: string, siteId: number | null): PolicyRow {
    return policies.find((p) => p.scope === "device" && p.scope_id === guid.toLowerCase()) ??
      policies.find((p) => p.scope === "site" && p.scope_id === String(siteId)) ??
      {
        scope: "site",
        scope_id: String(siteId),
        channel: "stable",
        pinned_version: null,
        auto_update: false,
      };
  }

  async #desired(p: PolicyRow): Promise<string | null> {
    if (p.channel === "pinned") return p.pinned_version;
    return await this.channelVersion(p.channel);
  }

  /** Sets (or, with channel "inherit" for a device, clears) an update policy. */
  async setPolicy(
    scope: "site" | "device",
    id: string,
    body: { channel: Channel | "inherit"; pinned_version?: string; auto_update?: boolean },
  ) {
    const scopeId = scope === "device" ? id.toLowerCase() : id;
    if (body.channel === "inherit") {
      await this.o
        .sql`delete from agent_update_policies where scope = ${scope} and scope_id = ${scopeId}`;
      return { scope, id, channel: "inherit" as const };
    }
    if (body.channel === "pinned") {
      if (!body.pinned_version) {
        throw badRequest("pinned_version_required", "a pinned channel needs pinned_version");
      }
      await this.#release(body.pinned_version);
    }
    const pinned = body.channel === "pinned" ? body.pinned_version! : null;
    await this.o.sql`
      insert into agent_update_policies (scope, scope_id, channel, pinned_version, auto_update, updated_at)
      values (${scope}, ${scopeId}, ${body.channel}, ${pinned}, ${
      body.auto_update ?? false
    }, ${this.#now()})
      on conflict (scope, scope_id) do update set channel = excluded.channel,
        pinned_version = excluded.pinned_version, auto_update = excluded.auto_update,
        updated_at = excluded.updated_at`;
    return {
      scope,
      id,
      channel: body.channel,
      pinned_version: pinned,
      auto_update: body.auto_update ?? false,
    };
  }

  /** A site's policy (stable, no auto-update when none was set). */
  async sitePolicy(siteId: number) {
    const [p] = await this.#policies([siteId], []);
    return {
      channel: p?.channel ?? "stable",
      pinned_version: p?.pinned_version ?? null,
      auto_update: p?.auto_update ?? false,
      desired_version: await this.#desired(p ?? this.#effective([], "", siteId)),
    };
  }

  // ------------------------------------------------------------------ install tokens

  #tokenView(r: TokenRow, now: Date) {
    const state = r.revoked_at
      ? "revoked"
      : r.expires_at <= now
      ? "expired"
      : r.max_uses !== null && r.use_count >= r.max_uses
      ? "used_up"
      : "active";
    return {
      id: r.id,
      site_id: r.site_id,
      token_prefix: r.token_prefix,
      state,
      auto_approve: r.auto_approve,
      max_uses: r.max_uses,
      use_count: r.use_count,
      note: r.note,
      created_by: r.created_by,
      created_at: r.created_at.toISOString(),
      expires_at: r.expires_at.toISOString(),
      revoked_at: iso(r.revoked_at),
      revoked_by: r.revoked_by,
      last_used_at: iso(r.last_used_at),
      refused_count: r.refused_count,
      last_refused_at: iso(r.last_refused_at),
    };
  }

  /** Creates an install token for a site; the clear token is returned only here. */
  async createInstallToken(
    actor: Principal,
    siteId: number,
    o: { expires_in_hours?: number; max_uses?: number; auto_approve?: boolean; note?: string },
  ) {
    const site = await this.o.inventory.site(siteId, false);
    if (!site) throw notFound(`no site ${siteId}`);
    const token = `bit_${b64url(crypto.getRandomValues(new Uint8Array(32)))}`;
    const id = crypto.randomUUID();
    const now = this.#now();
    const expires = new Date(
      now.getTime() + (o.expires_in_hours ?? this.o.tokenDefaultHours) * 3_600_000,
    );
    const sealed = await this.o.vault.seal(token, {
      table: "agent_install_tokens",
      column: "token_sealed",
      row: id,
    });
    const [row] = await this.o.sql<TokenRow[]>`
      insert into agent_install_tokens (id, site_id, token_hash, token_sealed, token_prefix,
        auto_approve, max_uses, note, created_by, created_at, expires_at)
      values (${id}, ${siteId}, ${await sha256(token)}, ${sealed}, ${token.slice(0, 10)},
        ${o.auto_approve ?? true}, ${o.max_uses ?? null}, ${o.note ?? ""}, ${actor.name},
        ${now}, ${expires})
      returning *`;
    return {
      ...this.#tokenView(row!, now),
      token,
      install_commands: await this.#commands(siteId, token, row!),
    };
  }

  /** Install tokens of a site (no clear values). */
  async listInstallTokens(siteId: number) {
    const rows = await this.o.sql<TokenRow[]>`
      select * from agent_install_tokens where site_id = ${siteId} order by created_at desc limit 500`;
    const now = this.#now();
    return rows.map((r) => this.#tokenView(r, now));
  }

  /** Revokes a token; enrollment refuses it from now on. */
  async revokeInstallToken(actor: Principal, siteId: number, id: string) {
    const r = await this.o.sql<TokenRow[]>`
      update agent_install_tokens set revoked_at = coalesce(revoked_at, ${this.#now()}),
        revoked_by = coalesce(revoked_by, ${actor.name}), token_sealed = null
      where id = ${id} and site_id = ${siteId} returning *`;
    if (!r[0]) throw notFound(`no install token ${id} in site ${siteId}`);
    return this.#tokenView(r[0], this.#now());
  }

  /** The install commands of a token (needs a release to install). */
  async #commands(siteId: number, token: string, row: TokenRow): Promise<InstallCommands | null> {
    const policy = await this.sitePolicy(siteId);
    const version = policy.desired_version ?? (await this.releases())[0]?.version ?? null;
    if (!version) return null;
    const rel = await this.#release(version);
    const base = this.o.publicUrl.replace(/\/+$/, "");
    const sh = `curl -fsSLo borealis-install.sh ${q(`${base}/api/agent/install.sh`)} && ` +
      `sh borealis-install.sh --server ${q(base)} --token ${q(token)} --version ${q(version)} ` +
      `--manifest-sha256 ${q(rel.manifest_sha256)}`;
    const ps = `$f = Join-Path $env:TEMP 'borealis-install.ps1'; ` +
      `Invoke-WebRequest -UseBasicParsing -Uri ${
        q(`${base}/api/agent/install.ps1`)
      } -OutFile $f; ` +
      `& powershell -NoProfile -ExecutionPolicy Bypass -File $f -Server ${q(base)} -Token ${
        q(token)
      } ` +
      `-Version ${q(version)} -ManifestSha256 ${q(rel.manifest_sha256)}`;
    return {
      linux: sh,
      macos: sh,
      windows: ps,
      token_id: row.id,
      expires_at: row.expires_at.toISOString(),
      version,
    };
  }

  /** The site's current install commands (newest active token), or null. */
  async installCommands(siteId: number): Promise<InstallCommands | null> {
    const now = this.#now();
    const rows = await this.o.sql<TokenRow[]>`
      select * from agent_install_tokens
      where site_id = ${siteId} and revoked_at is null and expires_at > ${now}
        and token_sealed is not null and (max_uses is null or use_count < max_uses)
      order by created_at desc limit 1`;
    const row = rows[0];
    if (!row || this.o.vault.state() !== "unlocked") return null;
    try {
      const token = await this.o.vault.open(row.token_sealed!, {
        table: "agent_install_tokens",
        column: "token_sealed",
        row: row.id,
      });
      return await this.#commands(siteId, token, row);
    } catch {
      return null;
    }
  }

  /** Enrollment's resolver: the token's site, or null (recorded and audited). */
  async resolveInstallToken(
    token: string,
    who: { hostname: string; fingerprint: string; ip: string | null },
  ): Promise<{ siteId: number; autoApprove: boolean } | null> {
    const { sql, audit } = this.o;
    const now = this.#now();
    const [row] = /^bit_[A-Za-z0-9_-]{43}$/.test(token)
      ? await sql<TokenRow[]>`select * from agent_install_tokens where token_hash = ${await sha256(
        token,
      )}`
      : [];
    const refuse = async (why: string) => {
      if (row) {
        await sql`update agent_install_tokens set refused_count = refused_count + 1,
          last_refused_at = ${now} where id = ${row.id}`;
      }
      await audit(null, {
        actor: null,
        action: "install_token.refused",
        target: row ? `install_token:${row.id}` : undefined,
        outcome: "denied",
        details: { reason: why, hostname: who.hostname, fingerprint: who.fingerprint, ip: who.ip },
      });
      return null;
    };
    if (!row) return await refuse("unknown");
    if (row.revoked_at) return await refuse("revoked");
    if (row.expires_at <= now) return await refuse("expired");
    if (!(await this.o.inventory.site(row.site_id, false))) return await refuse("site_deleted");
    const used = await sql.begin(async (tx) => {
      const [locked] = await tx<TokenRow[]>`
        select * from agent_install_tokens where id = ${row.id} for update`;
      const [seen] = await tx`
        select 1 from agent_install_token_uses
        where token_id = ${row.id} and key_fingerprint = ${who.fingerprint}`;
      if (seen) {
        await tx`update agent_install_tokens set last_used_at = ${now} where id = ${row.id}`;
        return "again";
      }
      if (locked!.max_uses !== null && locked!.use_count >= locked!.max_uses) return "used_up";
      await tx`
        insert into agent_install_token_uses (token_id, key_fingerprint, hostname, remote_addr, used_at)
        values (${row.id}, ${who.fingerprint}, ${who.hostname}, ${who.ip}, ${now})`;
      await tx`update agent_install_tokens set use_count = use_count + 1, last_used_at = ${now}
        where id = ${row.id}`;
      return "new";
    });
    if (used === "used_up") return await refuse("used_up");
    if (used === "new") {
      await audit(null, {
        actor: null,
        action: "install_token.used",
        target: `install_token:${row.id}`,
        details: {
          site_id: row.site_id,
          hostname: who.hostname,
          fingerprint: who.fingerprint,
          ip: who.ip,
        },
      });
    }
    return { siteId: row.site_id, autoApprove: row.auto_approve };
  }

  // ------------------------------------------------------------------ updates

  /** An agent's `update/check`. */
  async check(
    device: { guid: string; site_id: number | null },
    body: {
      version: string;
      platform: string;
      last_update?: { from?: string; to: string; state: string; reason?: string };
    },
  ) {
    const { sql } = this.o;
    const guid = device.guid.toLowerCase();
    const now = this.#now();
    await sql`
      insert into agent_update_devices (guid, site_id, version, platform, last_check_at, state, state_changed_at)
      values (${guid}, ${device.site_id}, ${body.version}, ${body.platform}, ${now}, 'idle', ${now})
      on conflict (guid) do update set site_id = excluded.site_id, version = excluded.version,
        platform = excluded.platform, last_check_at = excluded.last_check_at`;
    let [row] = await sql<DeviceRow[]>`select * from agent_update_devices where guid = ${guid}`;
    const set = async (state: UpdateState, error: string | null = null) => {
      [row] = await sql<DeviceRow[]>`
        update agent_update_devices set state = ${state}, last_error = ${error}, state_changed_at = ${now}
        where guid = ${guid} returning *`;
      if (row!.rollout_id) await this.#advance(row!.rollout_id);
    };
    const lu = body.last_update;
    if (
      lu && row!.state === "updating" && lu.to === row!.target_version &&
      (lu.state === "rolled_back" || lu.state === "failed")
    ) {
      await set(lu.state, (lu.reason ?? lu.state).slice(0, 1000));
    }
    if (row!.state === "updating" && body.version === row!.target_version) await set("succeeded");
    if (
      row!.state === "updating" && row!.state_changed_at &&
      now.getTime() - row!.state_changed_at.getTime() > this.o.updateTimeoutMs
    ) await set("failed", "the update was not confirmed in time");

    const policies = await this.#policies([device.site_id], [guid]);
    const policy = this.#effective(policies, guid, device.site_id);
    const desired = await this.#desired(policy);
    let offer: string | null = null;
    if (row!.state === "updating" && row!.target_version !== body.version) {
      offer = row!.target_version; // asking again (restarted mid-download): same slot
    } else if (row!.state === "queued" && row!.rollout_id) {
      const [slot] = await sql<{ free: boolean }[]>`
        select (select count(*) from agent_update_devices
                where rollout_id = r.id and state = 'updating') < r.max_concurrency as free
        from agent_rollouts r where r.id = ${row!.rollout_id} and r.status = 'active'`;
      if (slot?.free) {
        offer = row!.target_version;
        if (offer === body.version) await set("succeeded");
        else await set("updating");
      }
    } else if (
      policy.auto_update && desired && desired !== body.version &&
      !(row!.target_version === desired && ["failed", "rolled_back"].includes(row!.state))
    ) {
      const [busy] = await sql<{ n: number }[]>`
        select count(*)::int as n from agent_update_devices where state = 'updating' and rollout_id is null`;
      if ((busy?.n ?? 0) < this.o.autoMaxConcurrent) {
        [row] = await sql<DeviceRow[]>`
          update agent_update_devices set state = 'updating', target_version = ${desired},
            rollout_id = null, last_error = null, state_changed_at = ${now}
          where guid = ${guid} returning *`;
        offer = desired;
      }
    }
    let update = null;
    if (offer && offer !== body.version) {
      const rel = await this.#release(offer).catch(() => null);
      if (rel && rel.platforms[body.platform]) {
        update = {
          version: rel.version,
          manifest_url: `/api/agent/packages/${rel.version}/manifest.txt`,
          signature: rel.signature,
          files_url: `/api/agent/packages/${rel.version}/${body.platform}`,
        };
      } else if (row!.state === "updating") {
        await set("failed", `release ${offer} has no package for ${body.platform}`);
      }
    }
    return {
      update,
      channel: policy.channel,
      desired_version: desired,
      check_after_ms: this.o.checkSeconds * 1000,
    };
  }

  /** An agent's `update/report`. */
  async report(
    device: { guid: string },
    body: { version: string; state: "downloading" | "staged" | "failed"; error?: string },
  ) {
    const guid = device.guid.toLowerCase();
    const now = this.#now();
    if (body.state === "failed") {
      const [r] = await this.o.sql<DeviceRow[]>`
        update agent_update_devices set state = 'failed', last_error = ${
        (body.error ?? "failed").slice(0, 1000)
      },
          state_changed_at = ${now}
        where guid = ${guid} and target_version = ${body.version} and state = 'updating'
        returning *`;
      if (r?.rollout_id) await this.#advance(r.rollout_id);
    } else {
      await this.o.sql`update agent_update_devices set last_error = null
        where guid = ${guid} and target_version = ${body.version}`;
    }
    return { status: "ok" as const };
  }

  /** Starts the next queued devices of a rollout (and completes it when none remain). */
  async #advance(rolloutId: string): Promise<void> {
    const { sql } = this.o;
    const [r] = await sql<{ max_concurrency: number; status: string }[]>`
      select max_concurrency, status from agent_rollouts where id = ${rolloutId}`;
    if (!r || r.status !== "active") return;
    const counts = await sql<{ state: string; n: number }[]>`
      select state, count(*)::int as n from agent_update_devices where rollout_id = ${rolloutId} group by state`;
    const n = (s: string) => counts.find((c) => c.state === s)?.n ?? 0;
    if (!n("queued") && !n("updating")) {
      await sql`update agent_rollouts set status = 'completed' where id = ${rolloutId} and status = 'active'`;
      return;
    }
    const free = r.max_concurrency - n("updating");
    if (free <= 0) return;
    const next = await sql<{ guid: string }[]>`
      select guid from agent_update_devices where rollout_id = ${rolloutId} and state = 'queued'
      order by guid limit ${free}`;
    for (const d of next) await this.o.nudge(d.guid.toUpperCase()).catch(() => {});
  }

  /** Starts a rollout of `version` to devices (by GUID, or every device of a site). */
  async createRollout(
    actor: Principal,
    o: { device_guids?: string[]; site_id?: number; version?: string; max_concurrency?: number },
  ) {
    const { sql, inventory } = this.o;
    let devices: { guid: string; site_id: number | null }[] = [];
    if (o.site_id !== undefined) {
      inventory.assertSiteVisible(actor, o.site_id, "site");
      devices = (await inventory.listDevices(actor, { siteId: o.site_id })).map((d) => ({
        guid: d.guid,
        site_id: d.site_id,
      }));
    }
    for (const g of o.device_guids ?? []) {
      const d = await inventory.visibleDevice(actor, g);
      if (!devices.some((x) => x.guid === d.guid)) {
        devices.push({ guid: d.guid, site_id: d.site_id });
      }
    }
    if (!devices.length) throw badRequest("no_devices", "no devices to update");
    const version = o.version ?? await this.channelVersion("stable");
    if (!version) throw conflict("no_release", "no stable agent release; name a version");
    if (!VERSION.test(version)) throw badRequest("invalid_version", "not a version");
    await this.#release(version);
    const id = crypto.randomUUID();
    const now = this.#now();
    await sql`insert into agent_rollouts (id, version, max_concurrency, created_by, created_at)
      values (${id}, ${version}, ${o.max_concurrency ?? 10}, ${actor.name}, ${now})`;
    for (const d of devices) {
      await sql`
        insert into agent_update_devices (guid, site_id, state, target_version, rollout_id, state_changed_at)
        values (${d.guid.toLowerCase()}, ${d.site_id}, 'queued', ${version}, ${id}, ${now})
        on conflict (guid) do update set state = 'queued', target_version = excluded.target_version,
          rollout_id = excluded.rollout_id, state_changed_at = excluded.state_changed_at, last_error = null`;
    }
    await this.#advance(id);
    return await this.rollout(id);
  }

  /** A rollout and its devices' states. */
  async rollout(id: string) {
    const { sql } = this.o;
    const [r] = await sql<
      {
        id: string;
        version: string;
        max_concurrency: number;
        created_by: string;
        created_at: Date;
        status: string;
      }[]
    >`select * from agent_rollouts where id = ${id}`;
    if (!r) throw notFound(`no rollout ${id}`);
    const devices = await sql<
      DeviceRow[]
    >`select * from agent_update_devices where rollout_id = ${id} order by guid`;
    const counts: Record<string, number> = {};
    for (const d of devices) counts[d.state] = (counts[d.state] ?? 0) + 1;
    return {
      id: r.id,
      version: r.version,
      max_concurrency: r.max_concurrency,
      status: r.status,
      created_by: r.created_by,
      created_at: r.created_at.toISOString(),
      counts,
      devices: devices.map((d) => ({
        guid: d.guid.toUpperCase(),
        state: d.state,
        version: d.version,
        last_error: d.last_error,
      })),
    };
  }

  /** Cancels a rollout: queued devices go back to idle. */
  async cancelRollout(id: string) {
    await this.rollout(id);
    await this.o
      .sql`update agent_rollouts set status = 'cancelled' where id = ${id} and status = 'active'`;
    await this.o.sql`update agent_update_devices set state = 'idle', rollout_id = null
      where rollout_id = ${id} and state = 'queued'`;
    return await this.rollout(id);
  }

  /** What the device list shows about each device's agent. */
  async deviceInfo(
    guids: string[],
    siteOf: Map<string, number | null>,
  ): Promise<Map<string, DeviceAgentInfo>> {
    const rows = await this.o.sql<DeviceRow[]>`
      select * from agent_update_devices where guid = any(${
      guids.map((g) => g.toLowerCase())
    }::uuid[])`;
    const policies = await this.#policies([...new Set(siteOf.values())], guids);
    const desiredCache = new Map<string, string | null>();
    const out = new Map<string, DeviceAgentInfo>();
    for (const g of guids) {
      const r = rows.find((x) => x.guid.toLowerCase() === g.toLowerCase());
      const p = this.#effective(policies, g, siteOf.get(g) ?? null);
      const key = `${p.channel}:${p.pinned_version}`;
      if (!desiredCache.has(key)) desiredCache.set(key, await this.#desired(p));
      out.set(g, {
        version: r?.version ?? null,
        platform: r?.platform ?? null,
        channel: p.channel,
        desired_version: desiredCache.get(key) ?? null,
        update_state: r?.state ?? "idle",
        target_version: r?.target_version ?? null,
        last_error: r?.last_error ?? null,
        last_check_at: iso(r?.last_check_at ?? null),
      });
    }
    return out;
  }

  /** Throws unless the caller is an Admin who sees every site (install commands). */
  static canSeeInstallCommands(p: Principal): boolean {
    return p.sites === "all" && (p.role === "Admin" || p.kind === "system");
  }
}
