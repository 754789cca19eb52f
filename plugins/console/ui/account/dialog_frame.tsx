/**
 * The frame of the account dialogs: a titled dialog with a close button, its error shown
 * the console's way.
 *
 * @module
 */
import Button from "@mui/material/Button";
import Dialog from "@mui/material/Dialog";
import DialogActions from "@mui/material/DialogActions";
import DialogContent from "@mui/material/DialogContent";
import DialogTitle from "@mui/material/DialogTitle";
import { type ReactNode, useId } from "react";

/** A dialog with a title, content and actions (Close is always there). */
export function DialogFrame(
  { open, title, onClose, children, actions, maxWidth = "sm", onSubmit }: {
    open: boolean;
    title: string;
    onClose: () => void;
    children: ReactNode;
    actions?: ReactNode;
    maxWidth?: "xs" | "sm" | "md" | "lg";
    /** Makes the content a form (Enter submits). */
    onSubmit?: () => void;
  },
) {
  const id = useId();
  const body = (
    <>
      <DialogContent>{children}</DialogContent>
      <DialogActions>
        <Button onClick={onClose}>{actions ? "Cancel" : "Close"}</Button>
        {actions}
      </DialogActions>
    </>
  );
  return (
    <Dialog open={open} onClose={onClose} aria-labelledby={`${id}-t`} maxWidth={maxWidth} fullWidth>
      <DialogTitle id={`${id}-t`}>{title}</DialogTitle>
      {onSubmit
        ? (
          <form
            noValidate
            onSubmit={(e) => {
              e.preventDefault();
              onSubmit();
            }}
          >
            {body}
          </form>
        )
        : body}
    </Dialog>
  );
}
