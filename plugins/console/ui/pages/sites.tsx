/**
 * Sites: every site with its device counts (online / offline / overdue, live), and for
 * admins create, rename, delete, the enrollment code (revealed on request, rotated),
 * install commands and the auto-approval window.
 *
 * @module
 */
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import Link from "@mui/material/Link";
import MoreVertIcon from "@mui/icons-material/MoreVert";
import IconButton from "@mui/material/IconButton";
import Menu from "@mui/material/Menu";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import Alert from "@mui/material/Alert";
import FormControlLabel from "@mui/material/FormControlLabel";
import Switch from "@mui/material/Switch";
import Table from "@mui/material/Table";
import TableBody from "@mui/material/TableBody";
import TableCell from "@mui/material/TableCell";
import TableHead from "@mui/material/TableHead";
import TableRow from "@mui/material/TableRow";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef, GridApi } from "ag-grid-community";
import { useRef, useState } from "react";
import { Link as RouterLink } from "react-router";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api } from "../api/client.ts";
import { useSites } from "../api/queries.ts";
import type { InstallCommands, InstallToken, Site } from "../api/types.ts";
import { useIsAdmin } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { CopyField } from "../components/copy.tsx";
import { StatePill } from "../components/badges.tsx";
import { DataGrid, exportGridCsv } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { EmptyState, ErrorState } from "../components/states.tsx";
import { ago, when } from "../lib/format.ts";
import { AgentUpdateDialog } from "../jobs/agent_update_dialog.tsx";
import { PACKAGE_COMMAND, platformCommands, referenceAgentCommand } from "../lib/install.ts";

function Counts({ site }: { site: Site }) {
  const seg = (
    status: string,
    n: number,
    color: "success" | "default" | "warning",
    label: string,
  ) => (
    <Chip
      size="small"
      color={n ? color : "default"}
      variant={n && status !== "offline" ? "filled" : "outlined"}
      label={`${n} ${label}`}
      component={RouterLink}
      to={`/devices?site=${site.id}&status=${status}`}
      clickable
      aria-label={`${n} ${label} devices in ${site.name}`}
      sx={n ? undefined : { color: "text.secondary" }}
    />
  );
  return (
    <Stack direction="row" spacing={0.5} sx={{ py: 0.75 }}>
      {seg("online", site.online_count, "success", "online")}
      {seg("offline", site.offline_count, "default", "offline")}
      {seg("overdue", site.overdue_count, "warning", "overdue")}
    </Stack>
  );
}

function SiteForm(
  { site, onClose }: { site: Site | null | "new"; onClose: () => void },
) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const editing = site && site !== "new" ? site : null;
  const [name, setName] = useState(editing?.name ?? "");
  const [description, setDescription] = useState("");
  const save = useMutation({
    mutationFn: () =>
      editing
        ? api<Site>("/api/sites/rename", { body: { id: editing.id, new_name: name.trim() } })
        : api<Site>("/api/sites", { body: { name: name.trim(), description: description.trim() } }),
    onSuccess: (s) => {
      notify({
        severity: "success",
        message: editing ? `Renamed to ${s.name}.` : `Site ${s.name} created.`,
      });
      void qc.invalidateQueries({ queryKey: ["sites"] });
      onClose();
    },
  });
  return (
    <DialogFrame
      open={!!site}
      onClose={onClose}
      title={editing ? `Rename ${editing.name}` : "New site"}
      onSubmit={() => name.trim() && save.mutate()}
      actions={
        <Button type="submit" variant="contained" disabled={!name.trim() || save.isPending}>
          {editing ? "Rename" : "Create site"}
        </Button>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        <TextField
          label="Site name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          autoFocus
        />
        {!editing && (
          <TextField
            label="Description (optional)"
            value={description}
            onChange={(e) => setDescription(e.target.value)}
            multiline
            minRows={2}
          />
        )}
        {save.error && <ErrorState error={save.error} title="Not saved" />}
      </Stack>
    </DialogFrame>
  );
}

interface ReleasesReply {
  releases: Array<{ version: string; channel: string }>;
  stable: string | null;
  beta: string | null;
}

const TOKEN_HOURS = [1, 24, 72, 168, 720];

