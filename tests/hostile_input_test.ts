/**
 * The engine from the outside, as a fuzzer sees it: the engine's own `/api/openapi.json`
 * is walked, and every operation gets, for every path parameter, query parameter and
 * JSON body field (nested ones too), hostile values — a NUL character, unpaired
 * surrogates, a 100 kB string, 1e10, -1, NaN, 1e400, nested and too deeply nested
 * arrays, wrong types — sent as an anonymous client, an Admin and an enrolled agent
 * (DPoP-authenticated by the reference agent). Nothing may answer 5xx. Also:
 *
 * - every 4xx is the JSON error model `{error, message}`;
 * - a NUL or an unpaired surrogate is never accepted (2xx) — except by the agent
 *   telemetry routes, whose documented rule is to clean them — and a 400 for one names
 *   the field;
 * - no value reaches PostgreSQL to be refused there (`invalid_value`, the kernel's
 *   safety net for SQLSTATE class 22): that would be a gap in a route's validation;
 * - the document and the validation agree: a required body, required body field or
 *   required query parameter left out is never accepted.
 *
 * One engine for the file; requests run a few at a time through the app's fetch.
 *
 * @module
 */
import assert from "node:assert/strict";
import { builtinPlugins } from "../plugins/mod.ts";
import { Agent } from "./agent/agent.ts";
import { createOperator, type TestOperator } from "./helpers/operators.ts";
import { startTestEngine, type TestEngine } from "./helpers/test_engine.ts";

type Schema = Record<string, unknown>;
type Identity = "anonymous" | "admin" | "agent";

/** Agent routes whose documented rule cleans NUL and surrogates instead of refusing them. */
const CLEANING = new Set([
  "POST /api/agent/heartbeat",
  "POST /api/agent/status",
  "POST /api/agent/details",
]);

/**
 * Operations whose success changes the fixture for everything after them (the admin's
 * session, the vault): they run after all others.
 */
const LAST =
  /\/auth\/logout|\/aegis\/(rotate|force_reset)|\/auth\/password|\/auth\/mfa\/reset|\/dev-mode$/;

const RAW = (token: string) => `\u0001raw:${token}\u0001`;
const BIG = "A".repeat(100_000);
const deep = (n: number): unknown => {
  let v: unknown = "x";
  for (let i = 0; i < n; i++) v = [v];
  return v;
};

/** Hostile JSON values; `text` marks the ones the text rule must refuse. */
const JSON_VALUES: Array<{ name: string; value: unknown; text?: boolean }> = [
  { name: "NUL", value: "fuzz\u0000tail", text: true },
  { name: "high surrogate", value: "\ud800", text: true },
  { name: "low surrogate", value: "x\udc00y", text: true },
  { name: "100 kB string", value: BIG },
  { name: "empty string", value: "" },
  { name: "1e10", value: 1e10 },
  { name: "-1", value: -1 },
  { name: "1.5", value: 1.5 },
  { name: "NaN string", value: "NaN" },
  { name: "1e400", value: RAW("1e400") },
  { name: "nested arrays", value: [[[["x"]]]] },
  { name: "200 levels deep", value: deep(200) },
  { name: "object", value: { a: { b: 1 } } },
  { name: "true", value: true },
  { name: "null", value: null },
];

/** Hostile path and query values, already percent-encoded where it matters. */
const URL_VALUES: Array<{ name: string; raw: string; text?: string }> = [
  { name: "NUL", raw: "fuzz%00tail", text: "NUL" },
  { name: "encoded surrogate", raw: "%ED%A0%80" },
  { name: "truncated UTF-8", raw: "%F0%9F" },
  { name: "bad percent", raw: "%ZZ" },
  { name: "100 kB", raw: BIG },
  { name: "1e10", raw: "1e10" },
  { name: "-1", raw: "-1" },
  { name: "NaN", raw: "NaN" },
  { name: "0x10", raw: "0x10" },
  { name: "brackets", raw: "%5B%5B%5D%5D" },
];

interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
}
interface Operation {
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: Schema }>;
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> };
}

/** One request the fuzzer sends, with what it expects. */
interface Probe {
  op: string;
  method: string;
  path: string;
  query: string;
  body?: string;
  contentType?: string;
  /** What was made hostile (`query.limit`, `json.name`, `json (whole body)`, …). */
  what: string;
  /** The field a text refusal must name. */
  field?: string;
  /** The value is refused by the text rule. */
  text?: boolean;
  /** A documented requirement was left out: must not be accepted. */
  missing?: boolean;
  /** Baseline only: the top-level body fields and query parameters it sends. */
  present?: string[];
}

