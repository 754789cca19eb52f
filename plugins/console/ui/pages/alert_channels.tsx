/**
 * Notification channels (admins): webhook, Slack, Teams, Discord and email channels
 * with write-only secrets (a stored URL or password is never shown; leaving the field
 * empty keeps it), quiet hours and digests; "send test" shows what the remote answered;
 * routes (default by severity and site, or per watchdog); the delivery log per channel
 * (status, attempts, last error, retry of dead letters); and who receives operator mail.
 *
 * @module
 */
import MoreVertIcon from "@mui/icons-material/MoreVert";
import Alert from "@mui/material/Alert";
import Autocomplete from "@mui/material/Autocomplete";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Checkbox from "@mui/material/Checkbox";
import Chip from "@mui/material/Chip";
import FormControlLabel from "@mui/material/FormControlLabel";
import IconButton from "@mui/material/IconButton";
import Menu from "@mui/material/Menu";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import Switch from "@mui/material/Switch";
import Tab from "@mui/material/Tab";
import Tabs from "@mui/material/Tabs";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef, GridApi } from "ag-grid-community";
import { useMemo, useRef, useState } from "react";
import { useSearchParams } from "react-router";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api, query } from "../api/client.ts";
import { useSites } from "../api/queries.ts";
import type { AlertChannel, AlertRoute, Delivery, QuietHours, Watchdog } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { EnabledPill, StatePill } from "../components/badges.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { CopyField } from "../components/copy.tsx";
import { DataGrid, editDeleteColumn, exportGridCsv } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { SitesPicker } from "../components/pickers.tsx";
import { ErrorState } from "../components/states.tsx";
import { ago, when } from "../lib/format.ts";

