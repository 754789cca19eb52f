/**
 * Which agent is connected where. Local sockets live in memory; every connection is
 * also a row in `agent_connections` naming its engine instance, so a message sent
 * through any instance is delivered locally or routed over the event bus to the
 * instance holding the socket. A message for an agent that is nowhere is held in
 * `agent_outbox` for a short window and delivered when the agent connects (to any
 * instance).
 *
 * @module
 */
import { Batcher } from "../../core/batcher.ts";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { type EventBus, eventKey } from "../../core/events.ts";
import type { Logger } from "../../core/log.ts";

/** One JSON frame: `{type, id?, data}`. */
export interface AgentMessage {
  type: string;
  id?: string;
  data?: unknown;
}

/** Outcome of {@link AgentRegistry.send}. */
export interface SendResult {
  /** "delivered" here, "routed" to another instance, or "offline" (held until `held_until`). */
  status: "delivered" | "routed" | "offline";
  held_until?: string;
}

/** A connected agent socket on this instance. */
export interface LocalAgent {
  guid: string;
  hostname: string;
  siteId: number | null;
  connectedAt: number;
  agentId?: string;
  serviceMode?: string;
  remoteAddr?: string;
  /**
   * When the agent asked for this connection (ms): its DPoP proof's `iat`, or the
   * engine's clock for a ticket. Of two connections of one agent the later request wins.
   */
  requestedAt?: number;
  send(message: AgentMessage): boolean;
  close(code: number, reason: string): void;
  /** Settles once the socket is closed (the close handshake finished or the link dropped). */
  closed?: Promise<void>;
}

const routed = eventKey<{ instance: string; guid: string; message: AgentMessage }>(
  "realtime.route_to_agent",
);
const disconnect = eventKey<{ guid: string; code: number; reason: string }>(
  "realtime.disconnect_agent",
);

/** One socket's registration row. */
interface Registration {
  guid: string;
  agentId: string | null;
  serviceMode: string | null;
  connectedAt: Date;
  remoteAddr: string | null;
}

/** Options of {@link AgentRegistry}. */
export interface RegistryOptions {
  sql: Sql;
  clock: Clock;
  events: EventBus;
  log: Logger;
  instanceId: string;
  holdMs: number;
  /** An instance whose heartbeat is older than this is considered dead. */
  instanceStaleMs: number;
}

/** The registry of one engine instance. */
export class AgentRegistry {
  readonly #o: RegistryOptions;
  readonly #local = new Map<string, LocalAgent>();
  /** Devices connected to other live instances (refreshed from SQL by {@link maintain}). */
  readonly #remote = new Map<string, string>();
  /** Connected agents whose held messages could not be handed over yet. */
  readonly #heldPending = new Set<string>();
  /** Set by {@link closeAll}: closing sockets leave the map without a statement each. */
  #closingAll = false;

  /**
   * Registrations, batched: a fleet returning after a restart registers thousands of
   * sockets a second, one upsert and one outbox read each unless they share statements.
   */
  readonly #registrations: Batcher<Registration, AgentMessage[] | null | Error>;

