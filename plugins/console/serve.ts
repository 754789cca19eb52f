/**
 * Serving the built console: hash-named assets with a year of caching, and `index.html`
 * (never cached without revalidation) for every other non-API path so that deep links
 * such as `/devices/<guid>?tab=activity` open the app. API paths are left to the API, so a
 * wrong `/api/...` still answers the JSON 404.
 *
 * @module
 */
import type { Context, Next } from "hono";
import { errorResponse } from "../../core/http.ts";
import type { ConsoleAsset, ConsoleBuild } from "./build.ts";

/**
 * The Content Security Policy of the console's HTML. Scripts only from this origin (no
 * inline script, no eval), inline styles allowed (the component library injects them),
 * images and fonts from this origin or data: URLs, no plugins, no framing.
 */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
  "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; " +
  "base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/** Headers every console HTML response carries. */
export const HTML_HEADERS: Record<string, string> = {
  "Content-Security-Policy": CONSOLE_CSP,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "same-origin",
  "X-Frame-Options": "DENY",
  "Cache-Control": "no-cache",
};

/** True for paths the console never answers (the API and the kernel's probes). */
export function isApiPath(path: string): boolean {
  return path === "/api" || path.startsWith("/api/") || path === "/health" ||
    path.startsWith("/health/");
}

function respond(c: Context, asset: ConsoleAsset, extra: Record<string, string>): Response {
  const gzip = /\bgzip\b/.test(c.req.header("accept-encoding") ?? "");
  const body = gzip ? asset.gzip : asset.body;
  const headers: Record<string, string> = {
    "Content-Type": asset.type,
    "Content-Length": String(body.byteLength),
    "Vary": "Accept-Encoding",
    ...extra,
  };
  if (gzip) headers["Content-Encoding"] = "gzip";
  return new Response(c.req.method === "HEAD" ? null : body as BodyInit, { status: 200, headers });
}

/** A page shown when the console could not be built (the API keeps working). */
function unavailable(message: string): Response {
  const safe = message.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
  return new Response(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Borealis console unavailable</title></head>` +
      `<body><h1>The console is not available</h1><p>The engine is running and its API answers, ` +
      `but the web console could not be built:</p><pre>${safe}</pre>` +
      `<p>See the engine log for details.</p></body></html>`,
    { status: 503, headers: { ...HTML_HEADERS, "Content-Type": "text/html; charset=utf-8" } },
  );
}

/** The GET/HEAD handler for every path (registered last; it steps aside for the API). */
export function consoleHandler(build: () => Promise<ConsoleBuild>) {
  return async function serveConsole(c: Context, next: Next): Promise<Response | void> {
    const path = c.req.path;
    if (isApiPath(path)) return await next();
    let b: ConsoleBuild;
    try {
      b = await build();
    } catch (err) {
      return unavailable(err instanceof Error ? err.message : String(err));
    }
    if (path.startsWith("/assets/")) {
      const asset = b.assets.get(path);
      if (!asset) return errorResponse(c, 404, "not_found", `no console asset ${path}`);
      return respond(c, asset, {
        "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
      });
    }
    return respond(c, b.assets.get("/index.html")!, HTML_HEADERS);
  };
}
