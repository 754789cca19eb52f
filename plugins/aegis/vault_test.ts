import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { startTestEngine } from "../../tests/helpers/test_engine.ts";
import aegis, { credentialsKey, vaultKey } from "./mod.ts";
import type { AegisVault } from "./vault.ts";

const place = { table: "credentials", column: "password_encrypted", row: "1" };

Deno.test("aegis: zero-config start creates a 0600 key file and unlocks; values round trip", async () => {
  const t = await startTestEngine({ plugins: [aegis] });
  try {
    const vault = t.engine.service(vaultKey);
    assert.equal(vault.state(), "unlocked");
    assert.equal(vault.mode(), "keyfile");
    const info = await Deno.stat(`${t.db.dataDir}/aegis.key`);
    assert.equal(info.mode! & 0o777, 0o600);

    const sealed = await vault.seal("hunter2-secret", place);
    assert.match(sealed, /^aegis:v1:[a-z0-9]{12}:[A-Za-z0-9+/]+=*$/);
    assert.equal(await vault.open(sealed, place), "hunter2-secret");
    // Two seals of the same value differ (fresh nonce).
    assert.notEqual(await vault.seal("hunter2-secret", place), sealed);

    // A flipped bit is refused.
    const [, , keyId, body] = sealed.split(":");
    const bytes = Buffer.from(body!, "base64");
    bytes[20] = bytes[20]! ^ 1;
    const flipped = `aegis:v1:${keyId}:${bytes.toString("base64")}`;
    await assert.rejects(vault.open(flipped, place), { status: 422, code: "aegis_value_invalid" });
    // A value moved to another row, column or table is refused.
    for (
      const other of [
        { ...place, row: "2" },
        { ...place, column: "become_password_encrypted" },
        { ...place, table: "other" },
      ]
    ) {
      await assert.rejects(vault.open(sealed, other), { code: "aegis_value_invalid" });
    }
    await assert.rejects(vault.open("aegis:v1:zzzzzzzzzzzz:AAAA", place), {
      code: "aegis_value_invalid",
    });
  } finally {
    await t.close();
  }
});

Deno.test("aegis: a restart with the same key file opens old values; a wrong key file stays locked", async () => {
  const t1 = await startTestEngine({ plugins: [aegis] });
  const db = t1.db;
  try {
    const sealed = await t1.engine.service(vaultKey).seal("v", place);
    await t1.stop();
    const t2 = await startTestEngine({ plugins: [aegis], db });
    assert.equal(await t2.engine.service(vaultKey).open(sealed, place), "v");
    await t2.stop();
    const other = `${db.dataDir}/other.key`;
    await Deno.writeTextFile(other, "x".repeat(44), { mode: 0o600 });
    const t3 = await startTestEngine({
      plugins: [aegis],
      db,
      env: { BOREALIS_AEGIS_KEY_FILE: other },
    });
    const vault = t3.engine.service(vaultKey);
    assert.equal(vault.state(), "locked");
    await assert.rejects(vault.seal("x", place), { status: 423, code: "aegis_locked" });
    await t3.stop();
    // A key file readable by others is refused outright.
    await Deno.chmod(other, 0o644);
    await assert.rejects(
      startTestEngine({ plugins: [aegis], db, env: { BOREALIS_AEGIS_KEY_FILE: other } }),
      /chmod 600/,
    );
  } finally {
    await db.drop();
  }
});

Deno.test("aegis: passphrase mode starts unconfigured, then locked; wrong passphrase refused", async () => {
  const env = { BOREALIS_AEGIS_MODE: "passphrase" };
  const t1 = await startTestEngine({ plugins: [aegis], env });
  const db = t1.db;
  try {
    const v1 = t1.engine.service(vaultKey);
    assert.equal(v1.state(), "unconfigured");
    await assert.rejects(v1.seal("x", place), { status: 409, code: "aegis_not_configured" });
    await v1.setup("correct horse battery staple");
    assert.equal(v1.state(), "unlocked");
    await assert.rejects(v1.setup("again and again"), { status: 409, code: "invalid_phase" });
    const sealed = await v1.seal("s3cret", place);
    await t1.stop();

    const t2 = await startTestEngine({ plugins: [aegis], db, env });
    const v2 = t2.engine.service(vaultKey);
    assert.equal(v2.state(), "locked");
    await assert.rejects(v2.open(sealed, place), { status: 423, code: "aegis_locked" });
    await assert.rejects(v2.unlock("wrong horse battery staple"), { code: "invalid_passphrase" });
    assert.equal(v2.state(), "locked");
    await v2.unlock("correct horse battery staple");
    assert.equal(await v2.open(sealed, place), "s3cret");
    await t2.stop();
  } finally {
    await db.drop();
  }
});

