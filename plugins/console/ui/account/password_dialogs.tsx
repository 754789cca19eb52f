/**
 * Change your own password, and clear your own TOTP (set up again at the next sign-in).
 * Both ask for the current password and end your other sessions.
 *
 * @module
 */
import Button from "@mui/material/Button";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client.ts";
import { useToasts } from "../app/toasts.tsx";
import { ErrorState } from "../components/states.tsx";
import { DialogFrame } from "./dialog_frame.tsx";

/** Change password. */
export function ChangePasswordDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const { notify } = useToasts();
  const mismatch = again.length > 0 && next !== again;
  const change = useMutation({
    mutationFn: () =>
      api<{ revoked_sessions: number }>("/api/auth/password/reset", {
        body: { current_password: current, new_password: next },
      }),
    onSuccess: (r) => {
      notify({
        severity: "success",
        message: `Password changed${
          r.revoked_sessions ? `; ${r.revoked_sessions} other session(s) ended` : ""
        }.`,
      });
      close();
    },
  });
  const close = () => {
    setCurrent("");
    setNext("");
    setAgain("");
    change.reset();
    onClose();
  };
  return (
    <DialogFrame
      open={open}
      onClose={close}
      title="Change password"
      onSubmit={() => !mismatch && next && change.mutate()}
      actions={
        <Button
          type="submit"
          variant="contained"
          disabled={!current || !next || mismatch || change.isPending}
        >
          Change password
        </Button>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        <TextField
          label="Current password"
          type="password"
          autoComplete="current-password"
          value={current}
          onChange={(e) => setCurrent(e.target.value)}
          autoFocus
        />
        <TextField
          label="New password"
          type="password"
          autoComplete="new-password"
          value={next}
          onChange={(e) => setNext(e.target.value)}
          helperText="At least 12 characters; a passphrase is best."
        />
        <TextField
          label="New password again"
          type="password"
          autoComplete="new-password"
          value={again}
          onChange={(e) => setAgain(e.target.value)}
          error={mismatch}
          helperText={mismatch ? "The two new passwords differ" : " "}
        />
        {change.error && <ErrorState error={change.error} title="Password not changed" />}
      </Stack>
    </DialogFrame>
  );
}

/** Reset own MFA. */
export function ResetMfaDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const [current, setCurrent] = useState("");
  const { notify } = useToasts();
  const reset = useMutation({
    mutationFn: () =>
      api<{ revoked_sessions: number }>("/api/auth/mfa/reset", {
        body: { current_password: current },
      }),
    onSuccess: () => {
      notify({
        severity: "success",
        message: "Authenticator app removed. You will set up a new one at your next sign-in.",
      });
      close();
    },
  });
  const close = () => {
    setCurrent("");
    reset.reset();
    onClose();
  };
  return (
    <DialogFrame
      open={open}
      onClose={close}
      title="Reset authenticator app (TOTP)"
      onSubmit={() => current && reset.mutate()}
      actions={
        <Button
          type="submit"
          color="warning"
          variant="contained"
          disabled={!current || reset.isPending}
        >
          Reset TOTP
        </Button>
      }
    >
      <Typography sx={{ mb: 2 }}>
        Your current authenticator code stops working, your other sessions end, and you scan a new
        QR code at your next sign-in.
      </Typography>
      <TextField
        label="Current password"
        type="password"
        autoComplete="current-password"
        fullWidth
        value={current}
        onChange={(e) => setCurrent(e.target.value)}
        autoFocus
      />
      {reset.error && <ErrorState error={reset.error} title="Not reset" />}
    </DialogFrame>
  );
}
