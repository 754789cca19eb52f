/**
 * Directory services (admins): LDAP and Active Directory providers. The editor has the
 * connection (servers, host overrides, TLS and its CA), the service account (bind DN and
 * a write-only password), the user and group search, attribute names, group → role and
 * group → site mappings, and diagnostics: a test with each step shown, a user lookup that
 * says what a sign-in would map to, and a sync of the provider's accounts. A provider can
 * be enabled only after its current settings passed a test, as the engine enforces.
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
import MenuItem from "@mui/material/MenuItem";
import Paper from "@mui/material/Paper";
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
import { api, ApiError } from "../api/client.ts";
import type { DirectoryProvider, Role } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { EnabledPill, StatePill } from "../components/badges.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DataGrid, exportGridCsv } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { SitesPicker } from "../components/pickers.tsx";
import { ErrorState } from "../components/states.tsx";
import { ago } from "../lib/format.ts";

type TabId = "connection" | "search" | "mappings" | "diagnostics";

interface Draft {
  name: string;
  type: "ldap" | "active_directory";
  priority: string;
  server_urls: string;
  host_overrides: string;
  start_tls: boolean;
  tls_ca_pem: string;
  base_dn: string;
  bind_dn: string;
  bind_password: string;
  user_search_filter: string;
  group_search_base: string;
  username_attribute: string;
  display_name_attribute: string;
  mail_attribute: string;
  member_of_attribute: string;
  group_member_attribute: string;
  disabled_filter: string;
  nested_groups: boolean;
  connect_timeout_ms: string;
  operation_timeout_ms: string;
  group_mappings: Array<{ group_dn: string; role: Role }>;
  site_mappings: Array<{ label: string; group_dns: string; site_ids: number[] }>;
}

function draftOf(p: DirectoryProvider | null): Draft {
  return {
    name: p?.name ?? "",
    type: p?.type ?? "ldap",
    priority: String(p?.priority ?? 100),
    server_urls: (p?.server_urls ?? []).join("\n"),
    host_overrides: Object.entries(p?.host_overrides ?? {}).map(([h, a]) => `${h}=${a}`).join("\n"),
    start_tls: p?.start_tls ?? false,
    tls_ca_pem: p?.tls_ca_pem ?? "",
    base_dn: p?.base_dn ?? "",
    bind_dn: p?.bind_dn ?? "",
    bind_password: "",
    user_search_filter: p?.user_search_filter ?? "",
    group_search_base: p?.group_search_base ?? "",
    username_attribute: p?.username_attribute ?? "",
    display_name_attribute: p?.display_name_attribute ?? "",
    mail_attribute: p?.mail_attribute ?? "",
    member_of_attribute: p?.member_of_attribute ?? "",
    group_member_attribute: p?.group_member_attribute ?? "",
    disabled_filter: p?.disabled_filter ?? "",
    nested_groups: p?.nested_groups ?? true,
    connect_timeout_ms: String(p?.connect_timeout_ms ?? 5000),
    operation_timeout_ms: String(p?.operation_timeout_ms ?? 10000),
    group_mappings: p?.group_mappings ?? [],
    site_mappings: (p?.site_mappings ?? []).map((m) => ({
      ...m,
      group_dns: m.group_dns.join("\n"),
    })),
  };
}

/** The fields of a draft as the API takes them (empty optional text → null or left out). */
function fieldsOf(d: Draft, creating: boolean): Record<string, unknown> {
  const lines = (s: string) => s.split("\n").map((x) => x.trim()).filter(Boolean);
  const opt = (s: string) => (s.trim() ? s.trim() : creating ? undefined : null);
  const out: Record<string, unknown> = {
    name: d.name.trim(),
    priority: Number(d.priority),
    server_urls: lines(d.server_urls),
    host_overrides: Object.fromEntries(
      lines(d.host_overrides).map((l) => l.split("=").map((x) => x.trim()) as [string, string]),
    ),
    start_tls: d.start_tls,
    tls_ca_pem: d.tls_ca_pem.trim() || null,
    base_dn: d.base_dn.trim(),
    bind_dn: d.bind_dn.trim() || null,
    user_search_filter: opt(d.user_search_filter),
    group_search_base: d.group_search_base.trim() || null,
    username_attribute: opt(d.username_attribute),
    display_name_attribute: opt(d.display_name_attribute),
    mail_attribute: opt(d.mail_attribute),
    member_of_attribute: opt(d.member_of_attribute),
    group_member_attribute: opt(d.group_member_attribute),
    disabled_filter: d.disabled_filter.trim() || null,
    nested_groups: d.nested_groups,
    connect_timeout_ms: Number(d.connect_timeout_ms),
    operation_timeout_ms: Number(d.operation_timeout_ms),
    group_mappings: d.group_mappings.filter((m) => m.group_dn.trim()),
    site_mappings: d.site_mappings
      .filter((m) => m.group_dns.trim() && m.site_ids.length)
      .map((m) => ({ label: m.label, group_dns: lines(m.group_dns), site_ids: m.site_ids })),
  };
  if (d.bind_password) out.bind_password = d.bind_password;
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

/** Only what changed (unchanged settings keep the last test valid). */
function changes(d: Draft, p: DirectoryProvider): Record<string, unknown> {
  const now = fieldsOf(d, false);
  const before = fieldsOf(draftOf(p), false);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(now)) {
    if (JSON.stringify(v) !== JSON.stringify(before[k])) out[k] = v;
  }
  return out;
}

