/**
 * DPoP with an independent client: panva's `dpop` package (RFC 9449 for JavaScript
 * runtimes), which names an Ed25519 proof `alg: "Ed25519"` (RFC 9864), next to the
 * reference agent, which writes `EdDSA`. Its proofs bind the tokens at the enrollment
 * poll, call agent routes, refresh the tokens and open the agent socket; proofs by keys
 * the engine does not accept (RSA) are refused with the algorithms it does accept. The
 * engine's own JOSE surface works for a client that speaks only the fully-specified
 * names: its JWKS verifies its access tokens under either name, and it accepts an access
 * token whose header says `Ed25519`.
 */
import assert from "node:assert/strict";
import * as DPoP from "dpop";
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from "jose";
import { ManualClock } from "../core/clock.ts";
import realtime from "../plugins/realtime/mod.ts";
import { tokensKey } from "../plugins/tokens/mod.ts";
import { identityPlugins, startIdentity } from "./agent/harness.ts";

const headerOf = (jws: string) =>
  JSON.parse(atob(jws.split(".")[0]!.replace(/-/g, "+").replace(/_/g, "/")));

Deno.test("DPoP interop: proofs by panva's dpop (alg Ed25519, and ES256) on enrollment, agent routes, refresh and the socket", async () => {
  // The library stamps proofs with the real time: the engine's clock starts there.
  const h = await startIdentity({
    plugins: [...identityPlugins, realtime],
    clock: new ManualClock(Date.now()),
  });
  const { port } = await h.t.engine.listen();
  const server = `http://127.0.0.1:${port}`;
  try {
    // Our agent keeps the identity key and proves it at the poll; the tokens are bound
    // to the key of the DPoP proof made by the other library.
    const enroll = async (hostname: string, keys: DPoP.KeyPair) => {
      const a = await h.agent({ hostname, server, fetch: fetch, now: () => h.t.clock.now() });
      await a.requestEnrollment(h.site.enrollment_code);
      await h.approve(hostname);
      const url = `${server}/api/agent/enroll/poll`;
      const proof = await DPoP.generateProof(keys, url, "POST");
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", DPoP: proof },
        body: JSON.stringify({
          approval_reference: a.state.approval_reference,
          client_nonce: a.state.client_nonce,
          proof_sig: await a.enrollmentProof(),
        }),
      });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(body.status, "approved");
      return { proof, body };
    };

    for (const alg of ["Ed25519", "ES256"] as const) {
      const keys = await DPoP.generateKeyPair(alg);
      const { proof, body } = await enroll(`interop-${alg.toLowerCase()}`, keys);
      assert.equal(headerOf(proof).alg, alg, "the library's own algorithm name");
      const claims = decodeJwt(body.access_token) as { cnf: { jkt: string } };
      assert.equal(claims.cnf.jkt, await DPoP.calculateThumbprint(keys.publicKey));

      const call = async (method: string, path: string, token: string, json?: unknown) => {
        const url = `${server}${path}`;
        return await fetch(url, {
          method,
          headers: {
            Authorization: `DPoP ${token}`,
            DPoP: await DPoP.generateProof(keys, url, method, undefined, token),
            ...(json === undefined ? {} : { "content-type": "application/json" }),
          },
          body: json === undefined ? undefined : JSON.stringify(json),
        });
      };
      for (
        const [method, path, json] of [
          ["POST", "/api/agent/script/request", {}],
          ["GET", "/api/agent/hash", undefined],
          ["POST", "/api/agent/heartbeat", { metrics: { cpu_percent: 5 } }],
        ] as const
      ) {
        const res = await call(method, path, body.access_token, json);
        assert.equal(res.status, 200, `${alg} ${method} ${path}: ${await res.clone().text()}`);
        await res.body?.cancel();
      }

      // Refresh with the library's proof; the new token works too.
      const refreshUrl = `${server}/api/agent/token/refresh`;
      const refreshed = await fetch(refreshUrl, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          DPoP: await DPoP.generateProof(keys, refreshUrl, "POST"),
        },
        body: JSON.stringify({ guid: body.guid, refresh_token: body.refresh_token }),
      });
      const next = await refreshed.json();
      assert.equal(refreshed.status, 200, JSON.stringify(next));
      const again = await call("POST", "/api/agent/script/request", next.access_token, {});
      assert.equal(again.status, 200);
      await again.body?.cancel();

      // The agent socket, opened with the library's proof for GET <http URL of the path>.
      const wsHttp = `${server}/api/agent/ws`;
      const ws = new (WebSocket as unknown as new (
        url: string,
        o: { headers: Record<string, string> },
      ) => WebSocket)(wsHttp.replace(/^http/, "ws"), {
        headers: {
          Authorization: `DPoP ${next.access_token}`,
          DPoP: await DPoP.generateProof(keys, wsHttp, "GET", undefined, next.access_token),
        },
      });
      const welcome = await new Promise<{ type: string }>((resolve, reject) => {
        ws.onmessage = (e) => resolve(JSON.parse(String(e.data)));
        ws.onerror = () => reject(new Error(`${alg}: socket refused`));
      });
      assert.equal(welcome.type, "welcome");
      const closed = new Promise((r) => (ws.onclose = r));
      ws.close(1000, "done");
      await closed;
    }

    // Algorithms the engine does not accept are refused, and the challenge names the ones it does.
    const rsa = await DPoP.generateKeyPair("PS256");
    const url = `${server}/api/agent/token/refresh`;
    const refused = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        DPoP: await DPoP.generateProof(rsa, url, "POST"),
      },
      body: JSON.stringify({ refresh_token: "x".repeat(43) }),
    });
    assert.equal(refused.status, 400);
    assert.equal((await refused.json()).error, "invalid_dpop_proof");
    assert.match(refused.headers.get("www-authenticate") ?? "", /algs="EdDSA Ed25519 ES256"/);
  } finally {
    await h.close();
  }
});

Deno.test("JOSE: the engine's JWKS verifies its access tokens under EdDSA and Ed25519, and the engine accepts either", async () => {
  const h = await startIdentity();
  try {
    const a = await h.agent({ hostname: "jose-host" });
    await a.requestEnrollment(h.site.enrollment_code);
    await h.approve("jose-host");
    await a.enroll(h.site.enrollment_code);
    const token = a.state.access_token!;
    assert.equal(decodeProtectedHeader(token).alg, "EdDSA");

    const jwks = await (await h.t.request("/api/agent/jwks")).json();
    assert.equal(jwks.keys[0].alg, undefined, "no alg: the key serves both names");
    const set = createLocalJWKSet(jwks);
    const currentDate = new Date(h.t.clock.now());
    await jwtVerify(token, set, { algorithms: ["EdDSA"], currentDate });

    // The same claims under the fully-specified name, signed by the engine's key.
    const { kid, key } = await h.t.engine.service(tokensKey).keys.signer();
    const fully = await new SignJWT(decodeJwt(token))
      .setProtectedHeader({ alg: "Ed25519", kid, typ: "at+jwt" })
      .sign(key);
    await jwtVerify(fully, set, { algorithms: ["Ed25519"], currentDate });
    const res = await h.t.request("/api/agent/script/request", {
      method: "POST",
      json: {},
      headers: {
        Authorization: `DPoP ${fully}`,
        DPoP: await a.proof("POST", "http://127.0.0.1/api/agent/script/request", {
          accessToken: fully,
        }),
      },
    });
    assert.equal(res.status, 200, await res.clone().text());
    await res.body?.cancel();
  } finally {
    await h.close();
  }
});
