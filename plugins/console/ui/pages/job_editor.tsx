/**
 * The scheduled job editor (`/jobs/<id>`, `/jobs/new`): scripts and their variable
 * values; targets (devices, saved filters, sites, every device); the schedule — every
 * type, cron in an IANA time zone — with the next five run times as the engine computes
 * them (`POST /api/scheduled_jobs/schedule_preview`) and the engine's clock; expiry,
 * maintenance-window-only, execution context and credential. The History tab lists the
 * job's occurrences and each device's status and output, with run-now and clear.
 *
 * @module
 */
import AddIcon from "@mui/icons-material/Add";
import DeleteIcon from "@mui/icons-material/DeleteOutlined";
import Alert from "@mui/material/Alert";
import Autocomplete from "@mui/material/Autocomplete";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Checkbox from "@mui/material/Checkbox";
import FormControlLabel from "@mui/material/FormControlLabel";
import IconButton from "@mui/material/IconButton";
import Link from "@mui/material/Link";
import MenuItem from "@mui/material/MenuItem";
import Paper from "@mui/material/Paper";
import Stack from "@mui/material/Stack";
import Switch from "@mui/material/Switch";
import Tab from "@mui/material/Tab";
import Tabs from "@mui/material/Tabs";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef } from "ag-grid-community";
import { useEffect, useMemo, useState } from "react";
import { Link as RouterLink, useNavigate, useParams, useSearchParams } from "react-router";
import { api, ApiError, query } from "../api/client.ts";
import { useCredentials } from "../api/queries.ts";
import { useSocketEvent } from "../api/socket.ts";
import type {
  AssemblyDetail,
  AssemblyItem,
  JobOccurrence,
  JobRun,
  JobTarget,
  ScheduledJob,
} from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { StatePill } from "../components/badges.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DataGrid } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import {
  DevicesPicker,
  FiltersPicker,
  type PickedDevice,
  SitesPicker,
} from "../components/pickers.tsx";
import { EmptyState, ErrorState, Loading } from "../components/states.tsx";
import { whenEpoch } from "../lib/format.ts";
import { cronInWords, SCHEDULE_TYPES } from "../lib/schedule_words.ts";
import {
  fieldsFor,
  type FormValues,
  initialValues,
  toVariableValues,
  validate,
} from "../lib/variables_form.ts";
import { OutputPane } from "./device_parts.tsx";

interface ComponentForm {
  assembly_guid: string;
  values: FormValues;
}

interface JobForm {
  name: string;
  components: ComponentForm[];
  devices: PickedDevice[];
  filterIds: number[];
  siteIds: number[];
  allDevices: boolean;
  type: string;
  start: string;
  cron: string;
  timezone: string;
  expiration: string;
  stopAfter: boolean;
  windowOnly: boolean;
  context: "system" | "current_user";
  credentialId: number | "";
  enabled: boolean;
}

const EXPIRATIONS: Array<[string, string]> = [
  ["no_expire", "Wait for offline devices forever"],
  ["30m", "30 minutes"],
  ["1h", "1 hour"],
  ["2h", "2 hours"],
  ["1d", "1 day"],
  ["7d", "7 days"],
];

