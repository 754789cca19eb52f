/**
 * Users (admins): every operator account with role, source (local or directory), MFA,
 * sites and last sign-in; create a local user; change role and sites; reset password or
 * authenticator; disable; delete. The engine keeps at least one enabled local admin (a
 * directory admin is never the way back in): that account is marked, and the actions
 * that would break the rule are offered disabled with the reason.
 *
 * @module
 */
import MoreVertIcon from "@mui/icons-material/MoreVert";
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import FormControlLabel from "@mui/material/FormControlLabel";
import IconButton from "@mui/material/IconButton";
import ListItemText from "@mui/material/ListItemText";
import Menu from "@mui/material/Menu";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import Switch from "@mui/material/Switch";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef, GridApi } from "ag-grid-community";
import { useMemo, useRef, useState } from "react";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api } from "../api/client.ts";
import { useSites } from "../api/queries.ts";
import type { Role, UserAccount } from "../api/types.ts";
import { useMe } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { EnabledPill } from "../components/badges.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DataGrid, exportGridCsv } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { SitesPicker } from "../components/pickers.tsx";
import { ErrorState } from "../components/states.tsx";
import { ago } from "../lib/format.ts";

/** The one enabled local admin the engine will not let go, if there is exactly one. */
export function lastLocalAdmin(users: UserAccount[]): UserAccount | null {
  const admins = users.filter((u) =>
    u.role === "Admin" && !u.disabled && u.auth_source === "local"
  );
  return admins.length === 1 ? admins[0]! : null;
}

const LAST_ADMIN_REASON =
  "The last enabled local admin: the engine keeps one, so nobody is ever locked out. Create another local admin first.";

function CreateUserDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [username, setUsername] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("User");
  const [exempt, setExempt] = useState(false);
  const [siteIds, setSiteIds] = useState<number[]>([]);
  const create = useMutation({
    mutationFn: () =>
      api<UserAccount>("/api/users", {
        body: {
          username: username.trim(),
          password,
          role,
          ...(displayName.trim() ? { display_name: displayName.trim() } : {}),
          mfa_exempt: exempt,
          site_ids: role === "User" ? siteIds : [],
        },
      }),
    onSuccess: (u) => {
      notify({ severity: "success", message: `${u.username} created.` });
      void qc.invalidateQueries({ queryKey: ["users"] });
      setUsername("");
      setPassword("");
      setDisplayName("");
      onClose();
    },
  });
  return (
    <DialogFrame
      open={open}
      onClose={onClose}
      title="New local user"
      onSubmit={() => create.mutate()}
      actions={
        <Button
          type="submit"
          variant="contained"
          disabled={create.isPending || !username.trim() || password.length < 12}
        >
          Create user
        </Button>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        <TextField
          label="Username"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          autoComplete="off"
        />
        <TextField
          label="Display name (optional)"
          value={displayName}
          onChange={(e) => setDisplayName(e.target.value)}
        />
        <TextField
          label="Password"
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          helperText="At least 12 characters; the engine refuses common and breached ones"
          autoComplete="new-password"
        />
        <TextField
          select
          label="Role"
          value={role}
          onChange={(e) => setRole(e.target.value as Role)}
        >
          <MenuItem value="User">User: only the assigned sites, no administration</MenuItem>
          <MenuItem value="Admin">Admin: everything</MenuItem>
        </TextField>
        {role === "User" && <SitesPicker label="Sites" value={siteIds} onChange={setSiteIds} />}
        <FormControlLabel
          control={<Switch checked={exempt} onChange={(e) => setExempt(e.target.checked)} />}
          label="No authenticator app (MFA exempt)"
        />
        {create.error && <ErrorState error={create.error} title="Not created" />}
      </Stack>
    </DialogFrame>
  );
}

type Action = "role" | "sites" | "password" | "mfa" | "disable" | "delete";

