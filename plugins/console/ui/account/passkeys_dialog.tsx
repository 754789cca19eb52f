/**
 * Your passkeys: list, add (after re-entering the password), rename and delete. The
 * browser part of WebAuthn is `@simplewebauthn/browser`; the engine verifies.
 *
 * @module
 */
import Button from "@mui/material/Button";
import IconButton from "@mui/material/IconButton";
import List from "@mui/material/List";
import ListItem from "@mui/material/ListItem";
import ListItemText from "@mui/material/ListItemText";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import DeleteIcon from "@mui/icons-material/Delete";
import EditIcon from "@mui/icons-material/Edit";
import { browserSupportsWebAuthn, startRegistration } from "@simplewebauthn/browser";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client.ts";
import type { Passkey } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { EmptyState, ErrorState, Loading } from "../components/states.tsx";
import { ago } from "../lib/format.ts";
import { DialogFrame } from "./dialog_frame.tsx";

/** Passkey management. */
export function PasskeysDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const list = useQuery({
    queryKey: ["passkeys"],
    queryFn: ({ signal }) => api<{ passkeys: Passkey[] }>("/api/auth/passkeys", { signal }),
    enabled: open,
  });
  const [adding, setAdding] = useState(false);
  const [password, setPassword] = useState("");
  const [label, setLabel] = useState("");
  const [renaming, setRenaming] = useState<Passkey | null>(null);
  const [newLabel, setNewLabel] = useState("");
  const [deleting, setDeleting] = useState<Passkey | null>(null);
  const supported = browserSupportsWebAuthn() && globalThis.isSecureContext;

  const add = useMutation({
    mutationFn: async () => {
      const options = await api<Record<string, unknown>>("/api/auth/passkeys/register/options", {
        body: { current_password: password },
      });
      // deno-lint-ignore no-explicit-any -- the options are the library's own JSON type
      const response = await startRegistration({ optionsJSON: options as any });
      return api<Passkey>("/api/auth/passkeys/register/verify", {
        body: { response, ...(label.trim() ? { label: label.trim() } : {}) },
      });
    },
    onSuccess: (k) => {
      notify({ severity: "success", message: `Passkey “${k.label}” added. Other sessions ended.` });
      setAdding(false);
      setPassword("");
      setLabel("");
      void qc.invalidateQueries({ queryKey: ["passkeys"] });
      void qc.invalidateQueries({ queryKey: ["me"] });
    },
  });
  const rename = useMutation({
    mutationFn: (k: Passkey) =>
      api<Passkey>(`/api/auth/passkeys/${k.id}`, {
        method: "PATCH",
        body: { label: newLabel.trim() },
      }),
    onSuccess: () => {
      setRenaming(null);
      void qc.invalidateQueries({ queryKey: ["passkeys"] });
    },
  });

  return (
    <DialogFrame open={open} onClose={onClose} title="Passkeys" maxWidth="sm">
      <Typography color="text.secondary" sx={{ mb: 1 }}>
        A passkey signs you in without password and code: your device checks your PIN, face or
        fingerprint.
      </Typography>
      {list.isPending && <Loading label="Loading passkeys" />}
      {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
      {list.data && !list.data.passkeys.length && !adding && <EmptyState title="No passkeys yet" />}
      {list.data && list.data.passkeys.length > 0 && (
        <List dense aria-label="Your passkeys">
          {list.data.passkeys.map((k) =>
            renaming?.id === k.id
              ? (
                <ListItem key={k.id}>
                  <Stack
                    direction="row"
                    spacing={1}
                    sx={{ width: "100%" }}
                    component="form"
                    onSubmit={(e) => {
                      e.preventDefault();
                      if (newLabel.trim()) rename.mutate(k);
                    }}
                  >
                    <TextField
                      size="small"
                      label="Passkey name"
                      value={newLabel}
                      onChange={(e) => setNewLabel(e.target.value)}
                      autoFocus
                      fullWidth
                    />
                    <Button type="submit" disabled={!newLabel.trim()}>Save</Button>
                    <Button onClick={() => setRenaming(null)}>Cancel</Button>
                  </Stack>
                </ListItem>
              )
              : (
                <ListItem
                  key={k.id}
                  secondaryAction={
                    <>
                      <IconButton
                        aria-label={`Rename passkey ${k.label}`}
                        onClick={() => {
                          setRenaming(k);
                          setNewLabel(k.label);
                        }}
                      >
                        <EditIcon />
                      </IconButton>
                      <IconButton
                        aria-label={`Delete passkey ${k.label}`}
                        onClick={() => setDeleting(k)}
                      >
                        <DeleteIcon />
                      </IconButton>
                    </>
                  }
                >
                  <ListItemText
                    primary={k.label}
                    secondary={`Added ${ago(k.created_at)} · last used ${ago(k.last_used_at)}`}
                  />
                </ListItem>
              )
          )}
        </List>
      )}
      {rename.error && <ErrorState error={rename.error} title="Not renamed" />}
      {!supported && (
        <Typography color="warning.main" sx={{ mt: 1 }}>
          This browser cannot use passkeys here (passkeys need HTTPS or localhost).
        </Typography>
      )}
      {adding
        ? (
          <Stack
            spacing={2}
            sx={{ mt: 2 }}
            component="form"
            onSubmit={(e) => {
              e.preventDefault();
              if (password) add.mutate();
            }}
          >
            <TextField
              label="Current password"
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              autoFocus
              helperText="Adding a sign-in method needs your password again."
            />
            <TextField
              label="Passkey name"
              value={label}
              onChange={(e) => setLabel(e.target.value)}
              placeholder="e.g. Work laptop"
            />
            {add.error && <ErrorState error={add.error} title="Passkey not added" />}
            <Stack direction="row" spacing={1}>
              <Button type="submit" variant="contained" disabled={!password || add.isPending}>
                Create passkey
              </Button>
              <Button onClick={() => setAdding(false)}>Cancel</Button>
            </Stack>
          </Stack>
        )
        : (
          <Button
            sx={{ mt: 1 }}
            variant="outlined"
            disabled={!supported}
            onClick={() => setAdding(true)}
          >
            Add a passkey
          </Button>
        )}
      <ConfirmDialog
        open={!!deleting}
        title="Delete passkey?"
        confirmLabel="Delete"
        destructive
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          await api(`/api/auth/passkeys/${deleting!.id}`, { method: "DELETE" });
          notify({ severity: "success", message: `Passkey “${deleting!.label}” deleted.` });
          void qc.invalidateQueries({ queryKey: ["passkeys"] });
        }}
      >
        “{deleting?.label}” will no longer sign you in. Your other sessions end.
      </ConfirmDialog>
    </DialogFrame>
  );
}
