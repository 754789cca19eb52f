/**
 * Test helpers for the agent's terminal modules: an engine-like signer of grants with a
 * throwaway key, and a transport that records frames.
 *
 * @module
 */
import type { Frame } from "../protocol/socket.ts";
import { GRANT_PREFIX, type GrantPurpose, GrantVerifier } from "./grant.ts";

const b64 = (u: Uint8Array) => btoa(String.fromCharCode(...u));

/** The device GUID grants name. */
export const TEST_GUID = "0E9A1B7C-0000-4000-8000-0000000000AA";

/** Signs grants like the engine does, and the verifier that trusts that key. */
export async function testGrants(): Promise<{
  verifier: GrantVerifier;
  grant(
    purpose: GrantPurpose,
    fields?: Record<string, unknown>,
  ): Promise<{ grant: string; signature: string; id: string }>;
}> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const spki = b64(new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey)));
  return {
    verifier: new GrantVerifier({ signingKey: spki, guid: () => TEST_GUID }),
    async grant(purpose, fields = {}) {
      const id = crypto.randomUUID();
      const iat = Math.floor(Date.now() / 1000);
      const grant = JSON.stringify({
        ...fields,
        v: 1,
        purpose,
        id,
        guid: TEST_GUID,
        operator: "tester",
        via: "engine-1",
        iat,
        exp: iat + 60,
      });
      const sig = await crypto.subtle.sign(
        { name: "Ed25519" },
        pair.privateKey,
        new TextEncoder().encode(GRANT_PREFIX + grant),
      );
      return { grant, signature: b64(new Uint8Array(sig)), id };
    },
  };
}

/** Frames sent, and a wait for one. */
export class Recorder {
  readonly frames: Frame[] = [];
  open = true;
  send = (f: Frame): boolean => {
    if (!this.open) return false;
    this.frames.push(f);
    return true;
  };

  async waitFor(pred: (f: Frame) => boolean, ms = 10_000): Promise<Frame> {
    const end = Date.now() + ms;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (Date.now() > end) {
        throw new Error(`frame did not come; sent: ${this.frames.map((x) => x.type).join(", ")}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** The `data` of frames of one type. */
  data(type: string): Array<Record<string, unknown>> {
    return this.frames.filter((f) => f.type === type).map((f) => f.data as Record<string, unknown>);
  }
}
