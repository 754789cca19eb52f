/**
 * Scheduler benchmark (issue 8): a quick run to N connected simulated agents — time
 * until every agent has received the signed script, until every agent has verified its
 * signature, and until every result is stored — and one scheduler tick with 1,000 jobs
 * due.
 *
 *   BENCH_SCHED_AGENTS=10000 deno run -A bench/scheduler_bench.ts
 *   BOREALIS_BENCH_DATABASE_URL=postgres://… deno run -A bench/scheduler_bench.ts
 *
 * Two processes: the engine (this one, on the real clock) and the simulated agents (a
 * child running this file with `--agents`), so each side has its own open-file limit
 * and its own event loop. Devices are seeded straight into the database with tokens
 * issued by the tokens service, so the run does not spend minutes enrolling. Each
 * simulated agent verifies the Ed25519 signature before answering, as a real agent
 * would; the agents process stamps the moment its last frame arrived and, separately,
 * the moment its last signature was verified (10,000 verifications on one event loop
 * take seconds of their own). Both processes share the machine's cores.
 *
 * Baselines measured in the same run: the same N agents receiving one plain realtime
 * message each (raw fan-out: no signing, no activity rows, no results), a tick with no
 * job due, and GET /health through the same engine.
 */
import { Agent, unb64 } from "../tests/agent/agent.ts";
import { AgentSocket } from "../tests/agent/socket.ts";

const N = Number(Deno.env.get("BENCH_SCHED_AGENTS") ?? 1000);
const JOBS = Number(Deno.env.get("BENCH_SCHED_JOBS") ?? 1000);

