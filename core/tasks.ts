/**
 * Background tasks by interval or cron expression. A run never overlaps itself (a tick
 * that arrives while the previous run is still going is skipped and counted); a
 * throwing run is logged and counted and the task keeps its schedule. A task marked
 * `clusterSingleton` runs on one engine instance only: the instance holding its lease
 * in `task_leases`, renewed at every run. A lease rather than a session advisory lock,
 * because a lock would pin a pooled connection for the engine's lifetime (and the
 * embedded database has exactly one). Timers come from the injected clock.
 *
 * @module
 */
import { Cron } from "croner";
import type { Clock, TimerId } from "./clock.ts";
import type { Sql } from "./db.ts";
import { isDatabaseUnavailable } from "./db_errors.ts";
import type { Logger } from "./log.ts";

/** Options shared by interval and cron tasks. */
export interface TaskOptions {
  /** Only one engine instance in the cluster runs this task. */
  clusterSingleton?: boolean;
  /** Run once as soon as tasks start (interval tasks). */
  runOnStart?: boolean;
  /** IANA time zone for cron expressions (default UTC). */
  timezone?: string;
  /**
   * Timed by real time, not the injected clock: for probes of the outside world (can the
   * database write?), which business time says nothing about. A test that moves the
   * clock by days would otherwise run such a probe thousands of times.
   */
  realTime?: boolean;
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

/** Shortest lease of a singleton task; a dead leader is replaced within this. */
const MIN_LEASE_MS = 30_000;

/** Owns every task of one engine instance. */
export class TaskScheduler implements TaskRegistrar {
  #tasks = new Map<string, Task>();
  #started = false;
  #stopping = false;
  #held = new Set<string>();
  #waitingForDatabase = new Set<string>();

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly sql?: Sql,
    /** Lease holder name of this engine instance. */
    private readonly holder: string = crypto.randomUUID(),
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
    const fire = () => {
      task.timer = undefined;
      this.#tick(task);
      this.#arm(task);
    };
    // Deno's setTimeout returns a number (Node's types, present through a dependency, say
    // otherwise).
    task.timer = task.options.realTime
      ? setTimeout(fire, d) as unknown as TimerId
      : this.clock.setTimeout(fire, d);
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
      if (task.options.clusterSingleton && !(await this.#lead(task))) {
        task.stats.skippedNotLeader++;
        return;
      }
      task.stats.lastRunAt = new Date(this.clock.now()).toISOString();
      task.stats.runs++;
      const start = performance.now();
      await task.fn();
      this.onRun?.(task.name, (performance.now() - start) / 1000);
      this.#waitingForDatabase.delete(task.name);
    } catch (err) {
      task.stats.failures++;
      task.stats.lastError = err instanceof Error ? err.message : String(err);
      if (!isDatabaseUnavailable(err)) {
        this.log.error(`task ${task.name} failed: ${task.stats.lastError}`);
      } else if (!this.#waitingForDatabase.has(task.name)) {
        // Once per outage, not once per run: the database client logs the outage itself.
        this.#waitingForDatabase.add(task.name);
        this.log.warn(`task ${task.name} waits for the database: ${task.stats.lastError}`);
      }
    }
  }

  /** Takes or renews this instance's lease of a singleton task. */
  async #lead(task: Task): Promise<boolean> {
    const now = this.clock.now();
    const ttl = Math.max(MIN_LEASE_MS, 2 * (task.nextDelay(now) ?? MIN_LEASE_MS));
    try {
      const rows = await this.sql!`
        insert into task_leases (name, holder, expires_at)
        values (${task.name}, ${this.holder}, ${new Date(now + ttl)})
        on conflict (name) do update set holder = excluded.holder, expires_at = excluded.expires_at
        where task_leases.holder = excluded.holder or task_leases.expires_at < ${new Date(now)}
        returning holder`;
      const ok = rows.length > 0;
      if (ok && !this.#held.has(task.name)) {
        this.log.info(`this instance now runs cluster task ${task.name}`);
      }
      if (ok) this.#held.add(task.name);
      else this.#held.delete(task.name);
      return ok;
    } catch (err) {
      this.log.warn(
        `could not take the lease of ${task.name}: ${err instanceof Error ? err.message : err}`,
      );
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

  /** Told the duration of every successful run in seconds (metrics). */
  onRun?: (name: string, seconds: number) => void;

  /** Counters for every task. */
  stats(): TaskStats[] {
    return [...this.#tasks.values()].map((t) => ({ ...t.stats }));
  }

  /** Cancels timers, waits for running tasks, releases singleton leases. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const task of this.#tasks.values()) {
      if (task.timer === undefined) continue;
      if (task.options.realTime) clearTimeout(task.timer);
      else this.clock.clearTimeout(task.timer);
      task.timer = undefined;
    }
    await this.idle();
    if (this.#held.size && this.sql) {
      // Hand over at once instead of letting the leases run out.
      await this.sql`delete from task_leases where holder = ${this.holder}`.catch(() => {});
      this.#held.clear();
    }
  }
}
