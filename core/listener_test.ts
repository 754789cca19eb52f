/**
 * The listener with real sockets: silent and slow connections are closed, caps make
 * room by closing idle pending connections (or answer 503), WebSockets leave the
 * pending pool, and shutdown lets a request in flight finish.
 */
import assert from "node:assert/strict";
import { type ConnectionLimits, serveConnections } from "./listener.ts";
import { createLogSink } from "./log.ts";

const log = createLogSink({ stderr: false }).logger("http");

const limits: ConnectionLimits = {
  headerTimeoutMs: 300,
  idleTimeoutMs: 400,
  maxConnections: 1000,
  maxPending: 1000,
  maxPendingPerAddress: 1000,
};

async function until(pred: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves with how the connection ended: "closed" (EOF/reset) or the first bytes read. */
async function outcome(c: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(4096);
  try {
    const n = await c.read(buf);
    return n === null ? "closed" : new TextDecoder().decode(buf.subarray(0, n));
  } catch {
    return "closed";
  }
}

function start(l: Partial<ConnectionLimits> = {}, handler?: (r: Request) => Promise<Response>) {
  return serveConnections({
    hostname: "127.0.0.1",
    port: 0,
    limits: { ...limits, ...l },
    log,
    handler: handler ?? (() => Promise.resolve(Response.json({ status: "ok" }))),
  });
}

const connect = (port: number) => Deno.connect({ hostname: "127.0.0.1", port });
const enc = new TextEncoder();

Deno.test("listener: a connection that sends nothing, or half a request head, is closed after the header timeout", async () => {
  const server = start();
  try {
    const silent = await connect(server.addr.port);
    const slow = await connect(server.addr.port);
    await slow.write(enc.encode("GET /health HTTP/1.1\r\nHost: x\r\n"));
    const started = Date.now();
    const [a, b] = await Promise.all([outcome(silent), outcome(slow)]);
    assert.equal(a, "closed");
    assert.equal(b, "closed");
    assert.ok(Date.now() - started < 5000, "closed well within the bound");
    await until(() => server.stats().headerTimeouts === 2);
    assert.equal(server.stats().open, 0);
    silent.close();
    slow.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("listener: a kept-alive connection serves requests, then closes after the idle timeout", async () => {
  const server = start();
  try {
    const c = await connect(server.addr.port);
    for (let i = 0; i < 3; i++) {
      await c.write(enc.encode("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
      assert.match(await outcome(c), /^HTTP\/1.1 200/);
      await new Promise((r) => setTimeout(r, 150)); // each wait is under the idle timeout
    }
    assert.equal(await outcome(c), "closed");
    await until(() => server.stats().idleTimeouts === 1);
    c.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("listener: at the per-address cap the oldest idle connection makes room; busy ones are never closed, the newcomer gets 503", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let slow = 0;
  const server = start(
    { maxPendingPerAddress: 3, headerTimeoutMs: 60_000 },
    async (r) => {
      if (new URL(r.url).pathname === "/slow") {
        slow++;
        await gate;
      }
      return Response.json({ status: "ok" });
    },
  );
  try {
    const idle = [];
    for (let i = 0; i < 3; i++) idle.push(await connect(server.addr.port));
    await until(() => server.stats().pending === 3);
    // A fourth: the oldest idle one is closed, and the newcomer is served.
    const fresh = await connect(server.addr.port);
    assert.equal(await outcome(idle[0]!), "closed");
    await fresh.write(enc.encode("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.match(await outcome(fresh), /^HTTP\/1.1 200/);
    assert.equal(server.stats().evicted, 1);

    // Three connections each with a request in flight: nothing can make room.
    for (const c of [fresh, ...idle.slice(1)]) c.close();
    await until(() => server.stats().pending === 0);
    const busy = [];
    for (let i = 0; i < 3; i++) {
      const c = await connect(server.addr.port);
      await c.write(enc.encode("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
      busy.push(c);
    }
    await until(() => slow === 3);
    const refused = await connect(server.addr.port);
    const answer = await outcome(refused);
    assert.match(answer, /^HTTP\/1.1 503/);
    assert.match(answer, /retry-after: 5/i);
    assert.match(answer, /"error":"busy"/);
    release();
    for (const c of busy) assert.match(await outcome(c), /^HTTP\/1.1 200/);
    for (const c of [refused, ...busy]) c.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("listener: a flood of idle connections from many ports cannot keep a real request out (overall cap)", async () => {
  const server = start({ maxPending: 20, headerTimeoutMs: 60_000 });
  try {
    const flood = [];
    for (let i = 0; i < 60; i++) flood.push(await connect(server.addr.port));
    await until(() => server.stats().pending <= 20 && server.stats().evicted >= 40);
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/health`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    for (const c of flood) c.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("listener: an upgraded WebSocket leaves the pending pool, outlives the idle timeout and frees its slot when closed", async () => {
  const { upgradeWebSocket } = await import("./websocket.ts");
  const server = serveConnections({
    hostname: "127.0.0.1",
    port: 0,
    limits: { ...limits, maxPendingPerAddress: 1 },
    log,
    handler: (req, info) => {
      // The route helper reads the connection from Hono's env; a bare handler passes it.
      const c = { req: { raw: req }, env: { connection: info.connection } };
      const { socket, response } = upgradeWebSocket(c as never);
      socket.onmessage = (e) => socket.send(`echo ${e.data}`);
      return response;
    },
  });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${server.addr.port}/ws`);
    await new Promise((r) => (ws.onopen = r));
    await until(() => server.stats().websockets === 1);
    assert.equal(server.stats().pending, 0);
    // With one pending slot per address, another connection still gets in.
    const other = new WebSocket(`ws://127.0.0.1:${server.addr.port}/ws`);
    await new Promise((r) => (other.onopen = r));
    await new Promise((r) => setTimeout(r, 900)); // past the header and idle timeouts
    const echoed = new Promise((r) => (ws.onmessage = (e) => r(e.data)));
    ws.send("hi");
    assert.equal(await echoed, "echo hi");
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    await closed;
    other.close();
    await until(() => server.stats().websockets === 0 && server.stats().open === 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("listener: shutdown closes idle connections at once and lets a request in flight finish", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered = false;
  const server = start({ headerTimeoutMs: 60_000 }, async () => {
    entered = true;
    await gate;
    return Response.json({ finished: true });
  });
  const idle = await connect(server.addr.port);
  const busy = fetch(`http://127.0.0.1:${server.addr.port}/slow`);
  await until(() => entered && server.stats().pending === 2);
  const stopped = server.shutdown();
  assert.equal(await outcome(idle), "closed");
  release();
  const res = await busy;
  assert.deepEqual(await res.json(), { finished: true });
  await stopped;
  idle.close();
  await assert.rejects(connect(server.addr.port));
});

Deno.test("listener: unguarded (behind a proxy that bounds connections) it is plain Deno.serve and says so", async () => {
  const lines: string[] = [];
  const sink = createLogSink({ stderr: false });
  const logger = sink.logger("http");
  const server = serveConnections({
    hostname: "127.0.0.1",
    port: 0,
    limits,
    log: { ...logger, warn: (m: string) => void lines.push(m) },
    handler: () => Response.json({ status: "ok" }),
    unguarded: true,
  });
  try {
    assert.equal(server.guarded, false);
    const r = await fetch(`http://127.0.0.1:${server.addr.port}/health`);
    assert.equal(r.status, 200);
    await r.body?.cancel();
    assert.match(
      lines.join("\n"),
      /BOREALIS_HTTP_GUARD=false: connection caps, header and idle timeouts are OFF/,
    );
  } finally {
    await server.shutdown();
  }
});