/** Resolves `$ref` and merges `allOf`, the way a client reads the document. */
function resolver(doc: Doc) {
  const resolve = (s: Schema | undefined, depth = 0): Schema => {
    if (!s || depth > 20) return {};
    if (typeof s.$ref === "string") {
      const name = s.$ref.split("/").at(-1)!;
      return resolve(doc.components?.schemas?.[name], depth + 1);
    }
    if (Array.isArray(s.allOf)) {
      const merged: Schema = { type: "object", properties: {}, required: [] };
      for (const part of s.allOf as Schema[]) {
        const r = resolve(part, depth + 1);
        Object.assign(merged.properties as Schema, r.properties ?? {});
        (merged.required as string[]).push(...((r.required as string[]) ?? []));
      }
      return merged;
    }
    if (Array.isArray(s.anyOf)) return resolve((s.anyOf as Schema[])[0], depth + 1);
    if (Array.isArray(s.oneOf)) return resolve((s.oneOf as Schema[])[0], depth + 1);
    return s;
  };
  return resolve;
}

/** A valid-looking value of a schema that points at nothing real (ids that do not exist). */
function sampler(resolve: (s: Schema | undefined) => Schema) {
  const sample = (raw: Schema | undefined, depth = 0): unknown => {
    const s = resolve(raw);
    if (depth > 6) return null;
    if ("default" in s) return s.default;
    if (Array.isArray(s.enum)) return s.enum[0];
    if ("const" in s) return s.const;
    const type = Array.isArray(s.type) ? (s.type as string[]).find((t) => t !== "null") : s.type;
    if (type === "string") {
      if (s.format === "uuid") return crypto.randomUUID();
      if (s.format === "date-time") return new Date().toISOString();
      if (s.format === "email") return "fuzz@example.com";
      if (s.format === "uri") return "https://example.com/fuzz";
      const min = Number(s.minLength ?? 0);
      const plain = min > 4 ? "f".repeat(min) : "fuzz";
      if (typeof s.pattern !== "string") return plain;
      // A value the pattern accepts, from a few shapes patterns here ask for.
      const re = new RegExp(s.pattern);
      const candidates = [
        plain,
        crypto.randomUUID(),
        crypto.randomUUID().toUpperCase(),
        "123456",
        "fuzz_1",
        "fuzz-1",
        "a",
        "0123456789abcdef",
        "*/5 * * * *",
        "ldap://fuzz.example",
        "cn=fuzz,dc=example",
      ];
      return candidates.find((c) => re.test(c)) ?? plain;
    }
    if (type === "integer" || type === "number") {
      const min = Number(
        s.minimum ?? (s.exclusiveMinimum !== undefined ? Number(s.exclusiveMinimum) + 1 : 7),
      );
      const max = Number(s.maximum ?? Number.MAX_SAFE_INTEGER);
      return Math.min(Math.max(7, min), max);
    }
    if (type === "boolean") return false;
    if (type === "array") {
      const n = Number(s.minItems ?? 0);
      return Array.from({ length: n }, () => sample(s.items as Schema, depth + 1));
    }
    if (type === "object" || s.properties) {
      const out: Record<string, unknown> = {};
      for (const k of (s.required as string[]) ?? []) {
        out[k] = sample((s.properties as Record<string, Schema>)?.[k], depth + 1);
      }
      return out;
    }
    return "fuzz";
  };
  return sample;
}

/** Every field of a body schema (nested objects and first array items), as paths. */
function fieldsOf(
  resolve: (s: Schema | undefined) => Schema,
  schema: Schema | undefined,
  prefix: string[] = [],
  depth = 0,
): Array<{ path: string[]; schema: Schema }> {
  const s = resolve(schema);
  if (depth > 4) return [];
  const out: Array<{ path: string[]; schema: Schema }> = [];
  for (const [k, child] of Object.entries((s.properties as Record<string, Schema>) ?? {})) {
    const path = [...prefix, k];
    out.push({ path, schema: child });
    const c = resolve(child);
    if (c.type === "object" || c.properties) out.push(...fieldsOf(resolve, child, path, depth + 1));
    if (c.type === "array" && c.items) {
      const item = resolve(c.items as Schema);
      if (item.type === "object" || item.properties) {
        out.push(...fieldsOf(resolve, item, [...path, "0"], depth + 1));
      }
    }
  }
  return out;
}

