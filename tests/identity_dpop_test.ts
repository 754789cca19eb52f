/**
 * A table of bad DPoP proofs in the style of panva/node-oidc-provider's dpop tests
 * (anchors.md §D.3): each must answer 401 with `WWW-Authenticate: DPoP
 * error="invalid_dpop_proof"` (or `invalid_token`), and a good proof must pass.
 */
import assert from "node:assert/strict";
import { b64url } from "./agent/agent.ts";
import { startIdentity } from "./agent/harness.ts";

const enc = new TextEncoder();
const URL_ = "http://127.0.0.1/api/agent/script/request";

interface Mint {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  drop?: string[];
  dropHeader?: string[];
  key?: CryptoKeyPair;
  alg?: "EdDSA" | "ES256";
  /** Replace the signature part. */
  sig?: string;
}

/**
 * Change one signature character well inside the signature (not the last two,
 * whose low bits may be padding), so the tampered token can never decode to the
 * same bytes. Replacing the tail with a fixed "AA" passed once in ~1,000 runs.
 */
function tamper(token: string): string {
  const i = token.length - 10;
  const c = token[i] === "A" ? "B" : "A";
  return token.slice(0, i) + c + token.slice(i + 1);
}

async function ath(token: string) {
  return b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(token))));
}

Deno.test("DPoP: a table of bad proofs is refused with the right WWW-Authenticate; good proofs pass", async () => {
  const h = await startIdentity();
  try {
    const agent = await h.agent({ hostname: "dpop-host" });
    await agent.requestEnrollment(h.site.enrollment_code);
    await h.approve("dpop-host");
    await agent.poll();
    const token = agent.state.access_token!;
    const pkcs8 = Uint8Array.from(atob(agent.state.private_key_pkcs8), (c) => c.charCodeAt(0));
    const priv = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
    const privJwk = await crypto.subtle.exportKey("jwk", priv);
    const pub = { kty: "OKP", crv: "Ed25519", x: privJwk.x! };
    const other = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const otherPub = await crypto.subtle.exportKey("jwk", other.publicKey);
    const ec = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const ecPub = await crypto.subtle.exportKey("jwk", ec.publicKey);
    const nowS = () => Math.floor(h.t.clock.now() / 1000);

    const mint = async (m: Mint = {}) => {
      const alg = m.alg ?? "EdDSA";
      const header: Record<string, unknown> = {
        typ: "dpop+jwt",
        alg,
        jwk: alg === "EdDSA" ? pub : { kty: "EC", crv: "P-256", x: ecPub.x, y: ecPub.y },
        ...m.header,
      };
      for (const d of m.dropHeader ?? []) delete header[d];
      const claims: Record<string, unknown> = {
        jti: crypto.randomUUID(),
        htm: "POST",
        htu: URL_,
        iat: nowS(),
        ath: await ath(token),
        ...m.claims,
      };
      for (const d of m.drop ?? []) delete claims[d];
      const input = `${b64url(enc.encode(JSON.stringify(header)))}.${
        b64url(enc.encode(JSON.stringify(claims)))
      }`;
      if (m.sig !== undefined) return `${input}.${m.sig}`;
      const sig = alg === "EdDSA"
        ? await crypto.subtle.sign(
          { name: "Ed25519" },
          (m.key ?? { privateKey: priv }).privateKey,
          enc.encode(input),
        )
        : await crypto.subtle.sign(
          { name: "ECDSA", hash: "SHA-256" },
          ec.privateKey,
          enc.encode(input),
        );
      return `${input}.${b64url(new Uint8Array(sig))}`;
    };
    const send = (
      proof: string | null,
      auth = `DPoP ${token}`,
      extra: Record<string, string> = {},
    ) => {
      const headers: Record<string, string> = { Authorization: auth, ...extra };
      if (proof !== null) headers.DPoP = proof;
      return h.t.request("/api/agent/script/request", { method: "POST", headers, json: {} });
    };
    const expect401 = async (name: string, res: Response, error = "invalid_dpop_proof") => {
      assert.equal(res.status, 401, `${name}: status ${res.status} ${await res.clone().text()}`);
      const challenge = res.headers.get("www-authenticate") ?? "";
      assert.match(challenge, new RegExp(`^DPoP error="${error}"`), `${name}: ${challenge}`);
      assert.match(challenge, /algs="EdDSA Ed25519 ES256"/, name);
      const body = await res.json();
      assert.equal(body.error, error, name);
    };

    // The control: a well-formed proof passes, under either name of Ed25519 (RFC 9864).
    assert.equal((await send(await mint())).status, 200);
    assert.equal((await send(await mint({ header: { alg: "Ed25519" } }))).status, 200);

    const table: Array<[string, () => Promise<string | null>]> = [
      ["no proof", () => Promise.resolve(null)],
      ["empty proof", () => Promise.resolve("")],
      ["two proofs", async () => `${await mint()}, ${await mint()}`],
      ["not a JWS", () => Promise.resolve("not-a-jws")],
      ["four parts", async () => `${await mint()}.x`],
      [
        "header not JSON",
        async () =>
          `${b64url(enc.encode("{nope"))}.${(await mint()).split(".").slice(1).join(".")}`,
      ],
      ["typ JWT", () => mint({ header: { typ: "JWT" } })],
      ["typ secevent+jwt", () => mint({ header: { typ: "secevent+jwt" } })],
      ["typ missing", () => mint({ dropHeader: ["typ"] })],
      ["alg none", () => mint({ header: { alg: "none" }, sig: "" })],
      ["alg none with sig", () => mint({ header: { alg: "none" } })],
      ["alg HS256", () => mint({ header: { alg: "HS256" } })],
      ["alg 1", () => mint({ header: { alg: 1 } })],
      ["alg true", () => mint({ header: { alg: true } })],
      ["alg unsupported", () => mint({ header: { alg: "unsupported" } })],
      ["alg missing", () => mint({ dropHeader: ["alg"] })],
      ["alg Ed448", () => mint({ header: { alg: "Ed448" } })],
      ["alg ed25519 (case)", () => mint({ header: { alg: "ed25519" } })],
      ["alg ES384", () => mint({ header: { alg: "ES384" } })],
      ["alg RS256", () => mint({ header: { alg: "RS256" } })],
      ["alg PS256", () => mint({ header: { alg: "PS256" } })],
      [
        "alg Ed25519 with a P-256 jwk",
        () =>
          mint({
            header: { alg: "Ed25519", jwk: { kty: "EC", crv: "P-256", x: ecPub.x, y: ecPub.y } },
          }),
      ],
      [
        "alg ES256 with an Ed25519 jwk",
        () => mint({ header: { alg: "ES256", jwk: pub } }),
      ],
      ["jwk absent", () => mint({ dropHeader: ["jwk"] })],
      ["jwk empty", () => mint({ header: { jwk: {} } })],
      ["jwk number", () => mint({ header: { jwk: 1 } })],
      ["jwk string", () => mint({ header: { jwk: "key" } })],
      ["jwk array", () => mint({ header: { jwk: [pub] } })],
      ["jwk with private members", () => mint({ header: { jwk: privJwk } })],
      ["symmetric jwk", () => mint({ header: { jwk: { kty: "oct", k: "c2VjcmV0" } } })],
      [
        "jwk of another key",
        () => mint({ header: { jwk: { kty: "OKP", crv: "Ed25519", x: otherPub.x } } }),
      ],
      ["signed by another key", () => mint({ key: other })],
      ["signature garbage", () => mint({ sig: b64url(new Uint8Array(64)) })],
      ["jti missing", () => mint({ drop: ["jti"] })],
      ["jti not a string", () => mint({ claims: { jti: 12345678 } })],
      ["htm missing", () => mint({ drop: ["htm"] })],
      ["htu missing", () => mint({ drop: ["htu"] })],
      ["iat missing", () => mint({ drop: ["iat"] })],
      ["iat a string", () => mint({ claims: { iat: String(nowS()) } })],
      ["htm mismatch", () => mint({ claims: { htm: "GET" } })],
      ["htm lower case", () => mint({ claims: { htm: "post" } })],
      ["htu other path", () => mint({ claims: { htu: "http://127.0.0.1/api/agent/hash" } })],
      [
        "htu other host",
        () => mint({ claims: { htu: "http://evil.example/api/agent/script/request" } }),
      ],
      ["htu not a URL", () => mint({ claims: { htu: "script/request" } })],
      ["iat 301 s old", () => mint({ claims: { iat: nowS() - 301 } })],
      ["iat 301 s ahead", () => mint({ claims: { iat: nowS() + 301 } })],
      ["ath missing", () => mint({ drop: ["ath"] })],
      ["ath mismatch", async () => mint({ claims: { ath: await ath(token + "x") } })],
      ["nonce not a string", () => mint({ claims: { nonce: 5 } })],
      ["ES256 key not bound to the token", () => mint({ alg: "ES256" })],
    ];
    for (const [name, make] of table) await expect401(name, await send(await make()));

    // iat ±60 s is accepted; the query string does not take part in htu.
    assert.equal((await send(await mint({ claims: { iat: nowS() - 60 } }))).status, 200);
    assert.equal((await send(await mint({ claims: { iat: nowS() + 60 } }))).status, 200);
    assert.equal((await send(await mint({ claims: { htu: URL_ + "?x=1#f" } }))).status, 200);

    // Replay: the same proof twice.
    const once = await mint();
    assert.equal((await send(once)).status, 200);
    await expect401("replay", await send(once));

    // Downgrade: the DPoP-bound token sent as Bearer.
    await expect401(
      "bearer downgrade",
      await send(await mint(), `Bearer ${token}`),
      "invalid_token",
    );
    // A tampered or foreign token.
    await expect401(
      "token tampered",
      await send(await mint(), `DPoP ${tamper(token)}`),
      "invalid_token",
    );
    await expect401("no token", await send(await mint(), "DPoP "), "invalid_token");
    const none = await h.t.request("/api/agent/script/request", { method: "POST", json: {} });
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate") ?? "", /^DPoP algs=/);

    // The token expires after 15 minutes.
    await h.t.clock.advance(901_000);
    await expect401("expired token", await send(await mint()), "invalid_token");
  } finally {
    await h.close();
  }
});

