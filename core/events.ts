/**
 * A typed event bus. Delivery inside the process is immediate; across engine
 * instances it goes through an {@link EventTransport}: PostgreSQL `LISTEN/NOTIFY` on one
 * channel by default ({@link PgNotifyTransport}). The transport is all that knows how
 * envelopes travel, so past a handful of instances the bus can move to a broker built
 * for fan-out (NATS, for one) without touching a plugin. Payloads larger than the
 * transport carries are stored in `event_payloads` and sent by reference. Where LISTEN
 * does not work (the embedded PGlite served over a socket), the bus says so once and
 * delivers in the process only — which is all a single embedded engine needs.
 *
 * @module
 */
import type { Sql } from "./db.ts";
import type { Logger } from "./log.ts";

/** A typed event name; create with {@link eventKey}. */
export interface EventKey<T> {
  readonly name: string;
  /** Phantom field carrying the payload type. */
  readonly _payload?: T;
}

/** Declares an event type. Convention: `<plugin>.<event>`. */
export function eventKey<T>(name: string): EventKey<T> {
  return { name };
}

/** Where an event came from. */
export interface EventMeta {
  /** Instance id of the publishing engine. */
  origin: string;
  /** True when published by this engine instance. */
  local: boolean;
}

type Handler = (payload: unknown, meta: EventMeta) => void | Promise<void>;

/** An event that travels with another one (see {@link PublishOptions.with}). */
export interface Companion<T> {
  key: EventKey<T>;
  payload: T;
}

/** Options for {@link EventBus.publish}. */
export interface PublishOptions {
  /** Deliver in this process only. */
  localOnly?: boolean;
  /**
   * A second event about the same fact (an operator notice about it, say), delivered to
   * its own subscribers with this one: one bus message, not two.
   */
  with?: Companion<unknown>;
}

const CHANNEL = "borealis_events";
/** NOTIFY payloads must stay under 8000 bytes; keep a margin for the envelope. */
const INLINE_LIMIT = 7000;

/** Carries envelopes (JSON text) between the engine instances sharing a database. */
export interface EventTransport {
  /** Largest envelope it carries in bytes; larger payloads travel by reference. */
  readonly maxBytes: number;
  /**
   * Starts receiving: `receive` gets every envelope other instances send (and may get
   * this instance's own; the bus drops those). Resolves true when envelopes cross
   * instances, false when they cannot (the bus then stays in-process).
   */
  connect(receive: (text: string) => void): Promise<boolean>;
  /** Sends one envelope to every instance. */
  send(text: string): Promise<void>;
  /** Stops receiving. */
  close(): Promise<void>;
}

/** The default transport: PostgreSQL `LISTEN/NOTIFY` on one channel. */
export class PgNotifyTransport implements EventTransport {
  readonly maxBytes = INLINE_LIMIT;
  #unlisten?: () => Promise<void>;

  constructor(
    private readonly sql: Sql,
    private readonly instanceId: string,
    private readonly log: Logger,
    private readonly probeMs = 300,
  ) {}

  /** Probes LISTEN with a round trip; when the probe does not come back, says so once. */
  async connect(receive: (text: string) => void): Promise<boolean> {
    const sql = this.sql;
    const probe = `probe:${this.instanceId}`;
    let bridged = false;
    let seen: () => void = () => {};
    const arrived = new Promise<void>((r) => (seen = r));
    try {
      const sub = await sql.listen(CHANNEL, (text) => {
        if (text === probe) {
          // A slow server may answer after the wait below: bridge from then on.
          if (!bridged && this.#unlisten) {
            this.log.info("LISTEN/NOTIFY answered late; events now cross instances");
            this.onLateBridge?.();
          }
          bridged = true;
          return seen();
        }
        receive(text);
      });
      this.#unlisten = () => sub.unlisten();
      await sql`select pg_notify(${CHANNEL}, ${probe})`;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ok = await Promise.race([
        arrived.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.probeMs))),
      ]);
      clearTimeout(timer);
      if (!ok) {
        this.log.info(
          "LISTEN/NOTIFY unavailable on this database; events stay within this engine instance",
        );
      }
      return ok;
    } catch (err) {
      this.log.info(
        `LISTEN/NOTIFY unavailable (${
          err instanceof Error ? err.message : err
        }); events stay within this engine instance`,
      );
      return false;
    }
  }

  /** Told when the probe answers after {@link connect} gave up waiting. */
  onLateBridge?: () => void;

  async send(text: string): Promise<void> {
    await this.sql`select pg_notify(${CHANNEL}, ${text})`;
  }

  async close(): Promise<void> {
    await this.#unlisten?.().catch(() => {});
    this.#unlisten = undefined;
  }
}

interface Envelope {
  o: string;
  n: string;
  p?: unknown;
  r?: string;
  /** A companion event: its name and payload. */
  w?: { n: string; p: unknown };
}

