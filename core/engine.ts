/**
 * The engine: parses settings, orders the selected plugins by `requires`, opens the
 * database, applies migrations, runs each plugin's `setup` with its own context,
 * mounts their routers, starts tasks, serves HTTP, and shuts down in reverse order.
 *
 * @module
 */
import { parseTrustedProxies, type ProxyMatcher } from "./client_ip.ts";
import { connectionBudget } from "./connection_budget.ts";
import { resolve } from "node:path";
import { fileURLToPath as fromFileUrl, pathToFileURL } from "node:url";
import { createAuditor } from "./audit.ts";
import { AuthRegistry } from "./auth.ts";
import { type Clock, systemClock } from "./clock.ts";
import {
  type CoreSettings,
  type EnvSource,
  loadCoreSettings,
  parseSettings,
  processEnv,
} from "./config.ts";
import { type Database, openDatabase, type Sql } from "./db.ts";
import { EventBus } from "./events.ts";
import {
  createApp,
  createHandler,
  createRouter,
  installFallback,
  type RequestEnv,
  type Router,
} from "./http.ts";
import { type ConnectionStats, type GuardedServer, serveConnections } from "./listener.ts";
import { createLogSink, type Logger, type LogSink } from "./log.ts";
import { Metrics, type MetricsServer, registerKernelMetrics, serveMetrics } from "./metrics.ts";
import {
  applyMigrations,
  MigrationError,
  type MigrationSource,
  migrationStatus,
} from "./migrate.ts";
import {
  type AnyPlugin,
  PLUGIN_API_VERSION,
  type PluginContext,
  type ServiceKey,
} from "./plugin.ts";
import { TaskScheduler } from "./tasks.ts";

/** The engine's version, reported by the API document and the CLI. */
export const ENGINE_VERSION = "0.1.0";

/** Raised for a bad plugin selection: a missing requirement or a cycle. */
export class PluginGraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PluginGraphError";
  }
}

/**
 * Orders plugins so every plugin comes after the plugins it requires and after the
 * optional ones that are loaded. Ties keep the given order. Throws naming a missing
 * requirement, the plugins of a cycle, or a plugin written for another contract version.
 */
export function orderPlugins(plugins: readonly AnyPlugin[]): AnyPlugin[] {
  const byName = new Map<string, AnyPlugin>();
  for (const p of plugins) {
    if (byName.has(p.name)) throw new PluginGraphError(`plugin ${p.name} is listed twice`);
    if (p.apiVersion !== PLUGIN_API_VERSION) {
      throw new PluginGraphError(
        p.apiVersion === undefined
          ? `plugin ${p.name} was not made with definePlugin (core/plugin.ts), which stamps ` +
            `the plugin contract version`
          : `plugin ${p.name} was written for plugin contract version ${p.apiVersion}; ` +
            `this engine (${ENGINE_VERSION}) speaks version ${PLUGIN_API_VERSION}`,
      );
    }
    byName.set(p.name, p);
  }
  for (const p of plugins) {
    for (const r of p.requires ?? []) {
      if (!byName.has(r)) {
        throw new PluginGraphError(
          `plugin ${p.name} requires plugin ${r}, which is not loaded (add it to BOREALIS_PLUGINS)`,
        );
      }
    }
  }
  const before = (p: AnyPlugin) => [
    ...(p.requires ?? []),
    ...(p.optional ?? []).filter((o) => byName.has(o)),
  ];
  // Kahn's algorithm, always taking the first ready plugin in the listed order.
  const remaining = [...plugins];
  const ordered: AnyPlugin[] = [];
  const placed = new Set<string>();
  while (remaining.length) {
    const i = remaining.findIndex((p) => before(p).every((r) => placed.has(r)));
    if (i < 0) {
      throw new PluginGraphError(
        `plugin requirements form a cycle: ${findCycle(remaining, byName, before)}`,
      );
    }
    const [next] = remaining.splice(i, 1);
    ordered.push(next!);
    placed.add(next!.name);
  }
  return ordered;
}