const KINDS: Array<[AlertChannel["kind"], string]> = [
  ["slack", "Slack"],
  ["teams", "Microsoft Teams"],
  ["discord", "Discord"],
  ["webhook", "Webhook (signed JSON)"],
  ["email", "Email"],
];
const EVENTS = ["opened", "escalated", "acknowledged", "resolved"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** Quiet hours in words. */
export function quietWords(q: QuietHours | null): string {
  if (!q) return "None";
  const days = q.days && q.days.length < 7 ? ` (${q.days.map((d) => DAYS[d]).join(", ")})` : "";
  const through = q.breakthrough_severity ? `; ${q.breakthrough_severity} and above go out` : "";
  return `${q.start}–${q.end} ${q.time_zone}${days}${through}`;
}

interface ChannelForm {
  kind: AlertChannel["kind"];
  name: string;
  enabled: boolean;
  url: string;
  signing_secret: string;
  host: string;
  port: string;
  security: "starttls" | "tls";
  username: string;
  password: string;
  from: string;
  to: string;
  operator_mail: boolean;
  rate: string;
  digest: string;
  quiet: boolean;
  q: QuietHours;
}

function formOf(c: AlertChannel | null): ChannelForm {
  const cfg = (c?.config ?? {}) as Record<string, unknown>;
  return {
    kind: c?.kind ?? "slack",
    name: c?.name ?? "",
    enabled: c?.enabled ?? true,
    url: "",
    signing_secret: "",
    host: String(cfg.host ?? ""),
    port: cfg.port ? String(cfg.port) : "",
    security: cfg.security === "tls" ? "tls" : "starttls",
    username: String(cfg.username ?? ""),
    password: "",
    from: String(cfg.from ?? ""),
    to: Array.isArray(cfg.to) ? (cfg.to as string[]).join(", ") : "",
    operator_mail: !!c?.operator_mail,
    rate: c ? String(c.rate_per_minute) : "",
    digest: c ? String(c.digest_minutes) : "0",
    quiet: !!c?.quiet_hours,
    q: c?.quiet_hours ?? {
      start: "22:00",
      end: "07:00",
      time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
      breakthrough_severity: "error",
    },
  };
}

function bodyOf(f: ChannelForm, editing: boolean): Record<string, unknown> {
  const common: Record<string, unknown> = {
    kind: f.kind,
    name: f.name.trim(),
    enabled: f.enabled,
    digest_minutes: Number(f.digest) || 0,
    quiet_hours: f.quiet ? f.q : null,
    ...(f.rate.trim() ? { rate_per_minute: Number(f.rate) } : {}),
  };
  if (f.kind === "email") {
    return {
      ...common,
      host: f.host.trim(),
      ...(f.port.trim() ? { port: Number(f.port) } : {}),
      security: f.security,
      username: f.username.trim() || null,
      // Write-only: empty while editing keeps the stored password.
      ...(f.password ? { password: f.password } : editing ? {} : {}),
      from: f.from.trim(),
      to: f.to.split(",").map((s) => s.trim()).filter(Boolean),
      operator_mail: f.operator_mail,
    };
  }
  return {
    ...common,
    ...(f.url.trim() ? { url: f.url.trim() } : {}),
    ...(f.kind === "webhook" && f.signing_secret ? { signing_secret: f.signing_secret } : {}),
  };
}

function ChannelDialog(
  { channel, onClose }: { channel: AlertChannel | "new" | null; onClose: () => void },
) {
  const editing = channel && channel !== "new" ? channel : null;
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [f, setF] = useState<ChannelForm>(() => formOf(editing));
  const [secret, setSecret] = useState<string | null>(null);
  const set = (p: Partial<ChannelForm>) => setF({ ...f, ...p });
  const save = useMutation({
    mutationFn: () =>
      editing
        ? api<{ channel: AlertChannel; signing_secret: string | null }>(
          `/api/alerts/channels/${editing.id}`,
          { method: "PUT", body: bodyOf(f, true) },
        )
        : api<{ channel: AlertChannel; signing_secret: string | null }>("/api/alerts/channels", {
          body: bodyOf(f, false),
        }),
    onSuccess: (r) => {
      void qc.invalidateQueries({ queryKey: ["alert-channels"] });
      notify({ severity: "success", message: `Channel ${r.channel.name} saved.` });
      if (r.signing_secret) setSecret(r.signing_secret);
      else onClose();
    },
  });
  const zones = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] })
    .supportedValuesOf?.("timeZone") ?? ["UTC"];
  const stored = editing?.secrets ?? { url: false, password: false, signing_secret: false };
  if (secret) {
    return (
      <DialogFrame open onClose={onClose} title="The channel's signing secret">
        <Stack spacing={2}>
          <Alert severity="warning">
            Shown only now. Give it to the receiver: it checks each message's X-Borealis-Signature
            with it.
          </Alert>
          <CopyField label="Signing secret" value={secret} />
        </Stack>
      </DialogFrame>
    );
  }
  return (
    <DialogFrame
      open
      onClose={onClose}
      maxWidth="md"
      title={editing ? `Edit ${editing.name}` : "New notification channel"}
      onSubmit={() => save.mutate()}
      actions={
        <Button type="submit" variant="contained" disabled={save.isPending || !f.name.trim()}>
          {editing ? "Save" : "Create channel"}
        </Button>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        <Stack direction="row" spacing={1.5}>
          <TextField
            select
            label="Kind"
            value={f.kind}
            onChange={(e) => set({ kind: e.target.value as ChannelForm["kind"] })}
            disabled={!!editing}
            sx={{ width: 230 }}
          >
            {KINDS.map(([k, l]) => <MenuItem key={k} value={k}>{l}</MenuItem>)}
          </TextField>
          <TextField
            label="Channel name"
            value={f.name}
            onChange={(e) => set({ name: e.target.value })}
            sx={{ flex: 1 }}
          />
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
        {f.kind !== "email" && (
          <TextField
            label="Webhook URL"
            value={f.url}
            onChange={(e) => set({ url: e.target.value })}
            placeholder={stored.url ? "Stored — leave empty to keep it" : "https://…"}
            helperText={stored.url
              ? `Stored (${
                String(editing?.config.url_hint ?? "hidden")
              }); never shown again. Type a new one to replace it.`
              : "A chat webhook URL is a secret: it is sealed by the vault and never shown again."}
            autoComplete="off"
          />
        )}
        {f.kind === "webhook" && (
          <TextField
            label="Signing secret (optional)"
            value={f.signing_secret}
            onChange={(e) => set({ signing_secret: e.target.value })}
            placeholder={stored.signing_secret
              ? "Stored — leave empty to keep it"
              : "Leave empty: the engine makes one"}
            autoComplete="off"
          />
        )}
        {f.kind === "email" && (
          <>
            <Stack direction="row" spacing={1.5}>
              <TextField
                label="SMTP server"
                value={f.host}
                onChange={(e) => set({ host: e.target.value })}
                sx={{ flex: 1 }}
              />
              <TextField
                label="Port"
                value={f.port}
                onChange={(e) => set({ port: e.target.value })}
                sx={{ width: 110 }}
                placeholder={f.security === "tls" ? "465" : "587"}
              />
              <TextField
                select
                label="Security"
                value={f.security}
                onChange={(e) => set({ security: e.target.value as "starttls" | "tls" })}
                sx={{ width: 160 }}
              >
                <MenuItem value="starttls">STARTTLS</MenuItem>
                <MenuItem value="tls">TLS</MenuItem>
              </TextField>
            </Stack>
            <Stack direction="row" spacing={1.5}>
              <TextField
                label="Username"
                value={f.username}
                onChange={(e) => set({ username: e.target.value })}
                sx={{ flex: 1 }}
                autoComplete="off"
              />
              <TextField
                label="Password"
                type="password"
                value={f.password}
                onChange={(e) => set({ password: e.target.value })}
                placeholder={stored.password ? "Stored — leave empty to keep it" : ""}
                sx={{ flex: 1 }}
                autoComplete="new-password"
              />
            </Stack>
            <Stack direction="row" spacing={1.5}>
              <TextField
                label="From"
                value={f.from}
                onChange={(e) => set({ from: e.target.value })}
                sx={{ flex: 1 }}
              />
              <TextField
                label="To (comma separated)"
                value={f.to}
                onChange={(e) => set({ to: e.target.value })}
                sx={{ flex: 2 }}
              />
            </Stack>
            <FormControlLabel
              control={
                <Checkbox
                  checked={f.operator_mail}
                  onChange={(e) => set({ operator_mail: e.target.checked })}
                />
              }
              label="Also carries operators' own alert mail (one channel at most)"
            />
          </>
        )}
        <Stack direction="row" spacing={1.5}>
          <TextField
            label="Messages per minute"
            value={f.rate}
            onChange={(e) => set({ rate: e.target.value })}
            placeholder="kind's default"
            sx={{ width: 200 }}
          />
          <TextField
            label="Digest (minutes, 0 = off)"
            value={f.digest}
            onChange={(e) => set({ digest: e.target.value })}
            sx={{ width: 200 }}
          />
        </Stack>
        <FormControlLabel
          control={<Switch checked={f.quiet} onChange={(e) => set({ quiet: e.target.checked })} />}
          label="Quiet hours"
        />
        {f.quiet && (
          <Stack spacing={1.5}>
            <Stack direction="row" spacing={1.5}>
              <TextField
                label="From (HH:MM)"
                value={f.q.start}
                onChange={(e) => set({ q: { ...f.q, start: e.target.value } })}
                sx={{ width: 140 }}
              />
              <TextField
                label="To (HH:MM)"
                value={f.q.end}
                onChange={(e) => set({ q: { ...f.q, end: e.target.value } })}
                sx={{ width: 140 }}
              />
              <Autocomplete
                sx={{ flex: 1 }}
                options={zones}
                value={f.q.time_zone}
                disableClearable
                onChange={(_, v) => v && set({ q: { ...f.q, time_zone: v } })}
                renderInput={(p) => <TextField {...p} label="Time zone" />}
              />
              <TextField
                select
                label="Still sent at once"
                value={f.q.breakthrough_severity ?? ""}
                onChange={(e) =>
                  set({
                    q: {
                      ...f.q,
                      breakthrough_severity:
                        (e.target.value || null) as QuietHours["breakthrough_severity"],
                    },
                  })}
                sx={{ width: 200 }}
              >
                <MenuItem value="">Nothing</MenuItem>
                <MenuItem value="error">Errors</MenuItem>
                <MenuItem value="warning">Warnings and errors</MenuItem>
                <MenuItem value="info">Everything</MenuItem>
              </TextField>
            </Stack>
            <Stack
              direction="row"
              spacing={0.5}
              role="group"
              aria-label="Days the quiet period starts"
            >
              {DAYS.map((d, i) => {
                const on = !f.q.days || f.q.days.includes(i);
                return (
                  <Chip
                    key={d}
                    label={d}
                    clickable
                    variant={on ? "filled" : "outlined"}
                    color={on ? "primary" : "default"}
                    aria-pressed={on}
                    onClick={() => {
                      const cur = f.q.days ?? [0, 1, 2, 3, 4, 5, 6];
                      const next = on ? cur.filter((x) => x !== i) : [...cur, i].sort();
                      set({
                        q: {
                          ...f.q,
                          days: next.length === 7 ? undefined : next.length ? next : cur,
                        },
                      });
                    }}
                  />
                );
              })}
            </Stack>
          </Stack>
        )}
        {save.error && <ErrorState error={save.error} title="Not saved" />}
      </Stack>
    </DialogFrame>
  );
}

