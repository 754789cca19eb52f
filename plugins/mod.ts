/**
 * The plugins shipped with the engine. `builtinPlugins` is what
 * `BOREALIS_PLUGINS=all` (the default) loads; `optionalPlugins` load only when named.
 *
 * @module
 */
import type { AnyPlugin } from "../core/plugin.ts";
import example from "./example/mod.ts";

/** Loaded by default. */
export const builtinPlugins: readonly AnyPlugin[] = [];

/** Loaded only when named in BOREALIS_PLUGINS. */
export const optionalPlugins: readonly AnyPlugin[] = [example];
