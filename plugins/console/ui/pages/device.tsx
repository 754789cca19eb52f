/**
 * One device: summary (identity, system, storage, network), installed software, services
 * and processes (the last snapshot, with its age, refreshed and acted on live: see
 * ../terminal/device_actions.tsx), watchdogs (incidents, acknowledge, overrides),
 * activity with live output, a remote terminal and file transfer (../terminal/), agent
 * health, and containment for admins. The tab is in the URL (`/devices/<guid>?tab=activity`).
 *
 * @module
 */
import ArrowDropDownIcon from "@mui/icons-material/ArrowDropDown";
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import Divider from "@mui/material/Divider";
import Link from "@mui/material/Link";
import Menu from "@mui/material/Menu";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import Tab from "@mui/material/Tab";
import Tabs from "@mui/material/Tabs";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef } from "ag-grid-community";
import { type ReactNode, useMemo, useState } from "react";
import { Link as RouterLink, useNavigate, useParams, useSearchParams } from "react-router";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api, ApiError } from "../api/client.ts";
import { useSocketEvent } from "../api/socket.ts";
import type {
  Activity,
  DeviceDetail,
  DevicePresence,
  DeviceWatchdogs,
  Incident,
} from "../api/types.ts";
import { useIsAdmin } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DataGrid } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { EmptyState, ErrorState, Loading } from "../components/states.tsx";
import { ContainmentPill, StatusPill } from "../components/status_pill.tsx";
import { QuickJobDialog } from "../jobs/quick_job_dialog.tsx";
import { AgentUpdateDialog } from "../jobs/agent_update_dialog.tsx";
import { StatePill } from "../components/badges.tsx";
import {
  RefreshButton,
  serviceActionsColumn,
  useDeviceAction,
  useProcessActions,
} from "../terminal/device_actions.tsx";
import { FilesTab } from "../terminal/files_tab.tsx";
import { TerminalTab } from "../terminal/terminal_tab.tsx";
import { ago, duration, list, num, obj, text, when } from "../lib/format.ts";
import { Card, Facts, OutputPane, StorageBars } from "./device_parts.tsx";

const TABS = [
  ["summary", "Summary"],
  ["software", "Software"],
  ["services", "Services"],
  ["processes", "Processes"],
  ["watchdogs", "Watchdogs"],
  ["activity", "Activity"],
  ["terminal", "Terminal"],
  ["files", "Files"],
  ["health", "Agent health"],
] as const;
type TabId = typeof TABS[number][0];

function Summary({ d }: { d: DeviceDetail }) {
  const det = d.details;
  const cpu = obj(det.cpu);
  const summary = d.summary;
  return (
    <Box sx={{ display: "grid", gridTemplateColumns: "repeat(2, minmax(0, 1fr))", gap: 2 }}>
      <Card title="Identity">
        <Facts
          items={[
            ["Hostname", d.hostname],
            [
              "Site",
              d.site_id
                ? (
                  <Link key="site" component={RouterLink} to={`/devices?site=${d.site_id}`}>
                    {d.site_name}
                  </Link>
                )
                : "No site",
            ],
            ["Description", d.description],
            ["GUID", <code key="g">{d.guid}</code>],
            ["Enrolled", when(d.created_at)],
            ["Last enrollment", when(d.last_enrollment_at)],
            ["Last seen", `${ago(d.last_seen)}${d.last_seen ? ` (${when(d.last_seen)})` : ""}`],
            [
              "Agent",
              [d.agent?.version ?? d.agent_version, d.agent?.channel, d.agent_hash].filter(Boolean)
                .join(" · "),
            ],
            [
              "Key fingerprint",
              d.ssl_key_fingerprint
                ? <code key="f">{d.ssl_key_fingerprint.slice(0, 32)}…</code>
                : null,
            ],
          ]}
        />
      </Card>
      <Card title="System">
        <Facts
          items={[
            ["Operating system", summary.operating_system],
            ["Type", summary.device_type],
            ["Domain", summary.domain],
            ["Last user", summary.last_user],
            ["Uptime", summary.uptime == null ? null : duration(summary.uptime)],
            ["Last reboot", summary.last_reboot ? when(summary.last_reboot) : null],
            [
              "CPU",
              [
                d.cpu ?? text(cpu.name),
                summary.cpu_percent != null ? `${Math.round(summary.cpu_percent)} % busy` : null,
              ].filter(Boolean).join(" · "),
            ],
            [
              "Memory",
              [
                d.inventory_counts.memory_modules != null
                  ? `${d.inventory_counts.memory_modules} module(s)`
                  : null,
                summary.memory_percent != null
                  ? `${Math.round(summary.memory_percent)} % used`
                  : null,
              ].filter(Boolean).join(" · "),
            ],
            ["Internal IP", summary.internal_ip],
            ["External IP", summary.external_ip],
          ]}
        />
      </Card>
      <Card title="Storage">
        <StorageBars storage={det.storage} />
      </Card>
      <Card title="Network">
        {list(det.network).length
          ? (
            <Stack spacing={1} divider={<Divider flexItem />}>
              {list(det.network).map((n, i) => {
                const ips = Array.isArray(n.ips)
                  ? n.ips
                  : Array.isArray(n.addresses)
                  ? n.addresses
                  : [n.ipv4, n.ip, n.ipv6];
                return (
                  <Facts
                    key={i}
                    items={[
                      [
                        "Adapter",
                        text(n.adapter) ?? text(n.name) ?? text(n.interface) ?? `Adapter ${i + 1}`,
                      ],
                      [
                        "Addresses",
                        ips.filter((x): x is string => typeof x === "string" && !!x).join(", "),
                      ],
                      ["MAC", text(n.mac) ?? text(n.mac_address)],
                      ["Link speed", text(n.link_speed) ?? text(n.speed)],
                    ]}
                  />
                );
              })}
            </Stack>
          )
          : <Typography variant="body2" color="text.secondary">Not reported yet.</Typography>}
      </Card>
    </Box>
  );
}

