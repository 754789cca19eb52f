/**
 * A software WebAuthn authenticator for tests, built on Web Crypto: it makes real
 * ES256 key pairs, real "none" attestation objects (CBOR, COSE keys, authenticator
 * data with the RP ID hash and counters) and real signed assertions, so the server's
 * WebAuthn library is exercised without mocks.
 *
 * @module
 */
import { Buffer } from "node:buffer";

type Cbor = number | string | Uint8Array | Cbor[] | Map<number | string, Cbor>;

function head(major: number, n: number): number[] {
  if (n < 24) return [(major << 5) | n];
  if (n < 256) return [(major << 5) | 24, n];
  if (n < 65536) return [(major << 5) | 25, n >> 8, n & 255];
  return [(major << 5) | 26, (n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Minimal CBOR encoder (ints, text, bytes, arrays, maps) — enough for attestation. */
export function cbor(v: Cbor): Uint8Array {
  const out: number[] = [];
  const enc = (x: Cbor) => {
    if (typeof x === "number") {
      if (x >= 0) out.push(...head(0, x));
      else out.push(...head(1, -1 - x));
    } else if (typeof x === "string") {
      const b = new TextEncoder().encode(x);
      out.push(...head(3, b.length), ...b);
    } else if (x instanceof Uint8Array) {
      out.push(...head(2, x.length), ...x);
    } else if (Array.isArray(x)) {
      out.push(...head(4, x.length));
      x.forEach(enc);
    } else {
      out.push(...head(5, x.size));
      for (const [k, val] of x) {
        enc(k);
        enc(val);
      }
    }
  };
  enc(v);
  return new Uint8Array(out);
}

const b64url = (b: Uint8Array | ArrayBuffer) =>
  Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString("base64url");
const sha256 = async (b: Uint8Array) =>
  new Uint8Array(await crypto.subtle.digest("SHA-256", b as BufferSource));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) out.set(p, i), i += p.length;
  return out;
};
const u32 = (n: number) =>
  new Uint8Array([(n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255]);

/** Web Crypto gives ECDSA signatures as r‖s; WebAuthn wants ASN.1 DER. */
function derSignature(raw: Uint8Array): Uint8Array {
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0]! & 0x80) v = concat(new Uint8Array([0]), v);
    return concat(new Uint8Array([2, v.length]), v);
  };
  const body = concat(int(raw.subarray(0, 32)), int(raw.subarray(32)));
  return concat(new Uint8Array([0x30, body.length]), body);
}

interface Credential {
  id: Uint8Array;
  keys: CryptoKeyPair;
  userHandle: string;
  counter: number;
}

/** One software authenticator holding any number of credentials. */
export class SoftAuthenticator {
  readonly credentials: Credential[] = [];
  /** Whether assertions and registrations carry the UV flag (false: a key without PIN). */
  userVerified = true;
  /**
   * Whether new credentials are discoverable (resident); reported through the `credProps`
   * extension when the relying party asks for it. False: a key that cannot store them.
   */
  residentKeys = true;

  constructor(readonly origin: string) {}

  /** Answers `navigator.credentials.create()` options (JSON form). */
  async create(options: {
    challenge: string;
    rp: { id?: string };
    user: { id: string };
    extensions?: { credProps?: boolean };
  }): Promise<Record<string, unknown>> {
    const rpId = options.rp.id ?? new URL(this.origin).hostname;
    const keys = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["sign", "verify"],
    ) as CryptoKeyPair;
    const jwk = await crypto.subtle.exportKey("jwk", keys.publicKey);
    const cose = cbor(
      new Map<number, Cbor>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, new Uint8Array(Buffer.from(jwk.x!, "base64url"))],
        [-3, new Uint8Array(Buffer.from(jwk.y!, "base64url"))],
      ]),
    );
    const id = crypto.getRandomValues(new Uint8Array(16));
    const cred: Credential = { id, keys, userHandle: options.user.id, counter: 0 };
    this.credentials.push(cred);
    const authData = concat(
      await sha256(new TextEncoder().encode(rpId)),
      new Uint8Array([this.userVerified ? 0x45 : 0x41]), // UP | UV | AT, or UP | AT
      u32(cred.counter),
      new Uint8Array(16), // AAGUID: zeros
      new Uint8Array([0, id.length]),
      id,
      cose,
    );
    const clientData = new TextEncoder().encode(JSON.stringify({
      type: "webauthn.create",
      challenge: options.challenge,
      origin: this.origin,
      crossOrigin: false,
    }));
    const attestationObject = cbor(
      new Map<string, Cbor>([["fmt", "none"], ["attStmt", new Map()], ["authData", authData]]),
    );
    return {
      id: b64url(id),
      rawId: b64url(id),
      type: "public-key",
      response: {
        clientDataJSON: b64url(clientData),
        attestationObject: b64url(attestationObject),
        transports: ["internal"],
      },
      clientExtensionResults: options.extensions?.credProps
        ? { credProps: { rk: this.residentKeys } }
        : {},
      authenticatorAttachment: "platform",
    };
  }

  /** Answers `navigator.credentials.get()` options with a real signed assertion. */
  async get(
    options: { challenge: string; rpId?: string },
    credential = this.credentials[0],
  ): Promise<Record<string, unknown>> {
    if (!credential) throw new Error("no credential");
    const rpId = options.rpId ?? new URL(this.origin).hostname;
    credential.counter++;
    const authData = concat(
      await sha256(new TextEncoder().encode(rpId)),
      new Uint8Array([this.userVerified ? 0x05 : 0x01]), // UP | UV, or UP alone
      u32(credential.counter),
    );
    const clientData = new TextEncoder().encode(JSON.stringify({
      type: "webauthn.get",
      challenge: options.challenge,
      origin: this.origin,
      crossOrigin: false,
    }));
    const signed = concat(authData, await sha256(clientData));
    const raw = new Uint8Array(
      await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        credential.keys.privateKey,
        signed as BufferSource,
      ),
    );
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: "public-key",
      response: {
        clientDataJSON: b64url(clientData),
        authenticatorData: b64url(authData),
        signature: b64url(derSignature(raw)),
        userHandle: credential.userHandle,
      },
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    };
  }
}
