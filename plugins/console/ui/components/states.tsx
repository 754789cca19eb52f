/**
 * Loading, empty and error states every page uses. An error shows the API's own
 * message and its request id (what a support request needs) with a retry button.
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import AlertTitle from "@mui/material/AlertTitle";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import CircularProgress from "@mui/material/CircularProgress";
import Typography from "@mui/material/Typography";
import type { ReactNode } from "react";
import { ApiError } from "../api/client.ts";

/** A centred spinner with a label for screen readers. */
export function Loading({ label = "Loading" }: { label?: string }) {
  return (
    <Box role="status" sx={{ display: "flex", alignItems: "center", gap: 2, p: 4 }}>
      <CircularProgress size={24} aria-hidden="true" />
      <Typography color="text.secondary">{label}…</Typography>
    </Box>
  );
}

/** Text of any error, with the request id when the API gave one. */
export function errorText(
  err: unknown,
): { message: string; requestId: string | null; code: string } {
  if (err instanceof ApiError) {
    return { message: err.message, requestId: err.requestId, code: err.code };
  }
  return { message: err instanceof Error ? err.message : String(err), requestId: null, code: "" };
}

/** An error box: the API's message, its code and request id, and a retry action. */
export function ErrorState(
  { error, onRetry, title = "Something went wrong" }: {
    error: unknown;
    onRetry?: () => void;
    title?: string;
  },
) {
  const e = errorText(error);
  return (
    <Alert
      severity="error"
      role="alert"
      sx={{ m: 2 }}
      action={onRetry
        ? <Button color="inherit" size="small" onClick={onRetry}>Retry</Button>
        : undefined}
    >
      <AlertTitle>{title}</AlertTitle>
      {e.message}
      {(e.code || e.requestId) && (
        <Typography variant="caption" component="div" sx={{ mt: 0.5, opacity: 0.8 }}>
          {e.code && (
            <>
              Code <code>{e.code}</code>
            </>
          )}
          {e.code && e.requestId && " · "}
          {e.requestId && (
            <>
              Request id <code data-testid="request-id">{e.requestId}</code>
            </>
          )}
        </Typography>
      )}
    </Alert>
  );
}

/** An empty state with the next action. */
export function EmptyState(
  { title, children, action }: { title: string; children?: ReactNode; action?: ReactNode },
) {
  return (
    <Box sx={{ p: 4, textAlign: "center" }}>
      <Typography variant="h6" component="p">{title}</Typography>
      {children && <Typography color="text.secondary" sx={{ mt: 1 }}>{children}</Typography>}
      {action && <Box sx={{ mt: 2 }}>{action}</Box>}
    </Box>
  );
}
