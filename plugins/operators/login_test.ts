import assert from "node:assert/strict";
import { createOperator } from "../../tests/helpers/operators.ts";
import { startTestEngine, type TestEngine } from "../../tests/helpers/test_engine.ts";
import aegis from "../aegis/mod.ts";
import operators from "./mod.ts";
import { codeAt } from "./totp.ts";

const plugins = [aegis, operators];

async function login(t: TestEngine, username: string, password: string, ip?: string) {
  const res = await t.request("/api/auth/login", {
    method: "POST",
    json: { username, password, bearer: true },
    ip,
  });
  return { res, body: await res.json() };
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

async function newUser(t: TestEngine, admin: { headers: Record<string, string> }, extra = {}) {
  const username = `u${crypto.randomUUID().slice(0, 8)}`;
  const password = `Long-pass-${crypto.randomUUID()}`;
  const res = await t.request("/api/users", {
    method: "POST",
    headers: admin.headers,
    json: { username, password, role: "User", ...extra },
  });
  assert.equal(res.status, 201, await res.clone().text());
  return { username, password };
}

Deno.test("login: password sign-in sets a hardened cookie; cookie writes need a matching Origin", async () => {
  const t = await startTestEngine({ plugins });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const u = await newUser(t, admin, { mfa_exempt: true });
    const { res, body } = await login(t, u.username.toUpperCase(), u.password);
    assert.equal(res.status, 200);
    assert.equal(body.status, "ok");
    assert.equal(body.username, u.username);
    const cookie = res.headers.get("set-cookie")!;
    assert.match(cookie, /^borealis_session=bos_[A-Za-z0-9_-]{43};/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.match(cookie, /Secure/);
    const value = cookie.split(";")[0]!;
    // Cookie works for reads and as Bearer.
    assert.equal((await t.request("/api/auth/me", { headers: { cookie: value } })).status, 200);
    assert.equal((await t.request("/api/auth/me", { headers: bearer(body.token) })).status, 200);
    // A cookie-authenticated write without a matching Origin is refused (CSRF).
    const tokenBody = { name: "ci" };
    let r = await t.request("/api/auth/tokens", {
      method: "POST",
      headers: { cookie: value },
      json: tokenBody,
    });
    assert.equal(r.status, 403);
    assert.equal((await r.json()).error, "csrf_origin_mismatch");
    r = await t.request("/api/auth/tokens", {
      method: "POST",
      headers: { cookie: value, origin: "https://evil.example" },
      json: tokenBody,
    });
    assert.equal(r.status, 403);
    r = await t.request("/api/auth/tokens", {
      method: "POST",
      headers: { cookie: value, origin: "http://127.0.0.1" },
      json: tokenBody,
    });
    assert.equal(r.status, 201);
    // Logout revokes the session.
    r = await t.request("/api/auth/logout", { method: "POST", headers: bearer(body.token) });
    assert.equal(r.status, 204);
    assert.match(r.headers.get("set-cookie")!, /Max-Age=0/);
    assert.equal((await t.request("/api/auth/me", { headers: bearer(body.token) })).status, 401);
  } finally {
    await t.close();
  }
});

Deno.test("login: BOREALIS_COOKIE_SECURE=false drops Secure from the cookie; debug logging does not", async () => {
  const t = await startTestEngine({ plugins, env: { BOREALIS_COOKIE_SECURE: "false" } });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const u = await newUser(t, admin, { mfa_exempt: true });
    const { res } = await login(t, u.username, u.password);
    assert.doesNotMatch(res.headers.get("set-cookie")!, /Secure/);
  } finally {
    await t.close();
  }
  const d = await startTestEngine({ plugins, env: { BOREALIS_DEBUG: "true" } });
  try {
    const admin = await createOperator(d, { role: "Admin" });
    const u = await newUser(d, admin, { mfa_exempt: true });
    const { res } = await login(d, u.username, u.password);
    assert.match(res.headers.get("set-cookie")!, /Secure/);
  } finally {
    await d.close();
  }
});

