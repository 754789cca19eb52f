/**
 * Operators for tests: real accounts created through the operators plugin's own
 * service (MFA exempt) with a real session, so `headers` work like a signed-in client's
 * `Authorization: Bearer`. Needs plugins [aegis, operators] loaded.
 *
 * @module
 */
import { operatorsKey } from "../../plugins/operators/mod.ts";
import { ensureSites } from "./sites.ts";
import type { TestEngine } from "./test_engine.ts";

let counter = 0;

/** Options for {@link createOperator}. */
export interface CreateOperatorOptions {
  username?: string;
  role: "Admin" | "User";
  /** Site ids assigned to a User; sites missing are created (tests/helpers/sites.ts). */
  sites?: number[];
  /** Grant Dev Mode to the session (a real server-side grant, 15 minutes). */
  devMode?: boolean;
}

/** A created operator and the headers of its session. */
export interface TestOperator {
  id: string;
  username: string;
  headers: Record<string, string>;
  /** The session's id (for revocation tests). */
  sessionId: string;
  /** The password the account was created with. */
  password: string;
}

/** Creates an operator with a live session. */
export async function createOperator(
  t: TestEngine,
  opts: CreateOperatorOptions,
): Promise<TestOperator> {
  const svc = t.engine.service(operatorsKey);
  const username = opts.username ??
    `${opts.role.toLowerCase()}-${++counter}-${crypto.randomUUID().slice(0, 6)}`;
  const password = `pw-${crypto.randomUUID()}`;
  await ensureSites(t, opts.sites ?? []);
  const user = await svc.createUser({
    username,
    password,
    role: opts.role,
    mfaExempt: true,
    sites: opts.sites,
  });
  const session = await svc.createSession(user.id, "test");
  if (opts.devMode) await svc.setDevMode(session.id, 900);
  return {
    id: user.id,
    username: user.username,
    headers: { Authorization: `Bearer ${session.token}` },
    sessionId: session.id,
    password,
  };
}