Deno.test("aegis: rotation interrupted after one batch resumes after a restart", async () => {
  const env = { BOREALIS_AEGIS_ROTATE_BATCH: "2" };
  const t1 = await startTestEngine({ plugins: [aegis], env });
  const db = t1.db;
  try {
    const vault = t1.engine.service(vaultKey) as AegisVault;
    const creds = [];
    for (let i = 0; i < 5; i++) {
      const res = await t1.engine.sql`
        insert into credentials (name, credential_type, connection_type, created_at, updated_at)
        values (${"c" + i}, 'machine', 'ssh', now(), now()) returning id`;
      const id = String(res[0]!.id);
      const sealed = await vault.seal(`pw-${i}`, {
        table: "credentials",
        column: "password_encrypted",
        row: id,
      });
      await t1.engine.sql`update credentials set password_encrypted = ${sealed} where id = ${id}`;
      creds.push(Number(id));
    }
    const oldKey = (await vault.status()).key_id!;
    const progress = await vault.startRotation();
    assert.notEqual(progress.target_key_id, oldKey);
    assert.deepEqual(await vault.rotateStep(), { moved: 2, done: false });
    const mid = await vault.status();
    assert.equal(mid.rotation?.running, true);
    assert.equal(mid.rotation?.remaining, 3);
    await t1.stop(); // interrupted

    const t2 = await startTestEngine({ plugins: [aegis], db, env });
    const v2 = t2.engine.service(vaultKey) as AegisVault;
    // The plugin resumes the rotation at start; wait for the background driver.
    for (let i = 0; i < 50 && (await v2.status()).rotation?.running; i++) {
      await v2.rotationIdle();
      await new Promise((r) => setTimeout(r, 10));
    }
    const done = await v2.status();
    assert.equal(done.rotation?.running, false);
    assert.equal(done.rotation?.moved, 5);
    assert.equal(done.rotation?.remaining, 0);
    assert.ok(done.keys.find((k) => k.key_id === oldKey)?.retired_at);
    for (const id of creds) {
      const c = await t2.engine.service(credentialsKey).open(id);
      assert.equal(c?.password, `pw-${creds.indexOf(id)}`);
    }
    const [row] = await t2.engine.sql`select password_encrypted from credentials limit 1`;
    assert.ok(String(row!.password_encrypted).startsWith(`aegis:v1:${progress.target_key_id}:`));
    await t2.stop();
  } finally {
    await db.drop();
  }
});

Deno.test("aegis: rotation passes over unreadable values and sweeps again for late old-key writes", async () => {
  const t = await startTestEngine({ plugins: [aegis], env: { BOREALIS_AEGIS_ROTATE_BATCH: "2" } });
  try {
    const vault = t.engine.service(vaultKey) as AegisVault;
    const at = (id: string) => ({ table: "credentials", column: "password_encrypted", row: id });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const [r] = await t.engine.sql`
        insert into credentials (name, credential_type, connection_type, created_at, updated_at)
        values (${"r" + i}, 'machine', 'ssh', now(), now()) returning id::text as id`;
      ids.push(r!.id);
      await t.engine.sql`update credentials set password_encrypted = ${await vault.seal(
        `pw-${i}`,
        at(r!.id),
      )} where id = ${r!.id}`;
    }
    // Row 2 holds a value sealed for another row: it never opens there.
    await t.engine.sql`update credentials set password_encrypted = ${await vault.seal(
      "moved",
      at("424242"),
    )} where id = ${ids[1]!}`;
    // A value an instance that has not seen the new key yet will write later.
    const late = await vault.seal("late-value", at(ids[0]!));

    const { target_key_id } = await vault.startRotation();
    assert.deepEqual(await vault.rotateStep(), { moved: 1, done: false }); // rows 1 and 2
    await t.engine.sql`update credentials set password_encrypted = ${late} where id = ${ids[0]!}`;
    let steps = 0;
    while (!(await vault.rotateStep()).done) assert.ok(++steps < 20, "rotation never finished");
    const s = await vault.status();
    assert.equal(s.rotation?.running, false);
    assert.equal(s.rotation?.moved, 4); // three in the first sweep, the late one in the second
    assert.equal(s.rotation?.failed, 1);
    assert.equal(s.rotation?.pass, 2);
    assert.equal(s.rotation?.remaining, 1);
    const creds = t.engine.service(credentialsKey);
    assert.equal((await creds.open(Number(ids[0])))?.password, "late-value");
    assert.equal((await creds.open(Number(ids[3])))?.password, "pw-3");
    await assert.rejects(creds.open(Number(ids[1])), { code: "aegis_value_invalid" });
    const [row] = await t.engine.sql`
      select password_encrypted as v from credentials where id = ${ids[0]!}`;
    assert.ok(String(row!.v).startsWith(`aegis:v1:${target_key_id}:`));
  } finally {
    await t.close();
  }
});
