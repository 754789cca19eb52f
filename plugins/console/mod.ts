/**
 * The operator web console: serves the single-page app built from `ui/` at `/` on the
 * engine's own origin (same cookie, CSRF and CORS rules as any operator client). It has
 * no business logic and talks only to documented API routes. The build starts with the
 * engine (see build.ts) and requests for the console wait for it; the API never does.
 * `BOREALIS_STATIC_ROOT`, when set, serves its files instead.
 *
 * @module
 */
import { join } from "node:path";
import { optionalStringEnv, setting } from "../../core/config.ts";
import { definePlugin } from "../../core/plugin.ts";
import { buildConsole, type ConsoleBuild } from "./build.ts";
import { consoleHandler } from "./serve.ts";

export { CONSOLE_CSP, isApiPath } from "./serve.ts";
export { buildConsole, type ConsoleBuild } from "./build.ts";

/** A failed build is tried again at a request at most this often. */
const RETRY_MS = 30_000;

export default definePlugin({
  name: "console",
  description: "The operator web console (single-page app served at /)",
  settings: {
    cacheDir: setting(
      "BOREALIS_CONSOLE_CACHE_DIR",
      optionalStringEnv(),
      "a folder path",
      "Where built console bundles are kept (one folder per source hash).",
      "<data dir>/console",
    ),
  },
  setup(ctx) {
    if (ctx.core.staticRoot) {
      ctx.log.info(`BOREALIS_STATIC_ROOT is set: ${ctx.core.staticRoot} serves the console`);
      return;
    }
    const cacheDir = ctx.settings.cacheDir ?? join(ctx.core.dataDir, "console");
    let current: Promise<ConsoleBuild> | undefined;
    let failedAt = 0;
    const start = () => {
      const started = buildConsole({ cacheDir });
      current = started;
      started.then(
        (b) =>
          ctx.log.info(
            b.built
              ? `console built in ${b.ms} ms (${b.hash})`
              : `console build ${b.hash} reused from ${cacheDir}`,
          ),
        (err) => {
          failedAt = Date.now();
          ctx.log.error(
            `the console could not be built: ${err instanceof Error ? err.message : err}`,
          );
        },
      );
      return started;
    };
    // Started now, so the first browser visit finds it ready; never awaited here, so the
    // API (and agents reconnecting after a restart) never wait for it.
    start();
    const build = () =>
      failedAt && Date.now() - failedAt > RETRY_MS ? (failedAt = 0, start()) : current!;
    ctx.http.get("*", consoleHandler(build));
  },
});
