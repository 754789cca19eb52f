/**
 * Credentials and the vault (admins). Stored credentials with flags for what they hold
 * (secrets are write-only: never shown, kept unless replaced); create, edit, delete. The
 * vault: state, keys and how many values each seals, key rotation with its progress, and
 * force reset behind a typed confirmation. Rotation and reset need Dev Mode.
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import LinearProgress from "@mui/material/LinearProgress";
import MenuItem from "@mui/material/MenuItem";
import Paper from "@mui/material/Paper";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef, GridApi } from "ag-grid-community";
import { useMemo, useRef, useState } from "react";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api } from "../api/client.ts";
import { useSites } from "../api/queries.ts";
import type { AegisStatus, Credential } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DevModeBar, useDevMode } from "../components/dev_mode.tsx";
import { DataGrid, editDeleteColumn, exportGridCsv } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { ErrorState } from "../components/states.tsx";
import { ago, count, when } from "../lib/format.ts";

const RESET_WORDS = "DESTROY ALL SECRETS";

function VaultCard() {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const dm = useDevMode();
  const [rotating, setRotating] = useState(false);
  const [resetting, setResetting] = useState(false);
  const [passphrase, setPassphrase] = useState("");
  const status = useQuery({
    queryKey: ["aegis-status"],
    queryFn: ({ signal }) => api<AegisStatus>("/api/aegis/status", { signal }),
    refetchInterval: (q) => (q.state.data?.rotation?.running ? 1500 : false),
  });
  const s = status.data;
  const r = s?.rotation;
  const total = r ? r.moved + r.failed + r.remaining : 0;
  return (
    <Paper variant="outlined" sx={{ p: 2 }} component="section" aria-label="Vault">
      <Stack direction="row" spacing={2} sx={{ alignItems: "center", mb: 1 }}>
        <Typography variant="subtitle1" component="h2" sx={{ flexGrow: 1 }}>Vault</Typography>
        <Button
          variant="outlined"
          disabled={!dm.on || !s || s.state !== "unlocked" || !!r?.running}
          onClick={() => setRotating(true)}
        >
          Rotate key…
        </Button>
        <Button
          variant="outlined"
          color="error"
          disabled={!dm.on}
          onClick={() => setResetting(true)}
        >
          Force reset…
        </Button>
      </Stack>
      {status.error && <ErrorState error={status.error} onRetry={() => status.refetch()} />}
      {s && (
        <Stack spacing={1}>
          <Typography variant="body2">
            <strong>
              {s.state === "unlocked" ? "Unlocked" : s.state === "locked" ? "Locked" : "Not set up"}
            </strong>
            {s.mode ? ` · ${s.mode === "passphrase" ? "passphrase" : "key file"} mode` : ""}
            {` · ${count(s.sealed_values, "sealed value")} in ${
              count(s.sealed_columns.length, "column")
            }`}
            {s.key_id ? ` · current key ${s.key_id.slice(0, 10)}` : ""}
          </Typography>
          <Stack direction="row" spacing={0.5} sx={{ flexWrap: "wrap", rowGap: 0.5 }}>
            {s.keys.map((k) => (
              <Chip
                key={k.key_id}
                size="small"
                variant={k.retired_at ? "outlined" : "filled"}
                label={`${k.key_id.slice(0, 10)} · ${count(k.values, "value")}${
                  k.retired_at ? " · retired" : ""
                }`}
                title={`created ${when(k.created_at)}`}
              />
            ))}
          </Stack>
          {r && (
            <Box role="status" aria-label="Rotation">
              <Typography variant="body2">
                {r.running
                  ? `Rotating to ${r.target_key_id.slice(0, 10)}: ${r.moved} of ${total} moved`
                  : r.finished_at
                  ? `Last rotation finished ${ago(r.finished_at)}: ${r.moved} moved`
                  : `Rotation paused: ${count(r.remaining, "value")} left`}
                {r.failed ? `, ${r.failed} failed` : ""}
              </Typography>
              <LinearProgress
                variant="determinate"
                value={total ? (100 * (r.moved + r.failed)) / total : 100}
                aria-label="Rotation progress"
                sx={{ mt: 0.5 }}
              />
            </Box>
          )}
          {!dm.on && (
            <Typography variant="caption" color="text.secondary">
              Rotation and force reset need Dev Mode (turn it on above).
            </Typography>
          )}
        </Stack>
      )}
      <DialogFrame
        open={rotating}
        onClose={() => setRotating(false)}
        title="Rotate the vault key"
        onSubmit={async () => {
          try {
            await api("/api/aegis/rotate", {
              body: passphrase ? { new_passphrase: passphrase } : {},
            });
            notify({ severity: "success", message: "Rotation started." });
            setPassphrase("");
            setRotating(false);
            void qc.invalidateQueries({ queryKey: ["aegis-status"] });
          } catch (err) {
            notify({ severity: "error", message: (err as Error).message });
          }
        }}
        actions={<Button type="submit" variant="contained">Rotate</Button>}
      >
        <Stack spacing={2} sx={{ pt: 1 }}>
          <Typography color="text.secondary">
            Every sealed value is re-encrypted under a new key in the background; the engine keeps
            working, and an interrupted rotation resumes.
          </Typography>
          {s?.mode === "passphrase" && (
            <TextField
              label="New passphrase (optional)"
              type="password"
              value={passphrase}
              onChange={(e) => setPassphrase(e.target.value)}
              helperText="At least 12 characters; empty keeps the current one"
              autoComplete="new-password"
            />
          )}
        </Stack>
      </DialogFrame>
      <ConfirmDialog
        open={resetting}
        title="Force reset the vault?"
        confirmLabel="Destroy every secret"
        destructive
        typeToConfirm={RESET_WORDS}
        onClose={() => setResetting(false)}
        onConfirm={async () => {
          const out = await api<{ cleared: number }>("/api/aegis/force_reset", {
            body: { confirm: RESET_WORDS },
          });
          notify({
            severity: "warning",
            message: `Vault reset: ${out.cleared} secret(s) destroyed.`,
          });
          void qc.invalidateQueries({ queryKey: ["aegis-status"] });
          void qc.invalidateQueries({ queryKey: ["credentials"] });
        }}
      >
        Every sealed secret is destroyed for good: credentials' passwords and keys, enrollment
        codes, directory bind passwords, notification channels' webhook URLs and passwords, TOTP
        seeds (those users set up their app again), the script-signing key (agents must re-pin).
        Only do this when the passphrase or key file is lost.
      </ConfirmDialog>
    </Paper>
  );
}

interface CredForm {
  name: string;
  description: string;
  site_id: number | "";
  credential_type: "machine" | "domain" | "token";
  connection_type: "ssh" | "windows" | "winrm";
  username: string;
  password: string;
  private_key: string;
  private_key_passphrase: string;
  become_method: string;
  become_username: string;
  become_password: string;
  winrm_transport: string;
}

function CredentialDialog(
  { cred, onClose }: { cred: Credential | "new" | null; onClose: () => void },
) {
  const editing = cred && cred !== "new" ? cred : null;
  const qc = useQueryClient();
  const { notify } = useToasts();
  const sites = useSites();
  const [f, setF] = useState<CredForm>({
    name: editing?.name ?? "",
    description: editing?.description ?? "",
    site_id: editing?.site_id ?? "",
    credential_type: (editing?.credential_type as CredForm["credential_type"]) ?? "machine",
    connection_type: (editing?.connection_type as CredForm["connection_type"]) ?? "windows",
    username: editing?.username ?? "",
    password: "",
    private_key: "",
    private_key_passphrase: "",
    become_method: editing?.become_method ?? "",
    become_username: editing?.become_username ?? "",
    become_password: "",
    winrm_transport: editing?.winrm_transport ?? "",
  });
  const set = (p: Partial<CredForm>) => setF({ ...f, ...p });
  const save = useMutation({
    mutationFn: () => {
      const secret = (v: string) => (v ? v : undefined);
      const body = {
        name: f.name.trim(),
        description: f.description,
        site_id: f.site_id === "" ? null : f.site_id,
        credential_type: f.credential_type,
        connection_type: f.connection_type,
        username: f.username.trim() || null,
        password: secret(f.password),
        private_key: secret(f.private_key),
        private_key_passphrase: secret(f.private_key_passphrase),
        become_method: f.become_method.trim() || null,
        become_username: f.become_username.trim() || null,
        become_password: secret(f.become_password),
        winrm_transport: f.winrm_transport.trim() || null,
      };
      return editing
        ? api(`/api/credentials/${editing.id}`, { method: "PUT", body })
        : api("/api/credentials", { body });
    },
    onSuccess: () => {
      notify({ severity: "success", message: `Credential ${f.name.trim()} saved.` });
      void qc.invalidateQueries({ queryKey: ["credentials"] });
      onClose();
    },
  });
  const kept = (
    has: boolean | undefined,
  ) => (editing && has ? "Stored — leave empty to keep it" : "");
  return (
    <DialogFrame
      open
      onClose={onClose}
      maxWidth="md"
      title={editing ? `Edit ${editing.name}` : "New credential"}
      onSubmit={() => save.mutate()}
      actions={
        <Button type="submit" variant="contained" disabled={save.isPending || !f.name.trim()}>
          Save
        </Button>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        {editing?.reset_required && (
          <Alert severity="warning">
            The vault was reset: enter this credential's secrets again.
          </Alert>
        )}
        <Stack direction="row" spacing={1.5}>
          <TextField
            label="Credential name"
            value={f.name}
            onChange={(e) => set({ name: e.target.value })}
            sx={{ flex: 1 }}
          />
          <TextField
            select
            label="Site"
            value={f.site_id}
            onChange={(e) => set({ site_id: e.target.value === "" ? "" : Number(e.target.value) })}
            sx={{ width: 200 }}
          >
            <MenuItem value="">Every site</MenuItem>
            {(sites.data?.sites ?? []).map((s) => (
              <MenuItem key={s.id} value={s.id}>{s.name}</MenuItem>
            ))}
          </TextField>
        </Stack>
        <TextField
          label="Description"
          value={f.description}
          onChange={(e) => set({ description: e.target.value })}
        />
        <Stack direction="row" spacing={1.5}>
          <TextField
            select
            label="Type"
            value={f.credential_type}
            onChange={(e) =>
              set({ credential_type: e.target.value as CredForm["credential_type"] })}
            sx={{ flex: 1 }}
          >
            <MenuItem value="machine">Machine account</MenuItem>
            <MenuItem value="domain">Domain account</MenuItem>
            <MenuItem value="token">Token</MenuItem>
          </TextField>
          <TextField
            select
            label="Connection"
            value={f.connection_type}
            onChange={(e) =>
              set({ connection_type: e.target.value as CredForm["connection_type"] })}
            sx={{ flex: 1 }}
          >
            <MenuItem value="windows">Windows</MenuItem>
            <MenuItem value="ssh">SSH</MenuItem>
            <MenuItem value="winrm">WinRM</MenuItem>
          </TextField>
          <TextField
            label="Username"
            value={f.username}
            onChange={(e) => set({ username: e.target.value })}
            sx={{ flex: 1 }}
            autoComplete="off"
          />
        </Stack>
        <TextField
          label="Password"
          type="password"
          value={f.password}
          onChange={(e) => set({ password: e.target.value })}
          placeholder={kept(editing?.has_password)}
          autoComplete="new-password"
        />
        {f.connection_type === "ssh" && (
          <>
            <TextField
              label="Private key"
              value={f.private_key}
              onChange={(e) => set({ private_key: e.target.value })}
              placeholder={kept(editing?.has_private_key) || "-----BEGIN OPENSSH PRIVATE KEY-----"}
              multiline
              minRows={2}
              slotProps={{ htmlInput: { spellCheck: false } }}
            />
            <Stack direction="row" spacing={1.5}>
              <TextField
                label="Key passphrase"
                type="password"
                value={f.private_key_passphrase}
                onChange={(e) => set({ private_key_passphrase: e.target.value })}
                placeholder={kept(editing?.has_private_key_passphrase)}
                sx={{ flex: 1 }}
                autoComplete="new-password"
              />
              <TextField
                label="Become method (sudo, su)"
                value={f.become_method}
                onChange={(e) => set({ become_method: e.target.value })}
                sx={{ flex: 1 }}
              />
              <TextField
                label="Become user"
                value={f.become_username}
                onChange={(e) => set({ become_username: e.target.value })}
                sx={{ flex: 1 }}
              />
            </Stack>
            <TextField
              label="Become password"
              type="password"
              value={f.become_password}
              onChange={(e) => set({ become_password: e.target.value })}
              placeholder={kept(editing?.has_become_password)}
              autoComplete="new-password"
            />
          </>
        )}
        {f.connection_type === "winrm" && (
          <TextField
            label="WinRM transport (ntlm, kerberos, credssp)"
            value={f.winrm_transport}
            onChange={(e) => set({ winrm_transport: e.target.value })}
          />
        )}
        <Typography variant="caption" color="text.secondary">
          Secrets are sealed by the vault and never shown again; scripts receive them when they run.
        </Typography>
        {save.error && <ErrorState error={save.error} title="Not saved" />}
      </Stack>
    </DialogFrame>
  );
}

/** `/credentials` (admins). */
export function CredentialsPage() {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const sites = useSites();
  const grid = useRef<GridApi<Credential> | null>(null);
  const [editing, setEditing] = useState<Credential | "new" | null>(null);
  const [deleting, setDeleting] = useState<Credential | null>(null);
  const list = useQuery({
    queryKey: ["credentials"],
    queryFn: ({ signal }) => api<{ credentials: Credential[] }>("/api/credentials", { signal }),
  });
  const columns = useMemo<ColDef<Credential>[]>(() => [
    { headerName: "Name", field: "name", flex: 1, minWidth: 150 },
    {
      headerName: "Site",
      colId: "site",
      width: 140,
      valueGetter: (p) =>
        p.data?.site_id
          ? sites.data?.sites.find((s) => s.id === p.data!.site_id)?.name ?? `#${p.data.site_id}`
          : "Every site",
    },
    { headerName: "Type", field: "credential_type", width: 110 },
    { headerName: "Connection", field: "connection_type", width: 120 },
    { headerName: "Username", field: "username", width: 150 },
    {
      headerName: "Holds",
      colId: "holds",
      flex: 1,
      minWidth: 180,
      valueGetter: (p) => {
        const c = p.data;
        if (!c) return "";
        if (c.reset_required) return "Secrets lost in a vault reset: enter them again";
        return [
          c.has_password && "password",
          c.has_private_key && "private key",
          c.has_private_key_passphrase && "key passphrase",
          c.has_become_password && "become password",
        ].filter(Boolean).join(", ") || "no secret";
      },
    },
    { headerName: "Changed", field: "updated_at", width: 120, valueFormatter: (p) => ago(p.value) },
    editDeleteColumn<Credential>(setEditing, setDeleting),
  ], [sites.data]);
  const rows = list.data?.credentials ?? [];
  return (
    <>
      <PageHeader
        title="Credentials and vault"
        subtitle="Accounts scripts run with, sealed by the vault"
        actions={
          <>
            <Button
              variant="outlined"
              disabled={!rows.length}
              onClick={() =>
                notify({
                  severity: "success",
                  message: `Exported ${exportGridCsv(grid.current, "credentials")} credential(s).`,
                })}
            >
              Export CSV
            </Button>
            <Button variant="contained" onClick={() => setEditing("new")}>New credential</Button>
          </>
        }
      />
      <DevModeBar
        what="the vault (rotate its key, force a reset)"
        offText="Off: the vault's key rotation and force reset are not available."
      />
      <Box sx={{ px: 3, pb: 1.5 }}>
        <VaultCard />
      </Box>
      {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
      <Box sx={{ flexGrow: 1, minHeight: 220, px: 3, pb: 2 }}>
        <DataGrid<Credential>
          label="Credentials"
          emptyText="No credentials yet"
          loading={list.isPending}
          rowData={rows}
          columnDefs={columns}
          getRowId={(p) => String(p.data.id)}
          onGridReady={(e) => (grid.current = e.api)}
          rowHeight={44}
        />
      </Box>
      {editing && <CredentialDialog cred={editing} onClose={() => setEditing(null)} />}
      <ConfirmDialog
        open={!!deleting}
        title={`Delete ${deleting?.name}?`}
        confirmLabel="Delete"
        destructive
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          await api(`/api/credentials/${deleting!.id}`, { method: "DELETE" });
          notify({ severity: "success", message: `${deleting!.name} deleted.` });
          void qc.invalidateQueries({ queryKey: ["credentials"] });
        }}
      >
        Jobs and scripts that use it fail until they name another credential.
      </ConfirmDialog>
    </>
  );
}
