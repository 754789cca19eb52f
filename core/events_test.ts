import assert from "node:assert/strict";
import { eventKey } from "./events.ts";
import { definePlugin } from "./plugin.ts";
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
