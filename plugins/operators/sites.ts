/**
 * Site assignments of Users. The sites table belongs to the inventory plugin, so
 * site ids are plain integers here until inventory adds its foreign key.
 *
 * @module
 */
import type { Sql } from "../../core/db.ts";

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
