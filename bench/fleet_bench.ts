/**
 * Fleet-wide quick run (issue 13): N connected simulated agents, one script sent to all of
 * them by ONE request (`all_devices: true`, targets resolved on the server), against the
 * same devices sent the way a client had to before — hostname batches of 5,000, one
 * request each, all in flight at once. Reports, for each, the time from the request until
 * every agent has received its signed script.
 *
 *   BENCH_FLEET_AGENTS=19000 BOREALIS_BENCH_DATABASE_URL=postgres://… deno run -A bench/fleet_bench.ts
 *
 * Two processes: the engine (this one) and the simulated agents (a child running this file
 * with `--agents`), each with its own open-file limit (20,000 here, so 19,000 agents is
 * about the ceiling of one agents process) and event loop; both share the machine's
 * cores. Devices are seeded straight into the database with tokens from the tokens
 * service. The agents do not answer (the fan-out is measured, not the result path).
 * Baseline in the same run: one plain realtime message to every agent.
 */
import { Agent } from "../tests/agent/agent.ts";
import { AgentSocket } from "../tests/agent/socket.ts";

const N = Number(Deno.env.get("BENCH_FLEET_AGENTS") ?? 2000);
const BATCH = 5000;

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
  for (let i = 0; i < n; i++) agents.push(await Agent.open({ server, hostname: `fleet-${i}` }));
  await Deno.writeTextFile(
    `${dir}/keys.json`,
    JSON.stringify(
      agents.map((a) => ({ hostname: a.state.hostname, spki: a.state.public_key_spki })),
    ),
  );
  say("KEYS");
  if ((await next()) !== "GO") throw new Error("expected GO");
  const seeded = JSON.parse(await Deno.readTextFile(`${dir}/tokens.json`)) as Array<
    { guid: string; access_token: string; expires_at: number; refresh_token: string }
  >;
  // Frames of each round (a round = one script to every agent) are counted per job.
  const received = new Map<string, number>();
  let pings = 0;
  const sockets: AgentSocket[] = [];
  for (let i = 0; i < agents.length; i += 250) {
    await Promise.all(
      agents.slice(i, i + 250).map(async (a, j) => {
        const t = seeded[i + j]!;
        Object.assign(a.state, {
          guid: t.guid,
          access_token: t.access_token,
          access_expires_at: t.expires_at,
          refresh_token: t.refresh_token,
        });
        const s: AgentSocket = new AgentSocket(a, {
          server,
          heartbeat: false,
          reconnect: false,
          onFrame: (f) => {
            if (f.type === "bench_ping") {
              if (++pings === n) say(`RECEIVED ping ${Date.now()}`);
              return;
            }
            if (f.type !== "quick_job_run") return;
            const d = f.data as { job_id: string; context: { quick_job_id: string } };
            // All requests of one round share a label the engine put in the script name.
            const round = (f.data as { script_name: string }).script_name;
            const count = (received.get(round) ?? 0) + 1;
            received.set(round, count);
            if (count === n) say(`RECEIVED ${round} ${Date.now()}`);
            // No result: a real script takes a while, and 19,000 instant answers would
            // measure the result path, not the fan-out.
            void d;
          },
        });
        await s.start();
        sockets.push(s);
      }),
    );
  }
  say(`CONNECTED ${sockets.length}`);
  await next(); // STOP
  for (const s of sockets) s.stop();
  Deno.exit(0);
}

// ---------------------------------------------------------------- engine process

