/**
 * The Borealis Engine command line.
 *
 *   deno task start [start]            serve (the default)
 *   deno task start migrate [--status] apply migrations and exit, or list them
 *   deno task start plugins            loaded plugins, requirements and routes
 *   deno task start db profile|sessions
 *   …plus the commands plugins add (see --help)
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  ConfigError,
  type CoreSettings,
  coreSettingSpecs,
  type EnvSource,
  loadCoreSettings,
  processEnv,
} from "./core/config.ts";
import { freePort, WORKER_READY, WorkerSupervisor } from "./core/workers.ts";
import { DatabaseUnavailableError, openDatabase } from "./core/db.ts";
import {
  Engine,
  ENGINE_VERSION,
  loadPlugins,
  migrationSources,
  orderPlugins,
  PluginGraphError,
} from "./core/engine.ts";
import { createLogSink } from "./core/log.ts";
import { applyMigrations, MigrationError, migrationStatus } from "./core/migrate.ts";
import type { AnyPlugin, CommandContext, PluginCommand } from "./core/plugin.ts";
import { applyProfile, chooseProfile, detectMachine, renderProfile } from "./core/db_profile.ts";
import { listSessions, renderSessions } from "./core/db_sessions.ts";
import { builtinPlugins, optionalPlugins } from "./plugins/mod.ts";

const available = { builtin: builtinPlugins, optional: optionalPlugins };

/** Thrown for usage errors: exit code 2 after printing usage. */
class UsageError extends Error {}

const USAGE = `Borealis Engine ${ENGINE_VERSION}

Usage: deno task start [command] [options]

Commands:
  start                 serve the API (default)
  migrate               apply pending migrations and exit
  migrate --status      list applied and pending migrations per owner
  plugins               list loaded plugins, their requirements and routes
  db profile [--apply --url URL]
                        size the database for this machine (seeds/002 profiles)
  db sessions [--idle-seconds N]
                        the engine's PostgreSQL sessions; flags long idle transactions
  config                list every BOREALIS_* variable, its default and meaning
PLUGIN_COMMANDS
Options:
  -h, --help            show help (also after any command)

Configuration comes from BOREALIS_* environment variables (see README.md).
`;

function pluginCommands(): PluginCommand[] {
  return [...builtinPlugins, ...optionalPlugins].flatMap((p: AnyPlugin) => [...(p.commands ?? [])]);
}

function usage(): string {
  const extra = pluginCommands().map((c) => `  ${c.name.padEnd(22)}${c.summary}`).join("\n");
  return USAGE.replace("PLUGIN_COMMANDS", extra ? extra + "\n" : "");
}

type Flags = Record<string, { type: "boolean" | "string"; short?: string }>;

