/**
 * Devices: the fleet in one grid, paged, sorted and filtered by the engine (it stays fast
 * with 20,000 devices). The URL holds the filters (`/devices?site=3&status=offline`), saved
 * views share columns and filters between operators, status pills change live, and
 * selected devices get a quick job, a new site, or containment (admins).
 *
 * @module
 */
import ArrowDropDownIcon from "@mui/icons-material/ArrowDropDown";
import RefreshIcon from "@mui/icons-material/Refresh";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Checkbox from "@mui/material/Checkbox";
import Chip from "@mui/material/Chip";
import Divider from "@mui/material/Divider";
import IconButton from "@mui/material/IconButton";
import InputAdornment from "@mui/material/InputAdornment";
import Link from "@mui/material/Link";
import ListItemIcon from "@mui/material/ListItemIcon";
import ListItemText from "@mui/material/ListItemText";
import Menu from "@mui/material/Menu";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Tooltip from "@mui/material/Tooltip";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type {
  CellValueChangedEvent,
  ColDef,
  GridApi,
  GridReadyEvent,
  IDatasource,
  IGetRowsParams,
  SelectionChangedEvent,
} from "ag-grid-community";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link as RouterLink, useSearchParams } from "react-router";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api, ApiError } from "../api/client.ts";
import { useSocketEvent } from "../api/socket.ts";
import type { Device, DeviceListView, DevicePresence, DevicesReply } from "../api/types.ts";
import { useIsAdmin } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DataGrid } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { ErrorState } from "../components/states.tsx";
import { ContainmentPill, StatusPill } from "../components/status_pill.tsx";
import { StatePill } from "../components/badges.tsx";
import { AgentUpdateDialog } from "../jobs/agent_update_dialog.tsx";
import { QuickJobDialog } from "../jobs/quick_job_dialog.tsx";
import { toCsv } from "../lib/csv.ts";
import {
  type DeviceListState,
  fromGridModels,
  parseListState,
  sameRows,
  toApiQuery,
  toGridFilterModel,
  toGridSortModel,
  toSearchParams,
} from "../lib/device_query.ts";
import { ago, duration } from "../lib/format.ts";
import { useFilters, useSites } from "../api/queries.ts";

const PAGE = 100;

const ROW_SELECTION = {
  mode: "multiRow",
  checkboxes: true,
  headerCheckbox: false,
  enableClickSelection: false,
} as const;

const textFilter = {
  filter: "agTextColumnFilter",
  floatingFilter: true,
  filterParams: { filterOptions: ["contains"], maxNumConditions: 1, debounceMs: 300 },
} as const;

