/**
 * The software lists agents report, as other plugins read them: the
 * `device_software_inventory` table stays this plugin's, and a reader (a watchdog's
 * software rule) asks here for the entries whose normalized names match.
 *
 * @module
 */
import type { Sql } from "../../core/db.ts";

/** One reported package of one device. */
export interface SoftwareRow {
  /** As stored (lower case). */
  device_guid: string;
  name: string;
  name_normalized: string;
  version: string;
  source: string;
}

/** Reads the reported software lists. */
export class SoftwareInventory {
  constructor(private readonly sql: Sql) {}

  /**
   * Entries whose normalized name matches any of the `LIKE` patterns (escaped by the
   * caller), on every device or on the given GUIDs, in one query.
   */
  async matching(patterns: readonly string[], guids?: readonly string[]): Promise<SoftwareRow[]> {
    if (!patterns.length) return [];
    const sql = this.sql;
    return [
      ...await sql<SoftwareRow[]>`
        select device_guid::text, name, name_normalized, version, source
        from device_software_inventory
        where name_normalized like any(${[...patterns]}::text[])
          ${guids ? sql`and device_guid = any(${[...guids]}::uuid[])` : sql``}`,
    ];
  }
}
