import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { FileHost } from "./files.ts";
import { fromBase64, toBase64 } from "./offsets.ts";
import { Recorder, testGrants } from "./testing.ts";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const of = (id: string) => (f: { data?: unknown }) =>
  (f.data as { transfer_id?: string })?.transfer_id === id;

Deno.test("files: a download is hashed first, then streamed one window at a time", async () => {
  const g = await testGrants();
  const rec = new Recorder();
  const host = new FileHost({ send: rec.send, grants: g.verifier });
  const dir = await Deno.makeTempDir();
  try {
    const data = new Uint8Array(200_000).map((_, i) => (i * 31) & 0xff);
    await Deno.writeFile(join(dir, "a.bin"), data);
    const d = await g.grant("file_download", {
      path: join(dir, "a.bin"),
      chunk: 16384,
      window: 65536,
      max_bytes: 1e9,
    });
    host.onFrame({ type: "file_download", data: d });
    const meta = await rec.waitFor((f) => f.type === "file_meta");
    assert.deepEqual(
      {
        size: (meta.data as { size: number }).size,
        sha256: (meta.data as { sha256: string }).sha256,
      },
      { size: data.length, sha256: sha256(data) },
    );
    const chunks = () => rec.data("file_chunk").filter((c) => c.transfer_id === d.id);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(chunks().length, 4, "one window of 4 chunks, then it waits");
    for (let acked = 0; !rec.frames.some((f) => f.type === "file_done");) {
      const sent = chunks().reduce((n, c) => n + fromBase64(String(c.data)).length, 0);
      if (sent > acked) {
        host.onFrame({ type: "file_ack", data: { transfer_id: d.id, offset: acked = sent } });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const got = new Uint8Array(data.length);
    for (const c of chunks()) got.set(fromBase64(String(c.data)), Number(c.offset));
    assert.deepEqual(got, data);
    const done = rec.data("file_done")[0]!;
    assert.equal(done.sha256, sha256(data));

    // Refusals carry codes the engine maps to HTTP answers.
    for (
      const [path, code] of [[join(dir, "none"), "not_found"], [dir, "is_directory"], [
        "relative",
        "invalid_path",
      ]]
    ) {
      const x = await g.grant("file_download", { path, max_bytes: 1e9 });
      host.onFrame({ type: "file_download", data: x });
      const err = await rec.waitFor((f) => f.type === "file_error" && of(x.id)(f));
      assert.equal((err.data as { code: string }).code, code);
    }
    const big = await g.grant("file_download", { path: join(dir, "a.bin"), max_bytes: 1000 });
    host.onFrame({ type: "file_download", data: big });
    const tooBig = await rec.waitFor((f) => f.type === "file_error" && of(big.id)(f));
    assert.equal((tooBig.data as { code: string }).code, "too_large");
  } finally {
    await host.closeAll();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("files: an upload lands only after its checksum matches; out-of-order chunks are put in order", async () => {
  const g = await testGrants();
  const rec = new Recorder();
  const host = new FileHost({ send: rec.send, grants: g.verifier });
  const dir = await Deno.makeTempDir();
  try {
    const target = join(dir, "up.bin");
    const data = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
    const u = await g.grant("file_upload", {
      path: target,
      size: data.length,
      overwrite: false,
      window: 1 << 20,
    });
    host.onFrame({ type: "file_upload", data: u });
    await rec.waitFor((f) => f.type === "file_ready");
    const parts = [[50_000, 100_000], [0, 50_000]] as const;
    for (const [a, b] of parts) {
      host.onFrame({
        type: "file_data",
        data: { transfer_id: u.id, offset: a, data: toBase64(data.subarray(a, b)) },
      });
    }
    await rec.waitFor((f) =>
      f.type === "file_written" && (f.data as { offset: number }).offset === data.length
    );
    assert.ok(!(await Deno.stat(target).catch(() => null)), "not in place before the commit");
    host.onFrame({
      type: "file_commit",
      data: { transfer_id: u.id, size: data.length, sha256: sha256(data) },
    });
    await rec.waitFor((f) => f.type === "file_done");
    assert.deepEqual(await Deno.readFile(target), data);

    // Exists without overwrite; a checksum mismatch removes the temporary file.
    const again = await g.grant("file_upload", { path: target, overwrite: false });
    host.onFrame({ type: "file_upload", data: again });
    const exists = await rec.waitFor((f) => f.type === "file_error" && of(again.id)(f));
    assert.equal((exists.data as { code: string }).code, "exists");
    const wrong = await g.grant("file_upload", { path: join(dir, "w.bin"), overwrite: false });
    host.onFrame({ type: "file_upload", data: wrong });
    await rec.waitFor((f) => f.type === "file_ready" && of(wrong.id)(f));
    host.onFrame({
      type: "file_data",
      data: { transfer_id: wrong.id, offset: 0, data: toBase64(data.subarray(0, 10)) },
    });
    host.onFrame({
      type: "file_commit",
      data: { transfer_id: wrong.id, size: 10, sha256: "0".repeat(64) },
    });
    const mismatch = await rec.waitFor((f) => f.type === "file_error" && of(wrong.id)(f));
    assert.equal((mismatch.data as { code: string }).code, "checksum_mismatch");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["up.bin"]);
  } finally {
    await host.closeAll();
    await Deno.remove(dir, { recursive: true });
  }
});
