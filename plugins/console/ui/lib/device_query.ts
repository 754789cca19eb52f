/**
 * The devices grid's state — site, saved filter, status (the devices' presence),
 * containment, search text, per-column substring filters and sort — and its three forms:
 * the page URL (`/devices?site=3&status=offline&hostname=web`), the API query of
 * `GET /api/devices` (`presence=offline`, `filter_id=7`), and AG Grid's filter
 * and sort models. Pure functions, so deep links, saved views and the grid agree.
 *
 * @module
 */

/** Columns filtered by substring (the API's query names). */
export const TEXT_FIELDS = [
  "hostname",
  "description",
  "site_name",
  "operating_system",
  "last_user",
  "internal_ip",
  "external_ip",
  "domain",
  "device_type",
  "agent_hash",
] as const;

/** A substring-filterable column. */
export type TextField = typeof TEXT_FIELDS[number];

/** Columns the API sorts by. */
export const SORT_FIELDS = [
  ...TEXT_FIELDS,
  "status",
  "last_seen",
  "created_at",
  "containment_status",
] as const;

/** A sortable column. */
export type SortField = typeof SORT_FIELDS[number];

/** Presence values of the status filter (the page URL's `status`, the API's `presence`). */
export const STATUSES = ["online", "offline", "overdue"] as const;

/** Containment values. */
export const CONTAINMENTS = ["active", "quarantined", "revoked", "decommissioned"] as const;

/** What the devices grid shows. */
export interface DeviceListState {
  site?: number;
  /** A saved device filter's id (its matches only). */
  filter?: number;
  status?: typeof STATUSES[number];
  containment?: typeof CONTAINMENTS[number];
  q?: string;
  filters: Partial<Record<TextField, string>>;
  sort?: { field: SortField; order: "asc" | "desc" };
}

/** AG Grid's model of one text filter (the only kind the grid offers). */
export interface TextFilterModel {
  filterType: "text";
  type: "contains";
  filter?: string | null;
}

/** AG Grid's sort model entry. */
export interface SortModelItem {
  colId: string;
  sort: "asc" | "desc";
}

const isOneOf = <T extends string>(list: readonly T[], v: unknown): v is T =>
  typeof v === "string" && (list as readonly string[]).includes(v);

const MAX_TEXT = 255;
const clean = (v: string | null | undefined) => {
  // deno-lint-ignore no-control-regex -- NUL is what the engine refuses in text
  const t = (v ?? "").replace(/\u0000/g, "").trim().slice(0, MAX_TEXT);
  return t || undefined;
};

/** Reads the state from a page URL's query (unknown or bad values are dropped). */
export function parseListState(search: URLSearchParams): DeviceListState {
  const state: DeviceListState = { filters: {} };
  const site = Number(search.get("site"));
  if (Number.isInteger(site) && site > 0 && site <= 2_147_483_647) state.site = site;
  const filter = Number(search.get("filter"));
  if (Number.isInteger(filter) && filter > 0 && filter <= 2_147_483_647) state.filter = filter;
  const status = search.get("status");
  if (isOneOf(STATUSES, status)) state.status = status;
  const containment = search.get("containment");
  if (isOneOf(CONTAINMENTS, containment)) state.containment = containment;
  const q = clean(search.get("q"));
  if (q) state.q = q;
  for (const f of TEXT_FIELDS) {
    const v = clean(search.get(f));
    if (v) state.filters[f] = v;
  }
  const sort = search.get("sort");
  if (isOneOf(SORT_FIELDS, sort)) {
    state.sort = { field: sort, order: search.get("order") === "desc" ? "desc" : "asc" };
  }
  return state;
}

/** The page URL query of a state (stable order; empty values left out). */
export function toSearchParams(state: DeviceListState): URLSearchParams {
  const sp = new URLSearchParams();
  if (state.site) sp.set("site", String(state.site));
  if (state.filter) sp.set("filter", String(state.filter));
  if (state.status) sp.set("status", state.status);
  if (state.containment) sp.set("containment", state.containment);
  if (state.q) sp.set("q", state.q);
  for (const f of TEXT_FIELDS) {
    const v = state.filters[f];
    if (v) sp.set(f, v);
  }
  if (state.sort) {
    sp.set("sort", state.sort.field);
    sp.set("order", state.sort.order);
  }
  return sp;
}

/** The `GET /api/devices` query for one page of the state. */
export function toApiQuery(state: DeviceListState, offset: number, limit: number): string {
  const sp = new URLSearchParams();
  if (state.site) sp.set("site_id", String(state.site));
  if (state.filter) sp.set("filter_id", String(state.filter));
  if (state.status) sp.set("presence", state.status);
  if (state.containment) sp.set("containment", state.containment);
  if (state.q) sp.set("q", state.q);
  for (const f of TEXT_FIELDS) {
    const v = state.filters[f];
    if (v) sp.set(f, v);
  }
  sp.set("sort", state.sort?.field ?? "hostname");
  sp.set("order", state.sort?.order ?? "asc");
  sp.set("offset", String(Math.max(0, Math.floor(offset))));
  sp.set("limit", String(Math.min(10_000, Math.max(1, Math.floor(limit)))));
  return `?${sp}`;
}

/** Column filters and sort from AG Grid's models (unknown columns are ignored). */
export function fromGridModels(
  filterModel: Record<string, unknown>,
  sortModel: readonly SortModelItem[],
): Pick<DeviceListState, "filters" | "sort"> {
  const filters: DeviceListState["filters"] = {};
  for (const [col, model] of Object.entries(filterModel)) {
    if (!isOneOf(TEXT_FIELDS, col)) continue;
    const m = model as Partial<TextFilterModel> | null;
    const v = clean(typeof m?.filter === "string" ? m.filter : undefined);
    if (v) filters[col] = v;
  }
  const first = sortModel.find((s) => isOneOf(SORT_FIELDS, s.colId));
  return {
    filters,
    sort: first ? { field: first.colId as SortField, order: first.sort } : undefined,
  };
}

/** AG Grid's filter model for the state's column filters. */
export function toGridFilterModel(state: DeviceListState): Record<string, TextFilterModel> {
  const model: Record<string, TextFilterModel> = {};
  for (const f of TEXT_FIELDS) {
    const v = state.filters[f];
    if (v) model[f] = { filterType: "text", type: "contains", filter: v };
  }
  return model;
}

/** AG Grid's sort model for the state. */
export function toGridSortModel(state: DeviceListState): SortModelItem[] {
  return state.sort ? [{ colId: state.sort.field, sort: state.sort.order }] : [];
}

/** True when two states ask for the same rows (the grid reloads only then). */
export function sameRows(a: DeviceListState, b: DeviceListState): boolean {
  return toApiQuery(a, 0, 1) === toApiQuery(b, 0, 1);
}
