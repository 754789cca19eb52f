import assert from "node:assert/strict";
import { GrantError, GrantVerifier } from "../../agent/terminal/grant.ts";
import { GRANT_PREFIX, GrantSigner } from "./grant.ts";

const b64 = (u: Uint8Array) => btoa(String.fromCharCode(...u));
const GUID = "0E9A1B7C-0000-4000-8000-000000000001";

async function keys() {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const spki = b64(new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey)));
  const signer = new GrantSigner(() => async (bytes) => ({
    signature: b64(
      new Uint8Array(
        await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, bytes as BufferSource),
      ),
    ),
    kid: "k",
    spki,
  }));
  return { spki, signer };
}

const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GrantError);
    return err.code;
  }
  return "accepted";
};

Deno.test("grants: signed by the engine, verified by the agent once, for its device and purpose", async () => {
  const { spki, signer } = await keys();
  const now = Date.UTC(2026, 0, 5, 12);
  const base = {
    purpose: "terminal" as const,
    id: crypto.randomUUID(),
    guid: GUID,
    operator: "alice",
    via: "i1",
  };
  const signed = await signer.sign(now, base, { cols: 80, rows: 24 });
  const agent = new GrantVerifier({
    signingKey: spki,
    guid: () => GUID.toLowerCase(),
    now: () => now + 5000,
  });
  const g = await agent.verify(signed, "terminal");
  assert.equal(g.id, base.id);
  assert.equal(g.cols, 80);
  assert.equal(g.exp - g.iat, 120);
  assert.equal(await refusal(agent.verify(signed, "terminal")), "grant_replayed");

  const other = await signer.sign(now, { ...base, id: crypto.randomUUID() }, {});
  assert.equal(await refusal(agent.verify(other, "file_download")), "grant_invalid");
  const elsewhere = new GrantVerifier({
    signingKey: spki,
    guid: () => crypto.randomUUID(),
    now: () => now,
  });
  assert.equal(await refusal(elsewhere.verify(other, "terminal")), "grant_wrong_device");
  const late = new GrantVerifier({
    signingKey: spki,
    guid: () => GUID,
    now: () => now + 3_600_000,
  });
  assert.equal(await refusal(late.verify(other, "terminal")), "grant_expired");
  const early = new GrantVerifier({
    signingKey: spki,
    guid: () => GUID,
    now: () => now - 3_600_000,
  });
  assert.equal(await refusal(early.verify(other, "terminal")), "grant_expired");

  // Any change to the text, a signature of the text without the prefix, another key.
  const fresh = new GrantVerifier({ signingKey: spki, guid: () => GUID, now: () => now });
  const tampered = {
    ...other,
    grant: other.grant.replace('"operator":"alice"', '"operator":"bob"'),
  };
  assert.equal(await refusal(fresh.verify(tampered, "terminal")), "grant_invalid");
  assert.ok(GRANT_PREFIX.endsWith("\n"));
  const { signer: stranger } = await keys();
  const foreign = await stranger.sign(now, { ...base, id: crypto.randomUUID() }, {});
  assert.equal(await refusal(fresh.verify(foreign, "terminal")), "grant_invalid");
  assert.equal(await refusal(fresh.verify({}, "terminal")), "grant_missing");
  const unpinned = new GrantVerifier({ signingKey: "", guid: () => GUID, now: () => now });
  assert.equal(await refusal(unpinned.verify(other, "terminal")), "no_signing_key");
});

Deno.test("grants: without a code-signing key the engine refuses to sign (503)", async () => {
  const signer = new GrantSigner(() => null);
  await assert.rejects(
    signer.sign(0, { purpose: "terminal", id: "x", guid: GUID, operator: "a", via: "i" }, {}),
    (err: { status?: number; code?: string }) =>
      err.status === 503 && err.code === "signing_unavailable",
  );
});
