/**
 * The vault: a key-encryption key (KEK) derived with scrypt from a passphrase or a key
 * file wraps data keys (DEKs); values are sealed with the active DEK under AES-256-GCM
 * whose associated data names the value's place (table, column, row). The KEK and DEKs
 * live in memory only.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import type { Clock } from "../../core/clock.ts";
import type { Sql } from "../../core/db.ts";
import { conflict, HttpError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { decrypt, deriveKey, encrypt, freshKdfParams, type KdfParams } from "./cipher.ts";

/** Where a sealed value lives; bound into the ciphertext. */
export interface SealPlace {
  table: string;
  column: string;
  row: string;
}

/** A column holding sealed values, registered so rotation and force-reset can find it. */
export interface SealedColumn {
  table: string;
  column: string;
  /** The column whose value (as a string) is the `row` of each value's {@link SealPlace}. */
  idColumn: string;
  /**
   * The `table` of each value's {@link SealPlace} when it differs from `table`: a column
   * moved to another table keeps the name its values were sealed under, so they open.
   */
  placeTable?: string;
  /**
   * Runs at force-reset instead of the default (setting the column to NULL); use it to
   * also mark dependent rows reset-required.
   */
  onReset?: (sql: Sql) => Promise<void>;
}

/** Vault state. */
export type VaultState = "unconfigured" | "locked" | "unlocked";

/** How the KEK's secret is supplied. */
export type VaultMode = "passphrase" | "keyfile";

/** Progress of a key rotation (stored in `aegis_state.rotation`, so it survives a stop). */
export interface RotationProgress {
  target_key_id: string;
  started_at: string;
  finished_at: string | null;
  /** Values re-encrypted so far. */
  moved: number;
  /** Values of the current pass that did not open (tampered, or under a lost key); left as they are. */
  failed: number;
  /** Sweep number: a sweep that ends with movable values left (written meanwhile by a stale instance) starts another. */
  pass?: number;
  /** Where the sweep resumes: index into the registered columns and the last row id done. */
  cursor?: { column: number; after: string | null };
}

/** What `GET /api/aegis/status` reports. */
export interface VaultStatus {
  state: VaultState;
  mode: VaultMode | null;
  key_id: string | null;
  kdf: { name: "scrypt"; N: number; r: number; p: number } | null;
  keys: Array<{ key_id: string; created_at: string; retired_at: string | null; values: number }>;
  sealed_columns: Array<{ table: string; column: string }>;
  sealed_values: number;
  rotation: (RotationProgress & { remaining: number; running: boolean }) | null;
}

/** The vault service other plugins use. */
export interface Vault {
  state(): VaultState;
  /** Seals `plaintext` for `place`: `aegis:v1:<key id>:<base64>`. 423 locked / 409 not configured. */
  seal(plaintext: string, place: SealPlace): Promise<string>;
  /** Opens a value sealed for exactly this `place`; throws on any mismatch or tampering. */
  open(sealed: string, place: SealPlace): Promise<string>;
  /** True when `value` looks like a sealed value. */
  isSealed(value: unknown): value is string;
  /** Registers a column of sealed values (call in `setup`). */
  registerColumn(column: SealedColumn): void;
  mode(): VaultMode | null;
  /** Passphrase mode: first-time setup (only while unconfigured). */
  setup(passphrase: string): Promise<void>;
  /** Passphrase mode: unlock (only while locked). */
  unlock(passphrase: string): Promise<void>;
  status(): Promise<VaultStatus>;
  /** Starts re-encrypting every registered value under a new data key. */
  startRotation(newPassphrase?: string): Promise<RotationProgress>;
  /** Moves one batch; returns whether the rotation has finished. */
  rotateStep(): Promise<{ moved: number; done: boolean }>;
  /** Destroys every sealed value and the keys; see {@link SealedColumn.onReset}. */
  forceReset(): Promise<ForceResetResult>;
}

/** What a force-reset destroyed, per registered column. */
export interface ForceResetResult {
  cleared: number;
  columns: Array<{ table: string; column: string; cleared: number }>;
}

