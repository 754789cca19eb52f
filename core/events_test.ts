import assert from "node:assert/strict";
import { eventKey } from "./events.ts";
import { definePlugin } from "./plugin.ts";
import { notice, operatorNotice } from "./notices.ts";
import { createTestDatabase, serverUrl } from "../tests/helpers/test_db.ts";
import { startTestEngine } from "../tests/helpers/test_engine.ts";

const ping = eventKey<{ n: number; blob?: string }>("test.ping");
const quiet = definePlugin({ name: "quiet", setup() {} });

Deno.test("events: local subscribers get events at once; a failing handler does not stop the others", async () => {
  const t = await startTestEngine({ plugins: [quiet] });
  try {
    const got: number[] = [];
    t.engine.events.subscribe(ping, () => {
      throw new Error("bad handler");
    });
    const off = t.engine.events.subscribe(ping, (p, meta) => {
      assert.equal(meta.local, true);
      got.push(p.n);
    });
    await t.engine.events.publish(ping, { n: 1 });
    off();
    await t.engine.events.publish(ping, { n: 2 });
    assert.deepEqual(got, [1]);
    assert.equal(t.engine.events.handlerErrors, 2);
  } finally {
    await t.close();
  }
});

Deno.test({
  name:
    "events: an event published on one engine instance reaches a subscriber on another (small and large)",
  ignore: !serverUrl,
  async fn() {
    const db = await createTestDatabase();
    const a = await startTestEngine({ plugins: [quiet], db });
    const b = await startTestEngine({ plugins: [quiet], db });
    try {
      assert.equal(a.engine.events.bridged, true);
      const received: Array<{ n: number; size: number; local: boolean }> = [];
      let done: () => void = () => {};
      const both = new Promise<void>((r) => (done = r));
      b.engine.events.subscribe(ping, (p, meta) => {
        received.push({ n: p.n, size: p.blob?.length ?? 0, local: meta.local });
        if (received.length === 2) done();
      });
      await a.engine.events.publish(ping, { n: 1 });
      await a.engine.events.publish(ping, { n: 2, blob: "x".repeat(20_000) }); // beyond NOTIFY's 8000 bytes
      const timeout = setTimeout(() => done(), 5000);
      await both;
      clearTimeout(timeout);
      assert.deepEqual(received, [{ n: 1, size: 0, local: false }, {
        n: 2,
        size: 20_000,
        local: false,
      }]);
    } finally {
      await a.stop();
      await b.stop();
      await db.drop();
    }
  },
});

Deno.test({
  name:
    "events: an operator notice sent with an event reaches its subscribers here and on another instance in one publish",
  ignore: !serverUrl,
  async fn() {
    const db = await createTestDatabase();
    const a = await startTestEngine({ plugins: [quiet], db });
    const b = await startTestEngine({ plugins: [quiet], db });
    try {
      const seen: string[] = [];
      let done: () => void = () => {};
      const four = new Promise<void>((r) => (done = r));
      const record = (what: string) => {
        seen.push(what);
        if (seen.filter((s) => s.startsWith("b:")).length === 4) done();
      };
      for (const [who, t] of [["a", a], ["b", b]] as const) {
        t.engine.events.subscribe(ping, (p) => record(`${who}:ping ${p.n}`));
        t.engine.events.subscribe(
          operatorNotice,
          (n) => record(`${who}:notice ${n.type} ${(n.data as { n: number }).n}`),
        );
      }
      const notices: string[] = [];
      b.engine.events.subscribe(eventKey("kernel.operator_notice"), () => void notices.push("x"));
      for (const n of [1, 2]) {
        const blob = n === 2 ? "x".repeat(20_000) : undefined; // the second is stored by reference
        await a.engine.events.publish(ping, { n, blob }, {
          with: notice({ topic: "test", type: "pinged", data: { n }, site_id: null }),
        });
      }
      const timeout = setTimeout(() => done(), 5000);
      await four;
      clearTimeout(timeout);
      assert.deepEqual(seen.filter((s) => s.startsWith("a:")), [
        "a:ping 1",
        "a:notice pinged 1",
        "a:ping 2",
        "a:notice pinged 2",
      ]);
      assert.deepEqual(seen.filter((s) => s.startsWith("b:")).sort(), [
        "b:notice pinged 1",
        "b:notice pinged 2",
        "b:ping 1",
        "b:ping 2",
      ]);
      assert.equal(notices.length, 2);
    } finally {
      await a.stop();
      await b.stop();
      await db.drop();
    }
  },
});
