/**
 * Device filters (upstream §1.11): site modes, basic (ANDed) or advanced (grouped)
 * criteria over device fields, text/number/version operators and optional regular
 * expressions. A filter compiles to ONE SQL query over devices, so resolving it for a
 * job or a watchdog costs one round trip however many devices match. Regular
 * expressions run in PostgreSQL's regex engine (no backtracking blow-ups of the JS kind)
 * under a statement timeout, so a hostile pattern costs bounded time.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";
import type { Principal } from "../../core/auth.ts";
import { id } from "../../core/fields.ts";
import { canSeeSite } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { badRequest, conflict, HttpError, notFound } from "../../core/errors.ts";
import type { PresenceService } from "./presence.ts";
import { fmtGuid } from "./service.ts";

type Fragment = ReturnType<Sql["unsafe"]>;

/** Text fields and the SQL that reads them. */
const TEXT_FIELDS = {
  hostname: "d.hostname",
  description: "d.description",
  site_name: "s.name",
  operating_system: "d.operating_system",
  device_type: "d.device_type",
  last_user: "d.last_user",
  internal_ip: "d.internal_ip",
  external_ip: "d.external_ip",
  domain: "d.domain",
  cpu_model: "(d.details->'cpu'->>'name')",
  agent_version: "d.agent_hash",
} as const;

const num = (expr: string) =>
  `(case when (${expr}) ~ '^\\s*-?[0-9]+(\\.[0-9]+)?\\s*$' then (${expr})::numeric end)`;
const arrayOf = (path: string) =>
  `(case when jsonb_typeof(${path}) = 'array' then ${path} else '[]'::jsonb end)`;

/** Number fields. `last_seen_age_minutes` and `status` are computed against the engine clock. */
const NUMBER_FIELDS = {
  total_ram_gb: `(${num("d.details->'summary'->>'total_ram'")} / 1073741824.0)`,
  storage_free_percent: `(select min(100 - ${num("e->>'usage'")}) from jsonb_array_elements(${
    arrayOf("d.details->'storage'")
  }) e)`,
} as const;

const FIELDS = [
  ...Object.keys(TEXT_FIELDS),
  "status",
  "presence",
  "last_seen_age_minutes",
  ...Object.keys(NUMBER_FIELDS),
  "installed_software",
] as const;

const TEXT_OPS = ["contains", "does_not_contain", "equals", "begins_with", "ends_with"] as const;
const NUMBER_OPS = ["eq", "gt", "gte", "lt", "lte"] as const;
const VERSION_OPS = ["matches", "older_than", "newer_than"] as const;
const SOURCES = ["local_installed", "windows_store", "dpkg", "rpm"] as const;

/** One condition. */
export const Condition = z.object({
  field: z.enum(FIELDS),
  operator: z.enum([...TEXT_OPS, ...NUMBER_OPS]),
  value: z.union([z.string().max(500), z.number()]),
  use_regex: z.boolean().optional(),
  join_with: z.enum(["AND", "OR", "and", "or"]).optional(),
  software_source: z.enum(SOURCES).optional(),
  version_operator: z.enum(VERSION_OPS).optional(),
  version_value: z.string().max(100).optional(),
}).openapi("DeviceFilterCondition");

const definitionShape = {
  name: z.string().trim().min(1).max(200),
  description: z.string().max(2000).default(""),
  criteria_mode: z.enum(["basic", "advanced"]).default("basic"),
  site_mode: z.enum(["global", "specific_sites", "global_exclusions"]).default("global"),
  site_ids: z.array(id()).max(1000).default([]),
  basic_criteria: z.array(Condition).max(100).default([]),
  advanced_criteria: z.object({
    groups: z.array(z.object({
      join_with: z.enum(["AND", "OR", "and", "or"]).optional(),
      conditions: z.array(Condition).max(100),
    })).max(50),
  }).default({ groups: [] }),
};