/** The per-platform commands, each with its copy button. */
function PlatformCommands({ commands }: { commands: InstallCommands }) {
  return (
    <Stack spacing={1.5}>
      {platformCommands(commands).map((c) => (
        <Box key={c.platform}>
          <Typography variant="subtitle2" component="h4" sx={{ mb: 0.5 }}>{c.label}</Typography>
          <CopyField label={`Install command (${c.platform})`} value={c.command} multiline />
        </Box>
      ))}
      <Typography variant="caption" color="text.secondary">
        Agent {commands.version}; the token in these commands expires {when(commands.expires_at)}.
      </Typography>
    </Stack>
  );
}

/** Create an install token: how long, how many machines, admitted without review or not. */
function NewTokenForm(
  { site, onCreated }: { site: Site; onCreated: (t: InstallToken) => void },
) {
  const [hours, setHours] = useState(24);
  const [maxUses, setMaxUses] = useState("");
  const [autoApprove, setAutoApprove] = useState(true);
  const [note, setNote] = useState("");
  const qc = useQueryClient();
  const create = useMutation({
    mutationFn: () =>
      api<InstallToken>(`/api/sites/${site.id}/install-tokens`, {
        body: {
          expires_in_hours: hours,
          ...(maxUses.trim() ? { max_uses: Number(maxUses) } : {}),
          auto_approve: autoApprove,
          note: note.trim(),
        },
      }),
    onSuccess: (t) => {
      onCreated(t);
      void qc.invalidateQueries({ queryKey: ["install-tokens", site.id] });
      void qc.invalidateQueries({ queryKey: ["sites"] });
    },
  });
  const badUses = maxUses.trim() !== "" &&
    (!/^\d+$/.test(maxUses.trim()) || Number(maxUses) < 1 || Number(maxUses) > 100_000);
  return (
    <Box
      component="form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (!badUses) create.mutate();
      }}
    >
      <Stack
        direction="row"
        spacing={1.5}
        sx={{ alignItems: "flex-start", flexWrap: "wrap", rowGap: 1.5 }}
      >
        <TextField
          select
          size="small"
          label="Expires after"
          value={hours}
          onChange={(e) => setHours(Number(e.target.value))}
          sx={{ width: 150 }}
        >
          {TOKEN_HOURS.map((h) => (
            <MenuItem key={h} value={h}>
              {h < 24 ? `${h} hour` : `${h / 24} day${h > 24 ? "s" : ""}`}
            </MenuItem>
          ))}
        </TextField>
        <TextField
          size="small"
          label="Most machines (optional)"
          value={maxUses}
          onChange={(e) => setMaxUses(e.target.value)}
          error={badUses}
          helperText={badUses ? "A whole number from 1" : undefined}
          sx={{ width: 190 }}
          slotProps={{ htmlInput: { inputMode: "numeric" } }}
        />
        <TextField
          size="small"
          label="Note (optional)"
          value={note}
          onChange={(e) => setNote(e.target.value)}
          sx={{ width: 200 }}
        />
        <FormControlLabel
          control={
            <Switch
              checked={autoApprove}
              onChange={(e) => setAutoApprove(e.target.checked)}
            />
          }
          label="Admit without review"
        />
        <Button type="submit" variant="contained" disabled={create.isPending || badUses}>
          Create install token
        </Button>
      </Stack>
      {create.error && <ErrorState error={create.error} title="No token created" />}
    </Box>
  );
}