function parse(
  args: string[],
  options: Flags,
): { values: Record<string, string | boolean | undefined> } {
  try {
    const { values } = parseArgs({
      args,
      options: { help: { type: "boolean", short: "h" }, ...options },
      allowPositionals: false,
      strict: true,
    });
    return { values: values as Record<string, string | boolean | undefined> };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

async function readSecret(prompt: string): Promise<string> {
  const isTty = Deno.stdin.isTerminal();
  if (isTty) {
    Deno.stdout.writeSync(new TextEncoder().encode(prompt));
    Deno.stdin.setRaw(true);
  }
  const buf = new Uint8Array(1);
  const bytes: number[] = [];
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null || buf[0] === 10 || buf[0] === 13) break;
      if (buf[0] === 3) throw new UsageError("cancelled");
      if (buf[0] === 127 && isTty) bytes.pop();
      else bytes.push(buf[0]!);
    }
  } finally {
    if (isTty) {
      Deno.stdin.setRaw(false);
      Deno.stdout.writeSync(new TextEncoder().encode("\n"));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

async function start(): Promise<number> {
  const env = processEnv();
  const settings = loadCoreSettings(env);
  if (settings.workers > 1) return await startWorkers(settings, env);
  const engine = await Engine.create({ available });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    engine.stop(`received ${signal}`).then(() => Deno.exit(0), () => Deno.exit(1));
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  await engine.listen();
  if (env.BOREALIS_WORKER_INDEX !== undefined) {
    // A supervised worker: say it serves, and stop when the supervisor is gone (stdin ends).
    console.log(WORKER_READY);
    (async () => {
      try {
        for await (const _ of Deno.stdin.readable) { /* nothing is sent; wait for the end */ }
      } catch { /* closed */ }
      stop("the end of the supervisor's pipe");
    })();
  }
  return await new Promise<number>(() => {}); // runs until a signal exits the process
}

/** `BOREALIS_WORKERS` > 1: start that many engine processes on one port and supervise them. */
async function startWorkers(settings: CoreSettings, env: EnvSource): Promise<number> {
  if (!settings.databaseUrl) {
    console.error(
      `error: BOREALIS_WORKERS=${settings.workers} needs BOREALIS_DATABASE_URL. The embedded ` +
        "database (PGlite) lives inside one engine process and cannot be shared, so it runs " +
        "one process: unset BOREALIS_WORKERS, or point the engine at a PostgreSQL server.",
    );
    return 2;
  }
  const sink = createLogSink({
    dir: `${settings.dataDir}/Logs`,
    retentionDays: settings.logRetentionDays,
  });
  const log = sink.logger("workers");
  const port = settings.port === 0 ? freePort(settings.host) : settings.port;
  const root = new URL(".", import.meta.url).pathname;
  const supervisor = new WorkerSupervisor({
    count: settings.workers,
    port,
    metricsPort: settings.metricsPort,
    // --unstable-net: Deno.listen's reusePort (a listener of the engine's own) needs it.
    command: [
      Deno.execPath(),
      "run",
      "-A",
      "--unstable-net",
      "--config",
      `${root}deno.json`,
      `${root}main.ts`,
      "start",
    ],
    env: Object.fromEntries(
      Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined),
    ),
    log,
    stopTimeoutMs: settings.shutdownGraceMs + 15_000,
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`received ${signal}: stopping ${settings.workers} workers`);
    supervisor.stop().then(() => {
      log.info("all workers stopped");
      sink.close();
      Deno.exit(0);
    });
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  let rolling = false;
  Deno.addSignalListener("SIGHUP", () => {
    if (rolling || stopping) return;
    rolling = true;
    log.info("received SIGHUP: restarting the workers one at a time");
    supervisor.rollingRestart().then(
      () => log.info("rolling restart done"),
      (err) => log.error(`rolling restart failed: ${err instanceof Error ? err.message : err}`),
    ).finally(() => (rolling = false));
  });
  try {
    await supervisor.start();
  } catch (err) {
    log.error(`${err instanceof Error ? err.message : err}; stopping the others`);
    await supervisor.stop();
    sink.close();
    return 1;
  }
  log.info(
    `${settings.workers} workers serving http://${settings.host}:${port} (pids ${
      supervisor.workers().map((w) => w.pid).join(", ")
    }); SIGHUP restarts them one at a time, SIGTERM stops them`,
  );
  console.log(`${WORKER_READY} ${port}`);
  return await new Promise<number>(() => {});
}

async function migrate(args: string[]): Promise<number> {
  const { values } = parse(args, { status: { type: "boolean" } });
  if (values.help) {
    return print(
      "Usage: deno task start migrate [--status]\n\nApplies pending migrations, or lists them with --status.",
    );
  }
  const env = processEnv();
  const settings = loadCoreSettings(env);
  const plugins = orderPlugins(
    await loadPlugins(settings.plugins, available.builtin, available.optional),
  );
  const sink = createLogSink({
    dir: `${settings.dataDir}/Logs`,
    retentionDays: settings.logRetentionDays,
  });
  const log = sink.logger("migrate");
  const db = await openDatabase({
    url: settings.databaseUrl,
    dataDir: settings.dataDir,
    poolSize: 2,
    connectTimeoutSeconds: settings.dbConnectTimeout,
    idleInTxnTimeoutMs: settings.dbIdleInTxnTimeoutMs,
    log: sink.logger("db"),
  });
  try {
    const sources = migrationSources(plugins);
    if (values.status) {
      for (const owner of await migrationStatus(db.sql, sources)) {
        console.log(
          `${owner.owner}: ${owner.applied.length} applied, ${owner.pending.length} pending`,
        );
        for (const a of owner.applied) {
          console.log(`  applied  ${pad(a.version)}_${a.name}  ${a.appliedAt}`);
        }
        for (const p of owner.pending) console.log(`  pending  ${pad(p.version)}_${p.name}`);
      }
    } else {
      const n = await applyMigrations(db.sql, sources, log);
      console.log(n ? `applied ${n} migration(s)` : "nothing to apply");
    }
    return 0;
  } finally {
    await db.close();
    sink.close();
  }
}

const pad = (n: number) => String(n).padStart(3, "0");

async function listPlugins(args: string[]): Promise<number> {
  const { values } = parse(args, { json: { type: "boolean" } });
  if (values.help) {
    return print(
      "Usage: deno task start plugins [--json]\n\nStarts the engine without listening and lists what it loaded.",
    );
  }
  const engine = await Engine.create({ available });
  try {
    if (values.json) console.log(JSON.stringify(engine.loaded, null, 2));
    else {
      if (!engine.loaded.length) console.log("(no plugins loaded)");
      for (const p of engine.loaded) {
        console.log(
          `${p.name}${p.requires.length ? ` (requires ${p.requires.join(", ")})` : ""}${
            p.description ? ` — ${p.description}` : ""
          }`,
        );
        for (const r of p.routes) console.log(`  ${r.method.padEnd(7)}${r.path}`);
      }
    }
    return 0;
  } finally {
    await engine.stop("plugins listed");
  }
}

async function db(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "profile") {
    const { values } = parse(rest, { apply: { type: "boolean" }, url: { type: "string" } });
    if (values.help) {
      return print(
        "Usage: deno task start db profile [--apply --url postgres://…]\n\n" +
          "Detects CPU and RAM, picks a sizing profile and prints the engine pool and PostgreSQL settings.\n" +
          "--apply writes the PostgreSQL settings to the server at --url with ALTER SYSTEM (superuser needed).",
      );
    }
    const machine = detectMachine();
    const profile = chooseProfile(machine);
    console.log(renderProfile(profile, machine));
    if (values.apply) {
      if (!values.url) {
        throw new UsageError("--apply needs --url postgres://… (the server to configure)");
      }
      const postgres = (await import("postgres")).default;
      const sql = postgres(values.url as string, { max: 1, onnotice: () => {} });
      try {
        const result = await applyProfile(sql, profile);
        console.log(`applied: ${result.applied.join(", ") || "(none)"}`);
        if (result.needsRestart.length) {
          console.log(`restart PostgreSQL for: ${result.needsRestart.join(", ")}`);
        }
      } finally {
        await sql.end();
      }
    }
    return 0;
  }
  if (sub === "sessions") {
    const { values } = parse(rest, { "idle-seconds": { type: "string" }, url: { type: "string" } });
    if (values.help) {
      return print(
        "Usage: deno task start db sessions [--idle-seconds N] [--url postgres://…]\n\n" +
          "Lists the engine's PostgreSQL sessions and flags transactions idle longer than N seconds (default 5).",
      );
    }
    const threshold = Number(values["idle-seconds"] ?? 5);
    if (!Number.isFinite(threshold) || threshold < 0) {
      throw new UsageError("--idle-seconds must be a number ≥ 0");
    }
    const settings = loadCoreSettings(processEnv());
    const url = (values.url as string | undefined) ?? settings.databaseUrl;
    if (!url) {
      return print(
        "db sessions needs a PostgreSQL server (BOREALIS_DATABASE_URL or --url); the embedded database has no sessions to inspect.",
        1,
      );
    }
    const postgres = (await import("postgres")).default;
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      console.log(renderSessions(await listSessions(sql, { idleInTxnWarnSeconds: threshold })));
    } finally {
      await sql.end();
    }
    return 0;
  }
  if (sub === undefined || sub === "--help" || sub === "-h") {
    return print("Usage: deno task start db profile|sessions [--help]", sub === undefined ? 2 : 0);
  }
  throw new UsageError(`unknown db command: ${sub}`);
}

