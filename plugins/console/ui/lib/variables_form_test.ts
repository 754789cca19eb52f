import assert from "node:assert/strict";
import { fieldsFor, initialValues, toVariableValues, validate } from "./variables_form.ts";
import type { VariableDef } from "../api/types.ts";

const defs: VariableDef[] = [
  { name: "older_than_days", label: "Older than (days)", type: "number", default: 7 },
  { name: "dry_run", label: "Dry run", type: "boolean", default: false },
  { name: "service", type: "string", required: true, description: "Service name" },
  { name: "admin", label: "Admin account", type: "credential", required: true },
  { name: "Service", type: "number" }, // a repeated name (case-insensitive): ignored
  { name: "  ", type: "string" }, // nameless: ignored
  { name: "note", type: "mystery" as never, default: null },
];

Deno.test("variables form: one field per definition, typed, with labels and defaults", () => {
  const fields = fieldsFor(defs);
  assert.deepEqual(fields, [
    { name: "older_than_days", label: "Older than (days)", kind: "number", required: false },
    { name: "dry_run", label: "Dry run", kind: "boolean", required: false },
    {
      name: "service",
      label: "service",
      kind: "text",
      required: true,
      description: "Service name",
    },
    { name: "admin", label: "Admin account", kind: "credential", required: true },
    { name: "note", label: "note", kind: "text", required: false },
  ]);
  assert.deepEqual(initialValues(fields, defs), {
    older_than_days: "7",
    dry_run: false,
    service: "",
    admin: "",
    note: "",
  });
  assert.deepEqual(fieldsFor(undefined), []);
});

Deno.test("variables form: checked like the engine checks, sent without empty optionals", () => {
  const fields = fieldsFor(defs);
  const values = initialValues(fields, defs);
  assert.deepEqual(validate(fields, values), { service: "Required", admin: "Pick a credential" });
  values.service = "nginx";
  values.admin = "12";
  values.older_than_days = "seven";
  assert.deepEqual(validate(fields, values), { older_than_days: "Enter a number" });
  values.older_than_days = " 30 ";
  values.dry_run = true;
  assert.deepEqual(validate(fields, values), {});
  assert.deepEqual(toVariableValues(fields, values), {
    older_than_days: 30,
    dry_run: true,
    service: "nginx",
    admin: 12,
  });
  values.admin = "abc";
  assert.deepEqual(validate(fields, values), { admin: "Pick a credential" });
});
