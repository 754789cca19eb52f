/**
 * The operators' side of enrollment (upstream §1.4): the approval queue with
 * hostname-conflict analysis, approve (resolving a conflict) and deny, the masked
 * wrong-code log, expiry and pruning, and the "approvals" operator notices.
 *
 * @module
 */
import type { Principal } from "../../core/auth.ts";
import { canSeeSite } from "../../core/auth.ts";
import { conflict, HttpError, notFound } from "../../core/errors.ts";
import { operatorNotice } from "../../core/notices.ts";
import { fmtGuid } from "../inventory/mod.ts";
import type { EnrollmentOptions } from "./service.ts";

/** A row of `device_approvals`. */
export interface ApprovalRow {
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

/** The approval queue. */
export class ApprovalQueue {
  readonly #o: EnrollmentOptions;

  constructor(o: EnrollmentOptions) {
    this.#o = o;
  }

  /** An operator notice on the "approvals" topic (sent once, by the instance that acted). */
  async notify(type: string, data: Record<string, unknown>, siteId: number | null) {
    try {
      await this.#o.events.publish(operatorNotice, {
        topic: "approvals",
        type,
        data,
        site_id: siteId,
      });
    } catch (err) {
      // A console notification must never fail the enrollment itself.
      this.#o.log.warn(`approval notification failed: ${err instanceof Error ? err.message : err}`);
    }
  }

  /** Approvals the principal may see, with hostname-conflict analysis. */
  async list(p: Principal, status: string): Promise<Record<string, unknown>[]> {
    const { sql } = this.#o;
    await this.expire();
    const approvals = await sql<(ApprovalRow & { site_name: string | null })[]>`
      select a.*, s.name as site_name
      from device_approvals a
      left join site_view s on s.id = a.site_id
      where ${status === "all" ? sql`true` : sql`a.status = ${status}`}
        and ${p.sites === "all" ? sql`true` : sql`a.site_id = any(${[...p.sites]}::int[])`}
      order by a.created_at desc limit 1000`;
    // The device holding each claimed hostname (another device than the approval's own).
    const owners = await this.#o.devices.hostnameOwners(approvals.map((a) => a.hostname_claimed));
    const rows = approvals.map((a) => {
      const d = owners.get(a.hostname_claimed.toLowerCase());
      const other = d && (a.guid === null || d.guid.toLowerCase() !== a.guid.toLowerCase());
      return {
        ...a,
        c_guid: other ? d.guid : null,
        c_fp: other ? d.ssl_key_fingerprint : null,
        c_site: other ? d.site_id : null,
        c_site_name: other ? d.site_name : null,
      };
    });
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
          alternate = await this.#o.devices.freeHostname(r.hostname_claimed, r.id);
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
    const now = new Date(this.#o.clock.now());
    const r = await sql`
      update device_approvals set status = 'approved', guid = ${guid}, decided_at = ${now},
        updated_at = ${now}, approved_by_user_id = ${p.id}, approved_by_username = ${p.name},
        conflict_resolution = ${resolution ?? null}
      where id = ${row.id} and status = 'pending'`;
    if (!r.count) throw conflict("approval_not_pending", "approval is no longer pending");
    await this.notify("device_approval_updated", {
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
    const now = new Date(this.#o.clock.now());
    const r = await sql`
      update device_approvals set status = 'denied', decided_at = ${now}, updated_at = ${now},
        approved_by_user_id = ${p.id}, approved_by_username = ${p.name}
      where id = ${row.id} and status = 'pending'`;
    if (!r.count) throw conflict("approval_not_pending", `approval is ${row.status}, not pending`);
    await this.notify("device_approval_updated", {
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
    const now = new Date(this.#o.clock.now());
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