function SnapshotNote({ d, part }: { d: DeviceDetail; part: string }) {
  const at = text(obj(d.details.collected_at)[part]);
  return (
    <Typography variant="body2" color="text.secondary" sx={{ mb: 1 }}>
      {at
        ? `Snapshot from ${ago(at)} (${when(at)}), as the agent last reported it.`
        : "As the agent last reported it."}
    </Typography>
  );
}

function SnapshotGrid(
  { d, part, label, columns }: {
    d: DeviceDetail;
    part: "services" | "processes";
    label: string;
    columns: ColDef[];
  },
) {
  const rows = list(d.details[part]);
  const [filter, setFilter] = useState("");
  const live = d.presence === "online" && d.containment_status === "active";
  return (
    <Stack sx={{ height: "100%" }}>
      <Stack sx={{ alignItems: "center" }} direction="row" spacing={2}>
        <SnapshotNote d={d} part={part} />
        <RefreshButton guid={d.guid} part={part} disabled={!live} />
        <Box sx={{ flexGrow: 1 }} />
        <TextField
          size="small"
          label={`Filter ${label.toLowerCase()}`}
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
        />
      </Stack>
      <Box sx={{ flexGrow: 1, minHeight: 300, mt: 1 }}>
        <DataGrid
          label={label}
          rowData={rows}
          columnDefs={columns}
          quickFilterText={filter}
          emptyText={`No ${label.toLowerCase()} reported`}
        />
      </Box>
    </Stack>
  );
}

function ServicesTab({ d }: { d: DeviceDetail }) {
  const run = useDeviceAction(d.guid);
  const live = d.presence === "online" && d.containment_status === "active";
  return (
    <SnapshotGrid
      d={d}
      part="services"
      label="Services"
      columns={[
        {
          headerName: "Name",
          valueGetter: (p) => text(p.data?.name) ?? text(p.data?.service_name),
          flex: 1,
        },
        {
          headerName: "Display name",
          valueGetter: (p) => text(p.data?.display_name),
          flex: 1.5,
        },
        {
          headerName: "Status",
          valueGetter: (p) => text(p.data?.status) ?? text(p.data?.state),
          width: 120,
        },
        {
          headerName: "Start type",
          valueGetter: (p) =>
            text(p.data?.start_type) ?? text(p.data?.startup) ?? text(p.data?.start_mode),
          width: 130,
        },
        serviceActionsColumn(run, !live),
      ]}
    />
  );
}

