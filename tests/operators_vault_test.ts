import assert from "node:assert/strict";
import aegis, { credentialsKey, vaultKey } from "../plugins/aegis/mod.ts";
import type { AegisVault } from "../plugins/aegis/vault.ts";
import operators, { operatorsKey } from "../plugins/operators/mod.ts";
import { codeAt } from "../plugins/operators/totp.ts";
import { createOperator } from "./helpers/operators.ts";
import { startTestEngine, type TestEngine } from "./helpers/test_engine.ts";

const plugins = [aegis, operators];
const PASSPHRASE = "correct horse battery staple";
const SECRETS = {
  password: "Sup3r-Secret-Passw0rd!",
  private_key:
    "-----BEGIN OPENSSH PRIVATE KEY-----\r\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\r\n-----END OPENSSH PRIVATE KEY-----",
  private_key_passphrase: "key-passphrase-xyz",
  become_password: "become-pw-987",
};

async function state(t: TestEngine) {
  return (await (await t.request("/api/bootstrap/state")).json()).phase;
}

async function assertNoSecretsInLog(t: TestEngine, secrets: string[]) {
  const log = await Deno.readTextFile(`${t.db.dataDir}/Logs/engine.log`);
  assert.ok(log.length > 0);
  for (const s of secrets) assert.ok(!log.includes(s), `log contains a secret: ${s.slice(0, 6)}…`);
}

Deno.test("bootstrap: passphrase mode phases, loopback/bootstrap-token rule, locked and unconfigured answers", async () => {
  const env = { BOREALIS_AEGIS_MODE: "passphrase" };
  const t1 = await startTestEngine({ plugins, env });
  const db = t1.db;
  const seen: string[] = [];
  try {
    assert.equal(await state(t1), "aegis_setup_required");
    // Unconfigured: routes needing secrets answer 409 aegis_not_configured.
    const admin0 = await createOperator(t1, { role: "Admin" });
    let r = await t1.request("/api/credentials", {
      method: "POST",
      headers: admin0.headers,
      json: {
        name: "c",
        credential_type: "machine",
        connection_type: "ssh",
        password: "pw-123456",
      },
    });
    assert.equal(r.status, 409);
    assert.equal((await r.json()).error, "aegis_not_configured");
    await t1.engine.sql`delete from users`;

    r = await t1.request("/api/bootstrap/aegis/unlock", {
      method: "POST",
      json: { cipher: PASSPHRASE },
    });
    assert.equal(r.status, 409);
    assert.equal((await r.json()).error, "invalid_phase");
    r = await t1.request("/api/bootstrap/aegis/setup", {
      method: "POST",
      json: { cipher: "short" },
    });
    assert.equal(r.status, 400);
    // Remote without the bootstrap token: refused.
    r = await t1.request("/api/bootstrap/aegis/setup", {
      method: "POST",
      json: { cipher: PASSPHRASE },
      ip: "203.0.113.9",
    });
    assert.equal(r.status, 403);
    const token = t1.engine.service(operatorsKey).bootstrapToken()!;
    assert.match(token, /^bbt_/);
    seen.push(token);
    r = await t1.request("/api/bootstrap/aegis/setup", {
      method: "POST",
      json: { cipher: PASSPHRASE, bootstrap_token: token },
      ip: "203.0.113.9",
    });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).phase, "admin_setup_required");

    const admin = { username: "root-admin", password: "An admin passphrase 42" };
    r = await t1.request("/api/bootstrap/admin/setup", {
      method: "POST",
      json: admin,
      ip: "203.0.113.9",
    });
    assert.equal(r.status, 403);
    r = await t1.request("/api/bootstrap/admin/setup", {
      method: "POST",
      json: { ...admin, password: "password" },
    });
    assert.equal(r.status, 400);
    r = await t1.request("/api/bootstrap/admin/setup", { method: "POST", json: admin });
    assert.equal(r.status, 201);
    assert.equal(await state(t1), "login_required");
    r = await t1.request("/api/bootstrap/admin/setup", {
      method: "POST",
      json: { ...admin, username: "second" },
    });
    assert.equal(r.status, 409);
    assert.equal(t1.engine.service(operatorsKey).bootstrapToken(), null);
    // The new admin must set up TOTP at first sign-in.
    const login = await (await t1.request("/api/auth/login", { method: "POST", json: admin }))
      .json();
    assert.equal(login.status, "mfa_required");
    assert.equal(login.stage, "setup");
    seen.push(login.secret, login.pending_token);
    await t1.stop();

    // Restart: locked until unlocked.
    const t2 = await startTestEngine({ plugins, db, env });
    try {
      assert.equal(await state(t2), "aegis_unlock_required");
      const op = await createOperator(t2, { role: "Admin" });
      r = await t2.request("/api/credentials", {
        method: "POST",
        headers: op.headers,
        json: {
          name: "c",
          credential_type: "machine",
          connection_type: "ssh",
          password: "pw-123456",
        },
      });
      assert.equal(r.status, 423);
      assert.equal((await r.json()).error, "aegis_locked");
      assert.equal((await t2.engine.sql`select count(*)::int as n from credentials`)[0]!.n, 0);
      r = await t2.request("/api/bootstrap/aegis/unlock", {
        method: "POST",
        json: { cipher: "wrong wrong wrong" },
      });
      assert.equal(r.status, 403);
      assert.equal((await r.json()).error, "invalid_passphrase");
      r = await t2.request("/api/bootstrap/aegis/unlock", {
        method: "POST",
        json: { cipher: PASSPHRASE },
      });
      assert.equal(r.status, 200);
      assert.equal((await r.json()).phase, "login_required");
      r = await t2.request("/api/credentials", {
        method: "POST",
        headers: op.headers,
        json: {
          name: "c",
          credential_type: "machine",
          connection_type: "ssh",
          password: "pw-123456",
        },
      });
      assert.equal(r.status, 201);
      await assertNoSecretsInLog(t2, [PASSPHRASE, "pw-123456", ...seen]);
    } finally {
      await t2.stop();
    }
    await assertNoSecretsInLog(t1, [PASSPHRASE, admin.password, ...seen]);
  } finally {
    await db.drop();
  }
});