/** Sets `value` at `path` inside a copy of the sample, creating what is missing. */
function withValue(
  base: unknown,
  path: string[],
  value: unknown,
  sample: (s: Schema | undefined) => unknown,
  resolve: (s: Schema | undefined) => Schema,
  schema: Schema | undefined,
): unknown {
  const root = structuredClone(base) as Record<string, unknown>;
  let node: Record<string, unknown> = root;
  let s = resolve(schema);
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    const childSchema = k === "0"
      ? (s.items as Schema)
      : (s.properties as Record<string, Schema>)?.[k];
    if (node[k] === undefined || node[k] === null || typeof node[k] !== "object") {
      node[k] = k === "0" || resolve(childSchema).type === "array" ? [] : sample(childSchema) ?? {};
      if (Array.isArray(node[k]) && path[i + 1] === "0") {
        (node[k] as unknown[])[0] = sample(resolve(childSchema).items as Schema) ?? {};
      }
    }
    node = node[k] as Record<string, unknown>;
    s = resolve(childSchema);
  }
  node[path.at(-1)!] = value;
  return root;
}

const serialize = (v: unknown) => JSON.stringify(v).replace(/"\\u0001raw:([^\\"]+)\\u0001"/g, "$1");

/** Builds every probe of one operation. */
function probesOf(doc: Doc, path: string, method: string, op: Operation): Probe[] {
  const resolve = resolver(doc);
  const sample = sampler(resolve);
  const params = op.parameters ?? [];
  const pathParams = params.filter((p) => p.in === "path");
  const queryParams = params.filter((p) => p.in === "query");
  const baseParam = (p: { schema?: Schema }) => encodeURIComponent(String(sample(p.schema)));
  const fill = (override?: { name: string; raw: string }) =>
    path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      if (override?.name === name) return override.raw;
      return baseParam(pathParams.find((p) => p.name === name) ?? {});
    });
  const baseQuery = (skip?: string) =>
    queryParams.filter((p) => p.required && p.name !== skip).map((p) =>
      `${p.name}=${baseParam(p)}`
    );
  const json = op.requestBody?.content?.["application/json"]?.schema;
  const bodyBase = json ? sample(json) : undefined;
  const name = `${method.toUpperCase()} ${path}`;
  const probe = (p: Omit<Probe, "op" | "method">): Probe => ({ op: name, method, ...p });
  const withBody = (body: unknown) =>
    json ? { body: serialize(body), contentType: "application/json" } : {};
  const out: Probe[] = [probe({
    path: fill(),
    query: baseQuery().join("&"),
    ...withBody(bodyBase),
    what: "baseline",
    present: [
      ...pathParams.map((p) => p.name),
      ...queryParams.filter((p) => p.required).map((p) => p.name),
      ...Object.keys(typeof bodyBase === "object" && bodyBase ? bodyBase : {}),
    ],
  })];
  for (const p of pathParams) {
    for (const v of URL_VALUES) {
      out.push(probe({
        path: fill({ name: p.name, raw: v.raw }),
        query: baseQuery().join("&"),
        ...withBody(bodyBase),
        what: `path.${p.name} = ${v.name}`,
        field: p.name,
        text: !!v.text,
      }));
    }
  }
  for (const p of queryParams) {
    for (
      const v of [...URL_VALUES, { name: "empty", raw: "" }, {
        name: "repeated",
        raw: "1&" + p.name + "=2",
      }]
    ) {
      out.push(probe({
        path: fill(),
        query: [...baseQuery(p.name), `${p.name}=${v.raw}`].join("&"),
        ...withBody(bodyBase),
        what: `query.${p.name} = ${v.name}`,
        field: p.name,
        text: "text" in v && !!v.text,
      }));
    }
    if (p.required) {
      out.push(probe({
        path: fill(),
        query: baseQuery(p.name).join("&"),
        ...withBody(bodyBase),
        what: `query.${p.name} left out`,
        missing: true,
      }));
    }
  }
  if (json) {
    for (const f of fieldsOf(resolve, json)) {
      for (const v of JSON_VALUES) {
        out.push(probe({
          path: fill(),
          query: baseQuery().join("&"),
          ...withBody(withValue(bodyBase, f.path, v.value, sample, resolve, json)),
          what: `json.${f.path.join(".")} = ${v.name}`,
          field: f.path.join("."),
          text: !!v.text,
        }));
      }
    }
    for (const v of [[], "x", null, 1e10, deep(200), "\u0000"]) {
      out.push(probe({
        path: fill(),
        query: baseQuery().join("&"),
        body: serialize(v),
        contentType: "application/json",
        what: `json (whole body) = ${serialize(v).slice(0, 20)}`,
      }));
    }
    out.push(probe({
      path: fill(),
      query: baseQuery().join("&"),
      body: "{not json",
      contentType: "application/json",
      what: "json (malformed)",
    }));
    if (op.requestBody?.required) {
      out.push(
        probe({ path: fill(), query: baseQuery().join("&"), what: "no body", missing: true }),
      );
    }
    const top = resolve(json);
    for (const k of (top.required as string[]) ?? []) {
      const partial = { ...(bodyBase as Record<string, unknown>) };
      delete partial[k];
      out.push(probe({
        path: fill(),
        query: baseQuery().join("&"),
        ...withBody(partial),
        what: `json.${k} left out`,
        missing: true,
      }));
    }
  }
  return out;
}