function ProcessesTab({ d }: { d: DeviceDetail }) {
  const live = d.presence === "online" && d.containment_status === "active";
  const actions = useProcessActions(d.guid, !live);
  return (
    <>
      <SnapshotGrid
        d={d}
        part="processes"
        label="Processes"
        columns={[
          { headerName: "PID", valueGetter: (p) => num(p.data?.pid), width: 100 },
          {
            headerName: "Name",
            valueGetter: (p) => text(p.data?.name) ?? text(p.data?.process_name),
            flex: 1,
          },
          {
            headerName: "User",
            valueGetter: (p) => text(p.data?.user) ?? text(p.data?.username),
            width: 150,
          },
          {
            headerName: "CPU %",
            valueGetter: (p) => num(p.data?.cpu) ?? num(p.data?.cpu_percent),
            width: 100,
          },
          {
            headerName: "Memory",
            valueGetter: (p) => text(p.data?.memory) ?? num(p.data?.memory_bytes),
            width: 120,
          },
          actions.column,
        ]}
      />
      {actions.dialog}
    </>
  );
}

function Software({ guid }: { guid: string }) {
  const q = useQuery({
    queryKey: ["device", guid, "software"],
    queryFn: ({ signal }) =>
      api<
        {
          software: Array<{ name: string; version: string; source: string; captured_at: string }>;
          count: number;
        }
      >(
        `/api/devices/${guid}/software`,
        { signal },
      ),
  });
  const [filter, setFilter] = useState("");
  if (q.error) return <ErrorState error={q.error} onRetry={() => q.refetch()} />;
  const at = q.data?.software[0]?.captured_at;
  return (
    <Stack sx={{ height: "100%" }}>
      <Stack sx={{ alignItems: "center" }} direction="row" spacing={2}>
        <Typography variant="body2" color="text.secondary">
          {q.data ? `${q.data.count} items` : "Loading…"}
          {at ? ` · reported ${ago(at)}` : ""}
        </Typography>
        <Box sx={{ flexGrow: 1 }} />
        <TextField
          size="small"
          label="Filter software"
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
        />
      </Stack>
      <Box sx={{ flexGrow: 1, minHeight: 300, mt: 1 }}>
        <DataGrid
          label="Installed software"
          loading={q.isPending}
          rowData={q.data?.software ?? []}
          quickFilterText={filter}
          emptyText="No software reported"
          columnDefs={[
            { headerName: "Name", field: "name", flex: 2 },
            { headerName: "Version", field: "version", flex: 1 },
            { headerName: "Source", field: "source", flex: 1 },
          ]}
        />
      </Box>
    </Stack>
  );
}

function OverrideDialog(
  { guid, target, onClose }: {
    guid: string;
    target: { id: string; name: string } | null;
    onClose: () => void;
  },
) {
  const qc = useQueryClient();
  const [state, setState] = useState<"suppressed" | "disabled">("suppressed");
  const [reason, setReason] = useState("");
  const [hours, setHours] = useState("24");
  const save = useMutation({
    mutationFn: () =>
      api(`/api/devices/${guid}/watchdogs/overrides`, {
        body: {
          watchdog_id: target!.id,
          state,
          reason: reason.trim(),
          expires_at: hours ? new Date(Date.now() + Number(hours) * 3_600_000).toISOString() : null,
        },
      }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ["device", guid, "watchdogs"] });
      onClose();
    },
  });
  return (
    <DialogFrame
      open={!!target}
      onClose={onClose}
      title={`Override ${target?.name ?? ""} for this device`}
      onSubmit={() => save.mutate()}
      actions={
        <Button type="submit" variant="contained" disabled={save.isPending}>Save override</Button>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        <TextField
          select
          label="Override"
          value={state}
          onChange={(e) => setState(e.target.value as "suppressed")}
        >
          <MenuItem value="suppressed">Suppress: evaluate, but open no incidents</MenuItem>
          <MenuItem value="disabled">Disable: do not evaluate on this device</MenuItem>
        </TextField>
        <TextField label="Reason" value={reason} onChange={(e) => setReason(e.target.value)} />
        <TextField select label="For" value={hours} onChange={(e) => setHours(e.target.value)}>
          <MenuItem value="4">4 hours</MenuItem>
          <MenuItem value="24">1 day</MenuItem>
          <MenuItem value="168">1 week</MenuItem>
          <MenuItem value="">Until cleared</MenuItem>
        </TextField>
        {save.error && <ErrorState error={save.error} title="Not saved" />}
      </Stack>
    </DialogFrame>
  );
}

