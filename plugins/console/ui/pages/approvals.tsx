/**
 * Device approvals: the enrollment queue by status (new requests appear live), approve or
 * deny, resolve a hostname conflict (overwrite the existing device or let both coexist),
 * approve several rows without conflicts at once; admins also see wrong-code attempts.
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import FormControlLabel from "@mui/material/FormControlLabel";
import Link from "@mui/material/Link";
import Radio from "@mui/material/Radio";
import RadioGroup from "@mui/material/RadioGroup";
import Stack from "@mui/material/Stack";
import Tab from "@mui/material/Tab";
import Tabs from "@mui/material/Tabs";
import Typography from "@mui/material/Typography";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { ColDef, SelectionChangedEvent } from "ag-grid-community";
import { useState } from "react";
import { Link as RouterLink, useSearchParams } from "react-router";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api } from "../api/client.ts";
import type { Approval, WrongCode } from "../api/types.ts";
import { useIsAdmin } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { DataGrid } from "../components/grid.tsx";
import { PageHeader } from "../components/page.tsx";
import { ErrorState } from "../components/states.tsx";
import { ago } from "../lib/format.ts";

// Room for the "select all" box beside the header's name.
const SELECTION_COLUMN = {
  headerName: "Select",
  width: 104,
  minWidth: 104,
  resizable: false,
  sortable: false,
};

const STATUSES = ["pending", "approved", "completed", "denied", "expired", "all"] as const;
type Status = typeof STATUSES[number] | "wrong_code";

const LABELS: Record<Status, string> = {
  pending: "Pending",
  approved: "Approved",
  completed: "Enrolled",
  denied: "Denied",
  expired: "Expired",
  all: "All",
  wrong_code: "Wrong codes",
};

function ConflictChip({ a }: { a: Approval }) {
  const c = a.hostname_conflict;
  if (!c) return null;
  return c.fingerprint_match
    ? <Chip size="small" color="info" variant="outlined" label="Same key: re-enrollment" />
    : <Chip size="small" color="warning" label="Hostname taken" />;
}

function ConflictDialog(
  { approval, onClose, onApprove }: {
    approval: Approval | null;
    onClose: () => void;
    onApprove: (a: Approval, resolution: "overwrite" | "coexist") => Promise<unknown>;
  },
) {
  const [choice, setChoice] = useState<"overwrite" | "coexist">("coexist");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const c = approval?.hostname_conflict;
  return (
    <DialogFrame
      open={!!approval}
      onClose={() => {
        setError(null);
        onClose();
      }}
      title={`${approval?.hostname_claimed ?? ""} is already taken`}
      onSubmit={async () => {
        setBusy(true);
        setError(null);
        try {
          await onApprove(approval!, choice);
          onClose();
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
      actions={<Button type="submit" variant="contained" disabled={busy}>Approve</Button>}
    >
      <Typography sx={{ mb: 2 }}>
        Another device is already enrolled as <strong>{approval?.hostname_claimed}</strong>
        {c?.site_name ? ` in ${c.site_name}` : ""}
        {c?.guid && (
          <>
            {" ("}
            <Link component={RouterLink} to={`/devices/${c.guid}`}>open it</Link>
            {")"}
          </>
        )}
        , with a different key. Was this machine reinstalled, or is it a different machine?
      </Typography>
      <RadioGroup
        value={choice}
        onChange={(e) => setChoice(e.target.value as "overwrite" | "coexist")}
      >
        <FormControlLabel
          value="overwrite"
          control={<Radio />}
          label="Overwrite: the same machine, reinstalled. It takes over the existing device record (history, site, watchdogs)."
        />
        <FormControlLabel
          value="coexist"
          control={<Radio />}
          label={`Coexist: a different machine. It becomes a new device${
            approval?.alternate_hostname ? ` named ${approval.alternate_hostname}` : ""
          }.`}
        />
      </RadioGroup>
      {error !== null && <ErrorState error={error} title="Not approved" />}
    </DialogFrame>
  );
}

/** `/approvals`. */
export function ApprovalsPage() {
  const admin = useIsAdmin();
  const qc = useQueryClient();
  const { notify } = useToasts();
  const [params, setParams] = useSearchParams();
  const raw = params.get("status") as Status | null;
  const status: Status = raw && (raw in LABELS) && (raw !== "wrong_code" || admin)
    ? raw
    : "pending";
  const [selected, setSelected] = useState<Approval[]>([]);
  const [conflict, setConflict] = useState<Approval | null>(null);

  const list = useQuery({
    queryKey: ["approvals", status],
    queryFn: ({ signal }) =>
      api<{ approvals: Approval[] }>(`/api/admin/device-approvals?status=${status}`, { signal }),
    enabled: status !== "wrong_code",
  });
  const wrong = useQuery({
    queryKey: ["approvals", "wrong_code"],
    queryFn: ({ signal }) =>
      api<{ approvals: WrongCode[] }>("/api/admin/device-approvals?status=wrong_code", { signal }),
    enabled: status === "wrong_code",
  });

  const refresh = () => void qc.invalidateQueries({ queryKey: ["approvals"] });
  const approve = async (a: Approval, resolution?: "overwrite" | "coexist") => {
    await api(`/api/admin/device-approvals/${a.id}/approve`, {
      body: resolution ? { conflict_resolution: resolution } : {},
    });
    notify({
      severity: "success",
      message: `${a.hostname_claimed} approved; it enrolls at its next poll.`,
    });
    refresh();
  };
  const single = useMutation({
    mutationFn: (v: { a: Approval; deny?: boolean }) =>
      v.deny
        ? api(`/api/admin/device-approvals/${v.a.id}/deny`, { method: "POST" }).then(() => {
          notify({ severity: "success", message: `${v.a.hostname_claimed} denied.` });
          refresh();
        })
        : approve(v.a),
  });
  const bulk = useMutation({
    mutationFn: async () => {
      const ok = selected.filter((a) => a.status === "pending" && !a.conflict_requires_prompt);
      const failed: string[] = [];
      for (const a of ok) {
        try {
          await api(`/api/admin/device-approvals/${a.id}/approve`, { body: {} });
        } catch {
          failed.push(a.hostname_claimed);
        }
      }
      return { approved: ok.length - failed.length, skipped: selected.length - ok.length, failed };
    },
    onSuccess: (r) => {
      notify({
        severity: r.failed.length ? "warning" : "success",
        message: `${r.approved} approved` +
          (r.skipped ? `, ${r.skipped} with conflicts left for review` : "") +
          (r.failed.length ? `, failed: ${r.failed.join(", ")}` : "") + ".",
      });
      setSelected([]);
      refresh();
    },
  });

  const columns: ColDef<Approval>[] = [
    { headerName: "Hostname", field: "hostname_claimed", flex: 1, minWidth: 150 },
    { headerName: "Site", field: "site_name", width: 150, valueFormatter: (p) => p.value ?? "—" },
    {
      headerName: "Requested",
      field: "created_at",
      width: 130,
      valueFormatter: (p) => ago(p.value),
    },
    {
      headerName: "Key fingerprint",
      field: "ssl_key_fingerprint_claimed",
      width: 140,
      valueFormatter: (p) => (p.value ? `${String(p.value).slice(0, 12)}…` : ""),
      tooltipField: "ssl_key_fingerprint_claimed",
    },
    { headerName: "From", field: "remote_addr", width: 120 },
    {
      headerName: "Conflict",
      colId: "conflict",
      width: 160,
      sortable: false,
      cellRenderer: (p: { data?: Approval }) => p.data && <ConflictChip a={p.data} />,
    },
  ];
  if (status !== "pending") {
    columns.push(
      { headerName: "Status", field: "status", width: 110 },
      { headerName: "Decided by", field: "approved_by_username", width: 130 },
    );
  } else {
    columns.push({
      headerName: "Decision",
      colId: "decide",
      width: 180,
      pinned: "right",
      sortable: false,
      cellRenderer: (p: { data?: Approval }) =>
        p.data && (
          <Stack direction="row" spacing={0.5} sx={{ py: 0.5 }}>
            <Button
              size="small"
              variant="contained"
              aria-label={`Approve ${p.data.hostname_claimed}`}
              disabled={single.isPending}
              onClick={() =>
                p.data!.conflict_requires_prompt
                  ? setConflict(p.data!)
                  : single.mutate({ a: p.data! })}
            >
              Approve
            </Button>
            <Button
              size="small"
              color="error"
              aria-label={`Deny ${p.data.hostname_claimed}`}
              disabled={single.isPending}
              onClick={() => single.mutate({ a: p.data!, deny: true })}
            >
              Deny
            </Button>
          </Stack>
        ),
    });
  }

  const tabs = STATUSES.filter(() => true) as Status[];
  if (admin) tabs.push("wrong_code");
  const pendingCount = status === "pending" ? list.data?.approvals.length : undefined;

  return (
    <>
      <PageHeader
        title="Device approvals"
        subtitle={
          <>
            Devices that enrolled with a site code wait here.{" "}
            {admin && (
              <Link component={RouterLink} to="/sites">Open a site's auto-approval window</Link>
            )}
          </>
        }
        actions={status === "pending" && (
          <Button
            variant="contained"
            disabled={!selected.length || bulk.isPending}
            onClick={() => bulk.mutate()}
          >
            Approve selected{selected.length ? ` (${selected.length})` : ""}
          </Button>
        )}
      />
      <Box sx={{ px: 3 }}>
        <Tabs
          value={status}
          onChange={(_, v: Status) => {
            setSelected([]);
            setParams(v === "pending" ? {} : { status: v });
          }}
          aria-label="Approval status"
          variant="scrollable"
        >
          {tabs.map((s) => (
            <Tab
              key={s}
              value={s}
              label={s === "pending" && pendingCount ? `${LABELS[s]} (${pendingCount})` : LABELS[s]}
            />
          ))}
        </Tabs>
      </Box>
      {single.error && <ErrorState error={single.error} title="Not done" />}
      {bulk.error && <ErrorState error={bulk.error} title="Not done" />}
      {status !== "wrong_code" && list.error && (
        <ErrorState
          error={list.error}
          onRetry={() => list.refetch()}
        />
      )}
      {status === "wrong_code" && wrong.error && (
        <ErrorState
          error={wrong.error}
          onRetry={() => wrong.refetch()}
        />
      )}
      {status === "pending" && selected.some((a) => a.conflict_requires_prompt) && (
        <Alert severity="info" sx={{ mx: 3, mt: 1 }}>
          Rows with a hostname conflict are skipped by “Approve selected”: approve them one by one.
        </Alert>
      )}
      <Box sx={{ flexGrow: 1, minHeight: 240, px: 3, py: 2 }}>
        {status === "wrong_code"
          ? (
            <DataGrid<WrongCode>
              label="Wrong enrollment codes"
              loading={wrong.isPending}
              rowData={wrong.data?.approvals ?? []}
              getRowId={(p) => String(p.data.id)}
              emptyText="No wrong codes in the last 24 hours"
              columnDefs={[
                { headerName: "Hostname", field: "hostname_claimed", flex: 1 },
                { headerName: "Code tried", field: "enrollment_code_mask", width: 220 },
                { headerName: "Attempts", field: "attempt_count", width: 110 },
                { headerName: "From", field: "remote_addr", width: 140 },
                {
                  headerName: "Last attempt",
                  field: "last_seen_at",
                  width: 140,
                  valueFormatter: (p) => ago(p.value),
                },
                { headerName: "Error", field: "last_error", flex: 1 },
              ]}
            />
          )
          : (
            <DataGrid<Approval>
              label={`${LABELS[status]} approvals`}
              loading={list.isPending}
              rowData={list.data?.approvals ?? []}
              getRowId={(p) => p.data.id}
              columnDefs={columns}
              rowHeight={44}
              emptyText={status === "pending"
                ? "No device is waiting. New requests appear here as they arrive."
                : "No approvals with this status"}
              rowSelection={status === "pending"
                ? {
                  mode: "multiRow",
                  checkboxes: true,
                  headerCheckbox: true,
                  enableClickSelection: false,
                }
                : undefined}
              selectionColumnDef={SELECTION_COLUMN}
              onSelectionChanged={(e: SelectionChangedEvent<Approval>) =>
                setSelected(e.api.getSelectedRows())}
            />
          )}
      </Box>
      <ConflictDialog approval={conflict} onClose={() => setConflict(null)} onApprove={approve} />
    </>
  );
}
