/**
 * The device page's Terminal tab: the site's policy (reason required, recorded), an
 * xterm.js terminal sized to the tab (the fit addon; a resize reaches the remote program
 * as SIGWINCH), opening with a reason where the site asks for one and as the system
 * account or the logged-on user, a status line through reconnects, the device's recent
 * sessions with transcripts for admins, and the site policy dialog for admins.
 *
 * xterm.js draws with the DOM renderer: no eval, inline styles only (the console's CSP
 * allows `style-src 'unsafe-inline'`), its stylesheet bundled as the console's
 * main.css.
 *
 * @module
 */
import "@xterm/xterm/css/xterm.css";
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import FormControlLabel from "@mui/material/FormControlLabel";
import Link from "@mui/material/Link";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import Switch from "@mui/material/Switch";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useRef, useState } from "react";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api } from "../api/client.ts";
import { socket, SocketError, useSocketState } from "../api/socket.ts";
import type { DeviceDetail } from "../api/types.ts";
import { useIsAdmin } from "../app/session.tsx";
import { DataGrid } from "../components/grid.tsx";
import { ErrorState } from "../components/states.tsx";
import { ago, bytes, when } from "../lib/format.ts";
import { TerminalClient, type TerminalState } from "./terminal_client.ts";

/** A site's terminal policy. */
export interface SitePolicy {
  site_id: number;
  terminal_enabled: boolean;
  require_reason: boolean;
  record_transcripts: boolean;
  files_enabled: boolean;
  updated_by: string | null;
  updated_at: string | null;
}

interface SessionRow {
  id: string;
  operator: string;
  reason: string | null;
  run_as: string;
  status: string;
  recorded: boolean;
  created_at: string;
  ended_at: string | null;
  end_reason: string | null;
  exit_code: number | null;
  bytes_in: number;
  bytes_out: number;
}

/** The site policy of a device (defaults for a device without a site). */
export function useSitePolicy(siteId: number | null) {
  return useQuery({
    queryKey: ["terminal-policy", siteId],
    enabled: siteId !== null,
    queryFn: ({ signal }) => api<SitePolicy>(`/api/terminal/site-policies/${siteId}`, { signal }),
  });
}

/** Admins: the site's terminal policy. */
export function PolicyDialog(
  { siteId, siteName, policy, onClose }: {
    siteId: number;
    siteName: string;
    policy: SitePolicy;
    onClose: () => void;
  },
) {
  const qc = useQueryClient();
  const [p, setP] = useState(policy);
  const save = useMutation({
    mutationFn: () =>
      api(`/api/terminal/site-policies/${siteId}`, {
        method: "PUT",
        body: {
          terminal_enabled: p.terminal_enabled,
          require_reason: p.require_reason,
          record_transcripts: p.record_transcripts,
          files_enabled: p.files_enabled,
        },
      }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ["terminal-policy", siteId] });
      onClose();
    },
  });
  const toggle = (key: keyof SitePolicy, label: string, help: string) => (
    <Box>
      <FormControlLabel
        control={
          <Switch
            checked={Boolean(p[key])}
            onChange={(e) => setP({ ...p, [key]: e.target.checked })}
          />
        }
        label={label}
      />
      <Typography variant="body2" color="text.secondary" sx={{ ml: 6, mt: -0.5 }}>
        {help}
      </Typography>
    </Box>
  );
  return (
    <DialogFrame
      open
      onClose={onClose}
      title={`Remote access policy of ${siteName}`}
      onSubmit={() => save.mutate()}
      actions={<Button type="submit" variant="contained" disabled={save.isPending}>Save</Button>}
    >
      <Stack spacing={1.5} sx={{ pt: 1 }}>
        {toggle("terminal_enabled", "Terminals allowed", "Operators of the site may open a shell.")}
        {toggle("require_reason", "Reason required", "Opening a terminal asks why; it is audited.")}
        {toggle(
          "record_transcripts",
          "Record transcripts",
          "Output of every session is kept, sealed by the vault, for the retention period.",
        )}
        {toggle("files_enabled", "File transfer allowed", "Downloads from and uploads to devices.")}
        {save.error && <ErrorState error={save.error} title="Not saved" />}
      </Stack>
    </DialogFrame>
  );
}

const STATE_TEXT: Record<TerminalState, string> = {
  opening: "Starting the shell…",
  open: "Connected",
  reconnecting: "Connection lost — reconnecting…",
  closed: "Closed",
};