function findCycle(
  stuck: readonly AnyPlugin[],
  byName: Map<string, AnyPlugin>,
  before: (p: AnyPlugin) => string[],
): string {
  const stuckNames = new Set(stuck.map((p) => p.name));
  // Every stuck plugin waits for another stuck one, so walking the edges must loop.
  const path: string[] = [];
  let current = stuck[0]!;
  while (!path.includes(current.name)) {
    path.push(current.name);
    const r = before(current).find((n) => stuckNames.has(n))!;
    current = byName.get(r)!;
  }
  return [...path.slice(path.indexOf(current.name)), current.name].join(" → ");
}

/**
 * Adds to `plugins` what they require, transitively, from `available` (by name), so a
 * selection names the plugins it is about and their foundations come along: a plugin that
 * moves part of itself into a new plugin it requires (sites out of inventory) keeps every
 * existing selection working. A requirement `available` does not know stays missing, for
 * {@link orderPlugins} to name.
 */
export function withRequirements(
  plugins: readonly AnyPlugin[],
  available: readonly AnyPlugin[],
): AnyPlugin[] {
  const known = new Map(available.map((p) => [p.name, p]));
  const chosen = new Map(plugins.map((p) => [p.name, p]));
  const added: AnyPlugin[] = [];
  const visit = (p: AnyPlugin) => {
    for (const r of p.requires ?? []) {
      const q = known.get(r);
      if (chosen.has(r) || !q) continue;
      chosen.set(r, q);
      added.push(q);
      visit(q);
    }
  };
  for (const p of plugins) visit(p);
  // Foundations first, so ties in the order keep them ahead of what was listed.
  return [...added, ...plugins];
}

/**
 * Picks plugins by the `BOREALIS_PLUGINS` list ("all" = every built-in plugin), with the
 * plugins they require ({@link withRequirements}).
 */
export function selectPlugins(
  names: readonly string[],
  builtin: readonly AnyPlugin[],
  optional: readonly AnyPlugin[] = [],
): AnyPlugin[] {
  const known = new Map([...builtin, ...optional].map((p) => [p.name, p]));
  const chosen = new Map<string, AnyPlugin>();
  for (const name of names) {
    if (name === "all") {
      for (const p of builtin) chosen.set(p.name, p);
      continue;
    }
    const p = known.get(name);
    if (!p) {
      throw new PluginGraphError(
        `BOREALIS_PLUGINS names unknown plugin ${name}; known: ${
          [...known.keys()].join(", ") || "(none)"
        }`,
      );
    }
    chosen.set(name, p);
  }
  return withRequirements([...chosen.values()], [...builtin, ...optional]);
}

/**
 * Whether a `BOREALIS_PLUGINS` entry is a module specifier (a path, `npm:…`, `https://…`,
 * `file://…`) rather than the name of a built-in plugin.
 */
export function isPluginModule(entry: string): boolean {
  return /[/\\:]/.test(entry) || entry.startsWith(".");
}

/**
 * Loads a plugin from outside the repository with Deno's dynamic import: the module's
 * default export must be a plugin made with `definePlugin` (its contract version is
 * checked with the rest by {@link orderPlugins}). A relative path is resolved against `cwd`.
 * The plugin runs inside the engine with the engine's permissions.
 */
export async function importPlugin(specifier: string, cwd = Deno.cwd()): Promise<AnyPlugin> {
  const url = /^(npm|jsr|https?|file|data):/.test(specifier)
    ? specifier
    : pathToFileURL(resolve(cwd, specifier)).href;
  let mod: { default?: unknown };
  try {
    mod = await import(url);
  } catch (err) {
    throw new PluginGraphError(
      `BOREALIS_PLUGINS: cannot load plugin module ${specifier}: ${
        err instanceof Error ? err.message.split("\n")[0] : String(err)
      }`,
    );
  }
  const p = mod.default as Partial<AnyPlugin> | undefined;
  if (!p || typeof p !== "object" || typeof p.name !== "string" || typeof p.setup !== "function") {
    throw new PluginGraphError(
      `BOREALIS_PLUGINS: ${specifier} has no plugin as its default export ` +
        `(export default definePlugin({ name, setup, … }))`,
    );
  }
  return p as AnyPlugin;
}

/**
 * {@link selectPlugins} for entries that may also be module specifiers ({@link importPlugin}).
 * A loaded plugin may not take a built-in plugin's name; it stands in for an optional one of
 * the same name (a newer copy of the example, say).
 */
