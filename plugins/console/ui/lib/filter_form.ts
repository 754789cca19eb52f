/**
 * Device filter definitions as the editor shows them: field and operator names, the
 * operators each kind of field takes, a one-line summary of the criteria for lists, and
 * the body of create, update and preview.
 *
 * @module
 */
import type { DeviceFilter, FilterCondition } from "../api/types.ts";

/** Names of the filterable fields. */
export const FIELD_LABEL: Record<string, string> = {
  hostname: "Hostname",
  description: "Description",
  site_name: "Site",
  operating_system: "Operating system",
  device_type: "Device type",
  last_user: "Last user",
  internal_ip: "Internal IP",
  external_ip: "External IP",
  domain: "Domain",
  cpu_model: "CPU model",
  agent_version: "Agent hash",
  status: "Status",
  last_seen_age_minutes: "Minutes since last seen",
  total_ram_gb: "Memory (GB)",
  storage_free_percent: "Lowest free disk %",
  installed_software: "Installed software",
};

/** Names of the operators. */
export const OPERATOR_LABEL: Record<string, string> = {
  contains: "contains",
  does_not_contain: "does not contain",
  equals: "equals",
  begins_with: "begins with",
  ends_with: "ends with",
  eq: "=",
  gt: ">",
  gte: "≥",
  lt: "<",
  lte: "≤",
  matches: "matches",
  older_than: "older than",
  newer_than: "newer than",
};

/** The kind of a field (from the metadata route, with a fallback). */
export type FieldKind = "text" | "number" | "software";

/** `GET /api/device_filters/metadata`. */
export interface FilterMetadata {
  fields: Array<{ field: string; type: FieldKind }>;
  text_operators: string[];
  number_operators: string[];
  version_operators: string[];
  software_sources: string[];
}

/** The operators a field takes. */
export function operatorsFor(kind: FieldKind, meta: FilterMetadata): string[] {
  return kind === "number" ? meta.number_operators : meta.text_operators;
}

/** A new condition on a field, with that field's first operator. */
export function newCondition(field: string, meta: FilterMetadata): FilterCondition {
  const kind = meta.fields.find((f) => f.field === field)?.type ?? "text";
  return { field, operator: operatorsFor(kind, meta)[0] ?? "contains", value: "" };
}

function conditionText(c: FilterCondition): string {
  const field = FIELD_LABEL[c.field] ?? c.field;
  let s = `${field} ${OPERATOR_LABEL[c.operator] ?? c.operator} ${
    c.use_regex ? `/${c.value}/` : `"${c.value}"`
  }`;
  if (c.field === "installed_software" && c.version_operator && c.version_value) {
    s += ` version ${OPERATOR_LABEL[c.version_operator] ?? c.version_operator} ${c.version_value}`;
  }
  return s;
}

/** One line saying what a filter matches ("Hostname begins with "web" and …"). */
export function criteriaSummary(
  f: Pick<DeviceFilter, "criteria_mode" | "basic_criteria" | "advanced_criteria">,
): string {
  if (f.criteria_mode === "basic") {
    return f.basic_criteria.length
      ? f.basic_criteria.map(conditionText).join(" and ")
      : "Every device";
  }
  const groups = f.advanced_criteria.groups.filter((g) => g.conditions.length);
  if (!groups.length) return "Every device";
  return groups.map((g, i) => {
    const inner = g.conditions.map((c, j) =>
      `${j ? ` ${(c.join_with ?? "AND").toLowerCase()} ` : ""}${conditionText(c)}`
    ).join("");
    return `${i ? ` ${(g.join_with ?? "OR").toLowerCase()} ` : ""}(${inner})`;
  }).join("");
}

/** Site scope in words. */
export function scopeSummary(
  f: Pick<DeviceFilter, "site_mode" | "site_ids">,
  siteName: (id: number) => string,
): string {
  const names = f.site_ids.map(siteName).join(", ");
  if (f.site_mode === "specific_sites") return `Sites: ${names || "none"}`;
  if (f.site_mode === "global_exclusions" && f.site_ids.length) return `All sites except ${names}`;
  return "All sites";
}

/** The editable part of a filter. */
export type FilterDefinition = Pick<
  DeviceFilter,
  | "name"
  | "description"
  | "criteria_mode"
  | "site_mode"
  | "site_ids"
  | "basic_criteria"
  | "advanced_criteria"
>;

/** A new filter's definition. */
export function emptyFilter(): FilterDefinition {
  return {
    name: "",
    description: "",
    criteria_mode: "basic",
    site_mode: "global",
    site_ids: [],
    basic_criteria: [],
    advanced_criteria: { groups: [{ conditions: [] }] },
  };
}

function cleanCondition(c: FilterCondition, kind: FieldKind): FilterCondition {
  const out: FilterCondition = {
    field: c.field,
    operator: c.operator,
    value: kind === "number" && String(c.value).trim() !== "" && Number.isFinite(Number(c.value))
      ? Number(c.value)
      : String(c.value),
  };
  if (c.use_regex && kind === "text") out.use_regex = true;
  if (c.join_with) out.join_with = c.join_with;
  if (kind === "software") {
    if (c.software_source) out.software_source = c.software_source;
    if (c.version_operator && c.version_value) {
      out.version_operator = c.version_operator;
      out.version_value = c.version_value;
    }
  }
  return out;
}

/** The body of create, update and preview (only the mode's criteria kept meaningful). */
export function toDefinition(f: FilterDefinition, meta: FilterMetadata): FilterDefinition {
  const kind = (c: FilterCondition) => meta.fields.find((x) => x.field === c.field)?.type ?? "text";
  return {
    name: f.name.trim(),
    description: f.description,
    criteria_mode: f.criteria_mode,
    site_mode: f.site_mode,
    site_ids: f.site_mode === "global" ? [] : f.site_ids,
    basic_criteria: f.criteria_mode === "basic"
      ? f.basic_criteria.map((c) => cleanCondition(c, kind(c)))
      : [],
    advanced_criteria: f.criteria_mode === "advanced"
      ? {
        groups: f.advanced_criteria.groups.map((g) => ({
          ...(g.join_with ? { join_with: g.join_with } : {}),
          conditions: g.conditions.map((c) => cleanCondition(c, kind(c))),
        })),
      }
      : { groups: [] },
  };
}

/** Problems by field, or {} when the definition may be saved. */
export function validateFilter(f: FilterDefinition, meta: FilterMetadata): Record<string, string> {
  const e: Record<string, string> = {};
  if (!f.name.trim()) e.name = "Give it a name";
  if (f.site_mode === "specific_sites" && !f.site_ids.length) e.site_ids = "Pick at least one site";
  const check = (c: FilterCondition, key: string) => {
    const kind = meta.fields.find((x) => x.field === c.field)?.type ?? "text";
    if (String(c.value).trim() === "") e[key] = "A value";
    else if (kind === "number" && !Number.isFinite(Number(c.value))) e[key] = "A number";
  };
  if (f.criteria_mode === "basic") f.basic_criteria.forEach((c, i) => check(c, `basic.${i}`));
  else {
    f.advanced_criteria.groups.forEach((g, gi) =>
      g.conditions.forEach((c, i) => check(c, `advanced.${gi}.${i}`))
    );
  }
  return e;
}
