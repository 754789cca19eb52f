/**
 * Live actions on the device page's Services and Processes tabs: start, stop or restart
 * a service, end a process (its name is checked by the agent first, so a reused process
 * id is not hit), and refresh the snapshot now. Each goes to the agent at once; the
 * answer (or the failure the agent reported) shows as a toast, and the snapshot reloads.
 *
 * @module
 */
import Button from "@mui/material/Button";
import Checkbox from "@mui/material/Checkbox";
import FormControlLabel from "@mui/material/FormControlLabel";
import Stack from "@mui/material/Stack";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import type { ColDef } from "ag-grid-community";
import { useState } from "react";
import { api } from "../api/client.ts";
import { useToasts } from "../app/toasts.tsx";
import { ConfirmDialog } from "../components/confirm.tsx";
import { num, text } from "../lib/format.ts";

/** What the engine answers for an action. */
interface Action {
  id: string;
  kind: string;
  status: "pending" | "succeeded" | "failed" | "timed_out";
  result: { error?: string; output?: string } | null;
}

type ActionBody =
  | { kind: "service"; action: "start" | "stop" | "restart"; name: string }
  | { kind: "process_kill"; pid: number; name?: string; force?: boolean }
  | { kind: "refresh"; parts?: Array<"services" | "processes"> };

/** Runs live actions on one device. */
export function useDeviceAction(guid: string) {
  const qc = useQueryClient();
  const { notify } = useToasts();
  return useMutation({
    mutationFn: (body: ActionBody & { label: string }) => {
      const { label: _label, ...rest } = body;
      return api<Action>(`/api/terminal/devices/${guid}/actions`, { body: rest });
    },
    onSuccess: (a, body) => {
      if (a.status === "succeeded") {
        notify({ severity: "success", message: `${body.label}: done.` });
      } else if (a.status === "pending" || a.status === "timed_out") {
        notify({
          severity: "info",
          message: `${body.label}: sent; the agent has not answered yet.`,
        });
      } else {
        notify({
          severity: "error",
          message: `${body.label}: ${a.result?.error ?? "the agent reported a failure"}`,
        });
      }
      void qc.invalidateQueries({ queryKey: ["device", guid.toUpperCase()] });
    },
    onError: (err, body) =>
      notify({
        severity: "error",
        message: `${body.label}: ${err instanceof Error ? err.message : String(err)}`,
      }),
  });
}

/** "Refresh now" for the services and processes snapshot. */
export function RefreshButton(
  { guid, part, disabled }: { guid: string; part: "services" | "processes"; disabled?: boolean },
) {
  const run = useDeviceAction(guid);
  return (
    <Button
      size="small"
      variant="outlined"
      disabled={disabled || run.isPending}
      onClick={() => run.mutate({ kind: "refresh", parts: [part], label: `Refresh ${part}` })}
    >
      {run.isPending ? "Refreshing…" : "Refresh now"}
    </Button>
  );
}

/** The Actions column of the services grid. */
export function serviceActionsColumn(
  run: ReturnType<typeof useDeviceAction>,
  disabled: boolean,
): ColDef {
  return {
    headerName: "Actions",
    colId: "actions",
    width: 230,
    sortable: false,
    cellRenderer: (p: { data?: Record<string, unknown> }) => {
      const name = text(p.data?.name) ?? text(p.data?.service_name);
      if (!name) return null;
      return (
        <Stack direction="row" spacing={0.5}>
          {(["start", "stop", "restart"] as const).map((action) => (
            <Button
              key={action}
              size="small"
              disabled={disabled || run.isPending}
              aria-label={`${action[0]!.toUpperCase()}${action.slice(1)} ${name}`}
              onClick={() =>
                run.mutate({
                  kind: "service",
                  action,
                  name,
                  label: `${action[0]!.toUpperCase()}${action.slice(1)} ${name}`,
                })}
            >
              {action}
            </Button>
          ))}
        </Stack>
      );
    },
  };
}

/** The Actions column of the processes grid (with its confirmation). */
export function useProcessActions(guid: string, disabled: boolean) {
  const run = useDeviceAction(guid);
  const [target, setTarget] = useState<{ pid: number; name: string } | null>(null);
  const [force, setForce] = useState(false);
  const column: ColDef = {
    headerName: "Actions",
    colId: "actions",
    width: 110,
    sortable: false,
    cellRenderer: (p: { data?: Record<string, unknown> }) => {
      const pid = num(p.data?.pid);
      const name = text(p.data?.name) ?? text(p.data?.process_name) ?? "";
      if (pid === null) return null;
      return (
        <Button
          size="small"
          color="error"
          disabled={disabled}
          aria-label={`End process ${name} (${pid})`}
          onClick={() => (setForce(false), setTarget({ pid, name }))}
        >
          End
        </Button>
      );
    },
  };
  const dialog = (
    <ConfirmDialog
      open={!!target}
      title={`End ${target?.name ?? ""} (process ${target?.pid ?? ""})?`}
      confirmLabel="End process"
      destructive
      onClose={() => setTarget(null)}
      onConfirm={() =>
        run.mutateAsync({
          kind: "process_kill",
          pid: target!.pid,
          name: target!.name || undefined,
          force,
          label: `End ${target!.name} (${target!.pid})`,
        })}
    >
      The process is asked to stop (SIGTERM); with force it is killed at once (SIGKILL, or taskkill
      /F on Windows).
      <FormControlLabel
        sx={{ display: "block", mt: 1 }}
        control={<Checkbox checked={force} onChange={(e) => setForce(e.target.checked)} />}
        label="Force"
      />
    </ConfirmDialog>
  );
  return { column, dialog };
}
