/**
 * Login throttling per submitted username (whether or not it exists, so throttling
 * reveals nothing) and per client address: after a few failures each further attempt
 * must wait a growing delay, and past a limit the key is locked out for a while.
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

/** Counts failures and answers how long a caller must wait. */
export class LoginThrottle {
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
      if (r.kind === "user") {
        wait = Math.max(
          wait,
          r.last_failure_at.getTime() + delayAfter(r.failures, this.limits.freeFailures) - now,
        );
      }
    }
    return Math.max(0, wait);
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
