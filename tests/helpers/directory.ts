/**
 * Directory sign-in tests' shared steps: JSON calls, creating + testing + enabling a
 * provider, a full sign-in (password, then the TOTP setup or verify step), and changing
 * the slapd tree mid-test.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Attribute, Change, type Client } from "ldapts";
import * as OTPAuth from "otpauth";
import type { TestOperator } from "./operators.ts";
import type { Slapd } from "./slapd.ts";
import type { TestEngine } from "./test_engine.ts";

// deno-lint-ignore no-explicit-any
export type Json = any;

/** A JSON request (POST unless told) answering status and parsed body. */
export async function call(
  t: TestEngine,
  path: string,
  init: { method?: string; json?: unknown; headers?: Record<string, string>; ip?: string } = {},
): Promise<{ status: number; body: Json }> {
  const res = await t.request(path, { method: init.method ?? "POST", ...init });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Creates, tests and enables a provider; returns its id. */
export async function enableProvider(
  t: TestEngine,
  admin: TestOperator,
  body: Record<string, unknown>,
): Promise<string> {
  const created = await call(t, "/api/directory/providers", { json: body, headers: admin.headers });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id as string;
  await retestAndEnable(t, admin, id);
  return id;
}

/** Runs the provider test (which must pass) and enables the provider. */
export async function retestAndEnable(
  t: TestEngine,
  admin: TestOperator,
  id: string,
): Promise<void> {
  const tested = await call(t, `/api/directory/providers/${id}/test`, { headers: admin.headers });
  assert.equal(tested.status, 200);
  assert.equal(tested.body.ok, true, JSON.stringify(tested.body));
  const enabled = await call(t, `/api/directory/providers/${id}`, {
    method: "PATCH",
    json: { enabled: true },
    headers: admin.headers,
  });
  assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
}

let ipCounter = 0;
/** Each attempt from its own address: these tests are about the directory, not throttling. */
export const nextIp = () => `10.1.${(++ipCounter >> 8) & 255}.${ipCounter & 255}`;

/** `POST /api/auth/login` from a fresh address. */
export const login = (t: TestEngine, username: string, password: string) =>
  call(t, "/api/auth/login", { json: { username, password, bearer: true }, ip: nextIp() });

const totpCode = (secret: string, at: number) =>
  new OTPAuth.TOTP({
    secret: OTPAuth.Secret.fromBase32(secret),
    digits: 6,
    period: 30,
    algorithm: "SHA1",
  }).generate({ timestamp: at });

const secrets = new Map<string, string>();

/** Full sign-in (password, then TOTP setup or verify); returns the session headers and me. */
export async function signIn(t: TestEngine, username: string, password: string) {
  const first = await login(t, username, password);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.status, "mfa_required", "directory users get the MFA step");
  if (first.body.stage === "setup") secrets.set(username, first.body.secret);
  else await t.clock.advance(31_000); // each TOTP step is accepted once
  const code = totpCode(secrets.get(username)!, t.clock.now());
  const verified = await call(t, "/api/auth/mfa/verify", {
    json: { pending_token: first.body.pending_token, code, bearer: true },
  });
  assert.equal(verified.status, 200, JSON.stringify(verified.body));
  const headers = { Authorization: `Bearer ${verified.body.token}` };
  const me = await call(t, "/api/auth/me", { method: "GET", headers });
  assert.equal(me.status, 200);
  return { headers, me: me.body, stage: first.body.stage as string };
}

/** Changes one attribute of an entry in the test tree (as the root DN). */
export async function modify(
  slapd: Slapd,
  dn: string,
  operation: "add" | "delete" | "replace",
  type: string,
  values: string[],
): Promise<void> {
  await slapd.asRoot((c: Client) =>
    c.modify(dn, [new Change({ operation, modification: new Attribute({ type, values }) })])
  );
}
