/**
 * The agent_updates plugin through its HTTP surface with in-process agents: install
 * tokens (shown once, listed without values, revoked, expired, used up, refused and
 * counted, Admin-only to create), enrollment by token (auto-approved or queued),
 * releases found on disk and signed with the code-signing key, public downloads,
 * channels and policies, and rollouts that respect their concurrency limit.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  formatManifest,
  type Manifest,
  sha256Hex,
  verifyManifestSignature,
} from "../agent/updater/manifest.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import type { Agent } from "./agent/agent.ts";
import { type IdentityHarness, identityPlugins, startIdentity } from "./agent/harness.ts";
import type { AnyPlugin } from "../core/plugin.ts";
import agentUpdates from "../plugins/agent_updates/mod.ts";
import { createOperator } from "./helpers/operators.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await new Response(
      new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip")),
    )
      .arrayBuffer(),
  );
}

/** Writes a small but complete package (as `deno task agent:package` lays it out). */
async function writePackage(dataDir: string, version: string, channel = "none"): Promise<void> {
  const dir = join(dataDir, "agent_packages", version);
  const m: Manifest = { version, created: new Date().toISOString(), runtimes: [], files: [] };
  for (const platform of ["linux-x64", "windows-x64"]) {
    await Deno.mkdir(join(dir, platform), { recursive: true });
    for (
      const name of platform.startsWith("windows") ? ["deno.exe", "agent.js"] : ["deno", "agent.js"]
    ) {
      const plain = new TextEncoder().encode(`${version} ${platform} ${name}\n`);
      const gz = await gzip(plain);
      await Deno.writeFile(join(dir, platform, `${name}.gz`), gz);
      m.files.push({
        platform,
        name,
        mode: name.startsWith("deno") ? "755" : "644",
        sha256: sha256Hex(plain),
        size: plain.length,
        gz_sha256: sha256Hex(gz),
        gz_size: gz.length,
      });
    }
  }
  await Deno.writeTextFile(join(dir, "manifest.txt"), formatManifest(m));
  await Deno.writeTextFile(join(dir, "release.json"), JSON.stringify({ channel }));
}