Deno.test("login: the session value is in the body only for bearer clients; a Secure cookie that a plain-HTTP LAN name would drop is announced", async () => {
  const t = await startTestEngine({ plugins });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const u = await newUser(t, admin, { mfa_exempt: true });
    const browser = await t.request("/api/auth/login", {
      method: "POST",
      json: { username: u.username, password: u.password },
    });
    const body = await browser.json();
    assert.equal(body.status, "ok");
    assert.equal(body.token, undefined, "a cookie client does not get the session value");
    assert.equal(body.warning, undefined, "http://127.0.0.1 keeps Secure cookies");
    const lan = await t.request("/api/auth/login", {
      method: "POST",
      headers: { host: "rmm-box:5000" },
      json: { username: u.username, password: u.password },
    });
    const lanBody = await lan.json();
    assert.equal(lanBody.warning.code, "cookie_not_stored");
    assert.match(lanBody.warning.message, /BOREALIS_COOKIE_SECURE/);
    const log = await Deno.readTextFile(`${t.db.dataDir}/Logs/engine.log`);
    assert.match(log, /plain HTTP at rmm-box:5000 drops the Secure session cookie/);
    // Behind TLS (a proxy saying so) there is nothing to warn about.
    const proxied = await t.request("/api/auth/login", {
      method: "POST",
      headers: { host: "rmm.example.com", "x-forwarded-proto": "https" },
      json: { username: u.username, password: u.password },
    });
    assert.equal((await proxied.json()).warning, undefined);
  } finally {
    await t.close();
  }
});

Deno.test("login: TOTP setup then verify; a replayed code is refused; seeds sealed", async () => {
  const t = await startTestEngine({ plugins });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const u = await newUser(t, admin);
    let { res, body } = await login(t, u.username, u.password);
    assert.equal(res.status, 200);
    assert.equal(body.status, "mfa_required");
    assert.equal(body.stage, "setup");
    assert.match(body.otpauth_url, /^otpauth:\/\/totp\//);
    const secret: string = body.secret;
    // A wrong code first.
    let v = await t.request("/api/auth/mfa/verify", {
      method: "POST",
      json: {
        pending_token: body.pending_token,
        code: "000000" === codeAt(secret, t.clock.now()) ? "111111" : "000000",
      },
    });
    assert.equal(v.status, 401);
    assert.equal((await v.json()).error, "invalid_code");
    const code = codeAt(secret, t.clock.now());
    v = await t.request("/api/auth/mfa/verify", {
      method: "POST",
      json: { pending_token: body.pending_token, code },
    });
    assert.equal(v.status, 200);
    const ok = await v.json();
    assert.equal(ok.status, "ok");
    assert.ok(v.headers.get("set-cookie")?.startsWith("borealis_session="));

    // The seed is stored sealed, never in clear.
    const [row] = await t.engine
      .sql`select mfa_secret, mfa_enabled from users where lower(username) = lower(${u.username})`;
    assert.equal(row!.mfa_enabled, true);
    assert.match(String(row!.mfa_secret), /^aegis:v1:/);
    assert.ok(!String(row!.mfa_secret).includes(secret));

    // Next sign-in: verify stage; the same code again is refused (single use).
    ({ res, body } = await login(t, u.username, u.password));
    assert.equal(body.stage, "verify");
    assert.equal(body.secret, undefined);
    v = await t.request("/api/auth/mfa/verify", {
      method: "POST",
      json: { pending_token: body.pending_token, code },
    });
    assert.equal(v.status, 401);
    assert.equal((await v.json()).error, "invalid_code");
    // A new time step gives a fresh code that works.
    await t.clock.advance(30_000);
    v = await t.request("/api/auth/mfa/verify", {
      method: "POST",
      json: { pending_token: body.pending_token, code: codeAt(secret, t.clock.now()) },
    });
    assert.equal(v.status, 200);

    // Pending state lasts 5 minutes.
    ({ body } = await login(t, u.username, u.password));
    await t.clock.advance(301_000);
    v = await t.request("/api/auth/mfa/verify", {
      method: "POST",
      json: { pending_token: body.pending_token, code: codeAt(secret, t.clock.now()) },
    });
    assert.equal(v.status, 401);
    assert.equal((await v.json()).error, "expired");
    // Garbage pending tokens and codes are 4xx, not 500.
    for (
      const bad of [{}, { pending_token: "x", code: "12345" }, {
        pending_token: "x",
        code: "123456",
      }]
    ) {
      const r = await t.request("/api/auth/mfa/verify", { method: "POST", json: bad });
      assert.ok(r.status === 400 || r.status === 401, JSON.stringify(bad));
    }
  } finally {
    await t.close();
  }
});

