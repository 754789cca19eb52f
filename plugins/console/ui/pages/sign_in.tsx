/**
 * Sign-in: password, then the second factor — TOTP setup (a QR code drawn here from the
 * engine's otpauth URL, plus the secret in groups of four) or a TOTP code — or a passkey
 * instead of both. Messages for throttling (with the wait), lockout, a locked vault and
 * directory errors come from the engine's error codes.
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Divider from "@mui/material/Divider";
import Link from "@mui/material/Link";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import Typography from "@mui/material/Typography";
import { browserSupportsWebAuthn, startAuthentication } from "@simplewebauthn/browser";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import QRCode from "qrcode";
import { useEffect, useState } from "react";
import { Link as RouterLink, Navigate, useNavigate, useSearchParams } from "react-router";
import { api, ApiError } from "../api/client.ts";
import type { LoginReply } from "../api/types.ts";
import { safeNext, sessionKeys, useBootstrap, useMeQuery } from "../app/session.tsx";
import { ErrorState, Loading } from "../components/states.tsx";
import { PublicFrame } from "./public_frame.tsx";

type Pending = Extract<LoginReply, { status: "mfa_required" }>;

/** A sign-in error in words an operator can act on (null: show the API's own). */
export function signInMessage(err: unknown): string | null {
  if (!(err instanceof ApiError)) return null;
  switch (err.code) {
    case "invalid_credentials":
      return "Wrong username or password.";
    case "too_many_requests":
    case "rate_limited":
      return `Too many failed attempts. Try again in ${formatWait(err.retryAfterSeconds)}.`;
    case "auth_reset_required":
      return "This account is locked until an admin resets it.";
    case "aegis_locked":
      return "The engine's vault is locked, so nobody can sign in until it is unlocked.";
    case "invalid_code":
      return "That code is wrong, expired or already used. Enter the current code.";
    case "expired":
    case "invalid_session":
      return "The sign-in took too long. Enter your password again.";
    case "passkey_rejected":
      return "The passkey was not accepted. Sign in with your password, or try another passkey.";
    case "directory_unavailable":
      return "The directory your account comes from cannot be reached. Try again later.";
  }
  if (err.status === 429) {
    return `Too many attempts. Try again in ${formatWait(err.retryAfterSeconds)}.`;
  }
  return null;
}

function formatWait(seconds: number | undefined): string {
  const s = Math.max(1, Math.ceil(seconds ?? 60));
  return s < 120 ? `${s} seconds` : `${Math.ceil(s / 60)} minutes`;
}

function Problem({ error }: { error: unknown }) {
  const text = signInMessage(error);
  if (!text) return <ErrorState error={error} title="Not signed in" />;
  const vault = error instanceof ApiError && error.code === "aegis_locked";
  return (
    <Alert severity="error" role="alert">
      {text}
      {vault && (
        <>
          {" "}
          <Link component={RouterLink} to="/setup">Unlock it</Link>
        </>
      )}
    </Alert>
  );
}

/** The QR code of an otpauth URL, drawn in the browser. */
function TotpQr({ url, username }: { url: string; username: string }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    QRCode.toDataURL(url, { margin: 1, width: 168, errorCorrectionLevel: "M" })
      .then((d: string) => live && setSrc(d))
      .catch(() => live && setSrc(null));
    return () => {
      live = false;
    };
  }, [url]);
  return (
    <Box
      sx={{ display: "flex", justifyContent: "center", bgcolor: "#fff", borderRadius: 1, p: 0.5 }}
    >
      {src
        ? (
          <img
            src={src}
            width={200}
            height={200}
            alt={`QR code to add ${username} to an authenticator app`}
          />
        )
        : <Box sx={{ width: 200, height: 200 }} />}
    </Box>
  );
}

/** "JBSW Y3DP EHPK 3PXP" */
export function groupSecret(secret: string): string {
  return secret.replace(/\s+/g, "").replace(/(.{4})/g, "$1 ").trim();
}