/** Every column of the grid; `hide` = not shown until chosen. */
function columnDefs(admin: boolean): ColDef<Device>[] {
  return [
    {
      headerName: "Status",
      colId: "status",
      width: 110,
      cellRenderer: (p: { data?: Device }) => p.data && <StatusPill status={p.data.presence} />,
    },
    {
      headerName: "Hostname",
      colId: "hostname",
      field: "hostname",
      minWidth: 170,
      flex: 1,
      ...textFilter,
      cellRenderer: (p: { data?: Device }) =>
        p.data && (
          <Stack sx={{ alignItems: "center" }} direction="row" spacing={1}>
            <Link component={RouterLink} to={`/devices/${p.data.guid}`}>{p.data.hostname}</Link>
            <ContainmentPill status={p.data.containment_status} />
          </Stack>
        ),
    },
    { headerName: "Site", colId: "site_name", field: "site_name", width: 150, ...textFilter },
    {
      headerName: "Description",
      colId: "description",
      field: "description",
      minWidth: 160,
      flex: 1,
      editable: true,
      ...textFilter,
      tooltipValueGetter: () => "Double-click or press Enter to edit",
    },
    {
      headerName: "Last user",
      colId: "last_user",
      width: 140,
      valueGetter: (p) => p.data?.summary.last_user ?? "",
      ...textFilter,
    },
    {
      headerName: "OS",
      colId: "operating_system",
      minWidth: 160,
      flex: 1,
      valueGetter: (p) => p.data?.summary.operating_system ?? "",
      ...textFilter,
    },
    {
      headerName: "Type",
      colId: "device_type",
      width: 120,
      valueGetter: (p) => p.data?.summary.device_type ?? "",
      ...textFilter,
    },
    {
      headerName: "Last seen",
      colId: "last_seen",
      width: 130,
      valueGetter: (p) => p.data?.last_seen ?? null,
      valueFormatter: (p) => (p.data ? ago(p.value) : ""),
    },
    {
      headerName: "Internal IP",
      colId: "internal_ip",
      width: 140,
      hide: true,
      valueGetter: (p) => p.data?.summary.internal_ip ?? "",
      ...textFilter,
    },
    {
      headerName: "External IP",
      colId: "external_ip",
      width: 140,
      hide: true,
      valueGetter: (p) => p.data?.summary.external_ip ?? "",
      ...textFilter,
    },
    {
      headerName: "Domain",
      colId: "domain",
      width: 140,
      hide: true,
      valueGetter: (p) => p.data?.summary.domain ?? "",
      ...textFilter,
    },
    {
      headerName: "Agent version",
      colId: "agent_version",
      width: 130,
      hide: true,
      sortable: false,
      valueGetter: (p) => p.data?.agent?.version ?? p.data?.agent_version ?? "",
    },
    {
      headerName: "Agent update",
      colId: "update_state",
      width: 170,
      hide: true,
      sortable: false,
      valueGetter: (p) => {
        const a = p.data?.agent;
        if (!a) return "";
        return a.update_state === "idle"
          ? a.desired_version && a.version && a.desired_version !== a.version
            ? `Update available (${a.desired_version})`
            : "Up to date"
          : `${a.update_state}${a.target_version ? ` → ${a.target_version}` : ""}`;
      },
      cellRenderer: (p: { data?: Device; value?: string }) => {
        const a = p.data?.agent;
        if (!a) return null;
        const state = a.update_state === "idle" && a.desired_version && a.version &&
            a.desired_version !== a.version
          ? "queued"
          : a.update_state;
        return <StatePill state={state} label={p.value} />;
      },
    },
    {
      headerName: "Agent channel",
      colId: "agent_channel",
      width: 130,
      hide: true,
      sortable: false,
      valueGetter: (p) => p.data?.agent?.channel ?? "",
    },
    {
      headerName: "Agent hash",
      colId: "agent_hash",
      field: "agent_hash",
      width: 160,
      hide: true,
      ...textFilter,
    },
    { headerName: "CPU", colId: "cpu", field: "cpu", width: 180, hide: true, sortable: false },
    {
      headerName: "Memory",
      colId: "memory_modules",
      width: 110,
      hide: true,
      sortable: false,
      valueGetter: (p) => count(p.data?.inventory_counts.memory_modules, "module"),
    },
    {
      headerName: "Storage",
      colId: "volumes",
      width: 110,
      hide: true,
      sortable: false,
      valueGetter: (p) => count(p.data?.inventory_counts.volumes, "volume"),
    },
    {
      headerName: "Network",
      colId: "network_adapters",
      width: 120,
      hide: true,
      sortable: false,
      valueGetter: (p) => count(p.data?.inventory_counts.network_adapters, "adapter"),
    },
    {
      headerName: "Software",
      colId: "software_items",
      width: 110,
      hide: true,
      sortable: false,
      valueGetter: (p) => count(p.data?.inventory_counts.software_items, "item"),
    },
    {
      headerName: "Uptime",
      colId: "uptime",
      width: 120,
      hide: true,
      sortable: false,
      valueGetter: (p) => (p.data?.summary.uptime == null ? "" : duration(p.data.summary.uptime)),
    },
    {
      headerName: "Enrolled",
      colId: "created_at",
      width: 130,
      hide: true,
      valueGetter: (p) => p.data?.created_at ?? null,
      valueFormatter: (p) => (p.data ? ago(p.value) : ""),
    },
    {
      headerName: "Containment",
      colId: "containment_status",
      field: "containment_status",
      width: 130,
      hide: !admin,
    },
    { headerName: "GUID", colId: "guid", field: "guid", width: 300, hide: true, sortable: false },
  ];
}

