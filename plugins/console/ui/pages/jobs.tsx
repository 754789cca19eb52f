/**
 * Scheduled jobs: each job's targets and schedule in words, its next run (the engine's),
 * the last occurrence's status and result counts, an enabled switch; filters by schedule
 * kind and state; new, edit, rerun, delete. Runs update live from the operator socket's
 * activity events.
 *
 * @module
 */
import MoreVertIcon from "@mui/icons-material/MoreVert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import IconButton from "@mui/material/IconButton";
import Link from "@mui/material/Link";
import Menu from "@mui/material/Menu";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import Switch from "@mui/material/Switch";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef, GridApi } from "ag-grid-community";
import { useMemo, useRef, useState } from "react";
import { Link as RouterLink, useNavigate, useSearchParams } from "react-router";
import { api } from "../api/client.ts";
import { useFilters, useSites } from "../api/queries.ts";
import { useSocketEvent } from "../api/socket.ts";
import type { ScheduledJob } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { StatePill } from "../components/badges.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DataGrid, exportGridCsv, WRAPPED_CELL } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { EmptyState, ErrorState } from "../components/states.tsx";
import { ago, whenEpoch } from "../lib/format.ts";
import { scheduleInWords, targetsInWords } from "../lib/schedule_words.ts";

const KINDS: Array<[string, string, (j: ScheduledJob) => boolean]> = [
  ["immediate", "Immediate", (j) => j.schedule.type === "immediately"],
  ["once", "Once", (j) => j.schedule.type === "once"],
  ["recurring", "Recurring", (j) => !["immediately", "once"].includes(j.schedule.type)],
  ["maintenance", "Maintenance windows only", (j) => j.maintenance_window_only],
];
const STATES: Array<[string, string, (j: ScheduledJob) => boolean]> = [
  ["enabled", "Enabled", (j) => j.enabled],
  ["disabled", "Disabled", (j) => !j.enabled],
  ["completed", "Completed", (j) => j.next_run_ts === null && j.last_run_ts !== null],
  [
    "failing",
    "Last run failed",
    (j) => ["Failed", "Timed Out", "Expired"].includes(j.last_status ?? ""),
  ],
];

/** `GET /api/scheduled_jobs`. */
export function useJobs() {
  return useQuery({
    queryKey: ["scheduled_jobs"],
    queryFn: ({ signal }) => api<{ jobs: ScheduledJob[] }>("/api/scheduled_jobs", { signal }),
  });
}