interface TestResult {
  ok: boolean;
  status: number | null;
  response: string;
  error: string | null;
  durationMs: number;
}

function Channels() {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [, setParams] = useSearchParams();
  const grid = useRef<GridApi<AlertChannel> | null>(null);
  const [editing, setEditing] = useState<AlertChannel | "new" | null>(null);
  const [menu, setMenu] = useState<{ anchor: HTMLElement; c: AlertChannel } | null>(null);
  const [deleting, setDeleting] = useState<AlertChannel | null>(null);
  const [test, setTest] = useState<{ c: AlertChannel; r: TestResult | null; err?: unknown } | null>(
    null,
  );
  const [rotated, setRotated] = useState<string | null>(null);
  const list = useQuery({
    queryKey: ["alert-channels"],
    queryFn: ({ signal }) => api<{ items: AlertChannel[] }>("/api/alerts/channels", { signal }),
  });
  const runTest = async (c: AlertChannel) => {
    setTest({ c, r: null });
    try {
      const r = await api<TestResult>(`/api/alerts/channels/${c.id}/test`, { method: "POST" });
      setTest({ c, r });
      void qc.invalidateQueries({ queryKey: ["alert-channels"] });
    } catch (err) {
      setTest({ c, r: null, err });
    }
  };
  const columns = useMemo<ColDef<AlertChannel>[]>(() => [
    { headerName: "Name", field: "name", flex: 1, minWidth: 150 },
    {
      headerName: "Kind",
      field: "kind",
      width: 140,
      valueFormatter: (p) => KINDS.find(([k]) => k === p.value)?.[1] ?? p.value,
    },
    {
      headerName: "Target",
      colId: "target",
      flex: 1,
      minWidth: 160,
      valueGetter: (p) =>
        p.data?.kind === "email"
          ? `${p.data.config.host ?? ""} → ${((p.data.config.to as string[]) ?? []).join(", ")}`
          : String(p.data?.config.url_hint ?? ""),
    },
    {
      headerName: "State",
      colId: "state",
      width: 140,
      valueGetter: (
        p,
      ) => (p.data?.needs_secrets ? "Needs secrets" : p.data?.enabled ? "Enabled" : "Disabled"),
      cellRenderer: (p: { data?: AlertChannel }) =>
        p.data &&
        (p.data.needs_secrets
          ? <StatePill state="held" label="Needs secrets" />
          : <EnabledPill enabled={p.data.enabled} />),
    },
    {
      headerName: "Quiet hours",
      colId: "quiet",
      width: 170,
      valueGetter: (p) => quietWords(p.data?.quiet_hours ?? null),
      tooltipValueGetter: (p) => p.value,
    },
    {
      headerName: "Delivered",
      colId: "delivered",
      width: 105,
      valueGetter: (p) => p.data?.stats?.delivered ?? 0,
    },
    {
      headerName: "Waiting",
      colId: "waiting",
      width: 95,
      valueGetter: (
        p,
      ) => (p.data?.stats ? p.data.stats.queued + p.data.stats.held + p.data.stats.sending : 0),
    },
    { headerName: "Dead", colId: "dead", width: 80, valueGetter: (p) => p.data?.stats?.dead ?? 0 },
    {
      headerName: "Last error",
      colId: "last_error",
      flex: 1,
      minWidth: 140,
      valueGetter: (p) =>
        p.data?.stats?.last_error
          ? `${p.data.stats.last_error} (${ago(p.data.stats.last_error_at)})`
          : "",
      tooltipValueGetter: (p) => p.value,
    },
    {
      headerName: "Actions",
      colId: "actions",
      width: 150,
      sortable: false,
      cellRenderer: (p: { data?: AlertChannel }) =>
        p.data && (
          <Stack direction="row" spacing={0.5} sx={{ alignItems: "center", height: "100%" }}>
            <Button
              size="small"
              onClick={() =>
                void runTest(p.data!)}
              aria-label={`Send a test to ${p.data.name}`}
            >
              Test
            </Button>
            <IconButton
              size="small"
              aria-label={`More actions for ${p.data.name}`}
              aria-haspopup="menu"
              onClick={(e) =>
                setMenu({ anchor: e.currentTarget, c: p.data! })}
            >
              <MoreVertIcon fontSize="small" />
            </IconButton>
          </Stack>
        ),
    },
  ], []);
  const rows = list.data?.items ?? [];
  const pick = (fn: (c: AlertChannel) => void) => () => {
    const c = menu!.c;
    setMenu(null);
    fn(c);
  };
  return (
    <Stack spacing={1.5} sx={{ height: "100%" }}>
      <Stack direction="row" spacing={1}>
        <Button variant="contained" onClick={() => setEditing("new")}>New channel</Button>
        <Button
          variant="outlined"
          disabled={!rows.length}
          onClick={() =>
            notify({
              severity: "success",
              message: `Exported ${exportGridCsv(grid.current, "alert-channels")} channel(s).`,
            })}
        >
          Export CSV
        </Button>
      </Stack>
      {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
      <Box sx={{ flexGrow: 1, minHeight: 240 }}>
        <DataGrid<AlertChannel>
          label="Notification channels"
          emptyText="No channels yet: add Slack, Teams, Discord, a webhook or email"
          loading={list.isPending}
          rowData={rows}
          columnDefs={columns}
          getRowId={(p) => p.data.id}
          onGridReady={(e) => (grid.current = e.api)}
          rowHeight={44}
        />
      </Box>
      <Menu anchorEl={menu?.anchor} open={!!menu} onClose={() => setMenu(null)}>
        <MenuItem onClick={pick(setEditing)}>Edit</MenuItem>
        <MenuItem
          onClick={pick((c) => setParams({ tab: "log", channel: c.id }, { replace: true }))}
        >
          Delivery log
        </MenuItem>
        {menu?.c.kind === "webhook" && (
          <MenuItem
            onClick={pick(async (c) => {
              try {
                const r = await api<{ signing_secret: string }>(
                  `/api/alerts/channels/${c.id}/rotate_secret`,
                  {
                    method: "POST",
                  },
                );
                setRotated(r.signing_secret);
              } catch (err) {
                notify({ severity: "error", message: (err as Error).message });
              }
            })}
          >
            New signing secret…
          </MenuItem>
        )}
        <MenuItem onClick={pick(setDeleting)} sx={{ color: "error.main" }}>Delete…</MenuItem>
      </Menu>
      {editing && <ChannelDialog channel={editing} onClose={() => setEditing(null)} />}
      <DialogFrame
        open={!!test}
        onClose={() => setTest(null)}
        title={`Test of ${test?.c.name ?? ""}`}
      >
        {test && !test.r && !test.err && <Typography role="status">Sending…</Typography>}
        {test?.err !== undefined && <ErrorState error={test.err} title="Not sent" />}
        {test?.r && (
          <Stack spacing={1} role="status" data-testid="test-result">
            <Alert severity={test.r.ok ? "success" : "error"}>
              {test.r.ok ? "Delivered" : "Failed"}
              {test.r.status !== null ? ` — the remote answered ${test.r.status}` : ""} in{" "}
              {test.r.durationMs} ms
              {test.r.error ? `: ${test.r.error}` : "."}
            </Alert>
            {test.r.response && (
              <Box
                component="pre"
                sx={{
                  m: 0,
                  p: 1,
                  bgcolor: "action.hover",
                  whiteSpace: "pre-wrap",
                  overflowWrap: "anywhere",
                }}
              >
                {test.r.response}
              </Box>
            )}
          </Stack>
        )}
      </DialogFrame>
      <DialogFrame open={!!rotated} onClose={() => setRotated(null)} title="New signing secret">
        <Stack spacing={2}>
          <Alert severity="warning">
            The old secret stopped working. This one is shown only now.
          </Alert>
          {rotated && <CopyField label="Signing secret" value={rotated} />}
        </Stack>
      </DialogFrame>
      <ConfirmDialog
        open={!!deleting}
        title={`Delete ${deleting?.name}?`}
        confirmLabel="Delete"
        destructive
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          await api(`/api/alerts/channels/${deleting!.id}`, { method: "DELETE" });
          notify({ severity: "success", message: `${deleting!.name} deleted.` });
          void qc.invalidateQueries({ queryKey: ["alert-channels"] });
          void qc.invalidateQueries({ queryKey: ["alert-routes"] });
        }}
      >
        Routes stop naming it; messages waiting for it are dropped.
      </ConfirmDialog>
    </Stack>
  );
}

