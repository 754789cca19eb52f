/**
 * A confirmation dialog; destructive actions can require typing a word (the hostname, or
 * PURGE) before the button enables.
 *
 * @module
 */
import Button from "@mui/material/Button";
import Dialog from "@mui/material/Dialog";
import DialogActions from "@mui/material/DialogActions";
import DialogContent from "@mui/material/DialogContent";
import DialogContentText from "@mui/material/DialogContentText";
import DialogTitle from "@mui/material/DialogTitle";
import TextField from "@mui/material/TextField";
import { type ReactNode, useId, useState } from "react";
import { ErrorState } from "./states.tsx";

/** Props of {@link ConfirmDialog}. */
export interface ConfirmProps {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  /** The operator must type this exactly. */
  typeToConfirm?: string;
  destructive?: boolean;
  onConfirm: () => Promise<unknown> | void;
  onClose: () => void;
}

/** Asks before doing something; shows the API's error if it fails. */
export function ConfirmDialog(p: ConfirmProps) {
  const [typed, setTyped] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const id = useId();
  const ready = !p.typeToConfirm || typed === p.typeToConfirm;
  const close = () => {
    setTyped("");
    setError(null);
    p.onClose();
  };
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await p.onConfirm();
      setTyped("");
      p.onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={p.open} onClose={close} aria-labelledby={`${id}-title`} maxWidth="sm" fullWidth>
      <DialogTitle id={`${id}-title`}>{p.title}</DialogTitle>
      <DialogContent>
        <DialogContentText component="div">{p.children}</DialogContentText>
        {p.typeToConfirm && (
          <TextField
            autoFocus
            fullWidth
            margin="normal"
            label={`Type ${p.typeToConfirm} to confirm`}
            value={typed}
            onChange={(e) => setTyped(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && ready && !busy) {
                void confirm();
              }
            }}
          />
        )}
        {error !== null && <ErrorState error={error} title="Not done" />}
      </DialogContent>
      <DialogActions>
        <Button onClick={close}>Cancel</Button>
        <Button
          onClick={confirm}
          disabled={!ready || busy}
          variant="contained"
          color={p.destructive ? "error" : "primary"}
          autoFocus={!p.typeToConfirm}
        >
          {p.confirmLabel}
        </Button>
      </DialogActions>
    </Dialog>
  );
}
