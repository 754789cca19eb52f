/**
 * Login throttling per submitted username (whether or not it exists, so throttling
 * reveals nothing) and per client address: after a few failures each further attempt
 * must wait a growing delay, and past a limit the key is locked out for a while.
 * Addresses get more free failures before delays start than usernames do.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";

/** Throttle limits from settings. */
export interface ThrottleLimits {
  /** Failures per username before lockout. */
  userMaxFailures: number;
  /** Failures per address before lockout. */
  ipMaxFailures: number;
  lockoutMs: number;
  /** Failures before delays start. */
  freeFailures: number;
}

type Kind = "user" | "ip";

interface Row {
  kind: Kind;
  failures: number;
  last_failure_at: Date;
  locked_until: Date | null;
}

/** The wait after `failures` failures: none for the first few, then 1, 2, 4 … 60 s. */
export function delayAfter(failures: number, free: number): number {
  if (failures < free) return 0;
  return Math.min(60_000, 1000 * 2 ** (failures - free));
}

/** Attempts for one key that may run at once on this instance. */
const PARALLEL = { user: 1, ip: 4 } as const;

/** A counting semaphore per key, so parallel guesses cannot all pass the check at once. */
class Slots {
  #held = new Map<string, { n: number; waiters: Array<() => void> }>();

  async acquire(key: string, max: number): Promise<() => void> {
    let s = this.#held.get(key);
    if (!s) this.#held.set(key, s = { n: 0, waiters: [] });
    while (s.n >= max) await new Promise<void>((resolve) => s!.waiters.push(resolve));
    s.n++;
    return () => {
      s!.n--;
      const next = s!.waiters.shift();
      if (next) next();
      else if (s!.n === 0) this.#held.delete(key);
    };
  }
}

/** Counts failures and answers how long a caller must wait. */
export class LoginThrottle {
  #slots = new Slots();

  /**
   * Runs one sign-in attempt (check, verify, record) with at most one attempt per
   * username and a few per address in flight on this instance: without it a burst of
   * parallel guesses would all pass the wait check before the first failure is counted.
   */
  async serialize<T>(username: string, ip: string | null, attempt: () => Promise<T>): Promise<T> {
    const releaseUser = await this.#slots.acquire(
      `u:${username.toLowerCase().slice(0, 200)}`,
      PARALLEL.user,
    );
    try {
      const releaseIp = ip ? await this.#slots.acquire(`i:${ip}`, PARALLEL.ip) : () => {};
      try {
        return await attempt();
      } finally {
        releaseIp();
      }
    } finally {
      releaseUser();
    }
  }

  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock,
    private readonly limits: ThrottleLimits,
  ) {}

  /** Milliseconds the caller must still wait (0: may try now). */
  async waitMs(username: string, ip: string | null): Promise<number> {
    const rows = await this.sql<Row[]>`
      select kind, failures, last_failure_at, locked_until from login_throttle
      where (kind = 'user' and key = ${username.toLowerCase().slice(0, 200)})
         or (kind = 'ip' and key = ${ip ?? ""})`;
    const now = this.clock.now();
    let wait = 0;
    for (const r of rows) {
      // A counter idle for a lockout period starts over.
      if (now - r.last_failure_at.getTime() > this.limits.lockoutMs && !r.locked_until) continue;
      if (r.locked_until) wait = Math.max(wait, r.locked_until.getTime() - now);
      // An address may fail more often before delays start (one address can be a whole
      // office behind NAT), then its delays grow the same way.
      const free = r.kind === "user" ? this.limits.freeFailures : this.#ipFree();
      wait = Math.max(wait, r.last_failure_at.getTime() + delayAfter(r.failures, free) - now);
    }
    return Math.max(0, wait);
  }

  /** Failures per address before delays start: a fifth of the lockout limit, at least the per-user number. */
  #ipFree(): number {
    return Math.max(this.limits.freeFailures, Math.floor(this.limits.ipMaxFailures / 5));
  }

  /** Records a failed attempt. */
  async fail(username: string, ip: string | null): Promise<void> {
    const now = new Date(this.clock.now());
    const stale = new Date(now.getTime() - this.limits.lockoutMs);
    for (const { kind, key } of this.#keys(username, ip)) {
      const max = kind === "user" ? this.limits.userMaxFailures : this.limits.ipMaxFailures;
      const lockUntil = new Date(now.getTime() + this.limits.lockoutMs);
      await this.sql`
        insert into login_throttle (kind, key, failures, last_failure_at)
        values (${kind}, ${key}, 1, ${now})
        on conflict (kind, key) do update set
          failures = case
            when login_throttle.locked_until is not null and login_throttle.locked_until <= ${now}
              then 1
            when login_throttle.last_failure_at < ${stale} and login_throttle.locked_until is null
              then 1
            else login_throttle.failures + 1 end,
          locked_until = case
            when login_throttle.locked_until is not null and login_throttle.locked_until > ${now}
              then login_throttle.locked_until
            when login_throttle.locked_until is null and login_throttle.last_failure_at >= ${stale}
                 and login_throttle.failures + 1 >= ${max}
              then ${lockUntil}::timestamptz
            else null end,
          last_failure_at = ${now}`;
    }
  }

  /** Clears the username's counter after a successful login. */
  async succeed(username: string): Promise<void> {
    await this
      .sql`delete from login_throttle where kind = 'user' and key = ${username.toLowerCase()}`;
  }

  /** Deletes counters idle for longer than a lockout (housekeeping). */
  async prune(): Promise<void> {
    const cutoff = new Date(this.clock.now() - 2 * this.limits.lockoutMs);
    await this.sql`delete from login_throttle where last_failure_at < ${cutoff}
                   and (locked_until is null or locked_until < ${new Date(this.clock.now())})`;
  }

  #keys(username: string, ip: string | null): Array<{ kind: Kind; key: string }> {
    const keys: Array<{ kind: Kind; key: string }> = [
      { kind: "user", key: username.toLowerCase().slice(0, 200) },
    ];
    if (ip) keys.push({ kind: "ip", key: ip });
    return keys;
  }
}
