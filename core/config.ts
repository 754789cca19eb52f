/**
 * Settings: `BOREALIS_*` environment variables parsed by zod into typed values.
 * The kernel declares its own settings here; each plugin declares a section with
 * {@link setting} specs, parsed the same way. A bad value is reported as one line per
 * variable — its name, what is wrong, and the accepted form — by {@link ConfigError}.
 *
 * @module
 */
import { parseTrustedProxies } from "./client_ip.ts";
import { z } from "zod";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

/** One environment variable: its name, schema, accepted form and meaning. */
export interface SettingSpec<T> {
  readonly env: string;
  readonly schema: z.ZodType<T>;
  /** The accepted form, shown when a value is wrong (e.g. "an integer from 1 to 500"). */
  readonly form: string;
  readonly description: string;
  /** Default shown in docs/CLI output. */
  readonly defaultText?: string;
}

/** A named group of settings (a plugin's section, or the kernel's). */
export type SettingSpecs = Record<string, SettingSpec<unknown>>;

/** The parsed values of a {@link SettingSpecs} group. */
export type SettingsOf<S extends SettingSpecs> = {
  [K in keyof S]: S[K] extends SettingSpec<infer T> ? T : never;
};

/** Declares one setting. */
export function setting<T>(
  env: string,
  schema: z.ZodType<T>,
  form: string,
  description: string,
  defaultText?: string,
): SettingSpec<T> {
  return { env, schema, form, description, defaultText };
}

/** Raised when one or more variables are invalid; `lines` has one entry per variable. */
export class ConfigError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join("\n"));
    this.name = "ConfigError";
  }
}

/** Where settings are read from: the process environment or a plain record in tests. */
export type EnvSource = Record<string, string | undefined>;

