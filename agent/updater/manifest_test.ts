import assert from "node:assert/strict";
import { join } from "node:path";
import {
  downloadVerified,
  formatManifest,
  type Manifest,
  parseManifest,
  platformFiles,
  sha256Hex,
  verifyManifestSignature,
} from "./manifest.ts";

const gzip = async (b: Uint8Array) =>
  new Uint8Array(
    await new Response(
      new Blob([b as BlobPart]).stream().pipeThrough(new CompressionStream("gzip")),
    )
      .arrayBuffer(),
  );

Deno.test("manifest: round trip, strict parsing, platform files", () => {
  const m: Manifest = {
    version: "1.2.3-beta.1",
    created: "2026-01-05T12:00:00.000Z",
    runtimes: [{
      platform: "linux-x64",
      npm: "@deno/linux-x64-glibc@2.9.6",
      integrity: "sha512-x",
    }],
    files: [{
      platform: "linux-x64",
      name: "agent.js",
      mode: "644",
      sha256: "a".repeat(64),
      size: 10,
      gz_sha256: "b".repeat(64),
      gz_size: 5,
    }],
  };
  assert.deepEqual(parseManifest(formatManifest(m)), m);
  assert.equal(platformFiles(m, "linux-x64").length, 1);
  assert.throws(() => platformFiles(m, "windows-x64"), /no package for windows-x64/);
  const text = formatManifest(m);
  assert.throws(() => parseManifest(text.replace("agent.js", "../evil")), /bad manifest line/);
  assert.throws(
    () => parseManifest(text.replace("version 1.2.3-beta.1", "version 1.2")),
    /bad manifest/,
  );
  assert.throws(() => parseManifest(text + "unknown thing\n"), /bad manifest line/);
  assert.throws(() => parseManifest("hello"), /not a borealis agent manifest/);
});

Deno.test("manifest: signatures verify only with the signing key and the exact bytes", async () => {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const other = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const spki = (k: CryptoKey) =>
    crypto.subtle.exportKey("spki", k).then((b) => btoa(String.fromCharCode(...new Uint8Array(b))));
  const bytes = new TextEncoder().encode("borealis-agent-manifest 1\n");
  const sig = btoa(String.fromCharCode(
    ...new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, bytes)),
  ));
  assert.ok(await verifyManifestSignature(bytes, sig, await spki(pair.publicKey)));
  assert.equal(await verifyManifestSignature(bytes, sig, await spki(other.publicKey)), false);
  assert.equal(
    await verifyManifestSignature(new TextEncoder().encode("x"), sig, await spki(pair.publicKey)),
    false,
  );
  assert.equal(
    await verifyManifestSignature(bytes, "not base64!", await spki(pair.publicKey)),
    false,
  );
});

Deno.test("manifest: downloads are checked while streaming; a mismatch leaves no file", async () => {
  const plain = new TextEncoder().encode("console.log('agent')\n");
  const gz = await gzip(plain);
  const f = {
    platform: "linux-x64",
    name: "agent.js",
    mode: "644",
    sha256: sha256Hex(plain),
    size: plain.length,
    gz_sha256: sha256Hex(gz),
    gz_size: gz.length,
  };
  const dir = await Deno.makeTempDir();
  try {
    const serve = (body: Uint8Array) => () => Promise.resolve(new Response(body as BodyInit));
    await downloadVerified("http://x/agent.js.gz", f, join(dir, "ok"), serve(gz) as typeof fetch);
    assert.equal(await Deno.readTextFile(join(dir, "ok")), "console.log('agent')\n");
    const evil = await gzip(new TextEncoder().encode("console.log('evil')\n"));
    await assert.rejects(
      downloadVerified("http://x/agent.js.gz", f, join(dir, "bad"), serve(evil) as typeof fetch),
      /does not match the manifest|larger than/,
    );
    await assert.rejects(Deno.stat(join(dir, "bad")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