function config(args: string[]): number {
  const { values } = parse(args, {});
  if (values.help) {
    return print(
      "Usage: deno task start config\n\nLists every setting: variable, default, accepted form, meaning.",
    );
  }
  const all = [
    ...Object.values(coreSettingSpecs),
    ...[...builtinPlugins, ...optionalPlugins].flatMap((p: AnyPlugin) =>
      Object.values(p.settings ?? {})
    ),
  ] as Array<{ env: string; defaultText?: string; form: string; description: string }>;
  for (const s of all) {
    console.log(
      `${s.env}\n  default: ${s.defaultText ?? "(none)"}\n  form: ${s.form}\n  ${s.description}`,
    );
  }
  return 0;
}

function print(text: string, code = 0): number {
  (code === 0 ? console.log : console.error)(text);
  return code;
}

async function runPluginCommand(command: PluginCommand, args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) return print(command.usage);
  const opened: Engine[] = [];
  const ctx: CommandContext = {
    args,
    openEngine: async () => {
      const engine = await Engine.create({ available });
      opened.push(engine);
      return {
        service: (k) => engine.service(k),
        sql: engine.sql,
        stop: () => engine.stop("command finished"),
      };
    },
    readSecret,
    print: (t) => console.log(t),
  };
  try {
    return await command.run(ctx);
  } finally {
    for (const e of opened) await e.stop("command finished");
  }
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  // `deno task start <command>` must mean `<command>`: a leading "start" followed by another
  // command word (an older task definition, or `main.ts start migrate` typed by hand) only
  // names the default command, it is not an argument of it.
  const args = argv[0] === "start" && argv[1] !== undefined && !argv[1].startsWith("-")
    ? argv.slice(1)
    : argv;
  const [first, ...rest] = args;
  try {
    if (first === undefined || first === "start") {
      const { values } = parse(rest, {});
      if (values.help) return print(usage());
      return await start();
    }
    if (first === "--help" || first === "-h" || first === "help") return print(usage());
    if (first === "--version") return print(ENGINE_VERSION);
    if (first === "migrate") return await migrate(rest);
    if (first === "plugins") return await listPlugins(rest);
    if (first === "db") return await db(rest);
    if (first === "config") return config(rest);
    const words = `${first} ${rest[0] ?? ""}`.trim();
    const command = pluginCommands().find((c) => c.name === words || c.name === first);
    if (command) return await runPluginCommand(command, args.slice(command.name.split(" ").length));
    // A command group (`users`) names its commands: with --help that is the answer, without a
    // subcommand it is a usage error that still shows them.
    const group = pluginCommands().filter((c) => c.name.startsWith(`${first} `));
    if (group.length) {
      const list = group.map((c) => `  ${c.name.padEnd(22)}${c.summary}`).join("\n");
      if (rest[0] === "--help" || rest[0] === "-h") return print(`Commands:\n${list}\n`);
      throw new UsageError(`${first} needs a subcommand:\n${list}`);
    }
    throw new UsageError(`unknown command: ${first}`);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n`);
      console.error(usage());
      return 2;
    }
    if (err instanceof ConfigError) {
      console.error("invalid configuration:");
      for (const line of err.lines) console.error(`  ${line}`);
      return 2;
    }
    if (
      err instanceof PluginGraphError || err instanceof MigrationError ||
      err instanceof DatabaseUnavailableError
    ) {
      console.error(`error: ${err.message}`);
      return 1;
    }
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
