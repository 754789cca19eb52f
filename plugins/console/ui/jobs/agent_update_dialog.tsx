/**
 * "Update agent": a staged rollout to one device, a selection or a whole site, to a
 * release (default: the stable channel's), at most N devices updating at once; then
 * its progress, read again every few seconds, with cancel. Admins only (the engine
 * refuses others).
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import FormControlLabel from "@mui/material/FormControlLabel";
import LinearProgress from "@mui/material/LinearProgress";
import MenuItem from "@mui/material/MenuItem";
import Radio from "@mui/material/Radio";
import RadioGroup from "@mui/material/RadioGroup";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api } from "../api/client.ts";
import { useSites } from "../api/queries.ts";
import type { Device } from "../api/types.ts";
import { StatePill } from "../components/badges.tsx";
import { ErrorState } from "../components/states.tsx";

interface Releases {
  releases: Array<{ version: string; channel: string }>;
  stable: string | null;
  beta: string | null;
}

/** A rollout as the engine reports it. */
export interface Rollout {
  id: string;
  version: string;
  max_concurrency: number;
  status: string;
  counts: Record<string, number>;
  devices: Array<
    { guid: string; state: string; version: string | null; last_error: string | null }
  >;
}

/** The update dialog (open while mounted). */
export function AgentUpdateDialog(
  { devices, siteId, onClose }: { devices: Device[]; siteId?: number; onClose: () => void },
) {
  const qc = useQueryClient();
  const sites = useSites();
  const [target, setTarget] = useState<"devices" | "site">(devices.length ? "devices" : "site");
  const [site, setSite] = useState<number | "">(siteId ?? "");
  const [version, setVersion] = useState("");
  const [concurrency, setConcurrency] = useState("10");
  const [rolloutId, setRolloutId] = useState<string | null>(null);
  const releases = useQuery({
    queryKey: ["agent-releases"],
    queryFn: ({ signal }) => api<Releases>("/api/agent-updates/releases", { signal }),
  });
  const start = useMutation({
    mutationFn: () =>
      api<Rollout>("/api/agent-updates/rollouts", {
        body: {
          ...(target === "devices"
            ? { device_guids: devices.map((d) => d.guid) }
            : { site_id: site }),
          ...(version ? { version } : {}),
          max_concurrency: Number(concurrency),
        },
      }),
    onSuccess: (r) => {
      setRolloutId(r.id);
      void qc.invalidateQueries({ queryKey: ["devices"] });
    },
  });
  const rollout = useQuery({
    queryKey: ["rollout", rolloutId],
    queryFn: ({ signal }) => api<Rollout>(`/api/agent-updates/rollouts/${rolloutId}`, { signal }),
    enabled: !!rolloutId,
    refetchInterval: (q) => (q.state.data?.status === "active" ? 3000 : false),
  });
  const cancel = useMutation({
    mutationFn: () => api(`/api/agent-updates/rollouts/${rolloutId}/cancel`, { method: "POST" }),
    onSuccess: () => void rollout.refetch(),
  });
  const badConcurrency = !/^\d+$/.test(concurrency) || Number(concurrency) < 1 ||
    Number(concurrency) > 10_000;
  const none = releases.data && !releases.data.releases.length;
  const r = rollout.data;
  const total = r?.devices.length ?? 0;
  const done = r
    ? (r.counts.succeeded ?? 0) + (r.counts.failed ?? 0) + (r.counts.rolled_back ?? 0)
    : 0;
  return (
    <DialogFrame
      open
      onClose={onClose}
      title={devices.length === 1 && target === "devices"
        ? `Update the agent of ${devices[0]!.hostname}`
        : "Update agents"}
      onSubmit={rolloutId ? undefined : () => start.mutate()}
      actions={rolloutId
        ? (
          r?.status === "active" && (
            <Button
              color="warning"
              onClick={() => cancel.mutate()}
              disabled={cancel.isPending}
            >
              Cancel rollout
            </Button>
          )
        )
        : (
          <Button
            type="submit"
            variant="contained"
            disabled={!!none || start.isPending || badConcurrency ||
              (target === "site" && site === "")}
          >
            Start update
          </Button>
        )}
    >
      {!rolloutId && (
        <Stack spacing={2} sx={{ pt: 1 }}>
          {releases.error && <ErrorState error={releases.error} title="Releases unknown" />}
          {none && (
            <Alert severity="warning">
              No agent release to update to. Build one with{" "}
              <code>deno task agent:package --version 1.0.1 --channel stable</code>.
            </Alert>
          )}
          <RadioGroup
            value={target}
            onChange={(e) => setTarget(e.target.value as "devices" | "site")}
            aria-label="Which devices"
          >
            {devices.length > 0 && (
              <FormControlLabel
                value="devices"
                control={<Radio />}
                label={devices.length === 1
                  ? devices[0]!.hostname
                  : `The ${devices.length} selected devices`}
              />
            )}
            <FormControlLabel value="site" control={<Radio />} label="Every device of a site" />
          </RadioGroup>
          {target === "site" && (
            <TextField
              select
              label="Site"
              value={site}
              onChange={(e) => setSite(Number(e.target.value))}
            >
              {(sites.data?.sites ?? []).map((s) => (
                <MenuItem key={s.id} value={s.id}>{s.name}</MenuItem>
              ))}
            </TextField>
          )}
          <TextField
            select
            label="Version"
            value={version}
            onChange={(e) => setVersion(e.target.value)}
          >
            <MenuItem value="">
              The stable channel's{releases.data?.stable ? ` (${releases.data.stable})` : ""}
            </MenuItem>
            {(releases.data?.releases ?? []).map((rel) => (
              <MenuItem key={rel.version} value={rel.version}>
                {rel.version}
                {rel.channel !== "none" ? ` (${rel.channel})` : ""}
              </MenuItem>
            ))}
          </TextField>
          <TextField
            label="At most this many updating at once"
            value={concurrency}
            onChange={(e) => setConcurrency(e.target.value)}
            error={badConcurrency}
            helperText={badConcurrency ? "A whole number from 1 to 10000" : undefined}
            slotProps={{ htmlInput: { inputMode: "numeric" } }}
          />
          <Typography variant="body2" color="text.secondary">
            Each device downloads the release, checks its signature, and runs it as a trial; a
            version that does not connect within two minutes is rolled back automatically.
          </Typography>
          {start.error && <ErrorState error={start.error} title="Not started" />}
        </Stack>
      )}
      {rolloutId && (
        <Stack spacing={1.5} sx={{ pt: 1 }} role="status">
          {rollout.error && <ErrorState error={rollout.error} />}
          {r && (
            <>
              <Typography>
                Rollout to {r.version}: {done} of {total} finished, at most {r.max_concurrency}{" "}
                at once. Status: {r.status}.
              </Typography>
              <LinearProgress
                variant="determinate"
                value={total ? (100 * done) / total : 0}
                aria-label="Rollout progress"
              />
              <Stack direction="row" spacing={1} sx={{ flexWrap: "wrap", rowGap: 1 }}>
                {Object.entries(r.counts).map(([state, n]) => (
                  <Box key={state}>
                    <StatePill state={state} label={`${n} ${state.replace("_", " ")}`} />
                  </Box>
                ))}
              </Stack>
            </>
          )}
        </Stack>
      )}
    </DialogFrame>
  );
}