Deno.test("login: unknown user and wrong password look the same; lockout with growing delays", async () => {
  const t = await startTestEngine({ plugins });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const u = await newUser(t, admin, { mfa_exempt: true });
    const a = await login(t, u.username, "wrong-password-1", "10.0.0.1");
    const b = await login(t, "nobody-here", "wrong-password-1", "10.0.0.2");
    assert.equal(a.res.status, 401);
    assert.equal(b.res.status, 401);
    assert.deepEqual(a.body, b.body);
    assert.deepEqual(a.body, {
      error: "invalid_credentials",
      message: "invalid username or password",
    });

    // Two more failures (3 in all) are free; the 4th must wait a second.
    await login(t, u.username, "wrong-password-2", "10.0.0.1");
    await login(t, u.username, "wrong-password-3", "10.0.0.1");
    let r = await login(t, u.username, u.password, "10.0.0.3");
    assert.equal(r.res.status, 429);
    assert.equal(r.res.headers.get("retry-after"), "1");
    await t.clock.advance(1000);
    // Keep failing (waiting out each growing delay) until the lockout at 10 failures.
    for (let i = 4; i <= 10; i++) {
      r = await login(t, u.username, `wrong-${i}`, "10.0.0.1");
      assert.equal(r.res.status, 401, `attempt ${i}`);
      await t.clock.advance(61_000);
    }
    r = await login(t, u.username, u.password, "10.0.0.4");
    assert.equal(r.res.status, 429, "locked even with the right password");
    // An unknown name is throttled the same way.
    for (let i = 1; i <= 10; i++) {
      await login(t, "ghost-user", `wrong-${i}`, "10.0.0.5");
      await t.clock.advance(61_000);
    }
    assert.equal((await login(t, "ghost-user", "x-wrong", "10.0.0.6")).res.status, 429);
    await t.clock.advance(900_000);
    r = await login(t, u.username, u.password, "10.0.0.4");
    assert.equal(r.res.status, 200);

    // Every attempt is audited.
    const [n] = await t.engine
      .sql`select count(*)::int as n from audit_log where action = 'auth.login'`;
    assert.ok(n!.n >= 25);
    const [ok] = await t.engine.sql`select count(*)::int as n from audit_log
      where action = 'auth.login' and outcome = 'success'`;
    assert.equal(ok!.n, 1);
  } finally {
    await t.close();
  }
});

Deno.test("sessions: idle and absolute expiry; password change revokes other sessions", async () => {
  const t = await startTestEngine({ plugins });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const u = await newUser(t, admin, { mfa_exempt: true });
    const s1 = (await login(t, u.username, u.password)).body.token;
    // Idle: 30 minutes without use ends the session.
    await t.clock.advance(1801_000);
    assert.equal((await t.request("/api/auth/me", { headers: bearer(s1) })).status, 401);

    // Absolute: used every 20 minutes, it still ends after 12 hours.
    const s2 = (await login(t, u.username, u.password)).body.token;
    for (let i = 0; i < 35; i++) {
      await t.clock.advance(20 * 60_000);
      assert.equal(
        (await t.request("/api/auth/me", { headers: bearer(s2) })).status,
        200,
        `at ${i}`,
      );
    }
    await t.clock.advance(20 * 60_000);
    assert.equal((await t.request("/api/auth/me", { headers: bearer(s2) })).status, 401);

    // Two sessions; a password change from one ends the other.
    const a = (await login(t, u.username, u.password)).body.token;
    const b = (await login(t, u.username, u.password)).body.token;
    const list = await (await t.request("/api/auth/sessions", { headers: bearer(a) })).json();
    assert.equal(list.sessions.length, 2);
    assert.equal(list.sessions.filter((s: { current: boolean }) => s.current).length, 1);
    const newPassword = `Another-long-${crypto.randomUUID()}`;
    const weak = await t.request("/api/auth/password/reset", {
      method: "POST",
      headers: bearer(a),
      json: { current_password: u.password, new_password: "password123" },
    });
    assert.equal(weak.status, 400);
    assert.equal((await weak.json()).error, "weak_password");
    const r = await t.request("/api/auth/password/reset", {
      method: "POST",
      headers: bearer(a),
      json: { current_password: u.password, new_password: newPassword },
    });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).revoked_sessions, 1);
    assert.equal((await t.request("/api/auth/me", { headers: bearer(a) })).status, 200);
    assert.equal((await t.request("/api/auth/me", { headers: bearer(b) })).status, 401);
    assert.equal((await login(t, u.username, u.password)).res.status, 401);
    assert.equal((await login(t, u.username, newPassword)).res.status, 200);

    // An admin revokes anyone's session; a user only their own.
    const c1 = (await login(t, u.username, newPassword)).body.token;
    const sessions = await (await t.request("/api/auth/sessions", { headers: bearer(c1) })).json();
    const other = await createOperator(t, { role: "User" });
    const admin2 = await createOperator(t, { role: "Admin" }); // the first one's session expired
    const id = sessions.sessions.find((s: { current: boolean }) => s.current).id;
    assert.equal(
      (await t.request(`/api/auth/sessions/${id}`, { method: "DELETE", headers: other.headers }))
        .status,
      404,
    );
    assert.equal(
      (await t.request(`/api/auth/sessions/${id}`, { method: "DELETE", headers: admin2.headers }))
        .status,
      204,
    );
    assert.equal((await t.request("/api/auth/me", { headers: bearer(c1) })).status, 401);
  } finally {
    await t.close();
  }
});