/** Options for {@link AegisVault}. */
export interface VaultOptions {
  sql: Sql;
  clock: Clock;
  log: Logger;
  /** "auto": key-file mode unless the database was set up with a passphrase. */
  mode: "auto" | VaultMode;
  /** Key file path (created 0600 when missing). */
  keyFile: string;
  batchSize: number;
}

const VERIFY_PLAINTEXT = "borealis-aegis-verification-v1";
const VERIFY_AAD = "aegis:v1:verify";
const PREFIX = "aegis:v1:";
const SEALED = /^aegis:v1:([a-z0-9]{8,32}):([A-Za-z0-9+/]+={0,2})$/;

interface StateRow {
  mode: VaultMode;
  kdf_params: KdfParams;
  verification_token: string;
  active_key_id: string;
  rotation: RotationProgress | null;
}

const b64 = (u: Uint8Array) => Buffer.from(u).toString("base64");
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const newKeyId = () => randomBytes(6).toString("hex");
const wrapAad = (keyId: string) => `aegis:v1:dek:${keyId}`;
const placeAad = (keyId: string, p: SealPlace) =>
  `aegis:v1:${keyId}|${p.table}|${p.column}|${p.row}`;

/** Locked vault: the answer routes needing secrets give. */
export const lockedError = (): HttpError =>
  new HttpError(423, "aegis_locked", "the Aegis vault is locked; unlock it first");
/** Unconfigured vault. */
export const notConfiguredError = (): HttpError =>
  conflict("aegis_not_configured", "the Aegis vault is not set up yet");

/** The vault implementation. */
export class AegisVault implements Vault {
  #state: VaultState = "unconfigured";
  #mode: VaultMode | null = null;
  #kek?: Uint8Array;
  #deks = new Map<string, Uint8Array>();
  #activeKeyId: string | null = null;
  #refreshedAt = 0;
  #columns: SealedColumn[] = [];

  /** Called after every successful unlock (resumes an interrupted rotation). */
  afterUnlock?: () => void;
  /** Resolves when a background rotation has stopped (set by the routes' driver). */
  rotationIdle: () => Promise<void> = () => Promise.resolve();

  constructor(private readonly o: VaultOptions) {}

  state(): VaultState {
    return this.#state;
  }

  mode(): VaultMode | null {
    return this.#mode;
  }

  isSealed(value: unknown): value is string {
    return typeof value === "string" && value.startsWith(PREFIX);
  }

