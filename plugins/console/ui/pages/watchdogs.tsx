/**
 * Watchdogs: monitoring policies with severity, scope, targets and rules in words,
 * their state and when they last ran; admins create, edit, enable or disable, archive
 * and delete (Users read them).
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
import { useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef, GridApi } from "ag-grid-community";
import { useMemo, useRef, useState } from "react";
import { Link as RouterLink, useNavigate } from "react-router";
import { api, query } from "../api/client.ts";
import { useFilters, useSites } from "../api/queries.ts";
import type { Watchdog } from "../api/types.ts";
import { useIsAdmin } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { EnabledPill, SeverityPill } from "../components/badges.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DataGrid, exportGridCsv } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { EmptyState, ErrorState } from "../components/states.tsx";
import { ago } from "../lib/format.ts";
import { criteriaSummary } from "../lib/watchdog_form.ts";

/** Watchdog targets and scope in words. */
export function watchdogScope(
  w: Pick<Watchdog, "targets" | "site_mode" | "site_ids">,
  names: { site: (id: number) => string; filter: (id: number) => string },
): string {
  const t = w.targets.map((x) =>
    x.kind === "all_devices"
      ? "all devices"
      : x.kind === "filter"
      ? `filter ${names.filter(x.filter_id)}`
      : "a device"
  );
  const devices = t.filter((x) => x === "a device").length;
  const parts = [...new Set(t.filter((x) => x !== "a device"))];
  if (devices) parts.push(devices === 1 ? "1 device" : `${devices} devices`);
  const sites = w.site_ids.map(names.site).join(", ");
  const scope = w.site_mode === "specific_sites"
    ? ` in ${sites}`
    : w.site_mode === "global_exclusions" && w.site_ids.length
    ? ` except ${sites}`
    : "";
  return parts.join(", ") + scope;
}

