/**
 * The agent's protocol client: a small, dependency-free implementation of
 * docs/agent-protocol.md. It keeps an Ed25519 identity key, enrolls with a site code or
 * an install token, polls with backoff, holds DPoP-bound tokens, refreshes before expiry
 * (single-flight) and calls agent routes with a fresh DPoP proof each time. The
 * production agent, the reference agent in tests/agent/ and the load generators share it.
 *
 * @module
 */
import { join } from "node:path";

const enc = new TextEncoder();

/** Bytes → base64url without padding. */
export function b64url(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Bytes → standard base64. */
export function b64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** Standard base64 → bytes. */
export function unb64(text: string): Uint8Array {
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/").replace(/\s+/g, ""));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** What the agent persists (state.json in its state folder). */
export interface AgentState {
  hostname: string;
  private_key_pkcs8: string;
  public_key_spki: string;
  guid?: string;
  access_token?: string;
  /** Engine-clock ms when the access token expires. */
  access_expires_at?: number;
  refresh_token?: string;
  approval_reference?: string;
  server_nonce?: string;
  client_nonce?: string;
  signing_key?: string | null;
}

/** Options of {@link Agent.open}. */
export interface AgentOptions {
  /** Engine base URL, e.g. http://127.0.0.1:5000 */
  server: string;
  /** Folder for state.json; without one the agent lives in memory only. */
  stateDir?: string;
  hostname?: string;
  /** Transport (tests pass the engine's fetch). */
  fetch?: (req: Request) => Promise<Response> | Response;
  /** Clock (tests pass the engine's manual clock). */
  now?: () => number;
  /** Sleep used between polls (tests may skip real waiting). */
  sleep?: (ms: number) => Promise<void>;
  /** Refresh when the access token has less than this left (ms). */
  refreshMarginMs?: number;
  /** Abort an engine call that takes longer than this (ms; default 60 s, 0 = never). */
  requestTimeoutMs?: number;
}

/**
 * What admits an agent to a site: the site's enrollment code (a string), or a
 * short-lived install token from a site's install command.
 */
export type EnrollCredential = string | { installToken: string };

/** A protocol error the engine answered with. */
export class AgentError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Headers,
  ) {
    super(
      `${status} ${String(body.error ?? body.status ?? "error")}: ${String(body.message ?? "")}`,
    );
    this.name = "AgentError";
  }
}

/** One agent identity. */
export class Agent {
  state: AgentState;
  #keys: CryptoKeyPair;
  #jwk: { kty: string; crv: string; x: string };
  #nonce?: string;
  #refreshing?: Promise<Record<string, unknown>>;
  #header?: string;
  #ath?: { token: string; ath: string };
  readonly #o: AgentOptions;

  private constructor(
    o: AgentOptions,
    state: AgentState,
    keys: CryptoKeyPair,
    jwk: { kty: string; crv: string; x: string },
  ) {
    this.#o = o;
    this.state = state;
    this.#keys = keys;
    this.#jwk = jwk;
  }

