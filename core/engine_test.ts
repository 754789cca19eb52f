import assert from "node:assert/strict";
import { createRoute, z } from "@hono/zod-openapi";
import { orderPlugins, PluginGraphError, selectPlugins } from "./engine.ts";
import { requireRole } from "./auth.ts";
import { definePlugin, serviceKey } from "./plugin.ts";
import { startTestEngine } from "../tests/helpers/test_engine.ts";
import { createTestDatabase } from "../tests/helpers/test_db.ts";
import example, { notesService } from "../plugins/example/mod.ts";

const p = (name: string, requires: string[] = []) => definePlugin({ name, requires, setup() {} });

Deno.test("plugins: ordered after their requirements, ties keep the listed order", () => {
  const order = orderPlugins([
    p("scheduler", ["assemblies", "realtime"]),
    p("realtime", ["tokens"]),
    p("tokens"),
    p("assemblies"),
  ])
    .map((x) => x.name);
  assert.deepEqual(order, ["tokens", "realtime", "assemblies", "scheduler"]);
});

Deno.test("plugins: a missing requirement or a cycle stops start-up naming them", () => {
  assert.throws(
    () => orderPlugins([p("a", ["ghost"])]),
    (e: Error) =>
      e instanceof PluginGraphError &&
      /plugin a requires plugin ghost, which is not loaded/.test(e.message),
  );
  assert.throws(
    () => orderPlugins([p("a", ["c"]), p("b", ["a"]), p("c", ["b"])]),
    (e: Error) => e instanceof PluginGraphError && /cycle: a → c → b → a/.test(e.message),
  );
  assert.throws(() => selectPlugins(["all", "nope"], [p("a")]), /unknown plugin nope; known: a/);
  assert.deepEqual(selectPlugins(["all"], [p("a"), p("b")], [p("x")]).map((x) => x.name), [
    "a",
    "b",
  ]);
  assert.deepEqual(selectPlugins(["all", "x"], [p("a")], [p("x")]).map((x) => x.name), ["a", "x"]);
});

Deno.test("plugins: service keys resolve in dependency order and wrong use fails at setup naming the plugin", async () => {
  const db = await createTestDatabase();
  try {
    const greeter = serviceKey<{ hi(): string }>("alpha.greeter");
    const alpha = definePlugin({
      name: "alpha",
      setup: (ctx) => ctx.provide(greeter, { hi: () => "hi" }),
    });
    let got = "";
    const beta = definePlugin({
      name: "beta",
      requires: ["alpha"],
      setup: (ctx) => void (got = ctx.use(greeter).hi()),
    });
    const t = await startTestEngine({ plugins: [beta, alpha], db });
    assert.equal(got, "hi");
    assert.equal(t.engine.service(greeter).hi(), "hi");
    await t.stop();

    const sneaky = definePlugin({ name: "sneaky", setup: (ctx) => void ctx.use(greeter) });
    await assert.rejects(
      startTestEngine({ plugins: [alpha, sneaky], db }),
      /plugin sneaky uses service alpha.greeter but does not require plugin alpha/,
    );
    const unknown = definePlugin({
      name: "gamma",
      requires: ["alpha"],
      setup: (ctx) => void ctx.use(serviceKey("alpha.nothing")),
    });
    await assert.rejects(
      startTestEngine({ plugins: [alpha, unknown], db }),
      /plugin gamma asked for unknown service alpha.nothing/,
    );
    const thief = definePlugin({
      name: "thief",
      setup: (ctx) => ctx.provide(greeter, { hi: () => "x" }),
    });
    await assert.rejects(
      startTestEngine({ plugins: [thief], db }),
      /thief cannot provide alpha.greeter/,
    );
  } finally {
    await db.drop();
  }
});

