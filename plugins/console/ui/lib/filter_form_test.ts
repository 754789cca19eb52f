import assert from "node:assert/strict";
import {
  criteriaSummary,
  emptyFilter,
  type FilterMetadata,
  newCondition,
  scopeSummary,
  toDefinition,
  validateFilter,
} from "./filter_form.ts";

const meta: FilterMetadata = {
  fields: [
    { field: "hostname", type: "text" },
    { field: "total_ram_gb", type: "number" },
    { field: "installed_software", type: "software" },
  ],
  text_operators: ["contains", "equals"],
  number_operators: ["eq", "gt"],
  version_operators: ["matches", "older_than"],
  software_sources: ["dpkg"],
};

Deno.test("filter form: summaries read like the criteria", () => {
  const f = emptyFilter();
  assert.equal(criteriaSummary(f), "Every device");
  f.basic_criteria = [
    { field: "hostname", operator: "contains", value: "web" },
    { field: "total_ram_gb", operator: "gt", value: 8 },
  ];
  assert.equal(criteriaSummary(f), 'Hostname contains "web" and Memory (GB) > "8"');
  f.criteria_mode = "advanced";
  f.advanced_criteria = {
    groups: [
      { conditions: [{ field: "hostname", operator: "contains", value: "^db", use_regex: true }] },
      {
        join_with: "OR",
        conditions: [
          {
            field: "installed_software",
            operator: "contains",
            value: "openssl",
            version_operator: "older_than",
            version_value: "3.0",
          },
        ],
      },
    ],
  };
  assert.equal(
    criteriaSummary(f),
    '(Hostname contains /^db/) or (Installed software contains "openssl" version older than 3.0)',
  );
  assert.equal(scopeSummary({ site_mode: "global", site_ids: [] }, String), "All sites");
  assert.equal(
    scopeSummary({ site_mode: "global_exclusions", site_ids: [2] }, () => "Lab"),
    "All sites except Lab",
  );
});

Deno.test("filter form: the body keeps only the chosen mode and typed values", () => {
  const f = emptyFilter();
  f.name = " Big boxes ";
  f.basic_criteria = [{ ...newCondition("total_ram_gb", meta), value: "16" }];
  assert.equal(f.basic_criteria[0]!.operator, "eq");
  f.advanced_criteria = { groups: [{ conditions: [newCondition("hostname", meta)] }] };
  const def = toDefinition(f, meta);
  assert.equal(def.name, "Big boxes");
  assert.deepEqual(def.basic_criteria, [{ field: "total_ram_gb", operator: "eq", value: 16 }]);
  assert.deepEqual(def.advanced_criteria, { groups: [] });
  assert.deepEqual(validateFilter(f, meta), {});
  f.basic_criteria[0]!.value = "lots";
  f.site_mode = "specific_sites";
  assert.deepEqual(validateFilter(f, meta), {
    "basic.0": "A number",
    site_ids: "Pick at least one site",
  });
});
