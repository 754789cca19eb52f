/**
 * Assemblies: the script catalog in one grid with its Source (Official, Community,
 * User-Created) as badges and a domain filter made of the same badges, kind and OS
 * filters, search, and the yellow "Queued to Write to DB" pill on every entry the
 * engine's timed flush has not written yet. The pill clears by itself: while anything is
 * queued the page asks the engine again (a light poll timed to the next flush, at most
 * every five seconds; the assemblies plugin has no socket topic). Admins with Dev Mode
 * can write the queue now and sync the official catalog, with its report.
 *
 * @module
 */
import ArrowDropDownIcon from "@mui/icons-material/ArrowDropDown";
import MoreVertIcon from "@mui/icons-material/MoreVert";
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import IconButton from "@mui/material/IconButton";
import Link from "@mui/material/Link";
import Menu from "@mui/material/Menu";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Tooltip from "@mui/material/Tooltip";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef, GridApi } from "ag-grid-community";
import { useMemo, useRef, useState } from "react";
import { Link as RouterLink, useNavigate, useSearchParams } from "react-router";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api, query } from "../api/client.ts";
import type { AssembliesReply, AssemblyDomain, AssemblyItem, AssemblyQueue } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { DOMAIN_LABEL, DomainBadge, QueuedPill } from "../components/badges.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { DevModeBar, useDevMode } from "../components/dev_mode.tsx";
import { DataGrid, exportGridCsv } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { ErrorState } from "../components/states.tsx";
import { osOf, typeLabel } from "../lib/assembly_form.ts";
import { ago, bytes, count } from "../lib/format.ts";
import { CloneDialog } from "./assembly_clone.tsx";

const DOMAINS: AssemblyDomain[] = ["official", "community", "user_created"];

/** When to ask again while changes are queued: just after the next flush, at most 5 s. */
export function pollDelay(q: AssemblyQueue | undefined, dirty: boolean, now = Date.now()) {
  if (!q || (!dirty && q.dirty_count === 0 && q.pending_deletes === 0)) return false;
  const last = q.last_flush_at ? Date.parse(q.last_flush_at) : now;
  const next = last + q.flush_interval_seconds * 1000;
  return Math.min(5000, Math.max(1000, next - now + 500));
}

/** The catalog query, polled while something is queued. */
export function useAssemblies() {
  return useQuery({
    queryKey: ["assemblies", "all"],
    queryFn: ({ signal }) =>
      api<AssembliesReply>(`/api/assemblies${query({ limit: 10_000 })}`, { signal }),
    refetchInterval: (q) =>
      pollDelay(q.state.data?.queue, !!q.state.data?.items.some((i) => i.is_dirty)),
  });
}

interface SyncReport {
  files: number;
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: number;
  repaired: number;
  skipped: Array<{ path: string; reason: string }>;
}

function SyncReportDialog({ report, onClose }: { report: SyncReport | null; onClose: () => void }) {
  return (
    <DialogFrame open={!!report} onClose={onClose} title="Official catalog synced" maxWidth="sm">
      {report && (
        <Stack spacing={1.5}>
          <Typography>
            {count(report.files, "file")} in the catalog: {report.added.length} added,{" "}
            {report.changed.length} changed, {report.removed.length} removed, {report.unchanged}
            {" "}
            unchanged{report.repaired
              ? `, ${count(report.repaired, "payload file")} repaired`
              : ""}.
          </Typography>
          {report.skipped.length > 0 && (
            <Alert severity="warning">
              {count(report.skipped.length, "file")} skipped as invalid:
              <Box component="ul" sx={{ m: 0, pl: 2 }}>
                {report.skipped.slice(0, 20).map((s) => (
                  <li key={s.path}>
                    <code>{s.path}</code>: {s.reason}
                  </li>
                ))}
              </Box>
            </Alert>
          )}
          {!report.added.length && !report.changed.length && !report.removed.length && (
            <Typography color="text.secondary">Nothing needed to change.</Typography>
          )}
        </Stack>
      )}
    </DialogFrame>
  );
}

