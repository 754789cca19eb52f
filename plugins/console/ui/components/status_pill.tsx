/**
 * Pills for a device's presence and containment. Colour is never the only signal: the
 * word is always shown.
 *
 * @module
 */
import Chip from "@mui/material/Chip";
import type { Containment, DevicePresence } from "../api/types.ts";

const PRESENCE: Record<
  DevicePresence,
  { label: string; color: "success" | "default" | "warning" }
> = {
  online: { label: "Online", color: "success" },
  offline: { label: "Offline", color: "default" },
  overdue: { label: "Overdue", color: "warning" },
};

/** Online / Offline / Overdue. */
export function StatusPill({ status }: { status: DevicePresence }) {
  const s = PRESENCE[status] ?? PRESENCE.offline;
  return (
    <Chip
      size="small"
      label={s.label}
      color={s.color}
      variant={status === "online" ? "filled" : "outlined"}
      data-status={status}
    />
  );
}

/** Quarantined / Revoked / … (nothing for active). */
export function ContainmentPill({ status }: { status: Containment }) {
  if (status === "active") return null;
  return (
    <Chip
      size="small"
      label={status[0]!.toUpperCase() + status.slice(1)}
      color={status === "quarantined" ? "warning" : "error"}
      variant="outlined"
    />
  );
}