Deno.test("credentials: sealed secrets, flags only, site scope, audit; no secret in responses or log", async () => {
  const t = await startTestEngine({ plugins });
  try {
    const admin = await createOperator(t, { role: "Admin" });
    const user1 = await createOperator(t, { role: "User", sites: [1] });
    const user2 = await createOperator(t, { role: "User", sites: [2] });
    const bodies: string[] = [];
    const call = async (path: string, init: Parameters<TestEngine["request"]>[1]) => {
      const res = await t.request(path, init);
      bodies.push(await res.clone().text());
      return res;
    };
    let r = await call("/api/credentials", {
      method: "POST",
      headers: admin.headers,
      json: {
        name: "Linux root",
        site_id: 1,
        credential_type: "machine",
        connection_type: "ssh",
        username: "root",
        ...SECRETS,
      },
    });
    assert.equal(r.status, 201);
    const cred = await r.json();
    assert.deepEqual(
      [
        cred.has_password,
        cred.has_private_key,
        cred.has_private_key_passphrase,
        cred.has_become_password,
      ],
      [true, true, true, true],
    );
    // Same name (any case) is a conflict; bad input changes nothing.
    r = await call("/api/credentials", {
      method: "POST",
      headers: admin.headers,
      json: { name: "LINUX ROOT", credential_type: "machine", connection_type: "ssh" },
    });
    assert.equal(r.status, 409);
    for (
      const bad of [
        {},
        { name: "x", credential_type: "nope", connection_type: "ssh" },
        { name: "x", credential_type: "machine", connection_type: "ssh", extra: 1 },
        { name: "", credential_type: "machine", connection_type: "ssh" },
      ]
    ) {
      r = await call("/api/credentials", { method: "POST", headers: admin.headers, json: bad });
      assert.equal(r.status, 400, JSON.stringify(bad));
    }
    assert.equal((await t.engine.sql`select count(*)::int as n from credentials`)[0]!.n, 1);

    // Users: only their site's credentials; others get 404.
    r = await call("/api/credentials", { headers: user1.headers });
    assert.equal((await r.json()).credentials.length, 1);
    r = await call("/api/credentials", { headers: user2.headers });
    assert.equal((await r.json()).credentials.length, 0);
    assert.equal(
      (await call(`/api/credentials/${cred.id}`, { headers: user2.headers })).status,
      404,
    );
    assert.equal(
      (await call(`/api/credentials/${cred.id}`, { headers: user1.headers })).status,
      200,
    );
    r = await call(`/api/credentials/${cred.id}`, { method: "DELETE", headers: user1.headers });
    assert.equal(r.status, 403);

    // Update: clear one secret, keep the others.
    r = await call(`/api/credentials/${cred.id}`, {
      method: "PUT",
      headers: admin.headers,
      json: { become_password: null, description: "prod" },
    });
    assert.equal(r.status, 200);
    const updated = await r.json();
    assert.equal(updated.has_become_password, false);
    assert.equal(updated.has_password, true);

    // The in-process service opens the secrets; the key is normalised to LF + newline.
    const opened = await t.engine.service(credentialsKey).open(cred.id);
    assert.equal(opened!.password, SECRETS.password);
    assert.equal(opened!.private_key, SECRETS.private_key.replaceAll("\r\n", "\n") + "\n");
    assert.equal(opened!.become_password, null);

    // Stored sealed; a value copied to another row does not open.
    const [row] = await t.engine.sql`select * from credentials where id = ${cred.id}`;
    assert.match(row!.password_encrypted, /^aegis:v1:/);
    const vault = t.engine.service(vaultKey);
    await assert.rejects(
      vault.open(row!.password_encrypted, {
        table: "credentials",
        column: "password_encrypted",
        row: "999",
      }),
      { code: "aegis_value_invalid" },
    );

    // Vault admin routes: status (Admin), rotate and force-reset need Dev Mode.
    assert.equal((await call("/api/aegis/status", { headers: user1.headers })).status, 403);
    r = await call("/api/aegis/status", { headers: admin.headers });
    const status = await r.json();
    assert.equal(status.state, "unlocked");
    assert.equal(status.mode, "keyfile");
    assert.equal(status.kdf.N, 32768);
    assert.equal(status.sealed_values, 3);
    r = await call("/api/aegis/rotate", { method: "POST", headers: admin.headers, json: {} });
    assert.equal(r.status, 403);
    assert.match((await r.json()).message, /POST \/api\/dev-mode/);
    const dev = await createOperator(t, { role: "Admin", devMode: true });
    r = await call("/api/aegis/rotate", { method: "POST", headers: dev.headers, json: {} });
    assert.equal(r.status, 202);
    await (vault as AegisVault).rotationIdle();
    const rotated = await (await call("/api/aegis/status", { headers: admin.headers })).json();
    assert.equal(rotated.rotation.running, false);
    assert.equal(rotated.rotation.moved, 3);
    assert.equal(
      (await t.engine.service(credentialsKey).open(cred.id))!.password,
      SECRETS.password,
    );

    r = await call("/api/aegis/force_reset", {
      method: "POST",
      headers: dev.headers,
      json: { confirm: "yes" },
    });
    assert.equal(r.status, 400);
    r = await call("/api/aegis/force_reset", {
      method: "POST",
      headers: dev.headers,
      json: { confirm: "DESTROY ALL SECRETS" },
    });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).cleared, 3);
    const after = await (await call(`/api/credentials/${cred.id}`, { headers: admin.headers }))
      .json();
    assert.equal(after.has_password, false);
    assert.equal(after.reset_required, true);
    r = await call(`/api/credentials/${cred.id}`, {
      method: "PUT",
      headers: admin.headers,
      json: { password: "a-new-secret-value" },
    });
    assert.equal((await r.json()).reset_required, false);
    assert.equal(vault.state(), "unlocked"); // key-file mode: a fresh key at once

    const audit = await (await call("/api/audit?action=credential.*", { headers: admin.headers }))
      .json();
    assert.ok(audit.entries.some((e: { action: string }) => e.action === "credential.create"));
    assert.ok(audit.entries.some((e: { action: string }) => e.action === "credential.update"));

    const all = bodies.join("\n");
    for (const s of Object.values(SECRETS)) {
      assert.ok(!all.includes(s), "a response carries a secret");
    }
    assert.ok(!all.includes("AAAAB3NzaC1yc2EAAAADAQABAAABAQ"), "a response carries key material");
    assert.ok(!all.includes("aegis:v1:"), "a response carries a sealed value");
    await assertNoSecretsInLog(t, [...Object.values(SECRETS), "AAAAB3NzaC1yc2EAAAADAQABAAABAQ"]);
  } finally {
    await t.close();
  }
});

