import assert from "node:assert/strict";
import { createRoute, z } from "@hono/zod-openapi";
import { startTestEngine } from "../tests/helpers/test_engine.ts";
import { idParam, intParam } from "./fields.ts";
import { createRouter } from "./http.ts";
import { definePlugin } from "./plugin.ts";

const ok = { 200: { description: "ok" } };

Deno.test("input guard: a path or query value read with a coercing schema is refused at registration", () => {
  const router = createRouter();
  assert.throws(
    () =>
      router.openapi(
        createRoute({
          method: "get",
          path: "/api/things",
          request: { query: z.object({ limit: z.coerce.number().int().default(5) }) },
          responses: ok,
        }),
        (c) => c.json({}),
      ),
    /GET \/api\/things: query value "limit" uses a coercing schema.*intParam/,
  );
  assert.throws(
    () =>
      router.openapi(
        createRoute({
          method: "get",
          path: "/api/things/{id}",
          request: { params: z.object({ id: z.coerce.number() }) },
          responses: ok,
        }),
        (c) => c.json({}),
      ),
    /params value "id"/,
  );
});

Deno.test("fields: path and query integers are decimal digits within bounds", () => {
  const n = intParam({ min: -5, max: 100 });
  for (const good of ["12", "-3", "0", "100"]) assert.equal(n.safeParse(good).success, true, good);
  for (const bad of ["", " 5", "1e1", "0x10", "NaN", "5.0", "101", "-6", "1e10", "abc"]) {
    assert.equal(n.safeParse(bad).success, false, JSON.stringify(bad));
  }
  assert.equal(idParam().safeParse("2147483647").success, true);
  assert.equal(idParam().safeParse("2147483648").success, false, "beyond int4");
  assert.equal(idParam().safeParse("0").success, false);
});

/** A plugin whose routes hand values to PostgreSQL without bounds, as a careless route would. */
const careless = definePlugin({
  name: "careless",
  setup(ctx) {
    ctx.http.openapi(
      createRoute({
        method: "post",
        path: "/api/careless/{word}",
        request: {
          params: z.object({ word: z.string() }),
          query: z.object({ n: z.string().default("1"), at: idParam().optional() }),
          body: {
            required: true,
            content: { "application/json": { schema: z.object({ note: z.unknown().optional() }) } },
          },
        },
        responses: ok,
      }),
      async (c) => {
        const { n } = c.req.valid("query");
        const [row] = await ctx.sql<{ v: number }[]>`select ${n}::int as v`;
        return c.json({ v: row!.v, note: c.req.valid("json").note }, 200);
      },
    );
    ctx.http.openapi(
      createRoute({ method: "post", path: "/api/careless_twice", responses: ok }),
      async (c) => {
        await ctx.sql`create temporary table if not exists once (k int primary key)`;
        await ctx.sql`insert into once values (1)`;
        await ctx.sql`insert into once values (1)`;
        return c.json({}, 200);
      },
    );
  },
});

Deno.test("input guard: the text rule, depth, a required body and PostgreSQL's refusals, for any route", async () => {
  const t = await startTestEngine({ plugins: [careless] });
  try {
    const post = (path: string, body?: string) =>
      t.request(path, {
        method: "POST",
        ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } }),
      });
    const good = await post("/api/careless/hello?n=41", `{"note":"ok"}`);
    assert.equal(good.status, 200);
    assert.deepEqual(await good.json(), { v: 41, note: "ok" });

    const cases: Array<[string, string | undefined, string, string]> = [
      ["/api/careless/a%00b", `{}`, "word", "param"],
      ["/api/careless/x?n=4%002", `{}`, "n", "query"],
      ["/api/careless/x", `{"note":{"deep":["\\u0000"]}}`, "note.deep.0", "json"],
      ["/api/careless/x", `{"note":"\\ud800"}`, "note", "json"],
      ["/api/careless/x", `{"note":{"k\\u0000":1}}`, "note.k", "json"],
      ["/api/careless/x", `{"note":${"[".repeat(100_000)}${"]".repeat(100_000)}}`, "note", "json"],
    ];
    for (const [path, body, field, where] of cases) {
      const res = await post(path, body);
      const out = await res.json();
      assert.equal(res.status, 400, `${path} ${body?.slice(0, 30)}: ${JSON.stringify(out)}`);
      assert.equal(out.error, "validation_failed");
      assert.ok(
        out.details.some((d: { field: string; in: string }) =>
          d.field.startsWith(field) && d.in === where
        ),
        JSON.stringify(out.details),
      );
    }
    const bare = await post("/api/careless/x");
    assert.equal(bare.status, 400, "a declared body must be sent");
    assert.equal((await bare.json()).error, "body_required");

    // A value the route let through that PostgreSQL refuses: 400 with the request id.
    const range = await post("/api/careless/x?n=10000000000", `{}`);
    const rangeBody = await range.json();
    assert.equal(range.status, 400, JSON.stringify(rangeBody));
    assert.equal(rangeBody.error, "invalid_value", JSON.stringify(rangeBody));
    assert.equal(rangeBody.details.sqlstate, "22003");
    assert.equal(rangeBody.request_id, range.headers.get("x-request-id"));
    const syntax = await post("/api/careless/x?n=twelve", `{}`);
    assert.equal(syntax.status, 400);
    assert.equal((await syntax.json()).details.sqlstate, "22P02");
    const twice = await post("/api/careless_twice");
    assert.equal(twice.status, 409);
    assert.equal((await twice.json()).error, "conflict");
  } finally {
    await t.close();
  }
});
