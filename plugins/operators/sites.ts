/**
 * Site assignments of Users. The sites table belongs to the inventory plugin, which
 * requires this one, so `user_site_assignments.site_id` cannot carry a foreign key from
 * this plugin's migrations; routes check ids against `sites` whenever that table exists.
 *
 * @module
 */
import type { Sql } from "../../core/db.ts";
import { badRequest } from "../../core/errors.ts";

/** Replaces a user's site assignments in one transaction. */
export async function assignSites(
  sql: Sql,
  userId: string,
  siteIds: readonly number[],
  now: Date,
): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`delete from user_site_assignments where user_id = ${userId}`;
    for (const site of new Set(siteIds)) {
      await tx`insert into user_site_assignments (user_id, site_id, assigned_at)
               values (${userId}, ${site}, ${now})`;
    }
  });
}

/**
 * Refuses (400 `unknown_sites`) site ids that are not in the inventory's `sites` table.
 * Without the inventory plugin there is no such table and any positive id is kept.
 */
export async function requireKnownSites(sql: Sql, siteIds: readonly number[]): Promise<void> {
  if (siteIds.length === 0) return;
  const [t] = await sql<{ present: boolean }[]>`
    select to_regclass('sites') is not null as present`;
  if (!t?.present) return;
  const ids = [...new Set(siteIds)];
  const rows = await sql<{ id: number }[]>`
    select id from sites where id in ${sql(ids)}`;
  const known = new Set(rows.map((r) => Number(r.id)));
  const missing = ids.filter((id) => !known.has(id));
  if (missing.length) {
    throw badRequest("unknown_sites", "some sites do not exist", { site_ids: missing });
  }
}
