/**
 * Several engine processes on one host sharing one listening port (`SO_REUSEPORT`: the
 * kernel spreads new connections over the processes listening on it), started and
 * supervised by one parent: a worker that dies is started again, SIGTERM stops them all
 * (each drains its agents as a single engine does), SIGHUP restarts them one at a time.
 * Agents keep one URL and need no proxy, and the per-process open-file limit stops being
 * the ceiling. The workers are ordinary engine instances against one PostgreSQL server:
 * events, leases, routing to an agent held by another worker and liveness work as they
 * do across hosts.
 *
 * A worker tells the parent it is serving by printing {@link WORKER_READY} on stdout,
 * and stops by itself when the parent goes away (its stdin reaches end of file).
 *
 * @module
 */
import type { Logger } from "./log.ts";

/** The line a worker prints on stdout once it listens. */
export const WORKER_READY = "BOREALIS_WORKER_READY";

/** Options of {@link WorkerSupervisor}. */
export interface SupervisorOptions {
  count: number;
  /** The shared port (already chosen: never 0). */
  port: number;
  /** The first worker's metrics port; worker i gets this plus i. Unset: no metrics. */
  metricsPort?: number;
  /** The command that runs one worker (`deno run … main.ts start`). */
  command: string[];
  /** The environment every worker gets (the supervisor adds its own variables). */
  env: Record<string, string>;
  log: Logger;
  /** How long a stopping worker may take before it is killed (its shutdown grace plus margin). */
  stopTimeoutMs: number;
}

/** What the supervisor knows about one worker. */
export interface WorkerInfo {
  index: number;
  pid: number | null;
  ready: boolean;
  /** Times it was started again after dying. */
  restarts: number;
}

interface Slot {
  index: number;
  child?: Deno.ChildProcess;
  ready: boolean;
  restarts: number;
  startedAt: number;
  /** The slot is being stopped on purpose (stop or rolling restart): do not revive it. */
  stopping: boolean;
  /** Consecutive quick deaths, for the back-off. */
  crashes: number;
  /** Served at least once: a worker that never did is not revived (its settings are wrong). */
  everReady: boolean;
  readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }>;
  exited?: Promise<Deno.CommandStatus>;
}

