/**
 * The plugins shipped with the engine. `builtinPlugins` is what
 * `BOREALIS_PLUGINS=all` (the default) loads; `optionalPlugins` load only when named.
 *
 * @module
 */
import type { AnyPlugin } from "../core/plugin.ts";
import aegis from "./aegis/mod.ts";
import alerts from "./alerts/mod.ts";
import agentUpdates from "./agent_updates/mod.ts";
import assemblies from "./assemblies/mod.ts";
import consolePlugin from "./console/mod.ts";
import directory from "./directory/mod.ts";
import enrollment from "./enrollment/mod.ts";
import example from "./example/mod.ts";
import inventory from "./inventory/mod.ts";
import operators from "./operators/mod.ts";
import realtime from "./realtime/mod.ts";
import scheduler from "./scheduler/mod.ts";
import terminal from "./terminal/mod.ts";
import tokens from "./tokens/mod.ts";
import watchdogs from "./watchdogs/mod.ts";

/** Loaded by default. */
export const builtinPlugins: readonly AnyPlugin[] = [
  aegis,
  operators,
  directory,
  inventory,
  tokens,
  enrollment,
  assemblies,
  realtime,
  scheduler,
  watchdogs,
  alerts,
  agentUpdates,
  terminal,
  consolePlugin,
];

/** Loaded only when named in BOREALIS_PLUGINS. */
export const optionalPlugins: readonly AnyPlugin[] = [example];
