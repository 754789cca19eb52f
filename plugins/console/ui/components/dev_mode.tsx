/**
 * Dev Mode: the server-side grant an Admin's session needs to change official and
 * community assemblies (and to flush the write queue, sync the official catalog, rotate
 * or reset the vault). Admins see a toggle; while it is on, a banner counts down to its
 * expiry. Users never see either (the engine refuses them anyway).
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import Button from "@mui/material/Button";
import FormControlLabel from "@mui/material/FormControlLabel";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import Switch from "@mui/material/Switch";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api } from "../api/client.ts";
import type { DevModeState } from "../api/types.ts";
import { useIsAdmin } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { countdown } from "../lib/format.ts";

const KEY = ["dev-mode"];

/** This session's Dev Mode (always off for Users). */
export function useDevMode() {
  const admin = useIsAdmin();
  const q = useQuery({
    queryKey: KEY,
    queryFn: ({ signal }) => api<DevModeState>("/api/dev-mode", { signal }),
    enabled: admin,
    staleTime: 30_000,
  });
  const until = q.data?.expires_at ? Date.parse(q.data.expires_at) : 0;
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!until) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [until]);
  const qc = useQueryClient();
  const expired = !!until && now >= until;
  useEffect(() => {
    if (expired) void qc.invalidateQueries({ queryKey: KEY });
  }, [expired, qc]);
  return {
    admin,
    on: admin && !!q.data?.enabled && !expired,
    expiresAt: until || null,
    remainingSeconds: until ? Math.max(0, Math.round((until - now) / 1000)) : 0,
    loading: admin && q.isPending,
  };
}

const TTLS = [
  [900, "15 minutes"],
  [3600, "1 hour"],
  [4 * 3600, "4 hours"],
] as const;

/** Turns Dev Mode on or off for this session. */
export function useSwitchDevMode() {
  const qc = useQueryClient();
  const { notify } = useToasts();
  return useMutation({
    mutationFn: (o: { enabled: boolean; ttl?: number }) =>
      api<{ dev_mode: boolean; expires_at: string | null }>(
        "/api/assemblies/dev-mode/switch",
        { body: o.enabled ? { enabled: true, ttl_seconds: o.ttl ?? 900 } : { enabled: false } },
      ),
    onSuccess: (r) => {
      qc.setQueryData<DevModeState>(KEY, {
        enabled: r.dev_mode,
        expires_at: r.expires_at,
        ttl_remaining: r.expires_at
          ? Math.round((Date.parse(r.expires_at) - Date.now()) / 1000)
          : 0,
      });
      notify({
        severity: r.dev_mode ? "warning" : "success",
        message: r.dev_mode ? "Dev Mode is on." : "Dev Mode is off.",
      });
    },
    onError: (err) =>
      notify({ severity: "error", message: `Dev Mode not changed: ${(err as Error).message}` }),
  });
}

/**
 * The Dev Mode bar of the assembly pages: for admins a switch (and how long it stays
 * on), and while it is on a warning banner with the time left. Nothing for Users.
 */
export function DevModeBar(
  { what = "official and community assemblies", offText }: { what?: string; offText?: string },
) {
  const dm = useDevMode();
  const sw = useSwitchDevMode();
  const [ttl, setTtl] = useState<number>(900);
  if (!dm.admin || dm.loading) return null;
  if (dm.on) {
    return (
      <Alert
        severity="warning"
        sx={{ mx: 3, mb: 1.5 }}
        role="region"
        aria-label="Dev Mode"
        action={
          <Button color="inherit" size="small" onClick={() => sw.mutate({ enabled: false })}>
            Turn off
          </Button>
        }
      >
        <strong>Dev Mode is on</strong>: you can change {what}. It turns off in{" "}
        <span data-testid="dev-mode-countdown">{countdown(dm.remainingSeconds)}</span>.
      </Alert>
    );
  }
  return (
    <Stack
      direction="row"
      spacing={2}
      sx={{ mx: 3, mb: 1.5, alignItems: "center" }}
      role="region"
      aria-label="Dev Mode"
    >
      <FormControlLabel
        sx={{ whiteSpace: "nowrap" }}
        control={
          <Switch
            checked={false}
            onChange={() => sw.mutate({ enabled: true, ttl })}
            disabled={sw.isPending}
          />
        }
        label="Dev Mode"
      />
      <TextField
        select
        size="small"
        label="For"
        value={ttl}
        onChange={(e) => setTtl(Number(e.target.value))}
        sx={{ width: 150 }}
      >
        {TTLS.map(([s, label]) => <MenuItem key={s} value={s}>{label}</MenuItem>)}
      </TextField>
      <Typography variant="body2" color="text.secondary" noWrap>
        {offText ?? `Off: ${what} are read-only.`}
      </Typography>
    </Stack>
  );
}
