/**
 * The device page's Files tab: download a file from the device by its path (the browser
 * saves the stream; the engine ends it with an error if the bytes differ from the
 * agent's SHA-256), upload a file to a path (its SHA-256 computed here and checked by the
 * engine and the agent before the file is put in place), and the device's transfers.
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Checkbox from "@mui/material/Checkbox";
import FormControlLabel from "@mui/material/FormControlLabel";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useRef, useState } from "react";
import { api, toApiError } from "../api/client.ts";
import type { DeviceDetail } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { Card } from "../pages/device_parts.tsx";
import { DataGrid } from "../components/grid.tsx";
import { ErrorState } from "../components/states.tsx";
import { bytes, when } from "../lib/format.ts";
import { useSitePolicy } from "./terminal_tab.tsx";

interface TransferRow {
  id: string;
  operator: string;
  direction: string;
  path: string;
  status: string;
  bytes: number;
  sha256: string | null;
  error: string | null;
  created_at: string;
}

async function sha256Hex(file: File): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

const absolute = (p: string) => /^\//.test(p) || /^[A-Za-z]:[\\/]/.test(p) || /^\\\\/.test(p);

/** The Files tab. */
export function FilesTab({ d }: { d: DeviceDetail }) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  const policy = useSitePolicy(d.site_id);
  const transfers = useQuery({
    queryKey: ["terminal-transfers", d.guid],
    queryFn: ({ signal }) =>
      api<{ transfers: TransferRow[] }>(`/api/terminal/devices/${d.guid}/transfers?limit=50`, {
        signal,
      }),
  });
  const [downPath, setDownPath] = useState("");
  const [upPath, setUpPath] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const picker = useRef<HTMLInputElement>(null);
  const headingId = useId();
  const [overwrite, setOverwrite] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const off = policy.data ? !policy.data.files_enabled : false;
  const offline = d.presence !== "online" || d.containment_status !== "active";

  const upload = async () => {
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      const sum = await sha256Hex(file);
      const res = await fetch(
        `/api/terminal/uploads/${d.guid}?path=${encodeURIComponent(upPath)}&overwrite=${overwrite}`,
        {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/octet-stream", "X-Checksum-SHA256": sum },
          body: file,
        },
      );
      if (!res.ok) throw await toApiError(res);
      const t = await res.json() as { sha256: string; size: number };
      notify({
        severity: "success",
        message: `Uploaded ${bytes(t.size)} to ${upPath} (SHA-256 ${
          t.sha256.slice(0, 12)
        }… verified).`,
      });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      void qc.invalidateQueries({ queryKey: ["terminal-transfers", d.guid] });
    }
  };

  return (
    <Stack spacing={2}>
      {off && <Alert severity="info">File transfer is turned off for this site.</Alert>}
      <Box sx={{ display: "grid", gridTemplateColumns: "repeat(2, minmax(0, 1fr))", gap: 2 }}>
        <Card title="Download a file">
          <Stack
            component="form"
            spacing={1}
            onSubmit={(e) => {
              e.preventDefault();
              if (!absolute(downPath)) return;
              // The browser streams the response to disk; the engine checks the SHA-256.
              const a = document.createElement("a");
              a.href = `/api/terminal/devices/${d.guid}/files?path=${encodeURIComponent(downPath)}`;
              a.download = downPath.split(/[\\/]/).pop() || "download";
              a.click();
              setTimeout(
                () => void qc.invalidateQueries({ queryKey: ["terminal-transfers", d.guid] }),
                1500,
              );
            }}
          >
            <TextField
              size="small"
              label="Path on the device"
              placeholder="/var/log/syslog"
              value={downPath}
              onChange={(e) => setDownPath(e.target.value)}
              error={!!downPath && !absolute(downPath)}
              helperText={downPath && !absolute(downPath) ? "An absolute path" : " "}
            />
            <Box>
              <Button
                type="submit"
                variant="contained"
                disabled={off || offline || !absolute(downPath)}
              >
                Download
              </Button>
            </Box>
          </Stack>
        </Card>
        <Card title="Upload a file">
          <Stack
            component="form"
            spacing={1}
            onSubmit={(e) => {
              e.preventDefault();
              void upload();
            }}
          >
            {/* A real button opening the hidden picker (a label acting as a button is not one). */}
            <Button
              variant="outlined"
              sx={{ alignSelf: "flex-start" }}
              onClick={() => picker.current?.click()}
            >
              {file ? `${file.name} (${bytes(file.size)})` : "Choose a file…"}
            </Button>
            <input
              ref={picker}
              hidden
              type="file"
              aria-label="File to upload"
              onChange={(e) => {
                const f = e.target.files?.[0] ?? null;
                setFile(f);
                if (f && (!upPath || upPath.endsWith("/"))) {
                  setUpPath(
                    `${upPath || "/tmp/"}${f.name}`,
                  );
                }
              }}
            />
            <TextField
              size="small"
              label="Destination path"
              value={upPath}
              onChange={(e) => setUpPath(e.target.value)}
              error={!!upPath && !absolute(upPath)}
              helperText={upPath && !absolute(upPath) ? "An absolute path" : " "}
            />
            <FormControlLabel
              control={
                <Checkbox
                  checked={overwrite}
                  onChange={(e) => setOverwrite(e.target.checked)}
                />
              }
              label="Replace an existing file"
            />
            <Box>
              <Button
                type="submit"
                variant="contained"
                disabled={off || offline || busy || !file || !absolute(upPath)}
              >
                {busy ? "Uploading…" : "Upload"}
              </Button>
            </Box>
            {error !== null && <ErrorState error={error} title="Not uploaded" />}
          </Stack>
        </Card>
      </Box>
      {/* Named by its heading: the grid inside carries the longer name. */}
      <Box component="section" aria-labelledby={`${headingId}-transfers`}>
        <Typography
          id={`${headingId}-transfers`}
          variant="subtitle1"
          component="h2"
          sx={{ mb: 1 }}
        >
          Transfers
        </Typography>
        {transfers.error ? <ErrorState error={transfers.error} /> : (
          <Box sx={{ height: 260 }}>
            <DataGrid<TransferRow>
              label="File transfers"
              loading={transfers.isPending}
              rowData={transfers.data?.transfers ?? []}
              getRowId={(r) => r.data.id}
              emptyText="No file transfers on this device yet"
              columnDefs={[
                {
                  headerName: "When",
                  field: "created_at",
                  width: 170,
                  valueFormatter: (v) => when(v.value),
                },
                { headerName: "Operator", field: "operator", width: 130 },
                { headerName: "Direction", field: "direction", width: 110 },
                { headerName: "Path", field: "path", flex: 2 },
                { headerName: "Status", field: "status", width: 110 },
                {
                  headerName: "Bytes",
                  field: "bytes",
                  width: 100,
                  valueFormatter: (v) => bytes(v.value),
                },
                {
                  headerName: "SHA-256",
                  field: "sha256",
                  flex: 1,
                  valueFormatter: (v) => v.value ? `${String(v.value).slice(0, 16)}…` : "",
                },
                { headerName: "Error", field: "error", flex: 1 },
              ]}
            />
          </Box>
        )}
      </Box>
    </Stack>
  );
}
