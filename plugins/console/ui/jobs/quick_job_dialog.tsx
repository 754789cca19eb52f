/**
 * Quick job: pick a script (search, type and OS filters), fill in the form generated from
 * its variable definitions (credential variables pick a stored credential), choose how it
 * runs and on what (the chosen devices, every device of a site, a saved filter, or every
 * device the operator may see: the engine resolves sites, filters and "all" in the
 * operator's scope), run. Results stream into each device's activity.
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import Dialog from "@mui/material/Dialog";
import DialogActions from "@mui/material/DialogActions";
import DialogContent from "@mui/material/DialogContent";
import DialogTitle from "@mui/material/DialogTitle";
import FormControl from "@mui/material/FormControl";
import FormControlLabel from "@mui/material/FormControlLabel";
import FormLabel from "@mui/material/FormLabel";
import List from "@mui/material/List";
import ListItemButton from "@mui/material/ListItemButton";
import ListItemText from "@mui/material/ListItemText";
import MenuItem from "@mui/material/MenuItem";
import Radio from "@mui/material/Radio";
import RadioGroup from "@mui/material/RadioGroup";
import Stack from "@mui/material/Stack";
import Switch from "@mui/material/Switch";
import TextField from "@mui/material/TextField";
import ToggleButton from "@mui/material/ToggleButton";
import ToggleButtonGroup from "@mui/material/ToggleButtonGroup";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useId, useMemo, useState } from "react";
import { Link as RouterLink, useNavigate } from "react-router";
import { api, query } from "../api/client.ts";
import type {
  AssemblyDetail,
  AssemblyItem,
  Credential,
  Device,
  DevicePresence,
} from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { EmptyState, ErrorState, Loading } from "../components/states.tsx";
import { useSites } from "../api/queries.ts";
import {
  fieldsFor,
  type FormValues,
  initialValues,
  toVariableValues,
  validate,
} from "../lib/variables_form.ts";

type TargetKind = "devices" | "site" | "filter" | "all";

const TYPE_LABEL: Record<string, string> = {
  powershell: "PowerShell",
  batch: "Batch",
  bash: "Bash",
};
const OS_OF: Record<string, "windows" | "linux"> = {
  powershell: "windows",
  batch: "windows",
  bash: "linux",
};

interface RunResult {
  job_id: string;
  counts: { running: number; pending: number; skipped: number };
  results: Array<{
    hostname: string;
    device_guid: string;
    /** null when the device was skipped (not online, with "only online devices"). */
    activity_id: number | null;
    status: "Running" | "Pending" | "Skipped";
    presence: DevicePresence;
  }>;
}

/** What the result list says about one device. */
const RESULT_TEXT: Record<RunResult["results"][number]["status"], string> = {
  Running: "Sent",
  Pending: "Held until the device connects",
  Skipped: "Skipped: not online",
};

/** Props of {@link QuickJobDialog}. */
export interface QuickJobProps {
  /** Devices chosen before opening (may be empty: then pick a site or filter). */
  devices: Device[];
  onClose: () => void;
}