  registerColumn(column: SealedColumn): void {
    const ident = /^[a-z_][a-z0-9_]*$/;
    for (const n of [column.table, column.column, column.idColumn]) {
      if (!ident.test(n)) throw new Error(`aegis: bad identifier ${n}`);
    }
    if (this.#columns.some((c) => c.table === column.table && c.column === column.column)) return;
    this.#columns.push(column);
  }

  /** Loads state at start; key-file mode unlocks (creating the key file when needed). */
  async init(): Promise<void> {
    const row = await this.#row();
    if (!row) {
      if (this.o.mode === "passphrase") {
        this.#state = "unconfigured";
        this.o.log.info("Aegis vault not set up: passphrase mode, waiting for setup");
        return;
      }
      const secret = await this.#readKeyFile(true);
      await this.#create(secret, "keyfile");
      return;
    }
    this.#mode = row.mode;
    this.#state = "locked";
    if (this.o.mode !== "auto" && this.o.mode !== row.mode) {
      // The database decides: switching modes means a force-reset, not a setting change.
      this.o.log.warn(
        `BOREALIS_AEGIS_MODE=${this.o.mode}, but the vault was set up in ${row.mode} mode; ` +
          `using ${row.mode} mode`,
      );
    }
    if (row.mode === "keyfile") {
      const secret = await this.#readKeyFile(false);
      try {
        await this.#unlockWith(secret, row);
        this.o.log.info(`Aegis vault unlocked from key file ${this.o.keyFile}`);
      } catch {
        this.o.log.error(
          `Aegis key file ${this.o.keyFile} does not match this database; the vault stays locked`,
        );
      }
    } else {
      this.o.log.info(
        "Aegis vault is locked: POST /api/bootstrap/aegis/unlock with the passphrase",
      );
    }
  }

  async #readKeyFile(createIfMissing: boolean): Promise<string> {
    const path = this.o.keyFile;
    let info: Deno.FileInfo | undefined;
    try {
      info = await Deno.stat(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (!info) {
      if (!createIfMissing) {
        throw new Error(`Aegis key file ${path} is missing; the vault was set up with it`);
      }
      const secret = randomBytes(32).toString("base64");
      await Deno.mkdir(path.replace(/[/\\][^/\\]*$/, ""), { recursive: true });
      await Deno.writeTextFile(path, secret + "\n", { mode: 0o600, createNew: true });
      await Deno.chmod(path, 0o600).catch(() => {});
      this.o.log.warn(
        `Aegis: created key file ${path} (mode 0600); secrets are sealed with it. Anyone who can ` +
          "read this file and the database can open them — back it up separately, or use passphrase mode",
      );
      return secret;
    }
    if (info.mode !== null && (info.mode & 0o077) !== 0) {
      throw new Error(
        `Aegis key file ${path} must be readable by its owner only (chmod 600); refusing to use it`,
      );
    }
    const secret = (await Deno.readTextFile(path)).trim();
    if (secret.length < 32) throw new Error(`Aegis key file ${path} holds too short a secret`);
    return secret;
  }

  async #row(): Promise<StateRow | undefined> {
    const [row] = await this.o.sql<StateRow[]>`
      select mode, kdf_params, verification_token, active_key_id, rotation from aegis_state where id = 1`;
    return row;
  }

  async #create(secret: string, mode: VaultMode): Promise<void> {
    const params = freshKdfParams();
    const kek = await deriveKey(secret, params);
    const dek = new Uint8Array(randomBytes(32));
    const keyId = newKeyId();
    const now = new Date(this.o.clock.now());
    const token = b64(encrypt(kek, new TextEncoder().encode(VERIFY_PLAINTEXT), VERIFY_AAD));
    const inserted = await this.o.sql.begin(async (tx) => {
      const r = await tx`
        insert into aegis_state (id, mode, kdf_params, verification_token, active_key_id, created_at, updated_at)
        values (1, ${mode}, ${tx.json(params as never)}, ${token}, ${keyId}, ${now}, ${now})
        on conflict (id) do nothing`;
      if (r.count === 0) return false;
      await tx`insert into aegis_keys (key_id, wrapped_key, created_at)
               values (${keyId}, ${b64(encrypt(kek, dek, wrapAad(keyId)))}, ${now})`;
      return true;
    });
    if (!inserted) {
      // Another instance set the vault up first; use what it stored.
      const row = (await this.#row())!;
      this.#mode = row.mode;
      this.#state = "locked";
      if (row.mode === mode) await this.#unlockWith(secret, row).catch(() => {});
      return;
    }
    this.#mode = mode;
    this.#kek = kek;
    this.#deks = new Map([[keyId, dek]]);
    this.#activeKeyId = keyId;
    this.#state = "unlocked";
    this.#refreshedAt = this.o.clock.now();
    this.o.log.info(`Aegis vault set up in ${mode} mode (key ${keyId})`);
  }

  async #unlockWith(secret: string, row: StateRow): Promise<void> {
    const kek = await deriveKey(secret, row.kdf_params);
    try {
      const plain = decrypt(kek, unb64(row.verification_token), VERIFY_AAD);
      if (new TextDecoder().decode(plain) !== VERIFY_PLAINTEXT) throw new Error("mismatch");
    } catch {
      throw new HttpError(403, "invalid_passphrase", "the passphrase is not correct");
    }
    this.#kek = kek;
    await this.#loadKeys(row.active_key_id);
    this.#state = "unlocked";
  }

