/**
 * Background tasks by interval or cron expression. A run never overlaps itself (a tick
 * that arrives while the previous run is still going is skipped and counted); a
 * throwing run is logged and counted and the task keeps its schedule. A task marked
 * `clusterSingleton` runs on one engine instance only: the instance holding a
 * PostgreSQL session advisory lock for it. Timers come from the injected clock.
 *
 * @module
 */
import { Cron } from "croner";
import type { Clock, TimerId } from "./clock.ts";
import type { Sql } from "./db.ts";
import type { Logger } from "./log.ts";

/** Options shared by interval and cron tasks. */
export interface TaskOptions {
  /** Only one engine instance in the cluster runs this task. */
  clusterSingleton?: boolean;
  /** Run once as soon as tasks start (interval tasks). */
  runOnStart?: boolean;
  /** IANA time zone for cron expressions (default UTC). */
  timezone?: string;
}

/** A task's counters. */
export interface TaskStats {
  name: string;
  schedule: string;
  runs: number;
  failures: number;
  skippedOverlaps: number;
  /** Ticks where another instance held the singleton lock. */
  skippedNotLeader: number;
  running: boolean;
  lastRunAt?: string;
  lastError?: string;
}

type TaskFn = () => void | Promise<void>;

interface Task {
  name: string;
  schedule: string;
  fn: TaskFn;
  options: TaskOptions;
  nextDelay: (now: number) => number | null;
  timer?: TimerId;
  running?: Promise<void>;
  stats: TaskStats;
}

/** The subset plugins see as `ctx.tasks`. */
export interface TaskRegistrar {
  /** Runs `fn` every `ms` milliseconds. */
  every(name: string, ms: number, fn: TaskFn, options?: TaskOptions): void;
  /** Runs `fn` on a cron schedule (croner syntax, seconds optional). */
  cron(name: string, expression: string, fn: TaskFn, options?: TaskOptions): void;
}

/** Derives a stable 63-bit advisory lock key from a task name. */
async function lockKey(name: string): Promise<bigint> {
  const d = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`task:${name}`)),
  );
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(d[i]!);
  return v & 0x7fff_ffff_ffff_ffffn;
}

/** Owns every task of one engine instance. */
export class TaskScheduler implements TaskRegistrar {
  #tasks = new Map<string, Task>();
  #started = false;
  #stopping = false;
  #leaderConn?: Awaited<ReturnType<Sql["reserve"]>>;
  #held = new Set<string>();

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly sql?: Sql,
  ) {}

  every(name: string, ms: number, fn: TaskFn, options: TaskOptions = {}): void {
    if (!(ms > 0)) throw new Error(`task ${name}: interval must be positive`);
    this.#add({ name, schedule: `every ${ms} ms`, fn, options, nextDelay: () => ms });
  }

  cron(name: string, expression: string, fn: TaskFn, options: TaskOptions = {}): void {
    const cron = new Cron(expression, { paused: true, timezone: options.timezone ?? "UTC" });
    this.#add({
      name,
      schedule: `cron ${expression}${options.timezone ? ` (${options.timezone})` : ""}`,
      fn,
      options,
      nextDelay: (now) => {
        const next = cron.nextRun(new Date(now));
        return next ? Math.max(0, next.getTime() - now) : null;
      },
    });
  }

  #add(t: Omit<Task, "stats">): void {
    if (this.#tasks.has(t.name)) throw new Error(`task ${t.name} is registered twice`);
    if (t.options.clusterSingleton && !this.sql) {
      throw new Error(`task ${t.name}: clusterSingleton needs a database`);
    }
    const task: Task = {
      ...t,
      stats: {
        name: t.name,
        schedule: t.schedule,
        runs: 0,
        failures: 0,
        skippedOverlaps: 0,
        skippedNotLeader: 0,
        running: false,
      },
    };
    this.#tasks.set(t.name, task);
    if (this.#started) this.#arm(task, task.options.runOnStart ? 0 : undefined);
  }

  /** Starts every task's timer. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const task of this.#tasks.values()) {
      this.#arm(task, task.options.runOnStart ? 0 : undefined);
    }
  }

  #arm(task: Task, delay?: number): void {
    if (this.#stopping) return;
    const d = delay ?? task.nextDelay(this.clock.now());
    if (d === null) return;
    task.timer = this.clock.setTimeout(() => {
      task.timer = undefined;
      this.#tick(task);
      this.#arm(task);
    }, d);
  }

  #tick(task: Task): void {
    if (this.#stopping) return;
    if (task.running) {
      task.stats.skippedOverlaps++;
      return;
    }
    task.running = this.#run(task).finally(() => {
      task.running = undefined;
      task.stats.running = false;
    });
  }

  async #run(task: Task): Promise<void> {
    task.stats.running = true;
    try {
      if (task.options.clusterSingleton && !(await this.#lead(task.name))) {
        task.stats.skippedNotLeader++;
        return;
      }
      task.stats.lastRunAt = new Date(this.clock.now()).toISOString();
      task.stats.runs++;
      await task.fn();
    } catch (err) {
      task.stats.failures++;
      task.stats.lastError = err instanceof Error ? err.message : String(err);
      this.log.error(`task ${task.name} failed: ${task.stats.lastError}`);
    }
  }

  /** Takes (or confirms) this instance's session lock for a singleton task. */
  async #lead(name: string): Promise<boolean> {
    try {
      if (!this.#leaderConn) this.#leaderConn = await this.sql!.reserve();
      const conn = this.#leaderConn;
      // A held session lock lives as long as its connection; one round trip proves both.
      if (this.#held.has(name)) {
        await conn`select 1`;
        return true;
      }
      const key = await lockKey(name);
      const [row] = await conn<{ ok: boolean }[]>`
        select pg_try_advisory_lock(${key.toString()}::bigint) as ok`;
      if (row?.ok) {
        this.#held.add(name);
        this.log.info(`this instance now runs cluster task ${name}`);
      }
      return !!row?.ok;
    } catch (err) {
      // The leader connection died: every lock it held is gone with it.
      this.log.warn(
        `lost the cluster task connection: ${err instanceof Error ? err.message : err}`,
      );
      this.#leaderConn?.release();
      this.#leaderConn = undefined;
      this.#held.clear();
      return false;
    }
  }

  /** Runs a task now (outside its schedule), still single-flight. */
  async runNow(name: string): Promise<void> {
    const task = this.#tasks.get(name);
    if (!task) throw new Error(`no task named ${name}`);
    this.#tick(task);
    await task.running;
  }

  /** Resolves when no task is running (for tests driving a manual clock). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.#tasks.values()].map((t) => t.running).filter(Boolean);
      if (!running.length) return;
      await Promise.allSettled(running);
    }
  }

  /** Counters for every task. */
  stats(): TaskStats[] {
    return [...this.#tasks.values()].map((t) => ({ ...t.stats }));
  }

  /** Cancels timers, waits for running tasks, releases singleton locks. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const task of this.#tasks.values()) {
      if (task.timer !== undefined) this.clock.clearTimeout(task.timer);
      task.timer = undefined;
    }
    await this.idle();
    if (this.#leaderConn) {
      await this.#leaderConn`select pg_advisory_unlock_all()`.catch(() => {});
      this.#leaderConn.release();
      this.#leaderConn = undefined;
      this.#held.clear();
    }
  }
}
