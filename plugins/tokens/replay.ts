/**
 * The DPoP `jti` replay cache. PostgreSQL is the authority, so a proof replayed against
 * another engine instance is caught too; a short in-memory front catches same-instance
 * replays without a round trip and keeps duplicates out of one batch. Claims are
 * batched (see batcher.ts), one INSERT … ON CONFLICT per batch.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { Batcher } from "../../core/batcher.ts";
import type { ReplayCache } from "./dpop.ts";

/** How long the memory front remembers a key (the database remembers it for its whole life). */
const FRONT_MS = 30_000;

/** A replay cache shared by all engine instances through PostgreSQL. */
export class SharedReplayCache implements ReplayCache {
  #front = new Map<string, number>();
  #batcher: Batcher<{ key: string; expiresAt: number }, boolean>;

  constructor(private readonly sql: Sql, private readonly clock: Clock) {
    this.#batcher = new Batcher(
      async (items) => {
        const keys = items.map((i) => i.key);
        const exp = items.map((i) => new Date(i.expiresAt).toISOString());
        const now = new Date(this.clock.now());
        // An expired row left by the pruner may be reused; a live one means replay.
        const rows = await sql<{ key: string }[]>`
        insert into dpop_jti (key, expires_at)
        select * from unnest(${keys}::text[], ${exp}::timestamptz[])
        on conflict (key) do update set expires_at = excluded.expires_at
          where dpop_jti.expires_at < ${now}
        returning key`;
        const won = new Set(rows.map((r) => r.key));
        return keys.map((k) => won.has(k));
      },
      1000,
      4,
    );
  }

  async claim(key: string, expiresAt: number): Promise<boolean> {
    const now = this.clock.now();
    this.#sweep(now);
    if (this.#front.has(key)) return false;
    this.#front.set(key, now);
    return await this.#batcher.add({ key, expiresAt });
  }

  #sweep(now: number): void {
    // Map keeps insertion order, which is time order here.
    for (const [k, at] of this.#front) {
      if (now - at < FRONT_MS) break;
      this.#front.delete(k);
    }
  }

  /** Deletes expired rows (a cluster-singleton task). */
  async prune(): Promise<number> {
    const r = await this.sql`delete from dpop_jti where expires_at < ${new Date(this.clock.now())}`;
    return r.count;
  }
}
