/**
 * Stored credentials (upstream §1.11): operators read them as flags only
 * (`has_password`, …); admins create, update and delete them; secrets are sealed by
 * the vault; reads are site-scoped. An in-process service opens one for the scheduler.
 *
 * @module
 */
import { bigIdParam, idParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { canSeeSite, principalOf } from "../../core/auth.ts";
import { requireRole } from "../../core/auth.ts";
import { badRequest, conflict, HttpError, notFound } from "../../core/errors.ts";
import type { PluginContext } from "../../core/plugin.ts";
import { ErrorBody } from "../../core/openapi.ts";
import type { AegisVault } from "./vault.ts";

/** A credential with its secrets opened (in-process only). */
export interface CredentialSecrets {
  id: number;
  name: string;
  site_id: number | null;
  credential_type: string;
  connection_type: string;
  username: string | null;
  password: string | null;
  private_key: string | null;
  private_key_passphrase: string | null;
  become_method: string | null;
  become_username: string | null;
  become_password: string | null;
  metadata: Record<string, unknown>;
  winrm_transport: string | null;
}

/** Opens credentials for in-process consumers. */
export interface CredentialService {
  /** The credential with secrets, or null when it does not exist. 423/409 when the vault is not open. */
  open(id: number): Promise<CredentialSecrets | null>;
}

const SECRETS = ["password", "private_key", "private_key_passphrase", "become_password"] as const;
type SecretField = typeof SECRETS[number];

// PostgreSQL text and jsonb cannot hold NUL; refuse it up front instead of failing later.
const text = (max: number) =>
  z.string().max(max).refine((s) => !s.includes("\u0000"), "NUL characters are not allowed");
const secret = z.string().min(1).max(65_536).nullable().optional();
const Base = {
  name: text(200).trim().min(1),
  description: text(2000).optional(),
  site_id: z.number().int().positive().max(2_147_483_647).nullable().optional(),
  credential_type: z.enum(["machine", "domain", "token"]),
  connection_type: z.enum(["ssh", "windows", "winrm"]),
  username: text(256).nullable().optional(),
  password: secret,
  private_key: secret,
  private_key_passphrase: secret,
  become_method: text(64).nullable().optional(),
  become_username: text(256).nullable().optional(),
  become_password: secret,
  metadata: z.record(z.string(), z.unknown()).optional().refine(
    (m) =>
      m === undefined ||
      JSON.stringify(m).length <= 65_536 && !JSON.stringify(m).includes("\\u0000"),
    "metadata must be under 64 KiB of JSON without NUL characters",
  ),
  winrm_transport: text(64).nullable().optional(),
};
const CreateBody = z.object(Base).strict().openapi("CredentialCreate");
const UpdateBody = z.object({
  ...Base,
  credential_type: Base.credential_type.optional(),
  connection_type: Base.connection_type.optional(),
  name: Base.name.optional(),
}).strict().openapi("CredentialUpdate");

const Credential = z.object({
  id: z.number(),
  name: z.string(),
  description: z.string(),
  site_id: z.number().nullable(),
  credential_type: z.string(),
  connection_type: z.string(),
  username: z.string().nullable(),
  become_method: z.string().nullable(),
  become_username: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()),
  winrm_transport: z.string().nullable(),
  has_password: z.boolean(),
  has_private_key: z.boolean(),
  has_private_key_passphrase: z.boolean(),
  has_become_password: z.boolean(),
  reset_required: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
}).openapi("Credential");

const err = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorBody } },
});
const IdParam = z.object({ id: bigIdParam() });
const bodyOf = <T extends z.ZodTypeAny>(schema: T) => ({
  body: { required: true, content: { "application/json": { schema } } },
});

const listRoute = createRoute({
  method: "get",
  path: "/api/credentials",
  summary: "Credentials visible to the caller (flags only, never secrets)",
  middleware: [requireRole("User")] as const,
  request: {
    query: z.object({ site_id: idParam().optional() }),
  },
  responses: {
    200: {
      description: "Credentials",
      content: { "application/json": { schema: z.object({ credentials: z.array(Credential) }) } },
    },
    401: err("Not signed in"),
  },
});
const getRoute = createRoute({
  method: "get",
  path: "/api/credentials/{id}",
  summary: "One credential (flags only)",
  middleware: [requireRole("User")] as const,
  request: { params: IdParam },
  responses: {
    200: { description: "Credential", content: { "application/json": { schema: Credential } } },
    404: err("Unknown or out of scope"),
  },
});
const createRouteDef = createRoute({
  method: "post",
  path: "/api/credentials",
  summary: "Create a credential (Admin); secrets are sealed by the vault",
  middleware: [requireRole("Admin")] as const,
  request: bodyOf(CreateBody),
  responses: {
    201: { description: "Created", content: { "application/json": { schema: Credential } } },
    400: err("Bad body"),
    409: err("Name taken / vault not configured"),
    423: err("Vault locked"),
  },
});
const updateRoute = createRoute({
  method: "put",
  path: "/api/credentials/{id}",
  summary: "Update a credential (Admin); a secret set to null is cleared, omitted is kept",
  middleware: [requireRole("Admin")] as const,
  request: { params: IdParam, ...bodyOf(UpdateBody) },
  responses: {
    200: { description: "Updated", content: { "application/json": { schema: Credential } } },
    400: err("Bad body"),
    404: err("Unknown"),
    409: err("Name taken / vault not configured"),
    423: err("Vault locked"),
  },
});
const deleteRoute = createRoute({
  method: "delete",
  path: "/api/credentials/{id}",
  summary: "Delete a credential (Admin)",
  middleware: [requireRole("Admin")] as const,
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, 404: err("Unknown") },
});

