/**
 * The HTTP application: an `OpenAPIHono` app whose routes are declared with zod
 * schemas (so the schema that validates a request is the one documented in
 * `/api/openapi.json`), plus the kernel's middleware — request ids, one JSON error
 * model, body limits, CORS, security headers, health probes and static files with SPA
 * fallback.
 *
 * @module
 */
import { type ProxyMatcher, resolveClientIp } from "./client_ip.ts";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { routePath } from "hono/route";
import { extname, join, normalize } from "node:path";
import type { AuthRegistry, Principal } from "./auth.ts";
import { DatabaseUnavailableError, isDatabaseUnavailable } from "./db_errors.ts";
import { HttpError } from "./errors.ts";
import { checkRouteInputs, databaseRefusal, screenInput } from "./input_guard.ts";
import type { ConnectionControl } from "./listener.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { isStorageError, type WriteState } from "./storage_health.ts";

/**
 * Per-request values. The kernel passes them as Hono's env (`c.env`) from its fetch
 * wrapper rather than through a middleware, so a GET route keeps Hono's single-handler
 * fast path.
 */
export interface RequestEnv {
  /** The request id (the caller's `X-Request-Id` if safe, else a new UUID). */
  requestId: string;
  auth: AuthRegistry;
  /** The peer address, when served by a listener. */
  remoteAddr?: { hostname: string; port: number; transport?: string };
  /** The client's address (the peer, or what trusted proxies forwarded); made on first use. */
  readonly clientIp: string | null;
  /** The connection the request came on, when served by the engine's listener. */
  connection?: ConnectionControl;
}

/** Hono environment of every route. */
export type AppEnv = {
  Bindings: RequestEnv;
  Variables: {
    /** Cached principal: undefined = not resolved yet, null = anonymous. */
    principal: Principal | null | undefined;
  };
};

/** The router type plugins receive as `ctx.http`. */
export type Router = OpenAPIHono<AppEnv>;

/** One JSON error body. */
export interface ErrorBody {
  error: string;
  message: string;
  details?: unknown;
  request_id?: string;
}

/** Builds an error response in the one error model. */
export function errorResponse(
  c: Context,
  status: number,
  error: string,
  message: string,
  details?: unknown,
  headers?: Record<string, string>,
): Response {
  const body: ErrorBody = { error, message };
  if (details !== undefined) body.details = details;
  const res = c.json(body, status as 400);
  if (headers) { for (const [k, v] of Object.entries(headers)) res.headers.set(k, v); }
  return res;
}

/** Validation failures from zod, listed per field. */
function validationHook(
  result: {
    success: boolean;
    error?: { issues: Array<{ path: PropertyKey[]; message: string; code: string }> };
    target?: string;
  },
  c: Context,
): Response | undefined {
  const refused = screenInput(result, c);
  if (refused) return errorResponse(c, 400, refused.error, refused.message, refused.details);
  if (result.success) return undefined;
  const details = (result.error?.issues ?? []).map((i) => ({
    field: i.path.map(String).join(".") || "(root)",
    in: result.target,
    message: i.message,
    code: i.code,
  }));
  return errorResponse(
    c,
    400,
    "validation_failed",
    `invalid ${result.target ?? "request"}: ${
      details.map((d) => `${d.field}: ${d.message}`).join("; ")
    }`,
    details,
  );
}

type HookResult = Parameters<typeof validationHook>[0];

/**
 * The validation hook of a protocol route whose documented errors give a missing field
 * its own code (`hostname_required`): such a field left out answers that code, anything
 * else gets the kernel's answer. The fields stay required in the schema, so the OpenAPI
 * document says what the route enforces.
 */