interface Fixture {
  t: TestEngine;
  admin: TestOperator;
  agent: Agent;
}

async function fixture(): Promise<Fixture> {
  const t = await startTestEngine({
    plugins: builtinPlugins,
    env: {
      BOREALIS_DEVICE_RATE_LIMIT_PER_MINUTE: "0",
      BOREALIS_ENROLL_RATE_LIMIT_IP_PER_MINUTE: "0",
      BOREALIS_ENROLL_RATE_LIMIT_FINGERPRINT_PER_MINUTE: "0",
    },
  });
  const admin = await createOperator(t, { role: "Admin", devMode: true });
  const site = await (await t.request("/api/sites", {
    method: "POST",
    headers: admin.headers,
    json: { name: "Fuzz" },
  })).json();
  await (await t.request(`/api/sites/${site.id}/auto-approval`, {
    method: "POST",
    headers: admin.headers,
    json: { minutes: 600 },
  })).body?.cancel();
  const agent = await Agent.open({
    server: "http://127.0.0.1",
    hostname: "fuzz-agent",
    fetch: (req) => t.engine.fetch(req, { remoteAddr: { hostname: "127.0.0.1", port: 40000 } }),
    now: () => t.clock.now(),
    sleep: async () => {},
  });
  const enrolled = await agent.enroll(site.enrollment_code, { timeoutMs: 60_000 });
  assert.equal(enrolled.status, "approved");
  return { t, admin, agent };
}

/** Whether the admin's session still works (a 401 may only mean "not an agent route"). */
async function sessionAlive(f: Fixture): Promise<boolean> {
  const res = await f.t.request("/api/auth/me", { headers: f.admin.headers });
  await res.body?.cancel();
  return res.status === 200;
}

/** Sends one probe as one identity; re-signs in when the admin's session was ended. */
async function send(f: Fixture, who: Identity, p: Probe): Promise<Response> {
  const url = `http://127.0.0.1${p.path}${p.query ? `?${p.query}` : ""}`;
  const attempt = async (nonce?: string): Promise<Response> => {
    const headers = new Headers();
    if (p.contentType) headers.set("content-type", p.contentType);
    if (who === "admin") headers.set("authorization", f.admin.headers.Authorization!);
    if (who === "agent") {
      await f.agent.ensureFresh();
      const token = f.agent.state.access_token!;
      headers.set("authorization", `DPoP ${token}`);
      let target = url;
      try {
        target = new URL(url).href;
      } catch { /* the engine refuses it before DPoP */ }
      headers.set("dpop", await f.agent.proof(p.method, target, { accessToken: token, nonce }));
    }
    return await f.t.engine.fetch(
      new Request(url, { method: p.method.toUpperCase(), headers, body: p.body }),
      { remoteAddr: { hostname: "127.0.0.1", port: 40000 } },
    );
  };
  let res = await attempt();
  if (res.status === 401 && who === "admin" && !(await sessionAlive(f))) {
    await res.body?.cancel();
    f.admin = await createOperator(f.t, { role: "Admin", devMode: true });
    res = await attempt();
  } else if (res.status === 401 && who === "agent") {
    const nonce = res.headers.get("dpop-nonce");
    const challenge = res.headers.get("www-authenticate") ?? "";
    if (nonce && challenge.includes("use_dpop_nonce")) {
      await res.body?.cancel();
      res = await attempt(nonce);
    }
  }
  return res;
}