interface TestStep {
  step: string;
  ok: boolean;
  message: string;
  url?: string;
  via?: string;
  ms: number;
}

function Diagnostics({ p }: { p: DirectoryProvider }) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [testUser, setTestUser] = useState("");
  const [lookupUser, setLookupUser] = useState("");
  const test = useMutation({
    mutationFn: () =>
      api<{ ok: boolean; steps: TestStep[] }>(`/api/directory/providers/${p.id}/test`, {
        body: testUser.trim() ? { username: testUser.trim() } : {},
      }),
    onSettled: () => void qc.invalidateQueries({ queryKey: ["directory-providers"] }),
  });
  const lookup = useMutation({
    mutationFn: () =>
      api<Record<string, unknown>>(`/api/directory/providers/${p.id}/lookup-user`, {
        body: { username: lookupUser.trim() },
      }),
  });
  const sync = useMutation({
    mutationFn: () =>
      api<Record<string, number>>(`/api/directory/providers/${p.id}/sync`, { method: "POST" }),
    onSuccess: (r) =>
      notify({
        severity: "success",
        message:
          `Synced: ${r.checked} checked, ${r.updated} updated, ${r.disabled} disabled, ${r.enabled} enabled.`,
      }),
    onError: (err) => notify({ severity: "error", message: (err as Error).message }),
  });
  const l = lookup.data;
  return (
    <Stack spacing={2}>
      <Paper variant="outlined" sx={{ p: 1.5 }} component="section" aria-label="Test">
        <Typography variant="subtitle2" component="h3">Test</Typography>
        <Typography variant="body2" color="text.secondary">
          Connects to each server, binds with the service account, searches, and (with a username)
          finds that user and their groups. Enabling needs a passing test of the current settings.
        </Typography>
        <Stack direction="row" spacing={1} sx={{ mt: 1 }}>
          <TextField
            size="small"
            label="Test with user (optional)"
            value={testUser}
            onChange={(e) => setTestUser(e.target.value)}
          />
          <Button variant="contained" onClick={() => test.mutate()} disabled={test.isPending}>
            {test.isPending ? "Testing…" : "Run test"}
          </Button>
        </Stack>
        {test.error && <ErrorState error={test.error} title="Test failed to run" />}
        {test.data && (
          // The live region wraps the list: a list keeps its list role for screen readers.
          <div role="status" data-testid="directory-test">
            <Box component="ol" sx={{ mt: 1, mb: 0, pl: 3 }}>
              {test.data.steps.map((s, i) => (
                <li key={i}>
                  <StatePill state={s.ok ? "Success" : "Failed"} label={s.ok ? "ok" : "failed"} />
                  {" "}
                  <strong>{s.step}</strong> {s.message}{" "}
                  <Typography component="span" variant="caption">({s.ms} ms)</Typography>
                </li>
              ))}
            </Box>
          </div>
        )}
      </Paper>
      <Paper variant="outlined" sx={{ p: 1.5 }} component="section" aria-label="User lookup">
        <Typography variant="subtitle2" component="h3">User lookup</Typography>
        <Stack direction="row" spacing={1} sx={{ mt: 1 }}>
          <TextField
            size="small"
            label="Username"
            value={lookupUser}
            onChange={(e) => setLookupUser(e.target.value)}
          />
          <Button
            variant="outlined"
            onClick={() => lookup.mutate()}
            disabled={!lookupUser.trim() || lookup.isPending}
          >
            Look up
          </Button>
        </Stack>
        {lookup.error && <ErrorState error={lookup.error} title="Lookup failed" />}
        {l && (
          <Box sx={{ mt: 1 }} role="status">
            <Alert severity={l.would_sign_in ? "success" : "warning"}>
              {String(l.reason ?? "")}
            </Alert>
            {!!l.found && (
              <Typography variant="body2" sx={{ mt: 1 }}>
                {String(l.dn)} · role {String(l.role ?? "none")} · sites{" "}
                {(l.site_ids as number[]).join(", ") || "none"} · groups{" "}
                {(l.groups as string[]).length}{" "}
                ({(l.matched_groups as string[]).join("; ") || "none mapped"})
              </Typography>
            )}
          </Box>
        )}
      </Paper>
      <Paper variant="outlined" sx={{ p: 1.5 }} component="section" aria-label="Sync">
        <Typography variant="subtitle2" component="h3">Sync</Typography>
        <Typography variant="body2" color="text.secondary">
          Re-reads every account of this provider ({p.user_count ?? 0}) now: roles and sites follow
          the directory; gone or disabled entries are disabled here. Last sync{" "}
          {p.last_sync_at ? ago(p.last_sync_at) : "never"}.
        </Typography>
        <Button
          sx={{ mt: 1 }}
          variant="outlined"
          onClick={() => sync.mutate()}
          disabled={sync.isPending}
        >
          Sync now
        </Button>
      </Paper>
    </Stack>
  );
}