/** `YYYY-MM-DDTHH:mm` in the browser's zone, for datetime-local inputs. */
function localInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${
    p(d.getMinutes())
  }`;
}

function emptyJob(): JobForm {
  return {
    name: "",
    components: [{ assembly_guid: "", values: {} }],
    devices: [],
    filterIds: [],
    siteIds: [],
    allDevices: false,
    type: "daily",
    start: localInput(Date.now() + 3600_000),
    cron: "0 2 * * *",
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    expiration: "no_expire",
    stopAfter: false,
    windowOnly: false,
    context: "system",
    credentialId: "",
    enabled: true,
  };
}

function formOf(j: ScheduledJob): JobForm {
  const start = j.schedule.start;
  return {
    name: j.name,
    components: j.components.map((c) => ({
      assembly_guid: c.assembly_guid,
      values: Object.fromEntries(
        Object.entries(c.variable_values ?? {}).map(([k, v]) => [
          k,
          typeof v === "boolean" ? v : String(v),
        ]),
      ),
    })),
    devices: j.targets.flatMap((t) =>
      t.kind === "device" ? [{ guid: t.device_guid, hostname: t.hostname ?? t.device_guid }] : []
    ),
    filterIds: j.targets.flatMap((t) => (t.kind === "filter" ? [t.filter_id] : [])),
    siteIds: j.targets.flatMap((t) => (t.kind === "sites" ? t.site_ids : [])),
    allDevices: j.targets.some((t) => t.kind === "all_devices"),
    type: j.schedule.type,
    start: typeof start === "number" ? localInput(start * 1000) : localInput(Date.now()),
    cron: j.schedule.cron ?? "0 2 * * *",
    timezone: j.schedule.timezone ?? "UTC",
    expiration: j.duration.expiration,
    stopAfter: j.duration.stopAfterEnabled,
    windowOnly: j.maintenance_window_only,
    context: j.execution_context,
    credentialId: j.credential_id ?? "",
    enabled: j.enabled,
  };
}

function scheduleOf(f: JobForm) {
  return f.type === "cron"
    ? { type: "cron", cron: f.cron.trim(), timezone: f.timezone }
    : f.type === "immediately"
    ? { type: "immediately" }
    : { type: f.type, start: new Date(f.start).toISOString() };
}

/** One script of the job with its variable values. */
function ComponentEditor(
  { c, index, scripts, onChange, onRemove, errors }: {
    c: ComponentForm;
    index: number;
    scripts: AssemblyItem[];
    onChange: (c: ComponentForm) => void;
    onRemove?: () => void;
    errors: Record<string, string>;
  },
) {
  const detail = useQuery({
    queryKey: ["assembly", c.assembly_guid],
    queryFn: ({ signal }) => api<AssemblyDetail>(`/api/assemblies/${c.assembly_guid}`, { signal }),
    enabled: !!c.assembly_guid,
  });
  const credentials = useCredentials();
  const fields = useMemo(() => fieldsFor(detail.data?.metadata.variables), [detail.data]);
  const picked = scripts.find((s) => s.assembly_guid === c.assembly_guid) ?? null;
  return (
    <Paper variant="outlined" sx={{ p: 1.5 }}>
      <Stack spacing={1.5}>
        <Stack direction="row" spacing={1} sx={{ alignItems: "center" }}>
          <Autocomplete
            sx={{ flex: 1 }}
            size="small"
            options={scripts}
            value={picked}
            getOptionLabel={(s) => s.display_name}
            isOptionEqualToValue={(a, b) => a.assembly_guid === b.assembly_guid}
            onChange={(_, s) => {
              onChange({ assembly_guid: s?.assembly_guid ?? "", values: {} });
            }}
            renderInput={(params) => (
              <TextField
                {...params}
                label={`Script ${index + 1}`}
                error={!!errors[`components.${index}`]}
                helperText={errors[`components.${index}`]}
              />
            )}
          />
          {onRemove && (
            <IconButton aria-label={`Remove script ${index + 1}`} onClick={onRemove}>
              <DeleteIcon />
            </IconButton>
          )}
        </Stack>
        {detail.error && <ErrorState error={detail.error} />}
        {fields.map((f) => {
          const raw = c.values[f.name] ??
            initialValues([f], detail.data?.metadata.variables)[f.name];
          const set = (v: string | boolean) =>
            onChange({ ...c, values: { ...c.values, [f.name]: v } });
          const err = errors[`components.${index}.${f.name}`];
          if (f.kind === "boolean") {
            return (
              <FormControlLabel
                key={f.name}
                control={<Switch checked={raw === true} onChange={(e) => set(e.target.checked)} />}
                label={f.label}
              />
            );
          }
          if (f.kind === "credential") {
            return (
              <TextField
                key={f.name}
                select
                size="small"
                label={f.label}
                required={f.required}
                value={String(raw ?? "")}
                onChange={(e) => set(e.target.value)}
                error={!!err}
                helperText={err ?? f.description}
              >
                <MenuItem value="">None</MenuItem>
                {(credentials.data?.credentials ?? []).map((cr) => (
                  <MenuItem key={cr.id} value={String(cr.id)}>{cr.name}</MenuItem>
                ))}
              </TextField>
            );
          }
          return (
            <TextField
              key={f.name}
              size="small"
              label={f.label}
              required={f.required}
              value={String(raw ?? "")}
              onChange={(e) => set(e.target.value)}
              error={!!err}
              helperText={err ?? f.description}
              slotProps={f.kind === "number" ? { htmlInput: { inputMode: "decimal" } } : undefined}
            />
          );
        })}
      </Stack>
    </Paper>
  );
}

interface PreviewRuns {
  runs: Array<{ at: string; epoch: number; local: string }>;
  time_zone: string;
  now: string;
}

/** The engine's next run times for the schedule being edited. */
function NextRuns({ f }: { f: JobForm }) {
  const [body, setBody] = useState("");
  useEffect(() => {
    const t = setTimeout(() => setBody(JSON.stringify({ schedule: scheduleOf(f), count: 5 })), 400);
    return () => clearTimeout(t);
  }, [f.type, f.start, f.cron, f.timezone]);
  const preview = useQuery({
    queryKey: ["schedule-preview", body],
    queryFn: ({ signal }) =>
      api<PreviewRuns>("/api/scheduled_jobs/schedule_preview", { body: JSON.parse(body), signal }),
    enabled: !!body,
    placeholderData: (p) => p,
    retry: false,
  });
  const time = useQuery({
    queryKey: ["server-time"],
    queryFn: ({ signal }) =>
      api<{ epoch_ms: number; time_zone: string; local: string }>("/api/server/time", { signal }),
    staleTime: 60_000,
  });
  const skew = time.data ? Math.abs(time.data.epoch_ms - Date.now()) : 0;
  // Short, on one line with the zone's time: weekday, day and a 24-hour clock like it.
  const browserFmt = new Intl.DateTimeFormat(undefined, {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
  // The weekday of the zone's own date, so "Monday through Friday" can be checked at a glance.
  const zoneDay = (local: string) =>
    new Intl.DateTimeFormat(undefined, { weekday: "short", timeZone: "UTC" })
      .format(new Date(`${local.slice(0, 10)}T12:00:00Z`));
  return (
    <Paper variant="outlined" sx={{ p: 1.5 }} component="section" aria-label="Next runs">
      <Typography variant="subtitle2" component="h3">
        Next runs, as the engine computes them
      </Typography>
      {preview.error && <ErrorState error={preview.error} title="This schedule is not valid" />}
      {preview.data && !preview.data.runs.length && (
        <Typography variant="body2" color="text.secondary">
          No run ahead: the time has passed.
        </Typography>
      )}
      {preview.data && preview.data.runs.length > 0 && (
        <Box component="ol" sx={{ my: 0.5, pl: 3 }} data-testid="next-runs">
          {preview.data.runs.map((r) => (
            <li key={r.epoch}>
              <strong>{r.local.replace("T", " ")}</strong> {preview.data!.time_zone}{" "}
              ({zoneDay(r.local)}){" "}
              <Typography component="span" variant="body2" color="text.secondary">
                · your time {browserFmt.format(new Date(r.at))}
              </Typography>
            </li>
          ))}
        </Box>
      )}
      {time.data && (
        <Typography variant="caption" color="text.secondary" component="p">
          Engine clock: {time.data.local.replace("T", " ")} ({time.data.time_zone})
          {skew > 60_000 ? ` — your browser's clock is ${Math.round(skew / 60_000)} min off` : ""}
        </Typography>
      )}
    </Paper>
  );
}