export function requiredFieldCodes(codes: Record<string, string>): never {
  // Typed never: a route's hook parameter is typed by its response schemas.
  return ((result: HookResult, c: Context): Response | undefined => {
    if (!result.success && !screenInput(result, c)) {
      for (const issue of result.error?.issues ?? []) {
        const field = issue.path.map(String).join(".");
        const code = codes[field];
        if (code && issue.code === "invalid_type" && /received undefined/.test(issue.message)) {
          return errorResponse(c, 400, code, `${field} is required`);
        }
      }
    }
    return validationHook(result, c);
  }) as never;
}

/** Creates a router with the kernel's validation hook (one per plugin). */
export function createRouter(): Router {
  const router = new OpenAPIHono<AppEnv>({
    defaultHook: validationHook as never,
  });
  const register = router.openapi;
  router.openapi = ((route: Parameters<typeof register>[0], ...rest: unknown[]) => {
    checkRouteInputs(route);
    return (register as (...a: unknown[]) => Router)(route, ...rest);
  }) as typeof register;
  return router;
}

/** Options for {@link createApp}. */
export interface AppOptions {
  log: Logger;
  auth: AuthRegistry;
  maxBodyBytes: number;
  /**
   * Path prefixes with their own body limits (longest prefix wins). A `streamed` prefix
   * is never buffered: it needs a `Content-Length` within the limit.
   */
  bodyLimits?: Array<{ prefix: string; bytes: number; streamed?: boolean }>;
  corsOrigins: string[];
  /** Answers `/health/ready`: resolves when the database answers. */
  ready: () => Promise<void>;
  /** Whether writes work (a database may answer reads and refuse every write). */
  writes?: () => WriteState;
  /** Set while the engine drains: new requests get 503. */
  isDraining?: () => boolean;
  /** Proxies whose `X-Forwarded-For` is believed (none by default). */
  trustedProxies?: ProxyMatcher;
  /** Where API request durations are recorded (by method, route pattern and status). */
  metrics?: Metrics;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * The Content-Security-Policy of the engine's HTML pages (the static root, the console):
 * scripts only from the engine itself, no plugins, no framing, forms and connections to
 * the engine only. Inline styles stay allowed for the console's component library.
 */
export const HTML_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
  "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; " +
  "base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/** The policy of everything else (JSON, files): nothing may load from it or frame it. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * Responses that go out without the stamped headers: only `GET /health`, the liveness
 * probe a load balancer calls many times a second, which no browser renders. The id and
 * the five headers cost it about a quarter of its CPU per request (measured with
 * bench/kernel_bench.ts; docs/operations.md).
 */
const unstamped = new WeakSet<Response>();

function plain(res: Response): Response {
  unstamped.add(res);
  return res;
}

/**
 * Headers on every response: the request id (for support requests and logs) and the
 * security headers a browser needs — no MIME sniffing, no referrer, no framing (old and
 * new header), and a CSP and referrer policy unless the response brought its own. HTML
 * pages do: `same-origin`, because under `no-referrer` a browser sends `Origin: null` with
 * a page's own form POST (fetch still sends the origin), which the CSRF rule must refuse.
 */
function stampHeaders(h: Headers, requestId: string): void {
  h.set("X-Request-Id", requestId);
  h.set("X-Content-Type-Options", "nosniff");
  if (!h.has("Referrer-Policy")) h.set("Referrer-Policy", "no-referrer");
  h.set("X-Frame-Options", "DENY");
  if (!h.has("Content-Security-Policy")) h.set("Content-Security-Policy", API_CSP);
}

/** Error codes of the statuses Hono's own middleware raises. */
const HTTP_CODES: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  408: "request_timeout",
  411: "length_required",
  415: "unsupported_media_type",
  422: "unprocessable_entity",
};