function Watchdogs({ guid }: { guid: string }) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const q = useQuery({
    queryKey: ["device", guid, "watchdogs"],
    queryFn: ({ signal }) => api<DeviceWatchdogs>(`/api/devices/${guid}/watchdogs`, { signal }),
  });
  const [override, setOverride] = useState<{ id: string; name: string } | null>(null);
  useSocketEvent(
    "incidents",
    () => void qc.invalidateQueries({ queryKey: ["device", guid, "watchdogs"] }),
  );
  const ack = useMutation({
    mutationFn: (i: Incident) =>
      api(`/api/watchdogs/incidents/${i.id}/acknowledge`, { method: "POST" }),
    onSuccess: () => {
      notify({ severity: "success", message: "Incident acknowledged." });
      void qc.invalidateQueries({ queryKey: ["device", guid, "watchdogs"] });
    },
  });
  const clear = useMutation({
    mutationFn: (watchdogId: string) =>
      api(`/api/devices/${guid}/watchdogs/overrides`, {
        body: { watchdog_id: watchdogId, state: "clear" },
      }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["device", guid, "watchdogs"] }),
  });
  if (q.isPending) return <Loading label="Loading watchdogs" />;
  if (q.error) return <ErrorState error={q.error} onRetry={() => q.refetch()} />;
  const overrides = new Map(q.data.overrides.map((o) => [o.watchdog_id, o]));
  return (
    <Stack spacing={2}>
      {(ack.error || clear.error) && (
        <ErrorState error={ack.error ?? clear.error} title="Not done" />
      )}
      <Card
        title={`Incidents (${q.data.incidents.filter((i) => i.state !== "resolved").length} open)`}
      >
        <Box sx={{ height: 220 }}>
          <DataGrid<Incident>
            label="Incidents"
            rowData={q.data.incidents}
            getRowId={(p) => p.data.id}
            emptyText="No incidents"
            columnDefs={[
              { headerName: "Watchdog", field: "watchdog_name", flex: 1 },
              { headerName: "Severity", field: "severity", width: 110 },
              { headerName: "State", field: "state", width: 110 },
              { headerName: "Message", field: "message", flex: 2 },
              {
                headerName: "Opened",
                field: "opened_at",
                width: 130,
                valueFormatter: (p) => ago(p.value),
              },
              {
                headerName: "Action",
                colId: "ack",
                width: 150,
                sortable: false,
                cellRenderer: (p: { data?: Incident }) =>
                  p.data && (p.data.acknowledged_at
                    ? <Typography variant="caption">Ack by {p.data.acknowledged_by}</Typography>
                    : p.data.state !== "resolved" && (
                      <Button
                        size="small"
                        onClick={() => ack.mutate(p.data!)}
                      >
                        Acknowledge
                      </Button>
                    )),
              },
            ]}
          />
        </Box>
      </Card>
      <Card title="Watchdogs on this device">
        {!q.data.assignments.length
          ? (
            <Typography variant="body2" color="text.secondary">
              No watchdog targets this device.
            </Typography>
          )
          : (
            <Stack divider={<Divider flexItem />} spacing={1}>
              {q.data.assignments.map((a) => {
                const o = overrides.get(a.watchdog_id);
                return (
                  <Stack
                    sx={{ alignItems: "center" }}
                    key={a.watchdog_id}
                    direction="row"
                    spacing={2}
                  >
                    <Typography sx={{ flexGrow: 1 }}>{a.name}</Typography>
                    <Chip size="small" label={a.severity} variant="outlined" />
                    <Chip
                      size="small"
                      label={a.state}
                      color={a.state === "triggered" ? "error" : "default"}
                    />
                    {o
                      ? (
                        <>
                          <Typography variant="caption">
                            {o.state} {o.expires_at ? `until ${when(o.expires_at)}` : ""}{" "}
                            {o.reason && `(${o.reason})`}
                          </Typography>
                          <Button size="small" onClick={() => clear.mutate(a.watchdog_id)}>
                            Clear override
                          </Button>
                        </>
                      )
                      : (
                        <Button
                          size="small"
                          onClick={() => setOverride({ id: a.watchdog_id, name: a.name })}
                        >
                          Override…
                        </Button>
                      )}
                  </Stack>
                );
              })}
            </Stack>
          )}
      </Card>
      <OverrideDialog guid={guid} target={override} onClose={() => setOverride(null)} />
    </Stack>
  );
}