Deno.test("DPoP: server nonces — use_dpop_nonce with DPoP-Nonce, then accepted", async () => {
  const h = await startIdentity({ env: { BOREALIS_DPOP_REQUIRE_NONCE: "true" } });
  try {
    const agent = await h.agent({ hostname: "nonce-host" });
    await agent.requestEnrollment(h.site.enrollment_code);
    await h.approve("nonce-host");
    await agent.poll();
    const token = agent.state.access_token!;
    const first = await h.t.request("/api/agent/script/request", {
      method: "POST",
      json: {},
      headers: {
        Authorization: `DPoP ${token}`,
        DPoP: await agent.proof("POST", URL_, { accessToken: token }),
      },
    });
    assert.equal(first.status, 401);
    assert.match(first.headers.get("www-authenticate") ?? "", /error="use_dpop_nonce"/);
    const nonce = first.headers.get("dpop-nonce");
    assert.ok(nonce);
    const second = await h.t.request("/api/agent/script/request", {
      method: "POST",
      json: {},
      headers: {
        Authorization: `DPoP ${token}`,
        DPoP: await agent.proof("POST", URL_, { accessToken: token, nonce }),
      },
    });
    assert.equal(second.status, 200);
    assert.ok(second.headers.get("dpop-nonce"));
    // A forged nonce, and a genuine one past its 300 s life, are refused the same way.
    const withNonce = async (n: string) =>
      await h.t.request("/api/agent/script/request", {
        method: "POST",
        json: {},
        headers: {
          Authorization: `DPoP ${token}`,
          DPoP: await agent.proof("POST", URL_, { accessToken: token, nonce: n }),
        },
      });
    for (const bad of ["bogus", nonce.slice(0, -2) + (nonce.endsWith("AA") ? "BB" : "AA")]) {
      const res = await withNonce(bad);
      assert.equal(res.status, 401, bad);
      assert.match(res.headers.get("www-authenticate") ?? "", /error="use_dpop_nonce"/);
      assert.ok(res.headers.get("dpop-nonce"));
    }
    const old = second.headers.get("dpop-nonce")!;
    await h.t.clock.advance(301_000);
    const stale = await withNonce(old);
    assert.equal(stale.status, 401);
    assert.match(stale.headers.get("www-authenticate") ?? "", /error="use_dpop_nonce"/);
    // The agent library handles it by itself, refresh included.
    assert.equal((await agent.call("POST", "/api/agent/script/request", {})).status, 200);
    await agent.refresh();
    assert.equal((await agent.call("GET", "/api/agent/hash")).status, 200);
  } finally {
    await h.close();
  }
});

