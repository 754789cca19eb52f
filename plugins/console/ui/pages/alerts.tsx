/**
 * Alerts: the incident queue, live (the operator socket's `incidents` topic refreshes
 * it), by state with counts, filtered by severity, site, device and watchdog;
 * acknowledge, suppress with a reason, reopen. `?incident=<id>` (the link in every alert
 * message) opens that incident.
 *
 * @module
 */
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import Link from "@mui/material/Link";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef, GridApi } from "ag-grid-community";
import { useMemo, useRef, useState } from "react";
import { Link as RouterLink, useSearchParams } from "react-router";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api, query } from "../api/client.ts";
import { useSites } from "../api/queries.ts";
import { useSocketEvent } from "../api/socket.ts";
import type { Incident, IncidentCounts } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { SeverityPill, StatePill } from "../components/badges.tsx";
import { DataGrid, exportGridCsv } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { ErrorState } from "../components/states.tsx";
import { ago, when } from "../lib/format.ts";

const STATES = ["open", "suppressed", "resolved", "all"] as const;
type State = typeof STATES[number];

function SuppressDialog(
  { incident, onClose }: { incident: Incident | null; onClose: () => void },
) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [reason, setReason] = useState("");
  const suppress = useMutation({
    mutationFn: () =>
      api(`/api/watchdogs/incidents/${incident!.id}/state`, {
        body: { state: "suppressed", reason: reason.trim() },
      }),
    onSuccess: () => {
      notify({ severity: "success", message: `${incident!.title} suppressed.` });
      setReason("");
      void qc.invalidateQueries({ queryKey: ["incidents"] });
      void qc.invalidateQueries({ queryKey: ["incident-counts"] });
      onClose();
    },
  });
  return (
    <DialogFrame
      open={!!incident}
      onClose={onClose}
      title={`Suppress ${incident?.title ?? ""}`}
      onSubmit={() => reason.trim() && suppress.mutate()}
      actions={
        <Button type="submit" variant="contained" disabled={!reason.trim() || suppress.isPending}>
          Suppress
        </Button>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        <Typography color="text.secondary">
          A suppressed incident stays visible and still tracks re-triggers, but runs no actions and
          sends no escalations until it is reopened or resolves.
        </Typography>
        <TextField
          label="Reason"
          value={reason}
          onChange={(e) => setReason(e.target.value)}
          required
          autoFocus
          multiline
          minRows={2}
          helperText="Recorded on the incident and in the audit log"
        />
        {suppress.error && <ErrorState error={suppress.error} title="Not suppressed" />}
      </Stack>
    </DialogFrame>
  );
}

function IncidentDialog({ incident, onClose }: { incident: Incident | null; onClose: () => void }) {
  const actions = Array.isArray(incident?.action_summary)
    ? incident!.action_summary as Array<Record<string, unknown>>
    : [];
  return (
    <DialogFrame
      open={!!incident}
      onClose={onClose}
      title={incident?.title ?? "Incident"}
      maxWidth="md"
    >
      {incident && (
        <Stack spacing={1.5}>
          <Stack direction="row" spacing={1}>
            <SeverityPill severity={incident.severity} />
            <StatePill state={incident.state} />
          </Stack>
          <Typography>{incident.message}</Typography>
          <Typography variant="body2" color="text.secondary">
            <Link component={RouterLink} to={`/devices/${incident.device_guid}`}>
              {incident.hostname}
            </Link>
            {" · watchdog "}
            <Link component={RouterLink} to={`/watchdogs/${incident.watchdog_id}`}>
              {incident.watchdog_name}
            </Link>
            {` · opened ${when(incident.opened_at)} · triggered ${incident.trigger_count}×`}
            {incident.acknowledged_by ? ` · acknowledged by ${incident.acknowledged_by}` : ""}
            {incident.resolved_at
              ? ` · resolved ${when(incident.resolved_at)} (${incident.resolution_reason})`
              : ""}
            {incident.suppressed_reason ? ` · suppressed: ${incident.suppressed_reason}` : ""}
          </Typography>
          {actions.length > 0 && (
            <Box component="ul" sx={{ m: 0, pl: 2 }}>
              {actions.map((a, i) => (
                <li key={i}>
                  {String(a.type ?? "action")}: {String(a.outcome ?? a.status ?? "")}{" "}
                  {a.detail ? `— ${String(a.detail)}` : ""}
                </li>
              ))}
            </Box>
          )}
        </Stack>
      )}
    </DialogFrame>
  );
}

