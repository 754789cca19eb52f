import assert from "node:assert/strict";
import {
  fromGridModels,
  parseListState,
  sameRows,
  toApiQuery,
  toGridFilterModel,
  toGridSortModel,
  toSearchParams,
} from "./device_query.ts";

Deno.test("device query: a deep link becomes the API query, and back to the same URL", () => {
  const url = new URLSearchParams("site=3&status=offline&hostname=web&sort=last_seen&order=desc");
  const state = parseListState(url);
  assert.deepEqual(state, {
    site: 3,
    status: "offline",
    filters: { hostname: "web" },
    sort: { field: "last_seen", order: "desc" },
  });
  assert.equal(
    toApiQuery(state, 200, 100),
    "?site_id=3&presence=offline&hostname=web&sort=last_seen&order=desc&offset=200&limit=100",
  );
  assert.equal(toSearchParams(state).toString(), url.toString());
});

Deno.test("device query: bad values in a URL are dropped, not sent", () => {
  const state = parseListState(
    new URLSearchParams(
      "site=-1&status=sleeping&containment=gone&sort=password&hostname=%20%20&q=a%00b&os=x",
    ),
  );
  assert.deepEqual(state, { filters: {}, q: "ab" });
  assert.equal(parseListState(new URLSearchParams("site=1e10")).site, undefined);
  assert.equal(parseListState(new URLSearchParams("site=2.5")).site, undefined);
  assert.equal(
    toApiQuery({ filters: {} }, -5, 1e9),
    "?sort=hostname&order=asc&offset=0&limit=10000",
  );
  const long = "x".repeat(400);
  assert.equal(
    parseListState(new URLSearchParams({ hostname: long })).filters.hostname?.length,
    255,
  );
});

Deno.test("device query: AG Grid models map to column filters and sort, and back", () => {
  const picked = fromGridModels(
    {
      hostname: { filterType: "text", type: "contains", filter: " srv " },
      operating_system: { filterType: "text", type: "contains", filter: "" },
      not_a_column: { filterType: "text", type: "contains", filter: "x" },
    },
    [{ colId: "nope", sort: "asc" }, { colId: "site_name", sort: "desc" }],
  );
  assert.deepEqual(picked, {
    filters: { hostname: "srv" },
    sort: { field: "site_name", order: "desc" },
  });
  const state = { ...picked, status: "online" as const };
  assert.deepEqual(toGridFilterModel(state), {
    hostname: { filterType: "text", type: "contains", filter: "srv" },
  });
  assert.deepEqual(toGridSortModel(state), [{ colId: "site_name", sort: "desc" }]);
  assert.deepEqual(fromGridModels(toGridFilterModel(state), toGridSortModel(state)), picked);
  assert.deepEqual(fromGridModels({}, []), { filters: {}, sort: undefined });
});

Deno.test("device query: sameRows ignores nothing that changes the rows", () => {
  const a = parseListState(new URLSearchParams("status=online&hostname=a"));
  assert.ok(sameRows(a, parseListState(new URLSearchParams("hostname=a&status=online"))));
  assert.ok(!sameRows(a, parseListState(new URLSearchParams("status=online&hostname=b"))));
  assert.ok(!sameRows(a, { ...a, sort: { field: "hostname", order: "desc" } }));
});

Deno.test("device query: a saved filter travels from the URL to the API", () => {
  const state = parseListState(new URLSearchParams("filter=7&site=2&status=online"));
  assert.equal(state.filter, 7);
  assert.equal(toSearchParams(state).toString(), "site=2&filter=7&status=online");
  assert.match(toApiQuery(state, 0, 100), /[?&]filter_id=7(&|$)/);
  assert.equal(parseListState(new URLSearchParams("filter=-1")).filter, undefined);
  assert.equal(parseListState(new URLSearchParams("filter=abc")).filter, undefined);
});
