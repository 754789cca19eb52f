/**
 * Maintenance windows: when each opens (a cron time in its time zone), for how long, for
 * which devices (one site, a saved filter, or all), whether it is open now and when it
 * opens next. Admins create, edit and delete them; the editor shows the next openings as
 * the engine computes them. Jobs may be held to windows; watchdogs stay quiet inside them.
 *
 * @module
 */
import Autocomplete from "@mui/material/Autocomplete";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import FormControlLabel from "@mui/material/FormControlLabel";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import Switch from "@mui/material/Switch";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef, GridApi } from "ag-grid-community";
import { useEffect, useMemo, useRef, useState } from "react";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api } from "../api/client.ts";
import { useFilters, useSites } from "../api/queries.ts";
import type { MaintenanceWindow } from "../api/types.ts";
import { useIsAdmin } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { EnabledPill, StatePill } from "../components/badges.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DataGrid, editDeleteColumn, exportGridCsv, WRAPPED_CELL } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { EmptyState, ErrorState } from "../components/states.tsx";
import { duration, when } from "../lib/format.ts";
import { cronInWords } from "../lib/schedule_words.ts";

function WindowDialog(
  { win, onClose }: { win: MaintenanceWindow | "new" | null; onClose: () => void },
) {
  const editing = win && win !== "new" ? win : null;
  const qc = useQueryClient();
  const { notify } = useToasts();
  const sites = useSites();
  const filters = useFilters();
  const [name, setName] = useState(editing?.name ?? "");
  const [cron, setCron] = useState(editing?.cron ?? "0 22 * * 6");
  const [tz, setTz] = useState(
    editing?.timezone ?? (Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"),
  );
  const [minutes, setMinutes] = useState(String(editing?.duration_minutes ?? 240));
  const [scope, setScope] = useState<"all" | "site" | "filter">(
    editing?.site_id ? "site" : editing?.filter_id ? "filter" : "all",
  );
  const [siteId, setSiteId] = useState<number | "">(editing?.site_id ?? "");
  const [filterId, setFilterId] = useState<number | "">(editing?.filter_id ?? "");
  const [enabled, setEnabled] = useState(editing?.enabled ?? true);
  const [body, setBody] = useState("");
  useEffect(() => {
    const t = setTimeout(
      () => setBody(JSON.stringify({ schedule: { type: "cron", cron, timezone: tz }, count: 3 })),
      400,
    );
    return () => clearTimeout(t);
  }, [cron, tz]);
  const next = useQuery({
    queryKey: ["schedule-preview", body],
    queryFn: ({ signal }) =>
      api<{ runs: Array<{ at: string; local: string }>; time_zone: string }>(
        "/api/scheduled_jobs/schedule_preview",
        { body: JSON.parse(body), signal },
      ),
    enabled: !!body,
    retry: false,
    placeholderData: (p) => p,
  });
  const save = useMutation({
    mutationFn: () => {
      const b = {
        name: name.trim(),
        cron: cron.trim(),
        timezone: tz,
        duration_minutes: Number(minutes),
        site_id: scope === "site" && siteId !== "" ? siteId : null,
        filter_id: scope === "filter" && filterId !== "" ? filterId : null,
        enabled,
      };
      return editing
        ? api(`/api/maintenance_windows/${editing.id}`, { method: "PUT", body: b })
        : api("/api/maintenance_windows", { body: b });
    },
    onSuccess: () => {
      notify({ severity: "success", message: `Window ${name.trim()} saved.` });
      void qc.invalidateQueries({ queryKey: ["maintenance_windows"] });
      onClose();
    },
  });
  const zones = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] })
    .supportedValuesOf?.("timeZone") ?? ["UTC"];
  const badMinutes = !/^\d+$/.test(minutes) || Number(minutes) < 1 || Number(minutes) > 10_080;
  return (
    <DialogFrame
      open
      onClose={onClose}
      maxWidth="md"
      title={editing ? `Edit ${editing.name}` : "New maintenance window"}
      onSubmit={() => save.mutate()}
      actions={
        <Button
          type="submit"
          variant="contained"
          disabled={save.isPending || !name.trim() || badMinutes ||
            (scope === "site" && siteId === "") || (scope === "filter" && filterId === "")}
        >
          {editing ? "Save" : "Create window"}
        </Button>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        <Stack direction="row" spacing={1.5}>
          <TextField
            label="Window name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            sx={{ flex: 1 }}
          />
          <FormControlLabel
            control={<Switch checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />}
            label="Enabled"
          />
        </Stack>
        <Stack direction="row" spacing={1.5}>
          <TextField
            label="Opens at (cron)"
            value={cron}
            onChange={(e) => setCron(e.target.value)}
            helperText={cronInWords(cron) ?? "minute hour day month weekday"}
            sx={{ flex: 1 }}
            slotProps={{ htmlInput: { spellCheck: false } }}
          />
          <Autocomplete
            sx={{ width: 240 }}
            options={zones}
            value={tz}
            disableClearable
            onChange={(_, v) => v && setTz(v)}
            renderInput={(p) => <TextField {...p} label="Time zone" />}
          />
          <TextField
            label="Stays open (minutes)"
            value={minutes}
            onChange={(e) => setMinutes(e.target.value)}
            error={badMinutes}
            helperText={badMinutes ? "1 to 10080" : duration(Number(minutes) * 60)}
            sx={{ width: 180 }}
          />
        </Stack>
        <Stack direction="row" spacing={1.5}>
          <TextField
            select
            label="Applies to"
            value={scope}
            onChange={(e) => setScope(e.target.value as "all" | "site" | "filter")}
            sx={{ width: 200 }}
          >
            <MenuItem value="all">Every device</MenuItem>
            <MenuItem value="site">One site</MenuItem>
            <MenuItem value="filter">A saved filter</MenuItem>
          </TextField>
          {scope === "site" && (
            <TextField
              select
              label="Site"
              value={siteId}
              onChange={(e) => setSiteId(Number(e.target.value))}
              sx={{ flex: 1 }}
            >
              {(sites.data?.sites ?? []).map((s) => (
                <MenuItem key={s.id} value={s.id}>{s.name}</MenuItem>
              ))}
            </TextField>
          )}
          {scope === "filter" && (
            <TextField
              select
              label="Filter"
              value={filterId}
              onChange={(e) => setFilterId(Number(e.target.value))}
              sx={{ flex: 1 }}
            >
              {(filters.data?.filters ?? []).map((f) => (
                <MenuItem key={f.id} value={f.id}>{f.name}</MenuItem>
              ))}
            </TextField>
          )}
        </Stack>
        <Box role="status" aria-label="Next openings">
          <Typography variant="subtitle2">Opens next (the engine's calculation)</Typography>
          {next.error && <ErrorState error={next.error} title="Not a valid schedule" />}
          {next.data?.runs.map((r) => (
            <Typography key={r.at} variant="body2">
              {r.local.replace("T", " ")} {next.data!.time_zone} · your time {when(r.at)}
            </Typography>
          ))}
        </Box>
        {save.error && <ErrorState error={save.error} title="Not saved" />}
      </Stack>
    </DialogFrame>
  );
}

/** `/maintenance`. */
export function MaintenancePage() {
  const admin = useIsAdmin();
  const qc = useQueryClient();
  const { notify } = useToasts();
  const sites = useSites();
  const filters = useFilters();
  const grid = useRef<GridApi<MaintenanceWindow> | null>(null);
  const [editing, setEditing] = useState<MaintenanceWindow | "new" | null>(null);
  const [deleting, setDeleting] = useState<MaintenanceWindow | null>(null);
  const list = useQuery({
    queryKey: ["maintenance_windows"],
    queryFn: ({ signal }) =>
      api<{ windows: MaintenanceWindow[] }>("/api/maintenance_windows", { signal }),
    refetchInterval: 60_000,
  });
  const columns = useMemo<ColDef<MaintenanceWindow>[]>(() => {
    const cols: ColDef<MaintenanceWindow>[] = [
      {
        headerName: "Name",
        field: "name",
        flex: 1,
        minWidth: 110,
        wrapText: true,
        autoHeight: true,
        cellStyle: WRAPPED_CELL,
      },
      {
        headerName: "Opens",
        colId: "cron",
        flex: 1.3,
        minWidth: 160,
        // Cells wrap (the row grows) so "Opens next" stays in view at 1280 px.
        wrapText: true,
        autoHeight: true,
        cellStyle: WRAPPED_CELL,
        valueGetter: (
          p,
        ) => (p.data ? `${cronInWords(p.data.cron) ?? p.data.cron} (${p.data.timezone})` : ""),
        tooltipValueGetter: (p) => p.data?.cron,
      },
      {
        headerName: "For",
        field: "duration_minutes",
        width: 90,
        valueFormatter: (p) => duration(Number(p.value) * 60),
      },
      {
        headerName: "Applies to",
        colId: "scope",
        width: 120,
        wrapText: true,
        autoHeight: true,
        cellStyle: WRAPPED_CELL,
        valueGetter: (p) =>
          p.data?.site_id
            ? `Site ${
              sites.data?.sites.find((s) => s.id === p.data!.site_id)?.name ?? p.data.site_id
            }`
            : p.data?.filter_id
            ? `Filter ${
              filters.data?.filters.find((f) => f.id === p.data!.filter_id)?.name ??
                p.data.filter_id
            }`
            : "Every device",
      },
      {
        headerName: "Now",
        colId: "open_now",
        width: 100,
        autoHeight: true,
        cellStyle: WRAPPED_CELL,
        valueGetter: (p) => (p.data?.open_now ? `Open until ${when(p.data.open_until)}` : "Closed"),
        cellRenderer: (p: { data?: MaintenanceWindow; value?: string }) =>
          p.data &&
          (p.data.open_now
            ? (
              <Stack spacing={0.5} sx={{ alignItems: "flex-start" }}>
                <StatePill state="Running" label="Open" />
                <span>until {when(p.data.open_until)}</span>
              </Stack>
            )
            : <span>Closed</span>),
      },
      {
        headerName: "Opens next",
        colId: "next_open_at",
        width: 150,
        wrapText: true,
        autoHeight: true,
        cellStyle: WRAPPED_CELL,
        valueGetter: (p) => p.data?.next_open_at ?? null,
        valueFormatter: (p) => (p.value ? when(p.value) : "—"),
      },
      {
        headerName: "State",
        colId: "enabled",
        width: 104,
        valueGetter: (p) => (p.data?.enabled ? "Enabled" : "Disabled"),
        cellRenderer: (p: { data?: MaintenanceWindow }) =>
          p.data && <EnabledPill enabled={p.data.enabled} />,
      },
    ];
    if (admin) {
      cols.push(editDeleteColumn<MaintenanceWindow>(setEditing, setDeleting, 150));
    }
    return cols;
  }, [admin, sites.data, filters.data]);
  const rows = list.data?.windows ?? [];
  return (
    <>
      <PageHeader
        title="Maintenance windows"
        subtitle="When devices may be worked on: jobs can wait for them, watchdogs stay quiet in them"
        actions={
          <>
            <Button
              variant="outlined"
              disabled={!rows.length}
              onClick={() =>
                notify({
                  severity: "success",
                  message: `Exported ${
                    exportGridCsv(grid.current, "maintenance-windows")
                  } window(s).`,
                })}
            >
              Export CSV
            </Button>
            {admin && (
              <Button variant="contained" onClick={() => setEditing("new")}>New window</Button>
            )}
          </>
        }
      />
      {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
      {list.data && !rows.length
        ? (
          <EmptyState
            title="No maintenance windows"
            action={admin
              ? <Button variant="contained" onClick={() => setEditing("new")}>New window</Button>
              : undefined}
          >
            A window opens at a cron time in its time zone and stays open for a while, for a site, a
            filter's devices or everything.
          </EmptyState>
        )
        : (
          <Box sx={{ flexGrow: 1, minHeight: 300, px: 3, pb: 2 }}>
            <DataGrid<MaintenanceWindow>
              label="Maintenance windows"
              loading={list.isPending}
              rowData={rows}
              columnDefs={columns}
              getRowId={(p) => String(p.data.id)}
              onGridReady={(e) => (grid.current = e.api)}
              rowHeight={44}
            />
          </Box>
        )}
      {editing && <WindowDialog win={editing} onClose={() => setEditing(null)} />}
      <ConfirmDialog
        open={!!deleting}
        title={`Delete ${deleting?.name}?`}
        confirmLabel="Delete"
        destructive
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          await api(`/api/maintenance_windows/${deleting!.id}`, { method: "DELETE" });
          notify({ severity: "success", message: `${deleting!.name} deleted.` });
          void qc.invalidateQueries({ queryKey: ["maintenance_windows"] });
        }}
      >
        Jobs held to windows no longer run in it; watchdogs stop staying quiet in it.
      </ConfirmDialog>
    </>
  );
}