/** `/users` (admins). */
export function UsersPage() {
  const me = useMe();
  const qc = useQueryClient();
  const { notify } = useToasts();
  const sites = useSites();
  const grid = useRef<GridApi<UserAccount> | null>(null);
  const [creating, setCreating] = useState(false);
  const [menu, setMenu] = useState<{ anchor: HTMLElement; u: UserAccount } | null>(null);
  const [action, setAction] = useState<{ what: Action; u: UserAccount } | null>(null);
  const [newPassword, setNewPassword] = useState("");
  const [siteIds, setSiteIds] = useState<number[]>([]);
  const list = useQuery({
    queryKey: ["users"],
    queryFn: ({ signal }) => api<{ users: UserAccount[] }>("/api/users", { signal }),
  });
  const users = list.data?.users ?? [];
  const last = lastLocalAdmin(users);
  const siteNames = (ids: number[]) =>
    ids.map((id) => sites.data?.sites.find((s) => s.id === id)?.name ?? `#${id}`).join(", ");
  const columns = useMemo<ColDef<UserAccount>[]>(() => [
    {
      headerName: "Username",
      field: "username",
      // Room for the "Last local admin" chip beside a name.
      flex: 2,
      minWidth: 200,
      cellRenderer: (p: { data?: UserAccount }) =>
        p.data && (
          <Stack direction="row" spacing={1} sx={{ alignItems: "center", height: "100%" }}>
            <span>{p.data.username}</span>
            {last?.id === p.data.id && (
              <Chip
                size="small"
                color="warning"
                variant="outlined"
                label="Last local admin"
                title={LAST_ADMIN_REASON}
              />
            )}
          </Stack>
        ),
    },
    { headerName: "Name", field: "display_name", flex: 1, minWidth: 90 },
    { headerName: "Role", field: "role", width: 80 },
    {
      headerName: "Source",
      field: "auth_source",
      width: 92,
      valueFormatter: (p) => (p.value === "local" ? "Local" : "Directory"),
    },
    {
      headerName: "Sites",
      colId: "sites",
      width: 120,
      valueGetter: (
        p,
      ) => (p.data?.role === "Admin" ? "All" : siteNames(p.data?.site_ids ?? []) || "None"),
    },
    {
      headerName: "MFA",
      colId: "mfa",
      width: 100,
      valueGetter: (
        p,
      ) => (p.data?.mfa_exempt ? "Exempt" : p.data?.mfa_enabled ? "Set up" : "Not set up"),
    },
    {
      headerName: "State",
      colId: "disabled",
      width: 100,
      valueGetter: (p) => (p.data?.disabled ? "Disabled" : "Active"),
      cellRenderer: (p: { data?: UserAccount }) =>
        p.data && <EnabledPill enabled={!p.data.disabled} onLabel="Active" />,
    },
    {
      headerName: "Last sign-in",
      field: "last_login",
      width: 112,
      valueFormatter: (p) => ago(p.value),
    },
    {
      headerName: "Actions",
      colId: "actions",
      width: 84,
      sortable: false,
      cellRenderer: (p: { data?: UserAccount }) =>
        p.data && (
          <IconButton
            size="small"
            aria-label={`More actions for ${p.data.username}`}
            aria-haspopup="menu"
            onClick={(e) => setMenu({ anchor: e.currentTarget, u: p.data! })}
          >
            <MoreVertIcon fontSize="small" />
          </IconButton>
        ),
    },
  ], [last, sites.data]);

  const done = (msg: string) => {
    notify({ severity: "success", message: msg });
    void qc.invalidateQueries({ queryKey: ["users"] });
  };
  const run = async () => {
    const { what, u } = action!;
    const base = `/api/users/${encodeURIComponent(u.username)}`;
    if (what === "role") {
      const role = u.role === "Admin" ? "User" : "Admin";
      await api(`${base}/role`, { body: { role } });
      done(`${u.username} is now ${role === "Admin" ? "an Admin" : "a User"}.`);
    } else if (what === "sites") {
      await api("/api/user_site_assignments/assign", {
        body: { usernames: [u.username], site_ids: siteIds },
      });
      done(`Sites of ${u.username} changed.`);
    } else if (what === "password") {
      await api(`${base}/reset_password`, { body: { password: newPassword } });
      setNewPassword("");
      done(`Password of ${u.username} set; their sessions ended.`);
    } else if (what === "mfa") {
      await api(`${base}/mfa`, { body: { reset: true } });
      done(`${u.username} sets up an authenticator app at the next sign-in.`);
    } else if (what === "disable") {
      await api(`${base}/disable`, { body: { disabled: !u.disabled } });
      done(`${u.username} ${u.disabled ? "enabled" : "disabled"}.`);
    } else {
      await api(base, { method: "DELETE" });
      done(`${u.username} deleted.`);
    }
  };
  const open = (what: Action) => () => {
    const u = menu!.u;
    setMenu(null);
    if (what === "sites") setSiteIds(u.site_ids);
    setAction({ what, u });
  };
  const guarded = menu ? last?.id === menu.u.id : false;
  const a = action;
  return (
    <>
      <PageHeader
        title="Users"
        subtitle={list.data ? `${users.length} accounts` : "Operator accounts"}
        actions={
          <>
            <Button
              variant="outlined"
              disabled={!users.length}
              onClick={() =>
                notify({
                  severity: "success",
                  message: `Exported ${exportGridCsv(grid.current, "users")} user(s).`,
                })}
            >
              Export CSV
            </Button>
            <Button variant="contained" onClick={() => setCreating(true)}>New user</Button>
          </>
        }
      />
      {last && (
        <Alert severity="info" sx={{ mx: 3, mb: 1.5 }}>
          {last.username}{" "}
          is the only enabled local admin. The engine refuses to delete, demote or disable it until
          another local admin exists — keep a local "break-glass" admin with a strong password and
          an authenticator app.
        </Alert>
      )}
      {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
      <Box sx={{ flexGrow: 1, minHeight: 300, px: 3, pb: 2 }}>
        <DataGrid<UserAccount>
          label="Users"
          loading={list.isPending}
          rowData={users}
          columnDefs={columns}
          getRowId={(p) => p.data.id}
          onGridReady={(e) => (grid.current = e.api)}
          rowHeight={44}
        />
      </Box>
      <Menu anchorEl={menu?.anchor} open={!!menu} onClose={() => setMenu(null)}>
        <MenuItem onClick={open("role")} disabled={guarded && menu?.u.role === "Admin"}>
          <ListItemText
            primary={menu?.u.role === "Admin" ? "Make a User…" : "Make an Admin…"}
            secondary={guarded ? "Not the last local admin" : undefined}
          />
        </MenuItem>
        {menu?.u.role === "User" && <MenuItem onClick={open("sites")}>Sites…</MenuItem>}
        {menu?.u.auth_source === "local" && (
          <MenuItem onClick={open("password")}>Set password…</MenuItem>
        )}
        <MenuItem onClick={open("mfa")}>Reset authenticator app…</MenuItem>
        <MenuItem
          onClick={open("disable")}
          disabled={guarded && !menu?.u.disabled || menu?.u.id === me.id}
        >
          <ListItemText
            primary={menu?.u.disabled ? "Enable" : "Disable…"}
            secondary={guarded
              ? "Not the last local admin"
              : menu?.u.id === me.id
              ? "Not your own account"
              : undefined}
          />
        </MenuItem>
        <MenuItem
          onClick={open("delete")}
          disabled={guarded || menu?.u.id === me.id}
          sx={{ color: "error.main" }}
        >
          <ListItemText
            primary="Delete…"
            secondary={guarded
              ? "Not the last local admin"
              : menu?.u.id === me.id
              ? "Not your own account"
              : undefined}
          />
        </MenuItem>
      </Menu>
      <CreateUserDialog open={creating} onClose={() => setCreating(false)} />
      <ConfirmDialog
        open={!!a}
        title={!a
          ? ""
          : a.what === "role"
          ? `Make ${a.u.username} ${a.u.role === "Admin" ? "a User" : "an Admin"}?`
          : a.what === "sites"
          ? `Sites of ${a.u.username}`
          : a.what === "password"
          ? `Set the password of ${a.u.username}`
          : a.what === "mfa"
          ? `Reset the authenticator app of ${a.u.username}?`
          : a.what === "disable"
          ? `${a.u.disabled ? "Enable" : "Disable"} ${a.u.username}?`
          : `Delete ${a.u.username}?`}
        confirmLabel={!a
          ? ""
          : a.what === "delete"
          ? "Delete"
          : a.what === "password"
          ? "Set password"
          : "Confirm"}
        destructive={a?.what === "delete" || a?.what === "disable"}
        typeToConfirm={a?.what === "delete" ? a.u.username : undefined}
        onClose={() => setAction(null)}
        onConfirm={run}
      >
        {a?.what === "role" && (a.u.auth_source !== "local"
          ? "A directory account's role follows its groups: this lasts until its next sign-in or sync."
          : a.u.role === "Admin"
          ? "A User sees only their sites and no administration."
          : "An Admin sees every site and every administration page.")}
        {a?.what === "sites" && (
          <Box sx={{ pt: 1 }}>
            <SitesPicker label="Sites" value={siteIds} onChange={setSiteIds} />
          </Box>
        )}
        {a?.what === "password" && (
          <Stack spacing={1} sx={{ pt: 1 }}>
            <TextField
              label="New password"
              type="password"
              value={newPassword}
              onChange={(e) => setNewPassword(e.target.value)}
              autoComplete="new-password"
              helperText="At least 12 characters. Their sessions end."
            />
          </Stack>
        )}
        {a?.what === "mfa" &&
          "Their current authenticator stops working; at the next sign-in they set up a new one."}
        {a?.what === "disable" && (a.u.disabled
          ? "They can sign in again."
          : "Their sessions and API tokens end at once and they cannot sign in.")}
        {a?.what === "delete" &&
          "The account, its sessions, passkeys and API tokens are deleted. The audit log keeps its name."}
        <Typography variant="caption" color="text.secondary" component="p" sx={{ mt: 1 }}>
          {last?.id === a?.u.id ? LAST_ADMIN_REASON : ""}
        </Typography>
      </ConfirmDialog>
    </>
  );
}
