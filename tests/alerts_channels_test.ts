/**
 * Channels through the API: SSRF rules at save time (default: internal targets refused)
 * and again at delivery (an engine that no longer allows them refuses a stored loopback
 * URL without connecting), validation, write-only secrets that survive a vault key
 * rotation, signing-secret rotation, and no secret in answers or the log.
 */
import assert from "node:assert/strict";
import { vaultKey } from "../plugins/aegis/mod.ts";
import { alertsKey } from "../plugins/alerts/mod.ts";
import { alertPlugins, startAlerts } from "../plugins/alerts/testing/harness.ts";
import { startTestEngine } from "./helpers/test_engine.ts";
import { createOperator } from "./helpers/operators.ts";

const cpu = { type: "cpu_percent", threshold: 90 };

Deno.test("alerts channels: internal targets refused unless allowed, at save and at delivery", async () => {
  const h = await startAlerts();
  try {
    // This engine allows internal targets (the harness does): a loopback channel saves.
    const hook = await h.webhook();
    await h.route({ channel_ids: [hook.id] });
    const a = await h.enrolled("ssrf-a");
    await h.policy({
      name: "cpu",
      targets: [{ kind: "device", device_guid: a.guid }],
      criteria: { rules: [cpu] },
    });
    await h.heartbeat(a, { cpu_percent: 99 });
    await h.flush();
    await h.t.stop();

    // The same database under an engine with the default (refuse): the stored URL is
    // checked again when delivering and nothing connects.
    const b = await startTestEngine({
      plugins: alertPlugins,
      db: h.t.db,
      clock: h.t.clock,
      env: { BOREALIS_ALERTS_WORKER_MS: "60000", BOREALIS_ALERTS_TIMEOUT_MS: "3000" },
    });
    try {
      const api = b.engine.service(alertsKey);
      await api.cycle();
      await api.drain();
      assert.equal(h.receiver.received.length, 0, "no request reached the loopback receiver");
      const [d] = await b.engine.sql<{ status: string; last_error: string; attempts: number }[]>`
        select status, last_error, attempts from alert_deliveries`;
      assert.equal(d!.status, "dead");
      assert.match(d!.last_error, /127\.0\.0\.1 is a loopback address/);
      assert.match(d!.last_error, /BOREALIS_ALERTS_ALLOW_PRIVATE_TARGETS/);

      // Saving is refused too, with the reason.
      const admin = await createOperator(b, { role: "Admin" });
      const save = (body: Record<string, unknown>) =>
        b.request("/api/alerts/channels", {
          method: "POST",
          headers: admin.headers,
          json: { kind: "webhook", name: `n-${crypto.randomUUID()}`, ...body },
        });
      for (
        const url of [
          "http://127.0.0.1:9/x",
          "http://localhost:9/x",
          "http://[::1]:9/x",
          "http://10.1.2.3/x",
          "http://169.254.169.254/latest/meta-data",
          "http://[::ffff:192.168.0.1]/x",
        ]
      ) {
        const r = await save({ url });
        assert.equal(r.status, 400, url);
        assert.equal((await r.json()).error, "target_refused", url);
      }
      for (const url of ["ftp://files.example/x", "https://user:pw@hooks.example/x", "no url"]) {
        const r = await save({ url });
        assert.equal(r.status, 400, url);
        assert.equal((await r.json()).error, "invalid_url", url);
      }
      const mail = await save({
        kind: "email",
        host: "192.168.1.10",
        from: "a@example.test",
        to: ["b@example.test"],
      });
      assert.equal(mail.status, 400);
      assert.equal((await mail.json()).error, "target_refused");
      // A public address is accepted when saved (and is not contacted by this test).
      const ok = await save({
        kind: "slack",
        url: "https://93.184.216.34/services/T/B/secret-token",
      });
      assert.equal(ok.status, 201);
      const saved = await ok.json();
      assert.equal(saved.channel.config.url_hint, "https://93.184.216.34/…");
      assert.equal(JSON.stringify(saved).includes("secret-token"), false);
    } finally {
      await b.stop();
    }
  } finally {
    await h.receiver.close();
    await h.t.db.drop();
  }
});

