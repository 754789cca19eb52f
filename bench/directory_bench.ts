/**
 * Directory benchmark against a throwaway slapd (skipped when slapd is not installed):
 * the directory check of a sign-in (service bind, user search, user bind, nested-group
 * walk, disabled check, account refresh) next to the same run's baseline of a bare
 * ldapts connect + user bind on the same server, and the whole `POST /api/auth/login`
 * of a directory user next to a local user's on the same engine.
 *
 *   deno run -A bench/directory_bench.ts
 *
 * @module
 */
import { Client } from "ldapts";
import { Engine } from "../core/engine.ts";
import { createLogSink } from "../core/log.ts";
import aegis from "../plugins/aegis/mod.ts";
import sites from "../plugins/sites/mod.ts";
import directory, { directoryKey } from "../plugins/directory/mod.ts";
import operators, { operatorsKey } from "../plugins/operators/mod.ts";
import { findSlapd, providerBody, startSlapd, USERS } from "../tests/helpers/slapd.ts";

const seconds = Number(Deno.env.get("BENCH_SECONDS") ?? 3);

if (!findSlapd().path) {
  console.log("directory: skipped (slapd is not installed)");
  Deno.exit(0);
}

/** Runs `fn` sequentially for `seconds`; returns operations per second. */
async function rate(fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 5; i++) await fn(i); // warm-up
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) await fn(n++);
  return n / ((performance.now() - t0) / 1000);
}

const line = (name: string, x: number, baseName: string, base: number) =>
  console.log(
    `${name}: ${x.toFixed(0)} ops/s (baseline ${baseName} ${base.toFixed(0)} ops/s, ratio ${
      (x / base).toFixed(2)
    })`,
  );

const slapd = await startSlapd();
const dataDir = await Deno.makeTempDir({ prefix: "borealis-bench-directory-" });
const engine = await Engine.create({
  env: {
    ...Deno.env.toObject(),
    BOREALIS_DATA_DIR: dataDir,
    BOREALIS_PORT: "0",
    BOREALIS_DIRECTORY_SYNC_INTERVAL_SECONDS: "0",
    // Sign-ins from one address in a tight loop are the point here, not throttling.
    BOREALIS_LOGIN_IP_MAX_FAILURES: "100000",
  },
  plugins: [sites, aegis, operators, directory],
  logSink: createLogSink({ dir: `${dataDir}/Logs`, stderr: false }),
});
try {
  const accounts = engine.service(operatorsKey);
  const admin = await accounts.createUser({
    username: "bench-admin",
    password: "bench-admin-password-1",
    role: "Admin",
    mfaExempt: true,
  });
  await accounts.createUser({
    username: "bench-local",
    password: "bench-local-password-1",
    role: "User",
    mfaExempt: true,
  });
  const { token } = await accounts.createSession(admin.id, "bench");
  const call = async (path: string, method: string, body?: unknown, auth = true) => {
    const res = await engine.fetch(
      new Request(`http://127.0.0.1${path}`, {
        method,
        headers: {
          "content-type": "application/json",
          ...(auth ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
      { remoteAddr: { hostname: "127.0.0.1", port: 40000, transport: "tcp" } },
    );
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const provider = await call("/api/directory/providers", "POST", providerBody(slapd.url));
  await call(`/api/directory/providers/${provider.id}/test`, "POST", {});
  await call(`/api/directory/providers/${provider.id}`, "PATCH", { enabled: true });

  const bare = await rate(async () => {
    const c = new Client({ url: slapd.url, timeout: 2000, connectTimeout: 2000 });
    await c.bind(USERS.carol.dn, USERS.carol.password);
    await c.unbind();
  });
  const svc = engine.service(directoryKey);
  const check = await rate(async () => {
    const r = await svc.authenticate("carol", USERS.carol.password);
    if (r.status !== "ok") throw new Error(JSON.stringify(r));
  });
  line(
    "directory sign-in check (carol: 3 nesting levels)",
    check,
    "bare ldapts connect+bind",
    bare,
  );

  const local = await rate(() =>
    call(
      "/api/auth/login",
      "POST",
      { username: "bench-local", password: "bench-local-password-1" },
      false,
    )
  );
  const viaDirectory = await rate(() =>
    call("/api/auth/login", "POST", { username: "carol", password: USERS.carol.password }, false)
  );
  line(
    "POST /api/auth/login, directory user (to mfa_required)",
    viaDirectory,
    "local user login (scrypt)",
    local,
  );
} finally {
  await engine.stop("bench done");
  await slapd.stop();
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
}