/** Creates the application with the kernel's middleware and probes. */
export function createApp(options: AppOptions): Router {
  const app = createRouter();
  const log = options.log;
  // The live list: plugins add their prefixes after the app exists (during setup); the
  // engine keeps it sorted longest prefix first.
  const limits = options.bodyLimits ?? [];
  limits.sort((a, b) => b.prefix.length - a.prefix.length);
  const limiters = new Map<number, MiddlewareHandler>();
  const limiterFor = (bytes: number) => {
    let m = limiters.get(bytes);
    if (!m) {
      m = bodyLimit({
        maxSize: bytes,
        onError: (c) =>
          errorResponse(c, 413, "payload_too_large", `request body exceeds ${bytes} bytes`, {
            limit: bytes,
          }),
      });
      limiters.set(bytes, m);
    }
    return m;
  };

  if (options.metrics) {
    // The API only: the health probes stay on Hono's single-handler fast path.
    const seconds = options.metrics.histogram(
      "borealis_http_request_duration_seconds",
      "API request handling time by method, route pattern and status",
      ["method", "route", "status"],
    );
    app.use("/api/*", async function timeRequest(c, next) {
      const start = performance.now();
      await next();
      // After next() the route index points at the handler that answered; "/api/*" is
      // this middleware itself, i.e. no route matched (kept as one label, not the path).
      const route = routePath(c);
      seconds.observe({
        method: c.req.method,
        route: route === "/api/*" ? "(unmatched)" : route,
        status: c.res.status,
      }, (performance.now() - start) / 1000);
    });
  }

  // Only requests that can carry a body pay for the limit check.
  app.on(["POST", "PUT", "PATCH", "DELETE"], "*", async function limitBody(c, next) {
    const path = c.req.path;
    const limit = limits.find((l) => path.startsWith(l.prefix));
    const bytes = limit?.bytes ?? options.maxBodyBytes;
    if (limit?.streamed && c.req.raw.body) {
      // Large bodies the handler streams (file uploads): judged by their declared length.
      const declared = c.req.header("content-length");
      if (declared === undefined || c.req.header("transfer-encoding") !== undefined) {
        return errorResponse(c, 411, "length_required", "send the body with a Content-Length");
      }
      if (!/^\d{1,16}$/.test(declared) || Number(declared) > bytes) {
        return errorResponse(c, 413, "payload_too_large", `request body exceeds ${bytes} bytes`, {
          limit: bytes,
        });
      }
      return await next();
    }
    const early = await limiterFor(bytes)(c, next);
    if (early instanceof Response) c.res = early;
  });

  if (options.corsOrigins.length) {
    const any = options.corsOrigins.includes("*");
    app.use(
      "/api/*",
      cors({
        origin: any ? "*" : options.corsOrigins,
        credentials: !any,
        allowHeaders: ["Content-Type", "Authorization", "DPoP", "X-Request-Id"],
        exposeHeaders: ["X-Request-Id", "Retry-After", "WWW-Authenticate", "DPoP-Nonce"],
        maxAge: 600,
      }),
    );
  }

  app.onError((err, c) => {
    if (err instanceof HttpError) {
      return errorResponse(c, err.status, err.code, err.message, err.details, err.headers);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      if (status === 413) {
        return errorResponse(c, 413, "payload_too_large", "request body too large");
      }
      return errorResponse(
        c,
        status,
        HTTP_CODES[status] ?? (status >= 500 ? "internal_error" : "bad_request"),
        err.message || "bad request",
      );
    }
    if (err instanceof SyntaxError && /JSON/i.test(err.message)) {
      return errorResponse(c, 400, "invalid_json", "request body is not valid JSON");
    }
    if (isStorageError(err)) {
      // A full disk or a read-only data dir: readiness says so and the log has it once.
      return errorResponse(
        c,
        503,
        "storage_unavailable",
        "the database cannot write right now (disk full or read-only); retry later",
        { retry_after: 30 },
        { "Retry-After": "30" },
      );
    }
    if (isDatabaseUnavailable(err)) {
      // The request may be repeated: the database could not be reached, or the
      // connection ended under it. Not logged per request (an outage would flood the
      // log); the database client logs the outage once.
      const retry = err instanceof DatabaseUnavailableError ? err.retryAfterSeconds : 2;
      return errorResponse(
        c,
        503,
        "database_unavailable",
        "the database cannot be reached right now; retry shortly",
        { retry_after: retry },
        { "Retry-After": String(retry) },
      );
    }
    const requestId = c.env?.requestId ?? "unknown";
    const refusal = databaseRefusal(err);
    if (refusal) {
      // PostgreSQL refused the request's values: a 4xx (with the request id), and for a
      // data exception a validation gap worth fixing (logged).
      const note = refusal.status === 400 ? log.warn : log.info;
      note(`${c.req.method} ${c.req.path}: database refused the request (${refusal.sqlstate})`);
      return c.json(
        {
          error: refusal.error,
          message: refusal.message,
          details: { sqlstate: refusal.sqlstate },
          request_id: requestId,
        } satisfies ErrorBody,
        refusal.status,
      );
    }
    log.error(
      `unhandled error in ${c.req.method} ${c.req.path} (request ${requestId}): ${describe(err)}`,
    );
    return c.json(
      {
        error: "internal_error",
        message: "unexpected server error",
        request_id: requestId,
      } satisfies ErrorBody,
      500,
    );
  });

  app.get("/health", (c) => plain(c.json({ status: "ok" })));
  app.get("/health/ready", async (c) => {
    try {
      await withTimeout(options.ready(), 2000);
    } catch {
      return c.json({ status: "unavailable", database: "unreachable" }, 503);
    }
    const writes = options.writes?.() ?? { ok: true };
    if (!writes.ok) {
      return c.json({
        status: "unavailable",
        database: "ok",
        writes: "failing",
        reason: writes.reason,
        ...(writes.since ? { since: writes.since } : {}),
      }, 503);
    }
    return c.json({ status: "ok", database: "ok", writes: "ok" });
  });

  return app;
}

