/**
 * Sessions and API tokens. Both are 256-bit random bearer values of which only the
 * SHA-256 is stored; a session has an idle and an absolute timeout and may hold a Dev
 * Mode grant; an API token has a name, an expiry and may be read-only. Resolving a
 * bearer value yields the kernel {@link Principal}.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import type { Principal } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import type { Role } from "./users.ts";

/** Prefix of session bearer values (recognisable by secret scanners). */
export const SESSION_PREFIX = "bos_";
/** Prefix of API tokens. */
export const API_TOKEN_PREFIX = "boat_";

/** A fresh random bearer value with a prefix. */
export function randomToken(prefix: string): string {
  return prefix + Buffer.from(randomBytes(32)).toString("base64url");
}

/** SHA-256 hex of a bearer value: what the database stores. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** Timeouts from settings. */
export interface SessionTimeouts {
  idleMs: number;
  absoluteMs: number;
}

/** A session as listed to its owner or an admin. */
export interface SessionView {
  id: string;
  username: string;
  method: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  ip: string | null;
  user_agent: string | null;
  dev_mode_until: string | null;
  current: boolean;
}

/** An API token as listed (never its value). */
export interface TokenView {
  id: string;
  username: string;
  name: string;
  read_only: boolean;
  created_at: string;
  expires_at: string;
  last_used_at: string | null;
}

interface AuthRow {
  credential_id: string;
  user_id: string;
  username: string;
  role: Role;
  disabled: boolean;
  last_seen_at: Date | null;
  expires_at: Date;
  dev_mode_until: Date | null;
  read_only: boolean;
  site_ids: number[] | null;
}

// last_seen_at is written at most this often, so busy sessions do not write per request.
const TOUCH_EVERY_MS = 30_000;
// A resolved bearer value is trusted from memory this long. Every local change to a
// session, token, user or assignment clears the cache at once, and other instances
// clear theirs when the change event reaches them; this bound covers a lost event.
const CACHE_MS = 2_000;
const CACHE_MAX = 10_000;

interface CacheEntry {
  row: AuthRow;
  method: "session" | "api_token";
  cachedAt: number;
  /** Built once per load and shared by requests (principals are read-only). */
  principal?: Principal;
}