export async function loadPlugins(
  entries: readonly string[],
  builtin: readonly AnyPlugin[],
  optional: readonly AnyPlugin[] = [],
  cwd = Deno.cwd(),
): Promise<AnyPlugin[]> {
  const loaded: AnyPlugin[] = [];
  const names: string[] = [];
  for (const entry of entries) {
    if (!isPluginModule(entry)) {
      names.push(entry);
      continue;
    }
    const p = await importPlugin(entry, cwd);
    if (builtin.some((b) => b.name === p.name)) {
      throw new PluginGraphError(
        `BOREALIS_PLUGINS: ${entry} is a plugin named ${p.name}, the name of a built-in plugin`,
      );
    }
    loaded.push(p);
    names.push(p.name);
  }
  const others = optional.filter((o) => !loaded.some((p) => p.name === o.name));
  return selectPlugins(names, builtin, [...others, ...loaded]);
}

/** Options for {@link Engine.create}. */
export interface EngineOptions {
  /** Environment to read settings from (default: the process environment). */
  env?: EnvSource;
  /** The plugins to load, already selected (default: chosen by BOREALIS_PLUGINS from `available`). */
  plugins?: readonly AnyPlugin[];
  /** Plugins `BOREALIS_PLUGINS=all` means, and optional ones it may name. */
  available?: { builtin: readonly AnyPlugin[]; optional?: readonly AnyPlugin[] };
  clock?: Clock;
  /** Log destination (default: stderr and `<data dir>/Logs/engine.log`). */
  logSink?: LogSink;
  /** Skip migrations entirely (the CLI's `migrate --status` inspects without applying). */
  migrate?: "auto" | "skip";
  instanceId?: string;
}

/** Summary of a loaded plugin for the CLI and docs. */
export interface LoadedPlugin {
  name: string;
  description?: string;
  requires: readonly string[];
  optional: readonly string[];
  routes: Array<{ method: string; path: string }>;
}

const KERNEL_MIGRATIONS: MigrationSource = {
  owner: "kernel",
  dir: new URL("../migrations/", import.meta.url),
};

/** Migration sources for a set of ordered plugins, kernel first. */
export function migrationSources(plugins: readonly AnyPlugin[]): MigrationSource[] {
  return [
    KERNEL_MIGRATIONS,
    ...plugins.filter((p) => p.migrations).map((p) => ({ owner: p.name, dir: p.migrations! })),
  ];
}

/** A running (or runnable) engine instance. */
export class Engine {
  readonly auth = new AuthRegistry();
  readonly loaded: LoadedPlugin[] = [];
  #stopHooks: Array<{ plugin: string; fn: () => void | Promise<void> }> = [];
  #drainHooks: Array<{ plugin: string; fn: () => void | Promise<void> }> = [];
  #server?: GuardedServer;
  #metricsServer?: MetricsServer;
  #proxies?: ProxyMatcher;
  #draining = false;
  #stopped?: Promise<void>;

  private constructor(
    readonly settings: CoreSettings,
    readonly plugins: readonly AnyPlugin[],
    readonly clock: Clock,
    readonly logSink: LogSink,
    readonly log: Logger,
    readonly db: Database,
    readonly events: EventBus,
    readonly tasks: TaskScheduler,
    readonly app: Router,
    readonly instanceId: string,
    /** This instance's Prometheus figures (served when BOREALIS_METRICS_PORT is set). */
    readonly metrics: Metrics,
  ) {}

  #services = new Map<string, unknown>();

  /** A service provided by a loaded plugin (CLI commands and tests). */
  service<T>(key: ServiceKey<T>): T {
    if (!this.#services.has(key.id)) throw new PluginGraphError(`no service ${key.id} is loaded`);
    return this.#services.get(key.id) as T;
  }

  /** The SQL client. */
  get sql(): Sql {
    return this.db.sql;
  }

  #handle?: (
    request: Request,
    info?: { remoteAddr?: RequestEnv["remoteAddr"] },
  ) => Response | Promise<Response>;

