/**
 * Prometheus metrics: one registry per engine instance (prom-client, the maintained
 * Node client, for the exposition format), the kernel's own figures, and a listener of
 * its own for `GET /metrics`. Plugins declare their figures through `ctx.metrics`.
 *
 * The endpoint is on a separate listener rather than the engine's port because several
 * engine processes share that port (`SO_REUSEPORT`): a scrape of it would land on a
 * random process, while each process's own metrics port (the base port plus its worker
 * index) lets Prometheus scrape every process. It also keeps scrapes off the listener
 * agents and browsers use and its connection budget, and the figures off the internet
 * where that port faces it. Bound to loopback by default; `BOREALIS_METRICS_TOKEN`
 * requires `Authorization: Bearer <token>` when it must be reachable from elsewhere.
 *
 * @module
 */
import client from "prom-client";
import { timingSafeEqual } from "node:crypto";
import type { Logger } from "./log.ts";

/** Label values of one observation. */
export type Labels = Record<string, string | number>;

/** The registry of one engine instance. */
export class Metrics {
  readonly registry: client.Registry = new client.Registry();

  /** @param defaults labels every figure of this instance carries (instance, worker). */
  constructor(defaults: Record<string, string> = {}) {
    this.registry.setDefaultLabels(defaults);
  }

  /** A counter (`borealis_…_total`). */
  counter<L extends string = string>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
  ): client.Counter<L> {
    return new client.Counter({
      name: checked(name),
      help,
      labelNames,
      registers: [this.registry],
    });
  }

  /** A gauge; `collect` sets it at scrape time (may be async: a database count). */
  gauge<L extends string = string>(
    name: string,
    help: string,
    options: {
      labelNames?: readonly L[];
      collect?: (g: client.Gauge<L>) => void | Promise<void>;
    } = {},
  ): client.Gauge<L> {
    const collect = options.collect;
    return new client.Gauge({
      name: checked(name),
      help,
      labelNames: options.labelNames ?? [],
      registers: [this.registry],
      ...(collect
        ? {
          collect(this: client.Gauge<L>) {
            return collect(this);
          },
        }
        : {}),
    });
  }

  /** A histogram of seconds (latencies, durations). */
  histogram<L extends string = string>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    buckets: number[] = LATENCY_BUCKETS,
  ): client.Histogram<L> {
    return new client.Histogram({
      name: checked(name),
      help,
      labelNames,
      buckets,
      registers: [this.registry],
    });
  }

  /** The exposition text. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Content type of {@link render}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Buckets from 0.5 ms to 10 s: request, acknowledgement and flush times. */
export const LATENCY_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

function checked(name: string): string {
  if (!/^borealis_[a-z0-9_]+$/.test(name)) {
    throw new Error(`metric ${name} must be named borealis_<area>_<what> in snake_case`);
  }
  return name;
}

/** A running metrics listener. */
export interface MetricsServer {
  readonly addr: { hostname: string; port: number };
  shutdown(): Promise<void>;
}

/** Options of {@link serveMetrics}. */
export interface ServeMetricsOptions {
  hostname: string;
  port: number;
  /** Required as `Authorization: Bearer <token>` when set. */
  token?: string;
  /** Share the port with a worker's replacement during a rolling restart. */
  reusePort?: boolean;
  metrics: Metrics;
  log: Logger;
}

/** Serves `GET /metrics` (and nothing else) on its own listener. */
export function serveMetrics(o: ServeMetricsOptions): Promise<MetricsServer> {
  const expected = o.token ? new TextEncoder().encode(`Bearer ${o.token}`) : undefined;
  const authorized = (req: Request): boolean => {
    if (!expected) return true;
    const given = new TextEncoder().encode(req.headers.get("authorization") ?? "");
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: o.hostname,
        port: o.port,
        reusePort: o.reusePort,
        onListen: (addr) => {
          o.log.info(`metrics on http://${addr.hostname}:${addr.port}/metrics`);
          resolve({ addr, shutdown: () => server.shutdown() });
        },
      }, async (req) => {
        const path = new URL(req.url).pathname;
        if (path !== "/metrics") {
          return Response.json({ error: "not_found", message: "only /metrics is served here" }, {
            status: 404,
          });
        }
        if (req.method !== "GET" && req.method !== "HEAD") {
          return Response.json({ error: "method_not_allowed", message: "use GET" }, {
            status: 405,
            headers: { Allow: "GET, HEAD" },
          });
        }
        if (!authorized(req)) {
          return Response.json({
            error: "unauthorized",
            message: "send Authorization: Bearer <BOREALIS_METRICS_TOKEN>",
          }, { status: 401, headers: { "WWW-Authenticate": 'Bearer realm="metrics"' } });
        }
        try {
          return new Response(await o.metrics.render(), {
            headers: { "Content-Type": o.metrics.contentType },
          });
        } catch (err) {
          o.log.error(`metrics collection failed: ${err instanceof Error ? err.message : err}`);
          return Response.json({ error: "internal_error", message: "metrics collection failed" }, {
            status: 500,
          });
        }
      });
    } catch (err) {
      reject(err);
    }
  });
}