const FINISHED = new Set(["Success", "Failed", "Timed Out", "Expired", "Cancelled", "Skipped"]);

function ActivityTab({ d }: { d: DeviceDetail }) {
  const qc = useQueryClient();
  const [params, setParams] = useSearchParams();
  const selectedId = Number(params.get("activity")) || null;
  const key = ["device", d.guid, "activity"];
  const history = useQuery({
    queryKey: key,
    queryFn: ({ signal }) =>
      api<{ history: Activity[] }>(
        `/api/device/activity/${encodeURIComponent(d.hostname)}?limit=200`,
        { signal },
      ),
  });
  const current = history.data?.history.find((a) => a.id === selectedId) ??
    history.data?.history[0];
  const one = useQuery({
    queryKey: ["activity", current?.id],
    queryFn: ({ signal }) => api<Activity>(`/api/device/activity/job/${current!.id}`, { signal }),
    enabled: !!current,
    // Output grows while the job runs: ask again until it finishes.
    refetchInterval: (q) => (q.state.data && FINISHED.has(q.state.data.status) ? false : 3000),
  });
  useSocketEvent("activity", (e) => {
    const data = e.data as { hostname?: string; activity_id?: number };
    if (data.hostname?.toLowerCase() !== d.hostname.toLowerCase()) return;
    void qc.invalidateQueries({ queryKey: key });
    void qc.invalidateQueries({ queryKey: ["activity", data.activity_id] });
  });
  const [clearing, setClearing] = useState(false);
  if (history.error) return <ErrorState error={history.error} onRetry={() => history.refetch()} />;
  const shown = one.data ?? current;
  return (
    <Stack spacing={2} sx={{ height: "100%" }}>
      <Stack sx={{ alignItems: "center" }} direction="row">
        <Typography variant="body2" color="text.secondary" sx={{ flexGrow: 1 }}>
          Quick jobs and scheduled runs on this device, newest first. Output updates while a job
          runs.
        </Typography>
        <Button
          size="small"
          onClick={() => setClearing(true)}
          disabled={!history.data?.history.length}
        >
          Clear finished
        </Button>
      </Stack>
      <Box sx={{ height: 230 }}>
        <DataGrid<Activity>
          label="Activity history"
          loading={history.isPending}
          rowData={history.data?.history ?? []}
          getRowId={(p) => String(p.data.id)}
          emptyText="No jobs have run on this device yet"
          rowSelection={{ mode: "singleRow", checkboxes: false, enableClickSelection: true }}
          onRowClicked={(e) => e.data &&
            setParams({ tab: "activity", activity: String(e.data.id) }, { replace: true })}
          getRowClass={(p) => (p.data?.id === shown?.id ? "ag-row-selected" : "")}
          columnDefs={[
            { headerName: "Job", field: "id", width: 90 },
            { headerName: "Script", field: "script_name", flex: 1 },
            {
              headerName: "Status",
              field: "status",
              width: 120,
              cellRenderer: (p: { value: string }) => (
                <Chip
                  size="small"
                  label={p.value}
                  color={p.value === "Success"
                    ? "success"
                    : p.value === "Failed" || p.value === "Timed Out"
                    ? "error"
                    : "default"}
                  variant={FINISHED.has(p.value) ? "filled" : "outlined"}
                />
              ),
            },
            { headerName: "Exit", field: "exit_code", width: 80 },
            { headerName: "By", field: "requested_by", width: 120 },
            {
              headerName: "Started",
              field: "ran_at",
              width: 140,
              valueFormatter: (p) => ago(p.value ? p.value * 1000 : null),
            },
            {
              headerName: "Took",
              colId: "took",
              width: 100,
              valueGetter: (p) =>
                p.data?.finished_at && (p.data.started_at ?? p.data.ran_at)
                  ? duration(p.data.finished_at - (p.data.started_at ?? p.data.ran_at)!)
                  : "",
            },
          ]}
        />
      </Box>
      {shown && (
        <Box component="section" aria-label={`Output of job ${shown.id}`}>
          <Typography variant="subtitle1" component="h2" sx={{ mb: 1 }}>
            Job {shown.id}: {shown.script_name} —{" "}
            <span data-testid="activity-status">{shown.status}</span>
            {shown.exit_code !== null && ` (exit code ${shown.exit_code})`}
          </Typography>
          <Stack direction="row" spacing={2}>
            <OutputPane label="Standard output" value={shown.stdout} />
            <OutputPane label="Standard error" value={shown.stderr} tone="error" />
          </Stack>
        </Box>
      )}
      <ConfirmDialog
        open={clearing}
        title="Clear finished activity?"
        confirmLabel="Clear"
        destructive
        onClose={() => setClearing(false)}
        onConfirm={async () => {
          await api(`/api/device/activity/${encodeURIComponent(d.hostname)}`, { method: "DELETE" });
          void qc.invalidateQueries({ queryKey: key });
        }}
      >
        Finished jobs and their output are removed from this device's history. Running jobs stay.
      </ConfirmDialog>
    </Stack>
  );
}