function RouteDialog(
  { route, channels, watchdogs, onClose }: {
    route: AlertRoute | "new" | null;
    channels: AlertChannel[];
    watchdogs: Watchdog[];
    onClose: () => void;
  },
) {
  const editing = route && route !== "new" ? route : null;
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [name, setName] = useState(editing?.name ?? "");
  const [enabled, setEnabled] = useState(editing?.enabled ?? true);
  const [watchdog, setWatchdog] = useState<string>(editing?.watchdog_id ?? "");
  const [severity, setSeverity] = useState<AlertRoute["min_severity"]>(
    editing?.min_severity ?? "warning",
  );
  const [siteIds, setSiteIds] = useState<number[]>(editing?.site_ids ?? []);
  const [events, setEvents] = useState<string[]>(editing?.events ?? EVENTS);
  const [channelIds, setChannelIds] = useState<string[]>(editing?.channel_ids ?? []);
  const save = useMutation({
    mutationFn: () => {
      const body = {
        name: name.trim(),
        enabled,
        watchdog_id: watchdog || null,
        min_severity: severity,
        site_ids: siteIds,
        events,
        channel_ids: channelIds,
      };
      return editing
        ? api(`/api/alerts/routes/${editing.id}`, { method: "PUT", body })
        : api("/api/alerts/routes", { body });
    },
    onSuccess: () => {
      notify({ severity: "success", message: `Route ${name.trim()} saved.` });
      void qc.invalidateQueries({ queryKey: ["alert-routes"] });
      onClose();
    },
  });
  return (
    <DialogFrame
      open
      onClose={onClose}
      maxWidth="md"
      title={editing ? `Edit ${editing.name}` : "New route"}
      onSubmit={() => save.mutate()}
      actions={
        <Button
          type="submit"
          variant="contained"
          disabled={save.isPending || !name.trim() || !channelIds.length || !events.length}
        >
          {editing ? "Save" : "Create route"}
        </Button>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        <Stack direction="row" spacing={1.5}>
          <TextField
            label="Route name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            sx={{ flex: 1 }}
          />
          <FormControlLabel
            control={<Switch checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />}
            label="Enabled"
          />
        </Stack>
        <TextField
          select
          label="For"
          value={watchdog}
          onChange={(e) => setWatchdog(e.target.value)}
          helperText="A watchdog with an enabled route of its own uses only its own routes"
        >
          <MenuItem value="">Every watchdog without routes of its own (default route)</MenuItem>
          {watchdogs.map((w) => <MenuItem key={w.id} value={w.id}>{w.name}</MenuItem>)}
        </TextField>
        <Stack direction="row" spacing={1.5}>
          <TextField
            select
            label="From severity"
            value={severity}
            onChange={(e) => setSeverity(e.target.value as AlertRoute["min_severity"])}
            sx={{ width: 200 }}
          >
            <MenuItem value="info">Info and above</MenuItem>
            <MenuItem value="warning">Warning and above</MenuItem>
            <MenuItem value="error">Errors only</MenuItem>
          </TextField>
          <Box sx={{ flex: 1 }}>
            <SitesPicker
              label="Only these sites (empty: every site)"
              value={siteIds}
              onChange={setSiteIds}
            />
          </Box>
        </Stack>
        <Stack direction="row" spacing={0.5} role="group" aria-label="Events">
          {EVENTS.map((ev) => {
            const on = events.includes(ev);
            return (
              <Chip
                key={ev}
                label={ev}
                clickable
                aria-pressed={on}
                variant={on ? "filled" : "outlined"}
                color={on ? "primary" : "default"}
                onClick={() => setEvents(on ? events.filter((x) => x !== ev) : [...events, ev])}
              />
            );
          })}
        </Stack>
        <Autocomplete
          multiple
          options={channels.map((c) => c.id)}
          getOptionLabel={(id) => channels.find((c) => c.id === id)?.name ?? id}
          value={channelIds}
          onChange={(_, v) => setChannelIds(v)}
          renderInput={(p) => <TextField {...p} label="Channels" />}
        />
        {save.error && <ErrorState error={save.error} title="Not saved" />}
      </Stack>
    </DialogFrame>
  );
}

function Routes() {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const sites = useSites();
  const grid = useRef<GridApi<AlertRoute> | null>(null);
  const [editing, setEditing] = useState<AlertRoute | "new" | null>(null);
  const [deleting, setDeleting] = useState<AlertRoute | null>(null);
  const routes = useQuery({
    queryKey: ["alert-routes"],
    queryFn: ({ signal }) => api<{ items: AlertRoute[] }>("/api/alerts/routes", { signal }),
  });
  const channels = useQuery({
    queryKey: ["alert-channels"],
    queryFn: ({ signal }) => api<{ items: AlertChannel[] }>("/api/alerts/channels", { signal }),
  });
  const watchdogs = useQuery({
    queryKey: ["watchdogs", false],
    queryFn: ({ signal }) => api<{ items: Watchdog[] }>("/api/watchdogs", { signal }),
  });
  const columns = useMemo<ColDef<AlertRoute>[]>(() => [
    { headerName: "Name", field: "name", flex: 1, minWidth: 150 },
    {
      headerName: "For",
      colId: "watchdog",
      width: 180,
      valueGetter: (p) =>
        p.data?.watchdog_id
          ? watchdogs.data?.items.find((w) => w.id === p.data!.watchdog_id)?.name ?? "a watchdog"
          : "Default",
    },
    { headerName: "From severity", field: "min_severity", width: 130 },
    {
      headerName: "Sites",
      colId: "sites",
      width: 160,
      valueGetter: (p) =>
        p.data?.site_ids.length
          ? p.data.site_ids.map((id) =>
            sites.data?.sites.find((s) => s.id === id)?.name ?? `#${id}`
          ).join(", ")
          : "Every site",
    },
    {
      headerName: "Events",
      colId: "events",
      width: 200,
      valueGetter: (p) => p.data?.events.join(", "),
    },
    {
      headerName: "Channels",
      colId: "channels",
      flex: 1,
      minWidth: 150,
      valueGetter: (p) =>
        p.data?.channel_ids.map((id) => channels.data?.items.find((c) => c.id === id)?.name ?? id)
          .join(", "),
    },
    {
      headerName: "State",
      colId: "enabled",
      width: 110,
      valueGetter: (p) => (p.data?.enabled ? "Enabled" : "Disabled"),
      cellRenderer: (p: { data?: AlertRoute }) =>
        p.data && <EnabledPill enabled={p.data.enabled} />,
    },
    editDeleteColumn<AlertRoute>(setEditing, setDeleting),
  ], [sites.data, channels.data, watchdogs.data]);
  return (
    <Stack spacing={1.5} sx={{ height: "100%" }}>
      <Typography variant="body2" color="text.secondary">
        A route sends a watchdog's incident events at or above a severity, on some or every site, to
        channels. Default routes cover every watchdog without routes of its own.
      </Typography>
      <Stack direction="row" spacing={1}>
        <Button
          variant="contained"
          onClick={() => setEditing("new")}
          disabled={!channels.data?.items.length}
        >
          New route
        </Button>
        <Button
          variant="outlined"
          disabled={!routes.data?.items.length}
          onClick={() =>
            notify({
              severity: "success",
              message: `Exported ${exportGridCsv(grid.current, "alert-routes")} route(s).`,
            })}
        >
          Export CSV
        </Button>
      </Stack>
      {routes.error && <ErrorState error={routes.error} onRetry={() => routes.refetch()} />}
      <Box sx={{ flexGrow: 1, minHeight: 240 }}>
        <DataGrid<AlertRoute>
          label="Routes"
          emptyText={channels.data?.items.length
            ? "No routes yet: nothing is sent"
            : "Add a channel first"}
          loading={routes.isPending}
          rowData={routes.data?.items ?? []}
          columnDefs={columns}
          getRowId={(p) => p.data.id}
          onGridReady={(e) => (grid.current = e.api)}
          rowHeight={44}
        />
      </Box>
      {editing && (
        <RouteDialog
          route={editing}
          channels={channels.data?.items ?? []}
          watchdogs={watchdogs.data?.items ?? []}
          onClose={() => setEditing(null)}
        />
      )}
      <ConfirmDialog
        open={!!deleting}
        title={`Delete ${deleting?.name}?`}
        confirmLabel="Delete"
        destructive
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          await api(`/api/alerts/routes/${deleting!.id}`, { method: "DELETE" });
          void qc.invalidateQueries({ queryKey: ["alert-routes"] });
        }}
      >
        Incidents it matched go nowhere unless another route matches them.
      </ConfirmDialog>
    </Stack>
  );
}

