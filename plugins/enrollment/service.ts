/**
 * The enrollment protocol (upstream §3.2); the operators' approval queue (§1.4) is
 * approvals.ts, which this service fronts.
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
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { badRequest, conflict } from "../../core/errors.ts";
import type { EventBus } from "../../core/events.ts";
import { eventKey } from "../../core/events.ts";
import type { Logger } from "../../core/log.ts";
import { notice } from "../../core/notices.ts";
import {
  type DeviceStore,
  digestsEqual,
  fmtGuid,
  type InventoryService,
  maskEnrollmentCode,
} from "../inventory/mod.ts";
import { RateLimiter, type TokenService, type VerifiedProof } from "../tokens/mod.ts";
import { ApprovalQueue, type ApprovalRow } from "./approvals.ts";
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

/** Options of {@link EnrollmentService}. */
export interface EnrollmentOptions {
  sql: Sql;
  clock: Clock;
  log: Logger;
  events: EventBus;
  inventory: InventoryService;
  /** The inventory's device service: every write to devices goes through it. */
  devices: DeviceStore;
  tokens: TokenService;
  ipPerMinute: number;
  fingerprintPerMinute: number;
  approvalTtlMs: number;
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
  readonly #approvals: ApprovalQueue;

  constructor(o: EnrollmentOptions) {
    this.#o = o;
    this.#approvals = new ApprovalQueue(o);
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

  /**
   * Tells plugins and operators that a request waits: one bus message carries the
   * plugin event and its operator notice (the "approvals" topic).
   */
  async #announcePending(row: ApprovalRow): Promise<void> {
    const event = {
      id: row.id,
      approval_reference: row.approval_reference,
      site_id: row.site_id,
      hostname: row.hostname_claimed,
    };
    await this.#o.events.publish(approvalPending, event, {
      with: notice({
        topic: "approvals",
        type: "device_approval_pending",
        data: event,
        site_id: row.site_id,
      }),
    });
  }

  async #autoDecision(
    hostname: string,
    fingerprint: string,
  ): Promise<{ guid: string | null } | null> {
    const { devices } = this.#o;
    if (await devices.barred(hostname, fingerprint)) return null;
    const dev = await devices.byHostname(hostname);
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
    const { sql, tokens, devices } = this.#o;
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
      const stale = await devices.purgedSince(
        { guid: locked.guid, fingerprint: key.fingerprint },
        locked.decided_at ?? new Date(0),
        tx,
      );
      if (stale) {
        await tx`
          update device_approvals set status = 'pending', guid = null, decided_at = null,
            approved_by_user_id = null, approved_by_username = null, conflict_resolution = null,
            updated_at = ${now}
          where id = ${locked.id}`;
        return null;
      }
      const guid = (locked.guid ?? crypto.randomUUID()).toLowerCase();
      const existing = await devices.lockForEnrollment(guid, tx);
      let hostname: string;
      let tokenVersion: number;
      const explicit = locked.approved_by_user_id !== AUTO_APPROVER;
      const fingerprint = key.fingerprint;
      if (!existing) {
        const siteId = locked.site_id;
        const wanted = locked.hostname_claimed;
        ({ hostname, tokenVersion } = await devices.register(
          { guid, hostname: wanted, siteId, fingerprint },
          tx,
        ));
      } else {
        hostname = existing.hostname;
        const reactivate = explicit && existing.status !== "active";
        const rekeyed = await devices.rekey(
          existing,
          { siteId: locked.site_id, fingerprint, reactivate },
          tx,
        );
        tokenVersion = rekeyed.tokenVersion;
        if (rekeyed.rotated) await tokens.refresh.revokeDevice(guid, "key_changed", tx);
      }
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
    await this.#approvals.notify("device_approval_updated", {
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

  // ------------------------------------------------------------ operator side
  // The approval queue (approvals.ts); kept here so the service stays one object.

  /** Approvals the principal may see, with hostname-conflict analysis. */
  listApprovals(p: Principal, status: string): Promise<Record<string, unknown>[]> {
    return this.#approvals.list(p, status);
  }

  /** Approves a pending request, resolving a hostname conflict. */
  approve(
    p: Principal,
    id: string,
    opts: { guid?: string; conflict_resolution?: "overwrite" | "coexist" },
  ): Promise<{ status: "approved"; guid: string | null; conflict_resolution?: string }> {
    return this.#approvals.approve(p, id, opts);
  }

  /** Denies a pending request. */
  deny(p: Principal, id: string): Promise<{ status: "denied" }> {
    return this.#approvals.deny(p, id);
  }

  /** Recent wrong-code attempts (masked). */
  listFailures(): Promise<Record<string, unknown>[]> {
    return this.#approvals.listFailures();
  }

  /** Marks overdue approvals expired. */
  expire(): Promise<number> {
    return this.#approvals.expire();
  }

  /** Prunes wrong-code rows older than 24 h and stale proof-replay keys. */
  prune(): Promise<void> {
    return this.#approvals.prune();
  }
}

function str(v: unknown): string | null {
  return typeof v === "string" && v.length <= 200 ? v : null;
}