/** The Terminal tab. */
export function TerminalTab({ d }: { d: DeviceDetail }) {
  const headingId = useId();
  const admin = useIsAdmin();
  const socketState = useSocketState();
  const qc = useQueryClient();
  const policy = useSitePolicy(d.site_id);
  const sessions = useQuery({
    queryKey: ["terminal-sessions", d.guid],
    queryFn: ({ signal }) =>
      api<{ sessions: SessionRow[] }>(
        `/api/terminal/sessions?device_guid=${d.guid}&limit=20`,
        { signal },
      ),
  });
  const host = useRef<HTMLDivElement>(null);
  const term = useRef<{ terminal: Terminal; fit: FitAddon } | null>(null);
  const client = useRef<TerminalClient | null>(null);
  const [state, setState] = useState<TerminalState | null>(null);
  const [exit, setExit] = useState<{ code: number | null; reason: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [asking, setAsking] = useState(false);
  const [reason, setReason] = useState("");
  const [runAs, setRunAs] = useState<"system" | "user">("system");
  const [editing, setEditing] = useState(false);

  // The terminal component lives as long as the tab; a session comes and goes in it.
  useEffect(() => {
    const terminal = new Terminal({
      cursorBlink: true,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace",
      fontSize: 14,
      scrollback: 5000,
      theme: { background: "#101418", foreground: "#e6e6e6" },
      screenReaderMode: false,
    });
    const fit = new FitAddon();
    terminal.loadAddon(fit);
    terminal.open(host.current!);
    terminal.textarea?.setAttribute("aria-label", `Terminal of ${d.hostname}`);
    fit.fit();
    term.current = { terminal, fit };
    const input = terminal.onData((data) => {
      try {
        client.current?.type(data);
      } catch (err) {
        terminal.write(`\r\n[${err instanceof Error ? err.message : err}]\r\n`);
      }
    });
    const binary = terminal.onBinary((data) =>
      client.current?.type(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff))
    );
    const sized = terminal.onResize(({ cols, rows }) => client.current?.resize(cols, rows));
    const observer = new ResizeObserver(() => {
      try {
        fit.fit();
      } catch { /* not visible */ }
    });
    observer.observe(host.current!);
    return () => {
      observer.disconnect();
      input.dispose();
      binary.dispose();
      sized.dispose();
      void client.current?.close().catch(() => {});
      client.current = null;
      terminal.dispose();
      term.current = null;
    };
  }, [d.guid, d.hostname]);

  const start = async (why?: string) => {
    const t = term.current;
    if (!t) return;
    setError(null);
    setExit(null);
    t.terminal.reset();
    const c = new TerminalClient(socket, {
      write: (bytes, done) => t.terminal.write(bytes, done),
      state: (s, detail) => {
        setState(s);
        // The list shows the session's status: refresh it once the shell runs (the open
        // answer comes before the shell has started) and when it ends.
        if (s === "open") void qc.invalidateQueries({ queryKey: ["terminal-sessions", d.guid] });
        if (s === "closed") {
          setExit(detail ?? null);
          t.terminal.write(`\r\n\x1b[2m[session ended: ${detail?.reason ?? "closed"}]\x1b[0m\r\n`);
          void qc.invalidateQueries({ queryKey: ["terminal-sessions", d.guid] });
        }
      },
    });
    client.current = c;
    setState("opening");
    try {
      await c.open({
        guid: d.guid,
        cols: t.terminal.cols,
        rows: t.terminal.rows,
        reason: why,
        runAs,
      });
      t.terminal.focus();
      void qc.invalidateQueries({ queryKey: ["terminal-sessions", d.guid] });
    } catch (err) {
      c.dispose();
      client.current = null;
      setState(null);
      setError(
        err instanceof SocketError ? new Error(`${err.message} (${err.code})`) : err,
      );
    }
  };

  const live = state === "opening" || state === "open" || state === "reconnecting";
  const p = policy.data;
  const disabled = p ? !p.terminal_enabled : false;
  const offline = d.presence !== "online" || d.containment_status !== "active";
  return (
    <Stack spacing={2} sx={{ height: "100%" }}>
      <Stack direction="row" spacing={1} sx={{ alignItems: "center", flexWrap: "wrap" }}>
        <Button
          variant="contained"
          disabled={live || disabled || offline || socketState !== "open"}
          onClick={() => (p?.require_reason ? setAsking(true) : void start())}
        >
          {state === "closed" ? "Open a new terminal" : "Open terminal"}
        </Button>
        <TextField
          select
          size="small"
          label="Run as"
          value={runAs}
          disabled={live}
          onChange={(e) => setRunAs(e.target.value as "system")}
          sx={{ minWidth: 180 }}
        >
          <MenuItem value="system">System account</MenuItem>
          <MenuItem value="user">Logged-on user</MenuItem>
        </TextField>
        <Button
          variant="outlined"
          disabled={!live}
          onClick={() => void client.current?.close()}
        >
          Close terminal
        </Button>
        <Typography variant="body2" role="status" aria-live="polite" sx={{ ml: 1 }}>
          {state ? STATE_TEXT[state] : offline ? "The device is not online." : "Not connected."}
          {exit && ` (${exit.reason}${exit.code !== null ? `, exit code ${exit.code}` : ""})`}
        </Typography>
        <Box sx={{ flexGrow: 1 }} />
        {p?.require_reason && <Chip size="small" label="Reason required" />}
        {p?.record_transcripts && <Chip size="small" color="warning" label="Sessions recorded" />}
        {admin && p && d.site_id !== null && (
          <Button size="small" onClick={() => setEditing(true)}>Site policy…</Button>
        )}
      </Stack>
      {disabled && (
        <Alert severity="info">Terminals are turned off for this site by an administrator.</Alert>
      )}
      {error !== null && <ErrorState error={error} title="The terminal did not open" />}
      <Box
        ref={host}
        data-testid="terminal"
        sx={{
          flexGrow: 1,
          minHeight: 360,
          height: "60vh",
          bgcolor: "#101418",
          borderRadius: 1,
          p: 1,
          overflow: "hidden",
        }}
      />
      {/* Named by its heading: the grid inside carries the longer name. */}
      <Box component="section" aria-labelledby={`${headingId}-sessions`}>
        <Typography
          id={`${headingId}-sessions`}
          variant="subtitle1"
          component="h2"
          sx={{ mb: 1 }}
        >
          Recent sessions
        </Typography>
        {sessions.error ? <ErrorState error={sessions.error} /> : (
          <Box sx={{ height: 220 }}>
            <DataGrid<SessionRow>
              label="Recent terminal sessions"
              loading={sessions.isPending}
              rowData={sessions.data?.sessions ?? []}
              getRowId={(r) => r.data.id}
              emptyText="No terminal sessions on this device yet"
              columnDefs={[
                { headerName: "Operator", field: "operator", width: 140 },
                {
                  headerName: "Opened",
                  field: "created_at",
                  width: 170,
                  valueFormatter: (v) => when(v.value),
                },
                { headerName: "Status", field: "status", width: 100 },
                { headerName: "Ended", field: "end_reason", width: 150 },
                {
                  headerName: "Output",
                  field: "bytes_out",
                  width: 100,
                  // The counters are written when a session detaches or ends; a live
                  // session's 0 B would read as "nothing happened".
                  valueFormatter: (v) => v.data?.status === "closed" ? bytes(v.value) ?? "" : "—",
                },
                { headerName: "Reason", field: "reason", flex: 1 },
                {
                  headerName: "Transcript",
                  colId: "transcript",
                  width: 130,
                  sortable: false,
                  cellRenderer: (r: { data?: SessionRow }) =>
                    r.data?.recorded && admin
                      ? (
                        <Link href={`/api/terminal/sessions/${r.data.id}/transcript`} download>
                          Download
                        </Link>
                      )
                      : null,
                },
              ]}
            />
          </Box>
        )}
        {sessions.data?.sessions[0] && (
          <Typography variant="caption" color="text.secondary">
            Last session {ago(sessions.data.sessions[0].created_at)}.
          </Typography>
        )}
      </Box>
      <DialogFrame
        open={asking}
        onClose={() => setAsking(false)}
        title="Why are you opening a terminal?"
        onSubmit={() => {
          if (!reason.trim()) return;
          setAsking(false);
          void start(reason.trim());
        }}
        actions={
          <Button type="submit" variant="contained" disabled={!reason.trim()}>
            Open terminal
          </Button>
        }
      >
        <TextField
          autoFocus
          fullWidth
          label="Reason"
          helperText="This site asks for a reason; it is kept in the audit trail."
          value={reason}
          onChange={(e) => setReason(e.target.value)}
          slotProps={{ htmlInput: { maxLength: 500 } }}
          sx={{ mt: 1 }}
        />
      </DialogFrame>
      {editing && p && d.site_id !== null && (
        <PolicyDialog
          siteId={d.site_id}
          siteName={d.site_name ?? ""}
          policy={p}
          onClose={() => setEditing(false)}
        />
      )}
    </Stack>
  );
}