function Editor(
  { p, onCreated }: { p: DirectoryProvider | null; onCreated: (id: string) => void },
) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [d, setD] = useState<Draft>(() => draftOf(p));
  const [tab, setTab] = useState<TabId>("connection");
  const [deleting, setDeleting] = useState(false);
  const set = (x: Partial<Draft>) => setD({ ...d, ...x });
  const save = useMutation({
    mutationFn: () =>
      p
        ? api<DirectoryProvider>(`/api/directory/providers/${p.id}`, {
          method: "PATCH",
          body: changes(d, p),
        })
        : api<DirectoryProvider>("/api/directory/providers", {
          body: { ...fieldsOf(d, true), type: d.type },
        }),
    onSuccess: (r) => {
      notify({
        severity: r.needs_test ? "warning" : "success",
        message: r.needs_test
          ? `${r.name} saved; its connection changed, so it needs a new passing test before it is enabled.`
          : `${r.name} saved.`,
      });
      set({ bind_password: "" });
      void qc.invalidateQueries({ queryKey: ["directory-providers"] });
      if (!p) onCreated(r.id);
    },
  });
  const toggle = useMutation({
    mutationFn: (enabled: boolean) =>
      api(`/api/directory/providers/${p!.id}`, { method: "PATCH", body: { enabled } }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["directory-providers"] }),
    onError: (err) => notify({ severity: "error", message: (err as Error).message }),
  });
  const txt = (
    k: keyof Draft,
    label: string,
    o: { help?: string; rows?: number; placeholder?: string; type?: string } = {},
  ) => (
    <TextField
      size="small"
      label={label}
      value={String(d[k] ?? "")}
      onChange={(e) => set({ [k]: e.target.value } as Partial<Draft>)}
      helperText={o.help}
      multiline={!!o.rows}
      minRows={o.rows}
      placeholder={o.placeholder}
      type={o.type}
      autoComplete="off"
      slotProps={{ htmlInput: { spellCheck: false } }}
    />
  );
  const dirty = p ? Object.keys(changes(d, p)).length > 0 : true;
  return (
    <Stack spacing={1.5} sx={{ minHeight: 0, height: "100%" }}>
      <Stack direction="row" spacing={1} sx={{ alignItems: "center" }}>
        <Typography variant="h6" component="h2" sx={{ flexGrow: 1 }}>
          {p ? p.name : "New provider"}
        </Typography>
        {p && (
          <FormControlLabel
            control={
              <Switch
                checked={p.enabled}
                disabled={toggle.isPending || (!p.enabled && !p.tested) || dirty}
                onChange={(e) => toggle.mutate(e.target.checked)}
              />
            }
            label={p.enabled ? "Enabled" : p.tested ? "Enable" : "Enable (needs a passing test)"}
          />
        )}
        {p && <Button color="error" onClick={() => setDeleting(true)}>Delete…</Button>}
        <Button
          variant="contained"
          onClick={() => save.mutate()}
          disabled={save.isPending || !dirty || !d.name.trim()}
        >
          {p ? "Save" : "Create"}
        </Button>
      </Stack>
      {p && !p.tested && (
        <Alert severity="info">
          These settings have not passed a test yet{p.last_test_ok === false
            ? " (the last test failed)"
            : ""}: run one in Diagnostics before enabling.
        </Alert>
      )}
      {save.error && <ErrorState error={save.error} title="Not saved" />}
      <Tabs value={tab} onChange={(_, v: TabId) => setTab(v)} aria-label="Provider sections">
        <Tab value="connection" label="Connection" id="dir-connection" aria-controls="dir-panel" />
        <Tab value="search" label="Bind and search" id="dir-search" aria-controls="dir-panel" />
        <Tab
          value="mappings"
          label="Groups and sites"
          id="dir-mappings"
          aria-controls="dir-panel"
        />
        <Tab
          value="diagnostics"
          label="Diagnostics"
          id="dir-diagnostics"
          aria-controls="dir-panel"
          disabled={!p}
        />
      </Tabs>
      <Box
        role="tabpanel"
        id="dir-panel"
        aria-labelledby={`dir-${tab}`}
        sx={{ overflow: "auto", flexGrow: 1, pr: 1 }}
      >
        {tab === "connection" && (
          <Stack spacing={1.5}>
            <Stack direction="row" spacing={1.5}>
              <TextField
                size="small"
                label="Provider name"
                value={d.name}
                onChange={(e) => set({ name: e.target.value })}
                sx={{ flex: 1 }}
              />
              <TextField
                select
                size="small"
                label="Type"
                value={d.type}
                onChange={(e) => set({ type: e.target.value as Draft["type"] })}
                disabled={!!p}
                sx={{ width: 190 }}
              >
                <MenuItem value="ldap">OpenLDAP / LDAP</MenuItem>
                <MenuItem value="active_directory">Active Directory</MenuItem>
              </TextField>
              <TextField
                size="small"
                label="Priority"
                value={d.priority}
                onChange={(e) => set({ priority: e.target.value })}
                sx={{ width: 100 }}
              />
            </Stack>
            {txt("server_urls", "Servers (one per line)", {
              rows: 2,
              placeholder: "ldaps://ldap1.example.org",
              help: "Tried in order",
            })}
            {txt("host_overrides", "Host overrides (host=address, one per line)", {
              rows: 2,
              help: "Connect to this address for a name DNS cannot find; TLS still checks the name",
            })}
            <FormControlLabel
              control={
                <Checkbox
                  checked={d.start_tls}
                  onChange={(e) => set({ start_tls: e.target.checked })}
                />
              }
              label="StartTLS (for ldap:// URLs)"
            />
            {txt("tls_ca_pem", "Pinned CA certificate (PEM, replaces the system roots)", {
              rows: 3,
            })}
            <Stack direction="row" spacing={1.5}>
              {txt("connect_timeout_ms", "Connect timeout (ms)")}
              {txt("operation_timeout_ms", "Operation timeout (ms)")}
            </Stack>
          </Stack>
        )}
        {tab === "search" && (
          <Stack spacing={1.5}>
            {txt("base_dn", "Base DN (where users are searched)")}
            {txt("bind_dn", "Service account DN (empty: anonymous)")}
            <TextField
              size="small"
              label="Service account password"
              type="password"
              value={d.bind_password}
              onChange={(e) => set({ bind_password: e.target.value })}
              placeholder={p?.bind_password_set ? "Stored — leave empty to keep it" : ""}
              helperText="Sealed by the vault; never shown or logged"
              autoComplete="new-password"
            />
            {txt("user_search_filter", "User search filter", {
              help: "Must contain {username}; empty: the type's default",
            })}
            {txt("group_search_base", "Group search base (empty: the base DN)")}
            {txt("disabled_filter", "Disabled filter (entries matching it are disabled)")}
            <FormControlLabel
              control={
                <Checkbox
                  checked={d.nested_groups}
                  onChange={(e) => set({ nested_groups: e.target.checked })}
                />
              }
              label="Follow nested groups"
            />
            <Typography variant="subtitle2">
              Attribute names (empty: the type's defaults)
            </Typography>
            <Box
              sx={{ display: "grid", gridTemplateColumns: "repeat(3, minmax(0, 1fr))", gap: 1.5 }}
            >
              {txt("username_attribute", "Username")}
              {txt("display_name_attribute", "Display name")}
              {txt("mail_attribute", "Mail")}
              {txt("member_of_attribute", "Groups of a user")}
              {txt("group_member_attribute", "Members of a group")}
            </Box>
          </Stack>
        )}
        {tab === "mappings" && (
          <Stack spacing={1.5}>
            <Typography variant="subtitle2">
              Group → role (the highest wins; no match means no access)
            </Typography>
            {d.group_mappings.map((m, i) => (
              <Stack key={i} direction="row" spacing={1}>
                <TextField
                  size="small"
                  label={`Group DN ${i + 1}`}
                  value={m.group_dn}
                  onChange={(e) =>
                    set({
                      group_mappings: d.group_mappings.map((
                        x,
                        j,
                      ) => (j === i ? { ...x, group_dn: e.target.value } : x)),
                    })}
                  sx={{ flex: 1 }}
                />
                <TextField
                  select
                  size="small"
                  label={`Role ${i + 1}`}
                  value={m.role}
                  onChange={(e) =>
                    set({
                      group_mappings: d.group_mappings.map((
                        x,
                        j,
                      ) => (j === i ? { ...x, role: e.target.value as Role } : x)),
                    })}
                  sx={{ width: 130 }}
                >
                  <MenuItem value="Admin">Admin</MenuItem>
                  <MenuItem value="User">User</MenuItem>
                </TextField>
                <IconButton
                  aria-label={`Remove role mapping ${i + 1}`}
                  onClick={() =>
                    set({ group_mappings: d.group_mappings.filter((_, j) => j !== i) })}
                >
                  <DeleteIcon />
                </IconButton>
              </Stack>
            ))}
            <Box>
              <Button
                startIcon={<AddIcon />}
                onClick={() =>
                  set({ group_mappings: [...d.group_mappings, { group_dn: "", role: "User" }] })}
              >
                Add role mapping
              </Button>
            </Box>
            <Typography variant="subtitle2">
              Groups → sites (a User gets every matching mapping's sites)
            </Typography>
            {d.site_mappings.map((m, i) => (
              <Paper key={i} variant="outlined" sx={{ p: 1.5 }}>
                <Stack spacing={1}>
                  <Stack direction="row" spacing={1}>
                    <TextField
                      size="small"
                      label={`Label ${i + 1}`}
                      value={m.label}
                      onChange={(e) =>
                        set({
                          site_mappings: d.site_mappings.map((
                            x,
                            j,
                          ) => (j === i ? { ...x, label: e.target.value } : x)),
                        })}
                      sx={{ width: 200 }}
                    />
                    <Box sx={{ flex: 1 }}>
                      <SitesPicker
                        label={`Sites ${i + 1}`}
                        value={m.site_ids}
                        onChange={(site_ids) =>
                          set({
                            site_mappings: d.site_mappings.map((
                              x,
                              j,
                            ) => (j === i ? { ...x, site_ids } : x)),
                          })}
                      />
                    </Box>
                    <IconButton
                      aria-label={`Remove site mapping ${i + 1}`}
                      onClick={() =>
                        set({ site_mappings: d.site_mappings.filter((_, j) => j !== i) })}
                    >
                      <DeleteIcon />
                    </IconButton>
                  </Stack>
                  <TextField
                    size="small"
                    label={`Group DNs ${i + 1} (one per line)`}
                    value={m.group_dns}
                    multiline
                    minRows={2}
                    onChange={(e) =>
                      set({
                        site_mappings: d.site_mappings.map((
                          x,
                          j,
                        ) => (j === i ? { ...x, group_dns: e.target.value } : x)),
                      })}
                  />
                </Stack>
              </Paper>
            ))}
            <Box>
              <Button
                startIcon={<AddIcon />}
                onClick={() =>
                  set({
                    site_mappings: [...d.site_mappings, { label: "", group_dns: "", site_ids: [] }],
                  })}
              >
                Add site mapping
              </Button>
            </Box>
          </Stack>
        )}
        {tab === "diagnostics" && p && <Diagnostics p={p} />}
      </Box>
      <ConfirmDialog
        open={deleting}
        title={`Delete ${p?.name}?`}
        confirmLabel="Delete"
        destructive
        typeToConfirm={p?.name}
        onClose={() => setDeleting(false)}
        onConfirm={async () => {
          try {
            await api(`/api/directory/providers/${p!.id}`, { method: "DELETE" });
          } catch (err) {
            if (err instanceof ApiError && err.code === "provider_in_use") {
              throw new Error(
                `${err.message}. Convert each account to a local one (or delete it) in Users first.`,
              );
            }
            throw err;
          }
          notify({ severity: "success", message: `${p!.name} deleted.` });
          void qc.invalidateQueries({ queryKey: ["directory-providers"] });
        }}
      >
        Directory users of this provider can no longer sign in. The engine refuses while accounts
        still come from it ({p?.user_count ?? 0}).
      </ConfirmDialog>
    </Stack>
  );
}

/** `/directory` (admins). */
export function DirectoryPage() {
  const { notify } = useToasts();
  const [params, setParams] = useSearchParams();
  const selected = params.get("provider");
  const grid = useRef<GridApi<DirectoryProvider> | null>(null);
  const list = useQuery({
    queryKey: ["directory-providers"],
    queryFn: ({ signal }) =>
      api<{ providers: DirectoryProvider[] }>("/api/directory/providers", { signal }),
  });
  const providers = list.data?.providers ?? [];
  const current = selected === "new" ? null : providers.find((p) => p.id === selected) ?? null;
  const columns = useMemo<ColDef<DirectoryProvider>[]>(() => [
    { headerName: "Name", field: "name", flex: 1, minWidth: 90 },
    {
      headerName: "Type",
      field: "type",
      width: 70,
      valueFormatter: (p) => (p.value === "active_directory" ? "AD" : "LDAP"),
    },
    {
      headerName: "State",
      colId: "state",
      width: 130,
      valueGetter: (
        p,
      ) => (p.data?.enabled ? "Enabled" : p.data?.tested ? "Tested" : "Needs a test"),
      cellRenderer: (p: { data?: DirectoryProvider; value?: string }) =>
        p.data &&
        (p.data.enabled || p.data.tested
          ? <EnabledPill enabled={p.data.enabled} offLabel="Tested" />
          : <StatePill state="held" label="Needs a test" />),
    },
    { headerName: "Users", field: "user_count", width: 66 },
  ], []);
  return (
    <>
      <PageHeader
        title="Directory services"
        subtitle="Sign-in with LDAP or Active Directory accounts; roles and sites from groups"
        actions={
          <>
            <Button
              variant="outlined"
              disabled={!providers.length}
              onClick={() =>
                notify({
                  severity: "success",
                  message: `Exported ${
                    exportGridCsv(grid.current, "directory-providers")
                  } provider(s).`,
                })}
            >
              Export CSV
            </Button>
            <Button variant="contained" onClick={() => setParams({ provider: "new" })}>
              New provider
            </Button>
          </>
        }
      />
      {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
      <Box
        sx={{
          flexGrow: 1,
          minHeight: 0,
          display: "grid",
          gridTemplateColumns: "minmax(360px, 2fr) minmax(0, 5fr)",
          gap: 2,
          px: 3,
          pb: 2,
        }}
      >
        <DataGrid<DirectoryProvider>
          label="Directory providers"
          emptyText="No providers: add one"
          loading={list.isPending}
          rowData={providers}
          columnDefs={columns}
          getRowId={(p) => p.data.id}
          onGridReady={(e) => (grid.current = e.api)}
          onRowClicked={(e) => e.data && setParams({ provider: e.data.id })}
          rowSelection={{ mode: "singleRow", checkboxes: false, enableClickSelection: true }}
        />
        <Paper
          variant="outlined"
          sx={{ p: 2, minHeight: 0, overflow: "hidden" }}
          component="section"
          aria-label="Provider"
        >
          {selected && (selected === "new" || current)
            ? (
              <Editor
                key={selected}
                p={current}
                onCreated={(id) => setParams({ provider: id })}
              />
            )
            : (
              <Typography color="text.secondary">
                Pick a provider to edit it, or add one. Local accounts always sign in locally; the
                directory is asked only for unknown names and its own accounts.
              </Typography>
            )}
        </Paper>
      </Box>
    </>
  );
}
