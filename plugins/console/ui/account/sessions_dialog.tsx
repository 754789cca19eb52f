/**
 * Your live sessions (where you are signed in) with a revoke button each, and your API
 * tokens: create (the value is shown once), list, revoke.
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import Button from "@mui/material/Button";
import Checkbox from "@mui/material/Checkbox";
import Chip from "@mui/material/Chip";
import FormControlLabel from "@mui/material/FormControlLabel";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client.ts";
import type { ApiToken, OperatorSession } from "../api/types.ts";
import { useSignOut } from "../app/session.tsx";
import { useToasts } from "../app/toasts.tsx";
import { CopyField } from "../components/copy.tsx";
import { DataGrid } from "../components/grid.tsx";
import { ErrorState } from "../components/states.tsx";
import { ago, when } from "../lib/format.ts";
import { DialogFrame } from "./dialog_frame.tsx";

/** My sessions. */
export function SessionsDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const signOut = useSignOut();
  const { notify } = useToasts();
  const list = useQuery({
    queryKey: ["sessions"],
    queryFn: ({ signal }) => api<{ sessions: OperatorSession[] }>("/api/auth/sessions", { signal }),
    enabled: open,
  });
  const revoke = useMutation({
    mutationFn: (s: OperatorSession) => api(`/api/auth/sessions/${s.id}`, { method: "DELETE" }),
    onSuccess: async (_, s) => {
      if (s.current) return await signOut();
      notify({ severity: "success", message: "Session revoked." });
      void qc.invalidateQueries({ queryKey: ["sessions"] });
    },
  });
  return (
    <DialogFrame open={open} onClose={onClose} title="My sessions" maxWidth="md">
      {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
      {revoke.error && <ErrorState error={revoke.error} title="Not revoked" />}
      <DataGrid<OperatorSession>
        label="Your sessions"
        height={300}
        loading={list.isPending}
        rowData={list.data?.sessions ?? []}
        getRowId={(p) => p.data.id}
        emptyText="No live sessions"
        columnDefs={[
          {
            headerName: "Where",
            flex: 2,
            valueGetter: (p) => `${p.data?.ip ?? "?"} · ${p.data?.user_agent?.slice(0, 60) ?? ""}`,
            cellRenderer: (p: { data?: OperatorSession; value: string }) => (
              <>
                {p.data?.current && (
                  <Chip size="small" color="primary" label="This browser" sx={{ mr: 1 }} />
                )}
                {p.value}
              </>
            ),
          },
          { headerName: "How", field: "method", width: 130 },
          { headerName: "Signed in", valueGetter: (p) => when(p.data?.created_at), width: 170 },
          { headerName: "Last active", valueGetter: (p) => ago(p.data?.last_seen_at), width: 130 },
          {
            headerName: "Action",
            width: 110,
            sortable: false,
            cellRenderer: (p: { data?: OperatorSession }) =>
              p.data && (
                <Button size="small" color="error" onClick={() => revoke.mutate(p.data!)}>
                  {p.data.current ? "Sign out" : "Revoke"}
                </Button>
              ),
          },
        ]}
      />
    </DialogFrame>
  );
}

/** My API tokens. */
export function TokensDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const [name, setName] = useState("");
  const [days, setDays] = useState("90");
  const [readOnly, setReadOnly] = useState(true);
  const [created, setCreated] = useState<ApiToken | null>(null);
  const list = useQuery({
    queryKey: ["tokens"],
    queryFn: ({ signal }) => api<{ tokens: ApiToken[] }>("/api/auth/tokens", { signal }),
    enabled: open,
  });
  const create = useMutation({
    mutationFn: () =>
      api<ApiToken>("/api/auth/tokens", {
        body: { name: name.trim(), expires_in_days: Number(days), read_only: readOnly },
      }),
    onSuccess: (t) => {
      setCreated(t);
      setName("");
      void qc.invalidateQueries({ queryKey: ["tokens"] });
    },
  });
  const revoke = useMutation({
    mutationFn: (t: ApiToken) => api(`/api/auth/tokens/${t.id}`, { method: "DELETE" }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ["tokens"] }),
  });
  const daysOk = /^\d+$/.test(days) && Number(days) >= 1 && Number(days) <= 365;
  return (
    <DialogFrame
      open={open}
      onClose={() => {
        setCreated(null);
        onClose();
      }}
      title="API tokens"
      maxWidth="md"
    >
      {created?.token && (
        <Alert severity="success" sx={{ mb: 2 }}>
          Token “{created.name}” created. Copy it now: it is not shown again.
          <Stack sx={{ mt: 1 }}>
            <CopyField label="API token" value={created.token} />
          </Stack>
        </Alert>
      )}
      <Stack
        direction="row"
        spacing={1}
        component="form"
        sx={{ alignItems: "flex-start", mb: 2 }}
        onSubmit={(e) => {
          e.preventDefault();
          if (name.trim() && daysOk) create.mutate();
        }}
      >
        <TextField
          size="small"
          label="Token name"
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <TextField
          size="small"
          label="Expires in (days)"
          value={days}
          onChange={(e) => setDays(e.target.value)}
          error={!daysOk}
          helperText={daysOk ? " " : "1 to 365"}
          sx={{ width: 150 }}
        />
        <FormControlLabel
          control={<Checkbox checked={readOnly} onChange={(e) => setReadOnly(e.target.checked)} />}
          label="Read only"
        />
        <Button
          type="submit"
          variant="contained"
          disabled={!name.trim() || !daysOk || create.isPending}
        >
          Create token
        </Button>
      </Stack>
      {create.error && <ErrorState error={create.error} title="Token not created" />}
      {list.error && <ErrorState error={list.error} onRetry={() => list.refetch()} />}
      {revoke.error && <ErrorState error={revoke.error} title="Not revoked" />}
      <DataGrid<ApiToken>
        label="Your API tokens"
        height={260}
        loading={list.isPending}
        rowData={list.data?.tokens ?? []}
        getRowId={(p) => p.data.id}
        emptyText="No API tokens"
        columnDefs={[
          { headerName: "Name", field: "name", flex: 1 },
          {
            headerName: "Access",
            valueGetter: (p) => (p.data?.read_only ? "Read only" : "Read and write"),
            width: 140,
          },
          { headerName: "Expires", valueGetter: (p) => when(p.data?.expires_at), width: 170 },
          { headerName: "Last used", valueGetter: (p) => ago(p.data?.last_used_at), width: 130 },
          {
            headerName: "Action",
            width: 100,
            sortable: false,
            cellRenderer: (p: { data?: ApiToken }) =>
              p.data && (
                <Button size="small" color="error" onClick={() => revoke.mutate(p.data!)}>
                  Revoke
                </Button>
              ),
          },
        ]}
      />
    </DialogFrame>
  );
}
