/**
 * The filter editor (`/filters/<id>`, `/filters/new`): name, site scope, basic criteria
 * (all must hold) or advanced ones (groups joined with AND/OR), each a field, an
 * operator and a value (a regular expression for text, version conditions for
 * software), with a live preview of the devices it matches now and, once saved, a link
 * that opens them in the devices grid; what uses the filter; clone, archive, delete.
 *
 * @module
 */
import AddIcon from "@mui/icons-material/Add";
import DeleteIcon from "@mui/icons-material/DeleteOutlined";
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Checkbox from "@mui/material/Checkbox";
import FormControlLabel from "@mui/material/FormControlLabel";
import IconButton from "@mui/material/IconButton";
import Link from "@mui/material/Link";
import MenuItem from "@mui/material/MenuItem";
import Paper from "@mui/material/Paper";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import ToggleButton from "@mui/material/ToggleButton";
import ToggleButtonGroup from "@mui/material/ToggleButtonGroup";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link as RouterLink, useNavigate, useParams } from "react-router";
import { api, ApiError } from "../api/client.ts";
import { useSites } from "../api/queries.ts";
import type { DeviceFilter, FilterCondition } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { SitesPicker } from "../components/pickers.tsx";
import { PageHeader } from "../components/page.tsx";
import { EmptyState, ErrorState, Loading } from "../components/states.tsx";
import {
  criteriaSummary,
  emptyFilter,
  FIELD_LABEL,
  type FilterDefinition,
  type FilterMetadata,
  newCondition,
  OPERATOR_LABEL,
  operatorsFor,
  toDefinition,
  validateFilter,
} from "../lib/filter_form.ts";
import { type FilterUse, usageLink } from "./filters.tsx";

function ConditionRow(
  { c, meta, onChange, onRemove, index, error, showJoin }: {
    c: FilterCondition;
    meta: FilterMetadata;
    onChange: (c: FilterCondition) => void;
    onRemove: () => void;
    index: string;
    error?: string;
    showJoin: boolean;
  },
) {
  const kind = meta.fields.find((f) => f.field === c.field)?.type ?? "text";
  return (
    <Stack
      direction="row"
      spacing={1}
      sx={{ alignItems: "flex-start", flexWrap: "wrap", rowGap: 1 }}
    >
      {showJoin && (
        <TextField
          select
          size="small"
          label="Join"
          value={c.join_with ?? "AND"}
          onChange={(e) => onChange({ ...c, join_with: e.target.value as "AND" | "OR" })}
          sx={{ width: 90 }}
        >
          <MenuItem value="AND">and</MenuItem>
          <MenuItem value="OR">or</MenuItem>
        </TextField>
      )}
      <TextField
        select
        size="small"
        label={`Field ${index}`}
        value={c.field}
        onChange={(e) =>
          onChange({ ...newCondition(e.target.value, meta), join_with: c.join_with })}
        sx={{ width: 200 }}
      >
        {meta.fields.map((f) => (
          <MenuItem key={f.field} value={f.field}>{FIELD_LABEL[f.field] ?? f.field}</MenuItem>
        ))}
      </TextField>
      <TextField
        select
        size="small"
        label={`Operator ${index}`}
        value={c.operator}
        onChange={(e) => onChange({ ...c, operator: e.target.value })}
        sx={{ width: 160 }}
      >
        {operatorsFor(kind, meta).map((o) => (
          <MenuItem key={o} value={o}>{OPERATOR_LABEL[o] ?? o}</MenuItem>
        ))}
      </TextField>
      <TextField
        size="small"
        label={`Value ${index}`}
        value={String(c.value)}
        onChange={(e) => onChange({ ...c, value: e.target.value })}
        error={!!error}
        helperText={error}
        sx={{ width: 200 }}
      />
      {kind === "text" && (
        <FormControlLabel
          control={
            <Checkbox
              checked={!!c.use_regex}
              onChange={(e) => onChange({ ...c, use_regex: e.target.checked })}
            />
          }
          label="Regular expression"
        />
      )}
      {kind === "software" && (
        <>
          <TextField
            select
            size="small"
            label={`Version ${index}`}
            value={c.version_operator ?? ""}
            onChange={(e) => onChange({ ...c, version_operator: e.target.value || undefined })}
            sx={{ width: 140 }}
          >
            <MenuItem value="">Any version</MenuItem>
            {meta.version_operators.map((o) => (
              <MenuItem key={o} value={o}>{OPERATOR_LABEL[o] ?? o}</MenuItem>
            ))}
          </TextField>
          {c.version_operator && (
            <TextField
              size="small"
              label={`Version value ${index}`}
              value={c.version_value ?? ""}
              onChange={(e) => onChange({ ...c, version_value: e.target.value })}
              sx={{ width: 130 }}
            />
          )}
        </>
      )}
      <IconButton aria-label={`Remove condition ${index}`} onClick={onRemove}>
        <DeleteIcon />
      </IconButton>
    </Stack>
  );
}

