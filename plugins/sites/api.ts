/**
 * The sites plugin's public contract: its service key and the shape of a site.
 *
 * @module
 */
import type { Sql } from "../../core/db.ts";
import { serviceKey } from "../../core/plugin.ts";

/** A site as its owner stores it. */
export interface Site {
  id: number;
  name: string;
  description: string;
  created_at: Date;
  updated_at: Date;
}

/**
 * What other plugins do with sites. Writes take an optional transaction so a caller can
 * create a site together with rows of its own (inventory's enrollment code).
 */
export interface SitesService {
  /** Sites by id (every site when `ids` is omitted), by name. */
  list(ids?: readonly number[]): Promise<Site[]>;
  /** One site, or null. */
  get(id: number): Promise<Site | null>;
  /** The ids among `ids` that name no site (sorted, without duplicates). */
  missing(ids: readonly number[]): Promise<number[]>;
  /** Creates a site; 409 `site_exists` when the name is taken (case-insensitively). */
  create(input: { name: string; description: string }, tx?: Sql): Promise<Site>;
  /** Renames a site; 404 for an unknown id, 409 `site_exists` for a taken name. */
  rename(id: number, name: string): Promise<Site>;
  /** Deletes sites; what points at them goes with them or is detached (their owners' keys). */
  delete(ids: readonly number[]): Promise<number>;
}

/** Service key: `ctx.use(sitesKey)` in a plugin that requires "sites". */
export const sitesKey = serviceKey<SitesService>("sites.service");