/** A filter definition (what create and update take). */
export const FilterDefinition = z.object(definitionShape).openapi("DeviceFilterDefinition");

/**
 * What preview takes: a definition whose name is optional. Built from the same fields,
 * not by extending {@link FilterDefinition}: the document would say `allOf` that one,
 * whose `name` is required.
 */
export const FilterPreview = z.object({
  ...definitionShape,
  name: z.string().trim().max(200).default("preview"),
}).openapi("DeviceFilterPreview");

/** A parsed filter definition. */
export type FilterDef = z.infer<typeof FilterDefinition>;
type Cond = z.infer<typeof Condition>;

/** A stored filter as the API shows it. */
export interface FilterRecord extends FilterDef {
  id: number;
  archived: boolean;
  last_edited_by: string | null;
  created_at: string;
  updated_at: string;
}

/** A device a filter resolved to. */
export interface ResolvedDevice {
  guid: string;
  hostname: string;
  site_id: number | null;
}

/** Lists what uses a filter (jobs, watchdogs…); plugins register one each. */
export type FilterUsageProvider = (
  filterId: number,
) => Promise<Array<{ kind: string; id: string; name: string }>>;

/** The metadata route's answer. */
export const filterMetadata = {
  fields: FIELDS.map((f) => ({
    field: f,
    type: f in TEXT_FIELDS || f === "status" || f === "presence"
      ? "text"
      : f === "installed_software"
      ? "software"
      : "number",
  })),
  text_operators: TEXT_OPS,
  number_operators: NUMBER_OPS,
  version_operators: VERSION_OPS,
  software_sources: SOURCES,
  site_modes: ["global", "specific_sites", "global_exclusions"],
  criteria_modes: ["basic", "advanced"],
};

interface FilterRow {
  id: number;
  name: string;
  description: string;
  archived: boolean;
  criteria_mode: "basic" | "advanced";
  site_mode: "global" | "specific_sites" | "global_exclusions";
  basic_criteria: Cond[];
  advanced_criteria: FilterDef["advanced_criteria"];
  last_edited_by: string | null;
  created_at: Date;
  updated_at: Date;
  site_ids: number[] | null;
}

const toRecord = (r: FilterRow): FilterRecord => ({
  id: r.id,
  name: r.name,
  description: r.description,
  archived: r.archived,
  criteria_mode: r.criteria_mode,
  site_mode: r.site_mode,
  site_ids: (r.site_ids ?? []).filter((x) => x !== null).sort((a, b) => a - b),
  basic_criteria: r.basic_criteria,
  advanced_criteria: r.advanced_criteria,
  last_edited_by: r.last_edited_by,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

/** Longest regular expression a condition may carry. */
export const MAX_REGEX_LENGTH = 200;

/**
 * Refuses patterns PostgreSQL cannot match in bounded time. Without back-references its
 * regex engine (Spencer's, as in Tcl) matches with finite automata — no backtracking, so
 * no catastrophic patterns — and refuses automata that grow too large ("too complex").
 * Back-references (`\1`…`\9`) switch it to a backtracking matcher that can run for
 * minutes on a few kilobytes (e.g. `^(.*)(.*)(.*)\1\2\3$`), and on the embedded
 * database a statement timeout cannot interrupt it, so they are refused outright.
 */
export function checkSafeRegex(pattern: string): void {
  if (pattern.length > MAX_REGEX_LENGTH) {
    throw badRequest(
      "filter_invalid_regex",
      `regular expressions are limited to ${MAX_REGEX_LENGTH} characters`,
    );
  }
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] !== "\\") continue;
    const next = pattern[i + 1] ?? "";
    if (next >= "1" && next <= "9") {
      throw badRequest(
        "filter_invalid_regex",
        "back-references (\\1 … \\9) are not supported in filter regular expressions",
      );
    }
    i++; // skip the escaped character (\\ is a literal backslash)
  }
}