function QueueLine({ queue, admin }: { queue: AssemblyQueue; admin: boolean }) {
  const queued = queue.dirty_count + queue.pending_deletes;
  if (!queued && !queue.last_flush_error) return null;
  return (
    <Alert
      severity={queue.last_flush_error ? "error" : "info"}
      sx={{ mx: 3, mb: 1.5 }}
      role="status"
    >
      {queued > 0
        ? `${
          count(queued, "change")
        } queued to write to the database; the engine writes them every ${queue.flush_interval_seconds} s` +
          (queue.last_flush_at ? ` (last ${ago(queue.last_flush_at)})` : "") + "."
        : null}
      {queue.last_flush_error && ` The last write failed: ${queue.last_flush_error}`}
      {admin && queued > 0 && " Admins with Dev Mode can write them now."}
    </Alert>
  );
}

/** `/assemblies`. */
export function AssembliesPage() {
  const list = useAssemblies();
  const dm = useDevMode();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const { notify } = useToasts();
  const [params, setParams] = useSearchParams();
  const grid = useRef<GridApi<AssemblyItem> | null>(null);
  const [rowMenu, setRowMenu] = useState<{ anchor: HTMLElement; item: AssemblyItem } | null>(
    null,
  );
  const [adminMenu, setAdminMenu] = useState<HTMLElement | null>(null);
  const [cloning, setCloning] = useState<AssemblyItem | null>(null);
  const [deleting, setDeleting] = useState<AssemblyItem | null>(null);
  const [report, setReport] = useState<SyncReport | null>(null);
  const domains = new Set(
    (params.get("domain") ?? "").split(",").filter((d) => DOMAINS.includes(d as AssemblyDomain)),
  );
  const kind = params.get("kind") ?? "";
  const os = params.get("os") ?? "";
  const search = params.get("q") ?? "";
  const setParam = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };
  const toggleDomain = (d: AssemblyDomain) => {
    const next = new Set(domains);
    if (next.has(d)) next.delete(d);
    else next.add(d);
    setParam("domain", [...next].join(","));
  };

  const items = list.data?.items ?? [];
  const counts = Object.fromEntries(
    DOMAINS.map((d) => [d, items.filter((i) => i.domain === d).length]),
  );
  const shown = items.filter((i) =>
    (!domains.size || domains.has(i.domain)) &&
    (!kind || i.assembly_kind === kind) &&
    (!os || osOf(i.assembly_type) === os || osOf(i.assembly_type) === "Any")
  );

  const flush = useMutation({
    mutationFn: () =>
      api<{ result: { persisted: number; deleted: number; failed: number }; queue: AssemblyQueue }>(
        "/api/assemblies/dev-mode/write",
        { method: "POST" },
      ),
    onSuccess: (r) => {
      notify({
        severity: r.result.failed ? "warning" : "success",
        message:
          `Written to the database: ${r.result.persisted} saved, ${r.result.deleted} deleted` +
          (r.result.failed ? `, ${r.result.failed} failed` : "") + ".",
      });
      void qc.invalidateQueries({ queryKey: ["assemblies"] });
      void qc.invalidateQueries({ queryKey: ["assembly"] });
    },
    onError: (err) =>
      notify({ severity: "error", message: `Not written: ${(err as Error).message}` }),
  });
  const sync = useMutation({
    mutationFn: () => api<SyncReport>("/api/assemblies/official/sync", { method: "POST" }),
    onSuccess: (r) => {
      setReport(r);
      void qc.invalidateQueries({ queryKey: ["assemblies"] });
    },
    onError: (err) =>
      notify({ severity: "error", message: `Sync failed: ${(err as Error).message}` }),
  });

  // The Source column makes room for the queued pill only while something is queued, so
  // names are not cut short the rest of the time.
  const anyQueued = items.some((i) => i.is_dirty);
  const columns = useMemo<ColDef<AssemblyItem>[]>(() => [
    {
      headerName: "Name",
      field: "display_name",
      flex: 1.4,
      minWidth: 240,
      cellRenderer: (p: { data?: AssemblyItem }) =>
        p.data && (
          <Link component={RouterLink} to={`/assemblies/${p.data.assembly_guid}`}>
            {p.data.display_name}
          </Link>
        ),
    },
    {
      headerName: "Source",
      colId: "source",
      width: anyQueued ? 310 : 130,
      valueGetter: (p) =>
        p.data
          ? DOMAIN_LABEL[p.data.domain] + (p.data.is_dirty ? " (queued to write to DB)" : "")
          : "",
      cellRenderer: (p: { data?: AssemblyItem }) =>
        p.data && (
          <Stack direction="row" spacing={0.5} sx={{ alignItems: "center", height: "100%" }}>
            <DomainBadge domain={p.data.domain} />
            {p.data.is_dirty && <QueuedPill />}
          </Stack>
        ),
    },
    {
      headerName: "Type",
      colId: "type",
      width: 110,
      valueGetter: (p) =>
        p.data?.assembly_kind === "script"
          ? typeLabel(p.data.assembly_type)
          : typeLabel(p.data?.assembly_kind),
    },
    {
      headerName: "Runs on",
      colId: "os",
      width: 150,
      valueGetter: (p) => osOf(p.data?.assembly_type),
    },
    { headerName: "Category", field: "category", width: 110 },
    { headerName: "Description", field: "summary", flex: 1.2, minWidth: 160 },
    {
      headerName: "Size",
      field: "payload_size_bytes",
      width: 100,
      valueFormatter: (p) => bytes(p.value),
    },
    {
      headerName: "Changed",
      field: "updated_at",
      width: 130,
      valueFormatter: (p) => ago(p.value),
    },
    {
      headerName: "Actions",
      colId: "actions",
      width: 90,
      sortable: false,
      cellRenderer: (p: { data?: AssemblyItem }) =>
        p.data && (
          <IconButton
            size="small"
            aria-label={`More actions for ${p.data.display_name}`}
            aria-haspopup="menu"
            onClick={(e) => setRowMenu({ anchor: e.currentTarget, item: p.data! })}
          >
            <MoreVertIcon fontSize="small" />
          </IconButton>
        ),
    },
  ], [anyQueued]);

  const pick = (fn: (i: AssemblyItem) => void) => () => {
    const item = rowMenu!.item;
    setRowMenu(null);
    fn(item);
  };
  const canWrite = (i: AssemblyItem) => i.domain === "user_created" || dm.on;

  return (
    <>
      <PageHeader
        title="Assemblies"
        subtitle={list.data
          ? `${shown.length} of ${list.data.total} assemblies` +
            (list.data.queue.dirty_count ? ` · ${list.data.queue.dirty_count} queued` : "")
          : "Scripts the engine runs on devices"}
        actions={
          <>
            <Button
              variant="outlined"
              onClick={() => {
                const n = exportGridCsv(grid.current, "assemblies");
                notify({ severity: "success", message: `Exported ${n} assemblies.` });
              }}
              disabled={!list.data}
            >
              Export CSV
            </Button>
            {dm.admin && (
              <>
                <Button
                  variant="outlined"
                  endIcon={<ArrowDropDownIcon />}
                  aria-haspopup="menu"
                  onClick={(e) => setAdminMenu(e.currentTarget)}
                >
                  Catalog
                </Button>
                <Menu anchorEl={adminMenu} open={!!adminMenu} onClose={() => setAdminMenu(null)}>
                  <MenuItem
                    disabled={!dm.on || flush.isPending}
                    onClick={() => (setAdminMenu(null), flush.mutate())}
                  >
                    Write queued changes now
                  </MenuItem>
                  <MenuItem
                    disabled={!dm.on || sync.isPending}
                    onClick={() => (setAdminMenu(null), sync.mutate())}
                  >
                    Sync the official catalog
                  </MenuItem>
                  {!dm.on && (
                    <MenuItem disabled>
                      <Typography variant="caption">Both need Dev Mode</Typography>
                    </MenuItem>
                  )}
                </Menu>
              </>
            )}
            <Button
              variant="outlined"
              onClick={() => navigate("/assemblies/new?import=1")}
            >
              Import…
            </Button>
            <Button variant="contained" onClick={() => navigate("/assemblies/new")}>
              New script
            </Button>
          </>
        }
      />
      <DevModeBar />
      {list.data && <QueueLine queue={list.data.queue} admin={dm.admin} />}
      <Stack
        direction="row"
        spacing={1}
        sx={{ px: 3, pb: 1.5, alignItems: "center", flexWrap: "wrap", rowGap: 1 }}
      >
        <TextField
          size="small"
          label="Search"
          placeholder="Name, description, category"
          value={search}
          onChange={(e) => setParam("q", e.target.value)}
          sx={{ width: 230 }}
        />
        <Stack direction="row" spacing={0.5} role="group" aria-label="Source">
          {DOMAINS.map((d) => (
            <Chip
              key={d}
              label={`${DOMAIN_LABEL[d]} (${counts[d] ?? 0})`}
              color={domains.has(d)
                ? d === "official" ? "primary" : d === "community" ? "secondary" : "default"
                : "default"}
              variant={domains.has(d) ? "filled" : "outlined"}
              onClick={() => toggleDomain(d)}
              aria-pressed={domains.has(d)}
              clickable
            />
          ))}
        </Stack>
        <TextField
          select
          size="small"
          label="Kind"
          value={kind}
          onChange={(e) => setParam("kind", e.target.value)}
          sx={{ width: 140 }}
        >
          <MenuItem value="">Any kind</MenuItem>
          <MenuItem value="script">Scripts</MenuItem>
          <MenuItem value="workflow">Workflows</MenuItem>
          <MenuItem value="ansible">Ansible</MenuItem>
        </TextField>
        <TextField
          select
          size="small"
          label="Runs on"
          value={os}
          onChange={(e) => setParam("os", e.target.value)}
          sx={{ width: 160 }}
        >
          <MenuItem value="">Any system</MenuItem>
          <MenuItem value="Windows">Windows</MenuItem>
          <MenuItem value="Linux and macOS">Linux and macOS</MenuItem>
        </TextField>
        {(domains.size > 0 || kind || os || search) && (
          <Button
            size="small"
            onClick={() => setParams({}, { replace: true })}
          >
            Clear filters
          </Button>
        )}
      </Stack>
      {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
      <Box sx={{ flexGrow: 1, minHeight: 300, px: 3, pb: 2 }}>
        <DataGrid<AssemblyItem>
          label="Assemblies"
          emptyText={items.length
            ? "No assembly matches these filters"
            : "No assemblies yet: create a script or import one"}
          loading={list.isPending}
          rowData={shown}
          columnDefs={columns}
          quickFilterText={search}
          getRowId={(p) => p.data.assembly_guid}
          onGridReady={(e) => (grid.current = e.api)}
          rowHeight={44}
        />
      </Box>
      <Menu anchorEl={rowMenu?.anchor} open={!!rowMenu} onClose={() => setRowMenu(null)}>
        <MenuItem onClick={pick((i) => navigate(`/assemblies/${i.assembly_guid}`))}>Open</MenuItem>
        <MenuItem onClick={pick(setCloning)}>Clone to a domain…</MenuItem>
        <MenuItem
          component="a"
          href={rowMenu ? `/api/assemblies/${rowMenu.item.assembly_guid}/export` : undefined}
          download
          onClick={() => setRowMenu(null)}
        >
          Export JSON
        </MenuItem>
        {rowMenu && canWrite(rowMenu.item) && (
          <MenuItem onClick={pick(setDeleting)} sx={{ color: "error.main" }}>Delete…</MenuItem>
        )}
        {rowMenu && !canWrite(rowMenu.item) && (
          <Tooltip title="Official and community assemblies change only with Dev Mode">
            <span>
              <MenuItem disabled>Delete (read-only)</MenuItem>
            </span>
          </Tooltip>
        )}
      </Menu>
      <CloneDialog item={cloning} onClose={() => setCloning(null)} />
      <ConfirmDialog
        open={!!deleting}
        title={`Delete ${deleting?.display_name}?`}
        confirmLabel="Delete"
        destructive
        onClose={() => setDeleting(null)}
        onConfirm={async () => {
          await api(
            `/api/assemblies/${deleting!.assembly_guid}${query({ version: deleting!.version })}`,
            { method: "DELETE" },
          );
          notify({
            severity: "success",
            message: `${
              deleting!.display_name
            } deleted; the engine removes it from the database at its next write.`,
          });
          void qc.invalidateQueries({ queryKey: ["assemblies"] });
        }}
      >
        Scheduled jobs and watchdog actions that run it will fail until they name another script.
      </ConfirmDialog>
      <SyncReportDialog report={report} onClose={() => setReport(null)} />
    </>
  );
}