/** Sessions, API tokens and bearer resolution. */
export class SessionStore {
  #cache = new Map<string, CacheEntry>();
  /** Called after every local change that may alter a principal (other instances). */
  onChange?: () => void;

  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock,
    private readonly timeouts: SessionTimeouts,
  ) {}

  /** Forgets every cached principal (after any change to sessions, users or sites). */
  invalidate(broadcast = true): void {
    this.#cache.clear();
    this.#memo.clear();
    if (broadcast) this.onChange?.();
  }

  #memo = new Map<string, { value: unknown; at: number }>();

  /** Memoises a per-user read (such as `me`) under the same rules as principals. */
  async memo<T>(key: string, load: () => Promise<T>): Promise<T> {
    const now = this.clock.now();
    const hit = this.#memo.get(key);
    if (hit && now - hit.at <= CACHE_MS && now >= hit.at) return hit.value as T;
    const value = await load();
    if (this.#memo.size >= CACHE_MAX) this.#memo.clear();
    this.#memo.set(key, { value, at: now });
    return value;
  }

  /** Creates a session; returns its bearer value (shown once) and id. */
  async create(
    userId: string,
    opts: { method: string; ip?: string | null; userAgent?: string | null },
  ): Promise<{ id: string; token: string; expiresAt: Date }> {
    const token = randomToken(SESSION_PREFIX);
    const now = new Date(this.clock.now());
    const expiresAt = new Date(now.getTime() + this.timeouts.absoluteMs);
    const [row] = await this.sql<{ id: string }[]>`
      insert into operator_sessions (token_hash, user_id, method, created_at, last_seen_at,
                                     expires_at, ip, user_agent)
      values (${tokenHash(token)}, ${userId}, ${opts.method}, ${now}, ${now}, ${expiresAt},
              ${opts.ip ?? null}, ${opts.userAgent?.slice(0, 300) ?? null})
      returning id`;
    await this.sql`update users set last_login = ${now} where id = ${userId}`;
    return { id: row!.id, token, expiresAt };
  }

  /** Resolves a bearer value (session or API token) to a principal, or null. */
  async resolve(token: string): Promise<Principal | null> {
    if (token.length > 200) return null;
    const now = this.clock.now();
    // The in-memory cache is keyed by the bearer value itself (it is in this process's
    // memory for the request anyway), so a hit costs no hashing; only the database
    // holds nothing but the SHA-256.
    let entry = this.#cache.get(token);
    if (!entry || now - entry.cachedAt > CACHE_MS || now < entry.cachedAt) {
      const loaded = await this.#load(token, tokenHash(token));
      if (!loaded) {
        this.#cache.delete(token);
        return null;
      }
      if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
      entry = { ...loaded, cachedAt: now };
      this.#cache.set(token, entry);
    }
    const { row, method } = entry;
    if (row.disabled || row.expires_at.getTime() <= now) return null;
    if (method === "session") {
      if (now - row.last_seen_at!.getTime() > this.timeouts.idleMs) return null;
      if (now - row.last_seen_at!.getTime() > TOUCH_EVERY_MS) {
        row.last_seen_at = new Date(now);
        await this.sql`update operator_sessions set last_seen_at = ${row.last_seen_at}
                       where id = ${row.credential_id}`;
      }
    } else if (!row.last_seen_at || now - row.last_seen_at.getTime() > TOUCH_EVERY_MS) {
      row.last_seen_at = new Date(now);
      await this.sql`update api_tokens set last_used_at = ${row.last_seen_at}
                     where id = ${row.credential_id}`;
    }
    const devMode = !!row.dev_mode_until && row.dev_mode_until.getTime() > now;
    if (entry.principal?.devMode !== devMode) {
      entry.principal = {
        kind: "operator",
        id: row.user_id,
        name: row.username,
        role: row.role,
        sites: row.role === "Admin" ? "all" : Object.freeze((row.site_ids ?? []).map(Number)),
        devMode,
        readOnly: row.read_only || undefined,
        method,
        credentialId: row.credential_id,
      };
    }
    return entry.principal;
  }

  async #load(
    token: string,
    hash: string,
  ): Promise<{ row: AuthRow; method: "session" | "api_token" } | null> {
    if (token.startsWith(SESSION_PREFIX)) {
      const [row] = await this.sql<AuthRow[]>`
        select s.id as credential_id, u.id as user_id, u.username, u.role, u.disabled,
               s.last_seen_at, s.expires_at, s.dev_mode_until, false as read_only,
               (select array_agg(site_id order by site_id) from user_site_assignments a
                 where a.user_id = u.id) as site_ids
        from operator_sessions s join users u on u.id = s.user_id
        where s.token_hash = ${hash} and s.revoked_at is null`;
      return row ? { row, method: "session" } : null;
    }
    if (token.startsWith(API_TOKEN_PREFIX)) {
      const [row] = await this.sql<AuthRow[]>`
        select t.id as credential_id, u.id as user_id, u.username, u.role, u.disabled,
               t.last_used_at as last_seen_at, t.expires_at, null::timestamptz as dev_mode_until,
               t.read_only,
               (select array_agg(site_id order by site_id) from user_site_assignments a
                 where a.user_id = u.id) as site_ids
        from api_tokens t join users u on u.id = t.user_id
        where t.token_hash = ${hash} and t.revoked_at is null`;
      return row ? { row, method: "api_token" } : null;
    }
    return null;
  }

  /**
   * Which of these sessions and API tokens are still live (not revoked, expired, idle
   * past the timeout, nor of a disabled user), with the role and sites they carry now.
   * Long-lived connections (operator sockets) check themselves against this.
   */
  async liveCredentials(
    ids: readonly string[],
  ): Promise<Map<string, { role: Role; sites: "all" | number[] }>> {
    const out = new Map<string, { role: Role; sites: "all" | number[] }>();
    if (!ids.length) return out;
    const now = new Date(this.clock.now());
    const idleCutoff = new Date(now.getTime() - this.timeouts.idleMs);
    const rows = await this.sql<{ id: string; role: Role; site_ids: number[] | null }[]>`
      select c.id, u.role,
             (select array_agg(site_id order by site_id) from user_site_assignments a
               where a.user_id = u.id) as site_ids
      from (
        select id::text, user_id from operator_sessions
        where id::text = any(${ids as string[]}::text[]) and revoked_at is null
          and expires_at > ${now} and last_seen_at > ${idleCutoff}
        union all
        select id::text, user_id from api_tokens
        where id::text = any(${ids as string[]}::text[]) and revoked_at is null
          and expires_at > ${now}
      ) c join users u on u.id = c.user_id
      where not u.disabled`;
    for (const r of rows) {
      out.set(r.id, {
        role: r.role,
        sites: r.role === "Admin" ? "all" : (r.site_ids ?? []).map(Number),
      });
    }
    return out;
  }

  /** Revokes one session; returns false when it was not live. */
  async revoke(sessionId: string, userId?: string): Promise<boolean> {
    const now = new Date(this.clock.now());
    const r = userId
      ? await this.sql`update operator_sessions set revoked_at = ${now}
                       where id = ${sessionId} and user_id = ${userId} and revoked_at is null`
      : await this.sql`update operator_sessions set revoked_at = ${now}
                       where id = ${sessionId} and revoked_at is null`;
    this.invalidate();
    return r.count > 0;
  }

  /** Revokes every session of a user except `keep`; returns how many. */
  async revokeAll(userId: string, keep?: string): Promise<number> {
    const now = new Date(this.clock.now());
    const idleCutoff = new Date(now.getTime() - this.timeouts.idleMs);
    // Already-expired sessions are left alone: they cannot be used anyway.
    const r = await this.sql`update operator_sessions set revoked_at = ${now}
      where user_id = ${userId} and revoked_at is null and expires_at > ${now}
        and last_seen_at > ${idleCutoff} and id <> ${
      keep ?? "00000000-0000-0000-0000-000000000000"
    }`;
    this.invalidate();
    return r.count;
  }

  /** Live sessions, of one user or of everyone. */
  async list(userId: string | null, currentId?: string): Promise<SessionView[]> {
    const now = new Date(this.clock.now());
    const idleCutoff = new Date(now.getTime() - this.timeouts.idleMs);
    const rows = await this.sql<
      (
        & Omit<
          SessionView,
          "current" | "created_at" | "last_seen_at" | "expires_at" | "dev_mode_until"
        >
        & {
          created_at: Date;
          last_seen_at: Date;
          expires_at: Date;
          dev_mode_until: Date | null;
        }
      )[]
    >`
      select s.id, u.username, s.method, s.created_at, s.last_seen_at, s.expires_at, s.ip,
             s.user_agent, s.dev_mode_until
      from operator_sessions s join users u on u.id = s.user_id
      where s.revoked_at is null and s.expires_at > ${now} and s.last_seen_at > ${idleCutoff}
        and (${userId}::uuid is null or s.user_id = ${userId})
      order by s.created_at desc limit 500`;
    return rows.map((r) => ({
      ...r,
      created_at: r.created_at.toISOString(),
      last_seen_at: r.last_seen_at.toISOString(),
      expires_at: r.expires_at.toISOString(),
      dev_mode_until: r.dev_mode_until && r.dev_mode_until > now
        ? r.dev_mode_until.toISOString()
        : null,
      current: r.id === currentId,
    }));
  }

  /** Grants (ttl > 0) or ends (ttl = 0) Dev Mode on a session. */
  async setDevMode(sessionId: string, ttlMs: number): Promise<Date | null> {
    const until = ttlMs > 0 ? new Date(this.clock.now() + ttlMs) : null;
    await this.sql`update operator_sessions set dev_mode_until = ${until} where id = ${sessionId}`;
    this.invalidate();
    return until;
  }

  async devModeUntil(sessionId: string): Promise<Date | null> {
    const [r] = await this.sql<{ dev_mode_until: Date | null }[]>`
      select dev_mode_until from operator_sessions where id = ${sessionId}`;
    const until = r?.dev_mode_until ?? null;
    return until && until.getTime() > this.clock.now() ? until : null;
  }

  /** Issues an API token; the value is returned once. */
  async createToken(
    userId: string,
    opts: { name: string; ttlMs: number; readOnly: boolean },
  ): Promise<{ token: string; view: TokenView }> {
    const token = randomToken(API_TOKEN_PREFIX);
    const now = new Date(this.clock.now());
    const expires = new Date(now.getTime() + opts.ttlMs);
    const [row] = await this.sql<{ id: string; username: string }[]>`
      insert into api_tokens (token_hash, user_id, name, read_only, created_at, expires_at)
      values (${tokenHash(token)}, ${userId}, ${opts.name}, ${opts.readOnly}, ${now}, ${expires})
      returning id, (select username from users where id = ${userId}) as username`;
    return {
      token,
      view: {
        id: row!.id,
        username: row!.username,
        name: opts.name,
        read_only: opts.readOnly,
        created_at: now.toISOString(),
        expires_at: expires.toISOString(),
        last_used_at: null,
      },
    };
  }

  /** Live API tokens of a user, or of everyone. */
  async listTokens(userId: string | null): Promise<TokenView[]> {
    const now = new Date(this.clock.now());
    const rows = await this.sql<
      {
        id: string;
        username: string;
        name: string;
        read_only: boolean;
        created_at: Date;
        expires_at: Date;
        last_used_at: Date | null;
      }[]
    >`
      select t.id, u.username, t.name, t.read_only, t.created_at, t.expires_at, t.last_used_at
      from api_tokens t join users u on u.id = t.user_id
      where t.revoked_at is null and t.expires_at > ${now}
        and (${userId}::uuid is null or t.user_id = ${userId})
      order by t.created_at desc limit 500`;
    return rows.map((r) => ({
      ...r,
      created_at: r.created_at.toISOString(),
      expires_at: r.expires_at.toISOString(),
      last_used_at: r.last_used_at?.toISOString() ?? null,
    }));
  }

  /** Revokes a token (of `userId` only, unless null); returns its name or null. */
  async revokeToken(id: string, userId: string | null): Promise<string | null> {
    const [r] = await this.sql<{ name: string }[]>`
      update api_tokens set revoked_at = ${new Date(this.clock.now())}
      where id = ${id} and revoked_at is null and (${userId}::uuid is null or user_id = ${userId})
      returning name`;
    this.invalidate();
    return r?.name ?? null;
  }

  /** Revokes every API token of a user. */
  async revokeAllTokens(userId: string): Promise<void> {
    await this.sql`update api_tokens set revoked_at = ${new Date(this.clock.now())}
                   where user_id = ${userId} and revoked_at is null`;
    this.invalidate();
  }
}