function count(n: number | null | undefined, what: string): string {
  return n === null || n === undefined ? "" : `${n} ${what}${n === 1 ? "" : "s"}`;
}

const DEFAULT_HIDDEN = new Set(
  columnDefs(true).filter((c) => c.hide).map((c) => c.colId!),
);

function MoveDialog(
  { devices, onClose }: { devices: Device[] | null; onClose: () => void },
) {
  const sites = useSites();
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [site, setSite] = useState<number | "">("");
  const move = useMutation({
    mutationFn: () =>
      api<{ assigned: number }>("/api/sites/assign", {
        body: { site_id: site, hostnames: devices!.map((d) => d.hostname) },
      }),
    onSuccess: (r) => {
      notify({ severity: "success", message: `${r.assigned} device(s) moved.` });
      void qc.invalidateQueries({ queryKey: ["devices"] });
      void qc.invalidateQueries({ queryKey: ["sites"] });
      onClose();
    },
  });
  return (
    <DialogFrame
      open={!!devices}
      onClose={onClose}
      title={`Move ${devices?.length ?? 0} device(s) to a site`}
      onSubmit={() => site !== "" && move.mutate()}
      actions={
        <Button type="submit" variant="contained" disabled={site === "" || move.isPending}>
          Move
        </Button>
      }
    >
      <TextField
        select
        fullWidth
        label="Site"
        value={site}
        onChange={(e) => setSite(Number(e.target.value))}
        sx={{ mt: 1 }}
      >
        {(sites.data?.sites ?? []).map((s) => <MenuItem key={s.id} value={s.id}>{s.name}
        </MenuItem>)}
      </TextField>
      {move.error && <ErrorState error={move.error} title="Not moved" />}
    </DialogFrame>
  );
}

function SaveViewDialog(
  { open, onClose, onSave }: {
    open: boolean;
    onClose: () => void;
    onSave: (name: string) => Promise<void>;
  },
) {
  const [name, setName] = useState("");
  const [error, setError] = useState<unknown>(null);
  return (
    <DialogFrame
      open={open}
      onClose={onClose}
      title="Save this view"
      onSubmit={async () => {
        try {
          await onSave(name.trim());
          setName("");
          onClose();
        } catch (err) {
          setError(err);
        }
      }}
      actions={<Button type="submit" variant="contained" disabled={!name.trim()}>Save view</Button>}
    >
      <Typography color="text.secondary" sx={{ mb: 2 }}>
        Saved views keep the visible columns and the filters, and every operator can use them.
      </Typography>
      <TextField
        label="View name"
        fullWidth
        value={name}
        onChange={(e) => setName(e.target.value)}
        autoFocus
      />
      {error !== null && <ErrorState error={error} title="Not saved" />}
    </DialogFrame>
  );
}

type Containment = "quarantine" | "unquarantine" | "revoke" | "purge";