interface Preview {
  count: number;
  devices: Array<{ guid: string; hostname: string; site_id: number | null }>;
}

/** `/filters/:id` (or `new`). */
export function FilterEditorPage() {
  const { id = "new" } = useParams();
  return <FilterEditor key={id} id={id} />;
}

function FilterEditor({ id }: { id: string }) {
  const isNew = id === "new";
  const navigate = useNavigate();
  const qc = useQueryClient();
  const { notify } = useToasts();
  const sites = useSites();
  const [form, setForm] = useState<FilterDefinition | null>(isNew ? emptyFilter() : null);
  const [touched, setTouched] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const meta = useQuery({
    queryKey: ["filter-metadata"],
    queryFn: ({ signal }) => api<FilterMetadata>("/api/device_filters/metadata", { signal }),
    staleTime: Infinity,
  });
  const stored = useQuery({
    queryKey: ["device_filter", id],
    queryFn: ({ signal }) => api<DeviceFilter>(`/api/device_filters/${id}`, { signal }),
    enabled: !isNew,
  });
  const usage = useQuery({
    queryKey: ["filter-usage", Number(id)],
    queryFn: ({ signal }) =>
      api<{ usage: FilterUse[] }>(`/api/device_filters/${id}/usage`, { signal }),
    enabled: !isNew,
  });
  useEffect(() => {
    if (stored.data && !form) {
      const f = stored.data;
      setForm({
        name: f.name,
        description: f.description,
        criteria_mode: f.criteria_mode,
        site_mode: f.site_mode,
        site_ids: f.site_ids,
        basic_criteria: f.basic_criteria,
        advanced_criteria: f.advanced_criteria.groups.length
          ? f.advanced_criteria
          : { groups: [{ conditions: [] }] },
      });
    }
  }, [stored.data, form]);

  // The live preview follows the form, half a second after the last change.
  const [previewDef, setPreviewDef] = useState<string>("");
  useEffect(() => {
    if (!form || !meta.data) return;
    const t = setTimeout(() => {
      const e = validateFilter({ ...form, name: form.name || "preview" }, meta.data);
      if (!Object.keys(e).length) {
        setPreviewDef(JSON.stringify(toDefinition({ ...form, name: "preview" }, meta.data)));
      }
    }, 500);
    return () => clearTimeout(t);
  }, [form, meta.data]);
  const preview = useQuery({
    queryKey: ["filter-preview", previewDef],
    queryFn: ({ signal }) =>
      api<Preview>("/api/device_filters/preview", { body: JSON.parse(previewDef), signal }),
    enabled: !!previewDef,
    placeholderData: (prev) => prev,
  });

  const save = useMutation({
    mutationFn: () => {
      const body = toDefinition(form!, meta.data!);
      return isNew
        ? api<DeviceFilter>("/api/device_filters", { body })
        : api<DeviceFilter>(`/api/device_filters/${id}`, { method: "PUT", body });
    },
    onSuccess: (f) => {
      notify({ severity: "success", message: `Filter ${f.name} saved.` });
      void qc.invalidateQueries({ queryKey: ["device_filters"] });
      void qc.invalidateQueries({ queryKey: ["device_filter", String(f.id)] });
      if (isNew) navigate(`/filters/${f.id}`, { replace: true });
    },
  });
  const action = useMutation({
    mutationFn: (a: "clone" | "archive" | "unarchive") =>
      api<DeviceFilter>(`/api/device_filters/${id}/${a}`, { method: "POST" }),
    onSuccess: (f, a) => {
      void qc.invalidateQueries({ queryKey: ["device_filters"] });
      void qc.invalidateQueries({ queryKey: ["device_filter", id] });
      notify({
        severity: "success",
        message: a === "clone" ? `Copied as ${f.name}.` : `${f.name} ${a}d.`,
      });
      if (a === "clone") navigate(`/filters/${f.id}`);
    },
    onError: (err) => notify({ severity: "error", message: (err as Error).message }),
  });

  if (!isNew && stored.error) {
    const missing = stored.error instanceof ApiError && stored.error.status === 404;
    return (
      <>
        <PageHeader title={missing ? "Filter not found" : "Filter"} />
        {missing
          ? (
            <EmptyState
              title="No such filter"
              action={
                <Button variant="contained" onClick={() => navigate("/filters")}>
                  All filters
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
  if (!form || !meta.data) {
    return meta.error ? <ErrorState error={meta.error} /> : <Loading label="Loading the filter" />;
  }
  const m = meta.data;
  const errors = validateFilter(form, m);
  const set = (patch: Partial<FilterDefinition>) => setForm({ ...form, ...patch });
  const siteName = (sid: number | null) =>
    sid === null ? "No site" : sites.data?.sites.find((s) => s.id === sid)?.name ?? `#${sid}`;
  const groups = form.advanced_criteria.groups;
  const setGroup = (gi: number, conditions: FilterCondition[], join?: "AND" | "OR") =>
    set({
      advanced_criteria: {
        groups: groups.map((g, i) =>
          i === gi ? { ...g, conditions, ...(join ? { join_with: join } : {}) } : g
        ),
      },
    });

  return (
    <>
      <PageHeader
        title={isNew ? form.name || "New filter" : stored.data!.name}
        subtitle={isNew ? "Not saved yet" : criteriaSummary(stored.data!)}
        actions={
          <>
            {!isNew && (
              <>
                <Button variant="outlined" onClick={() => action.mutate("clone")}>Clone</Button>
                <Button
                  variant="outlined"
                  onClick={() => action.mutate(stored.data!.archived ? "unarchive" : "archive")}
                >
                  {stored.data!.archived ? "Restore" : "Archive"}
                </Button>
                <Button variant="outlined" color="error" onClick={() => setDeleting(true)}>
                  Delete…
                </Button>
              </>
            )}
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
          </>
        }
      />
      {stored.data?.archived && (
        <Alert severity="info" sx={{ mx: 3, mb: 1 }}>
          Archived: hidden from pickers; jobs and watchdogs that already use it keep it.
        </Alert>
      )}
      {save.error && <ErrorState error={save.error} title="Not saved" />}
      <Box
        sx={{
          flexGrow: 1,
          minHeight: 0,
          display: "grid",
          gridTemplateColumns: "minmax(0, 3fr) minmax(280px, 2fr)",
          gap: 2,
          px: 3,
          pb: 2,
        }}
      >
        <Stack spacing={2} sx={{ overflow: "auto", pt: 1, pr: 1 }}>
          <Stack direction="row" spacing={1.5}>
            <TextField
              size="small"
              label="Filter name"
              value={form.name}
              onChange={(e) => set({ name: e.target.value })}
              error={touched && !!errors.name}
              helperText={touched ? errors.name : undefined}
              sx={{ flex: 1 }}
            />
            <TextField
              select
              size="small"
              label="Sites"
              value={form.site_mode}
              onChange={(e) => set({ site_mode: e.target.value as FilterDefinition["site_mode"] })}
              sx={{ width: 230 }}
            >
              <MenuItem value="global">All sites</MenuItem>
              <MenuItem value="specific_sites">Only these sites</MenuItem>
              <MenuItem value="global_exclusions">All sites except</MenuItem>
            </TextField>
          </Stack>
          {form.site_mode !== "global" && (
            <SitesPicker
              label={form.site_mode === "specific_sites"
                ? "Only these sites"
                : "Except these sites"}
              value={form.site_ids}
              onChange={(site_ids) => set({ site_ids })}
              error={touched && !!errors.site_ids}
              helperText={touched ? errors.site_ids : undefined}
            />
          )}
          <TextField
            size="small"
            label="Description"
            value={form.description}
            onChange={(e) => set({ description: e.target.value })}
          />
          <Stack direction="row" spacing={2} sx={{ alignItems: "center" }}>
            <Typography variant="subtitle1" component="h2">Criteria</Typography>
            <ToggleButtonGroup
              size="small"
              exclusive
              value={form.criteria_mode}
              onChange={(_, v) => v && set({ criteria_mode: v })}
              aria-label="Criteria mode"
            >
              <ToggleButton value="basic">Basic: all must hold</ToggleButton>
              <ToggleButton value="advanced">Advanced: groups</ToggleButton>
            </ToggleButtonGroup>
          </Stack>
          {form.criteria_mode === "basic" && (
            <Stack spacing={1.5}>
              {form.basic_criteria.map((c, i) => (
                <ConditionRow
                  key={i}
                  index={String(i + 1)}
                  c={c}
                  meta={m}
                  showJoin={false}
                  error={touched ? errors[`basic.${i}`] : undefined}
                  onChange={(next) =>
                    set({
                      basic_criteria: form.basic_criteria.map((x, j) => (j === i ? next : x)),
                    })}
                  onRemove={() =>
                    set({ basic_criteria: form.basic_criteria.filter((_, j) => j !== i) })}
                />
              ))}
              {!form.basic_criteria.length && (
                <Typography color="text.secondary">No condition: every device matches.</Typography>
              )}
              <Box>
                <Button
                  startIcon={<AddIcon />}
                  onClick={() =>
                    set({ basic_criteria: [...form.basic_criteria, newCondition("hostname", m)] })}
                >
                  Add condition
                </Button>
              </Box>
            </Stack>
          )}
          {form.criteria_mode === "advanced" && (
            <Stack spacing={1.5}>
              {groups.map((g, gi) => (
                <Paper key={gi} variant="outlined" sx={{ p: 1.5 }}>
                  <Stack spacing={1.5}>
                    <Stack direction="row" spacing={1} sx={{ alignItems: "center" }}>
                      {gi > 0 && (
                        <TextField
                          select
                          size="small"
                          label={`Join group ${gi + 1}`}
                          value={g.join_with ?? "OR"}
                          onChange={(e) =>
                            setGroup(gi, g.conditions, e.target.value as "AND" | "OR")}
                          sx={{ width: 130 }}
                        >
                          <MenuItem value="OR">or</MenuItem>
                          <MenuItem value="AND">and</MenuItem>
                        </TextField>
                      )}
                      <Typography variant="subtitle2" sx={{ flexGrow: 1 }}>
                        Group {gi + 1}
                      </Typography>
                      {groups.length > 1 && (
                        <Button
                          size="small"
                          onClick={() =>
                            set({
                              advanced_criteria: { groups: groups.filter((_, i) => i !== gi) },
                            })}
                        >
                          Remove group
                        </Button>
                      )}
                    </Stack>
                    {g.conditions.map((c, i) => (
                      <ConditionRow
                        key={i}
                        index={`${gi + 1}.${i + 1}`}
                        c={c}
                        meta={m}
                        showJoin={i > 0}
                        error={touched ? errors[`advanced.${gi}.${i}`] : undefined}
                        onChange={(next) =>
                          setGroup(gi, g.conditions.map((x, j) => (j === i ? next : x)))}
                        onRemove={() => setGroup(gi, g.conditions.filter((_, j) => j !== i))}
                      />
                    ))}
                    <Box>
                      <Button
                        size="small"
                        startIcon={<AddIcon />}
                        onClick={() => setGroup(gi, [...g.conditions, newCondition("hostname", m)])}
                      >
                        Add condition
                      </Button>
                    </Box>
                  </Stack>
                </Paper>
              ))}
              <Box>
                <Button
                  startIcon={<AddIcon />}
                  onClick={() =>
                    set({
                      advanced_criteria: {
                        groups: [...groups, { join_with: "OR", conditions: [] }],
                      },
                    })}
                >
                  Add group
                </Button>
              </Box>
            </Stack>
          )}
          {!isNew && (
            <Box>
              <Typography variant="subtitle1" component="h2">Used by</Typography>
              {usage.data?.usage.length
                ? (
                  <Box component="ul" sx={{ my: 0.5, pl: 2 }}>
                    {usage.data.usage.map((u) => (
                      <li key={`${u.kind}-${u.id}`}>
                        <Link component={RouterLink} to={usageLink(u)}>{u.name}</Link>{" "}
                        ({u.kind.replace("_", " ")})
                      </li>
                    ))}
                  </Box>
                )
                : (
                  <Typography variant="body2" color="text.secondary">
                    {usage.isPending ? "Loading…" : "Nothing uses this filter yet."}
                  </Typography>
                )}
            </Box>
          )}
        </Stack>
        <Paper
          variant="outlined"
          sx={{ p: 2, overflow: "auto", minHeight: 0 }}
          component="section"
          aria-label="Preview"
        >
          <Typography variant="subtitle1" component="h2">Matches now</Typography>
          {preview.error && <ErrorState error={preview.error} title="This filter cannot run" />}
          {!preview.data && !preview.error && (
            <Typography variant="body2" color="text.secondary">
              {Object.keys(errors).filter((k) => k !== "name").length
                ? "Complete the conditions to see what matches."
                : "Checking…"}
            </Typography>
          )}
          {preview.data && (
            <>
              <Typography role="status" data-testid="filter-preview-count" sx={{ mb: 1 }}>
                {preview.data.count} device{preview.data.count === 1 ? "" : "s"} match
                {preview.isFetching ? " (updating…)" : ""}
              </Typography>
              {!isNew && (
                <Button
                  size="small"
                  variant="outlined"
                  component={RouterLink}
                  to={`/devices?filter=${id}`}
                  sx={{ mb: 1 }}
                >
                  Open in the devices grid
                </Button>
              )}
              {isNew && (
                <Typography variant="caption" color="text.secondary" component="p">
                  Save the filter to open its matches in the devices grid.
                </Typography>
              )}
              <Box component="ul" sx={{ m: 0, pl: 2 }} aria-label="Matching devices">
                {preview.data.devices.slice(0, 100).map((d) => (
                  <li key={d.guid}>
                    <Link component={RouterLink} to={`/devices/${d.guid}`}>{d.hostname}</Link>{" "}
                    <Typography component="span" variant="caption" color="text.secondary">
                      {siteName(d.site_id)}
                    </Typography>
                  </li>
                ))}
              </Box>
              {preview.data.count > 100 && (
                <Typography variant="caption" color="text.secondary">
                  … and {preview.data.count - 100} more
                </Typography>
              )}
            </>
          )}
        </Paper>
      </Box>
      <ConfirmDialog
        open={deleting}
        title={`Delete ${stored.data?.name}?`}
        confirmLabel="Delete"
        destructive
        onClose={() => setDeleting(false)}
        onConfirm={async () => {
          await api(`/api/device_filters/${id}`, { method: "DELETE" });
          notify({ severity: "success", message: `${stored.data!.name} deleted.` });
          void qc.invalidateQueries({ queryKey: ["device_filters"] });
          navigate("/filters", { replace: true });
        }}
      >
        {usage.data?.usage.length
          ? `It is used by ${
            usage.data.usage.map((u) => u.name).join(", ")
          }; the engine refuses to delete it until they target something else.`
          : "Nothing uses it. This cannot be undone."}
      </ConfirmDialog>
    </>
  );
}
