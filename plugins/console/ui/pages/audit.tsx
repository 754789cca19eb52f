/**
 * Audit log (admins): every operator and system action, newest first, filtered by
 * actor, action and target (exact, or a prefix ending in *), outcome and a time range;
 * more pages on demand; CSV export of every matching entry.
 *
 * @module
 */
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import { useInfiniteQuery, useMutation } from "@tanstack/react-query";
import type { ColDef } from "ag-grid-community";
import { useEffect, useMemo, useState } from "react";
import { useSearchParams } from "react-router";
import { api, query } from "../api/client.ts";
import type { AuditEntry } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { StatePill } from "../components/badges.tsx";
import { DataGrid, downloadCsv } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { ErrorState } from "../components/states.tsx";
import { toCsv } from "../lib/csv.ts";
import { count, when } from "../lib/format.ts";

const FIELDS = ["actor", "action", "target", "outcome", "since", "until"] as const;
type Filters = Partial<Record<typeof FIELDS[number], string>>;

function apiQuery(f: Filters, cursor?: string, limit = 200): string {
  const iso = (v?: string) => (v ? new Date(v).toISOString() : undefined);
  return query({
    actor: f.actor,
    action: f.action,
    target: f.target,
    outcome: f.outcome,
    since: iso(f.since),
    until: iso(f.until),
    cursor,
    limit,
  });
}

const HEADERS = [
  "Time",
  "Actor",
  "Kind",
  "Action",
  "Target",
  "Outcome",
  "IP",
  "Request id",
  "Details",
];
const row = (e: AuditEntry) => [
  e.at,
  e.actor_name ?? e.actor_id ?? "",
  e.actor_kind,
  e.action,
  e.target ?? "",
  e.outcome,
  e.ip ?? "",
  e.request_id ?? "",
  JSON.stringify(e.details),
];

/** An entry's details as "key: value · key: value" for reading in a cell. */
function detailsText(details: unknown): string {
  if (details === null || typeof details !== "object") {
    return details == null ? "" : String(details);
  }
  return Object.entries(details as Record<string, unknown>)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" · ");
}