/** The production agent: version, channel, update state; admins change the channel. */
function AgentCard({ d }: { d: DeviceDetail }) {
  const admin = useIsAdmin();
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [updating, setUpdating] = useState(false);
  const [channel, setChannel] = useState<string>("");
  const [pinned, setPinned] = useState("");
  const a = d.agent;
  const releases = useQuery({
    queryKey: ["agent-releases"],
    queryFn: ({ signal }) =>
      api<{ releases: Array<{ version: string; channel: string }> }>(
        "/api/agent-updates/releases",
        { signal },
      ),
    enabled: admin,
  });
  const setPolicy = useMutation({
    mutationFn: () =>
      api(`/api/devices/${d.guid}/agent-update-policy`, {
        method: "PUT",
        body: channel === "pinned" ? { channel, pinned_version: pinned } : { channel },
      }),
    onSuccess: () => {
      notify({ severity: "success", message: `Release channel of ${d.hostname} changed.` });
      setChannel("");
      void qc.invalidateQueries({ queryKey: ["device", d.guid.toUpperCase()] });
    },
    onError: (err) => notify({ severity: "error", message: (err as Error).message }),
  });
  return (
    <Card
      title="Agent"
      action={admin && a
        ? (
          <Button size="small" variant="outlined" onClick={() => setUpdating(true)}>
            Update agent…
          </Button>
        )
        : undefined}
    >
      {!a
        ? (
          <Typography variant="body2" color="text.secondary">
            No production agent has reported on this device (the reference agent reports no
            version).
          </Typography>
        )
        : (
          <Stack spacing={1.5}>
            <Facts
              items={[
                ["Version", a.version ?? "not reported"],
                ["Platform", a.platform],
                ["Channel", a.channel],
                ["Should run", a.desired_version],
                ["Update", <StatePill key="s" state={a.update_state} />],
                ["Updating to", a.target_version],
                ["Last error", a.last_error],
                ["Last check", a.last_check_at ? ago(a.last_check_at) : null],
              ]}
            />
            {admin && (
              <Stack direction="row" spacing={1} sx={{ alignItems: "center" }}>
                <TextField
                  select
                  size="small"
                  label="Release channel"
                  value={channel || (["stable", "beta"].includes(a.channel) ? a.channel : "pinned")}
                  onChange={(e) => setChannel(e.target.value)}
                  sx={{ width: 170 }}
                >
                  <MenuItem value="inherit">Site's channel</MenuItem>
                  <MenuItem value="stable">Stable</MenuItem>
                  <MenuItem value="beta">Beta</MenuItem>
                  <MenuItem value="pinned">Pinned version</MenuItem>
                </TextField>
                {channel === "pinned" && (
                  <TextField
                    select
                    size="small"
                    label="Version"
                    value={pinned}
                    onChange={(e) => setPinned(e.target.value)}
                    sx={{ width: 140 }}
                  >
                    {(releases.data?.releases ?? []).map((r) => (
                      <MenuItem key={r.version} value={r.version}>{r.version}</MenuItem>
                    ))}
                  </TextField>
                )}
                <Button
                  variant="outlined"
                  size="small"
                  disabled={!channel || (channel === "pinned" && !pinned) || setPolicy.isPending}
                  onClick={() => setPolicy.mutate()}
                >
                  Change
                </Button>
              </Stack>
            )}
          </Stack>
        )}
      {updating && <AgentUpdateDialog devices={[d]} onClose={() => setUpdating(false)} />}
    </Card>
  );
}

