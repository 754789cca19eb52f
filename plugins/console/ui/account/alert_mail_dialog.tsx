/**
 * "Alert mail" in the account menu: your own address (changing it asks for your
 * password again) and whether you receive incidents by email — from which severity and
 * for which events — for the sites you can see.
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import FormControlLabel from "@mui/material/FormControlLabel";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import Switch from "@mui/material/Switch";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api } from "../api/client.ts";
import { useToasts } from "../app/toasts.tsx";
import { ErrorState } from "../components/states.tsx";
import { DialogFrame } from "./dialog_frame.tsx";

interface Subscription {
  enabled: boolean;
  min_severity: "info" | "warning" | "error";
  events: string[];
  email: string | null;
  operator_mail_channel: boolean;
}

const EVENTS = ["opened", "escalated", "acknowledged", "resolved"];

/** The alert mail dialog. */
export function AlertMailDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const sub = useQuery({
    queryKey: ["alert-subscription"],
    queryFn: ({ signal }) => api<Subscription>("/api/alerts/subscription", { signal }),
    enabled: open,
  });
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [enabled, setEnabled] = useState(false);
  const [severity, setSeverity] = useState<Subscription["min_severity"]>("error");
  const [events, setEvents] = useState<string[]>(["opened", "escalated", "resolved"]);
  useEffect(() => {
    if (!sub.data) return;
    setEmail(sub.data.email ?? "");
    setEnabled(sub.data.enabled);
    setSeverity(sub.data.min_severity);
    setEvents(sub.data.events);
  }, [sub.data]);
  const changedEmail = (sub.data?.email ?? "") !== email.trim();
  const save = useMutation({
    mutationFn: async () => {
      if (changedEmail) {
        await api("/api/auth/email", {
          method: "PUT",
          body: { email: email.trim() || null, current_password: password },
        });
      }
      await api("/api/alerts/subscription", {
        method: "PUT",
        body: { enabled, min_severity: severity, events },
      });
    },
    onSuccess: () => {
      notify({
        severity: "success",
        message: enabled ? "You receive alert mail." : "Alert mail off.",
      });
      setPassword("");
      void qc.invalidateQueries({ queryKey: ["alert-subscription"] });
      onClose();
    },
  });
  return (
    <DialogFrame
      open={open}
      onClose={onClose}
      title="Alert mail"
      onSubmit={() => save.mutate()}
      actions={
        <Button
          type="submit"
          variant="contained"
          disabled={save.isPending || (changedEmail && !password) || (enabled && !email.trim()) ||
            !events.length}
        >
          Save
        </Button>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        {sub.error && <ErrorState error={sub.error} />}
        {sub.data && !sub.data.operator_mail_channel && (
          <Alert severity="info">
            No email channel carries operators' mail yet; an admin turns it on for one channel in
            Notification channels. Your choice is kept until then.
          </Alert>
        )}
        <TextField
          label="Your email address"
          type="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          autoComplete="email"
        />
        {changedEmail && (
          <TextField
            label="Current password"
            type="password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            helperText="Changing your address needs your password"
            autoComplete="current-password"
          />
        )}
        <FormControlLabel
          control={<Switch checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />}
          label="Email me incidents of the sites I can see"
        />
        <TextField
          select
          label="From severity"
          value={severity}
          onChange={(e) => setSeverity(e.target.value as Subscription["min_severity"])}
          disabled={!enabled}
        >
          <MenuItem value="info">Info and above</MenuItem>
          <MenuItem value="warning">Warning and above</MenuItem>
          <MenuItem value="error">Errors only</MenuItem>
        </TextField>
        <Stack direction="row" spacing={0.5} role="group" aria-label="Events">
          {EVENTS.map((ev) => {
            const on = events.includes(ev);
            return (
              <Chip
                key={ev}
                label={ev}
                clickable
                disabled={!enabled}
                aria-pressed={on}
                variant={on ? "filled" : "outlined"}
                color={on ? "primary" : "default"}
                onClick={() => setEvents(on ? events.filter((x) => x !== ev) : [...events, ev])}
              />
            );
          })}
        </Stack>
        <Typography variant="caption" color="text.secondary">
          The address is yours only; it is not written to the audit log.
        </Typography>
        {save.error && <ErrorState error={save.error} title="Not saved" />}
      </Stack>
    </DialogFrame>
  );
}
