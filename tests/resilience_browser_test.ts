/**
 * What a real browser found, checked over HTTP and real WebSockets: the operator socket
 * obeys the cookie Origin rule (cross-site WebSocket hijacking), ending a session closes
 * the sockets it opened on every instance, a single-use ticket opens the socket for
 * bearer clients, passkeys must be usable for sign-in to register, and the small
 * protocol points (405 with Allow, 415 code, CORS headers, security headers).
 */
import assert from "node:assert/strict";
import { announce } from "../core/engine.ts";
import { HTML_CSP } from "../core/http.ts";
import realtime from "../plugins/realtime/mod.ts";
import { SoftAuthenticator } from "../plugins/operators/testing/soft_authenticator.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";
import { until } from "./helpers/engine_process.ts";
import { createOperator, type TestOperator } from "./helpers/operators.ts";
import { serverUrl } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

const plugins = [...identityPlugins, realtime];

interface Sock {
  ws: WebSocket;
  frames: Array<{ type: string; data?: unknown }>;
  closed: Promise<number>;
}

/** Opens `/api/ws` with the given headers; resolves once open, rejects when refused. */
function socket(url: string, headers: Record<string, string> = {}): Promise<Sock> {
  const ws = new (WebSocket as unknown as new (
    u: string,
    o: { headers: Record<string, string> },
  ) => WebSocket)(url, { headers });
  const frames: Sock["frames"] = [];
  ws.onmessage = (e) => void frames.push(JSON.parse(String(e.data)));
  const closed = new Promise<number>((r) => ws.addEventListener("close", (e) => r(e.code)));
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve({ ws, frames, closed });
    ws.onerror = (e) => reject(new Error((e as ErrorEvent).message ?? "refused"));
  });
}

/** The raw answer to an upgrade request (status and error code). */
async function upgradeStatus(url: string, headers: Record<string, string>) {
  const r = await fetch(url, {
    headers: {
      upgrade: "websocket",
      connection: "upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
      ...headers,
    },
  });
  const body = r.status === 101 ? null : await r.json().catch(() => null);
  if (r.status === 101) await r.body?.cancel();
  return { status: r.status, error: body?.error as string | undefined };
}

const cookieOf = (op: TestOperator) => `borealis_session=${op.headers.Authorization!.slice(7)}`;

Deno.test("browser: the operator socket refuses a cookie from another origin, like a cookie write", async () => {
  const h = await startIdentity({ plugins });
  try {
    const { port } = await h.t.engine.listen();
    const ws = `ws://127.0.0.1:${port}/api/ws`;
    const op = await createOperator(h.t, { role: "Admin" });
    const cookie = cookieOf(op);
    // A page on another port of the same host (the hijack the browser found).
    const evil = await upgradeStatus(`http://127.0.0.1:${port}/api/ws`, {
      cookie,
      origin: `http://127.0.0.1:${port + 1}`,
    });
    assert.deepEqual(evil, { status: 403, error: "csrf_origin_mismatch" });
    assert.deepEqual(
      await upgradeStatus(`http://127.0.0.1:${port}/api/ws`, { cookie }),
      { status: 403, error: "csrf_origin_mismatch" },
      "a cookie without an Origin (not a browser) is refused too",
    );
    // The engine's own origin is welcome.
    const own = await socket(ws, { cookie, origin: `http://127.0.0.1:${port}` });
    await until(() => own.frames.some((f) => f.type === "welcome"), 10_000, "welcome");
    own.ws.close();
    // A bearer token is never sent by a browser on its own: no Origin rule.
    const bearer = await socket(ws, { ...op.headers, origin: "https://elsewhere.example" });
    await until(() => bearer.frames.some((f) => f.type === "welcome"), 10_000, "welcome");
    bearer.ws.close();
  } finally {
    await h.close();
  }
});