/** Parses a group of settings, collecting every problem before failing. */
export function parseSettings<S extends SettingSpecs>(specs: S, env: EnvSource): SettingsOf<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(specs)) {
    const raw = env[spec.env];
    const result = spec.schema.safeParse(raw === "" ? undefined : raw);
    if (result.success) out[key] = result.data;
    else {
      const why = result.error.issues[0]?.message ?? "invalid value";
      const shown = raw === undefined ? "(missing)" : JSON.stringify(raw.slice(0, 60));
      problems.push(`${spec.env}=${shown}: ${why}; expected ${spec.form}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return out as SettingsOf<S>;
}

/** Reads the real process environment as an {@link EnvSource}. */
export function processEnv(): EnvSource {
  return Deno.env.toObject();
}

// ---- reusable field schemas -------------------------------------------------

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

/** A boolean variable: true/false, 1/0, yes/no, on/off. */
export function boolEnv(fallback: boolean): z.ZodType<boolean> {
  return z.string().optional().transform((v, ctx) => {
    if (v === undefined) return fallback;
    const s = v.trim().toLowerCase();
    if (TRUE.has(s)) return true;
    if (FALSE.has(s)) return false;
    ctx.addIssue({ code: "custom", message: "not a boolean" });
    return z.NEVER;
  });
}

/** An integer variable within bounds. */
export function intEnv(fallback: number, min: number, max: number): z.ZodType<number> {
  return z.string().optional().transform((v, ctx) => {
    if (v === undefined) return fallback;
    if (!/^-?\d+$/.test(v.trim())) {
      ctx.addIssue({ code: "custom", message: "not an integer" });
      return z.NEVER;
    }
    const n = Number(v.trim());
    if (n < min || n > max) {
      ctx.addIssue({ code: "custom", message: `out of range` });
      return z.NEVER;
    }
    return n;
  });
}

/** An optional integer within bounds (unset: undefined). */
export function optionalIntEnv(min: number, max: number): z.ZodType<number | undefined> {
  return z.string().optional().transform((v, ctx) => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v.trim())) {
      ctx.addIssue({ code: "custom", message: "not an integer" });
      return z.NEVER;
    }
    const n = Number(v.trim());
    if (n < min || n > max) {
      ctx.addIssue({ code: "custom", message: "out of range" });
      return z.NEVER;
    }
    return n;
  });
}

/** A comma-separated list. */
export function listEnv(fallback: string[]): z.ZodType<string[]> {
  return z.string().optional().transform((v) =>
    v === undefined ? fallback : v.split(",").map((s) => s.trim()).filter(Boolean)
  );
}

/** A free string with a default. */
export function stringEnv(fallback: string): z.ZodType<string> {
  return z.string().optional().transform((v) => v ?? fallback);
}

/** An optional string. */
export function optionalStringEnv(): z.ZodType<string | undefined> {
  return z.string().optional();
}

/** An optional URL with one of the given protocols (`"https:"`, …). */
export function urlEnv(protocols: string[]): z.ZodType<string | undefined> {
  return z.string().optional().refine((v) => {
    if (v === undefined) return true;
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, { message: "not a valid URL" });
}

/** The repository root: the folder holding main.ts. */
export const REPO_ROOT: string = resolve(dirname(fromFileUrl(import.meta.url)), "..");

/** The kernel's settings. */
export const coreSettingSpecs = {
  root: setting(
    "BOREALIS_ROOT",
    stringEnv(REPO_ROOT),
    "a folder path",
    "Project root (assemblies/, static files) when running from a packaged location.",
    "the folder holding main.ts",
  ),
  dataDir: setting(
    "BOREALIS_DATA_DIR",
    optionalStringEnv(),
    "a folder path",
    "Where the embedded database, logs, keys and payloads live.",
    "<root>/.data",
  ),
  databaseUrl: setting(
    "BOREALIS_DATABASE_URL",
    urlEnv(["postgres:", "postgresql:"]),
    "a postgres://user:password@host:port/database URL",
    "External PostgreSQL server. Unset: the embedded PGlite database in the data dir.",
    "(embedded)",
  ),
  host: setting(
    "BOREALIS_HOST",
    stringEnv("127.0.0.1"),
    "a host name or IP address",
    "Bind address.",
    "127.0.0.1",
  ),
  port: setting(
    "BOREALIS_PORT",
    intEnv(5000, 0, 65535),
    "an integer from 0 to 65535",
    "Bind port (0 picks a free one).",
    "5000",
  ),
  autoMigrate: setting(
    "BOREALIS_ENGINE_AUTO_MIGRATE",
    boolEnv(true),
    "true or false",
    "Apply pending migrations at start; when false the engine refuses to start while any are pending.",
    "true",
  ),
  staticRoot: setting(
    "BOREALIS_STATIC_ROOT",
    optionalStringEnv(),
    "a folder path",
    "Static web console files; non-/api paths fall back to its index.html.",
    "(none)",
  ),
  corsOrigins: setting(
    "BOREALIS_CORS_ALLOWED_ORIGINS",
    listEnv([]),
    "a comma-separated list of origins (https://console.example.com), or *",
    "Origins granted CORS access. Empty: same-origin only.",
    "(empty)",
  ),
  trustedProxies: setting(
    "BOREALIS_TRUSTED_PROXIES",
    listEnv([]).superRefine((list, ctx) => {
      const bad = parseTrustedProxies(list);
      if (Array.isArray(bad)) {
        ctx.addIssue({ code: "custom", message: `not an address or range: ${bad.join(", ")}` });
      }
    }),
    "a comma-separated list of addresses and CIDR ranges (10.0.0.0/8, 127.0.0.1, fd00::/8)",
    "Reverse proxies whose X-Forwarded-For is believed (client address for throttling and audit).",
    "(none: the TCP peer is the client)",
  ),
  debug: setting(
    "BOREALIS_DEBUG",
    boolEnv(false),
    "true or false",
    "Debug logging (the session cookie's Secure flag is BOREALIS_COOKIE_SECURE).",
    "false",
  ),
  publicBaseUrl: setting(
    "BOREALIS_PUBLIC_BASE_URL",
    urlEnv(["http:", "https:"]),
    "an http(s) URL such as https://rmm.example.com",
    "The URL agents and browsers use to reach the engine (token audience, WebAuthn origin).",
    "http://<host>:<port>",
  ),
  dbPoolSize: setting(
    "BOREALIS_DB_POOL_SIZE",
    intEnv(10, 1, 500),
    "an integer from 1 to 500",
    "PostgreSQL connections per engine.",
    "10",
  ),
  dbConnectTimeout: setting(
    "BOREALIS_DB_CONNECT_TIMEOUT",
    intEnv(15, 1, 600),
    "seconds, an integer from 1 to 600",
    "How long to keep retrying an unreachable database at start.",
    "15",
  ),
  dbOpenTimeoutMs: setting(
    "BOREALIS_DB_OPEN_TIMEOUT_MS",
    intEnv(3000, 100, 60_000),
    "milliseconds, an integer from 100 to 60000",
    "How long opening one database connection may take while running; past it the database counts as unreachable (503 at once until it answers again).",
    "3000",
  ),
  dbWriteProbeSeconds: setting(
    "BOREALIS_DB_WRITE_PROBE_SECONDS",
    intEnv(10, 1, 3600),
    "seconds, an integer from 1 to 3600",
    "How often a small write checks that the database can still write (readiness: writes ok or failing).",
    "10",
  ),
  dbIdleInTxnTimeoutMs: setting(
    "BOREALIS_DB_IDLE_IN_TXN_TIMEOUT_MS",
    intEnv(60_000, 0, 86_400_000),
    "milliseconds, an integer from 0 (off) to 86400000",
    "PostgreSQL idle_in_transaction_session_timeout for engine sessions.",
    "60000",
  ),
  plugins: setting(
    "BOREALIS_PLUGINS",
    listEnv(["all"]),
    "a comma-separated list of plugin names or module specifiers (a path, npm:…, https://…), or all",
    "Which plugins load; a module specifier loads a plugin from outside the repository.",
    "all",
  ),
  logRetentionDays: setting(
    "BOREALIS_LOG_RETENTION_DAYS",
    intEnv(14, 1, 3650),
    "days, an integer from 1 to 3650",
    "How many rotated daily log files to keep.",
    "14",
  ),
  maxBodyBytes: setting(
    "BOREALIS_MAX_BODY_BYTES",
    intEnv(1_048_576, 1024, 268_435_456),
    "bytes, an integer from 1024 to 268435456",
    "Largest request body accepted by default (routes may set their own limit).",
    "1048576",
  ),
  httpGuard: setting(
    "BOREALIS_HTTP_GUARD",
    boolEnv(true),
    "true or false",
    "Bound connections (timeouts, caps, descriptor budget). false: plain Deno.serve, only behind a proxy that bounds them itself.",
    "true",
  ),
  httpHeaderTimeoutMs: setting(
    "BOREALIS_HTTP_HEADER_TIMEOUT_MS",
    intEnv(10_000, 100, 600_000),
    "milliseconds, an integer from 100 to 600000",
    "A new connection that sends no complete request head within this time is closed.",
    "10000",
  ),
  httpIdleTimeoutMs: setting(
    "BOREALIS_HTTP_IDLE_TIMEOUT_MS",
    intEnv(30_000, 100, 3_600_000),
    "milliseconds, an integer from 100 to 3600000",
    "A kept-alive connection without a new request for this long is closed (WebSockets excepted).",
    "30000",
  ),
  httpMaxConnections: setting(
    "BOREALIS_HTTP_MAX_CONNECTIONS",
    intEnv(0, 0, 10_000_000),
    "an integer, 0 (derive from the open-file limit) to 10000000",
    "Connections held at once, agent sockets included (docs/operations.md: descriptor budget).",
    "0: open-file limit minus a tenth (at least 64) and the pool",
  ),
  httpMaxPending: setting(
    "BOREALIS_HTTP_MAX_PENDING",
    intEnv(0, 0, 10_000_000),
    "an integer, 0 (a quarter of the connections, at most 4096) to 10000000",
    "Connections that are not (yet) an authenticated WebSocket: plain HTTP and upgrades in progress.",
    "0: a quarter of BOREALIS_HTTP_MAX_CONNECTIONS, at most 4096",
  ),
  httpMaxPendingPerAddress: setting(
    "BOREALIS_HTTP_MAX_PENDING_PER_ADDRESS",
    intEnv(128, 1, 10_000_000),
    "an integer from 1 to 10000000",
    "Pending connections from one client address (trusted proxies are exempt).",
    "128",
  ),
  shutdownGraceMs: setting(
    "BOREALIS_SHUTDOWN_GRACE_MS",
    intEnv(10_000, 0, 600_000),
    "milliseconds, an integer from 0 to 600000",
    "How long closing long-lived sockets and in-flight requests may take after a stop signal.",
    "10000",
  ),
  workers: setting(
    "BOREALIS_WORKERS",
    intEnv(1, 1, 64),
    "an integer from 1 to 64",
    "Engine processes sharing BOREALIS_PORT (SO_REUSEPORT), started and supervised by " +
      "`deno task start`; more than 1 needs BOREALIS_DATABASE_URL.",
    "1",
  ),
  reusePort: setting(
    "BOREALIS_REUSE_PORT",
    boolEnv(false),
    "true or false",
    "Listen with SO_REUSEPORT so other engine processes can share the port (workers set it).",
    "false",
  ),
  metricsPort: setting(
    "BOREALIS_METRICS_PORT",
    optionalIntEnv(0, 65535),
    "an integer from 0 to 65535 (0 picks a free one)",
    "Serve Prometheus GET /metrics on this port, a listener of its own (unset: off); with " +
      "BOREALIS_WORKERS, worker i uses this port plus i.",
    "(off)",
  ),
  metricsHost: setting(
    "BOREALIS_METRICS_HOST",
    stringEnv("127.0.0.1"),
    "a host name or IP address",
    "Bind address of the metrics listener.",
    "127.0.0.1",
  ),
  metricsToken: setting(
    "BOREALIS_METRICS_TOKEN",
    z.string().min(16, "at least 16 characters").optional(),
    "a secret of at least 16 characters",
    "Required as Authorization: Bearer <token> on GET /metrics when set.",
    "(none: loopback only is the protection)",
  ),
} satisfies SettingSpecs;

/** The kernel's resolved settings. */
export type CoreSettings = SettingsOf<typeof coreSettingSpecs> & { dataDir: string };

/** Parses the kernel's settings and resolves derived paths. */
export function loadCoreSettings(env: EnvSource): CoreSettings {
  const s = parseSettings(coreSettingSpecs, env);
  const root = isAbsolute(s.root) ? s.root : resolve(s.root);
  const dataDir = s.dataDir ? resolve(s.dataDir) : join(root, ".data");
  return { ...s, root, dataDir };
}
