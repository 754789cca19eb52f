import assert from "node:assert/strict";
import aegis from "../plugins/aegis/mod.ts";
import operators from "../plugins/operators/mod.ts";
import { createOperator } from "./helpers/operators.ts";
import { createTestDatabase, serverUrl } from "./helpers/test_db.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

Deno.test("createOperator: real sessions with role, sites and Dev Mode", async () => {
  const t = await startTestEngine({ plugins: [aegis, operators] });
  try {
    const admin = await createOperator(t, { role: "Admin", devMode: true });
    const user = await createOperator(t, { role: "User", sites: [3, 1] });
    const me = await (await t.request("/api/auth/me", { headers: admin.headers })).json();
    assert.equal(me.username, admin.username);
    assert.equal(me.role, "Admin");
    assert.equal(me.dev_mode, true);
    assert.equal(me.site_ids, null);
    const me2 = await (await t.request("/api/auth/me", { headers: user.headers })).json();
    assert.equal(me2.role, "User");
    assert.deepEqual(me2.site_ids, [1, 3]);
    assert.equal(me2.dev_mode, false);
    assert.equal((await t.request("/api/auth/me")).status, 401);
    const bad = await t.request("/api/auth/me", { headers: { Authorization: "Bearer bos_nope" } });
    assert.equal(bad.status, 401);
  } finally {
    await t.close();
  }
});

Deno.test({
  name: "sessions: a revocation on one instance is honoured at once by another",
  ignore: !serverUrl, // two engines on one database need a PostgreSQL server
  async fn() {
    const a = await startTestEngine({ plugins: [aegis, operators] });
    const b = await startTestEngine({ plugins: [aegis, operators], db: a.db, clock: a.clock });
    try {
      const op = await createOperator(a, { role: "User" });
      assert.equal((await b.request("/api/auth/me", { headers: op.headers })).status, 200);
      const r = await a.request(`/api/auth/sessions/${op.sessionId}`, {
        method: "DELETE",
        headers: op.headers,
      });
      assert.equal(r.status, 204);
      // B cached the principal; the change event over LISTEN/NOTIFY clears it.
      let status = 200;
      for (let i = 0; i < 100 && status === 200; i++) {
        await new Promise((res) => setTimeout(res, 20));
        status = (await b.request("/api/auth/me", { headers: op.headers })).status;
      }
      assert.equal(status, 401);
    } finally {
      await b.stop();
      await a.close();
    }
  },
});

Deno.test("CLI: users create-admin reads the password from stdin", async () => {
  const db = await createTestDatabase();
  try {
    const cmd = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "users", "create-admin", "--username", "first-admin"],
      cwd: new URL("..", import.meta.url).pathname,
      env: { ...db.env, BOREALIS_PLUGINS: "aegis,operators" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = cmd.stdin.getWriter();
    await w.write(new TextEncoder().encode("a long admin password\n"));
    await w.close();
    const out = await cmd.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /created admin first-admin/);
    assert.ok(!text.includes("a long admin password"));
    const t = await startTestEngine({ plugins: [aegis, operators], db });
    try {
      const r = await t.request("/api/auth/login", {
        method: "POST",
        json: { username: "first-admin", password: "a long admin password" },
      });
      const body = await r.json();
      assert.equal(body.status, "mfa_required");
      assert.equal(
        (await (await t.request("/api/bootstrap/state")).json()).phase,
        "login_required",
      );
    } finally {
      await t.stop();
    }
  } finally {
    await db.drop();
  }
});