Deno.test("browser: ending a session closes its sockets — sign-out, revocation, password change, disable; a role change asks to reconnect", async () => {
  const h = await startIdentity({ plugins });
  try {
    const { port } = await h.t.engine.listen();
    const ws = `ws://127.0.0.1:${port}/api/ws`;
    const origin = { origin: `http://127.0.0.1:${port}` };

    // Sign-out: the socket closes with 4401 and no later notification reaches it.
    const alice = await createOperator(h.t, { role: "User" });
    const s1 = await socket(ws, { cookie: cookieOf(alice), ...origin });
    s1.ws.send(JSON.stringify({ type: "subscribe", data: { topics: ["notifications"] } }));
    await until(() => s1.frames.some((f) => f.type === "subscribe_ack"), 10_000, "subscribed");
    const out = await h.t.request("/api/auth/logout", { method: "POST", headers: alice.headers });
    assert.equal(out.status, 204);
    assert.equal(await s1.closed, 4401);
    await h.op("/api/notifications/notify", { json: { title: "after", message: "logout" } });
    assert.ok(!s1.frames.some((f) => f.type === "borealis_notification"));

    // An admin revokes a session.
    const bob = await createOperator(h.t, { role: "User" });
    const s2 = await socket(ws, bob.headers);
    const del = await h.op(`/api/auth/sessions/${bob.sessionId}`, { method: "DELETE" });
    assert.equal(del.status, 204);
    assert.equal(await s2.closed, 4401);

    // A password change ends the user's other sessions, and their sockets.
    const carol = await createOperator(h.t, { role: "User" });
    const svc = h.t.engine.service((await import("../plugins/operators/mod.ts")).operatorsKey);
    const other = await svc.createSession(carol.id, "test");
    const s3 = await socket(ws, { Authorization: `Bearer ${other.token}` });
    const keep = await socket(ws, carol.headers);
    const pw = await h.t.request("/api/auth/password/reset", {
      method: "POST",
      headers: carol.headers,
      json: { current_password: carol.password, new_password: `New-${crypto.randomUUID()}` },
    });
    assert.equal(pw.status, 200);
    assert.equal(await s3.closed, 4401);
    assert.equal(keep.ws.readyState, WebSocket.OPEN, "the session that changed it stays");

    // A role change: the socket is told to reconnect (its events were filtered by role).
    const promoted = await h.op(`/api/users/${carol.username}/role`, { json: { role: "Admin" } });
    assert.equal(promoted.status, 200);
    assert.equal(await keep.closed, 4403);

    // Disabling the account ends everything.
    const dave = await createOperator(h.t, { role: "User" });
    const s4 = await socket(ws, dave.headers);
    const dis = await h.op(`/api/users/${dave.username}/disable`, { json: { disabled: true } });
    assert.equal(dis.status, 200);
    assert.equal(await s4.closed, 4401);

    // A session that times out is caught by the periodic check.
    const erin = await createOperator(h.t, { role: "User" });
    const s5 = await socket(ws, erin.headers);
    await h.t.clock.advance(31 * 60_000); // past the 30-minute idle timeout
    await h.t.engine.tasks.runNow("realtime.verify_operator_sockets");
    assert.equal(await s5.closed, 4401);
  } finally {
    await h.close();
  }
});

Deno.test({
  name: "browser: signing out on one instance closes the session's socket on another",
  ignore: !serverUrl,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const h = await startIdentity({ plugins });
    const b = await startTestEngine({ plugins, db: h.t.db, clock: h.t.clock });
    try {
      const { port: portB } = await b.engine.listen();
      const op = await createOperator(h.t, { role: "User" });
      const s = await socket(`ws://127.0.0.1:${portB}/api/ws`, op.headers);
      await until(() => s.frames.some((f) => f.type === "welcome"), 10_000, "welcome");
      const out = await h.t.request("/api/auth/logout", { method: "POST", headers: op.headers });
      assert.equal(out.status, 204);
      assert.equal(await s.closed, 4401);
    } finally {
      await b.stop();
      await h.close();
    }
  },
});

Deno.test("browser: a bearer client on another origin opens the socket with a single-use, 30-second ticket", async () => {
  const h = await startIdentity({ plugins });
  try {
    const { port } = await h.t.engine.listen();
    const base = `ws://127.0.0.1:${port}/api/ws`;
    const op = await createOperator(h.t, { role: "User" });
    const ticket = async () => {
      const r = await h.t.request("/api/ws-ticket", { method: "POST", headers: op.headers });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("cache-control"), "no-store");
      return await r.json() as { ticket: string; expires_in: number; url: string };
    };
    const t1 = await ticket();
    assert.equal(t1.expires_in, 30);
    assert.equal(t1.url, `/api/ws?ticket=${t1.ticket}`);
    // No cookie, no header: a browser page on another origin.
    const s = await socket(`${base}?ticket=${t1.ticket}`, { origin: "https://console.example" });
    await until(() => s.frames.some((f) => f.type === "welcome"), 10_000, "welcome");
    assert.deepEqual(
      await upgradeStatus(`http://127.0.0.1:${port}/api/ws?ticket=${t1.ticket}`, {}),
      { status: 401, error: "invalid_ticket" },
      "used once",
    );
    const t2 = await ticket();
    await h.t.clock.advance(31_000);
    assert.equal(
      (await upgradeStatus(`http://127.0.0.1:${port}/api/ws?ticket=${t2.ticket}`, {})).status,
      401,
      "expired",
    );
    assert.equal((await upgradeStatus(`http://127.0.0.1:${port}/api/ws?ticket=x`, {})).status, 401);
    // The ticket's socket belongs to the session: signing out closes it, and a ticket
    // issued before the sign-out no longer opens anything.
    const t3 = await ticket();
    await h.t.request("/api/auth/logout", { method: "POST", headers: op.headers });
    assert.equal(await s.closed, 4401);
    assert.equal(
      (await upgradeStatus(`http://127.0.0.1:${port}/api/ws?ticket=${t3.ticket}`, {})).status,
      401,
    );
    assert.equal((await h.t.request("/api/ws-ticket", { method: "POST" })).status, 401);
  } finally {
    await h.close();
  }
});