Deno.test("alerts channels: validation, write-only secrets, secret rotation, vault key rotation", async () => {
  const h = await startAlerts();
  try {
    const created = await h.channel({
      kind: "webhook",
      name: "Signed",
      url: `${h.receiver.url}/hook/path-token-123`,
    });
    const secret = created.signing_secret!;
    assert.match(secret, /^whsec_/);
    const id = created.channel.id;
    const view = await (await h.op(`/api/alerts/channels/${id}`)).json();
    assert.deepEqual(view.secrets, { url: true, signing_secret: true, password: false });
    assert.equal(view.rate_per_minute, 600);
    assert.equal(JSON.stringify(view).includes("path-token-123"), false);
    assert.equal(JSON.stringify(view).includes(secret), false);

    const post = (json: Record<string, unknown>) => h.op("/api/alerts/channels", { json });
    const expect = async (res: Response, status: number, code: string) => {
      assert.equal(res.status, status);
      assert.equal((await res.json()).error, code);
    };
    await expect(
      await post({ kind: "webhook", name: "signed", url: h.receiver.url }),
      409,
      "channel_name_taken",
    );
    await expect(await post({ kind: "webhook", name: "no url" }), 400, "url_required");
    await expect(
      await post({ kind: "pager", name: "x", url: h.receiver.url }),
      400,
      "validation_failed",
    );
    await expect(
      await post({
        kind: "slack",
        name: "x",
        url: h.receiver.url,
        signing_secret: "0123456789abcdef",
      }),
      400,
      "validation_failed",
    );
    const mail = { kind: "email", host: "127.0.0.1", from: "a@example.test" };
    await expect(await post({ ...mail, name: "m1" }), 400, "recipients_required");
    await expect(
      await post({ ...mail, name: "m2", to: ["b@example.test"], username: "u" }),
      400,
      "password_required",
    );
    await expect(
      await post({
        ...mail,
        name: "m3",
        to: ["b@example.test"],
        quiet_hours: { start: "22:00", end: "07:00", time_zone: "Nowhere/City" },
      }),
      400,
      "validation_failed",
    );
    assert.equal((await post({ ...mail, name: "op1", operator_mail: true })).status, 201);
    await expect(
      await post({ ...mail, name: "op2", operator_mail: true }),
      409,
      "operator_mail_taken",
    );

    // Replace without the URL: kept. Changing the kind: refused.
    const put = await h.op(`/api/alerts/channels/${id}`, {
      method: "PUT",
      json: { kind: "webhook", name: "Signed", rate_per_minute: 100 },
    });
    assert.equal(put.status, 200);
    const putBody = await put.json();
    assert.equal(putBody.signing_secret, null, "the stored secret was kept, nothing new to show");
    assert.equal(putBody.channel.rate_per_minute, 100);
    await expect(
      await h.op(`/api/alerts/channels/${id}`, {
        method: "PUT",
        json: { kind: "slack", name: "Signed" },
      }),
      400,
      "kind_immutable",
    );

    // The vault rotates its key: the channel's sealed secrets move with it and still open.
    const vault = h.t.engine.service(vaultKey);
    await vault.startRotation();
    while (!(await vault.rotateStep()).done) { /* next batch */ }
    const status = await vault.status();
    assert.ok(status.sealed_columns.some((c) => c.table === "alert_channels"));
    h.receiver.secret = secret;
    let test = await (await h.op(`/api/alerts/channels/${id}/test`, { method: "POST" })).json();
    assert.equal(test.ok, true, JSON.stringify(test));
    assert.equal(test.status, 200);
    assert.equal(test.response, "ok");
    assert.equal(h.receiver.received.at(-1)!.path, "/hook/path-token-123");
    assert.equal(h.receiver.received.at(-1)!.verified, true);
    assert.equal(h.receiver.received.at(-1)!.json.type, "test");

    // A new signing secret: the old one no longer verifies.
    const rotated =
      await (await h.op(`/api/alerts/channels/${id}/rotate_secret`, { method: "POST" })).json();
    assert.notEqual(rotated.signing_secret, secret);
    await (await h.op(`/api/alerts/channels/${id}/test`, { method: "POST" })).body?.cancel();
    assert.equal(h.receiver.received.at(-1)!.verified, false, "checked with the old secret");
    h.receiver.secret = rotated.signing_secret;
    await (await h.op(`/api/alerts/channels/${id}/test`, { method: "POST" })).body?.cancel();
    assert.equal(h.receiver.received.at(-1)!.verified, true);

    // A failing test reports the remote answer, and is in the log.
    h.receiver.mode = { kind: "fail", status: 500, body: "boom" };
    test = await (await h.op(`/api/alerts/channels/${id}/test`, { method: "POST" })).json();
    assert.equal(test.ok, false);
    assert.equal(test.status, 500);
    assert.equal(test.response, "boom");
    const log = await h.log(`&kind=test&channel_id=${id}`);
    assert.equal(log.length, 4);
    assert.equal(log[0]!.status, "dead");
    assert.equal(log[0]!.response_excerpt, "boom");
    const page = await (await h.op(`/api/alerts/deliveries?kind=test&limit=2`)).json();
    assert.equal(page.items.length, 2);
    const next =
      await (await h.op(`/api/alerts/deliveries?kind=test&limit=2&before=${page.next_before}`))
        .json();
    assert.equal(next.items.length, 2);
    assert.equal(next.next_before, null);
    assert.equal(page.counts.delivered + page.counts.dead, 4);

    // Nothing secret in the log file or the audit trail.
    const text = await Deno.readTextFile(`${h.t.db.dataDir}/Logs/engine.log`);
    const audit = JSON.stringify(await h.t.engine.sql`select * from audit_log`);
    for (const s of [secret, rotated.signing_secret, "path-token-123"]) {
      assert.equal(text.includes(s), false, `log holds ${s}`);
      assert.equal(audit.includes(s), false, `audit holds ${s}`);
    }
  } finally {
    await h.close();
  }
});