Deno.test({
  name:
    "hostile input: every operation of the OpenAPI document, every field, three identities — no 5xx, the text rule, no validation gap, document and validation agree",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const f = await fixture();
    const started = performance.now();
    try {
      const doc = await (await f.t.request("/api/openapi.json")).json() as Doc;
      const ops: Array<{ path: string; method: string; op: Operation }> = [];
      for (const [path, methods] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(methods)) ops.push({ path, method, op });
      }
      ops.sort((a, b) => Number(LAST.test(a.path)) - Number(LAST.test(b.path)));
      const failures: string[] = [];
      const counts = {
        operations: ops.length,
        requests: 0,
        status5xx: 0,
        byStatus: new Map<number, number>(),
      };
      const fail = (who: Identity, p: Probe, status: number, why: string, body: string) => {
        if (failures.length < 200) {
          failures.push(`${p.op} as ${who}, ${p.what}: ${status} ${why} — ${body.slice(0, 300)}`);
        }
      };
      const check = async (who: Identity, p: Probe) => {
        const res = await send(f, who, p);
        const text = await res.text();
        counts.requests++;
        counts.byStatus.set(res.status, (counts.byStatus.get(res.status) ?? 0) + 1);
        if (res.status >= 500) {
          counts.status5xx++;
          return fail(who, p, res.status, "server error", text);
        }
        let body: Record<string, unknown> | undefined;
        try {
          body = JSON.parse(text);
        } catch { /* checked below */ }
        if (res.status >= 400) {
          if (typeof body?.error !== "string" || typeof body?.message !== "string") {
            return fail(who, p, res.status, "not the JSON error model", text);
          }
          if (body.error === "invalid_value") {
            return fail(who, p, res.status, "reached PostgreSQL (validation gap)", text);
          }
          const details = Array.isArray(body.details)
            ? body.details as Array<{ field?: string; in?: string; code?: string }>
            : [];
          if (p.text && body.error === "validation_failed" && p.field) {
            // Named — unless another part of the request (checked first) was refused.
            const where = p.what.split(".")[0] === "path" ? "param" : p.what.split(".")[0];
            const named = details.some((d) => d.field?.includes(p.field!.split(".").at(-1)!));
            const elsewhere = details.every((d) => d.in !== where);
            if (!named && !elsewhere) {
              fail(who, p, res.status, "refusal does not name the field", text);
            }
          }
          if (p.present && body.error === "validation_failed") {
            // The baseline sends what the document requires; validation asking for more
            // means the two disagree.
            for (const d of details) {
              const top = (d.field ?? "").split(".")[0]!;
              if (d.code === "invalid_type" && top !== "(root)" && !p.present.includes(top)) {
                fail(who, p, res.status, `validation requires ${top}; the document does not`, text);
              }
            }
          }
          return;
        }
        if (res.status < 300 && p.text && !(who === "agent" && CLEANING.has(p.op))) {
          return fail(who, p, res.status, "accepted a NUL or unpaired surrogate", text);
        }
        if (res.status < 300 && p.missing) {
          return fail(who, p, res.status, "accepted a request the document calls incomplete", text);
        }
      };
      const work: Array<() => Promise<void>> = [];

      for (const { path, method, op } of ops) {
        const probes = probesOf(doc, path, method, op);
        for (const who of ["anonymous", "admin", "agent"] as const) {
          // The operations that end sessions or re-key the vault run one at a time, last.
          for (const p of probes) work.push(() => check(who, p));
        }
      }
      const split = work.length - ops.filter((o) => LAST.test(o.path)).reduce(
        (n, o) => n + 3 * probesOf(doc, o.path, o.method, o.op).length,
        0,
      );
      let next = 0;
      const worker = async (end: number) => {
        while (next < end) await work[next++]!();
      };
      await Promise.all(Array.from({ length: 8 }, () => worker(split)));
      await worker(work.length);
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `hostile input: ${counts.operations} operations, ${counts.requests} requests, ` +
          `${counts.status5xx} 5xx in ${seconds.toFixed(1)} s; statuses ${
            JSON.stringify(Object.fromEntries([...counts.byStatus].sort((a, b) => a[0] - b[0])))
          }`,
      );
      assert.deepEqual(failures, [], `${failures.length} failures`);
      assert.ok(counts.operations >= 150, `only ${counts.operations} operations in the document`);
    } finally {
      await f.t.close();
    }
  },
});