/** `/alerts`. */
export function AlertsPage() {
  const qc = useQueryClient();
  const { notify, announce } = useToasts();
  const sites = useSites();
  const [params, setParams] = useSearchParams();
  const focus = params.get("incident");
  const state =
    (STATES.includes(params.get("state") as State)
      ? params.get("state")
      : focus
      ? "all"
      : "open") as State;
  const severity = params.get("severity") ?? "";
  const site = params.get("site") ?? "";
  const device = params.get("device") ?? "";
  const watchdog = params.get("watchdog") ?? "";
  const grid = useRef<GridApi<Incident> | null>(null);
  const [suppressing, setSuppressing] = useState<Incident | null>(null);
  const setParam = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };
  const list = useQuery({
    queryKey: ["incidents", state, watchdog],
    queryFn: ({ signal }) =>
      api<{ items: Incident[]; counts: IncidentCounts }>(
        `/api/watchdogs/incidents${
          query({ state, watchdog_id: watchdog || undefined, limit: 1000 })
        }`,
        { signal },
      ),
  });
  const soon = useRef<ReturnType<typeof setTimeout>>(undefined);
  useSocketEvent("incidents", (e) => {
    if (e.type === "watchdog_incidents_changed") {
      const n = Number((e.data as { count?: number }).count ?? 0);
      if (n) announce(`${n} incident change${n === 1 ? "" : "s"}`);
    }
    clearTimeout(soon.current);
    soon.current = setTimeout(() => void qc.invalidateQueries({ queryKey: ["incidents"] }), 500);
  });
  const act = useMutation({
    mutationFn: ({ i, what }: { i: Incident; what: "ack" | "reopen" }) =>
      what === "ack"
        ? api(`/api/watchdogs/incidents/${i.id}/acknowledge`, { method: "POST" })
        : api(`/api/watchdogs/incidents/${i.id}/state`, { body: { state: "open" } }),
    onSuccess: (_, { i, what }) => {
      notify({
        severity: "success",
        message: `${i.title} ${what === "ack" ? "acknowledged" : "reopened"}.`,
      });
      void qc.invalidateQueries({ queryKey: ["incidents"] });
      void qc.invalidateQueries({ queryKey: ["incident-counts"] });
    },
    onError: (err) => notify({ severity: "error", message: (err as Error).message }),
  });

  const siteName = (id: number | null | undefined) =>
    id === null || id === undefined
      ? "No site"
      : sites.data?.sites.find((s) => s.id === id)?.name ?? `#${id}`;
  const items = list.data?.items ?? [];
  const watchdogs = [...new Map(items.map((i) => [i.watchdog_id, i.watchdog_name])).entries()];
  const shown = items.filter((i) =>
    (!severity || i.severity === severity) &&
    (!site || String(i.site_id ?? "none") === site) &&
    (!device || i.hostname.toLowerCase().includes(device.toLowerCase()))
  );
  const focused = focus ? items.find((i) => i.id === focus) ?? null : null;

  const columns = useMemo<ColDef<Incident>[]>(() => [
    {
      headerName: "Severity",
      field: "severity",
      width: 105,
      cellRenderer: (p: { data?: Incident }) =>
        p.data && <SeverityPill severity={p.data.severity} />,
    },
    {
      headerName: "State",
      field: "state",
      width: 115,
      cellRenderer: (p: { data?: Incident }) => p.data && <StatePill state={p.data.state} />,
    },
    {
      headerName: "Incident",
      field: "title",
      flex: 1.4,
      minWidth: 200,
      cellRenderer: (p: { data?: Incident }) =>
        p.data && (
          <Link component={RouterLink} to={`/alerts?incident=${p.data.id}`} title={p.data.message}>
            {p.data.title}
          </Link>
        ),
    },
    {
      headerName: "Device",
      field: "hostname",
      width: 140,
      cellRenderer: (p: { data?: Incident }) =>
        p.data && (
          <Link component={RouterLink} to={`/devices/${p.data.device_guid}`}>
            {p.data.hostname}
          </Link>
        ),
    },
    {
      headerName: "Site",
      colId: "site",
      width: 120,
      valueGetter: (p) => siteName(p.data?.site_id),
    },
    { headerName: "Watchdog", field: "watchdog_name", width: 150 },
    {
      headerName: "Opened",
      field: "opened_at",
      width: 120,
      valueFormatter: (p) => ago(p.value),
    },
    { headerName: "Triggers", field: "trigger_count", width: 95 },
    {
      headerName: "Acknowledged",
      colId: "ack",
      width: 130,
      valueGetter: (p) => p.data?.acknowledged_by ?? "",
    },
    {
      headerName: "Actions",
      colId: "actions",
      // Acknowledge and Suppress… side by side, neither cut.
      width: 244,
      sortable: false,
      cellRenderer: (p: { data?: Incident }) => {
        const i = p.data;
        if (!i) return null;
        return (
          <Stack direction="row" spacing={0.5} sx={{ alignItems: "center", height: "100%" }}>
            {i.state === "open" && !i.acknowledged_at && (
              <Button
                size="small"
                onClick={() => act.mutate({ i, what: "ack" })}
                aria-label={`Acknowledge ${i.title}`}
              >
                Acknowledge
              </Button>
            )}
            {i.state === "open" && (
              <Button
                size="small"
                onClick={() => setSuppressing(i)}
                aria-label={`Suppress ${i.title}`}
              >
                Suppress…
              </Button>
            )}
            {i.state === "suppressed" && (
              <Button
                size="small"
                onClick={() => act.mutate({ i, what: "reopen" })}
                aria-label={`Reopen ${i.title}`}
              >
                Reopen
              </Button>
            )}
          </Stack>
        );
      },
    },
    // siteName reads the sites once they load.
  ], [sites.data]);

  const counts = list.data?.counts;
  return (
    <>
      <PageHeader
        title="Alerts"
        subtitle="Watchdog incidents, live"
        actions={
          <Button
            variant="outlined"
            disabled={!shown.length}
            onClick={() => {
              const n = exportGridCsv(grid.current, "incidents");
              notify({ severity: "success", message: `Exported ${n} incident(s).` });
            }}
          >
            Export CSV
          </Button>
        }
      />
      <Stack
        direction="row"
        spacing={1}
        sx={{ px: 3, pb: 1.5, alignItems: "center", flexWrap: "wrap", rowGap: 1 }}
      >
        <Stack direction="row" spacing={0.5} role="group" aria-label="State">
          {(["open", "suppressed", "resolved", "all"] as const).map((s) => (
            <Chip
              key={s}
              clickable
              onClick={() => setParam("state", s === "open" ? "" : s)}
              color={state === s ? (s === "open" ? "error" : "primary") : "default"}
              variant={state === s ? "filled" : "outlined"}
              aria-pressed={state === s}
              label={s === "all"
                ? "All"
                : `${s[0]!.toUpperCase()}${s.slice(1)}${counts ? ` (${counts[s]})` : ""}`}
            />
          ))}
        </Stack>
        <TextField
          select
          size="small"
          label="Severity"
          value={severity}
          onChange={(e) => setParam("severity", e.target.value)}
          sx={{ width: 120 }}
        >
          <MenuItem value="">Any</MenuItem>
          <MenuItem value="error">Error</MenuItem>
          <MenuItem value="warning">Warning</MenuItem>
          <MenuItem value="info">Info</MenuItem>
        </TextField>
        <TextField
          select
          size="small"
          label="Site"
          value={site}
          onChange={(e) => setParam("site", e.target.value)}
          sx={{ width: 130 }}
        >
          <MenuItem value="">All sites</MenuItem>
          {(sites.data?.sites ?? []).map((s) => (
            <MenuItem key={s.id} value={String(s.id)}>{s.name}</MenuItem>
          ))}
          <MenuItem value="none">No site</MenuItem>
        </TextField>
        <TextField
          size="small"
          label="Device"
          value={device}
          onChange={(e) => setParam("device", e.target.value)}
          sx={{ width: 120 }}
        />
        <TextField
          select
          size="small"
          label="Watchdog"
          value={watchdog}
          onChange={(e) => setParam("watchdog", e.target.value)}
          sx={{ width: 150 }}
        >
          <MenuItem value="">Any watchdog</MenuItem>
          {watchdogs.map(([wid, name]) => <MenuItem key={wid} value={wid}>{name}</MenuItem>)}
          {watchdog && !watchdogs.some(([wid]) => wid === watchdog) && (
            <MenuItem value={watchdog}>This watchdog</MenuItem>
          )}
        </TextField>
      </Stack>
      {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
      <Box sx={{ flexGrow: 1, minHeight: 300, px: 3, pb: 2 }}>
        <DataGrid<Incident>
          label="Incidents"
          emptyText={state === "open" ? "No open incidents: all quiet" : "No incidents match"}
          loading={list.isPending}
          rowData={shown}
          columnDefs={columns}
          getRowId={(p) => p.data.id}
          onGridReady={(e) => (grid.current = e.api)}
          rowHeight={44}
        />
      </Box>
      <SuppressDialog incident={suppressing} onClose={() => setSuppressing(null)} />
      <IncidentDialog incident={focused} onClose={() => setParam("incident", "")} />
    </>
  );
}