function DeliveryLog() {
  const [params, setParams] = useSearchParams();
  const qc = useQueryClient();
  const { notify } = useToasts();
  const grid = useRef<GridApi<Delivery> | null>(null);
  const channel = params.get("channel") ?? "";
  const status = params.get("status") ?? "";
  const setParam = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };
  const channels = useQuery({
    queryKey: ["alert-channels"],
    queryFn: ({ signal }) => api<{ items: AlertChannel[] }>("/api/alerts/channels", { signal }),
  });
  const log = useQuery({
    queryKey: ["alert-deliveries", channel, status],
    queryFn: ({ signal }) =>
      api<{ items: Delivery[]; counts: Record<string, number> }>(
        `/api/alerts/deliveries${
          query({ channel_id: channel || undefined, status: status || undefined, limit: 500 })
        }`,
        { signal },
      ),
    refetchInterval: 10_000,
  });
  const retry = useMutation({
    mutationFn: (d: Delivery) => api(`/api/alerts/deliveries/${d.id}/retry`, { method: "POST" }),
    onSuccess: () => {
      notify({ severity: "success", message: "Queued again." });
      void qc.invalidateQueries({ queryKey: ["alert-deliveries"] });
    },
    onError: (err) => notify({ severity: "error", message: (err as Error).message }),
  });
  const columns = useMemo<ColDef<Delivery>[]>(() => [
    {
      headerName: "Created",
      field: "created_at",
      width: 150,
      valueFormatter: (p) => when(p.value),
    },
    { headerName: "Channel", field: "channel_name", width: 140 },
    { headerName: "Event", field: "kind", width: 110 },
    {
      headerName: "Status",
      field: "status",
      width: 120,
      cellRenderer: (p: { data?: Delivery }) => p.data && <StatePill state={p.data.status} />,
    },
    {
      headerName: "Incident",
      field: "title",
      flex: 1,
      minWidth: 160,
      tooltipValueGetter: (p) => p.value,
    },
    { headerName: "Recipient", field: "recipient", width: 150 },
    { headerName: "Attempts", field: "attempts", width: 100 },
    {
      headerName: "Answer",
      colId: "answer",
      width: 140,
      valueGetter: (p) =>
        p.data?.response_status
          ? `${p.data.response_status} ${p.data.response_excerpt ?? ""}`.trim()
          : "",
      tooltipValueGetter: (p) => p.value,
    },
    {
      headerName: "Last error",
      field: "last_error",
      flex: 1,
      minWidth: 140,
      tooltipValueGetter: (p) => p.value,
    },
    {
      headerName: "Next",
      colId: "next",
      width: 130,
      valueGetter: (p) =>
        p.data?.status === "held"
          ? `held until ${when(p.data.hold_until)}`
          : p.data?.next_attempt_at && p.data.status === "queued"
          ? ago(p.data.next_attempt_at)
          : "",
    },
    {
      headerName: "Actions",
      colId: "actions",
      width: 100,
      sortable: false,
      cellRenderer: (p: { data?: Delivery }) =>
        p.data?.status === "dead" && (
          <Button
            size="small"
            onClick={() => retry.mutate(p.data!)}
            aria-label={`Retry delivery ${p.data.id}`}
          >
            Retry
          </Button>
        ),
    },
  ], [retry]);
  const counts = log.data?.counts ?? {};
  return (
    <Stack spacing={1.5} sx={{ height: "100%" }}>
      <Stack direction="row" spacing={1} sx={{ alignItems: "center", flexWrap: "wrap", rowGap: 1 }}>
        <TextField
          select
          size="small"
          label="Channel"
          value={channel}
          onChange={(e) => setParam("channel", e.target.value)}
          sx={{ width: 200 }}
        >
          <MenuItem value="">Every channel</MenuItem>
          {(channels.data?.items ?? []).map((c) => (
            <MenuItem key={c.id} value={c.id}>{c.name}</MenuItem>
          ))}
        </TextField>
        {["queued", "held", "sending", "delivered", "dead", "digested"].map((s) => (
          <Chip
            key={s}
            clickable
            aria-pressed={status === s}
            variant={status === s ? "filled" : "outlined"}
            color={status === s ? "primary" : "default"}
            label={`${s} (${counts[s] ?? 0})`}
            onClick={() => setParam("status", status === s ? "" : s)}
          />
        ))}
        <Box sx={{ flexGrow: 1 }} />
        <Button
          variant="outlined"
          disabled={!log.data?.items.length}
          onClick={() =>
            notify({
              severity: "success",
              message: `Exported ${exportGridCsv(grid.current, "alert-deliveries")} entries.`,
            })}
        >
          Export CSV
        </Button>
      </Stack>
      {log.error && <ErrorState error={log.error} onRetry={() => log.refetch()} />}
      <Box sx={{ flexGrow: 1, minHeight: 240 }}>
        <DataGrid<Delivery>
          label="Delivery log"
          emptyText="Nothing sent yet"
          loading={log.isPending}
          rowData={log.data?.items ?? []}
          columnDefs={columns}
          getRowId={(p) => p.data.id}
          onGridReady={(e) => (grid.current = e.api)}
        />
      </Box>
    </Stack>
  );
}

