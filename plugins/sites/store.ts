/**
 * The sites table: the only SQL that names it.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { conflict, notFound } from "../../core/errors.ts";
import type { Site, SitesService } from "./api.ts";

const taken = (name: string) => conflict("site_exists", `a site named ${name} already exists`);

/** Sites in PostgreSQL. */
export class SiteStore implements SitesService {
  constructor(private readonly sql: Sql, private readonly clock: Clock) {}

  async list(ids?: readonly number[]): Promise<Site[]> {
    const sql = this.sql;
    return [
      ...await sql<Site[]>`
        select id, name, description, created_at, updated_at from sites
        ${ids ? sql`where id = any(${[...ids]}::int[])` : sql``}
        order by lower(name), id`,
    ];
  }

  async get(id: number): Promise<Site | null> {
    const [site] = await this.list([id]);
    return site ?? null;
  }

  async missing(ids: readonly number[]): Promise<number[]> {
    const wanted = [...new Set(ids)];
    if (!wanted.length) return [];
    const rows = await this.sql<{ id: number }[]>`
      select id from sites where id = any(${wanted}::int[])`;
    const known = new Set(rows.map((r) => Number(r.id)));
    return wanted.filter((id) => !known.has(id)).sort((a, b) => a - b);
  }

  async create(input: { name: string; description: string }, tx?: Sql): Promise<Site> {
    const sql = tx ?? this.sql;
    const now = new Date(this.clock.now());
    const [dupe] = await sql`select 1 from sites where lower(name) = lower(${input.name})`;
    if (dupe) throw taken(input.name);
    const [row] = await sql<Site[]>`
      insert into sites (name, description, created_at, updated_at)
      values (${input.name}, ${input.description}, ${now}, ${now})
      on conflict do nothing
      returning id, name, description, created_at, updated_at`;
    if (!row) throw taken(input.name);
    return row;
  }

  async rename(id: number, name: string): Promise<Site> {
    const sql = this.sql;
    const [dupe] =
      await sql`select 1 from sites where lower(name) = lower(${name}) and id <> ${id}`;
    if (dupe) throw taken(name);
    const [row] = await sql<Site[]>`
      update sites set name = ${name}, updated_at = ${new Date(this.clock.now())} where id = ${id}
      returning id, name, description, created_at, updated_at`;
    if (!row) throw notFound(`no site ${id}`);
    return row;
  }

  async delete(ids: readonly number[]): Promise<number> {
    const r = await this.sql`delete from sites where id = any(${[...ids]}::int[])`;
    return r.count;
  }
}
