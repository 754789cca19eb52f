/**
 * Terminal sessions on the engine. The instance holding the operator's socket owns a
 * session: it admits it (scope, site policy, limits), signs the grant, relays keystrokes
 * to the agent and output to the operator, records, audits and ends it. Agents' frames
 * reach the owner through the {@link Relay}; frames to the agent go through the realtime
 * channel (routed to whichever instance holds the agent's socket, held briefly when the
 * agent is between sockets).
 *
 * Flow control is end to end: the agent reads the terminal only while the output it sent
 * minus what the operator's console confirmed (`terminal_ack`) is below the window, so
 * a fast program blocks on its own terminal instead of filling buffers; keystrokes are
 * bounded the same way by the console. Both directions carry byte offsets, so after a
 * blip of either socket each side resends what the other may have missed and duplicates
 * are dropped (`terminal_attach` from the console, `terminal_sync` from the agent).
 *
 * @module
 */
import {
  base64Length,
  fromBase64,
  OffsetAssembler,
  toBase64,
} from "../../agent/terminal/offsets.ts";
import type { Auditor } from "../../core/audit.ts";
import type { Principal } from "../../core/auth.ts";
import { canSeeSite } from "../../core/auth.ts";
import type { Clock } from "../../core/clock.ts";
import { badRequest, conflict, forbidden, HttpError, notFound } from "../../core/errors.ts";
import { type EventBus, eventKey } from "../../core/events.ts";
import type { Logger } from "../../core/log.ts";
import type { Vault } from "../aegis/mod.ts";
import { type InventoryService, isGuid } from "../inventory/mod.ts";
import type { OperatorsService } from "../operators/mod.ts";
import type { AgentChannel, AgentMessage, OperatorLink } from "../realtime/mod.ts";
import { INPUT_WINDOW_BYTES, TERMINAL_CHUNK_BYTES } from "./api.ts";
import type { GrantSigner } from "./grant.ts";
import type { Relay, RelayedFrame } from "./relay.ts";
import type {
  AckFrame,
  AgentExit,
  AgentOpened,
  AgentOutput,
  AgentSync,
  AttachFrame,
  InputFrame,
  OpenFrame,
  ResizeFrame,
} from "./schemas.ts";
import type { SessionRow, TerminalStore } from "./store.ts";
import { Recorder } from "./transcript.ts";
import type { z } from "@hono/zod-openapi";

/** Settings the sessions need. */
export interface SessionSettings {
  maxPerDevice: number;
  maxPerOperator: number;
  idleMs: number;
  resumeMs: number;
  openTimeoutMs: number;
  windowBytes: number;
}

/** What {@link TerminalSessions} works with. */
export interface SessionDeps {
  store: TerminalStore;
  channel: AgentChannel;
  inventory: InventoryService;
  operators: OperatorsService;
  vault: Vault;
  grants: GrantSigner;
  relay: Relay;
  events: EventBus;
  clock: Clock;
  log: Logger;
  audit: Auditor;
  instanceId: string;
  settings: SessionSettings;
}

interface Live {
  id: string;
  guid: string;
  hostname: string;
  siteId: number | null;
  principal: Principal;
  link?: OperatorLink;
  status: "opening" | "open" | "detached";
  createdAt: number;
  lastInputAt: number;
  detachedAt?: number;
  agentAwaySince?: number;
  /** Output: `next` is what the console has been sent. */
  out: OffsetAssembler;
  /** Output the console confirmed. */
  outAcked: number;
  lastAckResentAt: number;
  /** Keystrokes received from the console (next expected offset). */
  inReceived: number;
  /** Keystrokes the agent reported written. */
  inConsumed: number;
  /** Keystrokes kept for a resend to the agent: [inConsumed, inReceived). */
  inBuf: Array<{ offset: number; bytes: Uint8Array }>;
  recorder?: Recorder;
  /** Output recorded up to here (a new owner does not record twice). */
  recordedUpTo: number;
  chain: Promise<void>;
  /** Frames for the agent held until it confirms the shell started. */
  early?: AgentMessage[];
  flushed: { in: number; out: number };
  exitPending?: { code: number | null; reason: string; bytesOut: number; at: number };
  closing: boolean;
}

const ownerMoved = eventKey<{ session_id: string; instance: string }>("terminal.owner_moved");
const closeRequest = eventKey<{ session_id: string; reason: string }>("terminal.close_request");

