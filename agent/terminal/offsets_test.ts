import assert from "node:assert/strict";
import fc from "fast-check";
import { fromBase64, OffsetAssembler, toBase64 } from "./offsets.ts";

const bytes = (...n: number[]) => new Uint8Array(n);
const flat = (parts: Uint8Array[]) => [...parts.flatMap((p) => [...p])];

Deno.test("offsets: in order, duplicates, overlaps and early chunks come out once, in order", () => {
  const a = new OffsetAssembler(0, 100);
  assert.deepEqual(flat(a.push(0, bytes(1, 2, 3)).ready), [1, 2, 3]);
  assert.equal(a.push(0, bytes(1, 2, 3)).duplicate, true);
  // Overlapping resend: only the new tail comes out.
  assert.deepEqual(flat(a.push(2, bytes(3, 4, 5)).ready), [4, 5]);
  // Early: held until the gap is filled.
  const early = a.push(7, bytes(8, 9));
  assert.deepEqual(early.ready, []);
  assert.equal(a.heldBytes, 2);
  assert.deepEqual(flat(a.push(5, bytes(6, 7)).ready), [6, 7, 8, 9]);
  assert.equal(a.next, 9);
  assert.equal(a.heldBytes, 0);
});

Deno.test("offsets: an early chunk beyond the bound is refused, not held", () => {
  const a = new OffsetAssembler(0, 4);
  assert.equal(a.push(10, bytes(1, 2, 3)).overflow, false);
  assert.equal(a.push(20, bytes(1, 2)).overflow, true);
  assert.equal(a.heldBytes, 3);
  a.reset(50);
  assert.equal(a.heldBytes, 0);
  assert.equal(a.next, 50);
});

Deno.test("offsets: any delivery order with resends reassembles the stream exactly", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 }),
      fc.array(fc.nat(), { maxLength: 60 }),
      (data, cuts, order) => {
        const chunks: Array<[number, Uint8Array]> = [];
        let at = 0;
        for (let i = 0; at < data.length; i++) {
          const len = cuts[i % cuts.length]!;
          chunks.push([at, data.subarray(at, at + len)]);
          at += len;
        }
        // Shuffle deterministically and add resends of random chunks.
        const sent = [...chunks];
        for (const o of order) sent.push(chunks[o % chunks.length]!);
        for (let i = sent.length - 1; i > 0; i--) {
          const j = (order[i % Math.max(1, order.length)] ?? i) % (i + 1);
          [sent[i], sent[j]] = [sent[j]!, sent[i]!];
        }
        const a = new OffsetAssembler(0, data.length);
        const out: number[] = [];
        for (const [o, c] of sent) out.push(...flat(a.push(o, c).ready));
        assert.deepEqual(out, [...data]);
        assert.equal(a.heldBytes, 0);
      },
    ),
  );
});

Deno.test("offsets: base64 round trip", () => {
  const all = new Uint8Array(256).map((_, i) => i);
  assert.deepEqual(fromBase64(toBase64(all)), all);
  assert.throws(() => fromBase64("not base64!"));
});
