import assert from "node:assert/strict";
import { startTestEngine } from "borealis/core/testing.ts";
import example, { noteCreated, notesService } from "./mod.ts";

Deno.test("example plugin: notes round trip through HTTP, events and the service", async () => {
  const t = await startTestEngine({ plugins: [example], env: { BOREALIS_EXAMPLE_MAX_NOTES: "2" } });
  try {
    const seen: string[] = [];
    t.engine.events.subscribe(noteCreated, (n) => void seen.push(n.text));

    const created = await t.request("/api/example/notes", {
      method: "POST",
      json: { text: "  hello  " },
    });
    assert.equal(created.status, 201);
    const note = await created.json();
    assert.equal(note.text, "hello");
    assert.deepEqual(seen, ["hello"]);
    assert.equal(await t.engine.service(notesService).count(), 1);

    await t.request("/api/example/notes", { method: "POST", json: { text: "second" } });
    const full = await t.request("/api/example/notes", { method: "POST", json: { text: "third" } });
    assert.equal(full.status, 409);
    assert.equal((await full.json()).error, "board_full");

    const list = await (await t.request("/api/example/notes?limit=1")).json();
    assert.equal(list.items.length, 1);
    assert.equal(list.items[0].text, "second");

    const del = await t.request(`/api/example/notes/${note.id}`, { method: "DELETE" });
    assert.equal(del.status, 204);
    const again = await t.request(`/api/example/notes/${note.id}`, { method: "DELETE" });
    assert.equal(again.status, 404);
  } finally {
    await t.close();
  }
});

Deno.test("example plugin: bad input is a 400 listing each field and changes nothing", async () => {
  const t = await startTestEngine({ plugins: [example] });
  try {
    for (
      const body of [{}, { text: "" }, { text: "x".repeat(501) }, { text: "ok", extra: 1 }, {
        text: 5,
      }]
    ) {
      const res = await t.request("/api/example/notes", { method: "POST", json: body });
      assert.equal(res.status, 400, JSON.stringify(body));
      const err = await res.json();
      assert.equal(err.error, "validation_failed");
      assert.ok(Array.isArray(err.details) && err.details.length >= 1);
    }
    const bad = await t.request("/api/example/notes", {
      method: "POST",
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    assert.equal(bad.status, 400);
    const q = await t.request("/api/example/notes?limit=0");
    assert.equal(q.status, 400);
    assert.equal(await t.engine.service(notesService).count(), 0);
  } finally {
    await t.close();
  }
});

Deno.test("example plugin: the prune task removes old notes on the injected clock", async () => {
  const t = await startTestEngine({
    plugins: [example],
    env: { BOREALIS_EXAMPLE_RETENTION_DAYS: "1" },
  });
  try {
    await t.request("/api/example/notes", { method: "POST", json: { text: "old" } });
    await t.clock.advance(2 * 86_400_000);
    await t.engine.tasks.idle();
    assert.equal(await t.engine.service(notesService).count(), 0);
  } finally {
    await t.close();
  }
});