Deno.test("API tokens: shown once, work as Bearer, read-only enforced, revocable, audited", async () => {
  const t = await startTestEngine({ plugins });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    let r = await t.request("/api/auth/tokens", {
      method: "POST",
      headers: admin.headers,
      json: { name: "reporting", read_only: true, expires_in_days: 1 },
    });
    assert.equal(r.status, 201);
    const created = await r.json();
    assert.match(created.token, /^boat_/);
    const [row] = await t.engine.sql`select token_hash from api_tokens where id = ${created.id}`;
    assert.notEqual(row!.token_hash, created.token);
    // Works for reads, refused for writes.
    r = await t.request("/api/users", { headers: bearer(created.token) });
    assert.equal(r.status, 200);
    r = await t.request("/api/users", {
      method: "POST",
      headers: bearer(created.token),
      json: { username: "x1", password: "a-long-password-1" },
    });
    assert.equal(r.status, 403);
    assert.equal((await r.json()).error, "read_only_token");
    // Tokens cannot mint tokens or hold Dev Mode.
    r = await t.request("/api/auth/tokens", {
      method: "POST",
      headers: bearer(created.token),
      json: { name: "x" },
    });
    assert.equal(r.status, 403);
    const list = await (await t.request("/api/auth/tokens", { headers: admin.headers })).json();
    assert.equal(list.tokens.length, 1);
    assert.equal(list.tokens[0].token, undefined);
    // Expiry.
    await t.clock.advance(86_400_000 + 1000);
    assert.equal((await t.request("/api/users", { headers: bearer(created.token) })).status, 401);
    // Revocation.
    const admin2 = await createOperator(t, { role: "Admin" });
    const fresh = await (await t.request("/api/auth/tokens", {
      method: "POST",
      headers: admin2.headers,
      json: { name: "ci" },
    })).json();
    assert.equal((await t.request("/api/auth/me", { headers: bearer(fresh.token) })).status, 200);
    r = await t.request(`/api/auth/tokens/${fresh.id}`, {
      method: "DELETE",
      headers: admin2.headers,
    });
    assert.equal(r.status, 204);
    assert.equal((await t.request("/api/auth/me", { headers: bearer(fresh.token) })).status, 401);
    const audit =
      await (await t.request("/api/audit?action=api_token.*", { headers: admin2.headers })).json();
    assert.deepEqual(audit.entries.map((e: { action: string }) => e.action), [
      "api_token.revoke",
      "api_token.create",
      "api_token.create",
    ]);
  } finally {
    await t.close();
  }
});

Deno.test("passwords: raising the scrypt cost rehashes at the next login", async () => {
  const t1 = await startTestEngine({ plugins, env: { BOREALIS_PASSWORD_SCRYPT_LN: "14" } });
  const db = t1.db;
  try {
    const op = await createOperator(t1, { role: "User", username: "rehash-me" });
    const hashOf = async (t: TestEngine) =>
      String(
        (await t.engine.sql`select password_hash from users where username = 'rehash-me'`)[0]!
          .password_hash,
      );
    assert.match(await hashOf(t1), /^\$scrypt\$ln=14,r=8,p=1\$/);
    await t1.stop();
    const t2 = await startTestEngine({ plugins, db, clock: t1.clock });
    try {
      assert.equal((await login(t2, "rehash-me", op.password)).res.status, 200);
      assert.match(await hashOf(t2), /^\$scrypt\$ln=15,r=8,p=1\$/);
      assert.equal((await login(t2, "rehash-me", op.password)).res.status, 200);
    } finally {
      await t2.stop();
    }
  } finally {
    await db.drop();
  }
});

Deno.test("login: an unknown username costs about as much time as a wrong password", async () => {
  const t = await startTestEngine({ plugins });
  try {
    const names: string[] = [];
    for (let i = 0; i < 4; i++) names.push((await createOperator(t, { role: "User" })).username);
    const time = async (username: string) => {
      const t0 = performance.now();
      await login(t, username, "definitely-wrong");
      return performance.now() - t0;
    };
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 4; i++) {
      known.push(await time(names[i]!));
      unknown.push(await time(`nobody-${i}`));
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const ratio = median(unknown) / median(known);
    // Both pay one scrypt run; a missing one would make unknown names ~100× faster.
    assert.ok(ratio > 0.4 && ratio < 2.5, `timing ratio ${ratio.toFixed(2)}`);
  } finally {
    await t.close();
  }
});