/** `/jobs`. */
export function JobsPage() {
  const jobs = useJobs();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const { notify } = useToasts();
  const sites = useSites();
  const filters = useFilters();
  const [params, setParams] = useSearchParams();
  const grid = useRef<GridApi<ScheduledJob> | null>(null);
  const [menu, setMenu] = useState<{ anchor: HTMLElement; job: ScheduledJob } | null>(null);
  const [deleting, setDeleting] = useState<ScheduledJob | null>(null);
  const kind = params.get("kind") ?? "";
  const state = params.get("state") ?? "";
  const toggleParam = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (next.get(k) === v) next.delete(k);
    else next.set(k, v);
    setParams(next, { replace: true });
  };

  // Job results arrive as activity; the list's counts follow (batched).
  const soon = useRef<ReturnType<typeof setTimeout>>(undefined);
  useSocketEvent("activity", (e) => {
    if ((e.data as { source?: string }).source !== "scheduler") return;
    clearTimeout(soon.current);
    soon.current = setTimeout(
      () => void qc.invalidateQueries({ queryKey: ["scheduled_jobs"] }),
      1000,
    );
  });

  const toggle = async (j: ScheduledJob, enabled: boolean) => {
    try {
      await api(`/api/scheduled_jobs/${j.id}/toggle`, { body: { enabled } });
      notify({ severity: "success", message: `${j.name} ${enabled ? "enabled" : "disabled"}.` });
    } catch (err) {
      notify({ severity: "error", message: (err as Error).message });
    }
    void qc.invalidateQueries({ queryKey: ["scheduled_jobs"] });
  };
  const rerun = async (j: ScheduledJob) => {
    try {
      await api(`/api/scheduled_jobs/${j.id}/rerun`, { method: "POST" });
      notify({ severity: "success", message: `${j.name} started.` });
    } catch (err) {
      notify({ severity: "error", message: (err as Error).message });
    }
    void qc.invalidateQueries({ queryKey: ["scheduled_jobs"] });
  };

  const names = useMemo(() => ({
    filter: (id: number) => filters.data?.filters.find((f) => f.id === id)?.name ?? `#${id}`,
    site: (id: number) => sites.data?.sites.find((s) => s.id === id)?.name ?? `#${id}`,
  }), [filters.data, sites.data]);

  const columns = useMemo<ColDef<ScheduledJob>[]>(() => [
    {
      headerName: "Name",
      field: "name",
      flex: 1,
      minWidth: 150,
      wrapText: true,
      autoHeight: true,
      cellStyle: WRAPPED_CELL,
      cellRenderer: (p: { data?: ScheduledJob }) =>
        p.data && <Link component={RouterLink} to={`/jobs/${p.data.id}`}>{p.data.name}</Link>,
    },
    {
      headerName: "Targets",
      colId: "targets",
      width: 130,
      // Long cells wrap (the row grows) so the enabled switch stays in view at 1280 px.
      wrapText: true,
      autoHeight: true,
      cellStyle: WRAPPED_CELL,
      valueGetter: (p) => (p.data ? targetsInWords(p.data.targets, names) : ""),
      tooltipValueGetter: (p) => p.value,
    },
    {
      headerName: "Schedule",
      colId: "schedule",
      flex: 1.5,
      minWidth: 180,
      wrapText: true,
      autoHeight: true,
      cellStyle: WRAPPED_CELL,
      valueGetter: (p) =>
        p.data
          ? scheduleInWords(p.data.schedule) +
            (p.data.maintenance_window_only ? " · in maintenance windows" : "")
          : "",
      tooltipValueGetter: (p) => p.value,
    },
    {
      headerName: "Next run",
      colId: "next_run_ts",
      width: 120,
      valueGetter: (p) => p.data?.next_run_ts ?? null,
      valueFormatter: (p) => (p.value ? ago(p.value * 1000) : "—"),
      tooltipValueGetter: (p) => (p.value ? whenEpoch(p.value) : null),
    },
    {
      headerName: "Last status",
      colId: "last_status",
      width: 110,
      valueGetter: (p) => p.data?.last_status ?? "Never ran",
      cellRenderer: (p: { data?: ScheduledJob }) =>
        p.data &&
        (p.data.last_status ? <StatePill state={p.data.last_status} /> : <span>Never ran</span>),
    },
    {
      headerName: "Results",
      colId: "results",
      width: 120,
      wrapText: true,
      autoHeight: true,
      cellStyle: WRAPPED_CELL,
      valueGetter: (p) => {
        const c = p.data?.result_counts;
        if (!c || !c.total_targets) return "";
        return [
          c.success && `${c.success} ok`,
          c.failed && `${c.failed} failed`,
          c.running + c.pending && `${c.running + c.pending} running`,
          c.timed_out && `${c.timed_out} timed out`,
          c.expired && `${c.expired} expired`,
        ].filter(Boolean).join(", ") + ` of ${c.total_targets}`;
      },
    },
    {
      headerName: "Enabled",
      colId: "enabled",
      width: 90,
      valueGetter: (p) => (p.data?.enabled ? "Yes" : "No"),
      cellRenderer: (p: { data?: ScheduledJob }) =>
        p.data && (
          <Switch
            size="small"
            checked={p.data.enabled}
            onChange={(e) => void toggle(p.data!, e.target.checked)}
            slotProps={{ input: { "aria-label": `${p.data.name} enabled` } }}
          />
        ),
    },
    {
      headerName: "Actions",
      colId: "actions",
      width: 80,
      sortable: false,
      cellRenderer: (p: { data?: ScheduledJob }) =>
        p.data && (
          <IconButton
            size="small"
            aria-label={`More actions for ${p.data.name}`}
            aria-haspopup="menu"
            onClick={(e) => setMenu({ anchor: e.currentTarget, job: p.data! })}
          >
            <MoreVertIcon fontSize="small" />
          </IconButton>
        ),
    },
  ], [names]);

  const all = jobs.data?.jobs ?? [];
  const shown = all.filter((j) =>
    (!kind || KINDS.find(([k]) => k === kind)?.[2](j)) &&
    (!state || STATES.find(([k]) => k === state)?.[2](j))
  );
  const pick = (fn: (j: ScheduledJob) => void) => () => {
    const j = menu!.job;
    setMenu(null);
    fn(j);
  };

  return (
    <>
      <PageHeader
        title="Scheduled jobs"
        subtitle={jobs.data
          ? `${shown.length} of ${all.length} jobs`
          : "Scripts that run on a schedule"}
        actions={
          <>
            <Button
              variant="outlined"
              disabled={!all.length}
              onClick={() => {
                const n = exportGridCsv(grid.current, "scheduled-jobs");
                notify({ severity: "success", message: `Exported ${n} job(s).` });
              }}
            >
              Export CSV
            </Button>
            <Button variant="contained" onClick={() => navigate("/jobs/new")}>New job</Button>
          </>
        }
      />
      <Stack direction="row" spacing={0.75} sx={{ px: 3, pb: 1.5, flexWrap: "wrap", rowGap: 1 }}>
        {KINDS.map(([k, label]) => (
          <Chip
            key={k}
            label={label}
            clickable
            onClick={() => toggleParam("kind", k)}
            color={kind === k ? "primary" : "default"}
            variant={kind === k ? "filled" : "outlined"}
            aria-pressed={kind === k}
          />
        ))}
        <Box sx={{ width: 12 }} />
        {STATES.map(([k, label]) => (
          <Chip
            key={k}
            label={label}
            clickable
            onClick={() => toggleParam("state", k)}
            color={state === k ? "primary" : "default"}
            variant={state === k ? "filled" : "outlined"}
            aria-pressed={state === k}
          />
        ))}
      </Stack>
      {jobs.error && <ErrorState error={jobs.error} onRetry={() => jobs.refetch()} />}
      {jobs.data && !all.length
        ? (
          <EmptyState
            title="No scheduled jobs yet"
            action={
              <Button variant="contained" onClick={() => navigate("/jobs/new")}>New job</Button>
            }
          >
            A job runs scripts on devices, filters or sites once, at intervals, or on a cron
            schedule in any time zone.
          </EmptyState>
        )
        : (
          <Box sx={{ flexGrow: 1, minHeight: 300, px: 3, pb: 2 }}>
            <DataGrid<ScheduledJob>
              label="Scheduled jobs"
              emptyText="No job matches these filters"
              loading={jobs.isPending}
              rowData={shown}
              columnDefs={columns}
              getRowId={(p) => String(p.data.id)}
              onGridReady={(e) => (grid.current = e.api)}
            />
          </Box>
        )}
      <Menu anchorEl={menu?.anchor} open={!!menu} onClose={() => setMenu(null)}>
        <MenuItem onClick={pick((j) => navigate(`/jobs/${j.id}`))}>Edit</MenuItem>
        <MenuItem onClick={pick((j) => navigate(`/jobs/${j.id}?tab=history`))}>History</MenuItem>
        <MenuItem onClick={pick((j) => void rerun(j))}>Run now</MenuItem>
        <MenuItem onClick={pick(setDeleting)} sx={{ color: "error.main" }}>Delete…</MenuItem>
      </Menu>
      <ConfirmDialog
        open={!!deleting}
        title={`Delete ${deleting?.name}?`}
        confirmLabel="Delete"
        destructive
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          await api(`/api/scheduled_jobs/${deleting!.id}`, { method: "DELETE" });
          notify({ severity: "success", message: `${deleting!.name} deleted.` });
          void qc.invalidateQueries({ queryKey: ["scheduled_jobs"] });
        }}
      >
        The job and its history are deleted. Runs already on devices finish.
      </ConfirmDialog>
    </>
  );
}
