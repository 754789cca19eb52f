/**
 * The plugin contract. A plugin is a value: a name, the plugins it requires, its
 * migrations folder, its settings section, and a `setup` that receives exactly what
 * the plugin may touch — nothing global.
 *
 * @module
 */
import type { Auditor } from "./audit.ts";
import type { AuthRegistry } from "./auth.ts";
import type { Clock } from "./clock.ts";
import type { CoreSettings, SettingsOf, SettingSpecs } from "./config.ts";
import type { Sql } from "./db.ts";
import type { EventBus } from "./events.ts";
import type { Router } from "./http.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { TaskRegistrar } from "./tasks.ts";

/**
 * The version of this contract. {@link definePlugin} stamps it on every plugin, so a
 * plugin written against another version of the engine is refused at start with a
 * message naming both versions instead of failing somewhere in `setup`.
 */
export const PLUGIN_API_VERSION = 1;

/** A typed key under which one plugin provides a service to others. */
export interface ServiceKey<T> {
  /** `<plugin>.<service>`; the part before the dot names the providing plugin. */
  readonly id: string;
  /** Phantom field carrying the service type. */
  readonly _type?: T;
}

/** Declares a service key. Export it from the providing plugin's `api.ts`. */
export function serviceKey<T>(id: string): ServiceKey<T> {
  if (!/^[a-z][a-z0-9_]*\.[A-Za-z0-9_.]+$/.test(id)) {
    throw new Error(`service key "${id}" must look like "<plugin>.<service>"`);
  }
  return { id };
}

/** What `setup` receives. */
export interface PluginContext<S extends SettingSpecs = SettingSpecs> {
  /** This plugin's name. */
  readonly name: string;
  /** A router mounted at the root; keep upstream paths (`/api/...`). */
  readonly http: Router;
  readonly sql: Sql;
  /** This plugin's own validated settings section. */
  readonly settings: SettingsOf<S>;
  /** The kernel's settings (read-only): data dir, public URL, debug. */
  readonly core: Readonly<CoreSettings>;
  readonly log: Logger;
  readonly clock: Clock;
  /** Background tasks; names are prefixed with the plugin name. */
  readonly tasks: TaskRegistrar;
  readonly events: EventBus;
  /** Install authenticators; route guards live in core/auth.ts. */
  readonly auth: AuthRegistry;
  readonly audit: Auditor;
  /** Prometheus figures of this instance (`borealis_<plugin>_…`), served on the metrics port. */
  readonly metrics: Metrics;
  /** Unique id of this engine instance (for registries and leases). */
  readonly instanceId: string;
  /** Provides a service under a key this plugin owns. */
  provide<T>(key: ServiceKey<T>, service: T): void;
  /** Uses a service of this plugin or of a plugin it names in `requires`. */
  use<T>(key: ServiceKey<T>): T;
  /**
   * Uses a service of a plugin named in `optional` (or `requires`) when that plugin is
   * loaded; `undefined` when it is not.
   */
  tryUse<T>(key: ServiceKey<T>): T | undefined;
  /**
   * Gives requests under `prefix` a body limit other than the default. With `streamed`
   * the body is never buffered by the kernel: the request must declare its
   * `Content-Length` (411 otherwise) and the handler reads the stream itself.
   */
  bodyLimit(prefix: string, bytes: number, options?: { streamed?: boolean }): void;
  /**
   * Runs first at shutdown, while the listener still serves (new requests get 503): say
   * goodbye on long-lived connections (close WebSockets with the plugin's own code and
   * wait for the close frames to go out), before the runtime closes them itself. All
   * drain hooks run at once; together with the in-flight requests they get
   * `BOREALIS_SHUTDOWN_GRACE_MS`.
   */
  onDrain(fn: () => void | Promise<void>): void;
  /** Runs at shutdown, in reverse plugin order, after HTTP stops accepting work. */
  onStop(fn: () => void | Promise<void>): void;
}

/** What a plugin CLI command receives. */
export interface CommandContext {
  /** Arguments after the command words. */
  readonly args: string[];
  /** Builds an engine from the environment (migrated, not listening); stop it when done. */
  openEngine(): Promise<CommandEngine>;
  /** Reads a secret line (password) from stdin without echo where possible. */
  readSecret(prompt: string): Promise<string>;
  print(text: string): void;
}

/** The engine as a CLI command sees it. */
export interface CommandEngine {
  service<T>(key: ServiceKey<T>): T;
  readonly sql: Sql;
  stop(): Promise<void>;
}

/** A command a plugin adds to `main.ts`, e.g. `users create-admin`. */
export interface PluginCommand {
  /** One or two words: "users create-admin". */
  readonly name: string;
  readonly summary: string;
  /** Usage text shown by --help. */
  readonly usage: string;
  /** Returns the process exit code. */
  run(ctx: CommandContext): Promise<number>;
}

/** A plugin definition. */
export interface Plugin<S extends SettingSpecs = SettingSpecs> {
  readonly name: string;
  readonly description?: string;
  /** Plugins loaded, migrated and set up before this one; their services are `use`d. */
  readonly requires?: readonly string[];
  /**
   * Plugins this one works with when they are loaded (their services are `tryUse`d):
   * set up before this one when present, never required.
   */
  readonly optional?: readonly string[];
  /** Folder of `NNN_description.sql` files owned by this plugin. */
  readonly migrations?: URL;
  /** This plugin's settings (environment variables). */
  readonly settings?: S;
  /** CLI commands this plugin adds. */
  readonly commands?: readonly PluginCommand[];
  setup(ctx: PluginContext<S>): void | Promise<void>;
  /** The contract version the plugin was written against; set by {@link definePlugin}. */
  readonly apiVersion?: number;
}

/**
 * Gives a plugin literal its types and stamps the contract version of the kernel it
 * was imported from (see {@link PLUGIN_API_VERSION}).
 */
export function definePlugin<S extends SettingSpecs = Record<never, never>>(
  plugin: Plugin<S>,
): Plugin<S> {
  if (!/^[a-z][a-z0-9_]*$/.test(plugin.name)) {
    throw new Error(`plugin name "${plugin.name}" must be lower case letters, digits and _`);
  }
  return { ...plugin, apiVersion: plugin.apiVersion ?? PLUGIN_API_VERSION };
}

/** Any plugin, whatever its settings. */
// deno-lint-ignore no-explicit-any
export type AnyPlugin = Plugin<any>;
