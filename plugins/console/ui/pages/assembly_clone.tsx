/**
 * Clone an assembly into a domain (the copy gets a new GUID; the original stays). Anyone
 * may clone into User-Created; Official and Community need an admin with Dev Mode.
 *
 * @module
 */
import Button from "@mui/material/Button";
import MenuItem from "@mui/material/MenuItem";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate } from "react-router";
import { DialogFrame } from "../account/dialog_frame.tsx";
import { api } from "../api/client.ts";
import type { AssemblyDomain, AssemblyItem } from "../api/types.ts";
import { useToasts } from "../app/toasts.tsx";
import { DOMAIN_LABEL } from "../components/badges.tsx";
import { useDevMode } from "../components/dev_mode.tsx";
import { ErrorState } from "../components/states.tsx";

/** The clone dialog (open while `item` is set). */
export function CloneDialog(
  { item, onClose }: {
    item: Pick<AssemblyItem, "assembly_guid" | "display_name"> | null;
    onClose: () => void;
  },
) {
  const dm = useDevMode();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const { notify } = useToasts();
  const [domain, setDomain] = useState<AssemblyDomain>("user_created");
  const clone = useMutation({
    mutationFn: () =>
      api<AssemblyItem>(`/api/assemblies/${item!.assembly_guid}/clone`, {
        body: { target_domain: domain },
      }),
    onSuccess: (copy) => {
      notify({
        severity: "success",
        message: `Copied to ${DOMAIN_LABEL[domain]} as ${copy.display_name}.`,
      });
      void qc.invalidateQueries({ queryKey: ["assemblies"] });
      onClose();
      navigate(`/assemblies/${copy.assembly_guid}`);
    },
  });
  return (
    <DialogFrame
      open={!!item}
      onClose={onClose}
      title={`Clone ${item?.display_name ?? ""}`}
      onSubmit={() => clone.mutate()}
      actions={
        <Button type="submit" variant="contained" disabled={clone.isPending}>
          Clone
        </Button>
      }
    >
      <Stack spacing={2} sx={{ pt: 1 }}>
        <Typography color="text.secondary">
          The copy gets a new GUID and can be changed on its own; the original stays as it is.
        </Typography>
        <TextField
          select
          label="Target domain"
          value={domain}
          onChange={(e) => setDomain(e.target.value as AssemblyDomain)}
          helperText={dm.on
            ? "Dev Mode is on: every domain is open to you."
            : "Official and Community need an admin with Dev Mode."}
        >
          <MenuItem value="user_created">User-Created</MenuItem>
          <MenuItem value="community" disabled={!dm.on}>Community</MenuItem>
          <MenuItem value="official" disabled={!dm.on}>Official</MenuItem>
        </TextField>
        {clone.error && <ErrorState error={clone.error} title="Not cloned" />}
      </Stack>
    </DialogFrame>
  );
}
