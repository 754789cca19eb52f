/**
 * The RBAC matrix: every route of the aegis and operators plugins (read from the
 * OpenAPI document, so a new route without an expectation fails this test) × anonymous,
 * User, Admin, and Admin with Dev Mode. Below the route's level the answer is a guard
 * denial (401 anonymous, 403 otherwise); at or above it, never a guard denial; never 500.
 */
import assert from "node:assert/strict";
import aegis from "../plugins/aegis/mod.ts";
import operators, { operatorsKey } from "../plugins/operators/mod.ts";
import { startTestEngine } from "./helpers/test_engine.ts";

type Level = "none" | "user" | "admin" | "dev";
const RANK: Record<Level, number> = { none: 0, user: 1, admin: 2, dev: 3 };

/** Minimum level per route ("METHOD path" as in the OpenAPI document). */
const EXPECTED: Record<string, Level> = {
  "GET /api/bootstrap/state": "none",
  "POST /api/bootstrap/aegis/setup": "none",
  "POST /api/bootstrap/aegis/unlock": "none",
  "POST /api/bootstrap/admin/setup": "none",
  "POST /api/auth/login": "none",
  "POST /api/auth/mfa/verify": "none",
  "POST /api/auth/logout": "user",
  "GET /api/auth/me": "user",
  "GET /api/auth/sessions": "user",
  "DELETE /api/auth/sessions/{id}": "user",
  "POST /api/auth/password/reset": "user",
  "POST /api/auth/mfa/reset": "user",
  "GET /api/auth/email": "user",
  "PUT /api/auth/email": "user",
  "POST /api/auth/passkeys/register/options": "user",
  "POST /api/auth/passkeys/register/verify": "user",
  "POST /api/auth/passkeys/authenticate/options": "none",
  "POST /api/auth/passkeys/authenticate/verify": "none",
  "GET /api/auth/passkeys": "user",
  "PATCH /api/auth/passkeys/{id}": "user",
  "DELETE /api/auth/passkeys/{id}": "user",
  "GET /api/users": "admin",
  "POST /api/users": "admin",
  "DELETE /api/users/{username}": "admin",
  "POST /api/users/{username}/reset_password": "admin",
  "POST /api/users/{username}/role": "admin",
  "POST /api/users/{username}/mfa": "admin",
  "POST /api/users/{username}/disable": "admin",
  "POST /api/user_site_assignments/selection": "admin",
  "POST /api/user_site_assignments/assign": "admin",
  "POST /api/auth/tokens": "user",
  "GET /api/auth/tokens": "user",
  "DELETE /api/auth/tokens/{id}": "user",
  "POST /api/dev-mode": "admin",
  "GET /api/dev-mode": "user",
  "GET /api/audit": "admin",
  "GET /api/aegis/status": "admin",
  "POST /api/aegis/rotate": "dev",
  "POST /api/aegis/force_reset": "dev",
  "GET /api/credentials": "user",
  "GET /api/credentials/{id}": "user",
  "POST /api/credentials": "admin",
  "PUT /api/credentials/{id}": "admin",
  "DELETE /api/credentials/{id}": "admin",
};