async function setup(plugins: readonly AnyPlugin[] = builtinPlugins) {
  const h = await startIdentity({ plugins });
  const json = async (path: string, init: { method?: string; json?: unknown; as?: Json } = {}) => {
    const res = await h.op(path, init);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  return { h, json };
}

async function enrollByToken(h: IdentityHarness, token: string, hostname: string): Promise<Agent> {
  const a = await h.agent({ hostname });
  const r = await a.enroll({ installToken: token }, { timeoutMs: 10_000 });
  assert.equal(r.status, "approved", JSON.stringify(r));
  return a;
}

Deno.test({
  name: "agent_updates: install tokens are shown once, listed, revoked, run out and are refused",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { h, json } = await setup();
    try {
      await writePackage(h.t.db.dataDir, "1.0.0", "stable");
      assert.deepEqual(
        (await json("/api/agent-updates/releases/scan", { json: {} })).body.registered,
        ["1.0.0"],
      );
      const site = h.site.id;
      const created = await json(`/api/sites/${site}/install-tokens`, {
        json: { max_uses: 1, note: "lab" },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const tok = created.body;
      assert.match(tok.token, /^bit_[A-Za-z0-9_-]{43}$/);
      assert.equal(tok.state, "active");
      assert.equal(tok.install_commands.version, "1.0.0");
      assert.ok(tok.install_commands.linux.includes(tok.token));
      assert.ok(tok.install_commands.windows.includes(`-Token '${tok.token}'`));
      // Listing never shows the token; the site row shows the current commands to admins.
      const list = (await json(`/api/sites/${site}/install-tokens`)).body.tokens;
      assert.equal(list.length, 1);
      assert.equal(JSON.stringify(list).includes(tok.token), false);
      const row = (await json("/api/sites")).body.sites.find((s: Json) => s.id === site);
      assert.equal(row.install_commands.linux, tok.install_commands.linux);
      const cmds = await json(`/api/sites/${site}/install-commands`);
      assert.equal(cmds.body.token_id, tok.id);
      // A User of the site may list but not create, and sees no commands on the site row.
      const user = await createOperator(h.t, { role: "User", sites: [site] });
      assert.equal((await json(`/api/sites/${site}/install-tokens`, { as: user })).status, 200);
      assert.equal(
        (await json(`/api/sites/${site}/install-tokens`, { json: {}, as: user })).status,
        403,
      );
      const userRow = (await json("/api/sites", { as: user })).body.sites.find((s: Json) =>
        s.id === site
      );
      assert.equal(userRow.install_commands, undefined);

      // One use: the first key enrolls (again with the same key is fine), a second key is refused.
      const a = await enrollByToken(h, tok.token, "token-host-1");
      assert.ok(a.state.guid);
      const b = await h.agent({ hostname: "token-host-2" });
      await assert.rejects(
        b.requestEnrollment({ installToken: tok.token }),
        /invalid_install_token/,
      );
      const listed = (await json(`/api/sites/${site}/install-tokens`)).body.tokens[0];
      assert.equal(listed.state, "used_up");
      assert.equal(listed.use_count, 1);
      assert.equal(listed.refused_count, 1);

      // Unknown and malformed tokens are refused like wrong codes (recorded masked).
      await assert.rejects(
        b.requestEnrollment({ installToken: "bit_nope" }),
        /invalid_install_token/,
      );
      const failures = (await json("/api/admin/device-approvals?status=wrong_code")).body.approvals;
      assert.ok(failures.some((f: Json) => f.enrollment_code_mask === "bit***ope"));

      // Revoked: refused at once, and the site row no longer offers its commands.
      const second = (await json(`/api/sites/${site}/install-tokens`, { json: {} })).body;
      const revoked = await json(`/api/sites/${site}/install-tokens/${second.id}/revoke`, {
        json: {},
      });
      assert.equal(revoked.body.state, "revoked");
      await assert.rejects(
        b.requestEnrollment({ installToken: second.token }),
        /invalid_install_token/,
      );
      assert.equal((await json(`/api/sites/${site}/install-commands`)).status, 404);

      // Audited: creation, revocation, use and refusals.
      const [audit] = await h.t.engine.sql<{ actions: string[] }[]>`
        select array_agg(distinct action) as actions from audit_log where action like 'install_token.%'`;
      for (
        const action of [
          "install_token.create",
          "install_token.revoke",
          "install_token.used",
          "install_token.refused",
        ]
      ) {
        assert.ok(audit!.actions.includes(action), action);
      }
      // Bad input is a 4xx, never a 500.
      assert.equal(
        (await json(`/api/sites/${site}/install-tokens`, { json: { expires_in_hours: 0 } })).status,
        400,
      );
      assert.equal((await json(`/api/sites/999999/install-tokens`, { json: {} })).status, 404);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "agent_updates: an expired install token is refused and listed as expired",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // No realtime or scheduler: moving the clock an hour then runs few background tasks.
    const { h, json } = await setup([...identityPlugins, agentUpdates]);
    try {
      const site = h.site.id;
      const b = await h.agent({ hostname: "late-host" });
      const third =
        (await json(`/api/sites/${site}/install-tokens`, { json: { expires_in_hours: 1 } })).body;
      await h.t.clock.advance(3_600_001);
      await assert.rejects(
        b.requestEnrollment({ installToken: third.token }),
        /invalid_install_token/,
      );
      const listed = (await json(`/api/sites/${site}/install-tokens`)).body.tokens.find((t: Json) =>
        t.id === third.id
      );
      assert.equal(listed.state, "expired");
      assert.equal(listed.refused_count, 1);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "agent_updates: a token without auto-approval queues the device for an operator",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { h, json } = await setup();
    try {
      const tok =
        (await json(`/api/sites/${h.site.id}/install-tokens`, { json: { auto_approve: false } }))
          .body;
      assert.equal(tok.install_commands, null); // no release yet: nothing to install
      const a = await h.agent({ hostname: "queued-host" });
      const first = await a.requestEnrollment({ installToken: tok.token });
      assert.equal(first.status, "pending");
      const pending = (await json("/api/admin/device-approvals?status=pending")).body.approvals;
      const row = pending.find((p: Json) => p.hostname_claimed === "queued-host");
      assert.equal(row.site_id, h.site.id);
      assert.equal((await h.approve("queued-host")).status, 200);
      assert.equal((await a.poll()).body.status, "approved");
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "agent_updates: releases are signed and served; rollouts update at most N devices at once",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { h, json } = await setup();
    try {
      await writePackage(h.t.db.dataDir, "1.0.0", "stable");
      await writePackage(h.t.db.dataDir, "1.1.0-beta.1", "beta");
      await writePackage(h.t.db.dataDir, "1.1.0");
      const scan = await json("/api/agent-updates/releases/scan", { json: {} });
      assert.deepEqual(scan.body.registered.sort(), ["1.0.0", "1.1.0", "1.1.0-beta.1"]);
      const rel = (await json("/api/agent-updates/releases")).body;
      assert.deepEqual(rel.releases.map((r: Json) => r.version), [
        "1.1.0",
        "1.1.0-beta.1",
        "1.0.0",
      ]);
      assert.equal(rel.stable, "1.0.0");
      assert.equal(rel.beta, "1.1.0-beta.1");

      // Public downloads; the signature verifies with the code-signing key agents pin.
      const get = (p: string) => h.t.request(p);
      const manifest = new Uint8Array(
        await (await get("/api/agent/packages/1.1.0/manifest.txt")).arrayBuffer(),
      );
      const sig = (await (await get("/api/agent/packages/1.1.0/manifest.sig")).text()).trim();
      const key = (await (await get("/api/agent/code-signing-key")).json()).signing_key;
      assert.ok(await verifyManifestSignature(manifest, sig, key));
      assert.equal(rel.releases[0].manifest_sha256, sha256Hex(manifest));
      const gz = await get("/api/agent/packages/1.1.0/linux-x64/agent.js.gz");
      assert.equal(gz.status, 200);
      const plain = await new Response(gz.body!.pipeThrough(new DecompressionStream("gzip")))
        .text();
      assert.equal(plain, "1.1.0 linux-x64 agent.js\n");
      assert.equal((await get("/api/agent/packages/1.1.0/linux-x64/secret.txt.gz")).status, 404);
      assert.equal((await get("/api/agent/packages/1.1.0/linux-x64/../../x.gz")).status, 404);
      assert.equal((await get("/api/agent/packages/not-a-version/manifest.txt")).status, 400);
      assert.match(await (await get("/api/agent/install.sh")).text(), /^#!\/bin\/sh/);
      assert.match(await (await get("/api/agent/install.ps1")).text(), /param\(/);

      // A version rebuilt in place is checked and signed again; an unchanged one is left alone.
      assert.deepEqual(
        (await json("/api/agent-updates/releases/scan", { json: {} })).body.registered,
        [],
      );
      await new Promise((r) => setTimeout(r, 5)); // a new `created` line, so new bytes
      await writePackage(h.t.db.dataDir, "1.1.0-beta.1", "beta");
      assert.deepEqual(
        (await json("/api/agent-updates/releases/scan", { json: {} })).body.registered,
        [
          "1.1.0-beta.1",
        ],
      );
      const rebuilt = new Uint8Array(
        await (await get("/api/agent/packages/1.1.0-beta.1/manifest.txt")).arrayBuffer(),
      );
      const resigned = (await (await get("/api/agent/packages/1.1.0-beta.1/manifest.sig")).text())
        .trim();
      assert.ok(await verifyManifestSignature(rebuilt, resigned, key));

      // Channels: a release moves to stable; a site on beta wants the beta.
      assert.equal(
        (await json("/api/agent-updates/releases/1.1.0/channel", { json: { channel: "stable" } }))
          .status,
        200,
      );
      assert.equal((await json("/api/agent-updates/releases")).body.stable, "1.1.0");

      // Three devices at 1.0.0 (enrolled by token); a rollout with max_concurrency 1.
      const tok = (await json(`/api/sites/${h.site.id}/install-tokens`, { json: {} })).body;
      const agents = [];
      for (const n of [1, 2, 3]) agents.push(await enrollByToken(h, tok.token, `upd-${n}`));
      const check = async (a: Agent, version: string, last?: Json) => {
        const res = await a.call("POST", "/api/agent/update/check", {
          version,
          platform: "linux-x64",
          ...(last ? { last_update: last } : {}),
        });
        assert.equal(res.status, 200);
        return await res.json();
      };
      for (const a of agents) assert.equal((await check(a, "1.0.0")).update, null);
      const guids = agents.map((a) => a.state.guid!.toUpperCase());
      const rollout = await json("/api/agent-updates/rollouts", {
        json: { device_guids: guids, version: "1.1.0", max_concurrency: 1 },
      });
      assert.equal(rollout.status, 201, JSON.stringify(rollout.body));
      const offers = [];
      for (const a of agents) offers.push((await check(a, "1.0.0")).update);
      assert.equal(offers.filter(Boolean).length, 1, "one slot");
      const first = offers.findIndex(Boolean);
      assert.equal(offers[first].version, "1.1.0");
      assert.equal(offers[first].signature, sig);
      assert.equal(offers[first].files_url, "/api/agent/packages/1.1.0/linux-x64");
      // The updated device comes back at 1.1.0: the slot frees and the next one is offered.
      await check(agents[first]!, "1.1.0");
      const rest = agents.filter((_, i) => i !== first);
      const next = [];
      for (const a of rest) next.push((await check(a, "1.0.0")).update);
      assert.equal(next.filter(Boolean).length, 1);
      // That one rolls back: the agent says so at its next check; the last device goes next.
      const second = rest[next.findIndex(Boolean)]!;
      await check(second, "1.0.0", {
        from: "1.0.0",
        to: "1.1.0",
        state: "rolled_back",
        reason: "did not connect",
      });
      const last = rest.find((a) => a !== second)!;
      assert.equal((await check(last, "1.0.0")).update?.version, "1.1.0");
      const r = (await json(`/api/agent-updates/rollouts/${rollout.body.id}`)).body;
      assert.deepEqual(r.counts, { succeeded: 1, rolled_back: 1, updating: 1 });
      // The device list shows version and update state.
      const devices = (await json("/api/devices")).body.devices;
      const row = devices.find((d: Json) => d.guid === guids[first]);
      assert.equal(row.agent.version, "1.1.0");
      assert.equal(row.agent.update_state, "succeeded");
      const rolled = devices.find((d: Json) => d.guid === second.state.guid!.toUpperCase());
      assert.equal(rolled.agent.update_state, "rolled_back");
      assert.equal(rolled.agent.last_error, "did not connect");
      // A failure report ends the last one; the rollout completes.
      const res = await last.call("POST", "/api/agent/update/report", {
        version: "1.1.0",
        state: "failed",
        error: "manifest signature does not verify",
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      assert.equal(
        (await json(`/api/agent-updates/rollouts/${rollout.body.id}`)).body.status,
        "completed",
      );

      // Policies: a device pinned to 1.0.0 with automatic updates is offered 1.0.0.
      const pin = await json(`/api/devices/${guids[first]}/agent-update-policy`, {
        method: "PUT",
        json: { channel: "pinned", pinned_version: "1.0.0", auto_update: true },
      });
      assert.equal(pin.status, 200, JSON.stringify(pin.body));
      assert.equal((await check(agents[first]!, "1.1.0")).update?.version, "1.0.0");
      const beta = await json(`/api/sites/${h.site.id}/agent-update-policy`, {
        method: "PUT",
        json: { channel: "beta" },
      });
      assert.equal(beta.status, 200);
      assert.equal(
        (await json(`/api/sites/${h.site.id}/agent-update-policy`)).body.desired_version,
        "1.1.0",
      );
      assert.equal(
        (await json(`/api/sites/${h.site.id}/agent-update-policy`, {
          method: "PUT",
          json: { channel: "pinned" },
        })).status,
        400,
      );
    } finally {
      await h.close();
    }
  },
});