/** `/audit` (admins). */
export function AuditPage() {
  const { notify } = useToasts();
  const [params, setParams] = useSearchParams();
  const applied: Filters = Object.fromEntries(
    FIELDS.map((k) => [k, params.get(k) ?? ""]).filter(([, v]) => v),
  );
  const [draft, setDraft] = useState<Filters>(applied);
  useEffect(() => setDraft(applied), [params.toString()]);
  const apply = () => {
    const sp = new URLSearchParams();
    for (const k of FIELDS) if (draft[k]?.trim()) sp.set(k, draft[k]!.trim());
    setParams(sp, { replace: true });
  };
  const pages = useInfiniteQuery({
    queryKey: ["audit", params.toString()],
    queryFn: ({ pageParam, signal }) =>
      api<{ entries: AuditEntry[]; next_cursor: string | null }>(
        `/api/audit${apiQuery(applied, pageParam ?? undefined)}`,
        { signal },
      ),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const entries = pages.data?.pages.flatMap((p) => p.entries) ?? [];
  const exportAll = useMutation({
    mutationFn: async () => {
      const all: AuditEntry[] = [];
      let cursor: string | undefined;
      for (let i = 0; i < 100; i++) {
        const r = await api<{ entries: AuditEntry[]; next_cursor: string | null }>(
          `/api/audit${apiQuery(applied, cursor, 1000)}`,
        );
        all.push(...r.entries);
        if (!r.next_cursor) break;
        cursor = r.next_cursor;
      }
      downloadCsv(toCsv(HEADERS, all.map(row)), "audit");
      return all.length;
    },
    onSuccess: (n) =>
      notify({
        severity: "success",
        message: `Exported ${count(n, "audit entry", "audit entries")}.`,
      }),
    onError: (err) =>
      notify({ severity: "error", message: `Export failed: ${(err as Error).message}` }),
  });
  const columns = useMemo<ColDef<AuditEntry>[]>(() => [
    { headerName: "Time", field: "at", width: 160, valueFormatter: (p) => when(p.value) },
    {
      headerName: "Actor",
      colId: "actor",
      width: 110,
      valueGetter: (p) => p.data?.actor_name ?? p.data?.actor_id ?? p.data?.actor_kind,
    },
    { headerName: "Action", field: "action", width: 190, tooltipValueGetter: (p) => p.value },
    { headerName: "Target", field: "target", width: 160, tooltipValueGetter: (p) => p.value },
    {
      headerName: "Outcome",
      field: "outcome",
      width: 100,
      cellRenderer: (p: { data?: AuditEntry }) =>
        p.data && (
          <StatePill
            state={p.data.outcome === "success" ? "Success" : "Failed"}
            label={p.data.outcome}
          />
        ),
    },
    { headerName: "IP", field: "ip", width: 110 },
    {
      headerName: "Details",
      colId: "details",
      flex: 1,
      minWidth: 160,
      // Read as "key: value" pairs; the CSV keeps the JSON document.
      valueGetter: (p) => (p.data ? detailsText(p.data.details) : ""),
      tooltipValueGetter: (p) => p.value,
    },
  ], []);
  const text = (k: typeof FIELDS[number], label: string, width: number, placeholder?: string) => (
    <TextField
      size="small"
      label={label}
      value={draft[k] ?? ""}
      placeholder={placeholder}
      onChange={(e) => setDraft({ ...draft, [k]: e.target.value })}
      onKeyDown={(e) => e.key === "Enter" && apply()}
      sx={{ width }}
    />
  );
  return (
    <>
      <PageHeader
        title="Audit log"
        subtitle="Who did what, to what, and how it ended"
        actions={
          <Button
            variant="outlined"
            disabled={exportAll.isPending || !entries.length}
            onClick={() => exportAll.mutate()}
          >
            Export CSV
          </Button>
        }
      />
      <Stack
        component="form"
        direction="row"
        spacing={1}
        useFlexGap
        sx={{ px: 3, pb: 1.5, alignItems: "center", flexWrap: "wrap" }}
        onSubmit={(e) => {
          e.preventDefault();
          apply();
        }}
      >
        {text("actor", "Actor", 130)}
        {text("action", "Action", 170, "sites.* or exact")}
        {text("target", "Target", 170, "filter:* or exact")}
        <TextField
          select
          size="small"
          label="Outcome"
          value={draft.outcome ?? ""}
          onChange={(e) => setDraft({ ...draft, outcome: e.target.value })}
          sx={{ width: 120 }}
        >
          <MenuItem value="">Any</MenuItem>
          <MenuItem value="success">success</MenuItem>
          <MenuItem value="failure">failure</MenuItem>
          <MenuItem value="denied">denied</MenuItem>
        </TextField>
        <TextField
          size="small"
          type="datetime-local"
          label="From"
          value={draft.since ?? ""}
          onChange={(e) => setDraft({ ...draft, since: e.target.value })}
          slotProps={{ inputLabel: { shrink: true } }}
        />
        <TextField
          size="small"
          type="datetime-local"
          label="Until"
          value={draft.until ?? ""}
          onChange={(e) => setDraft({ ...draft, until: e.target.value })}
          slotProps={{ inputLabel: { shrink: true } }}
        />
        <Button type="submit" variant="contained">Apply</Button>
        {params.toString() && (
          <Button onClick={() => setParams({}, { replace: true })}>Clear</Button>
        )}
      </Stack>
      {pages.error && <ErrorState error={pages.error} onRetry={() => pages.refetch()} />}
      <Box sx={{ flexGrow: 1, minHeight: 300, px: 3, pb: 1 }}>
        <DataGrid<AuditEntry>
          label="Audit log"
          emptyText="No entry matches"
          loading={pages.isPending}
          rowData={entries}
          columnDefs={columns}
          getRowId={(p) => String(p.data.id)}
        />
      </Box>
      <Box sx={{ px: 3, pb: 2 }}>
        {pages.hasNextPage && (
          <Button onClick={() => pages.fetchNextPage()} disabled={pages.isFetchingNextPage}>
            Load older entries
          </Button>
        )}
      </Box>
    </>
  );
}
