/**
 * The enrollment protocol (upstream §3.2) and the approval queue (§1.4).
 *
 * request: code → site, key possession is proven later at poll time; rate limited per
 * IP and per key fingerprint; wrong codes are recorded masked.
 * poll: the agent signs server_nonce ‖ approval_reference ‖ client_nonce with its
 * identity key; once approved the first valid proof finalizes the device and returns
 * tokens, and the same proof can never be used again.
 *
 * @module
 */
import type { Principal } from "../../core/auth.ts";
import { canSeeSite } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { badRequest, conflict, HttpError, notFound } from "../../core/errors.ts";
import type { EventBus } from "../../core/events.ts";
import { eventKey } from "../../core/events.ts";
import type { Logger } from "../../core/log.ts";
import {
  digestsEqual,
  fmtGuid,
  type InventoryService,
  maskEnrollmentCode,
} from "../inventory/mod.ts";
import { RateLimiter, type TokenService, type VerifiedProof } from "../tokens/mod.ts";
import { type AgentKey, decodeBase64Loose, parseAgentKey, proofInput } from "./identity_key.ts";

/** Published when a new approval waits for an operator. */
export const approvalPending = eventKey<{
  id: string;
  approval_reference: string;
  site_id: number | null;
  hostname: string;
}>("enrollment.approval_pending");

/** Published when a device finalizes enrollment. */
export const deviceEnrolled = eventKey<{
  guid: string;
  hostname: string;
  site_id: number | null;
  new_device: boolean;
}>("enrollment.device_enrolled");

/** Who approved automatically. */
export const AUTO_APPROVER = "site_auto_approval";

const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const b64 = (b: Uint8Array) => {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
};

/**
 * Maps an install token to the site it enrolls into (the agent_updates plugin provides
 * it). Returns null for a token that is unknown, revoked, expired or used up.
 */
export type InstallTokenResolver = (
  token: string,
  who: { hostname: string; fingerprint: string; ip: string | null },
) => Promise<{ siteId: number; autoApprove: boolean } | null>;

/** Body of `POST /api/agent/enroll/request`. */
export interface EnrollRequest {
  hostname?: string;
  enrollment_code?: string;
  /** A site install token instead of the enrollment code (install commands carry one). */
  install_token?: string;
  agent_pubkey?: string;
  client_nonce?: string;
  onboarding_context?: { job_id?: string; run_id?: string; target?: string };
}

/** Body of `POST /api/agent/enroll/poll`. */
export interface EnrollPoll {
  approval_reference?: string;
  client_nonce?: string;
  proof_sig?: string;
}

interface ApprovalRow {
  id: string;
  approval_reference: string;
  guid: string | null;
  hostname_claimed: string;
  ssl_key_fingerprint_claimed: string;
  site_id: number | null;
  status: "pending" | "approved" | "denied" | "expired" | "completed";
  client_nonce: Uint8Array;
  server_nonce: Uint8Array;
  agent_pubkey_der: Uint8Array;
  created_at: Date;
  updated_at: Date;
  expires_at: Date;
  decided_at: Date | null;
  approved_by_user_id: string | null;
  approved_by_username: string | null;
  conflict_resolution: string | null;
  remote_addr: string | null;
}

/** Options of {@link EnrollmentService}. */
export interface EnrollmentOptions {
  sql: Sql;
  clock: Clock;
  log: Logger;
  events: EventBus;
  inventory: InventoryService;
  tokens: TokenService;
  ipPerMinute: number;
  fingerprintPerMinute: number;
  approvalTtlMs: number;
  /**
   * Pushes an approval-queue event to operator consoles (the realtime plugin's
   * "approvals" topic, when it is loaded), filtered by site. Called only on the instance
   * that handled the request, so a cluster sends each event once.
   */
  notifyOperators?: (
    type: string,
    data: Record<string, unknown>,
    siteId: number | null,
  ) => Promise<void>;
}

/** The response of a poll (and the HTTP status to send it with). */
export interface PollResult {
  status: number;
  body: Record<string, unknown>;
}

