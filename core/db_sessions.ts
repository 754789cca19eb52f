/**
 * `db sessions`: what the database's connections are doing right now, from
 * `pg_stat_activity`, in the shape of upstream's troubleshooting queries (seeds/002).
 * A healthy pooled connection sits `idle`, waiting on `ClientRead`; one that sits
 * `idle in transaction` for more than a few seconds is holding a transaction open after
 * its SQL work is done, which is the leak that starves the pool. Those are flagged.
 *
 * @module
 */
import type postgres from "postgres";

/** The `application_name` the engine gives its own connections. */
export const ENGINE_APPLICATION_NAME = "borealis-engine";

/** One session (backend) of the current database. */
export interface SessionInfo {
  pid: number;
  applicationName: string;
  userName: string | null;
  /** `null` for connections over a unix socket. */
  clientAddr: string | null;
  /** `client backend` for sessions; PostgreSQL's own workers have other types. */
  backendType: string | null;
  /** `active`, `idle`, `idle in transaction`, … or `null` when not visible to this role. */
  state: string | null;
  waitEventType: string | null;
  waitEvent: string | null;
  /** Seconds since the connection was opened. */
  backendAgeSeconds: number;
  /** Seconds since the current transaction began, or `null` outside a transaction. */
  transactionAgeSeconds: number | null;
  /** Seconds since `state` last changed, i.e. how long it has been idle, active, …. */
  stateAgeSeconds: number | null;
  /** The current or last statement, at most 200 characters. */
  query: string;
  /** Idle in transaction for longer than the warning threshold. */
  idleInTransactionTooLong: boolean;
}

/** Options for {@link listSessions}. */
export interface ListSessionsOptions {
  /** Flag sessions idle in a transaction for longer than this. Default 5. */
  idleInTxnWarnSeconds?: number;
}

interface ActivityRow {
  pid: number;
  application_name: string | null;
  usename: string | null;
  client_addr: string | null;
  backend_type: string | null;
  state: string | null;
  wait_event_type: string | null;
  wait_event: string | null;
  backend_age: number | null;
  xact_age: number | null;
  state_age: number | null;
  query: string | null;
}

/**
 * Lists every backend connected to the current database except the one running this
 * query, oldest open transaction first, so the likeliest culprit of a starved pool
 * tops the list. Ages are measured against the statement's start time.
 */
export async function listSessions(
  sql: postgres.Sql,
  { idleInTxnWarnSeconds = 5 }: ListSessionsOptions = {},
): Promise<SessionInfo[]> {
  // Ages are cast to float8 because numeric would arrive as a string.
  const rows = await sql<ActivityRow[]>`
    SELECT pid,
           application_name,
           usename,
           host(client_addr) AS client_addr,
           backend_type,
           state,
           wait_event_type,
           wait_event,
           extract(epoch FROM now() - backend_start)::float8 AS backend_age,
           extract(epoch FROM now() - xact_start)::float8 AS xact_age,
           extract(epoch FROM now() - state_change)::float8 AS state_age,
           left(query, 200) AS query
    FROM pg_stat_activity
    WHERE datname = current_database()
      AND pid <> pg_backend_pid()
    ORDER BY xact_start NULLS LAST, query_start NULLS LAST, pid
  `;
  return rows.map((r) => {
    // "idle in transaction (aborted)" leaks the connection just the same.
    const idleInTxn = r.state?.startsWith("idle in transaction") ?? false;
    // Idle time (since the last state change), like idle_in_transaction_session_timeout.
    const stateAge = r.state_age === null ? null : Math.max(0, r.state_age);
    return {
      pid: r.pid,
      applicationName: r.application_name ?? "",
      userName: r.usename,
      clientAddr: r.client_addr,
      backendType: r.backend_type,
      state: r.state,
      waitEventType: r.wait_event_type,
      waitEvent: r.wait_event,
      backendAgeSeconds: Math.max(0, r.backend_age ?? 0),
      transactionAgeSeconds: r.xact_age === null ? null : Math.max(0, r.xact_age),
      stateAgeSeconds: stateAge,
      query: r.query ?? "",
      idleInTransactionTooLong: idleInTxn && stateAge !== null && stateAge > idleInTxnWarnSeconds,
    };
  });
}

/**
 * A plain-text table of sessions; flagged rows are marked `!` and counted in a footer
 * that says what the flag means, since the operator reading it is mid-incident.
 */
export function renderSessions(rows: SessionInfo[]): string {
  if (rows.length === 0) return "No other sessions on this database.\n";
  const header = [
    "",
    "PID",
    "APPLICATION",
    "STATE",
    "BACKEND",
    "TXN",
    "STATE AGE",
    "WAIT",
    "QUERY",
  ];
  const table = rows.map((r) => [
    r.idleInTransactionTooLong ? "!" : "",
    String(r.pid),
    r.applicationName || "-",
    r.state ?? "-",
    formatAge(r.backendAgeSeconds),
    formatAge(r.transactionAgeSeconds),
    formatAge(r.stateAgeSeconds),
    r.waitEvent ? `${r.waitEventType ?? ""}:${r.waitEvent}` : "-",
    // Newlines in a multi-line statement would break the table.
    r.query.replace(/\s+/g, " ").trim() || "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i]!)).join("  ").trimEnd();
  const out = [line(header), ...table.map(line)];
  const engine = rows.filter((r) => r.applicationName === ENGINE_APPLICATION_NAME).length;
  out.push("", `${rows.length} session(s), ${engine} from ${ENGINE_APPLICATION_NAME}.`);
  const flagged = rows.filter((r) => r.idleInTransactionTooLong).length;
  if (flagged > 0) {
    out.push(
      `! ${flagged} session(s) idle in transaction past the threshold: a transaction is being ` +
        "held open after its SQL work is done.",
    );
  }
  return out.join("\n") + "\n";
}

/** `850ms`, `12.3s`, `4m05s`, `2h03m`, `3d04h`; `-` when there is nothing to measure. */
export function formatAge(seconds: number | null): string {
  if (seconds === null) return "-";
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const s = Math.floor(seconds);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}
