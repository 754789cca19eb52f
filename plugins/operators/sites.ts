/**
 * Site assignments of Users (`user_site_assignments`; its foreign key to the sites
 * plugin's table is declared in migrations/003_site_assignments_fk.sql).
 *
 * @module
 */
import type { Sql } from "../../core/db.ts";
import { badRequest } from "../../core/errors.ts";
import type { SitesService } from "../sites/mod.ts";

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

/** Refuses (400 `unknown_sites`) site ids that name no site. */
export async function requireKnownSites(
  sites: SitesService,
  siteIds: readonly number[],
): Promise<void> {
  const missing = await sites.missing(siteIds);
  if (missing.length) {
    throw badRequest("unknown_sites", "some sites do not exist", { site_ids: missing });
  }
}