/** Bodies that pass validation but touch nothing that matters. */
const BODIES: Record<string, unknown> = {
  "POST /api/auth/password/reset": { current_password: "wrong-password", new_password: "x" },
  "POST /api/auth/mfa/reset": { current_password: "wrong-password" },
  "PUT /api/auth/email": { email: null, current_password: "wrong-password" },
  "PATCH /api/auth/passkeys/{id}": { label: "x" },
  "POST /api/auth/passkeys/register/options": { current_password: "wrong-password" },
  "POST /api/users": { username: "", password: "" },
  "POST /api/users/{username}/reset_password": { password: "" },
  "POST /api/users/{username}/role": { role: "Nope" },
  "POST /api/users/{username}/mfa": { exempt: true },
  "POST /api/users/{username}/disable": { disabled: false },
  "POST /api/user_site_assignments/selection": { usernames: ["ghost"] },
  "POST /api/user_site_assignments/assign": { usernames: ["ghost"], site_ids: [] },
  "POST /api/auth/tokens": { name: "rbac" },
  "POST /api/dev-mode": { enabled: true },
  "POST /api/aegis/rotate": {},
  "POST /api/aegis/force_reset": { confirm: "no" },
  "POST /api/credentials": { name: "" },
  "PUT /api/credentials/{id}": { description: "x" },
  "POST /api/auth/login": { username: "ghost", password: "wrong" },
  "POST /api/auth/mfa/verify": { pending_token: "x", code: "123456" },
  "POST /api/bootstrap/aegis/setup": { cipher: "a long passphrase here" },
  "POST /api/bootstrap/aegis/unlock": { cipher: "a long passphrase here" },
  "POST /api/bootstrap/admin/setup": { username: "x", password: "y" },
  "POST /api/auth/passkeys/register/verify": { response: {} },
  "POST /api/auth/passkeys/authenticate/verify": { response: {} },
};

const GUARD_CODES = new Set([
  "unauthorized",
  "admin_required",
  "dev_mode_required",
  "operator_required",
  "wrong_principal_kind",
]);

Deno.test("RBAC matrix: every operator route × anonymous, User, Admin, Admin + Dev Mode", async () => {
  const t = await startTestEngine({ plugins: [aegis, operators] });
  try {
    const svc = t.engine.service(operatorsKey);
    const mk = async (role: "Admin" | "User") =>
      (await svc.createUser({
        username: `rbac-${role}`,
        password: `pw-${crypto.randomUUID()}`,
        role,
        mfaExempt: true,
      })).id;
    const ids = { user: await mk("User"), admin: await mk("Admin") };
    await mk("Admin").catch(() => {}); // (same name: ignored)
    await svc.createUser({
      username: "rbac-other",
      password: `pw-${crypto.randomUUID()}`,
      role: "Admin",
      mfaExempt: true,
    });

    const headersFor = async (who: Level): Promise<Record<string, string>> => {
      if (who === "none") return {};
      const s = await svc.createSession(who === "user" ? ids.user : ids.admin, "test");
      if (who === "dev") await svc.setDevMode(s.id, 900);
      return { Authorization: `Bearer ${s.token}` };
    };

    const doc = await (await t.request("/api/openapi.json")).json();
    const routes: string[] = [];
    for (
      const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    ) {
      for (const method of Object.keys(ops)) {
        const key = `${method.toUpperCase()} ${path}`;
        if (
          /^\/api\/(bootstrap|auth|users|user_site_assignments|dev-mode|audit|aegis|credentials)/
            .test(path)
        ) {
          routes.push(key);
        }
      }
    }
    assert.deepEqual(
      routes.filter((r) => !(r in EXPECTED)),
      [],
      "routes without an RBAC expectation",
    );
    assert.deepEqual(
      Object.keys(EXPECTED).filter((r) => !routes.includes(r)),
      [],
      "expectations without a route",
    );

    const failures: string[] = [];
    let forbidden = 0;
    for (const key of routes) {
      const [method, template] = key.split(" ") as [string, string];
      const path = template
        .replace("{id}", key.includes("credentials") ? "999999" : crypto.randomUUID())
        .replace("{username}", "rbac-ghost");
      for (const who of ["none", "user", "admin", "dev"] as Level[]) {
        const res = await t.request(path, {
          method,
          headers: await headersFor(who),
          json: method === "GET" || method === "DELETE" ? undefined : (BODIES[key] ?? {}),
        });
        const text = await res.text();
        let code = "";
        try {
          code = JSON.parse(text).error ?? "";
        } catch { /* 204 */ }
        const allowed = RANK[who] >= RANK[EXPECTED[key]!];
        const denied = (res.status === 401 || res.status === 403) && GUARD_CODES.has(code);
        if (denied && res.status === 403) forbidden++;
        const cell = `${key} as ${who}: ${res.status} ${code}`;
        if (res.status >= 500) failures.push(`${cell} (server error)`);
        else if (allowed && denied) failures.push(`${cell} (should be allowed)`);
        else if (!allowed && !denied) failures.push(`${cell} (should be denied)`);
        else if (!allowed && who === "none" && res.status !== 401) {
          failures.push(`${cell} (anonymous must get 401)`);
        } else if (!allowed && who !== "none" && res.status !== 403) {
          failures.push(`${cell} (must be 403)`);
        }
      }
    }
    assert.deepEqual(failures, []);
    // Every refusal of a signed-in caller is in the audit trail (ASVS 16.3.2).
    const [denials] = await t.engine.sql`
      select count(*)::int as n from audit_log where action = 'authz.denied' and outcome = 'denied'`;
    assert.ok(forbidden >= 15, `${forbidden} refusals`);
    assert.equal(denials!.n, forbidden);
    // The matrix changed nothing that matters: still three accounts, vault unlocked.
    const [n] = await t.engine.sql`select count(*)::int as n from users`;
    assert.equal(n!.n, 3);
  } finally {
    await t.close();
  }
});

