import assert from "node:assert/strict";
import { startTestEngine, type TestEngine } from "../../tests/helpers/test_engine.ts";
import { createTestDatabase } from "../../tests/helpers/test_db.ts";
import aegis from "../aegis/mod.ts";
import operators from "../operators/mod.ts";
import inventory from "../inventory/mod.ts";
import tokens from "../tokens/mod.ts";
import realtime, { agentStatusChanged, realtimeInternalsKey } from "./mod.ts";

const plugins = [aegis, operators, inventory, tokens, realtime];
const env = {
  BOREALIS_AGENT_OFFLINE_SECONDS: "60",
  BOREALIS_AGENT_OVERDUE_SECONDS: "600",
  BOREALIS_LIVENESS_FLUSH_SECONDS: "5",
};

async function seedDevices(t: TestEngine, n: number): Promise<string[]> {
  const guids = Array.from({ length: n }, () => crypto.randomUUID().toUpperCase());
  const now = new Date(t.clock.now());
  await t.engine.sql`
    insert into devices (guid, hostname, created_at)
    select g::uuid, 'host-' || i, ${now} from unnest(${guids}::text[]) with ordinality as x(g, i)`;
  return guids;
}

Deno.test("liveness: last_seen and heartbeat fields reach the database in one statement per flush", async () => {
  const t = await startTestEngine({ plugins, env });
  try {
    const rt = t.engine.service(realtimeInternalsKey);
    const guids = await seedDevices(t, 500);
    guids.forEach((g, i) =>
      rt.liveness.touch(g, { hostname: `host-${i + 1}`, siteId: null }, {
        cpu_percent: i % 100,
        operating_system: "Debian 12",
        details: { storage: [{ drive: "/", usage: 50 }] },
      })
    );
    // A second touch of one device merges into its pending row, not a second row.
    rt.liveness.touch(guids[0]!, { hostname: "host-1", siteId: null }, { memory_percent: 42 });
    assert.equal(rt.liveness.pendingCount, 500);
    const before = rt.liveness.flushStatements;
    await t.clock.advance(5000);
    await t.engine.tasks.idle();
    assert.equal(rt.liveness.flushStatements - before, 1, "one UPDATE for 500 devices");
    assert.equal(rt.liveness.pendingCount, 0);
    const rows = await t.engine.sql<{ n: number; os: number }[]>`
      select count(*)::int as n, count(*) filter (where operating_system = 'Debian 12')::int as os
      from devices where last_seen = ${new Date(t.clock.now() - 5000)}`;
    assert.deepEqual(rows[0], { n: 500, os: 500 });
    const [first] = await t.engine
      .sql`select cpu_percent, memory_percent, details from devices where guid = ${guids[0]!}`;
    assert.equal(first!.cpu_percent, 0);
    assert.equal(first!.memory_percent, 42);
    assert.deepEqual(first!.details.storage, [{ drive: "/", usage: 50 }]);
    // Nothing pending: no statement at all.
    await t.clock.advance(5000);
    await t.engine.tasks.idle();
    assert.equal(rt.liveness.flushStatements - before, 1);
  } finally {
    await t.close();
  }
});

Deno.test("liveness: online → offline → overdue on the injected clock, announced once each", async () => {
  const t = await startTestEngine({ plugins, env });
  try {
    const rt = t.engine.service(realtimeInternalsKey);
    const [guid] = await seedDevices(t, 1);
    const seen: string[] = [];
    t.engine.events.subscribe(
      agentStatusChanged,
      (e) => void seen.push(`${e.previous}->${e.status}`),
    );
    rt.liveness.touch(guid!, { hostname: "host-1", siteId: null });
    await t.clock.advance(5000);
    await t.engine.tasks.idle();
    assert.equal(rt.liveness.state(guid!), "online");
    await t.clock.advance(60_000);
    await t.engine.tasks.idle();
    assert.equal(rt.liveness.state(guid!), "offline");
    await t.clock.advance(600_000);
    await t.engine.tasks.idle();
    assert.equal(rt.liveness.state(guid!), "overdue");
    rt.liveness.touch(guid!, { hostname: "host-1", siteId: null });
    await t.clock.advance(5000);
    await t.engine.tasks.idle();
    assert.deepEqual(seen, [
      "offline->online",
      "online->offline",
      "offline->overdue",
      "overdue->online",
    ]);
  } finally {
    await t.close();
  }
});

Deno.test("liveness: after a restart, devices online before the outage get a grace period, and the final flush ran", async () => {
  const db = await createTestDatabase();
  try {
    const a = await startTestEngine({ plugins, env, db });
    const guids = await seedDevices(a, 3);
    const rt = a.engine.service(realtimeInternalsKey);
    rt.liveness.touch(guids[0]!, { hostname: "host-1", siteId: null });
    rt.liveness.touch(guids[1]!, { hostname: "host-2", siteId: null });
    // guids[2] was never seen.
    const stoppedAt = a.clock.now();
    await a.stop(); // graceful: flushes last_seen on the way out

    // The engine comes back 10 minutes later (beyond the 60 s offline threshold).
    const { ManualClock } = await import("../../core/clock.ts");
    const clock = new ManualClock(stoppedAt + 600_000);
    const b = await startTestEngine({ plugins, env, db, clock });
    try {
      const rows = await b.engine.sql<
        { n: number }[]
      >`select count(*)::int as n from devices where last_seen = ${new Date(stoppedAt)}`;
      assert.equal(rows[0]!.n, 2, "graceful shutdown flushed last_seen");
      const live = b.engine.service(realtimeInternalsKey).liveness;
      assert.equal(
        live.state(guids[0]!),
        "online",
        "grace: not offline merely because the engine was down",
      );
      assert.equal(live.state(guids[2]!), "offline");
      await clock.advance(61_000);
      assert.equal(live.state(guids[0]!), "offline", "the grace ends after one offline threshold");
    } finally {
      await b.stop();
    }
  } finally {
    await db.drop();
  }
});
