/**
 * Filters: saved device filters with what each matches now (a link opens those devices
 * in the devices grid), where each is used (jobs, watchdogs, windows), its scope and
 * criteria in words; new, edit, clone, archive, delete (refused while in use, naming
 * where).
 *
 * @module
 */
import MoreVertIcon from "@mui/icons-material/MoreVert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import FormControlLabel from "@mui/material/FormControlLabel";
import IconButton from "@mui/material/IconButton";
import Link from "@mui/material/Link";
import Menu from "@mui/material/Menu";
import MenuItem from "@mui/material/MenuItem";
import Switch from "@mui/material/Switch";
import { useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef, GridApi } from "ag-grid-community";
import { useMemo, useRef, useState } from "react";
import { Link as RouterLink, useNavigate } from "react-router";
import { api, query } from "../api/client.ts";
import { useSites } from "../api/queries.ts";
import type { DeviceFilter } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { EnabledPill } from "../components/badges.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DataGrid, exportGridCsv } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { EmptyState, ErrorState } from "../components/states.tsx";
import { criteriaSummary, scopeSummary } from "../lib/filter_form.ts";
import { ago } from "../lib/format.ts";

/** Where a filter is used. */
export interface FilterUse {
  kind: string;
  id: string;
  name: string;
}

/** The page an object using a filter is on. */
export function usageLink(u: FilterUse): string {
  return u.kind === "scheduled_job" || u.kind === "job"
    ? `/jobs/${u.id}`
    : u.kind === "watchdog"
    ? `/watchdogs/${u.id}`
    : u.kind.includes("window")
    ? "/maintenance"
    : "/";
}

type Row = DeviceFilter & { usage?: FilterUse[] };