function OperatorMail() {
  const grid = useRef<GridApi<Record<string, unknown>> | null>(null);
  const { notify } = useToasts();
  const subs = useQuery({
    queryKey: ["alert-subscriptions"],
    queryFn: ({ signal }) =>
      api<{ items: Array<Record<string, unknown>> }>("/api/alerts/subscriptions", { signal }),
  });
  const columns: ColDef<Record<string, unknown>>[] = [
    { headerName: "Operator", field: "username", flex: 1 },
    { headerName: "Address", field: "email", flex: 1 },
    {
      headerName: "Receives",
      field: "enabled",
      width: 110,
      valueFormatter: (p) => (p.value ? "Yes" : "No"),
    },
    { headerName: "From severity", field: "min_severity", width: 130 },
    {
      headerName: "Events",
      field: "events",
      width: 220,
      valueFormatter: (p) => (p.value as string[] ?? []).join(", "),
    },
    {
      headerName: "Account",
      field: "disabled",
      width: 110,
      valueFormatter: (p) => (p.value ? "Disabled" : "Active"),
    },
  ];
  return (
    <Stack spacing={1.5} sx={{ height: "100%" }}>
      <Typography variant="body2" color="text.secondary">
        Operators opt in from their account menu (Alert mail). The email channel marked "carries
        operators' own alert mail" sends it, for the sites each operator can see.
      </Typography>
      <Box>
        <Button
          variant="outlined"
          disabled={!subs.data?.items.length}
          onClick={() =>
            notify({
              severity: "success",
              message: `Exported ${exportGridCsv(grid.current, "alert-mail")} row(s).`,
            })}
        >
          Export CSV
        </Button>
      </Box>
      {subs.error && <ErrorState error={subs.error} onRetry={() => subs.refetch()} />}
      <Box sx={{ flexGrow: 1, minHeight: 200 }}>
        <DataGrid<Record<string, unknown>>
          label="Operators' alert mail"
          emptyText="No operator has opted in"
          loading={subs.isPending}
          rowData={subs.data?.items ?? []}
          columnDefs={columns}
          getRowId={(p) => String(p.data.user_id)}
          onGridReady={(e) => (grid.current = e.api)}
        />
      </Box>
    </Stack>
  );
}