function Health({ d }: { d: DeviceDetail }) {
  const agents = useQuery({
    queryKey: ["agents"],
    queryFn: ({ signal }) =>
      api<
        {
          agents: Array<
            {
              guid: string;
              agent_id: string | null;
              service_mode: string | null;
              connected_at: string;
              instance_id: string;
              status: string;
            }
          >;
        }
      >(
        "/api/agents",
        { signal },
      ),
  });
  const conn = agents.data?.agents.find((a) => a.guid.toUpperCase() === d.guid.toUpperCase());
  const roles = obj(d.details.agent_role_health);
  return (
    <Box sx={{ display: "grid", gridTemplateColumns: "repeat(2, minmax(0, 1fr))", gap: 2 }}>
      <AgentCard d={d} />
      <Card title="Connection">
        {agents.error ? <ErrorState error={agents.error} /> : (
          <Facts
            items={[
              ["Socket", conn ? "Connected" : "Not connected"],
              [
                "Connected since",
                conn ? `${ago(conn.connected_at)} (${when(conn.connected_at)})` : null,
              ],
              ["Agent id", conn?.agent_id],
              ["Runs as", conn?.service_mode],
              ["Engine instance", conn?.instance_id?.slice(0, 8)],
              ["Last seen", ago(d.last_seen)],
              ["Agent hash", d.agent_hash],
            ]}
          />
        )}
      </Card>
      <Card title="Roles">
        {Object.keys(roles).length
          ? (
            <Facts
              items={Object.entries(roles).map(([k, v]) => {
                const o = obj(v);
                const status = text(o.status) ?? text(v) ?? JSON.stringify(v);
                const detail = text(o.message) ?? text(o.detail);
                return [k, `${status}${detail ? ` — ${detail}` : ""}`] as [string, ReactNode];
              })}
            />
          )
          : (
            <Typography variant="body2" color="text.secondary">
              The agent has not reported role health.
            </Typography>
          )}
      </Card>
    </Box>
  );
}

type Containment = "quarantine" | "unquarantine" | "revoke" | "purge";