/** `/devices`. */
export function DevicesPage() {
  const admin = useIsAdmin();
  const qc = useQueryClient();
  const { notify, announce } = useToasts();
  const [params, setParams] = useSearchParams();
  const state = useMemo(() => parseListState(params), [params]);
  const stateRef = useRef(state);
  const gridApi = useRef<GridApi<Device> | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [selected, setSelected] = useState<Device[]>([]);
  const [hidden, setHidden] = useState<Set<string>>(DEFAULT_HIDDEN);
  const [columnsAnchor, setColumnsAnchor] = useState<HTMLElement | null>(null);
  const [actionsAnchor, setActionsAnchor] = useState<HTMLElement | null>(null);
  const [viewsAnchor, setViewsAnchor] = useState<HTMLElement | null>(null);
  const [quickJob, setQuickJob] = useState<Device[] | null>(null);
  const [moving, setMoving] = useState<Device[] | null>(null);
  const [updating, setUpdating] = useState<Device[] | null>(null);
  const savedFilters = useFilters();
  const [containing, setContaining] = useState<Containment | null>(null);
  const [savingView, setSavingView] = useState(false);
  const [search, setSearch] = useState(state.q ?? "");
  const [activeView, setActiveView] = useState<DeviceListView | null>(null);
  const sites = useSites();
  const views = useQuery({
    queryKey: ["device_list_views"],
    queryFn: ({ signal }) => api<{ views: DeviceListView[] }>("/api/device_list_views", { signal }),
  });
  const columns = useMemo(() => columnDefs(admin), [admin]);
  const gridColumns = useMemo(
    () => columns.map((c) => ({ ...c, hide: hidden.has(c.colId!) })),
    [columns, hidden],
  );

  const setState = useCallback((next: DeviceListState) => {
    setParams(toSearchParams(next), { replace: true });
  }, [setParams]);

  const datasource = useMemo<IDatasource>(() => ({
    getRows: async (p: IGetRowsParams) => {
      const grid = fromGridModels(
        p.filterModel as Record<string, unknown>,
        p.sortModel as { colId: string; sort: "asc" | "desc" }[],
      );
      const s = { ...stateRef.current, ...grid };
      try {
        const r = await api<DevicesReply>(
          `/api/devices${toApiQuery(s, p.startRow, p.endRow - p.startRow)}`,
        );
        setTotal(r.total);
        setLoadError(null);
        p.successCallback(r.devices, r.total);
        if (r.total === 0) gridApi.current?.showNoRowsOverlay();
        else gridApi.current?.hideOverlay();
      } catch (err) {
        setLoadError(err);
        p.failCallback();
      }
    },
  }), []);

  // Page-level filters (site, status, containment, search) live in the URL; when they
  // change the grid asks again. Column filters and sort come from the grid itself.
  useEffect(() => {
    const before = stateRef.current;
    stateRef.current = state;
    const g = gridApi.current;
    if (!g) return;
    if (!sameRows(before, state)) {
      const filterModel = toGridFilterModel(state);
      if (JSON.stringify(g.getFilterModel()) !== JSON.stringify(filterModel)) {
        g.setFilterModel(filterModel);
      }
      const sort = toGridSortModel(state)[0];
      g.applyColumnState({
        state: sort ? [{ colId: sort.colId, sort: sort.sort }] : [],
        defaultState: { sort: null },
      });
      g.purgeInfiniteCache();
    }
  }, [state]);

  useEffect(() => {
    const t = setTimeout(() => {
      if ((state.q ?? "") !== search.trim()) setState({ ...state, q: search.trim() || undefined });
    }, 300);
    return () => clearTimeout(t);
  }, [search, state, setState]);

  const onGridReady = (e: GridReadyEvent<Device>) => {
    gridApi.current = e.api;
    e.api.setFilterModel(toGridFilterModel(stateRef.current));
    const sort = toGridSortModel(stateRef.current)[0];
    if (sort) e.api.applyColumnState({ state: [{ colId: sort.colId, sort: sort.sort }] });
    e.api.setGridOption("datasource", datasource);
  };
  const syncFromGrid = () => {
    const g = gridApi.current;
    if (!g) return;
    const sortModel = g.getColumnState()
      .filter((c) => c.sort)
      .map((c) => ({ colId: c.colId, sort: c.sort as "asc" | "desc" }));
    const grid = fromGridModels(g.getFilterModel() as Record<string, unknown>, sortModel);
    const next = { ...stateRef.current, ...grid };
    stateRef.current = next;
    setState(next);
  };
  const reload = () => gridApi.current?.purgeInfiniteCache();

  // Live: a status change updates its row in place; an unknown device reloads the list.
  const reloadSoon = useRef<ReturnType<typeof setTimeout>>(undefined);
  useSocketEvent("device_status", (e) => {
    const d = e.data as { guid?: string; hostname?: string; status?: DevicePresence };
    if (!d.guid || !d.status) return;
    let found = false;
    gridApi.current?.forEachNode((node) => {
      const row = node.data;
      if (row && row.guid === d.guid) {
        found = true;
        node.setData({
          ...row,
          presence: d.status!,
          status: d.status === "online" ? "Online" : "Offline",
        });
      }
    });
    if (found) announce(`${d.hostname} is ${d.status}`);
    if (!found || state.status) {
      clearTimeout(reloadSoon.current);
      reloadSoon.current = setTimeout(reload, 1500);
    }
  });
  useSocketEvent("approvals", (e) => {
    if ((e.data as { status?: string }).status === "completed") reload();
  });

  const onDescription = async (e: CellValueChangedEvent<Device>) => {
    if (e.colDef.colId !== "description" || !e.data) return;
    const value = String(e.newValue ?? "").slice(0, 4000);
    try {
      await api(`/api/device/description/${encodeURIComponent(e.data.hostname)}`, {
        body: { description: value },
      });
      notify({ severity: "success", message: `Description of ${e.data.hostname} saved.` });
    } catch (err) {
      e.node.setData({ ...e.data, description: String(e.oldValue ?? "") });
      notify({
        severity: "error",
        message: `Description not saved: ${err instanceof ApiError ? err.message : String(err)}`,
      });
    }
  };

  const setColumnHidden = (colId: string, hide: boolean) => {
    const next = new Set(hidden);
    if (hide) next.add(colId);
    else next.delete(colId);
    setHidden(next);
    gridApi.current?.setColumnsVisible([colId], !hide);
    // A column chosen from the menu is shown where the operator can see it.
    if (!hide) setTimeout(() => gridApi.current?.ensureColumnVisible(colId), 0);
  };
  const applyColumns = (visible: string[] | null) => {
    const all = columns.map((c) => c.colId!);
    const shown = visible && visible.length
      ? new Set(visible)
      : new Set(all.filter((c) => !DEFAULT_HIDDEN.has(c)));
    setHidden(new Set(all.filter((c) => !shown.has(c))));
    gridApi.current?.setColumnsVisible(all.filter((c) => shown.has(c)), true);
    gridApi.current?.setColumnsVisible(all.filter((c) => !shown.has(c)), false);
  };
  const visibleColumns = () => columns.map((c) => c.colId!).filter((c) => !hidden.has(c));

  const applyView = (v: DeviceListView | null) => {
    setViewsAnchor(null);
    setActiveView(v);
    applyColumns(v ? v.columns : null);
    const sp = new URLSearchParams();
    for (const [k, val] of Object.entries(v?.filters ?? {})) {
      if (typeof val === "string") sp.set(k, val);
    }
    setState(parseListState(sp));
  };
  const viewBody = (name: string) => ({
    name,
    columns: visibleColumns(),
    filters: Object.fromEntries(toSearchParams(state)),
  });
  const saveView = async (name: string) => {
    const r = await api<{ id: number }>("/api/device_list_views", { body: viewBody(name) });
    await qc.invalidateQueries({ queryKey: ["device_list_views"] });
    setActiveView({ id: r.id, ...viewBody(name) });
    notify({ severity: "success", message: `View “${name}” saved.` });
  };
  const updateView = async () => {
    if (!activeView) return;
    await api(`/api/device_list_views/${activeView.id}`, {
      method: "PUT",
      body: viewBody(activeView.name),
    });
    await qc.invalidateQueries({ queryKey: ["device_list_views"] });
    notify({ severity: "success", message: `View “${activeView.name}” updated.` });
  };
  const deleteView = async () => {
    if (!activeView) return;
    await api(`/api/device_list_views/${activeView.id}`, { method: "DELETE" });
    await qc.invalidateQueries({ queryKey: ["device_list_views"] });
    notify({ severity: "success", message: `View “${activeView.name}” deleted.` });
    applyView(null);
  };

  const exportCsv = useMutation({
    mutationFn: async () => {
      const rows: Device[] = [];
      for (let offset = 0;; offset += 10_000) {
        const r = await api<DevicesReply>(
          `/api/devices${toApiQuery(stateRef.current, offset, 10_000)}`,
        );
        rows.push(...r.devices);
        if (rows.length >= r.total || !r.devices.length) break;
      }
      const g = gridApi.current!;
      const cols = g.getAllDisplayedColumns().filter((c) =>
        c.getColId() !== "ag-Grid-SelectionColumn"
      );
      const csv = toCsv(
        cols.map((c) => c.getColDef().headerName ?? c.getColId()),
        rows.map((d) =>
          cols.map((c) => {
            const id = c.getColId();
            if (id === "status") return d.presence;
            if (id === "hostname") return d.hostname;
            const def = c.getColDef();
            if (def.valueGetter && typeof def.valueGetter === "function") {
              return def.valueGetter({ data: d } as never);
            }
            return (d as unknown as Record<string, unknown>)[def.field ?? id];
          })
        ),
      );
      const url = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = `devices-${new Date().toISOString().slice(0, 10)}.csv`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      return rows.length;
    },
    onSuccess: (n) => notify({ severity: "success", message: `Exported ${n} device(s).` }),
    onError: (err) =>
      notify({ severity: "error", message: `Export failed: ${(err as Error).message}` }),
  });

  const contain = async (action: Containment) => {
    const failed: string[] = [];
    for (const d of selected) {
      try {
        await api(`/api/devices/${d.guid}/${action}`, { method: "POST" });
      } catch (err) {
        failed.push(`${d.hostname} (${err instanceof ApiError ? err.message : String(err)})`);
      }
    }
    notify({
      severity: failed.length ? "warning" : "success",
      message: `${selected.length - failed.length} device(s): ${action} done.` +
        (failed.length ? ` Failed: ${failed.join("; ")}` : ""),
    });
    setSelected([]);
    gridApi.current?.deselectAll();
    reload();
    void qc.invalidateQueries({ queryKey: ["sites"] });
  };

  const filtered = !!(state.site || state.filter || state.status || state.containment ||
    state.q || Object.keys(state.filters).length);
  const filterName = state.filter
    ? savedFilters.data?.filters.find((f) => f.id === state.filter)?.name ?? `#${state.filter}`
    : undefined;
  const siteName = state.site
    ? sites.data?.sites.find((s) => s.id === state.site)?.name
    : undefined;

  return (
    <>
      <PageHeader
        title="Devices"
        subtitle={total === null
          ? "Loading…"
          : `${total.toLocaleString()} device${total === 1 ? "" : "s"}${
            filtered ? " match these filters" : ""
          }` +
            (selected.length ? ` · ${selected.length} selected` : "")}
        actions={
          <>
            <Button
              variant="outlined"
              onClick={() => exportCsv.mutate()}
              disabled={exportCsv.isPending}
            >
              Export CSV
            </Button>
            {/* Without a selection the dialog runs on a site, a filter or every device. */}
            <Button variant="contained" onClick={() => setQuickJob(selected)}>
              Quick job{selected.length ? ` (${selected.length})` : ""}
            </Button>
            {admin && (
              <>
                <Button
                  variant="outlined"
                  disabled={!selected.length}
                  endIcon={<ArrowDropDownIcon />}
                  onClick={(e) => setActionsAnchor(e.currentTarget)}
                  aria-haspopup="menu"
                >
                  Actions
                </Button>
                <Menu
                  anchorEl={actionsAnchor}
                  open={!!actionsAnchor}
                  onClose={() => setActionsAnchor(null)}
                >
                  <MenuItem onClick={() => (setActionsAnchor(null), setMoving(selected))}>
                    Move to site…
                  </MenuItem>
                  <MenuItem onClick={() => (setActionsAnchor(null), setUpdating(selected))}>
                    Update agent…
                  </MenuItem>
                  <Divider />
                  {(["quarantine", "unquarantine", "revoke", "purge"] as const).map((a) => (
                    <MenuItem
                      key={a}
                      onClick={() => (setActionsAnchor(null), setContaining(a))}
                      sx={a === "purge" || a === "revoke" ? { color: "error.main" } : undefined}
                    >
                      {a[0]!.toUpperCase() + a.slice(1)}…
                    </MenuItem>
                  ))}
                </Menu>
              </>
            )}
          </>
        }
      />
      <Stack
        direction="row"
        spacing={1}
        sx={{ alignItems: "center", px: 3, pb: 1.5, flexWrap: "wrap", rowGap: 1 }}
      >
        <TextField
          size="small"
          label="Search"
          placeholder="Hostname, description, user, IP"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
          sx={{ width: 230 }}
          slotProps={{
            input: {
              endAdornment: search
                ? (
                  <InputAdornment position="end">
                    <IconButton
                      size="small"
                      aria-label="Clear search"
                      onClick={() => setSearch("")}
                    >
                      ×
                    </IconButton>
                  </InputAdornment>
                )
                : undefined,
            },
          }}
        />
        <TextField
          select
          size="small"
          label="Site"
          value={state.site ?? ""}
          onChange={(e) =>
            setState({
              ...state,
              site: e.target.value === "" ? undefined : Number(e.target.value),
            })}
          sx={{ width: 150 }}
        >
          <MenuItem value="">All sites</MenuItem>
          {(sites.data?.sites ?? []).map((s) => (
            <MenuItem key={s.id} value={s.id}>{s.name}</MenuItem>
          ))}
          {state.site && !siteName && <MenuItem value={state.site}>Site {state.site}</MenuItem>}
        </TextField>
        <TextField
          select
          size="small"
          label="Status"
          value={state.status ?? ""}
          onChange={(e) =>
            setState({
              ...state,
              status: (e.target.value || undefined) as DeviceListState["status"],
            })}
          sx={{ width: 130 }}
        >
          <MenuItem value="">Any status</MenuItem>
          <MenuItem value="online">Online</MenuItem>
          <MenuItem value="offline">Offline</MenuItem>
          <MenuItem value="overdue">Overdue</MenuItem>
        </TextField>
        {admin && (
          <TextField
            select
            size="small"
            label="Containment"
            value={state.containment ?? ""}
            onChange={(e) =>
              setState({
                ...state,
                containment: (e.target.value || undefined) as DeviceListState["containment"],
              })}
            sx={{ width: 150 }}
          >
            <MenuItem value="">Any</MenuItem>
            <MenuItem value="active">Active</MenuItem>
            <MenuItem value="quarantined">Quarantined</MenuItem>
            <MenuItem value="revoked">Revoked</MenuItem>
          </TextField>
        )}
        {state.filter && (
          <Chip
            label={`Filter: ${filterName}`}
            onDelete={() => setState({ ...state, filter: undefined })}
            component={RouterLink}
            to={`/filters/${state.filter}`}
            clickable
            aria-label={`Saved filter ${filterName}`}
          />
        )}
        {filtered && (
          <Button
            size="small"
            onClick={() => {
              setSearch("");
              setState({ filters: {} });
            }}
          >
            Clear filters
          </Button>
        )}
        <Box sx={{ flexGrow: 1 }} />
        <Button
          size="small"
          variant="outlined"
          endIcon={<ArrowDropDownIcon />}
          onClick={(e) => setViewsAnchor(e.currentTarget)}
          aria-haspopup="menu"
        >
          View: {activeView?.name ?? "Default"}
        </Button>
        <Menu anchorEl={viewsAnchor} open={!!viewsAnchor} onClose={() => setViewsAnchor(null)}>
          <MenuItem selected={!activeView} onClick={() => applyView(null)}>Default</MenuItem>
          {(views.data?.views ?? []).map((v) => (
            <MenuItem
              key={v.id}
              selected={activeView?.id === v.id}
              onClick={() => applyView(v)}
            >
              {v.name}
            </MenuItem>
          ))}
          <Divider />
          <MenuItem onClick={() => (setViewsAnchor(null), setSavingView(true))}>
            Save as new view…
          </MenuItem>
          {activeView && (
            <MenuItem onClick={() => (setViewsAnchor(null), void updateView())}>
              Update “{activeView.name}”
            </MenuItem>
          )}
          {activeView && (
            <MenuItem
              sx={{ color: "error.main" }}
              onClick={() => (setViewsAnchor(null), void deleteView())}
            >
              Delete “{activeView.name}”
            </MenuItem>
          )}
        </Menu>
        <Button
          size="small"
          variant="outlined"
          onClick={(e) => setColumnsAnchor(e.currentTarget)}
          aria-haspopup="menu"
        >
          Columns
        </Button>
        <Menu
          anchorEl={columnsAnchor}
          open={!!columnsAnchor}
          onClose={() => setColumnsAnchor(null)}
          slotProps={{ paper: { sx: { maxHeight: 420 } } }}
        >
          {columns.map((c) => (
            <MenuItem
              key={c.colId}
              dense
              onClick={() => setColumnHidden(c.colId!, !hidden.has(c.colId!))}
            >
              <ListItemIcon>
                <Checkbox
                  edge="start"
                  size="small"
                  checked={!hidden.has(c.colId!)}
                  tabIndex={-1}
                  slotProps={{ input: { "aria-label": c.headerName } }}
                />
              </ListItemIcon>
              <ListItemText primary={c.headerName} />
            </MenuItem>
          ))}
          <Divider />
          <MenuItem onClick={() => (setColumnsAnchor(null), applyColumns(null))}>
            Reset columns
          </MenuItem>
        </Menu>
        <Tooltip title="Reload">
          <IconButton size="small" aria-label="Reload devices" onClick={reload}>
            <RefreshIcon />
          </IconButton>
        </Tooltip>
      </Stack>
      {loadError !== null && (
        <ErrorState error={loadError} onRetry={reload} title="Devices could not be loaded" />
      )}
      {total === 0 && !filtered && (
        <Typography color="text.secondary" sx={{ px: 3, pb: 1 }}>
          No devices yet. Add devices from{" "}
          <Link component={RouterLink} to="/sites">a site's install command</Link>, then approve
          them in <Link component={RouterLink} to="/approvals">Device approvals</Link>.
        </Typography>
      )}
      <Box sx={{ flexGrow: 1, minHeight: 300, px: 3, pb: 2 }}>
        <DataGrid<Device>
          label="Devices"
          emptyText={filtered ? "No device matches these filters" : "No devices yet"}
          columnDefs={gridColumns}
          rowModelType="infinite"
          cacheBlockSize={PAGE}
          maxBlocksInCache={40}
          infiniteInitialRowCount={1}
          maxConcurrentDatasourceRequests={2}
          getRowId={(p) => p.data.guid}
          onGridReady={onGridReady}
          onFilterChanged={syncFromGrid}
          onSortChanged={syncFromGrid}
          onCellValueChanged={onDescription}
          rowSelection={ROW_SELECTION}
          onSelectionChanged={(e: SelectionChangedEvent<Device>) =>
            setSelected(e.api.getSelectedRows())}
          singleClickEdit={false}
          stopEditingWhenCellsLoseFocus
        />
      </Box>
      {quickJob && (
        <QuickJobDialog
          devices={quickJob}
          onClose={() => setQuickJob(null)}
        />
      )}
      <MoveDialog devices={moving} onClose={() => setMoving(null)} />
      {updating && (
        <AgentUpdateDialog
          devices={updating}
          siteId={state.site}
          onClose={() => setUpdating(null)}
        />
      )}
      <SaveViewDialog open={savingView} onClose={() => setSavingView(false)} onSave={saveView} />
      <ConfirmDialog
        open={!!containing}
        title={`${
          containing ? containing[0]!.toUpperCase() + containing.slice(1) : ""
        } ${selected.length} device(s)?`}
        confirmLabel={containing ? containing[0]!.toUpperCase() + containing.slice(1) : ""}
        destructive={containing !== "unquarantine"}
        typeToConfirm={containing === "purge" ? "PURGE" : undefined}
        onClose={() => setContaining(null)}
        onConfirm={() => contain(containing!)}
      >
        {containing === "quarantine" &&
          "Quarantined devices keep their connection but run no jobs until you unquarantine them."}
        {containing === "unquarantine" && "The devices may run jobs again."}
        {containing === "revoke" &&
          "Revoked devices lose their tokens and are refused until they enroll again and are approved."}
        {containing === "purge" &&
          "Purging deletes the devices and their history. They cannot come back without a fresh approval."}
        <Box component="ul" sx={{ mt: 1, maxHeight: 160, overflow: "auto" }}>
          {selected.slice(0, 50).map((d) => <li key={d.guid}>{d.hostname}</li>)}
          {selected.length > 50 && <li>… and {selected.length - 50} more</li>}
        </Box>
      </ConfirmDialog>
    </>
  );
}