/**
 * The request handler around the app: assigns the request id, refuses work while
 * draining, and stamps the kernel's response headers.
 */
export function createHandler(
  app: Router,
  options: Pick<AppOptions, "auth" | "isDraining" | "trustedProxies">,
): (
  request: Request,
  info?: { remoteAddr?: RequestEnv["remoteAddr"]; connection?: ConnectionControl },
) => Response | Promise<Response> {
  const draining = options.isDraining ?? (() => false);
  // Not async: when the route answers synchronously (Hono does for synchronous handlers)
  // the Response goes back to Deno.serve as is, which keeps it on its fast path; a
  // Promise, even an already settled one, costs GET /health about a third of its rate.
  return function handle(request, info) {
    // The id is made on first use: reading a request header makes Deno materialise all
    // of them. Every response carries one (see stampHeaders).
    let requestId: string | undefined;
    let clientIp: string | null | undefined;
    // Read now: after a WebSocket upgrade Deno refuses to hand out the peer or headers.
    const remoteAddr = info?.remoteAddr;
    const env: RequestEnv = {
      get requestId() {
        if (requestId === undefined) {
          let incoming: string | null = null;
          try {
            incoming = request.headers.get("x-request-id");
          } catch { /* after a WebSocket upgrade the headers are gone */ }
          requestId = incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
        }
        return requestId;
      },
      auth: options.auth,
      remoteAddr,
      connection: info?.connection,
      get clientIp() {
        if (clientIp === undefined) {
          const peer = remoteAddr?.hostname;
          // Only a trusted peer's forwarding header is read (reading headers is not free).
          clientIp = peer === undefined ? null : resolveClientIp(
            peer,
            options.trustedProxies?.trusts(peer) ? request.headers.get("x-forwarded-for") : null,
            options.trustedProxies,
          );
        }
        return clientIp;
      },
    };
    const finish = (res: Response): Response => {
      // A WebSocket upgrade's headers are already sent.
      if (res.status === 101 || unstamped.has(res)) return res;
      try {
        stampHeaders(res.headers, env.requestId);
      } catch {
        // Immutable headers (a fetched response passed through): leave them as they are.
      }
      return res;
    };
    if (draining()) {
      return finish(Response.json(
        {
          error: "shutting_down",
          message: "the engine is shutting down; retry shortly",
        } satisfies ErrorBody,
        { status: 503, headers: { "Retry-After": "5", Connection: "close" } },
      ));
    }
    const out = app.fetch(request, env);
    return out instanceof Promise ? out.then(finish) : finish(out);
  };
}