/** Enrollment and approvals. */
export class EnrollmentService {
  readonly #o: EnrollmentOptions;
  readonly #ipLimit: RateLimiter;
  readonly #fpLimit: RateLimiter;
  #installTokens?: InstallTokenResolver;

  constructor(o: EnrollmentOptions) {
    this.#o = o;
    this.#ipLimit = new RateLimiter(
      o.clock,
      o.ipPerMinute,
      60_000,
      "too many enrollment requests from this address",
    );
    this.#fpLimit = new RateLimiter(
      o.clock,
      o.fingerprintPerMinute,
      60_000,
      "too many enrollment requests for this key",
    );
  }

  #now(): Date {
    return new Date(this.#o.clock.now());
  }

  /** Lets a plugin admit agents by install token (agent_updates). */
  setInstallTokenResolver(resolver: InstallTokenResolver): void {
    this.#installTokens = resolver;
  }

  // ------------------------------------------------------------ agent side

  /** Handles `enroll/request`. */
  async request(body: EnrollRequest, ip: string | null): Promise<Record<string, unknown>> {
    const { sql, inventory } = this.#o;
    this.#ipLimit.hit(`ip:${ip ?? "unknown"}`);
    const hostname = body.hostname?.trim() ?? "";
    if (!hostname) throw badRequest("hostname_required", "hostname is required");
    if (!HOSTNAME.test(hostname)) {
      throw badRequest(
        "invalid_hostname",
        "hostname may hold letters, digits, '.', '_' and '-' (max 255)",
      );
    }
    const code = body.enrollment_code?.trim() ?? "";
    const installToken = body.install_token?.trim() ?? "";
    if (!code && !installToken) {
      throw badRequest(
        "enrollment_code_required",
        "enrollment_code (or install_token) is required",
      );
    }
    if (!body.agent_pubkey?.trim()) {
      throw badRequest("agent_pubkey_required", "agent_pubkey is required");
    }
    if (!body.client_nonce?.trim()) {
      throw badRequest("client_nonce_required", "client_nonce is required");
    }
    const der = decodeBase64Loose(body.agent_pubkey);
    if (!der || der.length < 10) {
      throw badRequest("invalid_agent_pubkey", "agent_pubkey is not base64 SPKI DER");
    }
    const key = await parseAgentKey(der);
    if (!key) {
      throw badRequest("invalid_agent_pubkey", "agent_pubkey must be an Ed25519 SPKI public key");
    }
    this.#fpLimit.hit(`fp:${key.fingerprint}`);
    const clientNonce = decodeBase64Loose(body.client_nonce);
    if (!clientNonce || clientNonce.length < 16 || clientNonce.length > 256) {
      throw badRequest("invalid_client_nonce", "client_nonce must be base64 of 16 to 256 bytes");
    }
    let tokenAuto = false;
    let site: { id: number; auto_approve_until: Date | null } | null;
    if (installToken && !code) {
      // Same rate limits as codes (above); a failure is recorded like a wrong code.
      const r = await this.#installTokens?.(installToken, {
        hostname,
        fingerprint: key.fingerprint,
        ip,
      }) ?? null;
      site = r ? { id: r.siteId, auto_approve_until: null } : null;
      tokenAuto = r?.autoApprove ?? false;
    } else site = await inventory.siteByCode(code);
    const now = this.#now();
    if (!site) {
      const mask = maskEnrollmentCode(code || installToken);
      await sql`
        insert into enrollment_code_failures (hostname_claimed, ssl_key_fingerprint_claimed,
          enrollment_code_mask, remote_addr, first_seen_at, last_seen_at, attempt_count, last_error)
        values (${hostname}, ${key.fingerprint}, ${mask}, ${ip}, ${now}, ${now}, 1, 'invalid_enrollment_code')
        on conflict (ssl_key_fingerprint_claimed) do update set
          hostname_claimed = excluded.hostname_claimed, enrollment_code_mask = excluded.enrollment_code_mask,
          remote_addr = excluded.remote_addr, last_seen_at = excluded.last_seen_at,
          attempt_count = enrollment_code_failures.attempt_count + 1, last_error = excluded.last_error`;
      if (!code) {
        this.#o.log.warn(
          `enrollment with a refused install token (${mask}) from ${ip ?? "?"} for ${hostname}`,
        );
        throw badRequest(
          "invalid_install_token",
          "the install token is not valid, revoked or expired",
        );
      }
      this.#o.log.warn(`enrollment with a wrong code (${mask}) from ${ip ?? "?"} for ${hostname}`);
      throw badRequest("invalid_enrollment_code", "the enrollment code is not valid");
    }
    await sql`delete from enrollment_code_failures where ssl_key_fingerprint_claimed = ${key.fingerprint}`;

    // Auto-approval: new hostnames and same-key re-enrollments only; conflicts and purged
    // identities stay pending for an operator.
    let auto: { guid: string | null } | null = null;
    if (
      tokenAuto ||
      (site.auto_approve_until && site.auto_approve_until.getTime() > now.getTime())
    ) {
      auto = await this.#autoDecision(hostname, key.fingerprint);
    }
    const serverNonce = crypto.getRandomValues(new Uint8Array(32));
    const expires = new Date(now.getTime() + this.#o.approvalTtlMs);
    const status = auto ? "approved" : "pending";
    const ctxJob = body.onboarding_context;
    const [existing] = await sql<ApprovalRow[]>`
      select * from device_approvals
      where ssl_key_fingerprint_claimed = ${key.fingerprint} and status in ('pending', 'approved')
      order by updated_at desc limit 1`;
    let row: ApprovalRow;
    if (
      existing && existing.status === "approved" && existing.site_id === site.id &&
      existing.hostname_claimed.toLowerCase() === hostname.toLowerCase()
    ) {
      // Already approved (the agent restarted before polling): fresh nonces, same decision.
      [row] = await sql<ApprovalRow[]>`
        update device_approvals set client_nonce = ${clientNonce}, server_nonce = ${serverNonce},
          agent_pubkey_der = ${der}, updated_at = ${now}, remote_addr = ${ip}
        where id = ${existing.id} returning *` as unknown as [ApprovalRow];
    } else if (existing && existing.status === "pending") {
      [row] = await sql<ApprovalRow[]>`
        update device_approvals set hostname_claimed = ${hostname}, site_id = ${site.id},
          client_nonce = ${clientNonce}, server_nonce = ${serverNonce}, agent_pubkey_der = ${der},
          updated_at = ${now}, expires_at = ${expires}, remote_addr = ${ip}, status = ${status},
          guid = ${auto?.guid ?? null},
          approved_by_user_id = ${auto ? AUTO_APPROVER : null},
          approved_by_username = ${auto ? AUTO_APPROVER : null},
          conflict_resolution = ${auto?.guid ? "auto_merge_fingerprint" : null},
          decided_at = ${auto ? now : null}
        where id = ${existing.id} returning *` as unknown as [ApprovalRow];
    } else {
      [row] = await sql<ApprovalRow[]>`
        insert into device_approvals (id, approval_reference, guid, hostname_claimed,
          ssl_key_fingerprint_claimed, site_id, status, client_nonce, server_nonce, agent_pubkey_der,
          created_at, updated_at, expires_at, decided_at, approved_by_user_id, approved_by_username,
          conflict_resolution, remote_addr, onboarding_job_id, onboarding_run_id, onboarding_target)
        values (${crypto.randomUUID()}, ${crypto.randomUUID()}, ${auto?.guid ?? null}, ${hostname},
          ${key.fingerprint}, ${site.id}, ${status}, ${clientNonce}, ${serverNonce}, ${der},
          ${now}, ${now}, ${expires}, ${auto ? now : null}, ${auto ? AUTO_APPROVER : null},
          ${auto ? AUTO_APPROVER : null}, ${auto?.guid ? "auto_merge_fingerprint" : null}, ${ip},
          ${str(ctxJob?.job_id)}, ${str(ctxJob?.run_id)}, ${str(ctxJob?.target)})
        returning *` as unknown as [ApprovalRow];
      if (!auto) await this.#announcePending(row);
    }
    const approved = row.status === "approved";
    return {
      status: row.status,
      approval_reference: row.approval_reference,
      server_nonce: b64(serverNonce),
      poll_after_ms: approved ? 250 : 3000,
      signing_key: await this.#o.tokens.scriptSigningKey(),
      ...(auto ? { auto_approved: true } : {}),
    };
  }

  /** Tells operators a request waits for them (bus event + console push). */
  async #announcePending(row: ApprovalRow): Promise<void> {
    const event = {
      id: row.id,
      approval_reference: row.approval_reference,
      site_id: row.site_id,
      hostname: row.hostname_claimed,
    };
    await this.#o.events.publish(approvalPending, event);
    await this.#notify("device_approval_pending", event, row.site_id);
  }

  async #notify(type: string, data: Record<string, unknown>, siteId: number | null) {
    try {
      await this.#o.notifyOperators?.(type, data, siteId);
    } catch (err) {
      // A console notification must never fail the enrollment itself.
      this.#o.log.warn(`approval notification failed: ${err instanceof Error ? err.message : err}`);
    }
  }

  async #autoDecision(
    hostname: string,
    fingerprint: string,
  ): Promise<{ guid: string | null } | null> {
    const sql = this.#o.sql;
    const [barrier] = await sql`
      select 1 from device_purge_barriers
      where ssl_key_fingerprint = ${fingerprint} or lower(last_hostname) = lower(${hostname}) limit 1`;
    if (barrier) return null;
    const [dev] = await sql<{ guid: string; ssl_key_fingerprint: string | null; status: string }[]>`
      select guid, ssl_key_fingerprint, status from devices where lower(hostname) = lower(${hostname})`;
    if (!dev) return { guid: null };
    if (dev.ssl_key_fingerprint === fingerprint && dev.status === "active") {
      return { guid: dev.guid };
    }
    return null;
  }

  /** Handles `enroll/poll`. `dpop` is a verified proof when the agent bound a DPoP key. */
  async poll(
    body: EnrollPoll,
    verifyDpop: () => Promise<VerifiedProof | null>,
  ): Promise<PollResult> {
    const { sql } = this.#o;
    const ref = body.approval_reference?.trim() ?? "";
    if (!ref || !body.client_nonce || !body.proof_sig) {
      throw badRequest(
        "invalid_request",
        "approval_reference, client_nonce and proof_sig are required",
      );
    }
    const [row] = /^[0-9a-fA-F-]{36}$/.test(ref)
      ? await sql<ApprovalRow[]>`select * from device_approvals where approval_reference = ${ref}`
      : [];
    if (!row) {
      return {
        status: 404,
        body: { status: "unknown", error: "unknown_approval", message: "no such approval" },
      };
    }
    const clientNonce = decodeBase64Loose(body.client_nonce);
    const stored = new Uint8Array(row.client_nonce);
    if (!clientNonce || !digestsEqual(toHex(clientNonce), toHex(stored))) {
      throw badRequest("nonce_mismatch", "client_nonce does not match the request");
    }
    const serverNonce = new Uint8Array(row.server_nonce);
    if (serverNonce.length !== 32) {
      throw badRequest("server_nonce_invalid", "stored server nonce is invalid");
    }
    const key: AgentKey | null = await parseAgentKey(new Uint8Array(row.agent_pubkey_der));
    if (!key) throw badRequest("agent_pubkey_invalid", "stored agent key is invalid");
    const sig = decodeBase64Loose(body.proof_sig);
    let valid = false;
    if (sig && sig.length === 64) {
      valid = await crypto.subtle.verify(
        { name: "Ed25519" },
        key.key,
        sig as BufferSource,
        proofInput(serverNonce, row.approval_reference, clientNonce) as BufferSource,
      );
    }
    if (!valid) throw badRequest("invalid_proof", "proof_sig does not verify under the agent key");

    const now = this.#now();
    if (
      (row.status === "pending" || row.status === "approved") &&
      row.expires_at.getTime() <= now.getTime()
    ) {
      await sql`update device_approvals set status = 'expired', updated_at = ${now}
                where id = ${row.id} and status in ('pending', 'approved')`;
      return { status: 200, body: { status: "expired" } };
    }
    switch (row.status) {
      case "pending":
        return { status: 200, body: { status: "pending", poll_after_ms: 5000 } };
      case "denied":
        return { status: 200, body: { status: "denied", reason: "operator_denied" } };
      case "expired":
        return { status: 200, body: { status: "expired" } };
      case "completed": {
        // The proof that finalized this approval must not be answered twice.
        const [seen] = await sql`
          select 1 from enrollment_proof_replays
          where key = ${`${row.approval_reference}:${b64(sig!)}`} and expires_at > ${now}`;
        if (seen) throw conflict("proof_replayed", "this proof was already used");
        return { status: 200, body: { status: "approved", detail: "finalized" } };
      }
      case "approved":
        break;
      default:
        throw badRequest("invalid_status", "approval is in an unexpected state");
    }
    const proof = await verifyDpop();
    const replayKey = `${row.approval_reference}:${b64(sig!)}`;
    const claimed = await sql`
      insert into enrollment_proof_replays (key, expires_at) values (${replayKey}, ${new Date(
      now.getTime() + 300_000,
    )})
      on conflict (key) do update set expires_at = excluded.expires_at
        where enrollment_proof_replays.expires_at < ${now}
      returning key`;
    if (!claimed.count) throw conflict("proof_replayed", "this proof was already used");
    try {
      const body = await this.#finalize(row, key, proof?.jkt ?? key.jkt);
      if (body === null) {
        // Purged after it was approved: back to the queue, and this proof may be used
        // again once an operator approves afresh.
        await sql`delete from enrollment_proof_replays where key = ${replayKey}`;
        await this.#announcePending(row);
        return { status: 200, body: { status: "pending", poll_after_ms: 5000 } };
      }
      return { status: 200, body };
    } catch (err) {
      // Let the agent retry with the same proof when finalizing failed on our side.
      await sql`delete from enrollment_proof_replays where key = ${replayKey}`.catch(() => {});
      throw err;
    }
  }

  /**
   * Creates or updates the device and issues tokens. Returns null (and puts the approval
   * back to pending) when the GUID or key was purged after the approval was decided:
   * a purge barrier always demands a fresh decision.
   */
  async #finalize(
    row: ApprovalRow,
    key: AgentKey,
    jkt: string,
  ): Promise<Record<string, unknown> | null> {
    const { sql, tokens } = this.#o;
    // Unseal the signing key first: no tokens may be promised that cannot be signed.
    await tokens.keys.signer();
    const now = this.#now();
    const result = await sql.begin(async (txn) => {
      const tx = txn as unknown as Sql;
      const [locked] = await tx<ApprovalRow[]>`
        select * from device_approvals where id = ${row.id} for update`;
      if (!locked || locked.status !== "approved") {
        throw conflict("approval_not_approved", "approval is no longer awaiting finalization");
      }
      const [stale] = await tx`
        select 1 from device_purge_barriers
        where (guid = ${locked.guid ?? crypto.randomUUID()}
               or ssl_key_fingerprint = ${key.fingerprint})
          and purged_at > ${locked.decided_at ?? new Date(0)}
        limit 1`;
      if (stale) {
        await tx`
          update device_approvals set status = 'pending', guid = null, decided_at = null,
            approved_by_user_id = null, approved_by_username = null, conflict_resolution = null,
            updated_at = ${now}
          where id = ${locked.id}`;
        return null;
      }
      const guid = (locked.guid ?? crypto.randomUUID()).toLowerCase();
      const [existing] = await tx<
        {
          guid: string;
          hostname: string;
          ssl_key_fingerprint: string | null;
          token_version: number;
          status: string;
        }[]
      >`
        select guid, hostname, ssl_key_fingerprint, token_version, status from devices
        where guid = ${guid} for update`;
      let hostname: string;
      let tokenVersion: number;
      const explicit = locked.approved_by_user_id !== AUTO_APPROVER;
      if (!existing) {
        const [barrier] = await tx<{ required_token_version: number }[]>`
          select required_token_version from device_purge_barriers where guid = ${guid}`;
        tokenVersion = Math.max(1, barrier?.required_token_version ?? 1);
        hostname = await this.#freeHostname(tx, locked.hostname_claimed, guid);
        await tx`
          insert into devices (guid, hostname, site_id, created_at, last_enrollment_at,
            ssl_key_fingerprint, key_added_at, token_version, status, status_changed_at)
          values (${guid}, ${hostname}, ${locked.site_id}, ${now}, ${now}, ${key.fingerprint}, ${now},
            ${tokenVersion}, 'active', ${now})`;
      } else {
        hostname = existing.hostname;
        const keyChanged = existing.ssl_key_fingerprint !== null &&
          existing.ssl_key_fingerprint !== key.fingerprint;
        const reactivate = explicit && existing.status !== "active";
        tokenVersion = existing.token_version + (keyChanged || reactivate ? 1 : 0);
        await tx`
          update devices set ssl_key_fingerprint = ${key.fingerprint}, last_enrollment_at = ${now},
            key_added_at = ${
          existing.ssl_key_fingerprint === key.fingerprint ? tx`key_added_at` : now
        },
            token_version = ${tokenVersion}, site_id = ${locked.site_id},
            status = ${keyChanged || reactivate ? "active" : existing.status},
            status_changed_at = ${keyChanged || reactivate ? now : tx`status_changed_at`}
          where guid = ${guid}`;
        if (keyChanged || reactivate) await tokens.refresh.revokeDevice(guid, "key_changed", tx);
      }
      await tx`
        insert into device_keys (guid, ssl_key_fingerprint, added_at) values (${guid}, ${key.fingerprint}, ${now})
        on conflict (guid, ssl_key_fingerprint) do update set retired_at = null`;
      await tx`
        update device_keys set retired_at = ${now}
        where guid = ${guid} and ssl_key_fingerprint <> ${key.fingerprint} and retired_at is null`;
      await tx`delete from device_purge_barriers where guid = ${guid} or ssl_key_fingerprint = ${key.fingerprint}`;
      await tx`
        update device_approvals set status = 'completed', guid = ${guid}, updated_at = ${now}
        where id = ${locked.id}`;
      const refreshToken = await tokens.refresh.issue(guid, jkt, tx);
      return {
        guid,
        hostname,
        tokenVersion,
        refreshToken,
        newDevice: !existing,
        siteId: locked.site_id,
      };
    });
    if (result === null) return null;
    const access = await tokens.access.issue({
      guid: result.guid,
      ssl_key_fingerprint: key.fingerprint,
      token_version: result.tokenVersion,
      jkt,
    });
    await this.#o.events.publish(deviceEnrolled, {
      guid: fmtGuid(result.guid),
      hostname: result.hostname,
      site_id: result.siteId,
      new_device: result.newDevice,
    });
    await this.#notify("device_approval_updated", {
      id: row.id,
      status: "completed",
      site_id: result.siteId,
      hostname: result.hostname,
      guid: fmtGuid(result.guid),
    }, result.siteId);
    return {
      status: "approved",
      guid: fmtGuid(result.guid),
      hostname: result.hostname,
      access_token: access.token,
      expires_in: access.expiresIn,
      refresh_token: result.refreshToken,
      token_type: "DPoP",
      signing_key: await tokens.scriptSigningKey(),
    };
  }

  /** `host`, then `host-1` … `host-50`, then the GUID itself. */
  async #freeHostname(tx: Sql, wanted: string, guid: string): Promise<string> {
    const candidates = [wanted, ...Array.from({ length: 50 }, (_, i) => `${wanted}-${i + 1}`)];
    const taken = new Set(
      (await tx<{ h: string }[]>`
        select lower(hostname) as h from devices
        where lower(hostname) = any(${candidates.map((c) => c.toLowerCase())}::text[])`).map((r) =>
        r.h
      ),
    );
    return candidates.find((c) => !taken.has(c.toLowerCase())) ?? fmtGuid(guid);
  }

  // ------------------------------------------------------------ operator side

  /** Approvals the principal may see, with hostname-conflict analysis. */
  async listApprovals(p: Principal, status: string): Promise<Record<string, unknown>[]> {
    const { sql } = this.#o;
    await this.expire();
    const rows = await sql<(ApprovalRow & {
      site_name: string | null;
      c_guid: string | null;
      c_fp: string | null;
      c_site: number | null;
      c_site_name: string | null;
    })[]>`
      select a.*, s.name as site_name, d.guid as c_guid, d.ssl_key_fingerprint as c_fp,
             d.site_id as c_site, cs.name as c_site_name
      from device_approvals a
      left join sites s on s.id = a.site_id
      left join devices d on lower(d.hostname) = lower(a.hostname_claimed)
        and (a.guid is null or d.guid <> a.guid)
      left join sites cs on cs.id = d.site_id
      where ${status === "all" ? sql`true` : sql`a.status = ${status}`}
        and ${p.sites === "all" ? sql`true` : sql`a.site_id = any(${[...p.sites]}::int[])`}
      order by a.created_at desc limit 1000`;
    const out: Record<string, unknown>[] = [];
    for (const r of rows) {
      let conflictInfo: Record<string, unknown> | null = null;
      let alternate: string | null = null;
      if (r.c_guid) {
        const visible = canSeeSite(p, r.c_site);
        const match = r.c_fp === r.ssl_key_fingerprint_claimed;
        conflictInfo = {
          guid: visible ? fmtGuid(r.c_guid) : null,
          ssl_key_fingerprint: visible ? r.c_fp : null,
          site_id: visible ? r.c_site : null,
          site_name: visible ? r.c_site_name : null,
          fingerprint_match: match,
          requires_prompt: !match,
        };
        if (r.status === "pending") {
          alternate = await this.#freeHostname(sql, r.hostname_claimed, r.id);
        }
      }
      out.push({
        id: r.id,
        approval_reference: r.approval_reference,
        guid: r.guid ? fmtGuid(r.guid) : null,
        hostname_claimed: r.hostname_claimed,
        ssl_key_fingerprint_claimed: r.ssl_key_fingerprint_claimed,
        site_id: r.site_id,
        site_name: r.site_name,
        status: r.status,
        created_at: r.created_at.toISOString(),
        updated_at: r.updated_at.toISOString(),
        expires_at: r.expires_at.toISOString(),
        approved_by_user_id: r.approved_by_user_id,
        approved_by_username: r.approved_by_username,
        conflict_resolution: r.conflict_resolution,
        remote_addr: r.remote_addr,
        hostname_conflict: conflictInfo,
        alternate_hostname: alternate,
        conflict_requires_prompt: conflictInfo ? conflictInfo.requires_prompt : false,
      });
    }
    return out;
  }

  async #visibleApproval(p: Principal, id: string): Promise<ApprovalRow> {
    const { sql } = this.#o;
    const [row] = /^[0-9a-fA-F-]{36}$/.test(id)
      ? await sql<ApprovalRow[]>`select * from device_approvals where id = ${id}`
      : [];
    if (!row || !canSeeSite(p, row.site_id)) throw notFound(`no approval ${id}`);
    return row;
  }

  /** Approves a pending request, resolving a hostname conflict. */
  async approve(
    p: Principal,
    id: string,
    opts: { guid?: string; conflict_resolution?: "overwrite" | "coexist" },
  ): Promise<{ status: "approved"; guid: string | null; conflict_resolution?: string }> {
    const { sql, inventory } = this.#o;
    await this.expire();
    const row = await this.#visibleApproval(p, id);
    if (row.status !== "pending") {
      throw conflict("approval_not_pending", `approval is ${row.status}, not pending`);
    }
    let guid: string | null = null;
    let resolution: string | undefined;
    if (opts.guid) {
      const target = await inventory.visibleDevice(p, opts.guid);
      guid = target.guid.toLowerCase();
    }
    const owner = await inventory.deviceByHostname(row.hostname_claimed);
    if (owner && owner.guid.toLowerCase() !== guid) {
      const visible = canSeeSite(p, owner.site_id);
      if (
        owner.ssl_key_fingerprint === row.ssl_key_fingerprint_claimed && visible &&
        !opts.conflict_resolution
      ) {
        guid = owner.guid.toLowerCase();
        resolution = "auto_merge_fingerprint";
      } else if (opts.conflict_resolution === "overwrite") {
        if (!visible) throw notFound(`no device ${row.hostname_claimed}`);
        guid = owner.guid.toLowerCase();
        resolution = "overwrite";
      } else if (opts.conflict_resolution === "coexist") {
        guid = null;
        resolution = "coexist";
      } else {
        throw new HttpError(
          409,
          "conflict_resolution_required",
          `hostname ${row.hostname_claimed} belongs to another device; choose overwrite or coexist`,
          { hostname: row.hostname_claimed, options: ["overwrite", "coexist"] },
        );
      }
    }
    const now = this.#now();
    const r = await sql`
      update device_approvals set status = 'approved', guid = ${guid}, decided_at = ${now},
        updated_at = ${now}, approved_by_user_id = ${p.id}, approved_by_username = ${p.name},
        conflict_resolution = ${resolution ?? null}
      where id = ${row.id} and status = 'pending'`;
    if (!r.count) throw conflict("approval_not_pending", "approval is no longer pending");
    await this.#notify("device_approval_updated", {
      id: row.id,
      status: "approved",
      site_id: row.site_id,
      hostname: row.hostname_claimed,
    }, row.site_id);
    return {
      status: "approved",
      guid: guid ? fmtGuid(guid) : null,
      ...(resolution ? { conflict_resolution: resolution } : {}),
    };
  }

  /** Denies a pending request. */
  async deny(p: Principal, id: string): Promise<{ status: "denied" }> {
    const { sql } = this.#o;
    const row = await this.#visibleApproval(p, id);
    const now = this.#now();
    const r = await sql`
      update device_approvals set status = 'denied', decided_at = ${now}, updated_at = ${now},
        approved_by_user_id = ${p.id}, approved_by_username = ${p.name}
      where id = ${row.id} and status = 'pending'`;
    if (!r.count) throw conflict("approval_not_pending", `approval is ${row.status}, not pending`);
    await this.#notify("device_approval_updated", {
      id: row.id,
      status: "denied",
      site_id: row.site_id,
      hostname: row.hostname_claimed,
    }, row.site_id);
    return { status: "denied" };
  }

  /** Recent wrong-code attempts (masked). */
  async listFailures(): Promise<Record<string, unknown>[]> {
    const rows = await this.#o.sql<{
      id: string;
      hostname_claimed: string | null;
      ssl_key_fingerprint_claimed: string;
      enrollment_code_mask: string;
      remote_addr: string | null;
      first_seen_at: Date;
      last_seen_at: Date;
      attempt_count: number;
      last_error: string | null;
    }[]>`select * from enrollment_code_failures order by last_seen_at desc limit 1000`;
    return rows.map((r) => ({
      id: Number(r.id),
      hostname_claimed: r.hostname_claimed,
      ssl_key_fingerprint_claimed: r.ssl_key_fingerprint_claimed,
      enrollment_code_mask: r.enrollment_code_mask,
      remote_addr: r.remote_addr,
      first_seen_at: r.first_seen_at.toISOString(),
      last_seen_at: r.last_seen_at.toISOString(),
      attempt_count: r.attempt_count,
      last_error: r.last_error,
      status: "wrong_code",
    }));
  }

  /** Marks overdue approvals expired. */
  async expire(): Promise<number> {
    const now = this.#now();
    const r = await this.#o.sql`
      update device_approvals set status = 'expired', updated_at = ${now}
      where status in ('pending', 'approved') and expires_at <= ${now}`;
    return r.count;
  }

  /** Prunes wrong-code rows older than 24 h and stale proof-replay keys. */
  async prune(): Promise<void> {
    const now = this.#o.clock.now();
    await this.#o.sql`delete from enrollment_code_failures where last_seen_at < ${new Date(
      now - 86_400_000,
    )}`;
    await this.#o.sql`delete from enrollment_proof_replays where expires_at < ${new Date(now)}`;
  }
}

function str(v: unknown): string | null {
  return typeof v === "string" && v.length <= 200 ? v : null;
}