/** What {@link registerKernelMetrics} reads. */
export interface KernelSources {
  /** Answers when the database does (times a round trip through the pool). */
  ping(): Promise<void>;
  poolSize: number;
  tasks: {
    onRun?: (name: string, seconds: number) => void;
    stats(): Array<{ name: string; runs: number; failures: number }>;
  };
  events: { handlerErrors: number; bridged: boolean };
}

/**
 * The kernel's own figures: process memory, CPU and descriptors (read at scrape time,
 * no timers), database round trip through the pool, task durations and failures, bus
 * handler errors.
 */
export function registerKernelMetrics(m: Metrics, k: KernelSources): void {
  m.gauge("borealis_process_resident_memory_bytes", "Resident set size of this process", {
    collect: (g) => g.set(Deno.memoryUsage().rss),
  });
  m.gauge("borealis_process_heap_used_bytes", "JavaScript heap in use", {
    collect: (g) => g.set(Deno.memoryUsage().heapUsed),
  });
  m.gauge("borealis_process_cpu_seconds", "CPU time (user + system) this process has used", {
    collect: (g) => {
      const cpu = processCpuSeconds();
      if (Number.isFinite(cpu)) g.set(cpu);
    },
  });
  m.gauge("borealis_process_open_fds", "Open file descriptors (sockets included)", {
    collect: (g) => {
      const n = openDescriptors();
      if (Number.isFinite(n)) g.set(n);
    },
  });
  m.gauge("borealis_process_max_fds", "The process's open-file limit", {
    collect: (g) => {
      const n = descriptorLimit();
      if (Number.isFinite(n)) g.set(n);
    },
  });
  m.gauge("borealis_db_pool_size", "Database connections this process may open").set(k.poolSize);
  m.gauge(
    "borealis_db_roundtrip_seconds",
    "A select 1 through the pool at scrape time: waiting for a free connection plus the round trip",
    {
      collect: async (g) => {
        const start = performance.now();
        try {
          await k.ping();
          g.set((performance.now() - start) / 1000);
        } catch {
          g.set(-1);
        }
      },
    },
  );
  const runs = m.histogram(
    "borealis_task_duration_seconds",
    "Background task run times (liveness and assembly flushes, dispatch, sweeps)",
    ["task"],
  );
  k.tasks.onRun = (task, seconds) => runs.observe({ task }, seconds);
  m.gauge("borealis_task_failures", "Failed runs per background task since start", {
    labelNames: ["task"],
    collect: (g) => {
      for (const t of k.tasks.stats()) g.set({ task: t.name }, t.failures);
    },
  });
  m.gauge("borealis_events_handler_errors", "Event handlers that threw since start", {
    collect: (g) => g.set(k.events.handlerErrors),
  });
  m.gauge("borealis_events_bridged", "1 when events cross instances (LISTEN/NOTIFY), else 0", {
    collect: (g) => g.set(k.events.bridged ? 1 : 0),
  });
}

function processCpuSeconds(): number {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // clock ticks at 100 Hz
  } catch {
    return NaN;
  }
}

function openDescriptors(): number {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    return n;
  } catch {
    return NaN;
  }
}

function descriptorLimit(): number {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
      .find((l) => l.startsWith("Max open files"));
    return Number(line?.split(/\s+/)[3]);
  } catch {
    return NaN;
  }
}