interface Row {
  id: string | number;
  name: string;
  description: string;
  site_id: number | null;
  credential_type: string;
  connection_type: string;
  username: string | null;
  password_encrypted: string | null;
  private_key_encrypted: string | null;
  private_key_passphrase_encrypted: string | null;
  become_method: string | null;
  become_username: string | null;
  become_password_encrypted: string | null;
  metadata: Record<string, unknown>;
  winrm_transport: string | null;
  reset_required: boolean;
  created_at: Date;
  updated_at: Date;
}

const column = (f: SecretField) => `${f}_encrypted` as const;

const toCredential = (r: Row) => ({
  id: Number(r.id),
  name: r.name,
  description: r.description,
  site_id: r.site_id,
  credential_type: r.credential_type,
  connection_type: r.connection_type,
  username: r.username,
  become_method: r.become_method,
  become_username: r.become_username,
  metadata: r.metadata ?? {},
  winrm_transport: r.winrm_transport,
  has_password: !!r.password_encrypted,
  has_private_key: !!r.private_key_encrypted,
  has_private_key_passphrase: !!r.private_key_passphrase_encrypted,
  has_become_password: !!r.become_password_encrypted,
  reset_required: r.reset_required,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

/** Private keys are stored with LF line ends and one trailing newline. */
const normalizeKey = (k: string) => k.replace(/\r\n?/g, "\n").replace(/\n*$/, "\n");

/**
 * 400 when `siteId` is not in the inventory's `sites` table. That table belongs to a
 * plugin loaded after this one, so there is no foreign key; without it any id is kept.
 */
async function requireKnownSite(sql: PluginContext["sql"], siteId: number | null | undefined) {
  if (siteId === null || siteId === undefined) return;
  const [row] = await sql<{ present: boolean }[]>`
    select to_regclass('sites') is not null as present`;
  if (!row?.present) return;
  const [hit] = await sql`select 1 from sites where id = ${siteId}`;
  if (!hit) throw badRequest("unknown_site", `site ${siteId} does not exist`);
}

const isUniqueViolation = (e: unknown) =>
  typeof e === "object" && e !== null && (e as { code?: string }).code === "23505";

/** Installs the credential routes; returns the in-process service. */
export function installCredentials(ctx: PluginContext, vault: AegisVault): CredentialService {
  const { sql, clock } = ctx;
  for (const f of SECRETS) {
    vault.registerColumn({
      table: "credentials",
      column: column(f),
      idColumn: "id",
      // The credential stays but is marked: an admin must enter its secrets again.
      onReset: async (sql) => {
        await sql`update credentials set ${sql(column(f))} = null, reset_required = true
                  where ${sql(column(f))} is not null`;
      },
    });
  }

  const sealAll = async (id: number, body: Partial<Record<SecretField, string | null>>) => {
    const out: Partial<Record<`${SecretField}_encrypted`, string | null>> = {};
    for (const f of SECRETS) {
      const v = body[f];
      if (v === undefined) continue;
      if (v === null) out[column(f)] = null;
      else {
        const plain = f === "private_key" ? normalizeKey(v) : v;
        out[column(f)] = await vault.seal(plain, {
          table: "credentials",
          column: column(f),
          row: String(id),
        });
      }
    }
    return out;
  };

  const load = async (id: number) => {
    const [row] = await sql<Row[]>`select * from credentials where id = ${id}`;
    return row;
  };

  ctx.http.openapi(listRoute, async (c) => {
    const p = await principalOf(c);
    const { site_id } = c.req.valid("query");
    const rows = site_id === undefined
      ? await sql<Row[]>`select * from credentials order by lower(name)`
      : await sql<Row[]>`select * from credentials where site_id = ${site_id} order by lower(name)`;
    return c.json(
      { credentials: rows.filter((r) => canSeeSite(p, r.site_id)).map(toCredential) },
      200,
    );
  });

  ctx.http.openapi(getRoute, async (c) => {
    const p = await principalOf(c);
    const row = await load(c.req.valid("param").id);
    if (!row || !canSeeSite(p, row.site_id)) throw notFound("no such credential");
    return c.json(toCredential(row), 200);
  });

  ctx.http.openapi(createRouteDef, async (c) => {
    const body = c.req.valid("json");
    await requireKnownSite(sql, body.site_id);
    const [seq] = await sql<{ id: string }[]>`select nextval('credentials_id_seq') as id`;
    const id = seq!.id;
    const sealed = await sealAll(Number(id), body);
    const now = new Date(clock.now());
    let row: Row | undefined;
    try {
      [row] = await sql<Row[]>`
        insert into credentials (id, name, description, site_id, credential_type, connection_type,
          username, password_encrypted, private_key_encrypted, private_key_passphrase_encrypted,
          become_method, become_username, become_password_encrypted, metadata, winrm_transport,
          created_at, updated_at)
        values (${id}, ${body.name}, ${body.description ?? ""}, ${body.site_id ?? null},
          ${body.credential_type}, ${body.connection_type}, ${body.username ?? null},
          ${sealed.password_encrypted ?? null}, ${sealed.private_key_encrypted ?? null},
          ${sealed.private_key_passphrase_encrypted ?? null}, ${body.become_method ?? null},
          ${body.become_username ?? null}, ${sealed.become_password_encrypted ?? null},
          ${sql.json((body.metadata ?? {}) as never)}, ${body.winrm_transport ?? null},
          ${now}, ${now})
        returning *`;
    } catch (e) {
      if (isUniqueViolation(e)) {
        await ctx.audit(c, {
          action: "credential.create",
          target: body.name,
          outcome: "failure",
          details: { reason: "name_taken" },
        });
        throw conflict("credential_name_taken", `a credential named ${body.name} exists`);
      }
      throw e;
    }
    await ctx.audit(c, {
      action: "credential.create",
      target: `credential:${id}`,
      details: { name: body.name, site_id: body.site_id ?? null },
    });
    return c.json(toCredential(row!), 201);
  });

  ctx.http.openapi(updateRoute, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const current = await load(id);
    if (!current) throw notFound("no such credential");
    await requireKnownSite(sql, body.site_id);
    const sealed = await sealAll(id, body);
    const plain: Record<string, unknown> = {};
    for (
      const k of [
        "name",
        "description",
        "site_id",
        "credential_type",
        "connection_type",
        "username",
        "become_method",
        "become_username",
        "winrm_transport",
      ] as const
    ) {
      if (body[k] !== undefined) plain[k] = body[k];
    }
    if (body.metadata !== undefined) plain.metadata = sql.json(body.metadata as never);
    const storesSecret = Object.values(sealed).some((v) => typeof v === "string");
    const changes = {
      ...plain,
      ...sealed,
      ...(storesSecret ? { reset_required: false } : {}),
      updated_at: new Date(clock.now()),
    };
    let row: Row | undefined;
    try {
      [row] = await sql<Row[]>`update credentials set ${sql(changes as never)}
                               where id = ${id} returning *`;
    } catch (e) {
      if (isUniqueViolation(e)) {
        await ctx.audit(c, {
          action: "credential.update",
          target: `credential:${id}`,
          outcome: "failure",
          details: { reason: "name_taken" },
        });
        throw conflict("credential_name_taken", "that name is taken");
      }
      throw e;
    }
    if (!row) throw notFound("no such credential");
    await ctx.audit(c, {
      action: "credential.update",
      target: `credential:${id}`,
      details: { fields: Object.keys(body) },
    });
    return c.json(toCredential(row), 200);
  });

  ctx.http.openapi(deleteRoute, async (c) => {
    const { id } = c.req.valid("param");
    const r = await sql`delete from credentials where id = ${id}`;
    if (r.count === 0) throw notFound("no such credential");
    await ctx.audit(c, { action: "credential.delete", target: `credential:${id}` });
    return c.body(null, 204);
  });

  return {
    async open(id) {
      const row = await load(id);
      if (!row) return null;
      const out: Record<string, string | null> = {};
      for (const f of SECRETS) {
        const v = row[column(f)];
        out[f] = v
          ? await vault.open(v, { table: "credentials", column: column(f), row: String(row.id) })
          : null;
      }
      if (vault.state() !== "unlocked") throw new HttpError(423, "aegis_locked", "vault locked");
      return {
        id: Number(row.id),
        name: row.name,
        site_id: row.site_id,
        credential_type: row.credential_type,
        connection_type: row.connection_type,
        username: row.username,
        become_method: row.become_method,
        become_username: row.become_username,
        metadata: row.metadata ?? {},
        winrm_transport: row.winrm_transport,
        password: out.password ?? null,
        private_key: out.private_key ?? null,
        private_key_passphrase: out.private_key_passphrase ?? null,
        become_password: out.become_password ?? null,
      };
    },
  };
}