  /** Loads the agent's state, or generates a new identity key. */
  static async open(o: AgentOptions): Promise<Agent> {
    let state: AgentState | undefined;
    if (o.stateDir) {
      try {
        state = JSON.parse(await Deno.readTextFile(join(o.stateDir, "state.json")));
      } catch { /* first start */ }
    }
    if (!state) {
      const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
        "sign",
        "verify",
      ]) as CryptoKeyPair;
      state = {
        hostname: o.hostname ?? `agent-${crypto.randomUUID().slice(0, 8)}`,
        private_key_pkcs8: b64(
          new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey)),
        ),
        public_key_spki: b64(new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey))),
      };
    }
    if (o.hostname) state.hostname = o.hostname;
    const privateKey = await crypto.subtle.importKey(
      "pkcs8",
      unb64(state.private_key_pkcs8) as BufferSource,
      {
        name: "Ed25519",
      },
      true,
      ["sign"],
    );
    const publicKey = await crypto.subtle.importKey(
      "spki",
      unb64(state.public_key_spki) as BufferSource,
      {
        name: "Ed25519",
      },
      true,
      ["verify"],
    );
    const jwk = await crypto.subtle.exportKey("jwk", publicKey);
    const agent = new Agent(o, state, { privateKey, publicKey }, {
      kty: "OKP",
      crv: "Ed25519",
      x: jwk.x!,
    });
    await agent.save();
    return agent;
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }

  #url(path: string): string {
    return this.#o.server.replace(/\/+$/, "") + path;
  }

  async #fetch(req: Request): Promise<Response> {
    if (this.#o.fetch) return await this.#o.fetch(req);
    // A hung connection must not stall the agent forever (a refresh waiting on it would
    // hold every other call): give up after the timeout and let the caller's retry rules act.
    const timeout = this.#o.requestTimeoutMs ?? 60_000;
    return await fetch(
      timeout > 0 ? new Request(req, { signal: AbortSignal.timeout(timeout) }) : req,
    );
  }

  /** Writes state.json (mode 0600). */
  async save(): Promise<void> {
    if (!this.#o.stateDir) return;
    await Deno.mkdir(this.#o.stateDir, { recursive: true });
    const path = join(this.#o.stateDir, "state.json");
    await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(this.state, null, 2), { mode: 0o600 });
    await Deno.rename(`${path}.tmp`, path);
  }

  async #post(
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    const res = await this.#fetch(
      new Request(this.#url(path), {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      }),
    );
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch { /* not JSON */ }
    return { status: res.status, body: json, headers: res.headers };
  }

  /** Signs a DPoP proof for one request (RFC 9449 §4.2). */
  async proof(
    method: string,
    url: string,
    opts: { accessToken?: string; nonce?: string; iat?: number; jti?: string } = {},
  ): Promise<string> {
    // The header never changes and the token changes every 15 minutes: encode and hash
    // them once (load generators make thousands of proofs a second with this).
    this.#header ??= b64url(
      enc.encode(JSON.stringify({ typ: "dpop+jwt", alg: "EdDSA", jwk: this.#jwk })),
    );
    const claims: Record<string, unknown> = {
      jti: opts.jti ?? b64url(crypto.getRandomValues(new Uint8Array(16))),
      htm: method.toUpperCase(),
      htu: url.split(/[?#]/)[0],
      iat: opts.iat ?? Math.floor(this.#now() / 1000),
    };
    if (opts.accessToken) {
      if (this.#ath?.token !== opts.accessToken) {
        const digest = await crypto.subtle.digest("SHA-256", enc.encode(opts.accessToken));
        this.#ath = { token: opts.accessToken, ath: b64url(new Uint8Array(digest)) };
      }
      claims.ath = this.#ath.ath;
    }
    const nonce = opts.nonce ?? this.#nonce;
    if (nonce) claims.nonce = nonce;
    const input = `${this.#header}.${b64url(enc.encode(JSON.stringify(claims)))}`;
    const sig = new Uint8Array(
      await crypto.subtle.sign({ name: "Ed25519" }, this.#keys.privateKey, enc.encode(input)),
    );
    return `${input}.${b64url(sig)}`;
  }

  /** Step 1: `enroll/request` with a site code or an install token. */
  async requestEnrollment(credential: EnrollCredential): Promise<Record<string, unknown>> {
    const clientNonce = crypto.getRandomValues(new Uint8Array(32));
    const r = await this.#post("/api/agent/enroll/request", {
      hostname: this.state.hostname,
      ...(typeof credential === "string"
        ? { enrollment_code: credential }
        : { install_token: credential.installToken }),
      agent_pubkey: this.state.public_key_spki,
      client_nonce: b64(clientNonce),
    });
    if (r.status !== 200) throw new AgentError(r.status, r.body, r.headers);
    this.state.approval_reference = String(r.body.approval_reference);
    this.state.server_nonce = String(r.body.server_nonce);
    this.state.client_nonce = b64(clientNonce);
    await this.save();
    return r.body;
  }

  /** The enrollment proof: Ed25519 over server_nonce ‖ approval_reference ‖ client_nonce. */
  async enrollmentProof(): Promise<string> {
    const s = unb64(this.state.server_nonce!);
    const ref = enc.encode(this.state.approval_reference!);
    const c = unb64(this.state.client_nonce!);
    const data = new Uint8Array(s.length + ref.length + c.length);
    data.set(s, 0);
    data.set(ref, s.length);
    data.set(c, s.length + ref.length);
    return b64(
      new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, this.#keys.privateKey, data)),
    );
  }

  /** Step 3: one `enroll/poll`; stores tokens when approved. */
  async poll(): Promise<{ status: number; body: Record<string, unknown> }> {
    const r = await this.#post("/api/agent/enroll/poll", {
      approval_reference: this.state.approval_reference,
      client_nonce: this.state.client_nonce,
      proof_sig: await this.enrollmentProof(),
    });
    if (
      r.status === 200 && r.body.status === "approved" && typeof r.body.access_token === "string"
    ) {
      this.#storeTokens(r.body);
      this.state.signing_key = (r.body.signing_key as string | null) ?? null;
      await this.save();
    }
    return { status: r.status, body: r.body };
  }

  #storeTokens(body: Record<string, unknown>): void {
    this.state.guid = String(body.guid);
    this.state.access_token = String(body.access_token);
    this.state.access_expires_at = this.#now() + Number(body.expires_in) * 1000;
    this.state.refresh_token = String(body.refresh_token);
  }

  /**
   * Drops the tokens and enrollment state but keeps the identity key: what an agent does
   * when its refresh family is gone (revoked, reused, expired, purged) before enrolling
   * again.
   */
  async forget(): Promise<void> {
    for (
      const k of [
        "guid",
        "access_token",
        "access_expires_at",
        "refresh_token",
        "approval_reference",
        "server_nonce",
        "client_nonce",
      ] as const
    ) delete this.state[k];
    await this.save();
  }

  /** True once the agent holds tokens. */
  get enrolled(): boolean {
    return !!this.state.refresh_token;
  }

  /**
   * Enrolls: request, then poll with the server's poll hint (and exponential backoff with
   * full jitter on errors) until approved, denied or expired.
   */
  async enroll(
    code: EnrollCredential,
    opts: { timeoutMs?: number; onStatus?: (s: Record<string, unknown>) => void } = {},
  ): Promise<Record<string, unknown>> {
    const sleep = this.#o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
    let first = await this.requestEnrollment(code);
    opts.onStatus?.(first);
    let wait = Number(first.poll_after_ms ?? 3000);
    let failures = 0;
    while (Date.now() < deadline) {
      await sleep(wait);
      let r: { status: number; body: Record<string, unknown> };
      try {
        r = await this.poll();
      } catch {
        failures++;
        wait = Math.random() * Math.min(60_000, 1000 * 2 ** failures);
        continue;
      }
      opts.onStatus?.(r.body);
      if (r.status === 200 && r.body.status === "approved" && r.body.access_token) return r.body;
      if (r.status === 200 && (r.body.status === "denied")) return r.body;
      if (r.status === 200 && r.body.status === "expired" || r.status === 404) {
        // Start over with a fresh request (a new approval reference).
        first = await this.requestEnrollment(code);
        wait = Number(first.poll_after_ms ?? 3000);
        continue;
      }
      if (r.status === 429 || r.status >= 500) {
        failures++;
        wait = Math.random() * Math.min(60_000, 1000 * 2 ** failures);
        continue;
      }
      if (r.status !== 200) throw new AgentError(r.status, r.body, new Headers());
      failures = 0;
      wait = Number(r.body.poll_after_ms ?? 5000);
    }
    throw new Error("enrollment timed out");
  }

  /**
   * Exchanges the refresh token (rotated) for new tokens, with a DPoP proof. Concurrent
   * callers share one request: two refreshes with the same token would look like theft
   * to the engine and revoke the family.
   */
  refresh(): Promise<Record<string, unknown>> {
    this.#refreshing ??= this.#refresh().finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }

  async #refresh(): Promise<Record<string, unknown>> {
    const url = this.#url("/api/agent/token/refresh");
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = await this.#post("/api/agent/token/refresh", {
        guid: this.state.guid,
        refresh_token: this.state.refresh_token,
      }, { DPoP: await this.proof("POST", url) });
      const nonce = r.headers.get("dpop-nonce");
      if (nonce) this.#nonce = nonce;
      if (r.status === 400 && r.body.error === "use_dpop_nonce" && attempt === 0) continue;
      if (r.status !== 200) throw new AgentError(r.status, r.body, r.headers);
      this.#storeTokens(r.body);
      await this.save();
      return r.body;
    }
    throw new Error("unreachable");
  }

  /** Refreshes when the access token is missing or about to expire. */
  async ensureFresh(): Promise<void> {
    const margin = this.#o.refreshMarginMs ?? 60_000;
    if (!this.state.access_token || (this.state.access_expires_at ?? 0) - this.#now() < margin) {
      await this.refresh();
    }
  }

  /**
   * Calls an agent route with `Authorization: DPoP` and a fresh proof. Retries once
   * after `use_dpop_nonce` (with the nonce) and once after `invalid_token` (after a refresh).
   */
  async call(
    method: string,
    path: string,
    body?: unknown,
    opts: { retry?: boolean } = {},
  ): Promise<Response> {
    await this.ensureFresh();
    const retry = opts.retry ?? true;
    const url = this.#url(path);
    let refreshed = false;
    for (let attempt = 0; attempt < 3; attempt++) {
      const token = this.state.access_token!;
      const headers: Record<string, string> = {
        Authorization: `DPoP ${token}`,
        DPoP: await this.proof(method, url, { accessToken: token }),
      };
      if (body !== undefined) headers["content-type"] = "application/json";
      const res = await this.#fetch(
        new Request(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        }),
      );
      const nonce = res.headers.get("dpop-nonce");
      if (nonce) this.#nonce = nonce;
      if (res.status !== 401 || !retry) return res;
      const challenge = res.headers.get("www-authenticate") ?? "";
      if (challenge.includes('error="use_dpop_nonce"') && nonce) {
        await res.body?.cancel();
        continue;
      }
      if (challenge.includes('error="invalid_token"') && !refreshed) {
        await res.body?.cancel();
        refreshed = true;
        await this.refresh();
        continue;
      }
      return res;
    }
    throw new Error("agent call retried too often");
  }
}
