import assert from "node:assert/strict";
import {
  ACTIONS,
  criteriaSummary,
  emptyPolicy,
  RULES,
  ruleSummary,
  toPolicyBody,
  validatePolicy,
  withDefaults,
} from "./watchdog_form.ts";

Deno.test("watchdog form: rules in words", () => {
  assert.equal(ruleSummary({ type: "cpu_percent", threshold: 95 }), "CPU ≥ 95%");
  assert.equal(
    ruleSummary({ type: "device_offline", offline_after_seconds: 600 }),
    "offline for 10 min",
  );
  assert.equal(
    ruleSummary({
      type: "storage_usage_percent",
      threshold: 90,
      drive_mode: "specific",
      drive: "C:",
    }),
    "drive C: ≥ 90% full",
  );
  assert.equal(
    ruleSummary({
      type: "software_presence_or_version",
      software_name: "OpenSSL",
      require_present: true,
      version_operator: "older_than",
      version_value: "3.0",
    }),
    "OpenSSL missing (version older than 3.0)",
  );
  const p = emptyPolicy();
  p.criteria = {
    match_mode: "any",
    rules: [{ type: "cpu_percent", threshold: 90 }, { type: "memory_percent", threshold: 80 }],
  };
  assert.equal(criteriaSummary(p), "CPU ≥ 90% or memory ≥ 80%");
});

Deno.test("watchdog form: defaults, cleaning and checks", () => {
  assert.deepEqual(withDefaults("service_state", RULES), {
    type: "service_state",
    service_name: "",
    expected_status: "running",
  });
  assert.deepEqual(withDefaults("notification", ACTIONS).variant, "warning");
  const p = emptyPolicy();
  p.name = "Disk";
  p.criteria.rules = [{
    type: "storage_usage_percent",
    threshold: "85",
    drive_mode: "all",
    drive: "C:",
  }];
  p.actions.actions = [{ type: "service_control", action: "restart", service_name: "" }];
  const e = validatePolicy(p);
  assert.deepEqual(e, { "actions.0.service_name": "Required" });
  const body = toPolicyBody(p);
  assert.deepEqual(body.criteria.rules[0], {
    type: "storage_usage_percent",
    threshold: 85,
    drive_mode: "all",
  });
  p.criteria.rules = [{
    type: "storage_usage_percent",
    threshold: 85,
    drive_mode: "specific",
    drive: "",
  }];
  assert.equal(validatePolicy(p)["rules.0.drive"], "Name the drive");
});
