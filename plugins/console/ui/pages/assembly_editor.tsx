/**
 * The assembly editor (`/assemblies/<guid>`, `/assemblies/new`): name, type, category,
 * timeout and domain; the script in a code editor with syntax highlighting for
 * PowerShell, Bash, Batch and Python; variables (name, label, type, default, required);
 * attached files; description and tags. Import / Export: export downloads the engine's
 * legacy JSON document; import checks a JSON file against the engine's rules
 * (`POST /api/assemblies/import/preview`) and fills the form as a new User-Created
 * assembly — nothing is saved until the operator saves. Official and community
 * assemblies are read-only unless an admin has Dev Mode on, which also offers a domain
 * picker for new assemblies. Clone, delete, and the queue pill while a change waits for
 * the engine's flush.
 *
 * @module
 */
import AddIcon from "@mui/icons-material/Add";
import ArrowDropDownIcon from "@mui/icons-material/ArrowDropDown";
import DeleteIcon from "@mui/icons-material/DeleteOutlined";
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Checkbox from "@mui/material/Checkbox";
import IconButton from "@mui/material/IconButton";
import Menu from "@mui/material/Menu";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import Tab from "@mui/material/Tab";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableHead from "@mui/material/TableHead";
import TableRow from "@mui/material/TableRow";
import Tabs from "@mui/material/Tabs";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { useBlocker, useLocation, useNavigate, useParams, useSearchParams } from "react-router";
import { api, ApiError, query } from "../api/client.ts";
import type { AssemblyDetail, AssemblyItem } from "../api/types.ts";
import { useIsAdmin } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { DOMAIN_LABEL, DomainBadge, QueuedPill } from "../components/badges.tsx";
import { CodeEditor } from "../components/code_editor.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DevModeBar, useDevMode, useSwitchDevMode } from "../components/dev_mode.tsx";
import { PageHeader } from "../components/page.tsx";
import { EmptyState, ErrorState, Loading } from "../components/states.tsx";
import {
  type AssemblyForm,
  emptyForm,
  fileToAttachment,
  formFromDetail,
  formFromPreview,
  type ImportPreview,
  osOf,
  SCRIPT_TYPES,
  toCreateBody,
  toUpdateBody,
  typeLabel,
  validateForm,
  type VariableRow,
} from "../lib/assembly_form.ts";
import { ago, bytes } from "../lib/format.ts";
import { CloneDialog } from "./assembly_clone.tsx";

type TabId = "script" | "variables" | "files" | "details";