async function engineMain(): Promise<void> {
  const benchUrl = Deno.env.get("BOREALIS_BENCH_DATABASE_URL");
  if (benchUrl) Deno.env.set("BOREALIS_TEST_DATABASE_URL", benchUrl);
  else Deno.env.delete("BOREALIS_TEST_DATABASE_URL");
  const { startTestEngine } = await import("../tests/helpers/test_engine.ts");
  const { createOperator } = await import("../tests/helpers/operators.ts");
  const { systemClock } = await import("../core/clock.ts");
  const { builtinPlugins } = await import("../plugins/mod.ts");
  const { realtimeKey } = await import("../plugins/realtime/mod.ts");
  const { tokensKey } = await import("../plugins/tokens/mod.ts");
  const { assembliesService } = await import("../plugins/assemblies/mod.ts");
  const { inventoryKey } = await import("../plugins/inventory/mod.ts");
  const { parseAgentKey } = await import("../plugins/enrollment/identity_key.ts");
  const { unb64 } = await import("../tests/agent/agent.ts");
  type Clock = import("../core/clock.ts").ManualClock;

  const t = await startTestEngine({
    plugins: builtinPlugins,
    clock: systemClock as unknown as Clock,
    env: {
      BOREALIS_AGENT_WS_ACCEPT_PER_SECOND: "100000",
      BOREALIS_AGENT_WS_ACCEPT_BURST: "100000",
      BOREALIS_SCHEDULER_TICK_SECONDS: "3600",
      BOREALIS_DB_POOL_SIZE: "20",
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "borealis-fleet-bench-" });
  let child: Deno.ChildProcess | undefined;
  try {
    const { port } = await t.engine.listen();
    const server = `http://127.0.0.1:${port}`;
    const sql = t.engine.sql;
    const tokens = t.engine.service(tokensKey);
    const site = await t.engine.service(inventoryKey).createSite("fleet", "");
    const admin = await createOperator(t, { role: "Admin" });

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
    await Deno.writeTextFile(`${dir}/tokens.json`, JSON.stringify(issued));
    console.log(`connecting ${N} sockets from a second process…`);
    const connectStart = performance.now();
    await tell("GO");
    const connected = Number(await expect("CONNECTED"));
    console.log(
      `connected ${connected} in ${((performance.now() - connectStart) / 1000).toFixed(1)} s`,
    );
    await new Promise((r) => setTimeout(r, 3000));

    const channel = t.engine.service(realtimeKey);
    const pingStart = Date.now();
    for (const a of issued) await channel.send(a.guid, { type: "bench_ping", data: {} });
    const pingMs = Number((await expect("RECEIVED ping")).split(" ")[0]) - pingStart;

    const assemblies = t.engine.service(assembliesService);
    const script = async (label: string) =>
      (await assemblies.create({
        domain: "user_created",
        display_name: label,
        assembly_kind: "script",
        assembly_type: "bash",
        payload: "echo ok\n",
      })).assembly_guid;
    const post = async (body: Record<string, unknown>) => {
      const res = await fetch(`${server}/api/scripts/quick_run`, {
        method: "POST",
        headers: { ...admin.headers, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const out = await res.json();
      if (res.status !== 200) throw new Error(`quick_run ${res.status}: ${JSON.stringify(out)}`);
      return out;
    };
    const round = async (label: string, send: (guid: string) => Promise<void>) => {
      const guid = await script(label);
      await new Promise((r) => setTimeout(r, 2000)); // let the previous round's results settle
      const start = Date.now();
      const arrived = expect(`RECEIVED ${label}`);
      await send(guid);
      const answeredMs = Date.now() - start;
      return { receivedMs: Number(await arrived) - start, answeredMs };
    };
    const hostnames = keys.map((k) => k.hostname);
    const batches = Math.ceil(N / BATCH);
    // Batches first, then the one request, then batches again: both orders are measured.
    const batched1 = await round("batched-1", async (guid) => {
      await Promise.all(
        Array.from(
          { length: batches },
          (_, i) =>
            post({ assembly_guid: guid, hostnames: hostnames.slice(i * BATCH, (i + 1) * BATCH) }),
        ),
      );
    });
    const fleet = await round("fleet", async (guid) => {
      await post({ assembly_guid: guid, all_devices: true });
    });
    const batched2 = await round("batched-2", async (guid) => {
      await Promise.all(
        Array.from(
          { length: batches },
          (_, i) =>
            post({ assembly_guid: guid, hostnames: hostnames.slice(i * BATCH, (i + 1) * BATCH) }),
        ),
      );
    });
    await tell("STOP");

    const backend = benchUrl ? "PostgreSQL server" : "embedded PGlite";
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    console.log(
      `\nfleet bench: ${N} agents in a second process, ${backend}, ${navigator.hardwareConcurrency} cores`,
    );
    console.log(
      `quick_run with all_devices (one request): every agent has its script after ${
        s(fleet.receivedMs)
      } (the request answered after ${s(fleet.answeredMs)}; aim 1.5 s for 19,000)`,
    );
    for (const [name, b] of [["before", batched1], ["after", batched2]] as const) {
      console.log(
        `baseline ${batches} hostname requests of ≤ ${BATCH} at once (${name}): every agent after ${
          s(b.receivedMs)
        } (answered after ${s(b.answeredMs)})`,
      );
    }
    console.log(`baseline plain realtime message to every agent: ${s(pingMs)}`);
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