/** The quick job dialog. */
export function QuickJobDialog({ devices, onClose }: QuickJobProps) {
  const id = useId();
  const navigate = useNavigate();
  const { notify } = useToasts();
  const sites = useSites();
  const [target, setTarget] = useState<TargetKind>(devices.length ? "devices" : "site");
  const [siteId, setSiteId] = useState<number | "">("");
  const [filterId, setFilterId] = useState<number | "">("");
  const [search, setSearch] = useState("");
  const [term, setTerm] = useState("");
  const [type, setType] = useState<string | null>(null);
  const [os, setOs] = useState<string | null>(null);
  const [picked, setPicked] = useState<AssemblyItem | null>(null);
  const [values, setValues] = useState<FormValues>({});
  const [touched, setTouched] = useState(false);
  const [runMode, setRunMode] = useState<"system" | "current_user">("system");
  const [onlineOnly, setOnlineOnly] = useState(false);
  const [result, setResult] = useState<RunResult | null>(null);

  useEffect(() => {
    const t = setTimeout(() => setTerm(search.trim()), 250);
    return () => clearTimeout(t);
  }, [search]);

  const list = useQuery({
    queryKey: ["assemblies", "scripts", term],
    queryFn: ({ signal }) =>
      api<{ items: AssemblyItem[]; total: number }>(
        `/api/assemblies${query({ kind: "script", q: term, limit: 200 })}`,
        { signal },
      ),
  });
  const detail = useQuery({
    queryKey: ["assembly", picked?.assembly_guid],
    queryFn: ({ signal }) =>
      api<AssemblyDetail>(`/api/assemblies/${picked!.assembly_guid}`, { signal }),
    enabled: !!picked,
  });
  const filters = useQuery({
    queryKey: ["device_filters"],
    queryFn: ({ signal }) =>
      api<{ filters: Array<{ id: number; name: string }> }>("/api/device_filters", { signal }),
    enabled: target === "filter",
  });
  const defs = detail.data?.metadata.variables;
  const fields = useMemo(() => fieldsFor(defs), [defs]);
  const needsCredentials = fields.some((f) => f.kind === "credential");
  const credentials = useQuery({
    queryKey: ["credentials"],
    queryFn: ({ signal }) => api<{ credentials: Credential[] }>("/api/credentials", { signal }),
    enabled: needsCredentials,
  });
  useEffect(() => {
    setValues(initialValues(fields, defs));
    setTouched(false);
  }, [fields, defs]);
  const errors = validate(fields, values);

  const shown = (list.data?.items ?? []).filter((a) =>
    (!type || a.assembly_type === type) &&
    (!os || OS_OF[a.assembly_type ?? ""] === os || a.tags.includes(os))
  );

  const targetReady = target === "devices"
    ? devices.length > 0
    : target === "site"
    ? siteId !== ""
    : target === "filter"
    ? filterId !== ""
    : true;
  const run = useMutation({
    mutationFn: async (): Promise<RunResult> => {
      // Sites, filters and "all" are resolved by the engine, in this operator's scope.
      const targets = target === "devices"
        ? { device_guids: devices.map((d) => d.guid) }
        : target === "site"
        ? { site_ids: [siteId] }
        : target === "filter"
        ? { filter_id: filterId }
        : { all_devices: true };
      return await api<RunResult>("/api/scripts/quick_run", {
        body: {
          assembly_guid: picked!.assembly_guid,
          ...targets,
          online_only: onlineOnly,
          run_mode: runMode,
          variable_values: toVariableValues(fields, values),
        },
      });
    },
    onSuccess: (r) => {
      const sent = r.counts.running + r.counts.pending;
      notify({
        severity: "success",
        message: `${picked!.display_name} sent to ${sent} device(s)` +
          (r.counts.skipped ? `; ${r.counts.skipped} skipped (not online).` : "."),
      });
      const only = r.results.length === 1 ? r.results[0]! : null;
      if (only && only.activity_id !== null) {
        onClose();
        navigate(`/devices/${only.device_guid}?tab=activity&activity=${only.activity_id}`);
        return;
      }
      setResult(r);
    },
  });

  const setValue = (name: string, v: string | boolean) =>
    setValues((old) => ({ ...old, [name]: v }));
  const submit = () => {
    setTouched(true);
    if (picked && targetReady && !Object.keys(errors).length) run.mutate();
  };

  return (
    <Dialog open onClose={onClose} maxWidth="md" fullWidth aria-labelledby={`${id}-t`}>
      <DialogTitle id={`${id}-t`}>Quick job</DialogTitle>
      <DialogContent dividers sx={{ minHeight: 420 }}>
        {result
          ? (
            <Stack spacing={1}>
              <Alert severity="success">
                Sent to {result.counts.running + result.counts.pending} devices
                {result.counts.pending ? ` (${result.counts.pending} not connected yet)` : ""}
                {result.counts.skipped ? `; ${result.counts.skipped} skipped` : ""}. Output appears
                in each device's activity.
              </Alert>
              <List dense aria-label="Dispatched devices">
                {result.results.map((r) => (
                  <ListItemButton
                    key={r.device_guid}
                    component={RouterLink}
                    to={r.activity_id === null
                      ? `/devices/${r.device_guid}`
                      : `/devices/${r.device_guid}?tab=activity&activity=${r.activity_id}`}
                    onClick={onClose}
                  >
                    <ListItemText
                      primary={r.hostname}
                      secondary={`${RESULT_TEXT[r.status] ?? r.status} · ${r.presence}`}
                    />
                  </ListItemButton>
                ))}
              </List>
            </Stack>
          )
          : (
            <Stack direction="row" spacing={3} sx={{ minHeight: 380 }}>
              <Stack spacing={1.5} sx={{ width: 330, flexShrink: 0 }}>
                <TextField
                  size="small"
                  label="Find a script"
                  value={search}
                  onChange={(e) => setSearch(e.target.value)}
                  autoFocus
                />
                <Stack direction="row" spacing={1}>
                  <ToggleButtonGroup
                    size="small"
                    exclusive
                    value={type}
                    onChange={(_, v) => setType(v)}
                    aria-label="Script type"
                  >
                    {Object.entries(TYPE_LABEL).map(([k, v]) => (
                      <ToggleButton key={k} value={k}>{v}</ToggleButton>
                    ))}
                  </ToggleButtonGroup>
                  <ToggleButtonGroup
                    size="small"
                    exclusive
                    value={os}
                    onChange={(_, v) => setOs(v)}
                    aria-label="Operating system"
                  >
                    <ToggleButton value="windows">Win</ToggleButton>
                    <ToggleButton value="linux">Linux</ToggleButton>
                  </ToggleButtonGroup>
                </Stack>
                <Box
                  sx={{
                    flexGrow: 1,
                    overflow: "auto",
                    maxHeight: 300,
                    border: 1,
                    borderColor: "divider",
                    borderRadius: 1,
                  }}
                >
                  {list.isPending && <Loading label="Loading scripts" />}
                  {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
                  {list.data && !shown.length && <EmptyState title="No script matches" />}
                  <List dense aria-label="Scripts" role="listbox">
                    {shown.map((a) => (
                      <ListItemButton
                        key={a.assembly_guid}
                        selected={picked?.assembly_guid === a.assembly_guid}
                        onClick={() => setPicked(a)}
                        role="option"
                        aria-selected={picked?.assembly_guid === a.assembly_guid}
                      >
                        <ListItemText
                          primary={a.display_name}
                          secondary={`${
                            TYPE_LABEL[a.assembly_type ?? ""] ?? a.assembly_type ?? ""
                          } · ${a.domain.replace("_", " ")}`}
                        />
                      </ListItemButton>
                    ))}
                  </List>
                </Box>
              </Stack>
              <Stack spacing={2} sx={{ flexGrow: 1, minWidth: 0 }}>
                <FormControl>
                  <FormLabel id={`${id}-targets`}>Run on</FormLabel>
                  <RadioGroup
                    row
                    aria-labelledby={`${id}-targets`}
                    value={target}
                    onChange={(e) => setTarget(e.target.value as TargetKind)}
                  >
                    <FormControlLabel
                      value="devices"
                      control={<Radio />}
                      disabled={!devices.length}
                      label={devices.length === 1
                        ? devices[0]!.hostname
                        : `${devices.length} selected devices`}
                    />
                    <FormControlLabel value="site" control={<Radio />} label="A site" />
                    <FormControlLabel value="filter" control={<Radio />} label="A saved filter" />
                    <FormControlLabel value="all" control={<Radio />} label="Every device" />
                  </RadioGroup>
                </FormControl>
                <FormControlLabel
                  control={
                    <Switch
                      checked={onlineOnly}
                      onChange={(e) => setOnlineOnly(e.target.checked)}
                    />
                  }
                  label="Only devices that are online (the others are skipped)"
                />
                {target === "site" && (
                  <TextField
                    select
                    size="small"
                    label="Site"
                    value={siteId}
                    onChange={(e) => setSiteId(Number(e.target.value))}
                  >
                    {(sites.data?.sites ?? []).map((s) => (
                      <MenuItem key={s.id} value={s.id}>
                        {s.name} ({s.device_count} devices)
                      </MenuItem>
                    ))}
                  </TextField>
                )}
                {target === "filter" && (
                  <TextField
                    select
                    size="small"
                    label="Filter"
                    value={filterId}
                    onChange={(e) => setFilterId(Number(e.target.value))}
                  >
                    {(filters.data?.filters ?? []).map((f) => (
                      <MenuItem key={f.id} value={f.id}>{f.name}</MenuItem>
                    ))}
                  </TextField>
                )}
                {!picked && (
                  <Typography color="text.secondary">Pick a script on the left.</Typography>
                )}
                {picked && (
                  <>
                    <Box>
                      <Typography variant="h6" component="h2">{picked.display_name}</Typography>
                      <Typography variant="body2" color="text.secondary">
                        {picked.summary}
                      </Typography>
                      <Stack direction="row" spacing={0.5} sx={{ mt: 0.5 }}>
                        {picked.assembly_type && (
                          <Chip
                            size="small"
                            label={TYPE_LABEL[picked.assembly_type] ?? picked.assembly_type}
                          />
                        )}
                        {picked.tags.slice(0, 4).map((t) => (
                          <Chip key={t} size="small" variant="outlined" label={t} />
                        ))}
                      </Stack>
                    </Box>
                    {detail.isPending && <Loading label="Loading the script" />}
                    {detail.error && (
                      <ErrorState
                        error={detail.error}
                        onRetry={() => detail.refetch()}
                      />
                    )}
                    {detail.data && !fields.length && (
                      <Typography variant="body2" color="text.secondary">
                        This script has no variables.
                      </Typography>
                    )}
                    {fields.map((f) => {
                      const err = touched ? errors[f.name] : undefined;
                      if (f.kind === "boolean") {
                        return (
                          <FormControlLabel
                            key={f.name}
                            control={
                              <Switch
                                checked={values[f.name] === true}
                                onChange={(e) => setValue(f.name, e.target.checked)}
                              />
                            }
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
                            value={values[f.name] ?? ""}
                            onChange={(e) => setValue(f.name, String(e.target.value))}
                            error={!!err}
                            helperText={err ?? f.description ?? "A stored credential"}
                          >
                            <MenuItem value="">None</MenuItem>
                            {(credentials.data?.credentials ?? []).map((c) => (
                              <MenuItem key={c.id} value={String(c.id)}>
                                {c.name}
                                {c.username ? ` (${c.username})` : ""}
                              </MenuItem>
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
                          type={f.kind === "number" ? "number" : "text"}
                          value={values[f.name] ?? ""}
                          onChange={(e) => setValue(f.name, e.target.value)}
                          error={!!err}
                          helperText={err ?? f.description ?? " "}
                        />
                      );
                    })}
                    <FormControl>
                      <FormLabel id={`${id}-mode`}>Run as</FormLabel>
                      <RadioGroup
                        row
                        aria-labelledby={`${id}-mode`}
                        value={runMode}
                        onChange={(e) => setRunMode(e.target.value as "system")}
                      >
                        <FormControlLabel value="system" control={<Radio />} label="System" />
                        <FormControlLabel
                          value="current_user"
                          control={<Radio />}
                          label="Signed-in user"
                        />
                      </RadioGroup>
                    </FormControl>
                  </>
                )}
                {run.error && <ErrorState error={run.error} title="Not started" />}
              </Stack>
            </Stack>
          )}
      </DialogContent>
      <DialogActions>
        {result ? <Button onClick={onClose}>Close</Button> : (
          <>
            <Button onClick={onClose}>Cancel</Button>
            <Button
              variant="contained"
              onClick={submit}
              disabled={!picked || !targetReady || run.isPending}
            >
              Run now
            </Button>
          </>
        )}
      </DialogActions>
    </Dialog>
  );
}