/** Whether a definition has a condition on status, presence or last_seen_age_minutes. */
function judgesLiveness(def: FilterDef): boolean {
  const all = [...def.basic_criteria, ...def.advanced_criteria.groups.flatMap((g) => g.conditions)];
  return all.some((c) => ["status", "presence", "last_seen_age_minutes"].includes(c.field));
}

/** Filters: storage, compilation to SQL, resolution. */
export class FilterService {
  #usage: FilterUsageProvider[] = [];

  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock,
    private readonly presence: PresenceService,
    private readonly timeoutMs = 5000,
  ) {}

  /** Registers a source of filter usage (jobs, watchdogs). */
  registerUsage(p: FilterUsageProvider): void {
    this.#usage.push(p);
  }

  // ------------------------------------------------------------- compile

  #text(expr: string, c: Cond): Fragment {
    const sql = this.sql;
    const f = sql.unsafe(expr);
    const v = String(c.value);
    if (c.use_regex) {
      checkSafeRegex(v);
      const pattern = c.operator === "equals"
        ? `^(?:${v})$`
        : c.operator === "begins_with"
        ? `^(?:${v})`
        : c.operator === "ends_with"
        ? `(?:${v})$`
        : v;
      return c.operator === "does_not_contain"
        ? sql`not coalesce(${f} ~* ${pattern}, false)`
        : sql`coalesce(${f} ~* ${pattern}, false)`;
    }
    switch (c.operator) {
      case "contains":
        return sql`coalesce(strpos(lower(${f}), lower(${v})) > 0, false)`;
      case "does_not_contain":
        return sql`coalesce(strpos(lower(${f}), lower(${v})), 0) = 0`;
      case "equals":
        return sql`coalesce(lower(${f}) = lower(${v}), false)`;
      case "begins_with":
        return sql`coalesce(starts_with(lower(${f}), lower(${v})), false)`;
      case "ends_with":
        return sql`coalesce(right(lower(${f}), char_length(${v})) = lower(${v}), false)`;
      default:
        throw badRequest(
          "filter_invalid_operator",
          `operator ${c.operator} does not apply to field ${c.field}`,
        );
    }
  }

  #number(expr: Fragment, c: Cond): Fragment {
    const sql = this.sql;
    const n = typeof c.value === "number" ? c.value : Number(c.value);
    if (!Number.isFinite(n)) {
      throw badRequest("filter_invalid_value", `field ${c.field} needs a number`);
    }
    const op = { eq: "=", gt: ">", gte: ">=", lt: "<", lte: "<=" }[c.operator as "eq"];
    if (!op) {
      throw badRequest(
        "filter_invalid_operator",
        `operator ${c.operator} does not apply to field ${c.field}`,
      );
    }
    return sql`coalesce(${expr} ${sql.unsafe(op)} ${n}, false)`;
  }

  #condition(c: Cond): Fragment {
    const sql = this.sql;
    const now = new Date(this.clock.now());
    if (c.field in TEXT_FIELDS) {
      return this.#text(TEXT_FIELDS[c.field as keyof typeof TEXT_FIELDS], c);
    }
    if (c.field === "status" || c.field === "presence") {
      // The device list's derivation (presence.ts): status is Online or Offline (an
      // overdue device is Offline), presence is online, offline or overdue.
      const presence = this.presence.sql(sql);
      return this.#textFragment(
        c.field === "presence"
          ? presence
          : sql`(case when ${presence} = 'online' then 'Online' else 'Offline' end)`,
        c,
      );
    }
    if (c.field === "last_seen_age_minutes") {
      return this.#number(sql`(extract(epoch from (${now}::timestamptz - d.last_seen)) / 60)`, c);
    }
    if (c.field in NUMBER_FIELDS) {
      return this.#number(sql.unsafe(NUMBER_FIELDS[c.field as keyof typeof NUMBER_FIELDS]), c);
    }
    // installed_software: a software entry whose name matches (and source / version).
    const name = this.#text("(e->>'name')", {
      ...c,
      operator: c.operator === "does_not_contain" ? "contains" : c.operator,
    });
    const source = c.software_source
      ? sql`and coalesce(e->>'source', 'local_installed') = ${c.software_source}`
      : sql``;
    let version = sql``;
    if (c.version_operator && c.version_value !== undefined) {
      version = c.version_operator === "matches"
        ? sql`and coalesce(e->>'version', '') = ${c.version_value}`
        : c.version_operator === "older_than"
        ? sql`and borealis_version_parts(e->>'version') < borealis_version_parts(${c.version_value})`
        : sql`and borealis_version_parts(e->>'version') > borealis_version_parts(${c.version_value})`;
    }
    const exists = sql`exists (select 1 from jsonb_array_elements(${
      sql.unsafe(arrayOf("d.details->'software'"))
    }) e
      where ${name} ${source} ${version})`;
    return c.operator === "does_not_contain" ? sql`not ${exists}` : exists;
  }

  #textFragment(expr: Fragment, c: Cond): Fragment {
    // Same as #text, for an expression that is already a fragment.
    const sql = this.sql;
    const v = String(c.value);
    if (c.use_regex) checkSafeRegex(v);
    switch (c.operator) {
      case "contains":
        return c.use_regex ? sql`${expr} ~* ${v}` : sql`strpos(lower(${expr}), lower(${v})) > 0`;
      case "does_not_contain":
        return c.use_regex
          ? sql`not (${expr} ~* ${v})`
          : sql`strpos(lower(${expr}), lower(${v})) = 0`;
      case "equals":
        return sql`lower(${expr}) = lower(${v})`;
      case "begins_with":
        return sql`starts_with(lower(${expr}), lower(${v}))`;
      case "ends_with":
        return sql`right(lower(${expr}), char_length(${v})) = lower(${v})`;
      default:
        throw badRequest(
          "filter_invalid_operator",
          `operator ${c.operator} does not apply to field ${c.field}`,
        );
    }
  }

  #join(items: Array<{ frag: Fragment; join?: string }>, defaultJoin: "and" | "or"): Fragment {
    const sql = this.sql;
    let acc: Fragment | null = null;
    for (const { frag, join } of items) {
      if (!acc) {
        acc = sql`(${frag})`;
        continue;
      }
      const j = (join ?? defaultJoin).toLowerCase() === "or" ? sql`or` : sql`and`;
      acc = sql`(${acc} ${j} (${frag}))`;
    }
    return acc ?? sql`true`;
  }

  /** The WHERE fragment of a definition (without scope). */
  compile(def: FilterDef): Fragment {
    const sql = this.sql;
    const siteIds = def.site_ids;
    const siteClause = def.site_mode === "specific_sites"
      ? sql`d.site_id = any(${siteIds}::int[])`
      : def.site_mode === "global_exclusions" && siteIds.length
      ? sql`(d.site_id is null or not (d.site_id = any(${siteIds}::int[])))`
      : sql`true`;
    let criteria: Fragment;
    if (def.criteria_mode === "basic") {
      criteria = this.#join(def.basic_criteria.map((c) => ({ frag: this.#condition(c) })), "and");
    } else {
      criteria = this.#join(
        def.advanced_criteria.groups.map((g) => ({
          frag: this.#join(
            g.conditions.map((c) => ({ frag: this.#condition(c), join: c.join_with })),
            "and",
          ),
          join: g.join_with,
        })),
        "or",
      );
    }
    return sql`${siteClause} and ${criteria}`;
  }

  /**
   * Resolves a filter to the devices it matches that `p` may see, in one query with a
   * statement timeout. Bad regular expressions → 400; a timeout → 422.
   */
  async resolve(def: FilterDef, p: Principal, limit = 100_000): Promise<ResolvedDevice[]> {
    // Signs of life held in memory reach last_seen first, so a just-connected device is online.
    if (judgesLiveness(def)) await this.presence.sync();
    const where = this.compile(def);
    const scope = p.sites === "all"
      ? this.sql`true`
      : this.sql`d.site_id = any(${[...p.sites]}::int[])`;
    try {
      const rows = await this.sql.begin(async (tx) => {
        await tx.unsafe(`set local statement_timeout = ${Math.floor(this.timeoutMs)}`);
        return await tx<ResolvedDevice[]>`
          select d.guid, d.hostname, d.site_id from devices d left join sites s on s.id = d.site_id
          where ${where} and ${scope} order by lower(d.hostname) limit ${limit}`;
      });
      return rows.map((r) => ({ ...r, guid: fmtGuid(r.guid) }));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "2201B") {
        throw badRequest("filter_invalid_regex", "a regular expression in the filter is invalid");
      }
      if (code === "57014") {
        throw new HttpError(422, "filter_timeout", "the filter took too long to evaluate");
      }
      if (code === "22P02" || code === "22003") {
        throw badRequest("filter_invalid_value", "a value in the filter is invalid");
      }
      throw err;
    }
  }

  /**
   * How many devices `p` may see that a definition matches now, or null when it cannot
   * be evaluated (a bad expression, the statement timeout). For lists, so one broken
   * filter does not break the page.
   */
  async matchCount(def: FilterDef, p: Principal): Promise<number | null> {
    const where = this.compile(def);
    const scope = p.sites === "all"
      ? this.sql`true`
      : this.sql`d.site_id = any(${[...p.sites]}::int[])`;
    try {
      const [row] = await this.sql.begin(async (tx) => {
        await tx.unsafe(`set local statement_timeout = ${Math.floor(this.timeoutMs)}`);
        return await tx<{ n: number }[]>`
          select count(*)::int as n from devices d left join sites s on s.id = d.site_id
          where ${where} and ${scope}`;
      });
      return row?.n ?? 0;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "2201B" || code === "57014" || code === "22P02" || code === "22003") {
        return null;
      }
      throw err;
    }
  }

  /** Resolves a stored filter by id (for jobs and watchdogs). */
  async resolveById(id: number, p: Principal): Promise<ResolvedDevice[]> {
    const f = await this.get(id, p);
    return await this.resolve(f, p);
  }

  // ------------------------------------------------------------- storage

  #visible(p: Principal, f: FilterRecord): boolean {
    if (p.sites === "all" || f.site_mode !== "specific_sites") return true;
    return f.site_ids.every((id) => canSeeSite(p, id));
  }

  async #rows(where: Fragment): Promise<FilterRecord[]> {
    const sql = this.sql;
    const rows = await sql<FilterRow[]>`
      select f.*, array_remove(array_agg(fs.site_id), null) as site_ids from device_filters f
      left join device_filter_sites fs on fs.filter_id = f.id
      where ${where} group by f.id order by lower(f.name)`;
    return rows.map(toRecord);
  }

  /** Filters the principal may see. */
  async list(p: Principal, includeArchived: boolean): Promise<FilterRecord[]> {
    const rows = await this.#rows(includeArchived ? this.sql`true` : this.sql`not f.archived`);
    return rows.filter((f) => this.#visible(p, f));
  }

  /** One filter, 404 when missing or out of scope. */
  async get(id: number, p: Principal): Promise<FilterRecord> {
    const [f] = await this.#rows(this.sql`f.id = ${id}`);
    if (!f || !this.#visible(p, f)) throw notFound(`no filter ${id}`);
    return f;
  }

  /** Checks a definition's sites (scope) and operators; throws 400/404. */
  validate(p: Principal, def: FilterDef): void {
    if (def.site_mode === "specific_sites" && !def.site_ids.length) {
      throw badRequest("site_ids_required", "specific_sites needs at least one site id");
    }
    if (def.site_mode === "specific_sites" && !def.site_ids.every((id) => canSeeSite(p, id))) {
      throw notFound("a listed site does not exist");
    }
    // Compiling validates operators and values early (400 instead of failing later).
    this.compile(def);
  }

  async #save(id: number | null, def: FilterDef, p: Principal): Promise<number> {
    this.validate(p, def);
    const sql = this.sql;
    const now = new Date(this.clock.now());
    const [dupe] = await sql`
      select 1 from device_filters where lower(name) = lower(${def.name}) and id <> ${id ?? 0}`;
    if (dupe) throw conflict("filter_exists", `a filter named ${def.name} already exists`);
    return await sql.begin(async (tx) => {
      let fid = id;
      if (fid === null) {
        const [row] = await tx<{ id: number }[]>`
          insert into device_filters (name, description, criteria_mode, site_mode, basic_criteria,
            advanced_criteria, last_edited_by, created_at, updated_at)
          values (${def.name}, ${def.description}, ${def.criteria_mode}, ${def.site_mode},
            ${tx.json(def.basic_criteria as never)}, ${tx.json(def.advanced_criteria as never)},
            ${p.name}, ${now}, ${now})
          returning id`;
        fid = row!.id;
      } else {
        const r = await tx`
          update device_filters set name = ${def.name}, description = ${def.description},
            criteria_mode = ${def.criteria_mode}, site_mode = ${def.site_mode},
            basic_criteria = ${tx.json(def.basic_criteria as never)},
            advanced_criteria = ${tx.json(def.advanced_criteria as never)},
            last_edited_by = ${p.name}, updated_at = ${now}
          where id = ${fid}`;
        if (!r.count) throw notFound(`no filter ${fid}`);
        await tx`delete from device_filter_sites where filter_id = ${fid}`;
      }
      if (def.site_ids.length) {
        const existing = await tx<
          { id: number }[]
        >`select id from sites where id = any(${def.site_ids}::int[])`;
        if (existing.length !== new Set(def.site_ids).size) {
          throw notFound("a listed site does not exist");
        }
        await tx`
          insert into device_filter_sites (filter_id, site_id)
          select ${fid}, unnest(${[...new Set(def.site_ids)]}::int[])`;
      }
      return fid;
    });
  }

  /** Creates a filter. */
  async create(def: FilterDef, p: Principal): Promise<FilterRecord> {
    return await this.get(await this.#save(null, def, p), p);
  }

  /** Replaces a filter's definition. */
  async update(id: number, def: FilterDef, p: Principal): Promise<FilterRecord> {
    await this.get(id, p);
    return await this.get(await this.#save(id, def, p), p);
  }

  /** Deletes a filter (409 while something uses it). */
  async remove(id: number, p: Principal): Promise<void> {
    await this.get(id, p);
    const used = await this.usage(id, p);
    if (used.length) {
      throw conflict("filter_in_use", "the filter is used; archive it instead", { usage: used });
    }
    await this.sql`delete from device_filters where id = ${id}`;
  }

  /** Sets or clears `archived`. */
  async archive(id: number, archived: boolean, p: Principal): Promise<FilterRecord> {
    await this.get(id, p);
    await this.sql`update device_filters set archived = ${archived}, updated_at = ${new Date(
      this.clock.now(),
    )},
      last_edited_by = ${p.name} where id = ${id}`;
    return await this.get(id, p);
  }

  /** Copies a filter under a new name. */
  async clone(id: number, p: Principal, name?: string): Promise<FilterRecord> {
    const f = await this.get(id, p);
    let candidate = name ?? `${f.name} (copy)`;
    for (let i = 2; !name && i < 100; i++) {
      const [dupe] = await this
        .sql`select 1 from device_filters where lower(name) = lower(${candidate})`;
      if (!dupe) break;
      candidate = `${f.name} (copy ${i})`;
    }
    return await this.create({ ...f, name: candidate }, p);
  }

  /** Where a filter is used. */
  async usage(
    id: number,
    p: Principal,
  ): Promise<Array<{ kind: string; id: string; name: string }>> {
    await this.get(id, p);
    return (await Promise.all(this.#usage.map((u) => u(id)))).flat();
  }
}