/**
 * Final handlers: JSON 404 for the API (405 with `Allow` when the path exists for other
 * methods), static files with SPA fallback for the rest.
 */
export function installFallback(app: Router, staticRoot: string | undefined): void {
  let table: Array<{ method: string; pattern: RegExp }> | undefined;
  const allowedMethods = (path: string): string[] => {
    // Built on first use, after every plugin has registered its routes.
    table ??= app.routes
      .filter((r) => r.method !== "ALL" && r.path !== "/*" && r.path !== "*")
      .map((r) => ({ method: r.method, pattern: routePattern(r.path) }));
    const methods = new Set(table.filter((r) => r.pattern.test(path)).map((r) => r.method));
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort();
  };
  app.notFound(async (c) => {
    const path = c.req.path;
    const method = c.req.method;
    if (
      staticRoot && !path.startsWith("/api/") && path !== "/api" &&
      (method === "GET" || method === "HEAD")
    ) {
      const res = await serveStatic(staticRoot, path);
      if (res) return res;
    }
    const allow = allowedMethods(path);
    if (allow.length && !allow.includes(method)) {
      return errorResponse(
        c,
        405,
        "method_not_allowed",
        `${method} is not allowed on ${path}; allowed: ${allow.join(", ")}`,
        { allow },
        { Allow: allow.join(", ") },
      );
    }
    return errorResponse(c, 404, "not_found", `no route for ${method} ${path}`);
  });
}

/** A Hono route path (`/api/x/:id`, `:id{[0-9]+}`, `*`) as an anchored pattern. */
function routePattern(path: string): RegExp {
  let out = "";
  for (let i = 0; i < path.length;) {
    const ch = path[i]!;
    const param = ch === ":" && path[i - 1] === "/"
      ? /^:[A-Za-z0-9_]+(\{((?:[^{}]|\{[^{}]*\})*)\})?\??/.exec(path.slice(i))
      : null;
    if (param) {
      out += param[2] ? `(?:${param[2]})` : "[^/]+";
      i += param[0].length;
    } else if (ch === "*") {
      out += ".*";
      i++;
    } else {
      out += ch.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
      i++;
    }
  }
  return new RegExp(`^${out}/?$`);
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json",
  ".webmanifest": "application/manifest+json",
};

async function serveStatic(root: string, urlPath: string): Promise<Response | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes("\0")) return null;
  // normalize() collapses "..", and the prefix check keeps the result inside root.
  const candidate = join(root, normalize("/" + decoded));
  if (!candidate.startsWith(join(root, "/")) && candidate !== root) return null;
  for (const file of [candidate, join(root, "index.html")]) {
    try {
      const info = await Deno.stat(file);
      if (!info.isFile) continue;
      const handle = await Deno.open(file, { read: true });
      const type = TYPES[extname(file).toLowerCase()] ?? "application/octet-stream";
      const cache = file.endsWith("index.html") ? "no-cache" : "public, max-age=3600";
      return new Response(handle.readable, {
        headers: {
          "Content-Type": type,
          "Content-Length": String(info.size),
          "Cache-Control": cache,
          ...(type.startsWith("text/html")
            ? { "Content-Security-Policy": HTML_CSP, "Referrer-Policy": "same-origin" }
            : {}),
        },
      });
    } catch {
      // try the SPA fallback
    }
  }
  return null;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    return `${err.name}: ${err.message}${err.stack ? `\n${err.stack}` : ""}`;
  }
  return String(err);
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