  async #loadKeys(activeKeyId: string): Promise<void> {
    const kek = this.#kek!;
    const rows = await this.o.sql<{ key_id: string; wrapped_key: string }[]>`
      select key_id, wrapped_key from aegis_keys`;
    const deks = new Map<string, Uint8Array>();
    for (const r of rows) deks.set(r.key_id, decrypt(kek, unb64(r.wrapped_key), wrapAad(r.key_id)));
    this.#deks = deks;
    this.#activeKeyId = activeKeyId;
    this.#refreshedAt = this.o.clock.now();
  }

  /** Another instance may have rotated: pick up new keys every few seconds. */
  async #fresh(force = false): Promise<void> {
    if (!force && this.o.clock.now() - this.#refreshedAt < 5000) return;
    const row = await this.#row();
    if (!row) {
      this.#lockAll("unconfigured");
      return;
    }
    if (row.active_key_id !== this.#activeKeyId || !this.#deks.has(row.active_key_id)) {
      try {
        await this.#loadKeys(row.active_key_id);
      } catch {
        // The KEK changed elsewhere (passphrase rotation): this instance must unlock again.
        this.#lockAll("locked");
      }
    }
    this.#refreshedAt = this.o.clock.now();
  }

  #lockAll(state: VaultState): void {
    this.#kek = undefined;
    this.#deks = new Map();
    this.#activeKeyId = null;
    this.#state = state;
  }

  #requireUnlocked(): void {
    if (this.#state === "unconfigured") throw notConfiguredError();
    if (this.#state === "locked") throw lockedError();
  }

  async setup(passphrase: string): Promise<void> {
    if (this.#state !== "unconfigured") {
      throw conflict("invalid_phase", "the vault is already set up");
    }
    await this.#create(passphrase, "passphrase");
    if ((this.#state as VaultState) !== "unlocked") {
      throw conflict("invalid_phase", "the vault is already set up");
    }
  }

  async unlock(passphrase: string): Promise<void> {
    if (this.#state !== "locked") {
      throw conflict("invalid_phase", `the vault is ${this.#state}, not locked`);
    }
    const row = await this.#row();
    if (!row) throw conflict("invalid_phase", "the vault is not set up");
    await this.#unlockWith(passphrase, row);
    this.o.log.info("Aegis vault unlocked");
    this.afterUnlock?.();
  }

  async seal(plaintext: string, place: SealPlace): Promise<string> {
    this.#requireUnlocked();
    await this.#fresh();
    this.#requireUnlocked();
    const keyId = this.#activeKeyId!;
    const dek = this.#deks.get(keyId)!;
    return `${PREFIX}${keyId}:${
      b64(encrypt(dek, new TextEncoder().encode(plaintext), placeAad(keyId, place)))
    }`;
  }

  async open(sealed: string, place: SealPlace): Promise<string> {
    this.#requireUnlocked();
    const m = SEALED.exec(sealed);
    if (!m) throw invalidValue();
    const keyId = m[1]!;
    if (!this.#deks.has(keyId)) await this.#fresh(true);
    this.#requireUnlocked();
    const dek = this.#deks.get(keyId);
    if (!dek) throw invalidValue();
    try {
      return new TextDecoder().decode(decrypt(dek, unb64(m[2]!), placeAad(keyId, place)));
    } catch {
      throw invalidValue();
    }
  }

  async status(): Promise<VaultStatus> {
    const row = await this.#row();
    const keys = await this.o.sql<{ key_id: string; created_at: Date; retired_at: Date | null }[]>`
      select key_id, created_at, retired_at from aegis_keys order by created_at`;
    const perKey = new Map<string, number>();
    let total = 0;
    for (const c of this.#columns) {
      const rows = await this.o.sql<{ key_id: string; n: number }[]>`
        select split_part(${this.o.sql(c.column)}, ':', 3) as key_id, count(*)::int as n
        from ${this.o.sql(c.table)} where ${this.o.sql(c.column)} like 'aegis:v1:%' group by 1`;
      for (const r of rows) {
        perKey.set(r.key_id, (perKey.get(r.key_id) ?? 0) + r.n);
        total += r.n;
      }
    }
    const rotation = row?.rotation ?? null;
    const remaining = rotation ? total - (perKey.get(rotation.target_key_id) ?? 0) : 0;
    return {
      state: this.#state,
      mode: row?.mode ?? null,
      key_id: row?.active_key_id ?? null,
      kdf: row
        ? { name: "scrypt", N: row.kdf_params.N, r: row.kdf_params.r, p: row.kdf_params.p }
        : null,
      keys: keys.map((k) => ({
        key_id: k.key_id,
        created_at: k.created_at.toISOString(),
        retired_at: k.retired_at?.toISOString() ?? null,
        values: perKey.get(k.key_id) ?? 0,
      })),
      sealed_columns: this.#columns.map((c) => ({ table: c.table, column: c.column })),
      sealed_values: total,
      rotation: rotation
        ? { ...rotation, remaining, running: rotation.finished_at === null }
        : null,
    };
  }

  async startRotation(newPassphrase?: string): Promise<RotationProgress> {
    this.#requireUnlocked();
    await this.#fresh(true);
    this.#requireUnlocked();
    const row = (await this.#row())!;
    if (row.rotation && row.rotation.finished_at === null) {
      throw conflict("rotation_in_progress", "a key rotation is already running", row.rotation);
    }
    if (newPassphrase !== undefined && row.mode !== "passphrase") {
      throw conflict("invalid_mode", "new_passphrase applies to passphrase mode only");
    }
    const now = new Date(this.o.clock.now());
    let kek = this.#kek!;
    let params = row.kdf_params;
    let token = row.verification_token;
    const rewrap = newPassphrase !== undefined;
    if (rewrap) {
      params = freshKdfParams();
      kek = await deriveKey(newPassphrase, params);
      token = b64(encrypt(kek, new TextEncoder().encode(VERIFY_PLAINTEXT), VERIFY_AAD));
    }
    const keyId = newKeyId();
    const dek = new Uint8Array(randomBytes(32));
    const progress: RotationProgress = {
      target_key_id: keyId,
      started_at: now.toISOString(),
      finished_at: null,
      moved: 0,
      failed: 0,
    };
    const deks = new Map(this.#deks);
    deks.set(keyId, dek);
    await this.o.sql.begin(async (tx) => {
      await tx`insert into aegis_keys (key_id, wrapped_key, created_at)
               values (${keyId}, ${b64(encrypt(kek, dek, wrapAad(keyId)))}, ${now})`;
      if (rewrap) {
        for (const [id, key] of deks) {
          if (id === keyId) continue;
          await tx`update aegis_keys set wrapped_key = ${b64(encrypt(kek, key, wrapAad(id)))}
                   where key_id = ${id}`;
        }
      }
      await tx`update aegis_state set active_key_id = ${keyId}, rotation = ${
        tx.json(progress as never)
      }, kdf_params = ${tx.json(params as never)}, verification_token = ${token},
        updated_at = ${now} where id = 1`;
    });
    this.#kek = kek;
    this.#deks = deks;
    this.#activeKeyId = keyId;
    this.o.log.info(`Aegis key rotation started: new key ${keyId}`);
    return progress;
  }

  async rotateStep(): Promise<{ moved: number; done: boolean }> {
    if (this.#state !== "unlocked") return { moved: 0, done: false };
    const row = await this.#row();
    const rotation = row?.rotation;
    if (!row || !rotation || rotation.finished_at !== null) return { moved: 0, done: true };
    if (!this.#deks.has(rotation.target_key_id)) await this.#fresh(true);
    const target = rotation.target_key_id;
    const sql = this.o.sql;
    const cursor = { ...(rotation.cursor ?? { column: 0, after: null }) };
    let pass = rotation.pass ?? 1;
    let failed = rotation.failed;
    let moved = 0;
    let budget = this.o.batchSize;
    // Keyset order by row id: unreadable values are passed over, never re-read in a loop.
    while (budget > 0 && cursor.column < this.#columns.length) {
      const c = this.#columns[cursor.column]!;
      const limit = budget;
      const rows = await sql<{ id: string; v: string }[]>`
        select ${sql(c.idColumn)}::text as id, ${sql(c.column)} as v from ${sql(c.table)}
        where ${sql(c.column)} like 'aegis:v1:%' and ${sql(c.column)} not like ${
        PREFIX + target + ":%"
      } ${cursor.after === null ? sql`` : sql`and ${sql(c.idColumn)} > ${cursor.after}`}
        order by ${sql(c.idColumn)} limit ${limit}`;
      for (const r of rows) {
        budget--;
        cursor.after = r.id;
        const place = { table: c.placeTable ?? c.table, column: c.column, row: r.id };
        let plain: string;
        try {
          plain = await this.open(r.v, place);
        } catch {
          failed++;
          continue;
        }
        const resealed = await this.seal(plain, place);
        // Compare-and-swap: a concurrent writer's newer value wins.
        const u = await sql`update ${sql(c.table)} set ${sql(c.column)} = ${resealed}
          where ${sql(c.idColumn)} = ${r.id} and ${sql(c.column)} = ${r.v}`;
        moved += u.count;
      }
      if (rows.length < limit) {
        cursor.column++;
        cursor.after = null;
      }
    }
    const now = new Date(this.o.clock.now());
    let done = false;
    if (cursor.column >= this.#columns.length) {
      // Sweep complete. Values still under an old key are either the unreadable ones
      // counted in this pass, or were sealed meanwhile by an instance that had not yet
      // seen the new key: then sweep again (a few times at most).
      const left = await this.#oldValues(target);
      if (left > failed && pass < 5) {
        pass++;
        failed = 0;
        cursor.column = 0;
        cursor.after = null;
      } else done = true;
    }
    const next: RotationProgress = {
      ...rotation,
      moved: rotation.moved + moved,
      failed,
      pass,
      cursor,
      finished_at: done ? now.toISOString() : null,
    };
    await sql`update aegis_state set rotation = ${sql.json(next as never)}, updated_at = ${now}
              where id = 1`;
    if (done) {
      await sql`update aegis_keys set retired_at = ${now}
                where key_id <> ${target} and retired_at is null`;
      this.o.log.info(
        `Aegis key rotation to ${target} finished (${next.moved} moved, ${failed} unreadable)`,
      );
    }
    return { moved, done };
  }

  /** How many registered values are sealed under a key other than `target`. */
  async #oldValues(target: string): Promise<number> {
    const sql = this.o.sql;
    let n = 0;
    for (const c of this.#columns) {
      const [r] = await sql<{ n: number }[]>`
        select count(*)::int as n from ${sql(c.table)}
        where ${sql(c.column)} like 'aegis:v1:%' and ${sql(c.column)} not like ${
        PREFIX + target + ":%"
      }`;
      n += r?.n ?? 0;
    }
    return n;
  }

  async forceReset(): Promise<ForceResetResult> {
    const sql = this.o.sql;
    let cleared = 0;
    const columns: ForceResetResult["columns"] = [];
    for (const c of this.#columns) {
      const [r] = await sql<{ n: number }[]>`
        select count(*)::int as n from ${sql(c.table)} where ${sql(c.column)} like 'aegis:%'`;
      cleared += r?.n ?? 0;
      columns.push({ table: c.table, column: c.column, cleared: r?.n ?? 0 });
      if (c.onReset) await c.onReset(sql);
      else {
        await sql`update ${sql(c.table)} set ${sql(c.column)} = null
                  where ${sql(c.column)} is not null`;
      }
    }
    const mode = this.#mode;
    await sql.begin(async (tx) => {
      await tx`delete from aegis_state`;
      await tx`delete from aegis_keys`;
    });
    this.#lockAll("unconfigured");
    this.#mode = null;
    this.o.log.warn(`Aegis force-reset: ${cleared} sealed value(s) destroyed`);
    if (mode === "keyfile" || (mode === null && this.o.mode !== "passphrase")) {
      // A fresh key file: the old one must not open anything again.
      await Deno.remove(this.o.keyFile).catch(() => {});
      await this.#create(await this.#readKeyFile(true), "keyfile");
    }
    return { cleared, columns };
  }
}

function invalidValue(): HttpError {
  return new HttpError(
    422,
    "aegis_value_invalid",
    "a sealed value does not open here (tampered, moved, or sealed under an unknown key)",
  );
}