function VariablesTable(
  { rows, onChange, readOnly, errors }: {
    rows: VariableRow[];
    onChange: (rows: VariableRow[]) => void;
    readOnly: boolean;
    errors: Record<string, string>;
  },
) {
  const set = (i: number, patch: Partial<VariableRow>) =>
    onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <Stack spacing={1}>
      <Typography variant="body2" color="text.secondary">
        Each variable becomes a field of the quick job and scheduled job forms, and reaches the
        script as an environment variable (PowerShell also gets it as a quoted literal for{" "}
        <code>$env:NAME</code>).
      </Typography>
      {rows.length > 0 && (
        <Table size="small" aria-label="Variables">
          <TableHead>
            <TableRow>
              <TableCell>Name</TableCell>
              <TableCell>Label</TableCell>
              <TableCell>Type</TableCell>
              <TableCell>Default</TableCell>
              <TableCell>Required</TableCell>
              <TableCell>
                <Box component="span" sx={{ position: "absolute", left: -10000 }}>Remove</Box>
              </TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {rows.map((r, i) => (
              <TableRow key={i}>
                <TableCell>
                  <TextField
                    size="small"
                    value={r.name}
                    onChange={(e) => set(i, { name: e.target.value })}
                    slotProps={{ htmlInput: { "aria-label": `Name of variable ${i + 1}` } }}
                    error={!!errors[`variables.${i}.name`]}
                    helperText={errors[`variables.${i}.name`]}
                    disabled={readOnly}
                  />
                </TableCell>
                <TableCell>
                  <TextField
                    size="small"
                    value={r.label}
                    onChange={(e) => set(i, { label: e.target.value })}
                    slotProps={{ htmlInput: { "aria-label": `Label of variable ${i + 1}` } }}
                    disabled={readOnly}
                  />
                </TableCell>
                <TableCell>
                  <TextField
                    select
                    size="small"
                    value={r.type}
                    onChange={(e) => set(i, { type: e.target.value as VariableRow["type"] })}
                    slotProps={{ htmlInput: { "aria-label": `Type of variable ${i + 1}` } }}
                    disabled={readOnly}
                    sx={{ minWidth: 130 }}
                  >
                    <MenuItem value="string">Text</MenuItem>
                    <MenuItem value="number">Number</MenuItem>
                    <MenuItem value="boolean">Switch</MenuItem>
                    <MenuItem value="credential">Credential</MenuItem>
                  </TextField>
                </TableCell>
                <TableCell>
                  <TextField
                    size="small"
                    value={r.default}
                    onChange={(e) => set(i, { default: e.target.value })}
                    slotProps={{ htmlInput: { "aria-label": `Default of variable ${i + 1}` } }}
                    error={!!errors[`variables.${i}.default`]}
                    helperText={errors[`variables.${i}.default`]}
                    placeholder={r.type === "boolean" ? "true or false" : ""}
                    disabled={readOnly || r.type === "credential"}
                  />
                </TableCell>
                <TableCell>
                  <Checkbox
                    checked={r.required}
                    onChange={(e) => set(i, { required: e.target.checked })}
                    slotProps={{ input: { "aria-label": `Variable ${i + 1} is required` } }}
                    disabled={readOnly}
                  />
                </TableCell>
                <TableCell>
                  {!readOnly && (
                    <IconButton
                      aria-label={`Remove variable ${r.name || i + 1}`}
                      onClick={() => onChange(rows.filter((_, j) => j !== i))}
                    >
                      <DeleteIcon />
                    </IconButton>
                  )}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
      {!rows.length && <Typography color="text.secondary">No variables.</Typography>}
      {!readOnly && (
        <Box>
          <Button
            startIcon={<AddIcon />}
            onClick={() =>
              onChange([...rows, {
                name: "",
                label: "",
                type: "string",
                default: "",
                required: false,
                description: "",
              }])}
          >
            Add variable
          </Button>
        </Box>
      )}
    </Stack>
  );
}

function FilesList(
  { form, onChange, readOnly }: {
    form: AssemblyForm;
    onChange: (files: AssemblyForm["files"]) => void;
    readOnly: boolean;
  },
) {
  const input = useRef<HTMLInputElement>(null);
  const { notify } = useToasts();
  return (
    <Stack spacing={1}>
      <Typography variant="body2" color="text.secondary">
        Files travel with the script and are placed beside it on the device. Script and files
        together may hold at most the engine's limit (1 MiB by default).
      </Typography>
      {form.files.length
        ? (
          <Table size="small" aria-label="Attached files">
            <TableHead>
              <TableRow>
                <TableCell>File</TableCell>
                <TableCell>Type</TableCell>
                <TableCell>Size</TableCell>
                <TableCell>
                  <Box component="span" sx={{ position: "absolute", left: -10000 }}>Remove</Box>
                </TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {form.files.map((f, i) => (
                <TableRow key={`${f.file_name}-${i}`}>
                  <TableCell>{f.file_name}</TableCell>
                  <TableCell>{f.mime_type ?? "—"}</TableCell>
                  <TableCell>{bytes(f.size ?? null)}</TableCell>
                  <TableCell>
                    {!readOnly && (
                      <IconButton
                        aria-label={`Remove ${f.file_name}`}
                        onClick={() => onChange(form.files.filter((_, j) => j !== i))}
                      >
                        <DeleteIcon />
                      </IconButton>
                    )}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )
        : <Typography color="text.secondary">No files attached.</Typography>}
      {!readOnly && (
        <Box>
          <input
            ref={input}
            type="file"
            multiple
            hidden
            aria-label="Attach files"
            onChange={async (e) => {
              const picked = [...(e.target.files ?? [])];
              e.target.value = "";
              try {
                const added = await Promise.all(picked.map(fileToAttachment));
                onChange([...form.files, ...added]);
              } catch (err) {
                notify({ severity: "error", message: `Not attached: ${(err as Error).message}` });
              }
            }}
          />
          <Button startIcon={<AddIcon />} onClick={() => input.current?.click()}>
            Attach files
          </Button>
        </Box>
      )}
    </Stack>
  );
}

/** `/assemblies/:guid` (or `new`); a fresh editor for each assembly. */
export function AssemblyEditorPage() {
  const { guid = "new" } = useParams();
  const location = useLocation();
  return <AssemblyEditor key={`${guid}:${location.key}`} guid={guid} />;
}

function AssemblyEditor({ guid }: { guid: string }) {
  const isNew = guid === "new";
  const location = useLocation();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const admin = useIsAdmin();
  const dm = useDevMode();
  const switchDev = useSwitchDevMode();
  const { notify } = useToasts();
  const importInput = useRef<HTMLInputElement>(null);
  const [tab, setTab] = useState<TabId>("script");
  const [form, setForm] = useState<AssemblyForm | null>(null);
  const [base, setBase] = useState<string>("");
  const [importedFrom, setImportedFrom] = useState<string | null>(null);
  const [ioMenu, setIoMenu] = useState<HTMLElement | null>(null);
  const [cloning, setCloning] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [touched, setTouched] = useState(false);
  const [importError, setImportError] = useState<unknown>(null);

  const detail = useQuery({
    queryKey: ["assembly", guid],
    queryFn: ({ signal }) => api<AssemblyDetail>(`/api/assemblies/${guid}`, { signal }),
    enabled: !isNew,
    // Polled while its change waits for the flush, so the pill clears by itself.
    refetchInterval: (q) => (q.state.data?.is_dirty ? 3000 : false),
  });

  // The form starts from the stored assembly, an import handed over, or a blank script.
  useEffect(() => {
    if (isNew) {
      const imported = (location.state as { imported?: ImportPreview; file?: string } | null)
        ?.imported;
      const f = imported ? formFromPreview(imported) : emptyForm();
      setForm(f);
      setBase(JSON.stringify(emptyForm()));
      setImportedFrom(imported ? (location.state as { file?: string }).file ?? "a file" : null);
      return;
    }
    if (detail.data && (!form || JSON.stringify(form) === base)) {
      const f = formFromDetail(detail.data);
      setForm(f);
      setBase(JSON.stringify(f));
    }
  }, [isNew, detail.data, location.state]);

  // "Import…" on the list opens the file picker at once.
  useEffect(() => {
    if (isNew && params.get("import") === "1") {
      setTimeout(() => importInput.current?.click(), 50);
    }
  }, [isNew, params]);

  const dirty = !!form && JSON.stringify(form) !== base;
  // Set just before the page itself navigates away (after a save or a delete).
  const leaving = useRef(false);
  const blocker = useBlocker(({ currentLocation, nextLocation }) =>
    dirty && !leaving.current && currentLocation.pathname !== nextLocation.pathname
  );

  const d = detail.data;
  const domain = isNew ? form?.domain ?? "user_created" : d?.domain ?? "user_created";
  const privileged = domain !== "user_created";
  const readOnly = privileged && !dm.on;
  const errors = form ? validateForm(form) : {};

  const save = useMutation({
    mutationFn: async () => {
      if (!form) throw new Error("nothing to save");
      if (isNew) return await api<AssemblyItem>("/api/assemblies", { body: toCreateBody(form) });
      return await api<AssemblyItem>(`/api/assemblies/${guid}`, {
        method: "PUT",
        body: toUpdateBody(form, d!.version),
      });
    },
    onSuccess: async (item) => {
      notify({
        severity: "success",
        message: `${item.display_name} saved` +
          (item.is_dirty ? "; queued to write to the database at the engine's next flush." : "."),
      });
      void qc.invalidateQueries({ queryKey: ["assemblies"] });
      setBase(JSON.stringify(form));
      if (isNew) {
        leaving.current = true;
        navigate(`/assemblies/${item.assembly_guid}`, { replace: true, state: null });
      } else {
        const fresh = await qc.fetchQuery({
          queryKey: ["assembly", guid],
          queryFn: () => api<AssemblyDetail>(`/api/assemblies/${guid}`),
          staleTime: 0,
        });
        const f = formFromDetail(fresh);
        setForm(f);
        setBase(JSON.stringify(f));
      }
    },
  });

  const importFile = async (file: File) => {
    setImportError(null);
    let doc: unknown;
    try {
      doc = JSON.parse(await file.text());
    } catch {
      setImportError(new Error(`${file.name} is not a JSON document`));
      return;
    }
    try {
      const preview = await api<ImportPreview>("/api/assemblies/import/preview", { body: doc });
      if (isNew) {
        const f = formFromPreview(preview);
        setForm(f);
        setImportedFrom(file.name);
      } else {
        leaving.current = true;
        navigate("/assemblies/new", { state: { imported: preview, file: file.name } });
      }
      setTab("script");
    } catch (err) {
      setImportError(err);
    }
  };

  if (!isNew && detail.isPending) return <Loading label="Loading the assembly" />;
  if (!isNew && detail.error) {
    const missing = detail.error instanceof ApiError && detail.error.status === 404;
    return (
      <>
        <PageHeader title={missing ? "Assembly not found" : "Assembly"} />
        {missing
          ? (
            <EmptyState
              title="No such assembly"
              action={
                <Button variant="contained" onClick={() => navigate("/assemblies")}>
                  All assemblies
                </Button>
              }
            >
              It was deleted, or the link is wrong.
            </EmptyState>
          )
          : <ErrorState error={detail.error} onRetry={() => detail.refetch()} />}
      </>
    );
  }
  if (!form) return <Loading label="Preparing the editor" />;
  const set = (patch: Partial<AssemblyForm>) => setForm({ ...form, ...patch });
  const canSave = !readOnly && (dirty || isNew) && !Object.keys(errors).length && !save.isPending;
  const script = form.assembly_kind === "script";

  return (
    <>
      <PageHeader
        title={isNew ? (form.display_name || "New script") : d!.display_name}
        subtitle={
          <Stack direction="row" spacing={1} sx={{ alignItems: "center" }} component="span">
            <DomainBadge domain={domain} />
            {d?.is_dirty && <QueuedPill since={d.state.dirty_since} />}
            <span>
              {isNew
                ? importedFrom ? `Imported from ${importedFrom}, not saved yet` : "Not saved yet"
                : `${typeLabel(script ? d!.assembly_type : d!.assembly_kind)} · version ${
                  d!.version
                } · changed ${ago(d!.updated_at)}`}
            </span>
          </Stack>
        }
        actions={
          <>
            <Button
              variant="outlined"
              endIcon={<ArrowDropDownIcon />}
              aria-haspopup="menu"
              onClick={(e) => setIoMenu(e.currentTarget)}
            >
              Import / Export
            </Button>
            <Menu anchorEl={ioMenu} open={!!ioMenu} onClose={() => setIoMenu(null)}>
              <MenuItem onClick={() => (setIoMenu(null), importInput.current?.click())}>
                Import JSON…
              </MenuItem>
              <MenuItem
                component="a"
                href={isNew ? undefined : `/api/assemblies/${guid}/export`}
                download
                disabled={isNew}
                onClick={() => setIoMenu(null)}
              >
                Export JSON{dirty && !isNew ? " (the saved version)" : ""}
              </MenuItem>
            </Menu>
            {!isNew && <Button variant="outlined" onClick={() => setCloning(true)}>Clone…</Button>}
            {!isNew && !readOnly && (
              <Button
                variant="outlined"
                color="error"
                onClick={() => setDeleting(true)}
              >
                Delete…
              </Button>
            )}
            {!readOnly && (
              <Button
                variant="contained"
                disabled={!canSave}
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
      <input
        ref={importInput}
        type="file"
        accept="application/json,.json"
        hidden
        aria-label="Import an assembly document"
        onChange={(e) => {
          const f = e.target.files?.[0];
          e.target.value = "";
          if (f) void importFile(f);
        }}
      />
      <DevModeBar />
      {readOnly && (
        <Alert
          severity="info"
          sx={{ mx: 3, mb: 1.5 }}
          data-testid="read-only-warning"
          action={
            <Stack direction="row" spacing={1} sx={{ flexShrink: 0, whiteSpace: "nowrap" }}>
              {admin && (
                <Button
                  color="inherit"
                  size="small"
                  onClick={() => switchDev.mutate({ enabled: true, ttl: 900 })}
                >
                  Turn on Dev Mode
                </Button>
              )}
              <Button color="inherit" size="small" onClick={() => setCloning(true)}>
                Clone to User-Created
              </Button>
            </Stack>
          }
        >
          <strong>Read-only:</strong> {DOMAIN_LABEL[domain]}{" "}
          assemblies change only with Dev Mode{admin ? "" : ", which admins hold"}. Clone it to make
          your own copy.
        </Alert>
      )}
      {importError !== null && (
        <Box sx={{ mx: 1 }}>
          <ErrorState error={importError} title="This file cannot be imported" />
          {importError instanceof ApiError && Array.isArray(importError.details) && (
            <Box component="ul" sx={{ mx: 4, mt: 0 }}>
              {(importError.details as Array<{ field: string; message: string }>).slice(0, 10)
                .map((p) => (
                  <li key={p.field + p.message}>
                    <code>{p.field}</code>: {p.message}
                  </li>
                ))}
            </Box>
          )}
        </Box>
      )}
      {importedFrom && isNew && (
        <Alert severity="success" sx={{ mx: 3, mb: 1.5 }} role="status">
          {importedFrom}{" "}
          checked by the engine and loaded. Review it, then Create: it is saved as a new{" "}
          {DOMAIN_LABEL[form.domain]} assembly.
        </Alert>
      )}
      {save.error && <ErrorState error={save.error} title="Not saved" />}
      <Box sx={{ px: 3, pb: 1 }}>
        <Box
          sx={{
            display: "grid",
            gridTemplateColumns: "minmax(0, 2fr) repeat(4, minmax(0, 1fr))",
            gap: 1.5,
          }}
        >
          <TextField
            size="small"
            label="Name"
            value={form.display_name}
            onChange={(e) => set({ display_name: e.target.value })}
            error={touched && !!errors.display_name}
            helperText={touched ? errors.display_name : undefined}
            disabled={readOnly}
            required
          />
          {script
            ? (
              <TextField
                select
                size="small"
                label="Type"
                value={form.assembly_type ?? "powershell"}
                onChange={(e) =>
                  set({ assembly_type: e.target.value as AssemblyForm["assembly_type"] })}
                disabled={readOnly}
                helperText={osOf(form.assembly_type)}
              >
                {SCRIPT_TYPES.map(([t, label]) => <MenuItem key={t} value={t}>{label}</MenuItem>)}
              </TextField>
            )
            : (
              <TextField
                size="small"
                label="Type"
                value={typeLabel(form.assembly_kind)}
                disabled
              />
            )}
          <TextField
            select
            size="small"
            label="Category"
            value={["script", "application"].includes(form.category) ? form.category : "other"}
            onChange={(e) =>
              set({ category: e.target.value === "other" ? form.category : e.target.value })}
            disabled={readOnly}
          >
            <MenuItem value="script">Script</MenuItem>
            <MenuItem value="application">Application</MenuItem>
            {!["script", "application"].includes(form.category) && (
              <MenuItem value="other">{form.category || "None"}</MenuItem>
            )}
          </TextField>
          <TextField
            size="small"
            label="Timeout (seconds)"
            value={form.timeout_seconds}
            onChange={(e) => set({ timeout_seconds: e.target.value })}
            error={!!errors.timeout_seconds}
            helperText={errors.timeout_seconds}
            disabled={readOnly}
            slotProps={{ htmlInput: { inputMode: "numeric" } }}
          />
          {isNew
            ? (
              <TextField
                select
                size="small"
                label="Domain"
                value={form.domain}
                onChange={(e) => set({ domain: e.target.value as AssemblyForm["domain"] })}
                helperText={dm.on ? "Dev Mode: any domain" : undefined}
                disabled={!dm.on}
              >
                <MenuItem value="user_created">User-Created</MenuItem>
                <MenuItem value="community">Community</MenuItem>
                <MenuItem value="official">Official</MenuItem>
              </TextField>
            )
            : <TextField size="small" label="Domain" value={DOMAIN_LABEL[domain]} disabled />}
        </Box>
      </Box>
      <Box sx={{ px: 3, borderBottom: 1, borderColor: "divider" }}>
        <Tabs value={tab} onChange={(_, v: TabId) => setTab(v)} aria-label="Assembly sections">
          <Tab
            value="script"
            label={script ? "Script" : "Content"}
            id="tab-script"
            aria-controls="assembly-panel"
          />
          <Tab
            value="variables"
            label={`Variables (${form.variables.length})`}
            id="tab-variables"
            aria-controls="assembly-panel"
          />
          <Tab
            value="files"
            label={`Files (${form.files.length})`}
            id="tab-files"
            aria-controls="assembly-panel"
          />
          <Tab
            value="details"
            label="Description and tags"
            id="tab-details"
            aria-controls="assembly-panel"
          />
        </Tabs>
      </Box>
      <Box
        role="tabpanel"
        id="assembly-panel"
        aria-labelledby={`tab-${tab}`}
        sx={{ flexGrow: 1, minHeight: 0, overflow: "auto", px: 3, py: 1.5 }}
      >
        {tab === "script" && (
          form.binary
            ? (
              <Alert severity="info">
                A binary payload ({bytes(form.payload.length * 0.75)}); it is kept as it is.
              </Alert>
            )
            : (
              <>
                <CodeEditor
                  value={form.payload}
                  onChange={(payload) => setForm((f) => f && { ...f, payload })}
                  language={script ? form.assembly_type : form.assembly_kind}
                  label={script ? `${typeLabel(form.assembly_type)} script` : "Content"}
                  readOnly={readOnly}
                  height="calc(100vh - 400px)"
                />
                {errors.payload && (
                  <Typography color="error" variant="body2" sx={{ mt: 0.5 }}>
                    {errors.payload}
                  </Typography>
                )}
              </>
            )
        )}
        {tab === "variables" && (
          <VariablesTable
            rows={form.variables}
            onChange={(variables) => set({ variables })}
            readOnly={readOnly}
            errors={errors}
          />
        )}
        {tab === "files" && (
          <FilesList
            form={form}
            onChange={(files) => set({ files })}
            readOnly={readOnly}
          />
        )}
        {tab === "details" && (
          <Stack spacing={2} sx={{ maxWidth: 720, pt: 1 }}>
            <TextField
              label="Description"
              value={form.summary}
              onChange={(e) => set({ summary: e.target.value })}
              multiline
              minRows={3}
              error={!!errors.summary}
              helperText={errors.summary}
              disabled={readOnly}
            />
            <TextField
              label="Tags"
              value={form.tags}
              onChange={(e) => set({ tags: e.target.value })}
              helperText={errors.tags ?? "Separated by commas"}
              error={!!errors.tags}
              disabled={readOnly}
            />
            {d && (
              <Typography variant="body2" color="text.secondary">
                GUID <code>{d.assembly_guid}</code> · created {ago(d.created_at)}
                {d.state.last_persisted
                  ? ` · written to the database ${ago(d.state.last_persisted)}`
                  : ""}
                {d.state.last_error ? ` · last write failed: ${d.state.last_error}` : ""}
              </Typography>
            )}
          </Stack>
        )}
      </Box>
      <CloneDialog
        item={cloning && d ? d : null}
        onClose={() => setCloning(false)}
      />
      <ConfirmDialog
        open={deleting}
        title={`Delete ${d?.display_name}?`}
        confirmLabel="Delete"
        destructive
        onClose={() => setDeleting(false)}
        onConfirm={async () => {
          await api(`/api/assemblies/${guid}${query({ version: d!.version })}`, {
            method: "DELETE",
          });
          leaving.current = true;
          notify({ severity: "success", message: `${d!.display_name} deleted.` });
          void qc.invalidateQueries({ queryKey: ["assemblies"] });
          navigate("/assemblies", { replace: true });
        }}
      >
        It is removed from the catalog now and from the database at the engine's next write. Jobs
        and watchdog actions that run it fail until they name another script.
      </ConfirmDialog>
      <ConfirmDialog
        open={blocker.state === "blocked"}
        title="Leave without saving?"
        confirmLabel="Leave"
        destructive
        onClose={() => blocker.reset?.()}
        onConfirm={() => blocker.proceed?.()}
      >
        Your changes to this assembly are not saved.
      </ConfirmDialog>
    </>
  );
}