/** `/devices/:guid`. */
export function DevicePage() {
  const { guid = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const tab =
    (TABS.some(([t]) => t === params.get("tab")) ? params.get("tab") : "summary") as TabId;
  const admin = useIsAdmin();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const { notify, announce } = useToasts();
  const [quickJob, setQuickJob] = useState(false);
  const [menu, setMenu] = useState<HTMLElement | null>(null);
  const [containing, setContaining] = useState<Containment | null>(null);
  const key = useMemo(() => ["device", guid.toUpperCase()], [guid]);
  const q = useQuery({
    queryKey: key,
    queryFn: ({ signal }) =>
      api<DeviceDetail>(`/api/devices/${encodeURIComponent(guid)}`, { signal }),
  });
  useSocketEvent("device_status", (e) => {
    const data = e.data as { guid?: string; status?: DevicePresence };
    if (data.guid?.toUpperCase() !== guid.toUpperCase() || !data.status) return;
    const presence = data.status;
    qc.setQueryData<DeviceDetail>(
      key,
      (old) => old && { ...old, presence, status: presence === "online" ? "Online" : "Offline" },
    );
    announce(`This device is now ${data.status}`);
  });
  useSocketEvent("inventory", (e) => {
    if (String(e.data.guid ?? "").toUpperCase() === guid.toUpperCase()) {
      void qc.invalidateQueries({ queryKey: key });
    }
  });

  if (q.isPending) return <Loading label="Loading the device" />;
  // A failed refresh keeps the page it refreshes (an engine restart must not unmount an
  // open terminal or a half-filled form); only a first load that failed shows the error.
  if (q.error && !q.data) {
    const missing = q.error instanceof ApiError &&
      (q.error.status === 404 || q.error.status === 400);
    return (
      <>
        <PageHeader title={missing ? "Device not found" : "Device"} />
        {missing
          ? (
            <EmptyState
              title="No such device"
              action={
                <Button variant="contained" component={RouterLink} to="/devices">
                  All devices
                </Button>
              }
            >
              It was purged, or it belongs to a site you cannot see.
            </EmptyState>
          )
          : <ErrorState error={q.error} onRetry={() => q.refetch()} />}
      </>
    );
  }
  const d = q.data;
  const contain = async (action: Containment) => {
    await api(`/api/devices/${d.guid}/${action}`, { method: "POST" });
    notify({ severity: "success", message: `${d.hostname}: ${action} done.` });
    if (action === "purge") {
      void qc.invalidateQueries({ queryKey: ["sites"] });
      navigate("/devices", { replace: true });
      return;
    }
    void qc.invalidateQueries({ queryKey: key });
  };
  const actions: Containment[] = d.containment_status === "quarantined"
    ? ["unquarantine", "revoke", "purge"]
    : d.containment_status === "revoked"
    ? ["purge"]
    : ["quarantine", "revoke", "purge"];

  return (
    <>
      <PageHeader
        title={d.hostname}
        subtitle={
          <Stack sx={{ alignItems: "center" }} direction="row" spacing={1} component="span">
            <StatusPill status={d.presence} />
            <ContainmentPill status={d.containment_status} />
            <span>
              {d.site_name ?? "No site"} · {d.summary.operating_system ?? "OS not reported"}{" "}
              · last seen {ago(d.last_seen)}
            </span>
          </Stack>
        }
        actions={
          <>
            <Button
              variant="contained"
              onClick={() => setQuickJob(true)}
              disabled={d.containment_status !== "active"}
            >
              Quick job
            </Button>
            {admin && (
              <>
                <Button
                  variant="outlined"
                  endIcon={<ArrowDropDownIcon />}
                  onClick={(e) => setMenu(e.currentTarget)}
                  aria-haspopup="menu"
                >
                  Containment
                </Button>
                <Menu anchorEl={menu} open={!!menu} onClose={() => setMenu(null)}>
                  {actions.map((a) => (
                    <MenuItem
                      key={a}
                      onClick={() => (setMenu(null), setContaining(a))}
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
      {q.error && (
        <Alert severity="warning" sx={{ mx: 3, mb: 1 }}>
          The device could not be refreshed ({q.error.message}); this is what was loaded{" "}
          {ago(q.dataUpdatedAt)}.
        </Alert>
      )}
      {d.containment_status !== "active" && (
        <Alert severity="warning" sx={{ mx: 3, mb: 1 }}>
          This device is {d.containment_status}: it runs no jobs
          {d.containment_status === "revoked" ? " and its tokens are refused" : ""}.
        </Alert>
      )}
      <Box sx={{ px: 3, borderBottom: 1, borderColor: "divider" }}>
        <Tabs
          value={tab}
          onChange={(_, v: TabId) =>
            setParams(v === "summary" ? {} : { tab: v }, { replace: true })}
          aria-label="Device sections"
          variant="scrollable"
        >
          {TABS.map(([id, label]) => (
            <Tab
              key={id}
              value={id}
              label={label}
              id={`tab-${id}`}
              aria-controls="device-tabpanel"
            />
          ))}
        </Tabs>
      </Box>
      <Box
        role="tabpanel"
        id="device-tabpanel"
        aria-labelledby={`tab-${tab}`}
        sx={{ flexGrow: 1, minHeight: 0, overflow: "auto", p: 3 }}
      >
        {tab === "summary" && <Summary d={d} />}
        {tab === "software" && <Software guid={d.guid} />}
        {tab === "services" && <ServicesTab d={d} />}
        {tab === "processes" && <ProcessesTab d={d} />}
        {tab === "watchdogs" && <Watchdogs guid={d.guid} />}
        {tab === "activity" && <ActivityTab d={d} />}
        {tab === "terminal" && <TerminalTab d={d} />}
        {tab === "files" && <FilesTab d={d} />}
        {tab === "health" && <Health d={d} />}
      </Box>
      {quickJob && <QuickJobDialog devices={[d]} onClose={() => setQuickJob(false)} />}
      <ConfirmDialog
        open={!!containing}
        title={`${
          containing ? containing[0]!.toUpperCase() + containing.slice(1) : ""
        } ${d.hostname}?`}
        confirmLabel={containing ? containing[0]!.toUpperCase() + containing.slice(1) : ""}
        destructive={containing !== "unquarantine"}
        typeToConfirm={containing === "purge" ? d.hostname : undefined}
        onClose={() => setContaining(null)}
        onConfirm={() => contain(containing!)}
      >
        {containing === "quarantine" &&
          "The device keeps its connection but runs no jobs until unquarantined."}
        {containing === "unquarantine" && "The device may run jobs again."}
        {containing === "revoke" &&
          "The device loses its tokens and is refused until it enrolls again and is approved."}
        {containing === "purge" &&
          "The device and its history are deleted; it cannot come back without a fresh approval."}
      </ConfirmDialog>
    </>
  );
}