/** `/notifications` (admins). */
export function AlertChannelsPage() {
  const [params, setParams] = useSearchParams();
  const tab = ["channels", "routes", "log", "mail"].includes(params.get("tab") ?? "")
    ? params.get("tab")!
    : "channels";
  return (
    <>
      <PageHeader
        title="Notification channels"
        subtitle="Where incidents are sent: chat, webhooks and email, with routes, quiet hours and a delivery log"
      />
      <Box sx={{ px: 3, borderBottom: 1, borderColor: "divider" }}>
        <Tabs
          value={tab}
          onChange={(_, v) => setParams(v === "channels" ? {} : { tab: v }, { replace: true })}
          aria-label="Notification sections"
        >
          <Tab value="channels" label="Channels" id="nt-channels" aria-controls="nt-panel" />
          <Tab value="routes" label="Routes" id="nt-routes" aria-controls="nt-panel" />
          <Tab value="log" label="Delivery log" id="nt-log" aria-controls="nt-panel" />
          <Tab value="mail" label="Operator mail" id="nt-mail" aria-controls="nt-panel" />
        </Tabs>
      </Box>
      <Box
        role="tabpanel"
        id="nt-panel"
        aria-labelledby={`nt-${tab}`}
        sx={{ flexGrow: 1, minHeight: 0, px: 3, py: 1.5, display: "flex", flexDirection: "column" }}
      >
        {tab === "channels" && <Channels />}
        {tab === "routes" && <Routes />}
        {tab === "log" && <DeliveryLog />}
        {tab === "mail" && <OperatorMail />}
      </Box>
    </>
  );
}