/** The bus; one per engine instance. */
export class EventBus {
  #handlers = new Map<string, Set<Handler>>();
  #sql?: Sql;
  #transport?: EventTransport;
  #bridged = false;
  #errors = 0;

  constructor(readonly instanceId: string, private readonly log: Logger) {}

  /** True when events cross engine instances. */
  get bridged(): boolean {
    return this.#bridged;
  }

  /** Handler failures so far. */
  get handlerErrors(): number {
    return this.#errors;
  }

  /** Subscribes; returns the unsubscribe function. */
  subscribe<T>(
    key: EventKey<T>,
    handler: (payload: T, meta: EventMeta) => void | Promise<void>,
  ): () => void {
    let set = this.#handlers.get(key.name);
    if (!set) this.#handlers.set(key.name, set = new Set());
    set.add(handler as Handler);
    return () => set!.delete(handler as Handler);
  }

  /** Publishes to local subscribers at once and to other instances when bridged. */
  async publish<T>(key: EventKey<T>, payload: T, options: PublishOptions = {}): Promise<void> {
    const meta = { origin: this.instanceId, local: true };
    const w = options.with ? { n: options.with.key.name, p: options.with.payload } : undefined;
    this.#deliver(key.name, payload, meta);
    if (w) this.#deliver(w.n, w.p, meta);
    const transport = this.#transport;
    if (!this.#bridged || options.localOnly || !this.#sql || !transport) return;
    const sql = this.#sql;
    const envelope: Envelope = { o: this.instanceId, n: key.name, p: payload, w };
    let text = JSON.stringify(envelope);
    if (new TextEncoder().encode(text).length > transport.maxBytes) {
      const body = w ? { p: payload, w } : payload;
      const [row] = await sql<{ id: string }[]>`
        insert into event_payloads (name, body) values (${key.name}, ${sql.json(body as never)})
        returning id`;
      text = JSON.stringify(
        { o: this.instanceId, n: key.name, r: row!.id, ...(w ? { w: { n: w.n, p: null } } : {}) },
      );
    }
    await transport.send(text);
  }

  #deliver(name: string, payload: unknown, meta: EventMeta): void {
    const set = this.#handlers.get(name);
    if (!set) return;
    for (const handler of set) {
      try {
        const r = handler(payload, meta);
        if (r instanceof Promise) r.catch((err) => this.#failed(name, err));
      } catch (err) {
        this.#failed(name, err);
      }
    }
  }

  #failed(name: string, err: unknown): void {
    this.#errors++;
    this.log.error(
      `event handler for ${name} failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  }

  /**
   * Starts the cross-instance bridge over `transport` (LISTEN/NOTIFY on `sql` unless
   * given another); `sql` also stores payloads too large for the transport.
   */
  async connect(sql: Sql, transport?: EventTransport): Promise<boolean> {
    this.#sql = sql;
    const t = transport ?? new PgNotifyTransport(sql, this.instanceId, this.log);
    if (t instanceof PgNotifyTransport) t.onLateBridge = () => (this.#bridged = true);
    this.#transport = t;
    this.#bridged = await t.connect((text) => void this.#receive(text));
    return this.#bridged;
  }

  async #receive(text: string): Promise<void> {
    let env: Envelope;
    try {
      env = JSON.parse(text);
    } catch {
      return;
    }
    if (!env || env.o === this.instanceId || typeof env.n !== "string") return;
    let companion = env.w && typeof env.w.n === "string" ? env.w : undefined;
    if (!this.#handlers.get(env.n)?.size && !(companion && this.#handlers.get(companion.n)?.size)) {
      return;
    }
    let payload = env.p;
    if (env.r && this.#sql) {
      const [row] = await this.#sql<
        { body: unknown }[]
      >`select body from event_payloads where id = ${env.r}`;
      if (!row) return this.log.warn(`event ${env.n} payload ${env.r} is gone`);
      payload = row.body;
      if (companion) {
        // A stored event with a companion keeps both in its body.
        const body = row.body as { p: unknown; w: { n: string; p: unknown } };
        payload = body.p;
        companion = body.w;
      }
    }
    const meta = { origin: env.o, local: false };
    this.#deliver(env.n, payload, meta);
    if (companion) this.#deliver(companion.n, companion.p, meta);
  }

  /** Removes stored large payloads older than `maxAgeMs` (run by a kernel task). */
  async prune(maxAgeMs: number, now: number): Promise<number> {
    if (!this.#sql) return 0;
    const cutoff = new Date(now - maxAgeMs);
    const rows = await this.#sql`delete from event_payloads where created_at < ${cutoff}`;
    return rows.count;
  }

  /** Stops listening. */
  async close(): Promise<void> {
    await this.#transport?.close().catch(() => {});
    this.#transport = undefined;
    this.#bridged = false;
  }
}