/** Reads lines from a stream. */
function lines(stream: ReadableStream<Uint8Array>): () => Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return async () => {
    for (;;) {
      const i = buf.indexOf("\n");
      if (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended: ${buf}`);
      buf += value;
    }
  };
}

// ---------------------------------------------------------------- agents process

async function agentsMain(dir: string, server: string, n: number): Promise<void> {
  const say = (s: string) => console.log(s);
  const next = lines(Deno.stdin.readable);
  const agents = [];
  for (let i = 0; i < n; i++) agents.push(await Agent.open({ server, hostname: `bench-${i}` }));
  await Deno.writeTextFile(
    `${dir}/keys.json`,
    JSON.stringify(
      agents.map((a) => ({ hostname: a.state.hostname, spki: a.state.public_key_spki })),
    ),
  );
  say("KEYS");
  if ((await next()) !== "GO") throw new Error("expected GO");
  const seeded = JSON.parse(await Deno.readTextFile(`${dir}/tokens.json`)) as {
    signing_key: string;
    agents: Array<
      { guid: string; access_token: string; expires_at: number; refresh_token: string }
    >;
  };
  const key = await crypto.subtle.importKey(
    "spki",
    unb64(seeded.signing_key) as BufferSource,
    { name: "Ed25519" },
    false,
    ["verify"],
  );
  let pings = 0, received = 0, verified = 0, bad = 0;
  const sockets: AgentSocket[] = [];
  for (let i = 0; i < agents.length; i += 250) {
    await Promise.all(
      agents.slice(i, i + 250).map(async (a, j) => {
        const t = seeded.agents[i + j]!;
        a.state.guid = t.guid;
        a.state.access_token = t.access_token;
        a.state.access_expires_at = t.expires_at;
        a.state.refresh_token = t.refresh_token;
        const s: AgentSocket = new AgentSocket(a, {
          server,
          heartbeat: false,
          reconnect: false,
          onFrame: async (f) => {
            if (f.type === "bench_ping") {
              if (++pings === n) say(`PINGS ${Date.now()}`);
              return;
            }
            if (f.type !== "quick_job_run") return;
            if (++received === n) say(`RECEIVED ${Date.now()}`);
            const d = f.data as Record<string, string>;
            const ok = await crypto.subtle.verify(
              { name: "Ed25519" },
              key,
              unb64(d.signature!) as BufferSource,
              unb64(d.script_content!) as BufferSource,
            );
            if (!ok) bad++;
            if (++verified === n) say(`VERIFIED ${Date.now()}`);
            s.send({
              type: "quick_job_result",
              data: {
                job_id: d.job_id,
                status: ok ? "Success" : "Failed",
                stdout: "ok\n",
                stderr: "",
              },
            });
          },
        });
        await s.start();
        sockets.push(s);
      }),
    );
  }
  say(`CONNECTED ${sockets.length}`);
  await next(); // STOP
  say(`BAD ${bad}`);
  for (const s of sockets) s.stop();
  Deno.exit(0);
}

// ---------------------------------------------------------------- engine process

async function engineMain(): Promise<void> {
  const benchUrl = Deno.env.get("BOREALIS_BENCH_DATABASE_URL");
  if (benchUrl) Deno.env.set("BOREALIS_TEST_DATABASE_URL", benchUrl);
  else Deno.env.delete("BOREALIS_TEST_DATABASE_URL");
  const { startTestEngine } = await import("../tests/helpers/test_engine.ts");
  const { systemClock } = await import("../core/clock.ts");
  const { schedulerPlugins } = await import("../plugins/scheduler/testing/helpers.ts");
  const { schedulerInternalsKey, schedulerKey } = await import("../plugins/scheduler/mod.ts");
  const { realtimeKey } = await import("../plugins/realtime/mod.ts");
  const { tokensKey } = await import("../plugins/tokens/mod.ts");
  const { assembliesService } = await import("../plugins/assemblies/mod.ts");
  const { inventoryKey } = await import("../plugins/inventory/mod.ts");
  const { parseAgentKey } = await import("../plugins/enrollment/identity_key.ts");
  type Clock = import("../core/clock.ts").ManualClock;

  const t = await startTestEngine({
    plugins: schedulerPlugins,
    // The real clock: the agents process signs its DPoP proofs with real time.
    clock: systemClock as unknown as Clock,
    env: {
      BOREALIS_AGENT_WS_ACCEPT_PER_SECOND: "100000",
      BOREALIS_AGENT_WS_ACCEPT_BURST: "100000",
      // Every simulated agent shares the loopback address.
      BOREALIS_HTTP_MAX_PENDING_PER_ADDRESS: "1000000",
      BOREALIS_AGENT_WS_ACCEPT_PER_ADDRESS_PER_SECOND: "0",
      BOREALIS_SCHEDULER_TICK_SECONDS: "3600",
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "borealis-sched-bench-" });
  let child: Deno.ChildProcess | undefined;
  try {
    const { port } = await t.engine.listen();
    const server = `http://127.0.0.1:${port}`;
    const sql = t.engine.sql;
    const tokens = t.engine.service(tokensKey);
    const site = await t.engine.service(inventoryKey).createSite("bench", "");
    const signing = await t.engine.service(schedulerInternalsKey).signer.ensure();

    child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--agents", dir, server, String(N)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const next = lines(child.stdout);
    const writer = child.stdin.getWriter();
    const tell = (s: string) => writer.write(new TextEncoder().encode(s + "\n"));
    const expect = async (word: string) => {
      for (;;) {
        const line = await next();
        if (line.startsWith(word)) return line.slice(word.length).trim();
      }
    };

    console.log(`seeding ${N} agents…`);
    await expect("KEYS");
    const keys = JSON.parse(await Deno.readTextFile(`${dir}/keys.json`)) as Array<
      { hostname: string; spki: string }
    >;
    const now = new Date();
    const rows = [];
    for (const k of keys) {
      rows.push({ ...k, key: (await parseAgentKey(unb64(k.spki)))!, guid: crypto.randomUUID() });
    }
    for (let i = 0; i < rows.length; i += 2000) {
      await sql`insert into devices ${
        sql(
          rows.slice(i, i + 2000).map((r) => ({
            guid: r.guid,
            hostname: r.hostname,
            site_id: site.id,
            created_at: now,
            last_enrollment_at: now,
            ssl_key_fingerprint: r.key.fingerprint,
            key_added_at: now,
            token_version: 1,
            status: "active",
            status_changed_at: now,
          })),
        )
      }`;
    }
    const issued = [];
    for (const r of rows) {
      const access = await tokens.access.issue({
        guid: r.guid,
        ssl_key_fingerprint: r.key.fingerprint,
        token_version: 1,
        jkt: r.key.jkt,
      });
      issued.push({
        guid: r.guid.toUpperCase(),
        access_token: access.token,
        expires_at: Date.now() + access.expiresIn * 1000,
        refresh_token: await tokens.refresh.issue(r.guid, r.key.jkt),
      });
    }
    await Deno.writeTextFile(
      `${dir}/tokens.json`,
      JSON.stringify({ signing_key: signing.spki, agents: issued }),
    );
    console.log(`connecting ${N} sockets from a second process…`);
    const connectStart = performance.now();
    await tell("GO");
    const connected = Number(await expect("CONNECTED"));
    console.log(
      `connected ${connected} in ${((performance.now() - connectStart) / 1000).toFixed(1)} s`,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const guids = issued.map((a) => a.guid);

    // Baseline: one plain realtime message to every agent.
    const channel = t.engine.service(realtimeKey);
    const pingStart = Date.now();
    for (const g of guids) await channel.send(g, { type: "bench_ping", data: {} });
    const pingMs = Number(await expect("PINGS")) - pingStart;

    // Quick run to every agent.
    const rec = await t.engine.service(assembliesService).create({
      domain: "user_created",
      display_name: "bench",
      assembly_kind: "script",
      assembly_type: "bash",
      payload: "echo ok\n",
    });
    const qrStart = Date.now();
    const result = await t.engine.service(schedulerKey).quickRun({
      assemblyGuid: rec.assembly_guid,
      deviceGuids: guids,
      requestedBy: "bench",
    });
    const dispatchedMs = Date.now() - qrStart;
    // Both stamps come from the agents process, in this order, on the same machine clock.
    const agentsDone = (async () => {
      const receivedAt = Number(await expect("RECEIVED"));
      return { receivedAt, verifiedAt: Number(await expect("VERIFIED")) };
    })();
    let stored = 0;
    while (Date.now() - qrStart < 180_000) {
      const [row] = await sql<{ n: number }[]>`
        select count(*)::int as n from activity_history where quick_job_id = ${result.jobId}
          and status = 'Success'`;
      stored = row!.n;
      if (stored >= N) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const storedMs = Date.now() - qrStart;
    const { receivedAt, verifiedAt } = await agentsDone;
    const receivedMs = receivedAt - qrStart;
    const verifiedMs = verifiedAt - qrStart;

    // One tick with JOBS jobs due (each targeting one device), against a tick with none due.
    const runs = t.engine.service(schedulerInternalsKey).runs;
    const emptyStart = performance.now();
    await runs.tick();
    const emptyTickMs = performance.now() - emptyStart;
    await runs.idle();
    const slot = new Date(Date.now() - 60_000);
    const jobRows = Array.from({ length: JOBS }, (_, i) => ({
      name: `bench job ${i}`,
      components: sql.json([{ type: "script", assembly_guid: rec.assembly_guid }]),
      targets: sql.json([{
        kind: "device",
        device_guid: guids[i % guids.length],
        hostname: `bench-${i % guids.length}`,
        site_id: site.id,
      }]),
      schedule_type: "once",
      start_ts: slot,
      created_at: now,
      updated_at: now,
    }));
    for (let i = 0; i < jobRows.length; i += 500) {
      await sql`insert into scheduled_jobs ${sql(jobRows.slice(i, i + 500) as never)}`;
    }
    const tickStart = performance.now();
    await runs.tick();
    const tickMs = performance.now() - tickStart;
    const [occ] = await sql<
      { n: number }[]
    >`select count(*)::int as n from scheduled_job_occurrences`;
    await runs.idle();

    // Baseline: GET /health through the same engine.
    const hStart = performance.now();
    let hCount = 0;
    while (performance.now() - hStart < 2000) {
      const r = await t.request("/health");
      await r.body?.cancel();
      hCount++;
    }
    const healthOps = hCount / ((performance.now() - hStart) / 1000);
    await tell("STOP");
    const bad = Number(await expect("BAD"));

    const backend = benchUrl ? "PostgreSQL server" : "embedded PGlite";
    console.log(
      `\nscheduler bench: ${N} agents in a second process, ${backend}, ${navigator.hardwareConcurrency} cores`,
    );
    const vsBaseline = (ms: number) =>
      `baseline plain realtime fan-out ${(pingMs / 1000).toFixed(2)} s, ratio ${
        (ms / pingMs).toFixed(2)
      }`;
    console.log(
      `quick_run to ${N} agents: every agent has received the frame in ${
        (receivedMs / 1000).toFixed(2)
      } s ` +
        `(aim 5 s for 10,000; ${vsBaseline(receivedMs)}); quickRun() had sent everything after ${
          (dispatchedMs / 1000).toFixed(2)
        } s`,
    );
    console.log(
      `quick_run to ${N} agents: every agent has verified the signature in ${
        (verifiedMs / 1000).toFixed(2)
      } s ` +
        `(${vsBaseline(verifiedMs)}; all ${N} verifications run in the one agents process)`,
    );
    console.log(
      `quick_run to ${N} agents: every result stored in ${(storedMs / 1000).toFixed(2)} s ` +
        `(aim 10 s for 10,000); ${stored}/${N} stored, ${bad} bad signatures`,
    );
    console.log(
      `scheduler tick with ${JOBS} jobs due: ${tickMs.toFixed(0)} ms (${
        occ!.n
      } occurrences opened; ` +
        `baseline tick with none due ${emptyTickMs.toFixed(1)} ms, ratio ${
          (tickMs / Math.max(emptyTickMs, 0.1)).toFixed(1)
        })`,
    );
    console.log(
      `baseline GET /health through the same engine: ${healthOps.toFixed(0)} ops/s (sequential)`,
    );
  } finally {
    if (child) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
    }
    await t.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--agents") {
    await agentsMain(Deno.args[1]!, Deno.args[2]!, Number(Deno.args[3]));
  } else {
    await engineMain();
  }
}