Deno.test("DPoP property: random mutations of proof and token through HTTP are refused with 401, never a 500", async () => {
  const fc = (await import("fast-check")).default;
  const h = await startIdentity();
  try {
    const agent = await h.agent({ hostname: "fuzz-host" });
    await agent.requestEnrollment(h.site.enrollment_code);
    await h.approve("fuzz-host");
    await agent.poll();
    const token = agent.state.access_token!;
    const edit = fc.record({
      target: fc.constantFrom("proof", "token", "both"),
      at: fc.nat(),
      text: fc.string({ minLength: 1, maxLength: 4 }),
      cut: fc.boolean(),
    });
    const mutate = (s: string, m: { at: number; text: string; cut: boolean }) => {
      const at = m.at % s.length;
      return m.cut ? s.slice(0, at) : s.slice(0, at) + m.text + s.slice(at + m.text.length);
    };
    await fc.assert(
      fc.asyncProperty(edit, async (m) => {
        const proof = await agent.proof("POST", URL_, { accessToken: token });
        const p = m.target === "token" ? proof : mutate(proof, m);
        const t = m.target === "proof" ? token : mutate(token, m);
        if (p === proof && t === token) return;
        let res: Response;
        try {
          res = await h.t.request("/api/agent/script/request", {
            method: "POST",
            json: {},
            headers: { Authorization: `DPoP ${t}`, DPoP: p },
          });
        } catch {
          return; // the Fetch API itself refused the header value (control characters)
        }
        const body = await res.text();
        assert.equal(res.status, 401, `${JSON.stringify(m)} → ${res.status} ${body}`);
      }),
      { numRuns: 150 },
    );
  } finally {
    await h.close();
  }
});
