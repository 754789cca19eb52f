/**
 * Storage of watchdog policies: the `watchdogs` row plus its sites and targets, read
 * back in one query per call.
 *
 * @module
 */
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { conflict, notFound } from "../../core/errors.ts";
import type { Action, Policy, PolicyInput, Rule, Target } from "./schemas.ts";

interface PolicyRow {
  id: string;
  name: string;
  description: string;
  archived: boolean;
  enabled: boolean;
  severity: Policy["severity"];
  match_mode: "all" | "any";
  site_mode: Policy["site_mode"];
  criteria_json: { rules: Rule[] };
  actions_json: { actions: Action[] };
  evaluation_interval_seconds: number;
  cooldown_seconds: number;
  auto_resolve_after_seconds: number;
  min_consecutive_matches: number;
  boot_grace_seconds: number;
  last_edited_by: string | null;
  created_at: Date;
  updated_at: Date;
  last_evaluated_at: Date | null;
  site_ids: number[] | null;
  targets: Target[] | null;
}

const toPolicy = (r: PolicyRow): Policy => ({
  id: r.id,
  name: r.name,
  description: r.description,
  enabled: r.enabled,
  archived: r.archived,
  severity: r.severity,
  site_mode: r.site_mode,
  site_ids: (r.site_ids ?? []).slice().sort((a, b) => a - b),
  targets: r.targets ?? [],
  criteria: { match_mode: r.match_mode, rules: r.criteria_json.rules },
  actions: { actions: r.actions_json.actions },
  evaluation_interval_seconds: r.evaluation_interval_seconds,
  cooldown_seconds: r.cooldown_seconds,
  auto_resolve_after_seconds: r.auto_resolve_after_seconds,
  min_consecutive_matches: r.min_consecutive_matches,
  boot_grace_seconds: r.boot_grace_seconds,
  last_edited_by: r.last_edited_by,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
  last_evaluated_at: r.last_evaluated_at?.toISOString() ?? null,
});

/** Policies in the database. */
export class PolicyStore {
  constructor(private readonly sql: Sql, private readonly clock: Clock) {}

  async #rows(where: ReturnType<Sql["unsafe"]>): Promise<Policy[]> {
    const sql = this.sql;
    const rows = await sql<PolicyRow[]>`
      select w.*,
        (select array_agg(site_id) from watchdog_sites s where s.watchdog_id = w.id) as site_ids,
        (select jsonb_agg(t.target_json || jsonb_build_object('kind', t.kind) order by t.id)
           from watchdog_targets t where t.watchdog_id = w.id) as targets
      from watchdogs w where ${where} order by lower(w.name)`;
    return rows.map(toPolicy);
  }

  /** Every policy (archived ones only when asked). */
  list(includeArchived: boolean): Promise<Policy[]> {
    return this.#rows(includeArchived ? this.sql`true` : this.sql`not w.archived`);
  }

  /** Enabled, unarchived policies (what the evaluator runs). */
  active(): Promise<Policy[]> {
    return this.#rows(this.sql`w.enabled and not w.archived`);
  }

  /** One policy or 404. */
  async get(id: string): Promise<Policy> {
    const [p] = await this.#rows(this.sql`w.id = ${id}`);
    if (!p) throw notFound(`no watchdog ${id}`);
    return p;
  }

  /** Stores a new policy. */
  async create(input: PolicyInput, by: string): Promise<Policy> {
    const id = crypto.randomUUID();
    await this.#write(id, input, by, true);
    return await this.get(id);
  }

  /** Replaces a policy's definition. */
  async update(id: string, input: PolicyInput, by: string): Promise<Policy> {
    await this.get(id);
    await this.#write(id, input, by, false);
    return await this.get(id);
  }

  /** Sets only the archived flag. */
  async archive(id: string, archived: boolean, by: string): Promise<Policy> {
    const now = new Date(this.clock.now());
    const r = await this.sql`
      update watchdogs set archived = ${archived}, updated_at = ${now}, last_edited_by = ${by}
      where id = ${id}`;
    if (!r.count) throw notFound(`no watchdog ${id}`);
    return await this.get(id);
  }

  /** Deletes a policy; its sites, targets, states, overrides and incidents cascade. */
  async remove(id: string): Promise<void> {
    const r = await this.sql`delete from watchdogs where id = ${id}`;
    if (!r.count) throw notFound(`no watchdog ${id}`);
  }

  /** Records when a policy was last evaluated. */
  async evaluated(ids: string[], at: number): Promise<void> {
    if (!ids.length) return;
    await this.sql`
      update watchdogs set last_evaluated_at = ${new Date(at)} where id = any(${ids}::uuid[])`;
  }

  async #write(id: string, input: PolicyInput, by: string, insert: boolean): Promise<void> {
    const now = new Date(this.clock.now());
    const criteria = { rules: input.criteria.rules };
    const actions = { actions: input.actions.actions };
    const targets = input.targets.map(({ kind, ...rest }) => ({ kind, target: rest }));
    try {
      await this.sql.begin(async (tx) => {
        if (insert) {
          await tx`
            insert into watchdogs (id, name, description, archived, enabled, severity, match_mode,
              site_mode, criteria_json, actions_json, evaluation_interval_seconds, cooldown_seconds,
              auto_resolve_after_seconds, min_consecutive_matches, boot_grace_seconds,
              last_edited_by, created_at, updated_at)
            values (${id}, ${input.name}, ${input.description}, ${input.archived}, ${input.enabled},
              ${input.severity}, ${input.criteria.match_mode}, ${input.site_mode},
              ${tx.json(criteria as never)}, ${tx.json(actions as never)},
              ${input.evaluation_interval_seconds}, ${input.cooldown_seconds},
              ${input.auto_resolve_after_seconds}, ${input.min_consecutive_matches},
              ${input.boot_grace_seconds}, ${by}, ${now}, ${now})`;
        } else {
          await tx`
            update watchdogs set name = ${input.name}, description = ${input.description},
              archived = ${input.archived}, enabled = ${input.enabled}, severity = ${input.severity},
              match_mode = ${input.criteria.match_mode}, site_mode = ${input.site_mode},
              criteria_json = ${tx.json(criteria as never)}, actions_json = ${
            tx.json(actions as never)
          },
              evaluation_interval_seconds = ${input.evaluation_interval_seconds},
              cooldown_seconds = ${input.cooldown_seconds},
              auto_resolve_after_seconds = ${input.auto_resolve_after_seconds},
              min_consecutive_matches = ${input.min_consecutive_matches},
              boot_grace_seconds = ${input.boot_grace_seconds}, last_edited_by = ${by},
              updated_at = ${now}, last_evaluated_at = null
            where id = ${id}`;
          await tx`delete from watchdog_sites where watchdog_id = ${id}`;
          await tx`delete from watchdog_targets where watchdog_id = ${id}`;
        }
        if (input.site_ids.length) {
          await tx`
            insert into watchdog_sites (watchdog_id, site_id)
            select ${id}::uuid, unnest(${[...new Set(input.site_ids)]}::int[])`;
        }
        await tx`
          insert into watchdog_targets (watchdog_id, kind, target_json, created_at)
          select ${id}::uuid, v.kind, v.target, ${now}::timestamptz
          from jsonb_to_recordset(${
          tx.json(targets as never)
        }::jsonb) as v(kind text, target jsonb)`;
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "23505") {
        throw conflict("watchdog_name_taken", "a watchdog with this name exists");
      }
      if (code === "23503") throw notFound("a listed site does not exist");
      throw err;
    }
  }
}
