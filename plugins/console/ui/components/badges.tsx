/**
 * Badges and pills every page shares: an assembly's source domain, the write queue's
 * "Queued to Write to DB" state, severities, incident and run states, on/off. Colour is
 * never the only signal: each shows its word, and the colours keep WCAG AA contrast in
 * both themes.
 *
 * @module
 */
import Chip, { type ChipProps } from "@mui/material/Chip";
import Tooltip from "@mui/material/Tooltip";

/** An assembly domain. */
export type Domain = "official" | "community" | "user_created";

/** Names of the domains, as operators read them. */
export const DOMAIN_LABEL: Record<Domain, string> = {
  official: "Official",
  community: "Community",
  user_created: "User-Created",
};

const DOMAIN_STYLE: Record<Domain, ChipProps> = {
  official: { color: "primary", variant: "filled" },
  community: { color: "secondary", variant: "outlined" },
  user_created: { color: "default", variant: "outlined" },
};

/** Official / Community / User-Created. */
export function DomainBadge({ domain }: { domain: Domain }) {
  return (
    <Chip
      size="small"
      label={DOMAIN_LABEL[domain] ?? domain}
      data-domain={domain}
      {...(DOMAIN_STYLE[domain] ?? DOMAIN_STYLE.user_created)}
    />
  );
}

/**
 * The yellow "Queued to Write to DB" pill: the change is accepted and visible, but the
 * engine's timed flush has not written it to the database yet.
 */
export function QueuedPill({ since }: { since?: string | null }) {
  return (
    <Tooltip
      title={since
        ? `Changed ${new Date(since).toLocaleString()}; written at the engine's next flush`
        : "Written to the database at the engine's next flush"}
    >
      <Chip
        size="small"
        label="Queued to Write to DB"
        data-testid="queued-pill"
        sx={{ bgcolor: "#ffd54f", color: "#3b2a00", fontWeight: 500 }}
      />
    </Tooltip>
  );
}

type Tone = "default" | "primary" | "secondary" | "error" | "info" | "success" | "warning";

const SEVERITY: Record<string, { label: string; color: Tone }> = {
  info: { label: "Info", color: "info" },
  warning: { label: "Warning", color: "warning" },
  error: { label: "Error", color: "error" },
};

/** Info / Warning / Error. */
export function SeverityPill({ severity }: { severity: string }) {
  const s = SEVERITY[severity] ?? { label: severity, color: "default" as Tone };
  return (
    <Chip
      size="small"
      label={s.label}
      color={s.color}
      variant={severity === "error" ? "filled" : "outlined"}
    />
  );
}

const STATES: Record<string, { label: string; color: Tone; filled?: boolean }> = {
  // incidents
  open: { label: "Open", color: "error", filled: true },
  suppressed: { label: "Suppressed", color: "default" },
  resolved: { label: "Resolved", color: "success" },
  // runs and deliveries
  Success: { label: "Success", color: "success" },
  Failed: { label: "Failed", color: "error", filled: true },
  Running: { label: "Running", color: "info" },
  Pending: { label: "Pending", color: "default" },
  Dispatching: { label: "Dispatching", color: "info" },
  "Timed Out": { label: "Timed out", color: "error" },
  Expired: { label: "Expired", color: "warning" },
  Skipped: { label: "Skipped", color: "default" },
  delivered: { label: "Delivered", color: "success" },
  queued: { label: "Queued", color: "info" },
  sending: { label: "Sending", color: "info" },
  held: { label: "Held", color: "warning" },
  dead: { label: "Dead", color: "error", filled: true },
  digested: { label: "In a digest", color: "default" },
  // agent updates
  idle: { label: "Up to date", color: "default" },
  updating: { label: "Updating", color: "info" },
  succeeded: { label: "Updated", color: "success" },
  failed: { label: "Failed", color: "error", filled: true },
  rolled_back: { label: "Rolled back", color: "warning" },
  // install tokens
  active: { label: "Active", color: "success" },
  expired: { label: "Expired", color: "default" },
  revoked: { label: "Revoked", color: "error" },
  used_up: { label: "Used up", color: "default" },
};

/** A state word with a colour: incidents, runs, deliveries, updates, tokens. */
export function StatePill({ state, label }: { state: string; label?: string }) {
  const s = STATES[state] ?? { label: state, color: "default" as Tone };
  return (
    <Chip
      size="small"
      label={label ?? s.label}
      color={s.color}
      variant={s.filled ? "filled" : "outlined"}
      data-state={state}
    />
  );
}

/** Enabled / Disabled (or Archived). */
export function EnabledPill(
  { enabled, archived, onLabel = "Enabled", offLabel = "Disabled" }: {
    enabled: boolean;
    archived?: boolean;
    onLabel?: string;
    offLabel?: string;
  },
) {
  if (archived) return <Chip size="small" label="Archived" variant="outlined" />;
  return (
    <Chip
      size="small"
      label={enabled ? onLabel : offLabel}
      color={enabled ? "success" : "default"}
      variant="outlined"
    />
  );
}