Deno.test("http: a throwing handler gives a 500 that shows only the request id and logs it redacted", async () => {
  const boom = definePlugin({
    name: "boom",
    setup(ctx) {
      ctx.http.get("/api/boom", () => {
        throw new Error("database said password=hunter2 is wrong");
      });
    },
  });
  const t = await startTestEngine({ plugins: [boom] });
  try {
    const res = await t.request("/api/boom", { headers: { "x-request-id": "req-123" } });
    assert.equal(res.status, 500);
    assert.equal(res.headers.get("x-request-id"), "req-123");
    const text = await res.text();
    assert.deepEqual(JSON.parse(text), {
      error: "internal_error",
      message: "unexpected server error",
      request_id: "req-123",
    });
    const log = await Deno.readTextFile(`${t.db.dataDir}/Logs/engine.log`);
    assert.match(log, /-engine-ERROR-http: unhandled error in GET \/api\/boom \(request req-123\)/);
    assert.ok(!log.includes("hunter2"));
  } finally {
    await t.close();
  }
});

Deno.test("http: health, readiness, OpenAPI, 404s, body limits, request ids", async () => {
  const t = await startTestEngine({ plugins: [example], env: { BOREALIS_MAX_BODY_BYTES: "1024" } });
  try {
    const health = await t.request("/health");
    assert.deepEqual(await health.json(), { status: "ok" });
    // Every response carries a request id (the caller's own if safe) and the security
    // headers, except the liveness probe (a load balancer's hot path, never rendered).
    assert.equal(health.headers.get("x-request-id"), null);
    const ready = await t.request("/health/ready");
    await ready.body?.cancel();
    assert.match(ready.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(ready.headers.get("x-content-type-options"), "nosniff");
    assert.equal(ready.headers.get("x-frame-options"), "DENY");
    assert.equal(ready.headers.get("referrer-policy"), "no-referrer");
    assert.match(ready.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
    const echoed = await t.request("/api/nothing", { headers: { "x-request-id": "trace-42" } });
    assert.equal(echoed.headers.get("x-request-id"), "trace-42");
    await echoed.body?.cancel();
    assert.deepEqual(await (await t.request("/health/ready")).json(), {
      status: "ok",
      database: "ok",
      writes: "ok",
    });

    const doc = await (await t.request("/api/openapi.json")).json();
    assert.equal(doc.openapi, "3.1.0");
    assert.ok(doc.paths["/api/example/notes"].post, "plugin routes are documented");
    assert.ok(doc.paths["/api/example/notes/{id}"].delete);
    assert.ok(doc.components.schemas.ExampleNote);

    const missing = await t.request("/api/nothing-here");
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    assert.equal((await missing.json()).error, "not_found");

    const big = await t.request("/api/example/notes", {
      method: "POST",
      json: { text: "x".repeat(2000) },
    });
    assert.equal(big.status, 413);
    assert.equal((await big.json()).error, "payload_too_large");
    assert.equal(await t.engine.service(notesService).count(), 0);

    const forged = await t.request("/health", {
      headers: { "x-request-id": "bad id with spaces" },
    });
    assert.notEqual(forged.headers.get("x-request-id"), "bad id with spaces");
  } finally {
    await t.close();
  }
});

Deno.test("http: static files with SPA fallback, never outside the root, never for /api", async () => {
  const root = await Deno.makeTempDir();
  await Deno.writeTextFile(`${root}/index.html`, "<h1>console</h1>");
  await Deno.mkdir(`${root}/assets`);
  await Deno.writeTextFile(`${root}/assets/app.js`, "console.log(1)");
  const t = await startTestEngine({ plugins: [], env: { BOREALIS_STATIC_ROOT: root } });
  try {
    const js = await t.request("/assets/app.js");
    assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(await js.text(), "console.log(1)");
    const spa = await t.request("/devices/abc");
    assert.equal(await spa.text(), "<h1>console</h1>");
    const escape = await t.request("/..%2f..%2fetc%2fpasswd");
    assert.equal(await escape.text(), "<h1>console</h1>");
    const api = await t.request("/api/unknown");
    assert.equal(api.status, 404);
    assert.equal((await api.json()).error, "not_found");
  } finally {
    await t.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("http: CORS only for configured origins", async () => {
  const t = await startTestEngine({
    plugins: [],
    env: { BOREALIS_CORS_ALLOWED_ORIGINS: "https://console.example" },
  });
  try {
    const ok = await t.request("/api/openapi.json", {
      headers: { origin: "https://console.example" },
    });
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://console.example");
    const other = await t.request("/api/openapi.json", {
      headers: { origin: "https://evil.example" },
    });
    assert.equal(other.headers.get("access-control-allow-origin"), null);
  } finally {
    await t.close();
  }
});

Deno.test("engine: the embedded database keeps its data across a restart", async () => {
  const db = await createTestDatabase();
  try {
    const first = await startTestEngine({ plugins: [example], db });
    const made = await first.request("/api/example/notes", {
      method: "POST",
      json: { text: "survives" },
    });
    assert.equal(made.status, 201);
    await first.stop();
    const second = await startTestEngine({ plugins: [example], db });
    const list = await (await second.request("/api/example/notes")).json();
    assert.deepEqual(list.items.map((n: { text: string }) => n.text), ["survives"]);
    await second.stop();
  } finally {
    await db.drop();
  }
});

Deno.test("engine: a route declared with zod shows its validation errors per field", async () => {
  const echo = definePlugin({
    name: "echo",
    setup(ctx) {
      ctx.http.openapi(
        createRoute({
          method: "post",
          path: "/api/echo",
          request: {
            body: {
              content: {
                "application/json": { schema: z.object({ a: z.number(), b: z.string().email() }) },
              },
            },
          },
          responses: { 200: { description: "ok" } },
        }),
        (c) => c.json(c.req.valid("json"), 200),
      );
    },
  });
  const t = await startTestEngine({ plugins: [echo] });
  try {
    const res = await t.request("/api/echo", { method: "POST", json: { a: "1", b: "nope" } });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.deepEqual(body.details.map((d: { field: string }) => d.field).sort(), ["a", "b"]);
  } finally {
    await t.close();
  }
});

Deno.test("auth: a guard's 403 to an identified caller is audited; anonymous 401s and passes are not", async () => {
  const guarded = definePlugin({
    name: "guarded",
    setup(ctx) {
      // Callers name themselves in a header: enough to exercise the kernel's guards.
      ctx.auth.install("header", (c) => {
        const who = c.req.header("x-test-user");
        if (!who) return Promise.resolve(null);
        return Promise.resolve({
          kind: "operator",
          id: who,
          name: who,
          role: who === "root" ? "Admin" : "User",
          sites: "all",
        });
      });
      ctx.http.openapi(
        createRoute({
          method: "post",
          path: "/api/guarded",
          middleware: [requireRole("Admin")] as const,
          responses: { 200: { description: "ok" } },
        }),
        (c) => c.json({ ok: true }, 200),
      );
    },
  });
  const t = await startTestEngine({ plugins: [guarded] });
  try {
    const denied = await t.request("/api/guarded", {
      method: "POST",
      headers: { "x-test-user": "alice" },
    });
    assert.equal(denied.status, 403);
    assert.equal((await denied.json()).error, "admin_required");
    assert.equal((await t.request("/api/guarded", { method: "POST" })).status, 401);
    const ok = await t.request("/api/guarded", {
      method: "POST",
      headers: { "x-test-user": "root" },
    });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const rows = await t.engine.sql<
      { actor: string; target: string; details: { reason: string } }[]
    >`select actor_name as actor, target, details from audit_log where action = 'authz.denied'`;
    assert.deepEqual(
      rows.map((r) => [r.actor, r.target, r.details.reason]),
      [["alice", "POST /api/guarded", "admin_required"]],
    );
  } finally {
    await t.close();
  }
});
