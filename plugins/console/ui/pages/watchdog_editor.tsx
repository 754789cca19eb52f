/**
 * The watchdog editor (`/watchdogs/<id>`, `/watchdogs/new`): name, severity, scope and
 * targets; rules (all or any must match); anti-noise settings; actions; the channels its
 * incidents notify (alerts routes of this watchdog, for admins); and a preview of what it
 * would match now (`POST /api/watchdogs/preview`, nothing stored). Users read it.
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
import ToggleButton from "@mui/material/ToggleButton";
import ToggleButtonGroup from "@mui/material/ToggleButtonGroup";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link as RouterLink, useNavigate, useParams } from "react-router";
import { api, ApiError, query } from "../api/client.ts";
import type { AlertChannel, AlertRoute, AssemblyItem, Watchdog } from "../api/types.ts";
import { useIsAdmin } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { SeverityPill, StatePill } from "../components/badges.tsx";
import {
  DevicesPicker,
  FiltersPicker,
  type PickedDevice,
  SitesPicker,
} from "../components/pickers.tsx";
import { PageHeader } from "../components/page.tsx";
import { EmptyState, ErrorState, Loading } from "../components/states.tsx";
import {
  ACTIONS,
  emptyPolicy,
  type FieldSpec,
  type PolicyForm,
  RULES,
  toPolicyBody,
  type TypeSpec,
  validatePolicy,
  withDefaults,
} from "../lib/watchdog_form.ts";

type Item = Record<string, unknown> & { type: string };
type TabId = "policy" | "rules" | "actions";

function ItemEditor(
  { item, specs, index, noun, onChange, onRemove, errors, readOnly, scripts }: {
    item: Item;
    specs: Record<string, TypeSpec>;
    index: number;
    noun: string;
    onChange: (i: Item) => void;
    onRemove: () => void;
    errors: Record<string, string>;
    readOnly: boolean;
    scripts: AssemblyItem[];
  },
) {
  const prefix = `${noun === "Rule" ? "rules" : "actions"}.${index}`;
  const field = (f: FieldSpec) => {
    const v = item[f.key];
    const label = `${f.label}`;
    const err = errors[`${prefix}.${f.key}`];
    const set = (x: unknown) => onChange({ ...item, [f.key]: x });
    if (f.kind === "bool") {
      return (
        <FormControlLabel
          key={f.key}
          control={
            <Checkbox
              checked={v !== false}
              onChange={(e) => set(e.target.checked)}
              disabled={readOnly}
            />
          }
          label={label}
        />
      );
    }
    if (f.kind === "multi") {
      const chosen = Array.isArray(v) ? (v as string[]) : [];
      return (
        <Autocomplete
          key={f.key}
          multiple
          size="small"
          sx={{ minWidth: 240 }}
          options={(f.options ?? []).map(([k]) => k)}
          value={chosen}
          onChange={(_, x) => set(x)}
          disabled={readOnly}
          renderInput={(p) => (
            <TextField {...p} label={`${label} (${noun.toLowerCase()} ${index + 1})`} />
          )}
        />
      );
    }
    if (f.kind === "assembly") {
      const picked = scripts.find((s) =>
        s.assembly_guid.toLowerCase() === String(v ?? "").toLowerCase()
      ) ??
        null;
      return (
        <Autocomplete
          key={f.key}
          size="small"
          sx={{ minWidth: 260 }}
          options={scripts}
          value={picked}
          getOptionLabel={(s) => s.display_name}
          isOptionEqualToValue={(a, b) => a.assembly_guid === b.assembly_guid}
          onChange={(_, s) => set(s?.assembly_guid ?? "")}
          disabled={readOnly}
          renderInput={(p) => (
            <TextField
              {...p}
              label={`${label} (${noun.toLowerCase()} ${index + 1})`}
              error={!!err}
              helperText={err}
            />
          )}
        />
      );
    }
    return (
      <TextField
        key={f.key}
        size="small"
        select={f.kind === "select"}
        label={`${label} (${noun.toLowerCase()} ${index + 1})`}
        value={v === undefined || v === null ? "" : String(v)}
        onChange={(e) => set(f.kind === "number" ? e.target.value : e.target.value)}
        error={!!err}
        helperText={err ?? f.help}
        disabled={readOnly}
        sx={{ minWidth: f.kind === "text" ? 220 : 150 }}
        slotProps={f.kind === "number" ? { htmlInput: { inputMode: "numeric" } } : undefined}
      >
        {f.kind === "select" &&
          (f.options ?? []).map(([k, l]) => <MenuItem key={k} value={k}>{l}</MenuItem>)}
      </TextField>
    );
  };
  const spec = specs[item.type];
  return (
    <Paper variant="outlined" sx={{ p: 1.5 }}>
      <Stack
        direction="row"
        spacing={1.5}
        sx={{ alignItems: "flex-start", flexWrap: "wrap", rowGap: 1.5 }}
      >
        <TextField
          select
          size="small"
          label={`${noun} ${index + 1}`}
          value={item.type}
          onChange={(e) => onChange(withDefaults(e.target.value, specs))}
          disabled={readOnly}
          sx={{ width: 230 }}
        >
          {Object.entries(specs).map(([k, s]) => <MenuItem key={k} value={k}>{s.label}</MenuItem>)}
        </TextField>
        {spec?.fields.filter((f) =>
          !(item.type === "storage_usage_percent" && f.key === "drive" &&
            item.drive_mode !== "specific") &&
          !(item.type === "software_presence_or_version" && f.key === "version_value" &&
            !item.version_operator)
        ).map(field)}
        {!readOnly && (
          <IconButton aria-label={`Remove ${noun.toLowerCase()} ${index + 1}`} onClick={onRemove}>
            <DeleteIcon />
          </IconButton>
        )}
      </Stack>
    </Paper>
  );
}

interface Preview {
  device_count: number;
  matched_count: number;
  devices: Array<{
    guid: string;
    hostname: string;
    site: string | null;
    status: string;
    state: string;
    matched: boolean;
    sample: { results: Array<{ type: string; matched: boolean; stale: boolean; summary: string }> };
  }>;
}

/** Routes of this watchdog to notification channels (alerts plugin; admins). */
function Notifications({ id }: { id: string }) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const routes = useQuery({
    queryKey: ["alert-routes", id],
    queryFn: ({ signal }) =>
      api<{ items: AlertRoute[] }>(`/api/alerts/routes${query({ watchdog_id: id })}`, { signal }),
  });
  const channels = useQuery({
    queryKey: ["alert-channels"],
    queryFn: ({ signal }) => api<{ items: AlertChannel[] }>("/api/alerts/channels", { signal }),
  });
  const [picked, setPicked] = useState<string[]>([]);
  const mine = routes.data?.items ?? [];
  const add = useMutation({
    mutationFn: () =>
      api("/api/alerts/routes", {
        body: { name: `Watchdog ${id.slice(0, 8)}`, watchdog_id: id, channel_ids: picked },
      }),
    onSuccess: () => {
      setPicked([]);
      notify({ severity: "success", message: "Notification route added." });
      void qc.invalidateQueries({ queryKey: ["alert-routes"] });
    },
    onError: (err) => notify({ severity: "error", message: (err as Error).message }),
  });
  const remove = useMutation({
    mutationFn: (rid: string) => api(`/api/alerts/routes/${rid}`, { method: "DELETE" }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["alert-routes"] }),
  });
  const channelName = (cid: string) => channels.data?.items.find((c) => c.id === cid)?.name ?? cid;
  return (
    <Stack spacing={1}>
      <Typography variant="subtitle1" component="h2">Notifications</Typography>
      <Typography variant="body2" color="text.secondary">
        Its incidents go to these channels; with none, the{" "}
        <Link component={RouterLink} to="/notifications">default routes</Link> apply.
      </Typography>
      {routes.error && <ErrorState error={routes.error} />}
      {mine.map((r) => (
        <Stack key={r.id} direction="row" spacing={1} sx={{ alignItems: "center" }}>
          <Typography variant="body2">
            {r.channel_ids.map(channelName).join(", ")} · from {r.min_severity} ·{" "}
            {r.events.join(", ")}
          </Typography>
          <Button size="small" color="error" onClick={() => remove.mutate(r.id)}>Remove</Button>
        </Stack>
      ))}
      <Stack direction="row" spacing={1}>
        <Autocomplete
          multiple
          size="small"
          sx={{ flex: 1 }}
          options={(channels.data?.items ?? []).map((c) => c.id)}
          getOptionLabel={channelName}
          value={picked}
          onChange={(_, v) => setPicked(v)}
          renderInput={(p) => <TextField {...p} label="Notify channels" />}
        />
        <Button
          variant="outlined"
          disabled={!picked.length || add.isPending}
          onClick={() => add.mutate()}
        >
          Add
        </Button>
      </Stack>
    </Stack>
  );
}