/** A site's install tokens: state, uses, expiry; revoke. */
function TokenList({ site }: { site: Site }) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const tokens = useQuery({
    queryKey: ["install-tokens", site.id],
    queryFn: ({ signal }) =>
      api<{ tokens: InstallToken[] }>(`/api/sites/${site.id}/install-tokens`, { signal }),
  });
  const revoke = useMutation({
    mutationFn: (t: InstallToken) =>
      api(`/api/sites/${site.id}/install-tokens/${t.id}/revoke`, { method: "POST" }),
    onSuccess: (_, t) => {
      notify({ severity: "success", message: `Install token ${t.token_prefix}… revoked.` });
      void qc.invalidateQueries({ queryKey: ["install-tokens", site.id] });
      void qc.invalidateQueries({ queryKey: ["sites"] });
    },
    onError: (err) => notify({ severity: "error", message: (err as Error).message }),
  });
  if (tokens.error) return <ErrorState error={tokens.error} onRetry={() => tokens.refetch()} />;
  const list = tokens.data?.tokens ?? [];
  if (!list.length) {
    return (
      <Typography variant="body2" color="text.secondary">
        {tokens.isPending ? "Loading install tokens…" : "No install tokens yet."}
      </Typography>
    );
  }
  return (
    <Table size="small" aria-label={`Install tokens of ${site.name}`}>
      <TableHead>
        <TableRow>
          <TableCell>Token</TableCell>
          <TableCell>State</TableCell>
          <TableCell>Machines</TableCell>
          <TableCell>Expires</TableCell>
          <TableCell>Note</TableCell>
          <TableCell>Action</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {list.slice(0, 20).map((t) => (
          <TableRow key={t.id}>
            <TableCell>
              <code>{t.token_prefix}…</code>
            </TableCell>
            <TableCell>
              <StatePill state={t.state} />
            </TableCell>
            <TableCell>
              {t.use_count}
              {t.max_uses !== null ? ` of ${t.max_uses}` : ""}
              {t.refused_count ? ` (${t.refused_count} refused)` : ""}
            </TableCell>
            <TableCell>{when(t.expires_at)}</TableCell>
            <TableCell>{t.note || (t.auto_approve ? "" : "needs approval")}</TableCell>
            <TableCell>
              {t.state === "active" && (
                <Button
                  size="small"
                  color="error"
                  onClick={() => revoke.mutate(t)}
                  aria-label={`Revoke install token ${t.token_prefix}`}
                >
                  Revoke
                </Button>
              )}
            </TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

function InstallDialog(
  { site, serverUrl, onClose }: { site: Site | null; serverUrl: string; onClose: () => void },
) {
  const qc = useQueryClient();
  const [revealed, setRevealed] = useState(false);
  const [rotating, setRotating] = useState(false);
  const [current, setCurrent] = useState<Site | null>(null);
  const [created, setCreated] = useState<InstallToken | null>(null);
  const s = current?.id === site?.id ? current : site;
  const releases = useQuery({
    queryKey: ["agent-releases"],
    queryFn: ({ signal }) => api<ReleasesReply>("/api/agent-updates/releases", { signal }),
    enabled: !!site,
  });
  const close = () => {
    setRevealed(false);
    setCurrent(null);
    setCreated(null);
    onClose();
  };
  const packaged = (releases.data?.releases.length ?? 0) > 0;
  const commands = created?.install_commands ?? s?.install_commands ?? null;
  const reference = s ? referenceAgentCommand(s, serverUrl) : null;
  return (
    <DialogFrame
      open={!!site}
      onClose={close}
      title={`Add devices to ${s?.name ?? ""}`}
      maxWidth="md"
    >
      <Stack spacing={2}>
        <Typography color="text.secondary">
          Run one command on each machine. The agent installs as a service, enrolls into this site
          with an install token, and connects; with "admit without review" it appears in Devices at
          once, otherwise in Device approvals.
        </Typography>
        {releases.error && <ErrorState error={releases.error} title="Agent packages unknown" />}
        {releases.data && !packaged && (
          <Alert severity="warning" data-testid="no-packages">
            No agent packages are built yet, so there is nothing to install. Build them on the
            engine's machine with{" "}
            <code>{PACKAGE_COMMAND}</code>; the engine finds them within a minute. Meanwhile the
            reference agent below enrolls a test machine.
          </Alert>
        )}
        {packaged && (
          <>
            <Typography variant="subtitle1" component="h3">Install commands</Typography>
            {created?.token && (
              <Alert severity="success">
                Install token created. Its commands are below; the token is shown only here, and the
                site keeps its newest active token's commands for admins.
              </Alert>
            )}
            {commands ? <PlatformCommands commands={commands} /> : (
              <Alert severity="info">
                This site has no active install token: create one to get its install commands.
              </Alert>
            )}
            {s && <NewTokenForm site={s} onCreated={setCreated} />}
            <Typography variant="subtitle1" component="h3">Install tokens</Typography>
            {s && <TokenList site={s} />}
          </>
        )}
        <Typography variant="subtitle1" component="h3">Enrollment code</Typography>
        <CopyField label="Engine address" value={serverUrl} />
        {!s?.enrollment_code && (
          <Alert severity="warning">
            The enrollment code cannot be shown: the vault is locked or the code was reset. Rotate
            the code to issue a new one.
          </Alert>
        )}
        {s?.enrollment_code && !revealed && (
          <Box>
            <Button variant="outlined" onClick={() => setRevealed(true)}>
              Reveal enrollment code
            </Button>
            <Typography variant="caption" color="text.secondary" sx={{ ml: 2 }}>
              Anyone with the code can ask to enroll a device in this site.
            </Typography>
          </Box>
        )}
        {s?.enrollment_code && revealed && (
          <>
            <CopyField label="Enrollment code" value={s.enrollment_code} />
            {reference && (
              <Box>
                <Typography variant="subtitle2" component="h4" sx={{ mb: 0.5 }}>
                  {reference.label}
                </Typography>
                <CopyField
                  label={`Install command (${reference.platform})`}
                  value={reference.command}
                  multiline
                />
              </Box>
            )}
          </>
        )}
        <Box>
          <Button variant="outlined" onClick={() => setRotating(true)}>
            Rotate enrollment code…
          </Button>
        </Box>
      </Stack>
      <ConfirmDialog
        open={rotating}
        title="Rotate the enrollment code?"
        confirmLabel="Rotate code"
        destructive
        onClose={() => setRotating(false)}
        onConfirm={async () => {
          const next = await api<Site>("/api/sites/rotate_code", { body: { site_id: site!.id } });
          setCurrent(next);
          setRevealed(true);
          void qc.invalidateQueries({ queryKey: ["sites"] });
        }}
      >
        The current code stops working at once. Enrolled devices are not affected; devices not yet
        enrolled need the new code. Install tokens are not affected.
      </ConfirmDialog>
    </DialogFrame>
  );
}

const WINDOWS = [15, 60, 240, 1440];

function AutoApprovalDialog({ site, onClose }: { site: Site | null; onClose: () => void }) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [minutes, setMinutes] = useState(60);
  const set = useMutation({
    mutationFn: (m: number) =>
      api<Site>(`/api/sites/${site!.id}/auto-approval`, { body: { minutes: m } }),
    onSuccess: (s) => {
      notify({
        severity: "success",
        message: s.auto_approve_until
          ? `${s.name} approves new devices until ${when(s.auto_approve_until)}.`
          : `Auto-approval of ${s.name} closed.`,
      });
      void qc.invalidateQueries({ queryKey: ["sites"] });
      onClose();
    },
  });
  const open = site?.auto_approve_until && Date.parse(site.auto_approve_until) > Date.now();
  return (
    <DialogFrame
      open={!!site}
      onClose={onClose}
      title={`Auto-approval for ${site?.name ?? ""}`}
      onSubmit={() => set.mutate(minutes)}
      actions={
        <>
          {open && (
            <Button color="warning" onClick={() => set.mutate(0)} disabled={set.isPending}>
              Close window
            </Button>
          )}
          <Button type="submit" variant="contained" disabled={set.isPending}>
            {open ? "Extend window" : "Open window"}
          </Button>
        </>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        <Typography color="text.secondary">
          While the window is open, devices enrolling with this site's code are admitted without
          review (hostname conflicts still wait for you).
        </Typography>
        {open && <Alert severity="info">Open until {when(site!.auto_approve_until)}.</Alert>}
        <TextField
          select
          label="Window length"
          value={minutes}
          onChange={(e) => setMinutes(Number(e.target.value))}
        >
          {WINDOWS.map((m) => (
            <MenuItem key={m} value={m}>
              {m < 60 ? `${m} minutes` : `${m / 60} hour${m > 60 ? "s" : ""}`}
            </MenuItem>
          ))}
        </TextField>
        {set.error && <ErrorState error={set.error} title="Not changed" />}
      </Stack>
    </DialogFrame>
  );
}

/** `/sites`. */
export function SitesPage() {
  const admin = useIsAdmin();
  const sites = useSites();
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [form, setForm] = useState<Site | null | "new">(null);
  const [install, setInstall] = useState<Site | null>(null);
  const [autoSite, setAutoSite] = useState<Site | null>(null);
  const [updatingSite, setUpdatingSite] = useState<Site | null>(null);
  const [deleting, setDeleting] = useState<Site | null>(null);
  const [rowMenu, setRowMenu] = useState<{ anchor: HTMLElement; site: Site } | null>(null);
  const grid = useRef<GridApi<Site> | null>(null);
  const pick = (fn: (s: Site) => void) => () => {
    const site = rowMenu!.site;
    setRowMenu(null);
    fn(site);
  };
  const serverUrl = sites.data?.public_base_url ?? location.origin;

  const columns: ColDef<Site>[] = [
    {
      headerName: "Site",
      field: "name",
      flex: 1.2,
      minWidth: 150,
      cellRenderer: (p: { data?: Site }) =>
        p.data && (
          <Link component={RouterLink} to={`/devices?site=${p.data.id}`}>{p.data.name}</Link>
        ),
    },
    { headerName: "Description", field: "description", flex: 1.2, minWidth: 120 },
    { headerName: "Devices", field: "device_count", width: 84, type: "numericColumn" },
    {
      headerName: "Status",
      colId: "status",
      width: 270,
      sortable: false,
      cellRenderer: (p: { data?: Site }) => p.data && <Counts site={p.data} />,
    },
    {
      headerName: "Auto-approval",
      colId: "auto",
      width: 150,
      valueGetter: (p) =>
        p.data?.auto_approve_until && Date.parse(p.data.auto_approve_until) > Date.now()
          ? `until ${ago(p.data.auto_approve_until).replace(/^in /, "")}`
          : "Off",
    },
  ];
  if (admin) {
    columns.push({
      headerName: "Actions",
      colId: "actions",
      width: 200,
      sortable: false,
      cellRenderer: (p: { data?: Site }) =>
        p.data && (
          <Stack direction="row" spacing={0.5} sx={{ alignItems: "center", height: "100%" }}>
            <Button
              size="small"
              variant="outlined"
              onClick={() =>
                setInstall(p.data!)}
              aria-label={`Add devices to ${p.data.name}`}
            >
              Add devices
            </Button>
            <IconButton
              size="small"
              aria-label={`More actions for ${p.data.name}`}
              aria-haspopup="menu"
              onClick={(e) =>
                setRowMenu({ anchor: e.currentTarget, site: p.data! })}
            >
              <MoreVertIcon fontSize="small" />
            </IconButton>
          </Stack>
        ),
    });
  }

  return (
    <>
      <PageHeader
        title="Sites"
        subtitle="Each site has its own enrollment code; its devices and operators belong to it."
        actions={
          <>
            <Button
              variant="outlined"
              disabled={!sites.data?.sites.length}
              onClick={() => {
                const n = exportGridCsv(grid.current, "sites");
                notify({ severity: "success", message: `Exported ${n} site(s).` });
              }}
            >
              Export CSV
            </Button>
            {admin && <Button variant="contained" onClick={() => setForm("new")}>New site</Button>}
          </>
        }
      />
      {sites.error && <ErrorState error={sites.error} onRetry={() => sites.refetch()} />}
      {sites.data && !sites.data.sites.length
        ? (
          <EmptyState
            title="No sites yet"
            action={admin
              ? (
                <Button variant="contained" onClick={() => setForm("new")}>
                  Create the first site
                </Button>
              )
              : undefined}
          >
            {admin
              ? "Create a site, then add devices with its enrollment code."
              : "No site is assigned to you. Ask an admin for access."}
          </EmptyState>
        )
        : (
          <Box sx={{ px: 3, pb: 3 }}>
            <DataGrid<Site>
              label="Sites"
              height="auto"
              domLayout="autoHeight"
              loading={sites.isPending}
              rowData={sites.data?.sites ?? []}
              getRowId={(p) => String(p.data.id)}
              onGridReady={(e) => (grid.current = e.api)}
              columnDefs={columns}
              rowHeight={44}
            />
          </Box>
        )}
      <Menu anchorEl={rowMenu?.anchor} open={!!rowMenu} onClose={() => setRowMenu(null)}>
        <MenuItem onClick={pick(setAutoSite)}>Auto-approval window…</MenuItem>
        <MenuItem onClick={pick(setUpdatingSite)}>Update agents…</MenuItem>
        <MenuItem onClick={pick(setForm)}>Rename…</MenuItem>
        <MenuItem onClick={pick(setDeleting)} sx={{ color: "error.main" }}>Delete…</MenuItem>
      </Menu>
      <SiteForm
        key={form === "new" ? "new" : form?.id ?? "none"}
        site={form}
        onClose={() => setForm(null)}
      />
      <InstallDialog site={install} serverUrl={serverUrl} onClose={() => setInstall(null)} />
      <AutoApprovalDialog site={autoSite} onClose={() => setAutoSite(null)} />
      {updatingSite && (
        <AgentUpdateDialog
          devices={[]}
          siteId={updatingSite.id}
          onClose={() => setUpdatingSite(null)}
        />
      )}
      <ConfirmDialog
        open={!!deleting}
        title={`Delete ${deleting?.name}?`}
        confirmLabel="Delete site"
        destructive
        typeToConfirm={deleting?.name}
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          await api("/api/sites/delete", { body: { ids: [deleting!.id] } });
          notify({ severity: "success", message: `Site ${deleting!.name} deleted.` });
          void qc.invalidateQueries({ queryKey: ["sites"] });
        }}
      >
        Its {deleting?.device_count ?? 0}{" "}
        device(s) stay enrolled but belong to no site, and its enrollment code stops working.
      </ConfirmDialog>
    </>
  );
}
