/**
 * Starts real engines for tests: the kernel's helper (core/testing.ts) with the engine's
 * built-in and optional plugins available, so a test lists the plugins it is about and what
 * they require comes along, as it does for BOREALIS_PLUGINS.
 *
 * @module
 */
import {
  startTestEngine as startKernelTestEngine,
  type TestEngine,
  type TestEngineOptions,
} from "../../core/testing.ts";
import { builtinPlugins, optionalPlugins } from "../../plugins/mod.ts";

export type { TestEngine, TestEngineOptions } from "../../core/testing.ts";

/** Starts an engine on a fresh (or given) database with a manual clock. */
export function startTestEngine(options: TestEngineOptions): Promise<TestEngine> {
  return startKernelTestEngine({
    available: [...builtinPlugins, ...optionalPlugins],
    ...options,
  });
}
