/**
 * Live counts beside navigation entries: open incidents next to Alerts. The counts are
 * read once and again whenever the operator socket reports incident changes (batched,
 * so an evaluation that changes a thousand incidents costs one request).
 *
 * @module
 */
import Chip from "@mui/material/Chip";
import { useQueryClient } from "@tanstack/react-query";
import { useRef } from "react";
import { useIncidentCounts } from "../api/queries.ts";
import { useSocketEvent } from "../api/socket.ts";

/** The open-incident count for the Alerts entry (nothing when zero). */
export function AlertCountBadge() {
  const counts = useIncidentCounts();
  const qc = useQueryClient();
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useSocketEvent("incidents", () => {
    clearTimeout(timer.current);
    timer.current = setTimeout(
      () => void qc.invalidateQueries({ queryKey: ["incident-counts"] }),
      500,
    );
  });
  const open = counts.data?.open ?? 0;
  if (!open) return null;
  return (
    <Chip
      size="small"
      color="error"
      label={open > 999 ? "999+" : open}
      aria-label={`${open} open`}
      data-testid="alert-count"
      sx={{ height: 20, fontSize: 12, ml: 1 }}
    />
  );
}