/** `/filters`. */
export function FiltersPage() {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const { notify } = useToasts();
  const sites = useSites();
  const [archived, setArchived] = useState(false);
  const grid = useRef<GridApi<Row> | null>(null);
  const [menu, setMenu] = useState<{ anchor: HTMLElement; f: Row } | null>(null);
  const [deleting, setDeleting] = useState<Row | null>(null);
  const list = useQuery({
    queryKey: ["device_filters", "counted", archived],
    // Match counts follow the fleet; a visit shows them as they are now.
    refetchOnMount: "always",
    queryFn: ({ signal }) =>
      api<{ filters: DeviceFilter[] }>(
        `/api/device_filters${query({ with_counts: true, include_archived: archived })}`,
        { signal },
      ),
  });
  const filters = list.data?.filters ?? [];
  const usage = useQueries({
    queries: filters.map((f) => ({
      queryKey: ["filter-usage", f.id],
      queryFn: ({ signal }: { signal: AbortSignal }) =>
        api<{ usage: FilterUse[] }>(`/api/device_filters/${f.id}/usage`, { signal }),
      // Usage changes on other pages (a job, a watchdog, a window saved a moment ago) and
      // by other operators: asked again on every visit, so "Not used" is never stale.
      refetchOnMount: "always" as const,
    })),
  });
  const rows: Row[] = filters.map((f, i) => ({ ...f, usage: usage[i]?.data?.usage }));
  const siteName = (id: number) => sites.data?.sites.find((s) => s.id === id)?.name ?? `#${id}`;

  const act = async (f: Row, action: "clone" | "archive" | "unarchive") => {
    try {
      const r = await api<DeviceFilter>(`/api/device_filters/${f.id}/${action}`, {
        method: "POST",
      });
      notify({
        severity: "success",
        message: action === "clone"
          ? `Copied as ${r.name}.`
          : `${f.name} ${action === "archive" ? "archived" : "restored"}.`,
      });
      void qc.invalidateQueries({ queryKey: ["device_filters"] });
      if (action === "clone") navigate(`/filters/${r.id}`);
    } catch (err) {
      notify({ severity: "error", message: (err as Error).message });
    }
  };

  const columns = useMemo<ColDef<Row>[]>(() => [
    {
      headerName: "Name",
      field: "name",
      flex: 1,
      minWidth: 170,
      cellRenderer: (p: { data?: Row }) =>
        p.data && <Link component={RouterLink} to={`/filters/${p.data.id}`}>{p.data.name}</Link>,
    },
    {
      headerName: "Matches",
      colId: "match_count",
      width: 130,
      valueGetter: (p) => p.data?.match_count ?? null,
      cellRenderer: (p: { data?: Row }) => {
        const n = p.data?.match_count;
        if (!p.data) return null;
        if (n === null || n === undefined) return "cannot run";
        return (
          <Link
            component={RouterLink}
            to={`/devices?filter=${p.data.id}`}
            aria-label={`${n} devices match ${p.data.name}: open them`}
          >
            {n} device{n === 1 ? "" : "s"}
          </Link>
        );
      },
    },
    {
      headerName: "Criteria",
      colId: "criteria",
      flex: 2,
      minWidth: 220,
      valueGetter: (p) => (p.data ? criteriaSummary(p.data) : ""),
      tooltipValueGetter: (p) => p.value,
    },
    {
      headerName: "Scope",
      colId: "scope",
      width: 170,
      valueGetter: (p) => (p.data ? scopeSummary(p.data, siteName) : ""),
    },
    {
      headerName: "Used by",
      colId: "usage",
      width: 200,
      valueGetter: (p) =>
        p.data?.usage === undefined
          ? "…"
          : p.data.usage.length
          ? p.data.usage.map((u) => u.name).join(", ")
          : "Not used",
      tooltipValueGetter: (p) => p.value,
    },
    {
      headerName: "State",
      colId: "archived",
      width: 110,
      valueGetter: (p) => (p.data?.archived ? "Archived" : "Active"),
      cellRenderer: (p: { data?: Row }) =>
        p.data && <EnabledPill enabled archived={p.data.archived} onLabel="Active" />,
    },
    {
      headerName: "Edited",
      colId: "updated_at",
      width: 150,
      valueGetter: (p) => p.data?.updated_at ?? null,
      valueFormatter: (p) =>
        p.data
          ? `${ago(p.value)}${p.data.last_edited_by ? ` by ${p.data.last_edited_by}` : ""}`
          : "",
    },
    {
      headerName: "Actions",
      colId: "actions",
      width: 90,
      sortable: false,
      cellRenderer: (p: { data?: Row }) =>
        p.data && (
          <IconButton
            size="small"
            aria-label={`More actions for ${p.data.name}`}
            aria-haspopup="menu"
            onClick={(e) => setMenu({ anchor: e.currentTarget, f: p.data! })}
          >
            <MoreVertIcon fontSize="small" />
          </IconButton>
        ),
    },
    // siteName changes when the sites load.
  ], [sites.data]);

  const pick = (fn: (f: Row) => void) => () => {
    const f = menu!.f;
    setMenu(null);
    fn(f);
  };

  return (
    <>
      <PageHeader
        title="Filters"
        subtitle="Saved device filters: jobs, watchdogs and maintenance windows target them."
        actions={
          <>
            <Button
              variant="outlined"
              disabled={!rows.length}
              onClick={() => {
                const n = exportGridCsv(grid.current, "filters");
                notify({ severity: "success", message: `Exported ${n} filter(s).` });
              }}
            >
              Export CSV
            </Button>
            <Button variant="contained" onClick={() => navigate("/filters/new")}>New filter</Button>
          </>
        }
      />
      <Box sx={{ px: 3, pb: 1 }}>
        <FormControlLabel
          control={<Switch checked={archived} onChange={(e) => setArchived(e.target.checked)} />}
          label="Show archived"
        />
      </Box>
      {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
      {list.data && !filters.length && !archived
        ? (
          <EmptyState
            title="No filters yet"
            action={
              <Button variant="contained" onClick={() => navigate("/filters/new")}>
                Create a filter
              </Button>
            }
          >
            A filter names devices by what they are (hostname, OS, software, memory …); jobs and
            watchdogs that target it follow the fleet as it changes.
          </EmptyState>
        )
        : (
          <Box sx={{ flexGrow: 1, minHeight: 300, px: 3, pb: 2 }}>
            <DataGrid<Row>
              label="Filters"
              emptyText="No archived filters"
              loading={list.isPending}
              rowData={rows}
              columnDefs={columns}
              getRowId={(p) => String(p.data.id)}
              onGridReady={(e) => (grid.current = e.api)}
            />
          </Box>
        )}
      <Menu anchorEl={menu?.anchor} open={!!menu} onClose={() => setMenu(null)}>
        <MenuItem onClick={pick((f) => navigate(`/filters/${f.id}`))}>Edit</MenuItem>
        <MenuItem onClick={pick((f) => navigate(`/devices?filter=${f.id}`))}>
          Open in the devices grid
        </MenuItem>
        <MenuItem onClick={pick((f) => void act(f, "clone"))}>Clone</MenuItem>
        {menu && !menu.f.archived && (
          <MenuItem onClick={pick((f) => void act(f, "archive"))}>Archive</MenuItem>
        )}
        {menu?.f.archived && (
          <MenuItem onClick={pick((f) => void act(f, "unarchive"))}>Restore</MenuItem>
        )}
        <MenuItem onClick={pick(setDeleting)} sx={{ color: "error.main" }}>Delete…</MenuItem>
      </Menu>
      <ConfirmDialog
        open={!!deleting}
        title={`Delete ${deleting?.name}?`}
        confirmLabel="Delete"
        destructive
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          await api(`/api/device_filters/${deleting!.id}`, { method: "DELETE" });
          notify({ severity: "success", message: `${deleting!.name} deleted.` });
          void qc.invalidateQueries({ queryKey: ["device_filters"] });
        }}
      >
        {deleting?.usage?.length
          ? (
            <>
              It is used by {deleting.usage.map((u, i) => (
                <span key={`${u.kind}-${u.id}`}>
                  {i ? ", " : ""}
                  <Link component={RouterLink} to={usageLink(u)}>{u.name}</Link>{" "}
                  ({u.kind.replace("_", " ")})
                </span>
              ))}
              ; the engine refuses to delete it until they target something else. Archive it instead
              to hide it.
            </>
          )
          : "Nothing uses it. This cannot be undone."}
      </ConfirmDialog>
    </>
  );
}
