/**
 * Who is signed in, and the gates in front of the app: the first-start phases (vault,
 * first admin) and sign-in. A 401 from any request — an expired session, or one revoked
 * elsewhere — sends the operator to sign-in with the page they were on, and back there
 * afterwards.
 *
 * @module
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { type ComponentType, createContext, type ReactNode, useContext, useEffect } from "react";
import { Navigate, useLocation, useNavigate } from "react-router";
import { api, ApiError, onUnauthorized } from "../api/client.ts";
import { socket } from "../api/socket.ts";
import type { BootstrapState, Me } from "../api/types.ts";
import { EmptyState, ErrorState, Loading } from "../components/states.tsx";
import { PageHeader } from "../components/page.tsx";

/** Query keys of the session. */
export const sessionKeys = { bootstrap: ["bootstrap"] as const, me: ["me"] as const };

/** The bootstrap phase and vault state (public; polled for the vault banner). */
export function useBootstrap() {
  return useQuery({
    queryKey: sessionKeys.bootstrap,
    queryFn: ({ signal }) => api<BootstrapState>("/api/bootstrap/state", { signal }),
    refetchInterval: 60_000,
    staleTime: 10_000,
  });
}

/** The signed-in operator, or null when signed out. */
export function useMeQuery() {
  return useQuery({
    queryKey: sessionKeys.me,
    queryFn: async ({ signal }) => {
      try {
        return await api<Me>("/api/auth/me", { signal, quiet401: true });
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return null;
        throw err;
      }
    },
    staleTime: 60_000,
    refetchInterval: 120_000,
  });
}

const MeContext = createContext<Me | null>(null);

/** The signed-in operator (inside the gate). */
export function useMe(): Me {
  const me = useContext(MeContext);
  if (!me) throw new Error("useMe outside the session gate");
  return me;
}

/** True for admins. */
export function useIsAdmin(): boolean {
  const me = useMe();
  return me.role === "Admin";
}

/** The sign-in URL that comes back to `where`. */
export function signInPath(where: string): string {
  return where && where !== "/" && !where.startsWith("/sign-in")
    ? `/sign-in?next=${encodeURIComponent(where)}`
    : "/sign-in";
}

/** Where to go after sign-in: a same-origin path from `next`, else home. */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/sign-in")
    ? next
    : "/";
}

/** Renders the app for a signed-in operator, or sends them where they must go first. */
export function SessionGate({ children }: { children: ReactNode }) {
  const boot = useBootstrap();
  const me = useMeQuery();
  const location = useLocation();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const here = location.pathname + location.search;

  // Any request answering 401 (expired or revoked session): to sign-in, then back here.
  useEffect(() => {
    return onUnauthorized(() => {
      socket.stop();
      qc.setQueryData(sessionKeys.me, null);
      navigate(signInPath(globalThis.location.pathname + globalThis.location.search), {
        replace: true,
      });
    });
  }, [navigate, qc]);

  useEffect(() => {
    if (!me.data) return;
    socket.onRefused = () => void qc.invalidateQueries({ queryKey: sessionKeys.me });
    socket.start();
  }, [me.data, qc]);

  useEffect(() => {
    socket.setPage(location.pathname);
  }, [location.pathname]);

  if (boot.isPending || me.isPending) return <Loading label="Loading the console" />;
  // Only a first load that failed replaces the app. A refresh that fails while the engine
  // is away (the socket's refused reconnects ask for one) keeps what was loaded, so an
  // engine restart does not unmount open pages — an open terminal among them; a session
  // that really ended answers 401 and goes to sign-in above.
  if (boot.error && !boot.data) {
    return <ErrorState error={boot.error} onRetry={() => boot.refetch()} />;
  }
  const phase = boot.data.phase;
  if (phase === "aegis_setup_required" || phase === "admin_setup_required") {
    return <Navigate to="/setup" replace />;
  }
  if (me.error && me.data === undefined) {
    return <ErrorState error={me.error} onRetry={() => me.refetch()} />;
  }
  // A locked vault (passphrase mode after a restart) lets signed-in operators work on
  // with a banner; nobody can sign in until it is unlocked.
  if (!me.data) {
    return (
      <Navigate to={phase === "aegis_unlock_required" ? "/setup" : signInPath(here)} replace />
    );
  }
  return <MeContext.Provider value={me.data}>{children}</MeContext.Provider>;
}

/** Signs out: ends the session on the server, forgets everything cached, to sign-in. */
export function useSignOut(): () => Promise<void> {
  const qc = useQueryClient();
  const navigate = useNavigate();
  return async () => {
    try {
      await api("/api/auth/logout", { method: "POST", quiet401: true });
    } catch { /* already gone */ }
    socket.stop();
    qc.clear();
    navigate("/sign-in", { replace: true });
  };
}

/** An admin page: Users get a plain explanation instead (the engine refuses them anyway). */
export function AdminOnly({ page: Page, title }: { page: ComponentType; title: string }) {
  const me = useMe();
  if (me.role === "Admin") return <Page />;
  return (
    <>
      <PageHeader title={title} />
      <EmptyState title="Only admins can open this page">
        Your account has the User role. Ask an admin if you need something changed here.
      </EmptyState>
    </>
  );
}