/** Occurrences of a job and each device's result. */
function History({ job }: { job: ScheduledJob }) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [occurrence, setOccurrence] = useState<number | null>(null);
  const [clearing, setClearing] = useState(false);
  const [selected, setSelected] = useState<JobRun | null>(null);
  const runs = useQuery({
    queryKey: ["job-runs", job.id],
    queryFn: ({ signal }) =>
      api<{ runs: JobRun[]; occurrences: JobOccurrence[] }>(
        `/api/scheduled_jobs/${job.id}/runs`,
        { signal },
      ),
  });
  const devices = useQuery({
    queryKey: ["job-devices", job.id, occurrence],
    queryFn: ({ signal }) =>
      api<{ occurrence: number | null; devices: JobRun[] }>(
        `/api/scheduled_jobs/${job.id}/devices${query({ occurrence: occurrence ?? undefined })}`,
        { signal },
      ),
  });
  useSocketEvent("activity", (e) => {
    if ((e.data as { source?: string }).source !== "scheduler") return;
    void qc.invalidateQueries({ queryKey: ["scheduled_job"] });
    void qc.invalidateQueries({ queryKey: ["job-runs", job.id] });
    void qc.invalidateQueries({ queryKey: ["job-devices", job.id] });
  });
  const rerun = useMutation({
    mutationFn: () => api(`/api/scheduled_jobs/${job.id}/rerun`, { method: "POST" }),
    onSuccess: () => {
      notify({ severity: "success", message: `${job.name} started.` });
      setOccurrence(null);
      void qc.invalidateQueries({ queryKey: ["job-runs", job.id] });
      void qc.invalidateQueries({ queryKey: ["job-devices", job.id] });
      void qc.invalidateQueries({ queryKey: ["scheduled_jobs"] });
      void qc.invalidateQueries({ queryKey: ["scheduled_job"] });
    },
    onError: (err) => notify({ severity: "error", message: (err as Error).message }),
  });
  const occColumns: ColDef<JobOccurrence>[] = [
    {
      headerName: "Occurrence",
      colId: "scheduled_ts",
      flex: 1,
      valueGetter: (p) => p.data?.scheduled_ts ?? null,
      valueFormatter: (p) => whenEpoch(p.value) + (p.data?.manual ? " (run now)" : ""),
    },
    {
      headerName: "Status",
      field: "status",
      width: 120,
      cellRenderer: (p: { data?: JobOccurrence }) => p.data && <StatePill state={p.data.status} />,
    },
  ];
  const devColumns: ColDef<JobRun>[] = [
    { headerName: "Device", field: "hostname", flex: 1 },
    {
      headerName: "Status",
      field: "status",
      width: 120,
      cellRenderer: (p: { data?: JobRun }) => p.data && <StatePill state={p.data.status} />,
    },
    {
      headerName: "Finished",
      colId: "finished_ts",
      width: 150,
      valueGetter: (p) => p.data?.finished_ts ?? null,
      valueFormatter: (p) => whenEpoch(p.value),
    },
    { headerName: "Error", field: "error", flex: 1 },
  ];
  return (
    <Stack spacing={1.5} sx={{ height: "100%" }}>
      <Stack direction="row" spacing={1}>
        <Button variant="contained" onClick={() => rerun.mutate()} disabled={rerun.isPending}>
          Run now
        </Button>
        <Button variant="outlined" onClick={() => setClearing(true)}>Clear history…</Button>
      </Stack>
      {runs.error && <ErrorState error={runs.error} onRetry={() => runs.refetch()} />}
      <Box
        sx={{
          display: "grid",
          gridTemplateColumns: "minmax(0, 2fr) minmax(0, 3fr)",
          gap: 2,
          flexGrow: 1,
        }}
      >
        <DataGrid<JobOccurrence>
          label="Occurrences"
          height={320}
          emptyText="It has not run yet"
          loading={runs.isPending}
          rowData={runs.data?.occurrences ?? []}
          columnDefs={occColumns}
          getRowId={(p) => String(p.data.id)}
          rowSelection={{ mode: "singleRow", checkboxes: false, enableClickSelection: true }}
          onRowClicked={(e) => e.data && setOccurrence(e.data.scheduled_ts)}
        />
        <Stack spacing={1}>
          <Typography variant="subtitle2">
            {devices.data?.occurrence
              ? `Devices of the occurrence ${whenEpoch(devices.data.occurrence)}`
              : "Devices of the latest occurrence"}
          </Typography>
          <DataGrid<JobRun>
            label="Devices of the occurrence"
            height={200}
            emptyText="No device results"
            loading={devices.isPending}
            rowData={devices.data?.devices ?? []}
            columnDefs={devColumns}
            getRowId={(p) => String(p.data.id)}
            rowSelection={{ mode: "singleRow", checkboxes: false, enableClickSelection: true }}
            onRowClicked={(e) => e.data && setSelected(e.data)}
          />
          {selected && (
            <Stack direction="row" spacing={1}>
              <OutputPane
                label={`Output of ${selected.hostname}`}
                value={selected.stdout ?? null}
              />
              <OutputPane label="Errors" value={selected.stderr ?? null} tone="error" />
            </Stack>
          )}
          {!selected && devices.data?.devices.length
            ? (
              <Typography variant="caption" color="text.secondary">
                Pick a device to see its output.
              </Typography>
            )
            : null}
        </Stack>
      </Box>
      <ConfirmDialog
        open={clearing}
        title="Clear the job's history?"
        confirmLabel="Clear"
        destructive
        onClose={() => setClearing(false)}
        onConfirm={async () => {
          const r = await api<{ deleted: number }>(`/api/scheduled_jobs/${job.id}/runs`, {
            method: "DELETE",
          });
          notify({ severity: "success", message: `${r.deleted} finished occurrence(s) cleared.` });
          setOccurrence(null);
          setSelected(null);
          void qc.invalidateQueries({ queryKey: ["job-runs", job.id] });
          void qc.invalidateQueries({ queryKey: ["job-devices", job.id] });
        }}
      >
        Finished occurrences and their per-device output are deleted; a running one stays.
      </ConfirmDialog>
    </Stack>
  );
}