/** `/sign-in`. */
export function SignInPage() {
  const [params] = useSearchParams();
  const next = safeNext(params.get("next"));
  const navigate = useNavigate();
  const qc = useQueryClient();
  const boot = useBootstrap();
  const me = useMeQuery();
  const [username, setUsername] = useState(params.get("username") ?? "");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [pending, setPending] = useState<Pending | null>(null);

  const done = async () => {
    await qc.invalidateQueries({ queryKey: sessionKeys.me });
    navigate(next, { replace: true });
  };
  const login = useMutation({
    mutationFn: () =>
      api<LoginReply>("/api/auth/login", {
        body: { username: username.trim(), password },
        quiet401: true,
      }),
    onSuccess: async (r) => {
      setPassword("");
      if (r.status === "ok") return await done();
      setCode("");
      setPending(r);
    },
  });
  const verify = useMutation({
    mutationFn: () =>
      api<LoginReply>("/api/auth/mfa/verify", {
        body: { pending_token: pending!.pending_token, code },
        quiet401: true,
      }),
    onSuccess: done,
    onError: (err) => {
      if (err instanceof ApiError && (err.code === "expired" || err.code === "invalid_session")) {
        setPending(null);
      }
      setCode("");
    },
  });
  const passkey = useMutation({
    mutationFn: async () => {
      const options = await api<Record<string, unknown>>(
        "/api/auth/passkeys/authenticate/options",
        {
          body: {},
          quiet401: true,
        },
      );
      // deno-lint-ignore no-explicit-any -- the options are the library's own JSON type
      const response = await startAuthentication({ optionsJSON: options as any });
      return api("/api/auth/passkeys/authenticate/verify", { body: { response }, quiet401: true });
    },
    onSuccess: done,
  });

  if (boot.isPending || me.isPending) return <Loading label="Loading" />;
  if (
    boot.data && boot.data.phase !== "login_required" && boot.data.phase !== "aegis_unlock_required"
  ) {
    return <Navigate to="/setup" replace />;
  }
  if (me.data) return <Navigate to={next} replace />;
  const canPasskey = browserSupportsWebAuthn() && globalThis.isSecureContext;
  const codeOk = /^\d{6}$/.test(code);

  if (pending) {
    const setup = pending.stage === "setup";
    return (
      <PublicFrame title={setup ? "Set up your authenticator app" : "Enter your code"}>
        <Stack
          spacing={1.5}
          component="form"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            if (codeOk) verify.mutate();
          }}
        >
          {setup && pending.otpauth_url && (
            <>
              <Typography variant="body2" color="text.secondary">
                Scan this QR code with an authenticator app (or type the key), then enter the
                six-digit code it shows.
              </Typography>
              <TotpQr url={pending.otpauth_url} username={pending.username} />
              <TextField
                label="Setup key"
                value={groupSecret(pending.secret ?? "")}
                slotProps={{
                  input: {
                    readOnly: true,
                    sx: { fontFamily: "ui-monospace, monospace", letterSpacing: 1 },
                  },
                }}
                onFocus={(e) => e.target.select()}
              />
            </>
          )}
          {!setup && (
            <Typography color="text.secondary">
              Open your authenticator app and enter the six-digit code for {pending.username}.
            </Typography>
          )}
          <TextField
            label="Six-digit code"
            value={code}
            onChange={(e) => setCode(e.target.value.replace(/\D/g, "").slice(0, 6))}
            autoFocus
            autoComplete="one-time-code"
            slotProps={{ htmlInput: { inputMode: "numeric", pattern: "[0-9]{6}", maxLength: 6 } }}
          />
          {verify.error && <Problem error={verify.error} />}
          <Button
            type="submit"
            variant="contained"
            size="large"
            disabled={!codeOk || verify.isPending}
          >
            {setup ? "Verify and sign in" : "Sign in"}
          </Button>
          <Button onClick={() => setPending(null)}>Back</Button>
        </Stack>
      </PublicFrame>
    );
  }

  return (
    <PublicFrame title="Sign in">
      {params.get("welcome") && (
        <Alert severity="success" sx={{ mb: 2 }}>
          The admin account is ready. Sign in to set up its authenticator app.
        </Alert>
      )}
      {params.get("next") && !params.get("welcome") && (
        <Alert severity="info" sx={{ mb: 2 }}>
          Your session ended. Sign in to continue where you were.
        </Alert>
      )}
      <Stack
        spacing={2}
        component="form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (username.trim() && password) login.mutate();
        }}
      >
        <TextField
          label="Username"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          autoComplete="username webauthn"
          autoFocus={!username}
        />
        <TextField
          label="Password"
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoComplete="current-password"
          autoFocus={!!username}
        />
        {login.error && <Problem error={login.error} />}
        <Button
          type="submit"
          variant="contained"
          size="large"
          disabled={!username.trim() || !password || login.isPending}
        >
          Sign in
        </Button>
      </Stack>
      <Divider sx={{ my: 3 }}>or</Divider>
      <Stack spacing={1}>
        <Button
          variant="outlined"
          size="large"
          disabled={!canPasskey || passkey.isPending}
          onClick={() => passkey.mutate()}
        >
          Sign in with a passkey
        </Button>
        {!canPasskey && (
          <Typography variant="caption" color="text.secondary">
            Passkeys need a secure connection (HTTPS, or localhost).
          </Typography>
        )}
        {passkey.error && !(passkey.error instanceof DOMException) && (
          <Problem error={passkey.error} />
        )}
        {passkey.error instanceof DOMException && (
          <Alert severity="warning">
            The passkey prompt was cancelled or no passkey was found.
          </Alert>
        )}
      </Stack>
    </PublicFrame>
  );
}