/** Starts and supervises the workers. */
export class WorkerSupervisor {
  readonly #o: SupervisorOptions;
  readonly #slots: Slot[];
  #stopped = false;
  #timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(o: SupervisorOptions) {
    this.#o = o;
    this.#slots = Array.from({ length: o.count }, (_, index) => newSlot(index));
  }

  /**
   * Starts every worker; resolves when all of them listen. The first starts alone: on a
   * first run it applies migrations and creates what is made once (the vault key file,
   * signing keys), which the others then find.
   */
  async start(): Promise<void> {
    await this.#spawn(this.#slots[0]!);
    await Promise.all(this.#slots.slice(1).map((s) => this.#spawn(s)));
  }

  /** The workers as they are now. */
  workers(): WorkerInfo[] {
    return this.#slots.map((s) => ({
      index: s.index,
      pid: s.child?.pid ?? null,
      ready: s.ready,
      restarts: s.restarts,
    }));
  }

  /**
   * Restarts the workers one at a time, each replacement started before its predecessor
   * stops: the new process listens on the shared port, then the old one drains (closes
   * its agents' sockets with their reconnect delays) and exits. The port never has fewer
   * listeners than workers, so returning agents always find one.
   */
  async rollingRestart(): Promise<void> {
    for (let i = 0; i < this.#slots.length; i++) {
      if (this.#stopped) return;
      const old = this.#slots[i]!;
      const fresh = newSlot(i);
      this.#slots[i] = fresh;
      try {
        await this.#spawn(fresh);
      } catch (err) {
        // The replacement never served: keep the old worker.
        this.#slots[i] = old;
        throw err;
      }
      await this.#stopSlot(old);
    }
  }

  /** Sends SIGTERM to every worker and waits for them (killing those that overrun). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await Promise.all(this.#slots.map((s) => this.#stopSlot(s)));
  }

  async #stopSlot(slot: Slot): Promise<void> {
    slot.stopping = true;
    const child = slot.child;
    if (!child) return;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = await Promise.race([
      slot.exited!.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.#o.stopTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (!done) {
      this.#o.log.warn(`worker ${slot.index} (pid ${child.pid}) did not stop in time; killing it`);
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await slot.exited;
    }
  }

  #spawn(slot: Slot): Promise<void> {
    const o = this.#o;
    slot.ready = false;
    slot.startedAt = Date.now();
    const env: Record<string, string> = {
      ...o.env,
      BOREALIS_WORKERS: "1",
      BOREALIS_WORKER_INDEX: String(slot.index),
      BOREALIS_REUSE_PORT: "true",
      BOREALIS_PORT: String(o.port),
    };
    if (o.metricsPort !== undefined) {
      env.BOREALIS_METRICS_PORT = String(o.metricsPort === 0 ? 0 : o.metricsPort + slot.index);
    } else delete env.BOREALIS_METRICS_PORT;
    const child = new Deno.Command(o.command[0]!, {
      args: o.command.slice(1),
      env,
      clearEnv: true,
      // stdin stays open for the worker's life: its end of file means the parent is gone.
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    slot.child = child;
    const ready = new Promise<void>((resolve, reject) =>
      slot.readyWaiters.push({ resolve, reject })
    );
    void this.#readStdout(slot, child);
    slot.exited = child.status;
    child.status.then((status) => this.#exited(slot, child, status));
    o.log.info(`worker ${slot.index} started (pid ${child.pid})`);
    return ready;
  }

  async #readStdout(slot: Slot, child: Deno.ChildProcess): Promise<void> {
    let buffer = "";
    try {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line.startsWith(WORKER_READY) && slot.child === child) {
            slot.ready = true;
            slot.everReady = true;
            this.#o.log.info(`worker ${slot.index} (pid ${child.pid}) is serving`);
            for (const w of slot.readyWaiters.splice(0)) w.resolve();
          } else {
            console.log(line);
          }
        }
      }
    } catch { /* the worker went away */ }
  }

  #exited(slot: Slot, child: Deno.ChildProcess, status: Deno.CommandStatus): void {
    if (slot.child !== child) return;
    slot.child = undefined;
    slot.ready = false;
    const how = status.signal ? `signal ${status.signal}` : `code ${status.code}`;
    if (slot.stopping || this.#stopped || !this.#slots.includes(slot)) {
      this.#o.log.info(`worker ${slot.index} (pid ${child.pid}) stopped (${how})`);
      return;
    }
    if (!slot.everReady) {
      const err = new Error(`worker ${slot.index} exited (${how}) before it was serving`);
      for (const w of slot.readyWaiters.splice(0)) w.reject(err);
      return;
    }
    // A worker that keeps dying at once waits longer each time (up to 30 s); one that
    // ran for a while comes back after a second.
    const lived = Date.now() - slot.startedAt;
    slot.crashes = lived < 10_000 ? slot.crashes + 1 : 0;
    const delay = Math.min(30_000, 1000 * 2 ** Math.max(0, slot.crashes - 1));
    this.#o.log.warn(
      `worker ${slot.index} (pid ${child.pid}) exited (${how}) after ${
        Math.round(lived / 1000)
      } s; starting it again in ${delay / 1000} s`,
    );
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#stopped || slot.stopping) return;
      slot.restarts++;
      // Whoever waits for this slot (a rolling restart) is released by the new ready line.
      void this.#spawn(slot);
    }, delay);
    this.#timers.add(timer);
  }
}

function newSlot(index: number): Slot {
  return {
    index,
    ready: false,
    restarts: 0,
    startedAt: 0,
    stopping: false,
    crashes: 0,
    everReady: false,
    readyWaiters: [],
  };
}

/** A free TCP port on `hostname` (for `BOREALIS_PORT=0` with several workers). */
export function freePort(hostname: string): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
