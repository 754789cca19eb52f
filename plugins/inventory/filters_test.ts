import assert from "node:assert/strict";
import { HttpError } from "../../core/errors.ts";
import { checkSafeRegex, FilterDefinition, filterMetadata, MAX_REGEX_LENGTH } from "./filters.ts";

const refused = (pattern: string) =>
  assert.throws(
    () => checkSafeRegex(pattern),
    (e: unknown) => e instanceof HttpError && e.status === 400 && e.code === "filter_invalid_regex",
    pattern,
  );

Deno.test("filters: back-references and over-long patterns are refused before any query", () => {
  for (
    const p of [
      "(a)\\1",
      "^(.*)(.*)\\2$",
      "x\\9",
      "(?b)\\(a\\)\\1",
      "y".repeat(MAX_REGEX_LENGTH + 1),
    ]
  ) {
    refused(p);
  }
  for (
    const p of [
      "^web-[0-9]+$",
      "a\\\\1",
      "\\d+\\.\\d+",
      "[\\w-]+",
      "(?i)host",
      "x".repeat(MAX_REGEX_LENGTH),
    ]
  ) {
    checkSafeRegex(p);
  }
});

Deno.test("filters: definition defaults and metadata", () => {
  const def = FilterDefinition.parse({ name: "All" });
  assert.equal(def.criteria_mode, "basic");
  assert.equal(def.site_mode, "global");
  assert.deepEqual(def.site_ids, []);
  assert.deepEqual(def.advanced_criteria, { groups: [] });
  assert.equal(
    FilterDefinition.safeParse({
      name: "x",
      basic_criteria: [{ field: "nope", operator: "equals", value: "a" }],
    }).success,
    false,
  );
  const types = Object.fromEntries(filterMetadata.fields.map((f) => [f.field, f.type]));
  assert.equal(types.hostname, "text");
  assert.equal(types.total_ram_gb, "number");
  assert.equal(types.installed_software, "software");
  assert.deepEqual([...filterMetadata.site_modes], [
    "global",
    "specific_sites",
    "global_exclusions",
  ]);
});