Deno.test("re-authentication: wrong current passwords on a password or MFA change are throttled", async () => {
  const t = await startTestEngine({ plugins });
  try {
    const op = await createOperator(t, { role: "User" });
    const change = (current_password: string) =>
      t.request("/api/auth/password/reset", {
        method: "POST",
        headers: op.headers,
        json: { current_password, new_password: "a fresh long password" },
      });
    for (let i = 0; i < 3; i++) assert.equal((await change(`wrong-${i}`)).status, 403);
    // The fourth try must wait, even with the right password, and so must a sign-in.
    let r = await change(op.password);
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get("retry-after")) >= 1);
    r = await t.request("/api/auth/mfa/reset", {
      method: "POST",
      headers: op.headers,
      json: { current_password: op.password },
    });
    assert.equal(r.status, 429);
    assert.equal((await login(t, op.username, op.password)).res.status, 429);
    await t.clock.advance(1000);
    assert.equal((await change(op.password)).status, 200);
  } finally {
    await t.close();
  }
});

Deno.test("passwords: the shipped common-password list covers at least the top 3000 (ASVS 6.2.4)", async () => {
  const { passwordProblem } = await import("./passwords.ts");
  const text = await Deno.readTextFile(new URL("./common_passwords.txt", import.meta.url));
  const entries = text.split("\n").filter((l) => l.trim() && !l.startsWith("#"));
  assert.ok(entries.length >= 3000, `${entries.length} entries`);
  for (const p of ["password", "12345678", "iloveyou1", "Qwertyuiop", "baseball1", "sunshine"]) {
    assert.equal((await passwordProblem(p))?.code, "weak_password", p);
  }
  assert.equal(await passwordProblem("correct horse battery staple"), null);
});

Deno.test("login: one address guessing many usernames meets growing delays, then a lockout", async () => {
  const t = await startTestEngine({
    plugins,
    env: { BOREALIS_LOGIN_IP_MAX_FAILURES: "20", BOREALIS_PASSWORD_SCRYPT_LN: "14" },
  });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const u = await newUser(t, admin, { mfa_exempt: true });
    const ip = "198.51.100.7";
    // Four failures (a fifth of the 20-failure limit) are free, each on a new name.
    for (let i = 0; i < 4; i++) {
      assert.equal((await login(t, `spray-${i}`, "Winter2025!", ip)).res.status, 401, `#${i}`);
    }
    let r = await login(t, "spray-4", "Winter2025!", ip);
    assert.equal(r.res.status, 429);
    assert.equal(r.res.headers.get("retry-after"), "1");
    // The real user from another address is not affected.
    assert.equal((await login(t, u.username, u.password, "198.51.100.8")).res.status, 200);
    // Waiting out each delay, the address reaches the lockout at 20 failures.
    for (let i = 4; i < 20; i++) {
      await t.clock.advance(61_000);
      assert.equal((await login(t, `spray-${i}`, "Winter2025!", ip)).res.status, 401, `#${i}`);
    }
    await t.clock.advance(61_000);
    r = await login(t, u.username, u.password, ip);
    assert.equal(r.res.status, 429, "locked even with a right password");
    assert.ok(Number(r.res.headers.get("retry-after")) > 700);
    await t.clock.advance(900_000);
    assert.equal((await login(t, u.username, u.password, ip)).res.status, 200);
  } finally {
    await t.close();
  }
});

Deno.test("login: a parallel burst of guesses for one name cannot outrun the throttle", async () => {
  const t = await startTestEngine({ plugins, env: { BOREALIS_PASSWORD_SCRYPT_LN: "14" } });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const u = await newUser(t, admin, { mfa_exempt: true });
    const burst = await Promise.all(
      Array.from({ length: 12 }, (_, i) => login(t, u.username, `guess-${i}`, `192.0.2.${i + 1}`)),
    );
    const statuses = burst.map((b) => b.res.status).sort();
    // Only the three free failures were checked against the hash; the rest had to wait.
    assert.deepEqual(statuses.filter((s) => s === 401).length, 3, statuses.join(","));
    assert.deepEqual(statuses.filter((s) => s === 429).length, 9, statuses.join(","));
  } finally {
    await t.close();
  }
});