/** `/watchdogs`. */
export function WatchdogsPage() {
  const admin = useIsAdmin();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const { notify } = useToasts();
  const sites = useSites();
  const filters = useFilters();
  const [archived, setArchived] = useState(false);
  const grid = useRef<GridApi<Watchdog> | null>(null);
  const [menu, setMenu] = useState<{ anchor: HTMLElement; w: Watchdog } | null>(null);
  const [deleting, setDeleting] = useState<Watchdog | null>(null);
  const list = useQuery({
    queryKey: ["watchdogs", archived],
    queryFn: ({ signal }) =>
      api<{ items: Watchdog[] }>(`/api/watchdogs${query({ archived: archived || undefined })}`, {
        signal,
      }),
  });
  const names = useMemo(() => ({
    site: (id: number) => sites.data?.sites.find((s) => s.id === id)?.name ?? `#${id}`,
    filter: (id: number) => filters.data?.filters.find((f) => f.id === id)?.name ?? `#${id}`,
  }), [sites.data, filters.data]);

  const update = async (w: Watchdog, patch: Partial<Watchdog>, done: string) => {
    try {
      if ("archived" in patch) {
        await api(`/api/watchdogs/${w.id}/archive`, { body: { archived: patch.archived } });
      } else {
        const {
          id: _id,
          last_edited_by: _e,
          created_at: _c,
          updated_at: _u,
          last_evaluated_at: _l,
          ...body
        } = w;
        await api(`/api/watchdogs/${w.id}`, { method: "PUT", body: { ...body, ...patch } });
      }
      notify({ severity: "success", message: `${w.name} ${done}.` });
    } catch (err) {
      notify({ severity: "error", message: (err as Error).message });
    }
    void qc.invalidateQueries({ queryKey: ["watchdogs"] });
  };

  const columns = useMemo<ColDef<Watchdog>[]>(() => {
    const cols: ColDef<Watchdog>[] = [
      {
        headerName: "Name",
        field: "name",
        flex: 1,
        minWidth: 170,
        cellRenderer: (p: { data?: Watchdog }) =>
          p.data && (
            <Link component={RouterLink} to={`/watchdogs/${p.data.id}`}>{p.data.name}</Link>
          ),
      },
      {
        headerName: "Severity",
        field: "severity",
        width: 110,
        cellRenderer: (p: { data?: Watchdog }) =>
          p.data && <SeverityPill severity={p.data.severity} />,
      },
      {
        headerName: "Watches",
        colId: "scope",
        width: 200,
        valueGetter: (p) => (p.data ? watchdogScope(p.data, names) : ""),
        tooltipValueGetter: (p) => p.value,
      },
      {
        headerName: "Rules",
        colId: "rules",
        flex: 1.5,
        minWidth: 200,
        valueGetter: (p) => (p.data ? criteriaSummary(p.data) : ""),
        tooltipValueGetter: (p) => p.value,
      },
      {
        headerName: "State",
        colId: "state",
        width: 110,
        valueGetter: (
          p,
        ) => (p.data?.archived ? "Archived" : p.data?.enabled ? "Enabled" : "Disabled"),
        cellRenderer: (p: { data?: Watchdog }) =>
          p.data && <EnabledPill enabled={p.data.enabled} archived={p.data.archived} />,
      },
      {
        headerName: "Last evaluated",
        colId: "last_evaluated_at",
        width: 140,
        valueGetter: (p) => p.data?.last_evaluated_at ?? null,
        valueFormatter: (p) => ago(p.value),
      },
    ];
    if (admin) {
      cols.push({
        headerName: "Actions",
        colId: "actions",
        width: 90,
        sortable: false,
        cellRenderer: (p: { data?: Watchdog }) =>
          p.data && (
            <IconButton
              size="small"
              aria-label={`More actions for ${p.data.name}`}
              aria-haspopup="menu"
              onClick={(e) => setMenu({ anchor: e.currentTarget, w: p.data! })}
            >
              <MoreVertIcon fontSize="small" />
            </IconButton>
          ),
      });
    }
    return cols;
  }, [names, admin]);

  const rows = list.data?.items ?? [];
  const pick = (fn: (w: Watchdog) => void) => () => {
    const w = menu!.w;
    setMenu(null);
    fn(w);
  };
  return (
    <>
      <PageHeader
        title="Watchdogs"
        subtitle="Policies that watch device telemetry and open incidents"
        actions={
          <>
            <Button
              variant="outlined"
              disabled={!rows.length}
              onClick={() => {
                const n = exportGridCsv(grid.current, "watchdogs");
                notify({ severity: "success", message: `Exported ${n} watchdog(s).` });
              }}
            >
              Export CSV
            </Button>
            {admin && (
              <Button variant="contained" onClick={() => navigate("/watchdogs/new")}>
                New watchdog
              </Button>
            )}
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
      {list.data && !rows.length && !archived
        ? (
          <EmptyState
            title="No watchdogs yet"
            action={admin
              ? (
                <Button variant="contained" onClick={() => navigate("/watchdogs/new")}>
                  New watchdog
                </Button>
              )
              : undefined}
          >
            A watchdog opens an incident when devices match its rules — offline too long, a disk
            filling up, a service stopped — and can notify, restart a service or run a script.
          </EmptyState>
        )
        : (
          <Box sx={{ flexGrow: 1, minHeight: 300, px: 3, pb: 2 }}>
            <DataGrid<Watchdog>
              label="Watchdogs"
              emptyText="No watchdogs"
              loading={list.isPending}
              rowData={rows}
              columnDefs={columns}
              getRowId={(p) => p.data.id}
              onGridReady={(e) => (grid.current = e.api)}
            />
          </Box>
        )}
      <Menu anchorEl={menu?.anchor} open={!!menu} onClose={() => setMenu(null)}>
        <MenuItem onClick={pick((w) => navigate(`/watchdogs/${w.id}`))}>Edit</MenuItem>
        {menu && !menu.w.archived && (
          <MenuItem
            onClick={pick((w) =>
              void update(w, { enabled: !w.enabled }, w.enabled ? "disabled" : "enabled")
            )}
          >
            {menu.w.enabled ? "Disable" : "Enable"}
          </MenuItem>
        )}
        <MenuItem
          onClick={pick((w) =>
            void update(w, { archived: !w.archived }, w.archived ? "restored" : "archived")
          )}
        >
          {menu?.w.archived ? "Restore" : "Archive"}
        </MenuItem>
        <MenuItem onClick={pick(setDeleting)} sx={{ color: "error.main" }}>Delete…</MenuItem>
      </Menu>
      <ConfirmDialog
        open={!!deleting}
        title={`Delete ${deleting?.name}?`}
        confirmLabel="Delete"
        destructive
        typeToConfirm={deleting?.name}
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          await api(`/api/watchdogs/${deleting!.id}`, { method: "DELETE" });
          notify({ severity: "success", message: `${deleting!.name} deleted.` });
          void qc.invalidateQueries({ queryKey: ["watchdogs"] });
        }}
      >
        Its incidents, device states, overrides and notification routes are deleted with it. Archive
        it instead to keep the history.
      </ConfirmDialog>
    </>
  );
}
