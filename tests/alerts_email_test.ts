/**
 * Email over a real SMTP server process (smtp-server, a throwaway CA from openssl):
 * STARTTLS with authentication, implicit TLS, "send test" reporting the server's answer,
 * incident mail through a route, operators' own opt-in mail limited to the sites they
 * see, and failures that say why without ever showing the password.
 */
import assert from "node:assert/strict";
import { startAlerts } from "../plugins/alerts/testing/harness.ts";
import { startSmtpReceiver } from "../plugins/alerts/testing/receivers.ts";
import { createOperator } from "./helpers/operators.ts";

const cpu = { type: "cpu_percent", threshold: 90 };
/** Undoes quoted-printable soft breaks and `=3D`, enough to find a link in a body. */
const unQuote = (s: string) => s.replace(/=\r?\n/g, "").replace(/=3D/g, "=");

const hasOpenssl = new Deno.Command("openssl", { args: ["version"], stdout: "null" })
  .outputSync().success;

Deno.test({
  name: "alerts email: STARTTLS with auth, send test, incident mail, operators' own opt-in by site",
  ignore: !hasOpenssl,
  async fn() {
    const smtp = await startSmtpReceiver();
    const h = await startAlerts();
    try {
      const mailBody = (extra: Record<string, unknown> = {}) => ({
        kind: "email",
        name: "ops mail",
        host: "127.0.0.1",
        port: smtp.port,
        security: "starttls",
        username: smtp.user,
        password: smtp.pass,
        from: "borealis@example.test",
        to: ["ops@example.test"],
        ca_pem: smtp.ca,
        ...extra,
      });
      const { channel } = await h.channel(mailBody());
      assert.deepEqual(channel.secrets, { url: false, signing_secret: false, password: true });
      assert.equal(JSON.stringify(channel).includes(smtp.pass), false);

      // Send test: the server's answer comes back.
      const res = await h.op(`/api/alerts/channels/${channel.id}/test`, { method: "POST" });
      assert.equal(res.status, 200);
      const test = await res.json();
      assert.equal(test.ok, true, JSON.stringify(test));
      assert.equal(test.status, 250);
      assert.match(test.response, /^250/);
      await smtp.waitFor(1);
      assert.equal(smtp.mails[0]!.secure, true, "STARTTLS was used");
      assert.equal(smtp.mails[0]!.user, smtp.user, "authenticated");
      assert.deepEqual(smtp.mails[0]!.to, ["ops@example.test"]);
      assert.match(smtp.mails[0]!.data, /Subject: \[Borealis\] Test message: ops mail/);

      // An incident through a route.
      await h.route({ channel_ids: [channel.id] });
      const a = await h.enrolled("mail-a");
      await h.policy({
        name: "cpu",
        severity: "error",
        targets: [{ kind: "device", device_guid: a.guid }],
        criteria: { rules: [cpu] },
      });
      await h.heartbeat(a, { cpu_percent: 99 });
      await h.flush();
      await h.deliver();
      await smtp.waitFor(2);
      const [incident] = await h.incidentsOf(a.guid);
      assert.match(smtp.mails[1]!.data, /Subject: \[Borealis\] \[ERROR\] Opened: cpu: mail-a/);
      assert.ok(unQuote(smtp.mails[1]!.data).includes(`/alerts?incident=${incident!.id}`));
      assert.match(smtp.mails[1]!.data, new RegExp(`X-Borealis-Delivery: [0-9a-f-]{36}`));

      // Operators' own mail: a User of site 1 opts in; the channel carries it.
      const user = await createOperator(h.t, { role: "User", sites: [h.site.id] });
      const optIn = { enabled: true, min_severity: "warning", events: ["opened"] };
      let r = await h.op("/api/alerts/subscription", { method: "PUT", json: optIn, as: user });
      assert.equal(r.status, 400, "an address is needed first");
      assert.equal((await r.json()).error, "email_required");
      r = await h.op("/api/auth/email", {
        method: "PUT",
        json: { email: "user@example.test", current_password: "wrong" },
        as: user,
      });
      assert.equal(r.status, 403);
      await r.body?.cancel();
      r = await h.op("/api/auth/email", {
        method: "PUT",
        json: { email: "not an address", current_password: user.password },
        as: user,
      });
      assert.equal(r.status, 400);
      await r.body?.cancel();
      r = await h.op("/api/auth/email", {
        method: "PUT",
        json: { email: "user@example.test", current_password: user.password },
        as: user,
      });
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { email: "user@example.test" });
      r = await h.op("/api/alerts/subscription", { method: "PUT", json: optIn, as: user });
      assert.equal(r.status, 200);
      const sub = await r.json();
      assert.equal(sub.enabled, true);
      assert.equal(sub.email, "user@example.test");
      assert.equal(sub.operator_mail_channel, false, "no channel carries operators' mail yet");

      const put = await h.op(`/api/alerts/channels/${channel.id}`, {
        method: "PUT",
        json: { ...mailBody({ operator_mail: true }), password: undefined },
      });
      assert.equal(put.status, 200, await put.clone().text());
      assert.equal((await put.json()).channel.secrets.password, true, "the password was kept");

      const site2 = await h.createSite("Other");
      const mine = await h.enrolled("mine", h.site.enrollment_code);
      const theirs = await h.enrolled("theirs", site2.enrollment_code);
      await h.policy({
        name: "mem",
        severity: "warning",
        targets: [mine, theirs].map((d) => ({ kind: "device", device_guid: d.guid })),
        criteria: { rules: [{ type: "memory_percent", threshold: 90 }] },
      });
      await h.heartbeat(mine, { memory_percent: 99 });
      await h.heartbeat(theirs, { memory_percent: 99 });
      await h.flush();
      await h.deliver();
      // The route sends both to ops@ (2 mails); the user gets only the site-1 incident.
      await smtp.waitFor(5);
      const toUser = smtp.mails.filter((m) => m.to.includes("user@example.test"));
      assert.equal(toUser.length, 1);
      assert.match(toUser[0]!.data, /Opened: mem: mine/);
      assert.equal(smtp.mails.length, 5);
      const log = await h.log();
      assert.equal(log.filter((d) => d.recipient === "user@example.test").length, 1);
      // Every message the log says went out arrived, and no other.
      assert.equal(log.filter((d) => d.status === "delivered").length, 5);
      const list = await (await h.op("/api/alerts/subscriptions")).json();
      assert.equal(list.items.length, 1);
      assert.equal(list.items[0].username, user.username);

      // A wrong password: the test says so (authentication failed), permanently.
      const wrong = await h.channel(mailBody({ name: "wrong pw", password: "not-it" }));
      const bad = await (await h.op(`/api/alerts/channels/${wrong.channel.id}/test`, {
        method: "POST",
      })).json();
      assert.equal(bad.ok, false);
      assert.equal(bad.permanent, true);
      assert.match(bad.error, /EAUTH/);
      // An untrusted certificate is refused.
      const untrusted = await h.channel(mailBody({ name: "no ca", ca_pem: null }));
      const refused = await (await h.op(`/api/alerts/channels/${untrusted.channel.id}/test`, {
        method: "POST",
      })).json();
      assert.equal(refused.ok, false);
      assert.match(refused.error, /certificate/i);

      const logText = await Deno.readTextFile(`${h.t.db.dataDir}/Logs/engine.log`);
      assert.equal(logText.includes(smtp.pass), false, "the SMTP password never reaches the log");
      const audit = await h.t.engine.sql<{ details: unknown }[]>`select details from audit_log`;
      assert.equal(JSON.stringify(audit).includes(smtp.pass), false);
      assert.equal(JSON.stringify(audit).includes("user@example.test"), false);
    } finally {
      await h.close();
      await smtp.close();
    }
  },
});

Deno.test({
  name: "alerts email: implicit TLS",
  ignore: !hasOpenssl,
  async fn() {
    const smtp = await startSmtpReceiver({ tls: true });
    const h = await startAlerts();
    try {
      const { channel } = await h.channel({
        kind: "email",
        name: "tls mail",
        host: "127.0.0.1",
        port: smtp.port,
        security: "tls",
        username: smtp.user,
        password: smtp.pass,
        from: "borealis@example.test",
        to: ["ops@example.test"],
        ca_pem: smtp.ca,
      });
      const r = await (await h.op(`/api/alerts/channels/${channel.id}/test`, { method: "POST" }))
        .json();
      assert.equal(r.ok, true, JSON.stringify(r));
      await smtp.waitFor(1);
      assert.equal(smtp.mails[0]!.secure, true);
    } finally {
      await h.close();
      await smtp.close();
    }
  },
});