Deno.test("browser: passkey registration requires what sign-in requires (user verification, a discoverable key)", async () => {
  const origin = "https://rmm.example.test";
  const t = await startTestEngine({
    plugins: identityPlugins,
    env: { BOREALIS_PUBLIC_BASE_URL: origin },
  });
  try {
    const op = await createOperator(t, { role: "User" });
    const register = async (auth: SoftAuthenticator) => {
      const o = await t.request("/api/auth/passkeys/register/options", {
        method: "POST",
        headers: op.headers,
        json: { current_password: op.password },
      });
      const options = await o.json();
      assert.equal(options.authenticatorSelection.residentKey, "required");
      assert.equal(options.authenticatorSelection.userVerification, "required");
      assert.equal(options.extensions.credProps, true);
      const r = await t.request("/api/auth/passkeys/register/verify", {
        method: "POST",
        headers: op.headers,
        json: { response: await auth.create(options) },
      });
      return { status: r.status, body: await r.json() };
    };
    const noPin = new SoftAuthenticator(origin);
    noPin.userVerified = false;
    const refused = await register(noPin);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, "passkey_not_usable");
    const noStorage = new SoftAuthenticator(origin);
    noStorage.residentKeys = false;
    assert.equal((await register(noStorage)).body.error, "passkey_not_usable");
    const good = new SoftAuthenticator(origin);
    assert.equal((await register(good)).status, 201);
    // And what registered can sign in (token only because this client asks for it).
    const o = await (await t.request("/api/auth/passkeys/authenticate/options", {
      method: "POST",
      json: {},
    })).json();
    const signIn = await t.request("/api/auth/passkeys/authenticate/verify", {
      method: "POST",
      json: { response: await good.get(o), bearer: true },
    });
    const body = await signIn.json();
    assert.equal(signIn.status, 200, JSON.stringify(body));
    assert.match(body.token, /^bos_/);
  } finally {
    await t.close();
  }
});

Deno.test("browser: 405 with Allow, 415 unsupported_media_type, CORS headers, security headers, the announced URL", async () => {
  const t = await startTestEngine({
    plugins: identityPlugins,
    env: { BOREALIS_CORS_ALLOWED_ORIGINS: "https://console.example" },
  });
  const root = await Deno.makeTempDir({ prefix: "borealis-static-" });
  try {
    const op = await createOperator(t, { role: "Admin" });
    const wrong = await t.request("/api/sites", { method: "PUT", headers: op.headers });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET, HEAD, POST");
    assert.equal((await wrong.json()).error, "method_not_allowed");
    const wrongId = await t.request("/api/sites/12/auto-approval", { headers: op.headers });
    assert.equal(wrongId.status, 405, "a path with a parameter");
    assert.equal(wrongId.headers.get("allow"), "POST");
    await wrongId.body?.cancel();
    const none = await t.request("/api/no-such-thing", { method: "PUT" });
    assert.equal(none.status, 404);
    await none.body?.cancel();

    const text = await t.request("/api/sites", {
      method: "POST",
      headers: { ...op.headers, "content-type": "text/plain" },
      body: "name=x",
    });
    const textBody = await text.json();
    assert.equal(text.status, 415, JSON.stringify(textBody));
    assert.equal(textBody.error, "unsupported_media_type");

    const preflight = await t.request("/api/sites", {
      method: "OPTIONS",
      headers: {
        origin: "https://console.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
      },
    });
    const allowed = preflight.headers.get("access-control-allow-headers") ?? "";
    assert.match(allowed, /Authorization/i);
    assert.doesNotMatch(allowed, /csrf/i);
    await preflight.body?.cancel();

    for (const r of [await t.request("/api/sites", { headers: op.headers }), wrong]) {
      assert.equal(r.headers.get("x-content-type-options"), "nosniff");
      assert.equal(r.headers.get("x-frame-options"), "DENY");
      assert.equal(r.headers.get("referrer-policy"), "no-referrer");
      assert.match(r.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
      assert.match(r.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
      if (!r.bodyUsed) await r.body?.cancel();
    }

    assert.equal(
      announce("127.0.0.1", 5000),
      "listening on http://localhost:5000 (bound to 127.0.0.1)",
    );
    assert.match(announce("0.0.0.0", 5000), /set BOREALIS_PUBLIC_BASE_URL/);
    assert.match(announce("0.0.0.0", 5000, "https://rmm.example.com"), /reachable at https:/);
  } finally {
    await t.close();
  }
  // HTML pages get the strict policy.
  await Deno.writeTextFile(`${root}/index.html`, "<!doctype html><title>x</title>");
  const s = await startTestEngine({ plugins: [], env: { BOREALIS_STATIC_ROOT: root } });
  try {
    const page = await s.request("/devices/42");
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-security-policy"), HTML_CSP);
    assert.equal(page.headers.get("x-frame-options"), "DENY");
    // Not no-referrer: a browser would then send Origin: null with the page's own form POSTs.
    assert.equal(page.headers.get("referrer-policy"), "same-origin");
    await page.body?.cancel();
  } finally {
    await s.close();
    await Deno.remove(root, { recursive: true });
  }
});