Deno.test("force-reset (passphrase mode): typed confirmation, dependents marked, an Admin sets the vault up again", async () => {
  const t = await startTestEngine({ plugins, env: { BOREALIS_AEGIS_MODE: "passphrase" } });
  try {
    let r = await t.request("/api/bootstrap/aegis/setup", {
      method: "POST",
      json: { cipher: PASSPHRASE },
    });
    assert.equal(r.status, 200);
    const dev = await createOperator(t, { role: "Admin", devMode: true });
    // A user with TOTP set up, and a credential with a secret.
    const user = { username: "totp-user", password: "a totp user password" };
    r = await t.request("/api/users", { method: "POST", headers: dev.headers, json: user });
    assert.equal(r.status, 201);
    const setup = await (await t.request("/api/auth/login", { method: "POST", json: user })).json();
    r = await t.request("/api/auth/mfa/verify", {
      method: "POST",
      json: { pending_token: setup.pending_token, code: codeAt(setup.secret, t.clock.now()) },
    });
    assert.equal(r.status, 200);
    r = await t.request("/api/credentials", {
      method: "POST",
      headers: dev.headers,
      json: { name: "db", credential_type: "machine", connection_type: "ssh", password: "pw-1x" },
    });
    const cred = await r.json();

    // The confirmation must be typed exactly; a wrong one is refused and audited.
    r = await t.request("/api/aegis/force_reset", {
      method: "POST",
      headers: dev.headers,
      json: { confirm: "destroy all secrets" },
    });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error, "confirmation_required");
    assert.equal(t.engine.service(vaultKey).state(), "unlocked");
    r = await t.request("/api/aegis/force_reset", {
      method: "POST",
      headers: dev.headers,
      json: { confirm: "DESTROY ALL SECRETS" },
    });
    assert.equal(r.status, 200);
    const reset = await r.json();
    assert.equal(reset.cleared, 2);
    const cleared = Object.fromEntries(
      reset.columns.map((c: { table: string; column: string; cleared: number }) => [
        `${c.table}.${c.column}`,
        c.cleared,
      ]),
    );
    assert.equal(cleared["credentials.password_encrypted"], 1);
    assert.equal(cleared["users.mfa_secret"], 1);
    assert.equal(reset.status.state, "unconfigured");
    assert.equal(await state(t), "aegis_setup_required");
    const audit = await (await t.request("/api/audit?action=aegis.force_reset", {
      headers: dev.headers,
    })).json();
    assert.deepEqual(audit.entries.map((e: { outcome: string }) => e.outcome), [
      "success",
      "failure",
    ]);

    // Dependents: the credential is marked, the user sets TOTP up again.
    const after = await (await t.request(`/api/credentials/${cred.id}`, { headers: dev.headers }))
      .json();
    assert.deepEqual([after.has_password, after.reset_required], [false, true]);
    // Signing in needs a sealed TOTP seed, so it waits for the vault.
    r = await t.request("/api/auth/login", { method: "POST", json: user });
    assert.equal(r.status, 409);
    assert.equal((await r.json()).error, "aegis_not_configured");
    r = await t.request("/api/credentials", {
      method: "POST",
      headers: dev.headers,
      json: { name: "db2", credential_type: "machine", connection_type: "ssh", password: "pw-2x" },
    });
    assert.equal(r.status, 409);
    assert.equal((await r.json()).error, "aegis_not_configured");

    // Set up again from afar: anonymous is refused, a signed-in Admin may.
    const remote = "203.0.113.50";
    r = await t.request("/api/bootstrap/aegis/setup", {
      method: "POST",
      json: { cipher: "a brand new passphrase" },
      ip: remote,
    });
    assert.equal(r.status, 403);
    r = await t.request("/api/bootstrap/aegis/setup", {
      method: "POST",
      headers: dev.headers,
      json: { cipher: "a brand new passphrase" },
      ip: remote,
    });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).phase, "login_required");
    r = await t.request(`/api/credentials/${cred.id}`, {
      method: "PUT",
      headers: dev.headers,
      json: { password: "pw-3x" },
    });
    assert.equal((await r.json()).reset_required, false);
    assert.equal((await t.engine.service(credentialsKey).open(cred.id))?.password, "pw-3x");
    const relog = await (await t.request("/api/auth/login", { method: "POST", json: user }))
      .json();
    assert.deepEqual([relog.status, relog.stage], ["mfa_required", "setup"]);
  } finally {
    await t.close();
  }
});