  /**
   * Handles one request like the listener does (tests and benchmarks call this
   * directly). A synchronous route's Response comes back as is, not in a Promise.
   */
  fetch = (
    request: Request,
    info?: { remoteAddr?: RequestEnv["remoteAddr"] },
  ): Response | Promise<Response> => this.#handle!(request, info);

  /**
   * Builds an engine: settings → plugin order → database → migrations → setup.
   * Throws ConfigError, PluginGraphError, MigrationError or DatabaseUnavailableError.
   */
  static async create(options: EngineOptions = {}): Promise<Engine> {
    const env = options.env ?? processEnv();
    const settings = loadCoreSettings(env);
    const plugins = orderPlugins(
      options.plugins ??
        await loadPlugins(
          settings.plugins,
          options.available?.builtin ?? [],
          options.available?.optional ?? [],
        ),
    );
    // Every plugin's settings are parsed before anything starts, so all bad variables
    // are reported together.
    const pluginSettings = new Map<string, unknown>();
    const problems: string[] = [];
    for (const p of plugins) {
      try {
        pluginSettings.set(p.name, p.settings ? parseSettings(p.settings, env) : {});
      } catch (err) {
        if (err && typeof err === "object" && "lines" in err) {
          problems.push(...(err as { lines: string[] }).lines);
        } else throw err;
      }
    }
    if (problems.length) {
      const { ConfigError } = await import("./config.ts");
      throw new ConfigError(problems);
    }

    const clock = options.clock ?? systemClock;
    // Each worker keeps its own log (daily rotation renames the file: one writer per file).
    const worker = env.BOREALIS_WORKER_INDEX;
    const logSink = options.logSink ?? createLogSink({
      dir: `${settings.dataDir}/Logs${worker ? `/worker-${worker}` : ""}`,
      level: settings.debug ? "DEBUG" : "INFO",
      retentionDays: settings.logRetentionDays,
      clock,
    });
    const log = logSink.logger("kernel");
    const instanceId = options.instanceId ?? crypto.randomUUID();
    const db = await openDatabase({
      url: settings.databaseUrl,
      dataDir: settings.dataDir,
      poolSize: settings.dbPoolSize,
      connectTimeoutSeconds: settings.dbConnectTimeout,
      openTimeoutMs: settings.dbOpenTimeoutMs,
      idleInTxnTimeoutMs: settings.dbIdleInTxnTimeoutMs,
      writeProbeMs: settings.dbWriteProbeSeconds * 1000,
      now: () => clock.now(),
      log: logSink.logger("db"),
    });
    try {
      const sources = migrationSources(plugins);
      if (options.migrate !== "skip") {
        if (settings.autoMigrate) {
          await applyMigrations(db.sql, sources, logSink.logger("migrate"));
        } else {
          const pending = (await migrationStatus(db.sql, sources)).flatMap((o) =>
            o.pending.map((p) => `${o.owner}/${String(p.version).padStart(3, "0")}_${p.name}`)
          );
          if (pending.length) {
            throw new MigrationError(
              `${pending.length} migration(s) pending (${pending.join(", ")}) and ` +
                `BOREALIS_ENGINE_AUTO_MIGRATE=false; run "deno task start migrate" first`,
            );
          }
        }
      }
      const events = new EventBus(instanceId, logSink.logger("events"));
      await events.connect(db.sql);
      const tasks = new TaskScheduler(clock, logSink.logger("tasks"), db.sql, instanceId);
      const metrics = new Metrics({
        engine_instance: instanceId.slice(0, 8),
        ...(worker ? { worker } : {}),
      });
      registerKernelMetrics(metrics, {
        ping: async () => void (await db.sql`select 1`),
        poolSize: settings.dbPoolSize,
        tasks,
        events,
      });
      const bodyLimits: Array<{ prefix: string; bytes: number; streamed?: boolean }> = [];
      const engine: Engine = new Engine(
        settings,
        plugins,
        clock,
        logSink,
        log,
        db,
        events,
        tasks,
        undefined as unknown as Router,
        instanceId,
        metrics,
      );
      const app = createApp({
        log: logSink.logger("http"),
        auth: engine.auth,
        maxBodyBytes: settings.maxBodyBytes,
        bodyLimits,
        corsOrigins: settings.corsOrigins,
        ready: async () => void (await db.sql`select 1`),
        writes: () => db.storage.state(),
        isDraining: () => engine.#draining,
        metrics,
      });
      (engine as { app: Router }).app = app;
      metrics.gauge("borealis_http_connections", "Connections the listener holds now, by kind", {
        labelNames: ["kind"],
        collect: (g) => {
          const st = engine.connectionStats();
          if (!st) return;
          g.set({ kind: "open" }, st.open);
          g.set({ kind: "pending" }, st.pending);
          g.set({ kind: "websocket" }, st.websockets);
        },
      });
      metrics.gauge(
        "borealis_http_connection_events",
        "Since start: connections accepted, and those refused (503 at a cap), evicted, timed out, or failed to accept",
        {
          labelNames: ["event"],
          collect: (g) => {
            const st = engine.connectionStats();
            if (!st) return;
            g.set({ event: "accepted" }, st.accepted);
            g.set({ event: "refused" }, st.refused);
            g.set({ event: "evicted" }, st.evicted);
            g.set({ event: "header_timeout" }, st.headerTimeouts);
            g.set({ event: "idle_timeout" }, st.idleTimeouts);
            g.set({ event: "accept_error" }, st.acceptErrors);
          },
        },
      );
      const proxies = parseTrustedProxies(settings.trustedProxies);
      // The setting was validated at parse time, so this is never the error list.
      engine.#proxies = Array.isArray(proxies) ? undefined : proxies;
      engine.#handle = createHandler(app, {
        auth: engine.auth,
        isDraining: () => engine.#draining,
        trustedProxies: engine.#proxies,
      });
      tasks.every("kernel.prune_event_payloads", 3_600_000, async () => {
        await events.prune(3_600_000, clock.now());
        await db.sql`delete from kernel_write_probe
                     where probed_at < ${new Date(clock.now() - 86_400_000)}`;
      }, { clusterSingleton: true });
      tasks.every(
        "kernel.write_probe",
        settings.dbWriteProbeSeconds * 1000,
        () => db.probeWrites(instanceId),
        { realTime: true },
      );
      await engine.#setupPlugins(pluginSettings, bodyLimits);
      app.doc31("/api/openapi.json", {
        openapi: "3.1.0",
        info: {
          title: "Borealis Engine API",
          version: ENGINE_VERSION,
          description: `Plugins: ${plugins.map((p) => p.name).join(", ") || "(none)"}`,
        },
      });
      installFallback(app, settings.staticRoot);
      tasks.start();
      log.info(
        `engine ${instanceId.slice(0, 8)} ready with ${db.label}; plugins: ${
          plugins.map((p) => p.name).join(", ") || "(none)"
        }`,
      );
      return engine;
    } catch (err) {
      await db.close().catch(() => {});
      throw err;
    }
  }

  async #setupPlugins(
    pluginSettings: Map<string, unknown>,
    bodyLimits: Array<{ prefix: string; bytes: number; streamed?: boolean }>,
  ): Promise<void> {
    const services = this.#services;
    const audit = createAuditor(this.sql, this.logSink.logger("audit"), this.clock);
    this.auth.onDenied((c, err) =>
      audit(c, {
        action: "authz.denied",
        target: `${c.req.method} ${c.req.path}`.slice(0, 300),
        outcome: "denied",
        details: { reason: err.code }, // not "code": audit details redact that name
      })
    );
    for (const plugin of this.plugins) {
      const name = plugin.name;
      const router = createRouter();
      // A plugin reaches exactly the services of the plugins it names: what it requires
      // (always there) and what it lists as optional (there or not).
      const required = new Set([name, ...(plugin.requires ?? [])]);
      const optional = new Set(plugin.optional ?? []);
      const prefix = (task: string) => `${name}.${task}`;
      const ctx: PluginContext = {
        name,
        http: router,
        sql: this.sql,
        settings: pluginSettings.get(name) as never,
        core: this.settings,
        log: this.logSink.logger(name),
        clock: this.clock,
        tasks: {
          every: (task, ms, fn, o) => this.tasks.every(prefix(task), ms, fn, o),
          cron: (task, expr, fn, o) => this.tasks.cron(prefix(task), expr, fn, o),
        },
        events: this.events,
        auth: this.auth,
        audit,
        metrics: this.metrics,
        instanceId: this.instanceId,
        provide: <T>(key: ServiceKey<T>, service: T) => {
          const owner = key.id.split(".")[0];
          if (owner !== name) {
            throw new PluginGraphError(
              `plugin ${name} cannot provide ${key.id}: keys are owned by plugin ${owner}`,
            );
          }
          if (services.has(key.id)) {
            throw new PluginGraphError(`service ${key.id} is provided twice`);
          }
          services.set(key.id, service);
        },
        use: <T>(key: ServiceKey<T>): T => {
          const owner = key.id.split(".")[0]!;
          if (!required.has(owner)) {
            throw new PluginGraphError(
              `plugin ${name} uses service ${key.id} but does not require plugin ${owner}` +
                (optional.has(owner) ? ` (it is optional: use tryUse)` : ""),
            );
          }
          if (!services.has(key.id)) {
            throw new PluginGraphError(`plugin ${name} asked for unknown service ${key.id}`);
          }
          return services.get(key.id) as T;
        },
        tryUse: <T>(key: ServiceKey<T>): T | undefined => {
          const owner = key.id.split(".")[0]!;
          if (!required.has(owner) && !optional.has(owner)) {
            throw new PluginGraphError(
              `plugin ${name} tries service ${key.id} but names plugin ${owner} neither in ` +
                `requires nor in optional`,
            );
          }
          return services.get(key.id) as T | undefined;
        },
        bodyLimit: (p, bytes, options) => {
          bodyLimits.push({ prefix: p, bytes, streamed: options?.streamed });
          bodyLimits.sort((a, b) => b.prefix.length - a.prefix.length);
        },
        onDrain: (fn) => this.#drainHooks.push({ plugin: name, fn }),
        onStop: (fn) => this.#stopHooks.push({ plugin: name, fn }),
      };
      try {
        await plugin.setup(ctx);
      } catch (err) {
        if (err instanceof PluginGraphError) throw err;
        throw new Error(
          `plugin ${name} failed to set up: ${err instanceof Error ? err.message : err}`,
          {
            cause: err,
          },
        );
      }
      this.app.route("/", router);
      this.loaded.push({
        name,
        description: plugin.description,
        requires: plugin.requires ?? [],
        optional: plugin.optional ?? [],
        routes: router.routes
          .filter((r) => r.method !== "ALL")
          .map((r) => ({ method: r.method, path: r.path })),
      });
    }
  }

  /**
   * Starts the metrics listener when `BOREALIS_METRICS_PORT` is set (`listen` does this
   * too); resolves with its address, or null when metrics are not served.
   */
  async listenMetrics(): Promise<{ hostname: string; port: number } | null> {
    const port = this.settings.metricsPort;
    if (port === undefined) return null;
    this.#metricsServer ??= await serveMetrics({
      hostname: this.settings.metricsHost,
      port,
      token: this.settings.metricsToken,
      reusePort: this.settings.reusePort,
      metrics: this.metrics,
      log: this.log,
    });
    return this.#metricsServer.addr;
  }

  /** Starts the HTTP listener (and the metrics one); resolves with the bound address. */
  async listen(): Promise<{ hostname: string; port: number }> {
    await this.listenMetrics();
    const budget = connectionBudget(this.settings);
    const l = budget.limits;
    const proxies = this.#proxies;
    const server = serveConnections({
      hostname: this.settings.host,
      port: this.settings.port,
      limits: l,
      unlimited: proxies ? (a) => proxies.trusts(a) : undefined,
      handler: (req, info) => this.#handle!(req, info),
      log: this.logSink.logger("http"),
      unguarded: !this.settings.httpGuard,
      reusePort: this.settings.reusePort,
    });
    this.#server = server;
    const { hostname, port } = server.addr;
    this.log.info(announce(hostname, port, this.settings.publicBaseUrl));
    if (budget.clamped) this.log.warn(budget.clamped);
    if (server.guarded) {
      this.log.info(
        `connections: up to ${l.maxConnections} (open-file limit ${
          budget.descriptorLimit ?? "unknown, 1024 assumed"
        }, ${budget.reserve} kept for the database, logs and files), ${l.maxPending} of them ` +
          `before authentication and ${l.maxPendingPerAddress} per address; a request head ` +
          `within ${l.headerTimeoutMs} ms, idle kept-alive connections closed after ` +
          `${l.idleTimeoutMs} ms`,
      );
    }
    return { hostname, port };
  }

  /** Connection counters of the listener (zeros before {@link listen}). */
  connectionStats(): ConnectionStats | undefined {
    return this.#server?.stats();
  }

  /**
   * Graceful stop: refuse new requests, run the `onDrain` hooks (plugins close their
   * long-lived connections themselves), let in-flight requests finish — both bounded by
   * `BOREALIS_SHUTDOWN_GRACE_MS` — then stop tasks, run `onStop` hooks in reverse plugin
   * order, close the bus and the pool. Safe to call more than once.
   */
  stop(reason = "stop requested"): Promise<void> {
    this.#stopped ??= this.#stop(reason);
    return this.#stopped;
  }

  async #stop(reason: string): Promise<void> {
    this.log.info(`shutting down: ${reason}`);
    this.#draining = true;
    // One grace for the whole drain (real time: this is the process's own shutdown).
    const deadline = Date.now() + this.settings.shutdownGraceMs;
    const bounded = async (work: Promise<unknown>) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        work,
        new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
    };
    // A worker sharing the port stops accepting at once, so the kernel hands new
    // connections (its own agents coming back among them) to the other workers instead of
    // to a process that would answer 503. The engine's own listener keeps its WebSockets
    // open while it stops accepting; Deno.serve (BOREALIS_HTTP_GUARD=false) cannot, so it
    // keeps listening until the sockets are closed, as a single engine does.
    const early = this.settings.reusePort && this.#server?.guarded
      ? this.#server.shutdown()
      : undefined;
    // Long-lived connections first, while the listener runs: shutting the server down
    // closes upgraded sockets itself, before their owners' close frames are sent.
    await bounded(Promise.all(this.#drainHooks.map(async (hook) => {
      try {
        await hook.fn();
      } catch (err) {
        this.log.error(
          `onDrain of plugin ${hook.plugin} failed: ${err instanceof Error ? err.message : err}`,
        );
      }
    })));
    const drainStart = deadline - this.settings.shutdownGraceMs;
    const drainedAt = Date.now();
    if (this.#server) {
      await bounded(early ?? this.#server.shutdown());
      this.#server.closeAll(); // what the grace period did not finish
    }
    this.log.info(
      `shutdown: connections closed in ${drainedAt - drainStart} ms, ` +
        `listener in ${Date.now() - drainedAt} ms` +
        (Date.now() >= deadline ? " (BOREALIS_SHUTDOWN_GRACE_MS ran out)" : ""),
    );
    await this.tasks.stop();
    for (const hook of [...this.#stopHooks].reverse()) {
      try {
        await hook.fn();
      } catch (err) {
        this.log.error(
          `onStop of plugin ${hook.plugin} failed: ${err instanceof Error ? err.message : err}`,
        );
      }
    }
    await this.#metricsServer?.shutdown();
    await this.events.close();
    await this.db.close();
    this.log.info("stopped");
    this.logSink.close();
  }
}

/**
 * The start-up line saying where the engine is. Bound to loopback with no public URL it
 * names `localhost`: browsers refuse passkeys on an IP address (never a valid WebAuthn
 * relying party), and `http://localhost` counts as a secure context for cookies.
 */
export function announce(hostname: string, port: number, publicBaseUrl?: string): string {
  if (publicBaseUrl) return `listening on ${hostname}:${port}; reachable at ${publicBaseUrl}`;
  const loopback = hostname === "localhost" || hostname === "::1" || hostname.startsWith("127.");
  if (loopback) return `listening on http://localhost:${port} (bound to ${hostname})`;
  const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
  return `listening on http://${shown}:${port}; set BOREALIS_PUBLIC_BASE_URL to the URL ` +
    `browsers and agents use (passkeys need a host name, not an IP address)`;
}

/** Path of the kernel's migrations folder (for tools). */
export const kernelMigrationsDir: string = fromFileUrl(KERNEL_MIGRATIONS.dir as URL);