  constructor(o: RegistryOptions) {
    this.#o = o;
    this.#registrations = new Batcher((items) => this.#register(items), 1000, 2);
    o.events.subscribe(routed, (e) => {
      if (e.instance !== o.instanceId) return;
      const agent = this.#local.get(e.guid);
      if (agent) agent.send(e.message);
      else void this.#hold(e.guid, e.message);
    });
    o.events.subscribe(disconnect, (e) => this.#local.get(e.guid)?.close(e.code, e.reason));
  }

  /** Agents connected to this instance. */
  get localCount(): number {
    return this.#local.size;
  }

  /** Local agent sockets. */
  locals(): IterableIterator<LocalAgent> {
    return this.#local.values();
  }

  /** True when the agent's socket is open on this or (as far as we know) another instance. */
  isConnected(guid: string): boolean {
    return this.#local.has(guid) || this.#remote.has(guid);
  }

  /**
   * Registers a connected agent (replacing, and closing, an older socket of the same
   * agent): this instance's socket map, then its row (so other instances can route to
   * it), then `registered` (the socket sends `welcome` there, so an agent that has its
   * welcome is reachable from every instance), then the messages held for it while it
   * was away. Rejects only when registering failed; held messages the database cannot
   * hand over now are tried again by {@link maintain} while the agent stays connected.
   */
  async add(agent: LocalAgent, registered?: () => void): Promise<void> {
    const old = this.#local.get(agent.guid);
    if (old && old !== agent) {
      // An upgrade the agent asked for before the connection it holds — an attempt it
      // gave up on (its open timed out) that a busy engine read late — must not replace
      // it: the agent would take the close of its live socket for a real replacement and
      // stay away. iat has whole seconds; within one second the later arrival wins.
      if ((agent.requestedAt ?? Infinity) < (old.requestedAt ?? -Infinity)) {
        agent.close(4409, "a newer connection of this agent is open");
        return;
      }
      old.close(4409, "replaced by a newer connection");
    }
    this.#local.set(agent.guid, agent);
    const described = agent.agentId ?? null;
    const held = await this.#registrations.add({
      guid: agent.guid,
      agentId: described,
      serviceMode: agent.serviceMode ?? null,
      connectedAt: new Date(this.#o.clock.now()),
      remoteAddr: agent.remoteAddr ?? null,
    });
    if (held instanceof Error) throw held;
    // connect_agent may have been handled while this row was being written (its update
    // can run first on another pooled connection and find no row): write it again.
    if ((agent.agentId ?? null) !== described) {
      await this.#o.sql`
        update agent_connections set agent_id = ${agent.agentId ?? null},
          service_mode = ${agent.serviceMode ?? null}
        where guid = ${agent.guid} and instance_id = ${this.#o.instanceId}`;
    }
    registered?.();
    // The messages held while it was away, in the order they were held; null: registered,
    // but they could not be taken with it (handed over later, see #deliverHeld).
    if (held === null) await this.#deliverHeld(agent);
    else for (const message of held) agent.send(message);
  }

  /**
   * Writes a batch of registrations (one upsert) and takes the messages held for those
   * agents (one delete … returning): two statements' work in one round trip.
   */
  async #register(items: Registration[]): Promise<Array<AgentMessage[] | null | Error>> {
    // One row per agent: a socket replaced within the same batch keeps the newest values.
    const last = new Map<string, Registration>();
    for (const r of items) last.set(r.guid, r);
    const rows = [...last.values()];
    let held: { id: string; guid: string; message: AgentMessage }[];
    try {
      held = await this.#o.sql<{ id: string; guid: string; message: AgentMessage }[]>`
        with input as (
          select * from unnest(${rows.map((r) => r.guid)}::uuid[],
            ${rows.map((r) => r.agentId)}::text[], ${rows.map((r) => r.serviceMode)}::text[],
            ${rows.map((r) => r.connectedAt.toISOString())}::timestamptz[],
            ${rows.map((r) => r.remoteAddr)}::text[])
            as u(guid, agent_id, service_mode, connected_at, remote_addr)
        ), registered as (
          insert into agent_connections
            (guid, instance_id, agent_id, service_mode, connected_at, remote_addr)
          select guid, ${this.#o.instanceId}, agent_id, service_mode, connected_at, remote_addr
          from input
          on conflict (guid) do update set instance_id = excluded.instance_id,
            agent_id = excluded.agent_id, service_mode = excluded.service_mode,
            connected_at = excluded.connected_at, remote_addr = excluded.remote_addr
        )
        delete from agent_outbox o using input i
        where o.guid = i.guid and o.expires_at > ${new Date(this.#o.clock.now())}
        returning o.id, o.guid, o.message`;
    } catch (err) {
      if ((err as { code?: string }).code !== "23503") {
        // Registering may still work when taking the held messages did not (the database
        // went away between the two): register alone, hand them over later.
        await this.#upsert(rows);
        return items.map(() => null);
      }
      // A device purged meanwhile (foreign key) must not fail the others: one by one.
      if (rows.length === 1) throw err;
      const each = await Promise.all(
        rows.map((r) => this.#register([r]).then(([one]) => one!, (e) => e as Error)),
      );
      const byGuid = new Map(rows.map((r, i) => [r.guid, each[i]!]));
      return items.map((r) => last.get(r.guid) === r ? byGuid.get(r.guid)! : []);
    }
    held.sort((a, b) => Number(a.id) - Number(b.id));
    const byGuid = new Map<string, AgentMessage[]>();
    for (const h of held) {
      const g = h.guid.toUpperCase();
      const list = byGuid.get(g);
      if (list) list.push(h.message);
      else byGuid.set(g, [h.message]);
    }
    return items.map((r) => last.get(r.guid) === r ? byGuid.get(r.guid.toUpperCase()) ?? [] : []);
  }

  /** Registration rows alone (the fallback of {@link #register}). */
  async #upsert(rows: Registration[]): Promise<void> {
    await this.#o.sql`
      insert into agent_connections
        (guid, instance_id, agent_id, service_mode, connected_at, remote_addr)
      select g, ${this.#o.instanceId}, a, m, t, r
      from unnest(${rows.map((r) => r.guid)}::uuid[], ${rows.map((r) => r.agentId)}::text[],
        ${rows.map((r) => r.serviceMode)}::text[],
        ${rows.map((r) => r.connectedAt.toISOString())}::timestamptz[],
        ${rows.map((r) => r.remoteAddr)}::text[]) as u(g, a, m, t, r)
      on conflict (guid) do update set instance_id = excluded.instance_id,
        agent_id = excluded.agent_id, service_mode = excluded.service_mode,
        connected_at = excluded.connected_at, remote_addr = excluded.remote_addr`;
  }

  /**
   * Hands over what was held for `agent` (when registration could not take it at once);
   * on failure marks it for {@link maintain}.
   */
  async #deliverHeld(agent: LocalAgent): Promise<void> {
    try {
      await this.#drainOutbox(agent);
      this.#heldPending.delete(agent.guid);
    } catch (err) {
      if (this.#local.get(agent.guid) !== agent) return;
      // The socket stays: an agent that reconnected on every database hiccup would only
      // add load; its held messages keep until they expire.
      if (!this.#heldPending.has(agent.guid)) {
        this.#o.log.warn(
          `messages held for agent ${agent.guid} could not be handed over now ` +
            `(${err instanceof Error ? err.message : err}); trying again every few seconds`,
        );
      }
      this.#heldPending.add(agent.guid);
    }
  }

  /** Updates what the agent said about itself in `connect_agent`. */
  async describe(guid: string, agentId: string, serviceMode: string): Promise<void> {
    const a = this.#local.get(guid);
    if (!a) return;
    a.agentId = agentId;
    a.serviceMode = serviceMode;
    await this.#o.sql`
      update agent_connections set agent_id = ${agentId}, service_mode = ${serviceMode}
      where guid = ${guid} and instance_id = ${this.#o.instanceId}`;
  }

  /** Removes a closed socket (if it is still the registered one). */
  async remove(agent: LocalAgent): Promise<void> {
    if (this.#local.get(agent.guid) !== agent) return;
    this.#local.delete(agent.guid);
    this.#heldPending.delete(agent.guid);
    if (this.#closingAll) return; // closeAll removes this instance's rows in one statement
    await this.#o
      .sql`delete from agent_connections where guid = ${agent.guid} and instance_id = ${this.#o.instanceId}`;
  }

  /**
   * Whether the agent's socket is open anywhere right now: this instance's map, then the
   * shared table (fresher than {@link isConnected}, whose view of other instances is
   * refreshed every few seconds).
   */
  async connectedNow(guid: string): Promise<boolean> {
    const g = guid.toUpperCase();
    if (this.#local.has(g)) return true;
    const staleBefore = new Date(this.#o.clock.now() - this.#o.instanceStaleMs);
    const [row] = await this.#o.sql<{ instance_id: string }[]>`
      select c.instance_id from agent_connections c
      join realtime_instances i on i.instance_id = c.instance_id
      where c.guid = ${g} and i.alive_at >= ${staleBefore} and c.instance_id <> ${this.#o.instanceId}`;
    return !!row;
  }

  /** Sends a message to an agent wherever it is connected. */
  async send(guid: string, message: AgentMessage): Promise<SendResult> {
    const g = guid.toUpperCase();
    const local = this.#local.get(g);
    if (local?.send(message)) return { status: "delivered" };
    const staleBefore = new Date(this.#o.clock.now() - this.#o.instanceStaleMs);
    const [row] = await this.#o.sql<{ instance_id: string }[]>`
      select c.instance_id from agent_connections c
      join realtime_instances i on i.instance_id = c.instance_id
      where c.guid = ${g} and i.alive_at >= ${staleBefore} and c.instance_id <> ${this.#o.instanceId}`;
    if (row) {
      await this.#o.events.publish(routed, { instance: row.instance_id, guid: g, message });
      return { status: "routed" };
    }
    return await this.#hold(g, message);
  }

  async #hold(guid: string, message: AgentMessage): Promise<SendResult> {
    const now = this.#o.clock.now();
    const until = new Date(now + this.#o.holdMs);
    if (this.#o.holdMs > 0) {
      await this.#o.sql`
        insert into agent_outbox (guid, message, created_at, expires_at)
        select ${guid}, ${this.#o.sql.json(message as never)}, ${new Date(now)}, ${until}
        where exists (select 1 from device_view where guid = ${guid})`;
    }
    return { status: "offline", held_until: until.toISOString() };
  }

  async #drainOutbox(agent: LocalAgent): Promise<void> {
    const now = new Date(this.#o.clock.now());
    const rows = await this.#o.sql<{ message: AgentMessage }[]>`
      delete from agent_outbox where guid = ${agent.guid} and expires_at > ${now}
      returning id, message`;
    rows.sort((a, b) =>
      Number((a as unknown as { id: string }).id) - Number((b as unknown as { id: string }).id)
    );
    for (const r of rows) agent.send(r.message);
  }

  /** Closes the agent's socket wherever it is (containment). */
  async disconnect(guid: string, code: number, reason: string): Promise<void> {
    this.#local.get(guid.toUpperCase())?.close(code, reason);
    await this.#o.events.publish(disconnect, { guid: guid.toUpperCase(), code, reason });
  }

  /**
   * Heartbeat of this instance; refreshes which agents other live instances hold, and
   * hands over held messages that could not be delivered when their agent connected.
   */
  async maintain(): Promise<void> {
    const now = new Date(this.#o.clock.now());
    await this.#o.sql`
      insert into realtime_instances (instance_id, started_at, alive_at) values (${this.#o.instanceId}, ${now}, ${now})
      on conflict (instance_id) do update set alive_at = excluded.alive_at`;
    await this.#o.sql`
      insert into realtime_cluster_state (id, last_alive_at) values (1, ${now})
      on conflict (id) do update set last_alive_at = greatest(realtime_cluster_state.last_alive_at, excluded.last_alive_at)`;
    await this.loadRemote();
    for (const guid of [...this.#heldPending]) {
      const agent = this.#local.get(guid);
      if (agent) await this.#deliverHeld(agent);
      else this.#heldPending.delete(guid);
    }
  }

  /** Cluster-wide clean-up (one instance runs it). */
  async prune(): Promise<void> {
    const now = this.#o.clock.now();
    const stale = new Date(now - this.#o.instanceStaleMs);
    await this.#o.sql`delete from agent_outbox where expires_at <= ${new Date(now)}`;
    await this.#o.sql`
      delete from agent_connections c using realtime_instances i
      where c.instance_id = i.instance_id and i.alive_at < ${stale}`;
    await this.#o.sql`delete from realtime_instances where alive_at < ${new Date(
      now - 10 * this.#o.instanceStaleMs,
    )}`;
    await this.#o.sql`delete from agent_ws_tickets where expires_at <= ${new Date(now)}`;
    await this.#o.sql`delete from operator_ws_tickets where expires_at <= ${new Date(now)}`;
  }

  /** Ids of the instances whose heartbeat is fresh (this one always included). */
  async liveInstances(): Promise<Set<string>> {
    const stale = new Date(this.#o.clock.now() - this.#o.instanceStaleMs);
    const rows = await this.#o.sql<{ instance_id: string }[]>`
      select instance_id from realtime_instances where alive_at >= ${stale}`;
    return new Set([this.#o.instanceId, ...rows.map((r) => r.instance_id)]);
  }

  /** Loads which agents other live instances hold. */
  async loadRemote(): Promise<void> {
    const stale = new Date(this.#o.clock.now() - this.#o.instanceStaleMs);
    const rows = await this.#o.sql<{ guid: string; instance_id: string }[]>`
      select c.guid, c.instance_id from agent_connections c
      join realtime_instances i on i.instance_id = c.instance_id
      where i.alive_at >= ${stale} and c.instance_id <> ${this.#o.instanceId}`;
    this.#remote.clear();
    for (const r of rows) this.#remote.set(r.guid.toUpperCase(), r.instance_id);
  }

  /**
   * Closes every local socket (shutdown), and any `alsoOpen` not registered yet, with `code`
   * and a reason (one per agent when a function), waits until each socket has closed — the close frame went out and the agent
   * answered, or the link dropped; at most `waitMs` — and removes this instance's rows.
   */
  async closeAll(
    code: number,
    reason: string | ((agent: LocalAgent) => string),
    waitMs = Infinity,
    alsoOpen: Iterable<LocalAgent> = [],
  ): Promise<void> {
    this.#closingAll = true;
    // Sockets still being registered (opened, row not written yet) are closed too.
    const agents = [...new Set([...this.#local.values(), ...alsoOpen])];
    for (const a of agents) a.close(code, typeof reason === "string" ? reason : reason(a));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(agents.map((a) => a.closed)),
      // Real time: this is the process shutting down, whatever clock the engine runs on.
      ...(Number.isFinite(waitMs) ? [new Promise((r) => (timer = setTimeout(r, waitMs)))] : []),
    ]);
    clearTimeout(timer);
    this.#local.clear();
    await this.#o.sql`delete from agent_connections where instance_id = ${this.#o.instanceId}`;
    await this.#o.sql`delete from realtime_instances where instance_id = ${this.#o.instanceId}`;
  }
}