/** `/watchdogs/:id` (or `new`). */
export function WatchdogEditorPage() {
  const { id = "new" } = useParams();
  return <WatchdogEditor key={id} id={id} />;
}

function WatchdogEditor({ id }: { id: string }) {
  const isNew = id === "new";
  const admin = useIsAdmin();
  const readOnly = !admin;
  const navigate = useNavigate();
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [tab, setTab] = useState<TabId>("policy");
  const [form, setForm] = useState<PolicyForm | null>(isNew ? emptyPolicy() : null);
  const [devices, setDevices] = useState<PickedDevice[]>([]);
  const [touched, setTouched] = useState(false);
  const stored = useQuery({
    queryKey: ["watchdog", id],
    queryFn: ({ signal }) => api<Watchdog>(`/api/watchdogs/${id}`, { signal }),
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
    if (stored.data && !form) {
      const {
        id: _i,
        last_edited_by: _e,
        created_at: _c,
        updated_at: _u,
        last_evaluated_at: _l,
        ...f
      } = stored.data;
      setForm(f);
      setDevices(
        f.targets.flatMap((
          t,
        ) => (t.kind === "device" ? [{ guid: t.device_guid, hostname: t.device_guid }] : [])),
      );
    }
  }, [stored.data, form]);

  const [previewBody, setPreviewBody] = useState<string>("");
  const preview = useQuery({
    queryKey: ["watchdog-preview", previewBody],
    queryFn: ({ signal }) =>
      api<Preview>("/api/watchdogs/preview", { body: JSON.parse(previewBody), signal }),
    enabled: !!previewBody,
    placeholderData: (p) => p,
    retry: false,
  });
  const save = useMutation({
    mutationFn: () => {
      const body = toPolicyBody(form!);
      return isNew
        ? api<Watchdog>("/api/watchdogs", { body })
        : api<Watchdog>(`/api/watchdogs/${id}`, { method: "PUT", body });
    },
    onSuccess: (w) => {
      notify({ severity: "success", message: `Watchdog ${w.name} saved; it is evaluated now.` });
      void qc.invalidateQueries({ queryKey: ["watchdogs"] });
      void qc.invalidateQueries({ queryKey: ["watchdog", w.id] });
      if (isNew) navigate(`/watchdogs/${w.id}`, { replace: true });
    },
  });

  if (!isNew && stored.error) {
    const missing = stored.error instanceof ApiError && stored.error.status === 404;
    return (
      <>
        <PageHeader title={missing ? "Watchdog not found" : "Watchdog"} />
        {missing
          ? (
            <EmptyState
              title="No such watchdog"
              action={
                <Button variant="contained" onClick={() => navigate("/watchdogs")}>
                  All watchdogs
                </Button>
              }
            >
              It was deleted, or it covers sites you cannot see.
            </EmptyState>
          )
          : <ErrorState error={stored.error} onRetry={() => stored.refetch()} />}
      </>
    );
  }
  if (!form) return <Loading label="Loading the watchdog" />;
  const f = form;
  const set = (patch: Partial<PolicyForm>) => setForm({ ...f, ...patch });
  const errors = validatePolicy(f);
  const shown = touched ? errors : {};
  const scriptList = scripts.data?.items ?? [];
  const allDevices = f.targets.some((t) => t.kind === "all_devices");
  const filterIds = f.targets.flatMap((t) => (t.kind === "filter" ? [t.filter_id] : []));
  const setTargets = (o: { all?: boolean; filters?: number[]; devs?: PickedDevice[] }) => {
    const all = o.all ?? allDevices;
    const fl = o.filters ?? filterIds;
    const dv = o.devs ?? devices;
    if (o.devs) setDevices(o.devs);
    set({
      targets: [
        ...(all ? [{ kind: "all_devices" as const }] : []),
        ...fl.map((x) => ({ kind: "filter" as const, filter_id: x })),
        ...dv.map((d) => ({ kind: "device" as const, device_guid: d.guid })),
      ],
    });
  };
  const runPreview = () => setPreviewBody(JSON.stringify(toPolicyBody(f)));
  const num = (key: keyof PolicyForm, label: string, help: string) => (
    <TextField
      size="small"
      label={label}
      value={String(f[key])}
      onChange={(e) => set({ [key]: Number(e.target.value) } as Partial<PolicyForm>)}
      helperText={help}
      disabled={readOnly}
      slotProps={{ htmlInput: { inputMode: "numeric" } }}
    />
  );

  return (
    <>
      <PageHeader
        title={isNew ? f.name || "New watchdog" : stored.data!.name}
        subtitle={
          <Stack direction="row" spacing={1} sx={{ alignItems: "center" }} component="span">
            <SeverityPill severity={f.severity} />
            <span>{isNew ? "Not saved yet" : f.enabled ? "Enabled" : "Disabled"}</span>
          </Stack>
        }
        actions={
          <>
            <Button variant="outlined" onClick={runPreview}>Preview</Button>
            {admin && (
              <Button
                variant="contained"
                disabled={save.isPending}
                onClick={() => {
                  setTouched(true);
                  if (!Object.keys(errors).length) save.mutate();
                }}
              >
                {isNew ? "Create" : "Save"}
              </Button>
            )}
          </>
        }
      />
      {readOnly && (
        <Alert severity="info" sx={{ mx: 3, mb: 1 }}>
          Only admins change watchdogs; you can preview it.
        </Alert>
      )}
      {save.error && <ErrorState error={save.error} title="Not saved" />}
      <Box
        sx={{
          flexGrow: 1,
          minHeight: 0,
          display: "grid",
          gridTemplateColumns: "minmax(0, 3fr) minmax(300px, 2fr)",
          gap: 2,
          px: 3,
          pb: 2,
        }}
      >
        <Box sx={{ display: "flex", flexDirection: "column", minHeight: 0 }}>
          <Tabs value={tab} onChange={(_, v: TabId) => setTab(v)} aria-label="Watchdog sections">
            <Tab value="policy" label="Policy" id="wd-tab-policy" aria-controls="wd-panel" />
            <Tab
              value="rules"
              label={`Rules (${f.criteria.rules.length})`}
              id="wd-tab-rules"
              aria-controls="wd-panel"
            />
            <Tab
              value="actions"
              label={`Actions (${f.actions.actions.length})`}
              id="wd-tab-actions"
              aria-controls="wd-panel"
            />
          </Tabs>
          <Box
            role="tabpanel"
            id="wd-panel"
            aria-labelledby={`wd-tab-${tab}`}
            sx={{ overflow: "auto", pt: 2, pr: 1, flexGrow: 1 }}
          >
            {tab === "policy" && (
              <Stack spacing={2}>
                <Stack direction="row" spacing={1.5}>
                  <TextField
                    size="small"
                    label="Watchdog name"
                    value={f.name}
                    onChange={(e) => set({ name: e.target.value })}
                    error={!!shown.name}
                    helperText={shown.name}
                    disabled={readOnly}
                    sx={{ flex: 1 }}
                  />
                  <TextField
                    select
                    size="small"
                    label="Severity"
                    value={f.severity}
                    onChange={(e) => set({ severity: e.target.value as PolicyForm["severity"] })}
                    disabled={readOnly}
                    sx={{ width: 140 }}
                  >
                    <MenuItem value="info">Info</MenuItem>
                    <MenuItem value="warning">Warning</MenuItem>
                    <MenuItem value="error">Error</MenuItem>
                  </TextField>
                  <FormControlLabel
                    control={
                      <Switch
                        checked={f.enabled}
                        onChange={(e) => set({ enabled: e.target.checked })}
                        disabled={readOnly}
                      />
                    }
                    label="Enabled"
                  />
                </Stack>
                <TextField
                  size="small"
                  label="Description"
                  value={f.description}
                  onChange={(e) => set({ description: e.target.value })}
                  disabled={readOnly}
                />
                <Typography variant="subtitle1" component="h2">Watches</Typography>
                <FormControlLabel
                  control={
                    <Checkbox
                      checked={allDevices}
                      onChange={(e) => setTargets({ all: e.target.checked })}
                      disabled={readOnly}
                    />
                  }
                  label="Every device"
                />
                <FiltersPicker
                  label="Devices of saved filters"
                  value={filterIds}
                  onChange={(filters) => setTargets({ filters })}
                  disabled={readOnly}
                />
                <DevicesPicker
                  label="These devices"
                  value={devices}
                  onChange={(devs) => setTargets({ devs })}
                  disabled={readOnly}
                />
                {shown.targets && (
                  <Typography color="error" variant="body2">{shown.targets}</Typography>
                )}
                <Stack direction="row" spacing={1.5}>
                  <TextField
                    select
                    size="small"
                    label="Sites"
                    value={f.site_mode}
                    onChange={(e) => set({ site_mode: e.target.value as PolicyForm["site_mode"] })}
                    disabled={readOnly}
                    sx={{ width: 220 }}
                  >
                    <MenuItem value="global">All sites</MenuItem>
                    <MenuItem value="specific_sites">Only these sites</MenuItem>
                    <MenuItem value="global_exclusions">All sites except</MenuItem>
                  </TextField>
                  {f.site_mode !== "global" && (
                    <Box sx={{ flex: 1 }}>
                      <SitesPicker
                        label="Sites"
                        value={f.site_ids}
                        onChange={(site_ids) => set({ site_ids })}
                        error={!!shown.site_ids}
                        helperText={shown.site_ids}
                        disabled={readOnly}
                      />
                    </Box>
                  )}
                </Stack>
                <Typography variant="subtitle1" component="h2">Staying quiet</Typography>
                <Box
                  sx={{
                    display: "grid",
                    gridTemplateColumns: "repeat(3, minmax(0, 1fr))",
                    gap: 1.5,
                  }}
                >
                  {num(
                    "evaluation_interval_seconds",
                    "Check every (s)",
                    "A match counts at most once per interval",
                  )}
                  {num("min_consecutive_matches", "Matches in a row", "Before an incident opens")}
                  {num(
                    "auto_resolve_after_seconds",
                    "Resolve after clear for (s)",
                    "Flapping keeps one incident",
                  )}
                  {num("cooldown_seconds", "Action cooldown (s)", "Actions run at most this often")}
                  {num(
                    "boot_grace_seconds",
                    "Ignore after boot (s)",
                    "Matches right after a reboot",
                  )}
                </Box>
                {admin && !isNew && <Notifications id={id} />}
              </Stack>
            )}
            {tab === "rules" && (
              <Stack spacing={1.5}>
                <ToggleButtonGroup
                  size="small"
                  exclusive
                  value={f.criteria.match_mode}
                  onChange={(_, v) => v && set({ criteria: { ...f.criteria, match_mode: v } })}
                  aria-label="Match mode"
                  disabled={readOnly}
                >
                  <ToggleButton value="all">All rules must match</ToggleButton>
                  <ToggleButton value="any">Any rule is enough</ToggleButton>
                </ToggleButtonGroup>
                {f.criteria.rules.map((r, i) => (
                  <ItemEditor
                    key={i}
                    item={r}
                    specs={RULES}
                    index={i}
                    noun="Rule"
                    errors={shown}
                    readOnly={readOnly}
                    scripts={scriptList}
                    onChange={(next) =>
                      set({
                        criteria: {
                          ...f.criteria,
                          rules: f.criteria.rules.map((x, j) => (j === i ? next : x)),
                        },
                      })}
                    onRemove={() =>
                      set({
                        criteria: {
                          ...f.criteria,
                          rules: f.criteria.rules.filter((_, j) => j !== i),
                        },
                      })}
                  />
                ))}
                {shown.rules && (
                  <Typography color="error" variant="body2">{shown.rules}</Typography>
                )}
                {!readOnly && (
                  <Box>
                    <Button
                      startIcon={<AddIcon />}
                      onClick={() =>
                        set({
                          criteria: {
                            ...f.criteria,
                            rules: [...f.criteria.rules, withDefaults("cpu_percent", RULES)],
                          },
                        })}
                    >
                      Add rule
                    </Button>
                  </Box>
                )}
              </Stack>
            )}
            {tab === "actions" && (
              <Stack spacing={1.5}>
                <Typography variant="body2" color="text.secondary">
                  Actions run when an incident opens (and again on a re-trigger after the cooldown).
                  Notifications to channels are set on the Policy tab.
                </Typography>
                {f.actions.actions.map((a, i) => (
                  <ItemEditor
                    key={i}
                    item={a}
                    specs={ACTIONS}
                    index={i}
                    noun="Action"
                    errors={shown}
                    readOnly={readOnly}
                    scripts={scriptList}
                    onChange={(next) =>
                      set({
                        actions: { actions: f.actions.actions.map((x, j) => (j === i ? next : x)) },
                      })}
                    onRemove={() =>
                      set({ actions: { actions: f.actions.actions.filter((_, j) => j !== i) } })}
                  />
                ))}
                {!f.actions.actions.length && (
                  <Typography color="text.secondary">Incident only.</Typography>
                )}
                {!readOnly && (
                  <Box>
                    <Button
                      startIcon={<AddIcon />}
                      onClick={() =>
                        set({
                          actions: {
                            actions: [...f.actions.actions, withDefaults("notification", ACTIONS)],
                          },
                        })}
                    >
                      Add action
                    </Button>
                  </Box>
                )}
              </Stack>
            )}
          </Box>
        </Box>
        <Paper
          variant="outlined"
          sx={{ p: 2, overflow: "auto", minHeight: 0 }}
          component="section"
          aria-label="Preview"
        >
          <Typography variant="subtitle1" component="h2">What it would match now</Typography>
          {!previewBody && (
            <Typography variant="body2" color="text.secondary" sx={{ mt: 1 }}>
              Preview evaluates this policy against the devices' latest telemetry without saving
              anything or opening incidents.
            </Typography>
          )}
          {!previewBody && (
            <Button sx={{ mt: 1 }} variant="outlined" onClick={runPreview}>Preview now</Button>
          )}
          {preview.error && <ErrorState error={preview.error} title="Cannot preview" />}
          {preview.data && (
            <>
              <Typography role="status" data-testid="watchdog-preview" sx={{ my: 1 }}>
                {preview.data.matched_count} of {preview.data.device_count} device
                {preview.data.device_count === 1 ? "" : "s"} would match
                {preview.isFetching ? " (updating…)" : ""}
              </Typography>
              <Stack
                spacing={1}
                aria-label="Devices in the preview"
                component="ul"
                sx={{ m: 0, p: 0, listStyle: "none" }}
              >
                {preview.data.devices.slice(0, 100).map((d) => (
                  <Box component="li" key={d.guid}>
                    <Stack direction="row" spacing={1} sx={{ alignItems: "center" }}>
                      <Link component={RouterLink} to={`/devices/${d.guid}`}>{d.hostname}</Link>
                      <StatePill
                        state={d.matched
                          ? "open"
                          : d.state === "stale_data"
                          ? "Expired"
                          : "resolved"}
                        label={d.matched
                          ? "Would match"
                          : d.state === "stale_data"
                          ? "No recent data"
                          : "Clear"}
                      />
                    </Stack>
                    <Typography variant="caption" color="text.secondary">
                      {d.sample.results.map((r) => r.summary).filter(Boolean).join("; ")}
                    </Typography>
                  </Box>
                ))}
              </Stack>
            </>
          )}
        </Paper>
      </Box>
    </>
  );
}
