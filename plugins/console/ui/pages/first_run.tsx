/**
 * The first-start gate: vault setup (passphrase mode) or unlock after a restart, then
 * the first admin account. Accepted from the engine's own machine, or anywhere with the
 * one-time bootstrap value the engine printed at start.
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import Button from "@mui/material/Button";
import Collapse from "@mui/material/Collapse";
import Link from "@mui/material/Link";
import Stack from "@mui/material/Stack";
import Step from "@mui/material/Step";
import StepLabel from "@mui/material/StepLabel";
import Stepper from "@mui/material/Stepper";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Navigate } from "react-router";
import { api, ApiError } from "../api/client.ts";
import type { BootstrapState } from "../api/types.ts";
import { sessionKeys, useBootstrap } from "../app/session.tsx";
import { ErrorState, Loading } from "../components/states.tsx";
import { PublicFrame } from "./public_frame.tsx";

function BootstrapValueField(
  { value, onChange }: { value: string; onChange: (v: string) => void },
) {
  const [show, setShow] = useState(false);
  return (
    <>
      <Link
        component="button"
        type="button"
        variant="body2"
        onClick={() => setShow(!show)}
        sx={{ alignSelf: "start" }}
      >
        {show ? "Hide the bootstrap value" : "Not on the engine's machine?"}
      </Link>
      <Collapse in={show}>
        <TextField
          label="One-time bootstrap value"
          fullWidth
          value={value}
          onChange={(e) => onChange(e.target.value)}
          helperText="Printed in the engine's console at start while no admin exists (bbt_…)."
        />
      </Collapse>
    </>
  );
}

function explain(err: unknown): string | null {
  if (!(err instanceof ApiError)) return null;
  if (err.code === "bootstrap_not_allowed") {
    return "Open this page on the engine's own machine (http://localhost), or paste the bootstrap value the engine printed at start.";
  }
  if (err.status === 429) {
    return `Too many wrong passphrases. Try again in ${err.retryAfterSeconds ?? 60} seconds.`;
  }
  return null;
}

function VaultStep({ unlock }: { unlock: boolean }) {
  const qc = useQueryClient();
  const [cipher, setCipher] = useState("");
  const [again, setAgain] = useState("");
  const [bootstrap, setBootstrap] = useState("");
  const mismatch = !unlock && again.length > 0 && again !== cipher;
  const go = useMutation({
    mutationFn: () =>
      api<BootstrapState>(`/api/bootstrap/aegis/${unlock ? "unlock" : "setup"}`, {
        body: { cipher, ...(bootstrap.trim() ? { bootstrap_token: bootstrap.trim() } : {}) },
      }),
    onSuccess: (state) => qc.setQueryData(sessionKeys.bootstrap, state),
  });
  const hint = explain(go.error);
  return (
    <Stack
      spacing={2}
      component="form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (cipher.length >= 12 && !mismatch) go.mutate();
      }}
    >
      <Typography color="text.secondary">
        {unlock
          ? "The engine restarted and its vault is locked. Enter the vault passphrase to unlock stored secrets."
          : "Choose the vault passphrase. It protects stored secrets (credentials, TOTP seeds, enrollment codes) and is never stored: you enter it after every restart."}
      </Typography>
      <TextField
        label="Vault passphrase"
        type="password"
        autoComplete={unlock ? "current-password" : "new-password"}
        value={cipher}
        onChange={(e) => setCipher(e.target.value)}
        autoFocus
        helperText={unlock ? " " : "At least 12 characters."}
      />
      {!unlock && (
        <TextField
          label="Vault passphrase again"
          type="password"
          autoComplete="new-password"
          value={again}
          onChange={(e) => setAgain(e.target.value)}
          error={mismatch}
          helperText={mismatch ? "The passphrases differ" : " "}
        />
      )}
      {!unlock && <BootstrapValueField value={bootstrap} onChange={setBootstrap} />}
      {go.error && (hint
        ? <Alert severity="error">{hint}</Alert>
        : <ErrorState error={go.error} title="Not done" />)}
      <Button
        type="submit"
        variant="contained"
        size="large"
        disabled={cipher.length < 12 || mismatch || (!unlock && !again) || go.isPending}
      >
        {unlock ? "Unlock the vault" : "Set up the vault"}
      </Button>
    </Stack>
  );
}

function AdminStep({ onCreated }: { onCreated: (username: string) => void }) {
  const qc = useQueryClient();
  const [username, setUsername] = useState("admin");
  const [displayName, setDisplayName] = useState("");
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");
  const [bootstrap, setBootstrap] = useState("");
  const mismatch = again.length > 0 && again !== password;
  const create = useMutation({
    mutationFn: () =>
      api<{ username: string }>("/api/bootstrap/admin/setup", {
        body: {
          username: username.trim(),
          password,
          ...(displayName.trim() ? { display_name: displayName.trim() } : {}),
          ...(bootstrap.trim() ? { bootstrap_token: bootstrap.trim() } : {}),
        },
      }),
    onSuccess: async (r) => {
      // The page moves on to sign-in once the engine reports the next phase.
      onCreated(r.username);
      await qc.invalidateQueries({ queryKey: sessionKeys.bootstrap });
    },
  });
  const hint = explain(create.error);
  return (
    <Stack
      spacing={2}
      component="form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (username.trim() && password && !mismatch) create.mutate();
      }}
    >
      <Typography color="text.secondary">
        Create the first administrator. You set up an authenticator app (TOTP) at the first sign-in.
      </Typography>
      <TextField
        label="Username"
        value={username}
        onChange={(e) => setUsername(e.target.value)}
        autoComplete="username"
        autoFocus
      />
      <TextField
        label="Display name (optional)"
        value={displayName}
        onChange={(e) => setDisplayName(e.target.value)}
      />
      <TextField
        label="Password"
        type="password"
        autoComplete="new-password"
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        helperText="At least 12 characters; a passphrase is best."
      />
      <TextField
        label="Password again"
        type="password"
        autoComplete="new-password"
        value={again}
        onChange={(e) => setAgain(e.target.value)}
        error={mismatch}
        helperText={mismatch ? "The passwords differ" : " "}
      />
      <BootstrapValueField value={bootstrap} onChange={setBootstrap} />
      {create.error && (hint
        ? <Alert severity="error">{hint}</Alert>
        : <ErrorState error={create.error} title="Admin not created" />)}
      <Button
        type="submit"
        variant="contained"
        size="large"
        disabled={!username.trim() || !password || !again || mismatch || create.isPending}
      >
        Create admin
      </Button>
    </Stack>
  );
}

/** `/setup`. */
export function FirstRunPage() {
  const boot = useBootstrap();
  const [created, setCreated] = useState<string | null>(null);
  if (boot.isPending) return <Loading label="Checking the engine" />;
  if (boot.error) {
    return (
      <PublicFrame title="Cannot reach the engine">
        <ErrorState error={boot.error} onRetry={() => boot.refetch()} />
      </PublicFrame>
    );
  }
  const phase = boot.data.phase;
  if (phase === "login_required") {
    return (
      <Navigate
        to={created ? `/sign-in?username=${encodeURIComponent(created)}&welcome=1` : "/sign-in"}
        replace
      />
    );
  }
  const passphrase = boot.data.aegis.mode !== "keyfile";
  const steps = [...(passphrase ? ["Vault"] : []), "First admin", "Sign in"];
  const active = phase === "admin_setup_required" ? steps.indexOf("First admin") : 0;
  return (
    <PublicFrame
      title={phase === "aegis_unlock_required"
        ? "Unlock the vault"
        : phase === "aegis_setup_required"
        ? "Welcome: set up the vault"
        : "Welcome: create the first admin"}
    >
      {phase !== "aegis_unlock_required" && (
        <Stepper activeStep={active} sx={{ mb: 3 }} aria-label="First start steps">
          {steps.map((s) => (
            <Step key={s}>
              <StepLabel>{s}</StepLabel>
            </Step>
          ))}
        </Stepper>
      )}
      {phase === "aegis_setup_required" && <VaultStep unlock={false} />}
      {phase === "aegis_unlock_required" && <VaultStep unlock />}
      {phase === "admin_setup_required" && <AdminStep onCreated={setCreated} />}
    </PublicFrame>
  );
}
