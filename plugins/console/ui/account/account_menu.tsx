/**
 * The account menu: change password, reset TOTP, passkeys, sessions, API tokens, sign out.
 *
 * @module
 */
import Divider from "@mui/material/Divider";
import IconButton from "@mui/material/IconButton";
import ListItemText from "@mui/material/ListItemText";
import Menu from "@mui/material/Menu";
import MenuItem from "@mui/material/MenuItem";
import { type ReactNode, useState } from "react";
import { useMe, useSignOut } from "../app/session.tsx";
import { ChangePasswordDialog, ResetMfaDialog } from "./password_dialogs.tsx";
import { PasskeysDialog } from "./passkeys_dialog.tsx";
import { SessionsDialog, TokensDialog } from "./sessions_dialog.tsx";
import { AlertMailDialog } from "./alert_mail_dialog.tsx";

type Open = "password" | "mfa" | "passkeys" | "sessions" | "tokens" | "mail" | null;

/** The account button and its dialogs. */
export function AccountMenu({ icon }: { icon: ReactNode }) {
  const me = useMe();
  const signOut = useSignOut();
  const [anchor, setAnchor] = useState<HTMLElement | null>(null);
  const [open, setOpen] = useState<Open>(null);
  const pick = (what: Open) => () => {
    setAnchor(null);
    setOpen(what);
  };
  const local = me.auth_source === "local";
  return (
    <>
      <IconButton
        color="inherit"
        aria-label={`Account of ${me.username}`}
        aria-haspopup="menu"
        aria-expanded={!!anchor}
        onClick={(e) => setAnchor(e.currentTarget)}
      >
        {icon}
      </IconButton>
      <Menu anchorEl={anchor} open={!!anchor} onClose={() => setAnchor(null)}>
        <MenuItem disabled>
          <ListItemText primary={me.display_name || me.username} secondary={me.role} />
        </MenuItem>
        <Divider />
        {local && <MenuItem onClick={pick("password")}>Change password</MenuItem>}
        {!me.mfa_exempt && <MenuItem onClick={pick("mfa")}>Reset authenticator app</MenuItem>}
        <MenuItem onClick={pick("passkeys")}>Passkeys</MenuItem>
        <MenuItem onClick={pick("sessions")}>My sessions</MenuItem>
        <MenuItem onClick={pick("tokens")}>API tokens</MenuItem>
        <MenuItem onClick={pick("mail")}>Alert mail</MenuItem>
        <Divider />
        <MenuItem
          onClick={() => {
            setAnchor(null);
            void signOut();
          }}
        >
          Sign out
        </MenuItem>
      </Menu>
      <ChangePasswordDialog open={open === "password"} onClose={() => setOpen(null)} />
      <ResetMfaDialog open={open === "mfa"} onClose={() => setOpen(null)} />
      <PasskeysDialog open={open === "passkeys"} onClose={() => setOpen(null)} />
      <SessionsDialog open={open === "sessions"} onClose={() => setOpen(null)} />
      <TokensDialog open={open === "tokens"} onClose={() => setOpen(null)} />
      <AlertMailDialog open={open === "mail"} onClose={() => setOpen(null)} />
    </>
  );
}