/** `/jobs/:id` (or `new`). */
export function JobEditorPage() {
  const { id = "new" } = useParams();
  return <JobEditor key={id} id={id} />;
}

function JobEditor({ id }: { id: string }) {
  const isNew = id === "new";
  const [params, setParams] = useSearchParams();
  const tab = params.get("tab") === "history" && !isNew ? "history" : "job";
  const navigate = useNavigate();
  const qc = useQueryClient();
  const { notify } = useToasts();
  const credentials = useCredentials();
  const [form, setForm] = useState<JobForm | null>(isNew ? emptyJob() : null);
  const [touched, setTouched] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const job = useQuery({
    queryKey: ["scheduled_job", id],
    queryFn: ({ signal }) => api<ScheduledJob>(`/api/scheduled_jobs/${id}`, { signal }),
    enabled: !isNew,
  });
  const scripts = useQuery({
    queryKey: ["assemblies", "scripts", ""],
    queryFn: ({ signal }) =>
      api<{ items: AssemblyItem[] }>(`/api/assemblies${query({ kind: "script", limit: 1000 })}`, {
        signal,
      }),
  });
  useEffect(() => {
    if (job.data && !form) setForm(formOf(job.data));
  }, [job.data, form]);

  const save = useMutation({
    mutationFn: async () => {
      const f = form!;
      const targets: JobTarget[] = [
        ...f.devices.map((d) => ({ kind: "device" as const, device_guid: d.guid })),
        ...f.filterIds.map((fid) => ({ kind: "filter" as const, filter_id: fid })),
        ...(f.siteIds.length ? [{ kind: "sites" as const, site_ids: f.siteIds }] : []),
        ...(f.allDevices ? [{ kind: "all_devices" as const }] : []),
      ];
      const components = await Promise.all(f.components.map(async (c) => {
        const d = await qc.fetchQuery({
          queryKey: ["assembly", c.assembly_guid],
          queryFn: () => api<AssemblyDetail>(`/api/assemblies/${c.assembly_guid}`),
        });
        const fields = fieldsFor(d.metadata.variables);
        const values = { ...initialValues(fields, d.metadata.variables), ...c.values };
        return {
          type: "script",
          assembly_guid: c.assembly_guid,
          variable_values: toVariableValues(fields, values),
        };
      }));
      const body = {
        name: f.name.trim(),
        components,
        targets,
        schedule: scheduleOf(f),
        duration: { stopAfterEnabled: f.stopAfter, expiration: f.expiration },
        execution_context: f.context,
        credential_id: f.credentialId === "" ? null : f.credentialId,
        enabled: f.enabled,
        maintenance_window_only: f.windowOnly,
      };
      return isNew
        ? await api<ScheduledJob>("/api/scheduled_jobs", { body })
        : await api<ScheduledJob>(`/api/scheduled_jobs/${id}`, { method: "PUT", body });
    },
    onSuccess: (j) => {
      notify({ severity: "success", message: `Job ${j.name} saved.` });
      void qc.invalidateQueries({ queryKey: ["scheduled_jobs"] });
      void qc.invalidateQueries({ queryKey: ["scheduled_job", String(j.id)] });
      if (isNew) navigate(`/jobs/${j.id}`, { replace: true });
    },
  });

  if (!isNew && job.error) {
    const missing = job.error instanceof ApiError && job.error.status === 404;
    return (
      <>
        <PageHeader title={missing ? "Job not found" : "Scheduled job"} />
        {missing
          ? (
            <EmptyState
              title="No such job"
              action={
                <Button variant="contained" onClick={() => navigate("/jobs")}>All jobs</Button>
              }
            >
              It was deleted, or it covers sites you cannot see.
            </EmptyState>
          )
          : <ErrorState error={job.error} onRetry={() => job.refetch()} />}
      </>
    );
  }
  if (!form) return <Loading label="Loading the job" />;
  const f = form;
  const set = (patch: Partial<JobForm>) => setForm({ ...f, ...patch });
  const errors: Record<string, string> = {};
  if (!f.name.trim()) errors.name = "Give the job a name";
  f.components.forEach((c, i) => {
    if (!c.assembly_guid) errors[`components.${i}`] = "Pick a script";
    const d = qc.getQueryData<AssemblyDetail>(["assembly", c.assembly_guid]);
    if (d) {
      const fields = fieldsFor(d.metadata.variables);
      const values = { ...initialValues(fields, d.metadata.variables), ...c.values };
      for (const [k, v] of Object.entries(validate(fields, values))) {
        errors[`components.${i}.${k}`] = v;
      }
    }
  });
  if (!f.devices.length && !f.filterIds.length && !f.siteIds.length && !f.allDevices) {
    errors.targets = "Pick what the job runs on";
  }
  if (f.type === "cron" && !f.cron.trim()) errors.cron = "A cron expression";
  if (!["cron", "immediately"].includes(f.type) && !Number.isFinite(Date.parse(f.start))) {
    errors.start = "A start time";
  }
  const scriptList = (scripts.data?.items ?? []).filter((s) => s.assembly_kind === "script");
  const zones = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] })
    .supportedValuesOf?.("timeZone") ?? ["UTC"];

  return (
    <>
      <PageHeader
        title={isNew ? f.name || "New scheduled job" : job.data!.name}
        subtitle={isNew
          ? "Not saved yet"
          : `Next run ${job.data!.next_run_ts ? whenEpoch(job.data!.next_run_ts) : "—"} · last ${
            job.data!.last_status ?? "never ran"
          }`}
        actions={
          <>
            {!isNew && (
              <Button variant="outlined" color="error" onClick={() => setDeleting(true)}>
                Delete…
              </Button>
            )}
            {tab === "job" && (
              <Button
                variant="contained"
                disabled={save.isPending}
                onClick={() => {
                  setTouched(true);
                  if (!Object.keys(errors).length) save.mutate();
                }}
              >
                {isNew ? "Create job" : "Save"}
              </Button>
            )}
          </>
        }
      />
      {!isNew && (
        <Box sx={{ px: 3, borderBottom: 1, borderColor: "divider" }}>
          <Tabs
            value={tab}
            onChange={(_, v) => setParams(v === "job" ? {} : { tab: v }, { replace: true })}
            aria-label="Job sections"
          >
            <Tab value="job" label="Job" id="tab-job" aria-controls="job-panel" />
            <Tab value="history" label="History" id="tab-history" aria-controls="job-panel" />
          </Tabs>
        </Box>
      )}
      <Box
        role="tabpanel"
        id="job-panel"
        aria-labelledby={`tab-${tab}`}
        sx={{ flexGrow: 1, minHeight: 0, overflow: "auto", px: 3, py: 1.5 }}
      >
        {tab === "history" && job.data && <History job={job.data} />}
        {tab === "job" && (
          <>
            {save.error && <ErrorState error={save.error} title="Not saved" />}
            {touched && Object.keys(errors).length > 0 && (
              <Alert severity="warning" sx={{ mb: 1.5 }}>
                {Object.values(errors)[0]}
                {Object.keys(errors).length > 1
                  ? ` (and ${Object.keys(errors).length - 1} more)`
                  : ""}
              </Alert>
            )}
            <Box
              sx={{ display: "grid", gridTemplateColumns: "minmax(0, 1fr) minmax(0, 1fr)", gap: 2 }}
            >
              <Stack spacing={2}>
                <TextField
                  size="small"
                  label="Job name"
                  value={f.name}
                  onChange={(e) => set({ name: e.target.value })}
                  error={touched && !!errors.name}
                  helperText={touched ? errors.name : undefined}
                />
                <Typography variant="subtitle1" component="h2">Scripts</Typography>
                {f.components.map((c, i) => (
                  <ComponentEditor
                    key={i}
                    c={c}
                    index={i}
                    scripts={scriptList}
                    errors={touched ? errors : {}}
                    onChange={(next) =>
                      set({ components: f.components.map((x, j) => (j === i ? next : x)) })}
                    onRemove={f.components.length > 1
                      ? () => set({ components: f.components.filter((_, j) => j !== i) })
                      : undefined}
                  />
                ))}
                <Box>
                  <Button
                    startIcon={<AddIcon />}
                    onClick={() =>
                      set({ components: [...f.components, { assembly_guid: "", values: {} }] })}
                  >
                    Add a script
                  </Button>
                </Box>
                <Typography variant="subtitle1" component="h2">Runs on</Typography>
                <DevicesPicker
                  label="Devices"
                  value={f.devices}
                  onChange={(devices) => set({ devices })}
                />
                <FiltersPicker
                  label="Saved filters (resolved at each run)"
                  value={f.filterIds}
                  onChange={(filterIds) => set({ filterIds })}
                />
                <SitesPicker
                  label="Every device of these sites"
                  value={f.siteIds}
                  onChange={(siteIds) => set({ siteIds })}
                />
                <FormControlLabel
                  control={
                    <Checkbox
                      checked={f.allDevices}
                      onChange={(e) => set({ allDevices: e.target.checked })}
                    />
                  }
                  label="Every device I can see"
                />
                {touched && errors.targets && (
                  <Typography color="error" variant="body2">{errors.targets}</Typography>
                )}
              </Stack>
              <Stack spacing={2}>
                <Typography variant="subtitle1" component="h2">Schedule</Typography>
                <TextField
                  select
                  size="small"
                  label="Schedule type"
                  value={f.type}
                  onChange={(e) => set({ type: e.target.value })}
                >
                  {SCHEDULE_TYPES.map(([t, label]) => (
                    <MenuItem key={t} value={t}>{label}</MenuItem>
                  ))}
                </TextField>
                {f.type === "cron"
                  ? (
                    <Stack direction="row" spacing={1.5}>
                      <TextField
                        size="small"
                        label="Cron expression"
                        value={f.cron}
                        onChange={(e) => set({ cron: e.target.value })}
                        error={touched && !!errors.cron}
                        helperText={cronInWords(f.cron) ?? "minute hour day month weekday"}
                        sx={{ flex: 1 }}
                        slotProps={{ htmlInput: { spellCheck: false } }}
                      />
                      <Autocomplete
                        size="small"
                        sx={{ width: 230 }}
                        options={zones}
                        value={f.timezone}
                        onChange={(_, v) => v && set({ timezone: v })}
                        disableClearable
                        renderInput={(p) => <TextField {...p} label="Time zone" />}
                      />
                    </Stack>
                  )
                  : f.type !== "immediately" && (
                    <TextField
                      size="small"
                      type="datetime-local"
                      label={f.type === "once" ? "Runs at (your time)" : "First run (your time)"}
                      value={f.start}
                      onChange={(e) => set({ start: e.target.value })}
                      error={touched && !!errors.start}
                      helperText={errors.start}
                      slotProps={{ inputLabel: { shrink: true } }}
                    />
                  )}
                <NextRuns f={f} />
                <TextField
                  select
                  size="small"
                  label="Offline devices"
                  value={f.expiration}
                  onChange={(e) => set({ expiration: e.target.value })}
                  helperText="How long a run waits for its device before it expires"
                >
                  {EXPIRATIONS.map(([v, label]) => <MenuItem key={v} value={v}>{label}</MenuItem>)}
                  {!EXPIRATIONS.some(([v]) => v === f.expiration) && (
                    <MenuItem value={f.expiration}>{f.expiration}</MenuItem>
                  )}
                </TextField>
                <FormControlLabel
                  control={
                    <Checkbox
                      checked={f.stopAfter}
                      onChange={(e) => set({ stopAfter: e.target.checked })}
                    />
                  }
                  label="Stop a run that takes longer than that"
                />
                <FormControlLabel
                  control={
                    <Checkbox
                      checked={f.windowOnly}
                      onChange={(e) => set({ windowOnly: e.target.checked })}
                    />
                  }
                  label={
                    <span>
                      Only inside{" "}
                      <Link component={RouterLink} to="/maintenance">maintenance windows</Link>
                    </span>
                  }
                />
                <Stack direction="row" spacing={1.5}>
                  <TextField
                    select
                    size="small"
                    label="Runs as"
                    value={f.context}
                    onChange={(e) => set({ context: e.target.value as JobForm["context"] })}
                    sx={{ flex: 1 }}
                  >
                    <MenuItem value="system">System (the agent's account)</MenuItem>
                    <MenuItem value="current_user">The signed-in user</MenuItem>
                  </TextField>
                  <TextField
                    select
                    size="small"
                    label="Credential"
                    value={f.credentialId}
                    onChange={(e) =>
                      set({ credentialId: e.target.value === "" ? "" : Number(e.target.value) })}
                    sx={{ flex: 1 }}
                  >
                    <MenuItem value="">None</MenuItem>
                    {(credentials.data?.credentials ?? []).map((c) => (
                      <MenuItem key={c.id} value={c.id}>{c.name}</MenuItem>
                    ))}
                  </TextField>
                </Stack>
                <FormControlLabel
                  control={
                    <Switch
                      checked={f.enabled}
                      onChange={(e) => set({ enabled: e.target.checked })}
                    />
                  }
                  label="Enabled"
                />
              </Stack>
            </Box>
          </>
        )}
      </Box>
      <ConfirmDialog
        open={deleting}
        title={`Delete ${job.data?.name}?`}
        confirmLabel="Delete"
        destructive
        onClose={() => setDeleting(false)}
        onConfirm={async () => {
          await api(`/api/scheduled_jobs/${id}`, { method: "DELETE" });
          notify({ severity: "success", message: `${job.data!.name} deleted.` });
          void qc.invalidateQueries({ queryKey: ["scheduled_jobs"] });
          navigate("/jobs", { replace: true });
        }}
      >
        The job and its history are deleted. Runs already on devices finish.
      </ConfirmDialog>
    </>
  );
}
