import assert from "node:assert/strict";
import { asciicastHeader, Recorder } from "./transcript.ts";

Deno.test("transcript: asciicast events with times, a character split across chunks kept whole", async () => {
  const chunks: Array<{ seq: number; text: string }> = [];
  const r = new Recorder(
    (seq, text) => {
      chunks.push({ seq, text });
      return Promise.resolve();
    },
    1_000,
    7,
  );
  const euro = new TextEncoder().encode("€"); // three bytes
  r.output(1_500, new Uint8Array([0x61, euro[0]!]));
  r.output(2_250, euro.subarray(1));
  r.resize(3_000, 120, 40);
  await r.flush();
  assert.equal(chunks.length, 1);
  assert.equal(chunks[0]!.seq, 7);
  const events = chunks[0]!.text.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(events, [[0.5, "o", "a"], [1.25, "o", "€"], [2, "r", "120x40"]]);
  assert.equal(r.pendingBytes, 0);
  await r.flush(); // nothing more to write
  assert.equal(chunks.length, 1);
});

Deno.test("transcript: a chunk is sealed once 64 KB gathered; a failing sink does not stop later chunks", async () => {
  const seqs: number[] = [];
  let fail = true;
  const errors: unknown[] = [];
  const r = new Recorder(
    (seq) => {
      if (fail) {
        fail = false;
        return Promise.reject(new Error("vault locked"));
      }
      seqs.push(seq);
      return Promise.resolve();
    },
    0,
    0,
    (err) => errors.push(err),
  );
  const line = new TextEncoder().encode("x".repeat(1000));
  for (let i = 0; i < 140; i++) r.output(i, line);
  await r.flush();
  assert.equal(errors.length, 1);
  assert.deepEqual(seqs, [1, 2]);
});

Deno.test("transcript: the header", () => {
  const h = JSON.parse(asciicastHeader({
    cols: 80,
    rows: 24,
    startedAt: new Date(Date.UTC(2026, 0, 5)),
    title: "ws-01 — alice",
  }));
  assert.deepEqual(h, {
    version: 2,
    width: 80,
    height: 24,
    timestamp: Date.UTC(2026, 0, 5) / 1000,
    title: "ws-01 — alice",
    env: { TERM: "xterm-256color" },
  });
});
