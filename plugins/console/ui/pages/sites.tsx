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
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef } from "ag-grid-community";
import { useState } from "react";
import { Link as RouterLink } from "react-router";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api } from "../api/client.ts";
import type { Site, SitesReply } from "../api/types.ts";
import { useIsAdmin } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { CopyField } from "../components/copy.tsx";
import { DataGrid } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { EmptyState, ErrorState } from "../components/states.tsx";
import { ago, when } from "../lib/format.ts";
import { installCommands } from "../lib/install.ts";

/** The sites query (shared with pickers on other pages). */
export function useSites() {
  return useQuery({
    queryKey: ["sites"],
    queryFn: ({ signal }) => api<SitesReply>("/api/sites", { signal }),
  });
}

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

function InstallDialog(
  { site, serverUrl, onClose }: { site: Site | null; serverUrl: string; onClose: () => void },
) {
  const qc = useQueryClient();
  const [revealed, setRevealed] = useState(false);
  const [rotating, setRotating] = useState(false);
  const [current, setCurrent] = useState<Site | null>(null);
  const s = current?.id === site?.id ? current : site;
  const close = () => {
    setRevealed(false);
    setCurrent(null);
    onClose();
  };
  const commands = s ? installCommands(s, serverUrl) : [];
  return (
    <DialogFrame
      open={!!site}
      onClose={close}
      title={`Add devices to ${s?.name ?? ""}`}
      maxWidth="md"
    >
      <Stack spacing={2}>
        <Typography color="text.secondary">
          A device enrolls with the engine's address and this site's enrollment code. It then waits
          in Device approvals, unless the site's auto-approval window is open.
        </Typography>
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
            {commands.map((c) => (
              <Box key={c.platform}>
                <Typography variant="subtitle2" component="h3" sx={{ mb: 0.5 }}>
                  {c.label ?? c.platform}
                </Typography>
                <CopyField label={`Install command (${c.platform})`} value={c.command} multiline />
              </Box>
            ))}
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
        enrolled need the new code.
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
  const [deleting, setDeleting] = useState<Site | null>(null);
  const [rowMenu, setRowMenu] = useState<{ anchor: HTMLElement; site: Site } | null>(null);
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
      minWidth: 160,
      cellRenderer: (p: { data?: Site }) =>
        p.data && (
          <Link component={RouterLink} to={`/devices?site=${p.data.id}`}>{p.data.name}</Link>
        ),
    },
    { headerName: "Description", field: "description", flex: 1.2, minWidth: 140 },
    { headerName: "Devices", field: "device_count", width: 100, type: "numericColumn" },
    {
      headerName: "Status",
      colId: "status",
      width: 290,
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
        actions={admin && (
          <Button variant="contained" onClick={() => setForm("new")}>New site</Button>
        )}
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
              columnDefs={columns}
              rowHeight={44}
            />
          </Box>
        )}
      <Menu anchorEl={rowMenu?.anchor} open={!!rowMenu} onClose={() => setRowMenu(null)}>
        <MenuItem onClick={pick(setAutoSite)}>Auto-approval window…</MenuItem>
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
