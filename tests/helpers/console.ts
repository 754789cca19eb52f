/**
 * Shared pieces of the console tests: one build cache for every test engine (the bundle
 * is keyed by a hash of its sources, so engines of one run build it once).
 *
 * @module
 */
import { join } from "node:path";
import { tmpdir } from "node:os";

/** The console build cache shared by test engines and engine processes of this machine. */
export function consoleCacheDir(): string {
  return Deno.env.get("BOREALIS_CONSOLE_CACHE_DIR") ?? join(tmpdir(), "borealis-console-cache");
}