Deno.test("bad input: random bodies and parameters on every operator route never give a 500", async () => {
  const fc = (await import("fast-check")).default;
  const t = await startTestEngine({ plugins: [aegis, operators] });
  try {
    const svc = t.engine.service(operatorsKey);
    const admin = await svc.createUser({
      username: "fuzz-admin",
      password: `pw-${crypto.randomUUID()}`,
      role: "Admin",
      mfaExempt: true,
    });
    const doc = await (await t.request("/api/openapi.json")).json();
    const keys = Object.keys(EXPECTED);
    const failures: string[] = [];
    const json = fc.oneof(
      fc.anything({ maxDepth: 2 }),
      fc.dictionary(
        fc.constantFrom(
          "username",
          "password",
          "cipher",
          "name",
          "role",
          "enabled",
          "site_ids",
          "usernames",
          "code",
          "pending_token",
          "response",
          "label",
          "confirm",
          "ttl_seconds",
          "credential_type",
          "connection_type",
          "metadata",
          "current_password",
          "new_password",
          "exempt",
          "reset",
          "disabled",
          "read_only",
          "expires_in_days",
          "new_passphrase",
        ),
        fc.oneof(
          fc.string(),
          fc.integer(),
          fc.boolean(),
          fc.constant(null),
          fc.array(fc.oneof(fc.string(), fc.integer())),
          fc.object({ maxDepth: 1 }),
        ),
      ),
    );
    const param = fc.oneof(
      fc.string(),
      fc.constant("00000000-0000-0000-0000-000000000000"),
      fc.integer().map(String),
    );
    for (const key of keys) {
      const [method, template] = key.split(" ") as [string, string];
      assert.ok(doc.paths[template], key);
      const samples = fc.sample(fc.tuple(json, param, fc.string()), 12);
      for (const [bodyValue, p, q] of samples) {
        const s = await svc.createSession(admin.id, "fuzz");
        await svc.setDevMode(s.id, 900);
        const path = template.replace(/\{[a-z_]+\}/g, encodeURIComponent(p) || "x") +
          (method === "GET"
            ? `?limit=${encodeURIComponent(q)}&cursor=${encodeURIComponent(q)}&site_id=${
              encodeURIComponent(q)
            }&since=${encodeURIComponent(q)}`
            : "");
        const res = await t.request(path, {
          method,
          headers: { Authorization: `Bearer ${s.token}` },
          json: method === "GET" ? undefined : bodyValue,
        });
        if (res.status >= 500) {
          failures.push(`${key} ${JSON.stringify(bodyValue)} → ${res.status} ${await res.text()}`);
        } else await res.body?.cancel();
      }
    }
    assert.deepEqual(failures, []);
  } finally {
    await t.close();
  }
});