/** How long an exit waits for output still on its way. */
const EXIT_GRACE_MS = 5000;
/** The operator socket's close code when the session or token that opened it ended. */
const SESSION_ENDED_CLOSE = 4401;

/** The sessions of one engine instance. */
export class TerminalSessions {
  readonly #live = new Map<string, Live>();
  readonly #links = new WeakSet<OperatorLink>();
  readonly #strays = new Map<string, number>();

  constructor(private readonly d: SessionDeps) {
    d.events.subscribe(ownerMoved, (e) => {
      if (e.instance === d.instanceId) return;
      const s = this.#live.get(e.session_id);
      if (!s) return;
      // Another instance took the session over (the console came back there).
      this.#live.delete(e.session_id);
      void s.recorder?.flush();
      void this.#flushCounters(s);
    });
    d.events.subscribe(closeRequest, (e) => {
      const s = this.#live.get(e.session_id);
      if (s) void this.#close(s, e.reason, { notifyAgent: true });
    });
    d.relay.on("terminal_opened", (f) => this.#agentOpened(f));
    d.relay.on("terminal_output", (f) => this.#agentOutput(f));
    d.relay.on("terminal_exit", (f) => this.#agentExit(f));
    d.relay.on("terminal_sync", (f) => this.#agentSync(f));
  }

  /** Sessions this instance owns. */
  get size(): number {
    return this.#live.size;
  }

  /** Bytes held for reordering, resends and transcripts. */
  bufferedBytes(): number {
    let n = 0;
    for (const s of this.#live.values()) {
      n += s.out.heldBytes + (s.recorder?.pendingBytes ?? 0);
      for (const b of s.inBuf) n += b.bytes.length;
    }
    return n;
  }

  // ---------------------------------------------------------------- operator side

  /** The operator's scope now (a User's site assignments may have changed since sign-in). */
  async #currentScope(p: Principal): Promise<Principal> {
    if (p.kind !== "operator") throw forbidden("operator_required", "terminals are for operators");
    if (p.readOnly) throw forbidden("read_only_token", "this API token is read-only");
    if (p.role === "Admin") return p;
    const [c] = await this.d.operators.contacts([p.id]);
    if (!c || c.disabled) {
      throw forbidden("operator_disabled", "this account cannot open terminals");
    }
    return { ...p, role: c.role, sites: c.sites };
  }

  #watch(link: OperatorLink): void {
    if (this.#links.has(link)) return;
    this.#links.add(link);
    link.onClose((code) => {
      for (const s of this.#live.values()) {
        if (s.link !== link) continue;
        // Signed out (or the token revoked): the shell ends now instead of waiting for a
        // console that can no longer come back with that session.
        if (code === SESSION_ENDED_CLOSE) {
          void this.#close(s, "operator_signed_out", { notifyAgent: true });
        } else void this.#detach(s);
      }
    });
  }

  /** `terminal_open`: admits, records and asks the agent to start a shell. */
  async open(link: OperatorLink, f: z.infer<typeof OpenFrame>) {
    const d = this.d;
    const p = await this.#currentScope(link.principal);
    const guid = f.guid.toUpperCase();
    const device = isGuid(guid) ? await d.inventory.device(guid) : null;
    if (!device || !canSeeSite(p, device.site_id)) throw notFound(`no device ${f.guid}`);
    const target = `device:${guid}`;
    const deny = async (err: HttpError) => {
      await d.audit(null, {
        actor: p,
        action: "terminal.session.open",
        target,
        outcome: "denied",
        details: { hostname: device.hostname, refused: err.code },
      });
      return err;
    };
    if (device.status !== "active") {
      throw await deny(conflict("device_not_active", `this device is ${device.status}`));
    }
    const policy = await d.store.policy(device.site_id);
    if (!policy.terminal_enabled) {
      throw await deny(forbidden("terminal_disabled", "terminals are turned off for this site"));
    }
    const reason = f.reason?.trim() || null;
    if (policy.require_reason && !reason) {
      throw await deny(
        badRequest("reason_required", "this site asks for a reason to open a terminal"),
      );
    }
    if (!d.channel.connected(guid) && !(await d.channel.connectedNow(guid))) {
      throw conflict("agent_offline", "the device's agent is not connected");
    }
    const recorded = policy.record_transcripts;
    if (recorded && d.vault.state() !== "unlocked") {
      throw new HttpError(
        423,
        "aegis_locked",
        "this site records terminal sessions and the vault is locked; unlock it first",
      );
    }
    const id = crypto.randomUUID();
    await d.store.admit({
      id,
      guid,
      hostname: device.hostname,
      siteId: device.site_id,
      operatorId: p.id,
      operatorName: p.name,
      reason,
      runAs: f.run_as,
      owner: d.instanceId,
      recorded,
      cols: f.cols,
      rows: f.rows,
    }, { perDevice: d.settings.maxPerDevice, perOperator: d.settings.maxPerOperator });
    let grant;
    try {
      grant = await d.grants.sign(d.clock.now(), {
        purpose: "terminal",
        id,
        guid,
        operator: p.name,
        via: d.instanceId,
      }, {
        cols: f.cols,
        rows: f.rows,
        run_as: f.run_as,
        window: d.settings.windowBytes,
        chunk: TERMINAL_CHUNK_BYTES,
        idle_seconds: Math.round(d.settings.idleMs / 1000),
        resume_seconds: Math.round(d.settings.resumeMs / 1000),
      });
    } catch (err) {
      await d.store.close(id, { reason: "signing_failed" });
      throw err;
    }
    const now = d.clock.now();
    const s: Live = {
      id,
      guid,
      hostname: device.hostname,
      siteId: device.site_id,
      principal: p,
      link,
      status: "opening",
      createdAt: now,
      lastInputAt: now,
      out: new OffsetAssembler(0, d.settings.windowBytes * 2),
      outAcked: 0,
      lastAckResentAt: 0,
      inReceived: 0,
      inConsumed: 0,
      inBuf: [],
      recordedUpTo: 0,
      chain: Promise.resolve(),
      flushed: { in: 0, out: 0 },
      closing: false,
    };
    if (recorded) s.recorder = this.#recorder(id, now, 0);
    s.recorder?.resize(now, f.cols, f.rows);
    this.#live.set(id, s);
    this.#watch(link);
    this.#toAgent(s, { type: "terminal_open", data: grant });
    // Keystrokes typed before the shell runs wait here, not in an agent that cannot place them.
    s.early = [];
    await d.audit(null, {
      actor: p,
      action: "terminal.session.open",
      target,
      details: { session_id: id, hostname: device.hostname, reason, run_as: f.run_as, recorded },
    });
    return {
      session_id: id,
      hostname: device.hostname,
      recording: recorded,
      window: d.settings.windowBytes,
      input_window: INPUT_WINDOW_BYTES,
      chunk: TERMINAL_CHUNK_BYTES,
    };
  }

  #recorder(id: string, startedAt: number, seq: number): Recorder {
    return new Recorder(
      (n, text, bytes) =>
        this.d.store.addTranscript(
          id,
          n,
          bytes,
          (row) =>
            this.d.vault.seal(text, { table: "terminal_transcripts", column: "sealed", row }),
        ),
      startedAt,
      seq,
      (err) =>
        this.d.log.warn(
          `terminal ${id}: a transcript chunk was not stored: ${
            err instanceof Error ? err.message : err
          }`,
        ),
    );
  }

  /** `terminal_attach`: a console back after a blip (possibly on this instance for the first time). */
  async attach(link: OperatorLink, f: z.infer<typeof AttachFrame>) {
    const d = this.d;
    const p = link.principal;
    const before = await d.store.session(f.session_id);
    if (!before || before.operator_id !== p.id || before.status === "closed") {
      throw notFound("the session has ended");
    }
    // The operator's sites may have changed while the console was away (the socket is
    // closed and reopened on such a change): a device no longer in scope ends the shell.
    const now = await this.#currentScope(p).catch(() => null);
    const device = await d.inventory.device(before.device_guid.toUpperCase());
    if (!now || !device || !canSeeSite(now, device.site_id)) {
      await this.closeAnywhere(before.id, "operator_scope_lost");
      throw notFound("the session has ended");
    }
    const row = await d.store.claim(f.session_id, p.id, d.instanceId);
    if (!row) throw notFound("the session has ended");
    let s = this.#live.get(row.id);
    if (!s) {
      s = this.#fromRow(row, p);
      if (row.recorded) {
        s.recorder = this.#recorder(
          row.id,
          (row.started_at ?? row.created_at).getTime(),
          await d.store.nextTranscriptSeq(row.id),
        );
      }
      this.#live.set(row.id, s);
      await d.events.publish(ownerMoved, { session_id: row.id, instance: d.instanceId });
    }
    s.link = link;
    s.status = row.started_at ? "open" : "opening";
    s.detachedAt = undefined;
    s.lastInputAt = d.clock.now();
    s.out.reset(f.offset);
    s.inReceived = Math.max(f.input, s.inConsumed);
    s.inBuf = [];
    this.#watch(link);
    this.#toAgent(s, {
      type: "terminal_resume",
      data: { session_id: s.id, offset: f.offset, via: d.instanceId },
    });
    if (f.cols && f.rows) {
      this.#toAgent(s, {
        type: "terminal_resize",
        data: { session_id: s.id, cols: f.cols, rows: f.rows },
      });
    }
    return {
      session_id: s.id,
      status: s.status,
      hostname: s.hostname,
      recording: !!s.recorder,
      input: s.inReceived,
      window: d.settings.windowBytes,
      input_window: INPUT_WINDOW_BYTES,
      chunk: TERMINAL_CHUNK_BYTES,
    };
  }

  #fromRow(row: SessionRow, p: Principal): Live {
    const now = this.d.clock.now();
    const out = Number(row.bytes_out);
    return {
      id: row.id,
      guid: row.device_guid.toUpperCase(),
      hostname: row.hostname,
      siteId: row.site_id,
      principal: p,
      status: row.started_at ? "open" : "opening",
      createdAt: row.created_at.getTime(),
      lastInputAt: now,
      out: new OffsetAssembler(out, this.d.settings.windowBytes * 2),
      outAcked: 0,
      lastAckResentAt: 0,
      inReceived: Number(row.bytes_in),
      inConsumed: 0,
      inBuf: [],
      recordedUpTo: out,
      chain: Promise.resolve(),
      flushed: { in: Number(row.bytes_in), out },
      closing: false,
    };
  }

  #mine(link: OperatorLink, id: string): Live {
    const s = this.#live.get(id);
    if (!s || s.link !== link) throw notFound("no such terminal session on this connection");
    return s;
  }

  /** `terminal_input`. */
  input(link: OperatorLink, f: z.infer<typeof InputFrame>): void {
    const s = this.#mine(link, f.session_id);
    let bytes: Uint8Array = fromBase64(f.data);
    if (f.offset + bytes.length <= s.inReceived) return; // a resend we already have
    if (f.offset > s.inReceived) {
      throw badRequest("input_gap", `input expected at offset ${s.inReceived}`);
    }
    bytes = bytes.subarray(s.inReceived - f.offset);
    if (s.inReceived + bytes.length - s.inConsumed > INPUT_WINDOW_BYTES * 2) {
      throw conflict("input_window_exceeded", "too many keystrokes not yet written by the agent");
    }
    const offset = s.inReceived;
    s.inBuf.push({ offset, bytes });
    s.inReceived += bytes.length;
    s.lastInputAt = this.d.clock.now();
    this.#toAgent(s, {
      type: "terminal_input",
      data: { session_id: s.id, offset, data: toBase64(bytes) },
    });
  }

  /** `terminal_resize`. */
  resize(link: OperatorLink, f: z.infer<typeof ResizeFrame>): void {
    const s = this.#mine(link, f.session_id);
    const now = this.d.clock.now();
    s.lastInputAt = now;
    s.recorder?.resize(now, f.cols, f.rows);
    this.#toAgent(s, { type: "terminal_resize", data: f });
  }

  /** `terminal_ack`. */
  ack(link: OperatorLink, f: z.infer<typeof AckFrame>): void {
    const s = this.#mine(link, f.session_id);
    if (f.offset <= s.outAcked) return;
    if (f.offset > s.out.next) {
      throw badRequest("ack_beyond_output", "acknowledged output that was never sent");
    }
    s.outAcked = f.offset;
    this.#toAgent(s, { type: "terminal_ack", data: { session_id: s.id, offset: f.offset } });
  }

  /** `terminal_close` from the console. */
  async closeByOperator(link: OperatorLink, id: string): Promise<{ session_id: string }> {
    const s = this.#mine(link, id);
    await this.#close(s, "operator_closed", { notifyAgent: true });
    return { session_id: id };
  }

  /**
   * Ends a session wherever it is owned (admin close, containment): the owner ends it;
   * a session nobody owns any more is closed in the database and its agent told.
   */
  async closeAnywhere(id: string, reason: string): Promise<void> {
    const s = this.#live.get(id);
    if (s) return await this.#close(s, reason, { notifyAgent: true });
    await this.d.events.publish(closeRequest, { session_id: id, reason });
    const row = await this.d.store.session(id);
    if (!row || row.status === "closed") return;
    const alive = await this.d.channel.liveInstances();
    if (!alive.has(row.owner_instance) || row.status === "detached") {
      const closed = await this.d.store.close(id, { reason });
      if (closed) {
        await this.#tellAgentClose(closed.device_guid, id, reason);
        await this.#auditClose(closed);
      }
    }
  }

  /** Ends every live session of a device (containment). */
  async closeDevice(guid: string, reason: string): Promise<void> {
    const rows = await this.d.store.listSessions({
      guid: guid.toUpperCase(),
      status: "live",
      sites: null,
      limit: 1000,
    });
    for (const r of rows) await this.closeAnywhere(r.id, reason);
  }

  async #tellAgentClose(guid: string, id: string, reason: string): Promise<void> {
    await this.d.channel.send(guid.toUpperCase(), {
      type: "terminal_close",
      data: { session_id: id, reason },
    }).catch(() => {});
  }

  async #detach(s: Live): Promise<void> {
    if (s.closing || !this.#live.has(s.id)) return;
    s.link = undefined;
    s.status = "detached";
    s.detachedAt = this.d.clock.now();
    await s.recorder?.flush();
    await this.d.store.detached(s.id, s.inReceived, s.out.next);
    s.flushed = { in: s.inReceived, out: s.out.next };
  }

  // ---------------------------------------------------------------- agent side

  #ours(f: RelayedFrame, id: string): Live | undefined {
    const s = this.#live.get(id);
    return s && s.guid === f.guid ? s : undefined;
  }

  /** A frame for a session this instance does not own: end orphaned shells. */
  async #stray(f: RelayedFrame, id: string): Promise<void> {
    if (f.type === "terminal_exit") {
      const data = f.data as z.infer<typeof AgentExit>;
      await this.d.store.lateExit(id, data.code, data.bytes_out);
      return;
    }
    // One lookup per stray session every few seconds, however many frames it sends.
    const now = this.d.clock.now();
    if ((this.#strays.get(id) ?? -Infinity) > now - 5000) return;
    this.#strays.set(id, now);
    for (const [k, at] of this.#strays) if (at < now - 60_000) this.#strays.delete(k);
    const row = await this.d.store.session(id);
    if (!row || row.device_guid.toUpperCase() !== f.guid) {
      return await this.#tellAgentClose(f.guid, id, "unknown_session");
    }
    if (row.status === "closed") await this.#tellAgentClose(f.guid, id, row.end_reason ?? "closed");
    // Otherwise another instance owns it now; the agent was told the new address.
  }

  async #agentOpened(f: RelayedFrame): Promise<void> {
    const data = f.data as z.infer<typeof AgentOpened>;
    const s = this.#ours(f, data.session_id);
    if (!s) return await this.#stray(f, data.session_id);
    if (s.status === "opening") s.status = s.link ? "open" : "detached";
    const early = s.early ?? [];
    s.early = undefined;
    for (const m of early) this.#toAgent(s, m);
    await this.d.store.started(s.id, {
      mode: data.mode,
      user: data.user ?? null,
      pid: data.pid ?? null,
    });
    s.link?.send({
      type: "terminal_opened",
      data: { session_id: s.id, mode: data.mode, user: data.user ?? null, pid: data.pid ?? null },
    });
  }

  #agentOutput(f: RelayedFrame): Promise<void> | void {
    const data = f.data as z.infer<typeof AgentOutput>;
    const s = this.#ours(f, data.session_id);
    if (!s) return this.#stray(f, data.session_id);
    s.agentAwaySince = undefined;
    const inputMoved = data.input > s.inConsumed;
    if (inputMoved) {
      s.inConsumed = data.input;
      while (s.inBuf.length && s.inBuf[0]!.offset + s.inBuf[0]!.bytes.length <= s.inConsumed) {
        s.inBuf.shift();
      }
    }
    const start = s.out.next;
    // The common case — the next bytes, in order, not recorded — is relayed as it came.
    if (!s.recorder && s.out.advance(data.offset, base64Length(data.data))) {
      this.#toConsole(s, start, data.data);
      if (s.exitPending && s.out.next >= s.exitPending.bytesOut) void this.#finish(s);
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(data.data);
    } catch {
      return;
    }
    const r = s.out.push(data.offset, bytes);
    if (r.duplicate) {
      // A resend after the agent's reconnect: the acknowledgement it waits for may be lost.
      const now = this.d.clock.now();
      if (now - s.lastAckResentAt > 1000) {
        s.lastAckResentAt = now;
        this.#toAgent(s, { type: "terminal_ack", data: { session_id: s.id, offset: s.outAcked } });
      }
    }
    if (r.overflow) {
      this.d.log.warn(`terminal ${s.id}: output arrived too far ahead; dropped`);
    }
    const ready = r.ready.length === 1 ? r.ready[0]! : concat(r.ready);
    if (ready.length || inputMoved) this.#toConsole(s, start, ready);
    if (s.exitPending && s.out.next >= s.exitPending.bytesOut) void this.#finish(s);
  }

  /** Output for the console: bytes, or base64 passed through untouched. */
  #toConsole(s: Live, offset: number, bytes: Uint8Array | string): void {
    if (
      typeof bytes !== "string" && bytes.length && s.recorder &&
      offset + bytes.length > s.recordedUpTo
    ) {
      s.recorder.output(this.d.clock.now(), bytes.subarray(Math.max(0, s.recordedUpTo - offset)));
      s.recordedUpTo = offset + bytes.length;
    }
    const link = s.link;
    if (!link) return;
    // Flow control keeps this small; a console that confirms output it never read is cut off.
    if (link.bufferedAmount > this.d.settings.windowBytes * 4 + 1_048_576) {
      void this.#close(s, "operator_too_slow", { notifyAgent: true });
      return;
    }
    link.send({
      type: "terminal_output",
      data: {
        session_id: s.id,
        offset,
        data: typeof bytes === "string" ? bytes : toBase64(bytes),
        input: s.inConsumed,
      },
    });
  }

  async #agentExit(f: RelayedFrame): Promise<void> {
    const data = f.data as z.infer<typeof AgentExit>;
    const s = this.#ours(f, data.session_id);
    if (!s) return await this.#stray(f, data.session_id);
    s.exitPending = {
      code: data.code,
      reason: data.reason,
      bytesOut: data.bytes_out,
      at: this.d.clock.now(),
    };
    if (s.out.next >= data.bytes_out || !s.link) await this.#finish(s);
  }

  async #finish(s: Live): Promise<void> {
    const e = s.exitPending!;
    await this.#close(s, e.reason || "exited", { notifyAgent: false, exitCode: e.code });
  }

  #agentSync(f: RelayedFrame): void {
    const data = f.data as z.infer<typeof AgentSync>;
    const s = this.#ours(f, data.session_id);
    if (!s) return void this.#stray(f, data.session_id);
    s.agentAwaySince = undefined;
    this.#toAgent(s, { type: "terminal_ack", data: { session_id: s.id, offset: s.outAcked } });
    s.inConsumed = Math.max(s.inConsumed, data.input);
    s.inBuf = s.inBuf.filter((b) => b.offset + b.bytes.length > s.inConsumed);
    for (const b of s.inBuf) {
      const skip = Math.max(0, s.inConsumed - b.offset);
      this.#toAgent(s, {
        type: "terminal_input",
        data: {
          session_id: s.id,
          offset: b.offset + skip,
          data: toBase64(b.bytes.subarray(skip)),
        },
      });
    }
  }

  /** Sends to the agent in order (each send waits for the previous one). */
  #toAgent(s: Live, message: AgentMessage): void {
    if (s.early && message.type !== "terminal_close") {
      if (s.early.length < 1024) s.early.push(message);
      return;
    }
    s.chain = s.chain.then(async () => {
      await this.d.channel.send(s.guid, message);
    }).catch((err) =>
      this.d.log.warn(
        `terminal ${s.id}: ${message.type} not sent: ${err instanceof Error ? err.message : err}`,
      )
    );
  }

  // ---------------------------------------------------------------- ending

  async #close(
    s: Live,
    reason: string,
    o: { notifyAgent: boolean; exitCode?: number | null },
  ): Promise<void> {
    if (s.closing) return;
    s.closing = true;
    this.#live.delete(s.id);
    if (o.notifyAgent) {
      this.#toAgent(s, { type: "terminal_close", data: { session_id: s.id, reason } });
    }
    await s.recorder?.flush();
    const row = await this.d.store.close(s.id, {
      reason,
      exitCode: o.exitCode ?? null,
      bytesIn: s.inReceived,
      bytesOut: Math.max(s.out.next, s.exitPending?.bytesOut ?? 0),
    });
    if (row) await this.#auditClose(row);
    // The record and the audit entry are written before the console hears of the end.
    s.link?.send({
      type: "terminal_exit",
      data: { session_id: s.id, code: o.exitCode ?? null, reason },
    });
  }

  async #auditClose(row: SessionRow): Promise<void> {
    const started = row.started_at ?? row.created_at;
    await this.d.audit(null, {
      actor: { kind: "operator", id: row.operator_id, name: row.operator_name, sites: "all" },
      action: "terminal.session.close",
      target: `device:${row.device_guid.toUpperCase()}`,
      details: {
        session_id: row.id,
        hostname: row.hostname,
        reason: row.end_reason,
        exit_code: row.exit_code,
        bytes_in: Number(row.bytes_in),
        bytes_out: Number(row.bytes_out),
        seconds: row.ended_at
          ? Math.round((row.ended_at.getTime() - started.getTime()) / 1000)
          : null,
      },
    });
  }

  async #flushCounters(s: Live): Promise<void> {
    const out = Math.max(s.out.next, s.flushed.out);
    if (s.inReceived === s.flushed.in && out === s.flushed.out) return;
    await this.d.store.counters(s.id, s.inReceived, out);
    s.flushed = { in: s.inReceived, out };
  }

  /** The periodic checks (every few seconds). */
  async sweep(): Promise<void> {
    const d = this.d;
    const now = d.clock.now();
    for (const s of [...this.#live.values()]) {
      if (s.closing) continue;
      let reason: string | undefined;
      if (s.status === "opening" && now - s.createdAt > d.settings.openTimeoutMs) {
        reason = "agent_no_answer";
      } else if (s.status === "detached" && now - (s.detachedAt ?? now) > d.settings.resumeMs) {
        reason = "operator_gone";
      } else if (now - s.lastInputAt > d.settings.idleMs) {
        reason = "idle";
      } else if (s.exitPending && now - s.exitPending.at > EXIT_GRACE_MS) {
        await this.#finish(s);
        continue;
      }
      if (!reason) {
        if (d.channel.connected(s.guid)) s.agentAwaySince = undefined;
        else {
          s.agentAwaySince ??= now;
          if (now - s.agentAwaySince > d.settings.resumeMs) reason = "agent_gone";
        }
      }
      if (reason) {
        await this.#close(s, reason, { notifyAgent: true });
        continue;
      }
      await s.recorder?.flush();
      await this.#flushCounters(s);
    }
  }

  /**
   * Sessions whose owning instance is gone (one instance runs this): first marked
   * detached, so a console coming back to another instance within the resume window can
   * take them over; closed, and their agents told, once that window has passed.
   */
  async reapOrphans(): Promise<number> {
    const now = this.d.clock.now();
    const rows = await this.d.store.orphaned(await this.d.channel.liveInstances());
    let n = 0;
    for (const r of rows) {
      if (r.status !== "detached") {
        await this.d.store.detached(r.id, 0, 0);
        continue;
      }
      if (now - (r.detached_at?.getTime() ?? 0) <= this.d.settings.resumeMs) continue;
      const closed = await this.d.store.close(r.id, { reason: "engine_lost" });
      if (!closed) continue;
      n++;
      await this.#tellAgentClose(closed.device_guid, closed.id, "engine_lost");
      await this.#auditClose(closed);
    }
    return n;
  }

  /** Shutdown: the consoles come back to another instance (or this one after a restart). */
  async stop(): Promise<void> {
    for (const s of this.#live.values()) {
      await s.recorder?.flush();
      await this.d.store.detached(s.id, s.inReceived, s.out.next).catch(() => {});
    }
    this.#live.clear();
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (!parts.length) return new Uint8Array(0);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
