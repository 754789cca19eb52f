/**
 * The reference agent's script runner is the production agent's: see
 * agent/runners/runner.ts.
 *
 * @module
 */
export * from "../../agent/runners/runner.ts";
