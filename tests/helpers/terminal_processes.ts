/**
 * Real processes for the terminal's end-to-end tests and benchmarks: engine processes
 * (tests/fixtures/agent_engine.ts: every built-in plugin, the real clock, a fresh admin
 * token on stdout) and the production agent's worker (`agent/main.ts worker`, what the
 * service supervisor starts) enrolled through a site install token, with its files under
 * its own BOREALIS_AGENT_ROOT; and their resident memory.
 *
 * @module
 */
import { join } from "node:path";
import { consoleCacheDir } from "./console.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any
type Json = any;

/** A free loopback port. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Resident memory of a process (KiB), from /proc. */
export async function rssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
}

/** A running engine process. */
export interface EngineProc {
  url: string;
  port: number;
  pid: number;
  /** An admin's bearer token (a fresh admin per start). */
  token: string;
  output(): string;
  /** Heap used and RSS (bytes) after full garbage collections (bench fixture only). */
  memory(): Promise<{ heap: number; rss: number }>;
  /** Operator API call with the admin token. */
  op(
    path: string,
    init?: { method?: string; json?: unknown },
  ): Promise<{ status: number; body: Json }>;
  stop(): Promise<void>;
}

/** Starts an engine process on `port` with `env` (database, settings); waits for the console too. */
export async function startEngineProc(
  env: Record<string, string>,
  o: {
    port?: number;
    console?: boolean;
    /** Another fixture printing `READY <port> <token>` (bench/fixtures/terminal_engine.ts). */
    fixture?: string;
  } = {},
): Promise<EngineProc> {
  const port = o.port ?? freePort();
  const url = `http://localhost:${port}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: o.fixture
      ? ["run", "-A", "--v8-flags=--expose-gc", o.fixture]
      : ["run", "-A", "tests/fixtures/agent_engine.ts"],
    cwd: ROOT,
    env: {
      BOREALIS_HOST: "127.0.0.1",
      BOREALIS_PORT: String(port),
      BOREALIS_PUBLIC_BASE_URL: url,
      BOREALIS_CONSOLE_CACHE_DIR: consoleCacheDir(),
      NO_COLOR: "1",
      ...env,
    },
    stdin: o.fixture ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdin = o.fixture ? child.stdin.getWriter() : undefined;
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (text.length > 400_000) text = text.slice(-200_000);
    }
  };
  const pumping = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  let exited: number | null = null;
  void child.status.then((s) => (exited = s.code));
  const stop = async () => {
    await stdin?.close().catch(() => {});
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 15_000);
    await child.status;
    clearTimeout(timer);
    await pumping;
  };
  const deadline = Date.now() + 180_000;
  let token: string | undefined;
  for (;;) {
    token ??= /^READY \d+ (\S+)/m.exec(text)?.[1];
    if (token && o.console !== false) {
      const res = await fetch(`${url}/`).catch(() => null);
      const body = await res?.text();
      if (res?.status === 200 && body?.includes('id="root"')) break;
      if (res?.status === 503) {
        await stop();
        throw new Error(`console build failed: ${body?.slice(0, 2000)}`);
      }
    } else if (token) break;
    if (exited !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`engine did not start (exit ${exited}):\n${text.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const op = async (path: string, init: { method?: string; json?: unknown } = {}) => {
    const res = await fetch(`${url}${path}`, {
      method: init.method ?? (init.json !== undefined ? "POST" : "GET"),
      headers: {
        Authorization: `Bearer ${token}`,
        ...(init.json !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: init.json !== undefined ? JSON.stringify(init.json) : undefined,
    });
    const t = await res.text();
    return { status: res.status, body: t ? JSON.parse(t) : null };
  };
  const memory = async () => {
    if (!stdin) throw new Error("memory() needs the bench fixture");
    const from = text.length;
    await stdin.write(new TextEncoder().encode("mem\n"));
    const end = Date.now() + 10_000;
    for (;;) {
      const m = /MEM (\d+) (\d+)/.exec(text.slice(from));
      if (m) return { heap: Number(m[1]), rss: Number(m[2]) };
      if (Date.now() > end) throw new Error("the engine did not report its memory");
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { url, port, pid: child.pid, token: token!, output: () => text, memory, op, stop };
}

/** A running agent worker. */
export interface AgentProc {
  pid: number;
  events: Json[];
  guid(): string | undefined;
  waitFor(pred: (e: Json) => boolean, ms?: number, from?: number): Promise<Json>;
  stop(): Promise<void>;
}

/**
 * Starts the production agent's worker against `server`, enrolling with a new install
 * token of `siteId` (auto-approved) from `engine`.
 */
export async function startAgentProc(
  engine: EngineProc,
  o: { siteId: number; hostname: string; server?: string },
): Promise<AgentProc> {
  const token = await engine.op(`/api/sites/${o.siteId}/install-tokens`, {
    json: { note: "terminal e2e", auto_approve: true },
  });
  if (token.status !== 201) throw new Error(`install token: ${JSON.stringify(token.body)}`);
  const root = await Deno.makeTempDir({ prefix: "terminal-agent-" });
  await Deno.mkdir(join(root, "config"), { recursive: true });
  await Deno.mkdir(join(root, "state"), { recursive: true });
  await Deno.writeTextFile(
    join(root, "config", "agent.json"),
    JSON.stringify({ server: o.server ?? engine.url, hostname: o.hostname }),
  );
  await Deno.writeTextFile(
    join(root, "state", "install.json"),
    JSON.stringify({ install_token: token.body.token }),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "agent/main.ts", "worker"],
    cwd: ROOT,
    env: { BOREALIS_AGENT_ROOT: root, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const events: Json[] = [];
  let stderr = "";
  void (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          events.push(JSON.parse(line));
        } catch {
          events.push({ event: "text", line });
        }
        if (events.length > 5000) events.splice(0, 2500);
      }
    }
  })().catch(() => {});
  void (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr = (stderr + chunk).slice(-20_000);
    }
  })().catch(() => {});
  const waitFor = async (pred: (e: Json) => boolean, ms = 90_000, from = 0) => {
    const end = Date.now() + ms;
    for (;;) {
      const e = events.slice(from).find(pred);
      if (e) return e;
      if (Date.now() > end) {
        throw new Error(
          `agent event did not come; last: ${JSON.stringify(events.slice(-8))}\n${stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await waitFor((e) => e.event === "connected");
  return {
    pid: child.pid,
    events,
    guid: () => {
      const c = events.find((e) => e.event === "connected");
      return c ? String(c.guid).toUpperCase() : undefined;
    },
    waitFor,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await child.status;
      clearTimeout(t);
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}
