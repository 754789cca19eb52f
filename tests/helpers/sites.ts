/**
 * Sites with given ids for tests that assign operators, credentials or directory mappings
 * to site ids without going through the inventory's `/api/sites` (an engine of the vault and
 * the operators alone). Every site id is a foreign key to the sites plugin's table, so the
 * sites must exist; they are named `site-<id>`.
 *
 * @module
 */
import type { TestEngine } from "./test_engine.ts";

/** Creates the sites among `ids` that do not exist yet, keeping later ids above them. */
export async function ensureSites(t: TestEngine, ids: readonly number[]): Promise<void> {
  if (!ids.length) return;
  const now = new Date(t.clock.now());
  const sql = t.engine.sql;
  await sql`
    insert into sites (id, name, description, created_at, updated_at)
    overriding system value
    select id, 'site-' || id, '', ${now}, ${now} from unnest(${[...new Set(ids)]}::int[]) as id
    on conflict do nothing`;
  await sql`
    select setval(pg_get_serial_sequence('sites', 'id'), (select max(id) from sites))`;
}
