/**
 * The optional breached-password check (ASVS 6.2.12). The public Pwned Passwords
 * service is not reachable from CI, so a local HTTP server speaks its range protocol
 * (`GET /range/<5 hex>` → `SUFFIX:COUNT` lines, padded with zero counts); the engine,
 * its HTTP client and the request it sends are real.
 */
import assert from "node:assert/strict";
import aegis from "../plugins/aegis/mod.ts";
import operators from "../plugins/operators/mod.ts";
import { countInRange } from "../plugins/operators/breached.ts";
import { createOperator } from "./helpers/operators.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

const BREACHED = "Tr0ub4dor&3-horse"; // not in the shipped common list, "breached" here
const FRESH = "a quite unusual sentence 7";

async function sha1(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("")
    .toUpperCase();
}

/** A range server that knows one breached hash; records every path it was asked for. */
async function rangeServer() {
  const hash = await sha1(BREACHED);
  const seen: { path: string; padding: string | null }[] = [];
  let down = false;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const url = new URL(req.url);
    seen.push({ path: url.pathname, padding: req.headers.get("add-padding") });
    if (down) return new Response("unavailable", { status: 503 });
    const prefix = url.pathname.split("/").pop() ?? "";
    const lines = [];
    // Padding rows (count 0) like the real service, one of them with the breached suffix
    // under another prefix so a wrong comparison would show.
    for (let i = 0; i < 20; i++) lines.push(`${i.toString(16).padStart(35, "0").toUpperCase()}:0`);
    if (prefix === hash.slice(0, 5)) lines.push(`${hash.slice(5)}:4242`);
    return new Response(lines.join("\r\n"), { headers: { "content-type": "text/plain" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/range/`,
    hash,
    seen,
    setDown: (v: boolean) => (down = v),
    close: () => server.shutdown(),
  };
}

Deno.test("countInRange reads SUFFIX:COUNT lines and ignores padding rows", () => {
  const suffix = "0018A45C4D1DEF81644B54AB7F969B88D65";
  assert.equal(countInRange(`${suffix}:3\r\nABC:1`, suffix), 3);
  assert.equal(countInRange(`${suffix}:0`, suffix), 0);
  assert.equal(countInRange(`${suffix.toLowerCase()}:9`, suffix), 9);
  assert.equal(countInRange("garbage\n:\n", suffix), 0);
});

Deno.test("breached passwords are refused; only a 5-digit prefix leaves the server; an outage accepts", async () => {
  const range = await rangeServer();
  const t = await startTestEngine({
    plugins: [aegis, operators],
    env: { BOREALIS_PASSWORD_BREACH_API: range.url },
  });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const create = (username: string, password: string) =>
      t.request("/api/users", {
        method: "POST",
        headers: admin.headers,
        json: { username, password, role: "User" },
      });

    const refused = await create("carol", BREACHED);
    assert.equal(refused.status, 400);
    assert.equal((await refused.json()).error, "breached_password");
    // Nothing was created.
    const list = await (await t.request("/api/users", { headers: admin.headers })).json();
    assert.ok(!list.users.some((u: { username: string }) => u.username === "carol"));

    // k-anonymity: the service saw the prefix only, with padding asked for.
    assert.deepEqual(range.seen.at(-1), {
      path: `/range/${range.hash.slice(0, 5)}`,
      padding: "true",
    });
    assert.ok(range.seen.every((s) => s.path.length === "/range/".length + 5));

    assert.equal((await create("carol", FRESH)).status, 201);

    // An admin reset to a breached password is refused too and leaves the old one.
    const reset = await t.request("/api/users/carol/reset_password", {
      method: "POST",
      headers: admin.headers,
      json: { password: BREACHED },
    });
    assert.equal(reset.status, 400);
    assert.equal((await reset.json()).error, "breached_password");
    const login = await t.request("/api/auth/login", {
      method: "POST",
      json: { username: "carol", password: FRESH },
    });
    assert.equal(login.status, 200);

    // The service failing does not block a password change; the log says so without the
    // password or its hash.
    range.setDown(true);
    assert.equal((await create("dave", BREACHED)).status, 201);
    await t.stop();
    const text = await Deno.readTextFile(`${t.db.dataDir}/Logs/engine.log`);
    assert.match(text, /breached-password service answered with an error/);
    assert.ok(!text.includes(BREACHED));
    assert.ok(!text.includes(range.hash) && !text.includes(range.hash.slice(5)));
  } finally {
    await t.close();
    await range.close();
  }
});
