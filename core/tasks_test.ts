import assert from "node:assert/strict";
import { ManualClock } from "./clock.ts";
import { createLogSink } from "./log.ts";
import { TaskScheduler } from "./tasks.ts";
import { definePlugin } from "./plugin.ts";
import { createTestDatabase, serverUrl } from "../tests/helpers/test_db.ts";
import { startTestEngine } from "../tests/helpers/test_engine.ts";

const log = createLogSink({ stderr: false }).logger("tasks");

Deno.test("tasks: a slow run never overlaps itself; skipped ticks are counted", async () => {
  const clock = new ManualClock();
  const tasks = new TaskScheduler(clock, log);
  let release: () => void = () => {};
  let started = 0;
  tasks.every("slow", 1000, () => {
    started++;
    return new Promise<void>((r) => (release = r));
  });
  tasks.start();
  await clock.advance(1000);
  assert.equal(started, 1);
  await clock.advance(3000); // three more ticks while the first run is still going
  assert.equal(started, 1);
  release();
  await tasks.idle();
  await clock.advance(1000);
  assert.equal(started, 2);
  release();
  const [stats] = tasks.stats();
  assert.equal(stats!.skippedOverlaps, 3);
  assert.equal(stats!.runs, 2);
  await tasks.stop();
});

Deno.test("tasks: a throwing run is logged and counted and the task keeps its schedule", async () => {
  const clock = new ManualClock();
  const tasks = new TaskScheduler(clock, log);
  let calls = 0;
  tasks.every("flaky", 500, () => {
    calls++;
    if (calls % 2 === 1) throw new Error("odd call");
  });
  tasks.start();
  await clock.advance(2000);
  await tasks.idle();
  const [stats] = tasks.stats();
  assert.equal(calls, 4);
  assert.equal(stats!.failures, 2);
  assert.equal(stats!.lastError, "odd call");
  await tasks.stop();
  await clock.advance(5000);
  assert.equal(calls, 4, "stopped tasks do not run");
});

Deno.test("tasks: cron expressions follow the injected clock and time zone", async () => {
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 0, 0, 0));
  const tasks = new TaskScheduler(clock, log);
  const at: string[] = [];
  tasks.cron("daily", "0 9 * * *", () => void at.push(new Date(clock.now()).toISOString()), {
    timezone: "Europe/Berlin",
  });
  tasks.start();
  await clock.advance(3 * 86_400_000);
  // 09:00 in Berlin is 08:00 UTC in March before the DST change.
  assert.deepEqual(at, [
    "2026-03-01T08:00:00.000Z",
    "2026-03-02T08:00:00.000Z",
    "2026-03-03T08:00:00.000Z",
  ]);
  await tasks.stop();
});

Deno.test({
  name: "tasks: a cluster singleton runs on one engine of two; the other takes over when it stops",
  ignore: !serverUrl,
  async fn() {
    const db = await createTestDatabase();
    const runs: string[] = [];
    const plugin = (label: string) =>
      definePlugin({
        name: "ticker",
        setup(ctx) {
          ctx.tasks.every("tick", 1000, () => void runs.push(label), { clusterSingleton: true });
        },
      });
    const a = await startTestEngine({ plugins: [plugin("a")], db });
    const b = await startTestEngine({ plugins: [plugin("b")], db });
    try {
      for (let i = 0; i < 5; i++) {
        await a.clock.advance(1000);
        await a.engine.tasks.idle();
        await b.clock.advance(1000);
        await b.engine.tasks.idle();
      }
      assert.equal(runs.length, 5);
      assert.equal(new Set(runs).size, 1, `one runner, got ${runs.join(",")}`);
      const leader = runs[0]!;
      const [first, second] = leader === "a" ? [a, b] : [b, a];
      await first.stop();
      await second.clock.advance(1000);
      await second.engine.tasks.idle();
      assert.equal(runs.at(-1), leader === "a" ? "b" : "a");
    } finally {
      await a.stop();
      await b.stop();
      await db.drop();
    }
  },
});
