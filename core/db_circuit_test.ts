import assert from "node:assert/strict";
import { DatabaseCircuit } from "./db_circuit.ts";
import { classifyDbError, DatabaseUnavailableError, isDatabaseUnavailable } from "./db_errors.ts";
import { createLogSink } from "./log.ts";

Deno.test("circuit: a failed connection opens it; one probe per interval; a success closes it", () => {
  let now = 0;
  const c = new DatabaseCircuit({
    log: createLogSink({ stderr: false }).logger("db"),
    probeIntervalMs: 1000,
    now: () => now,
  });
  assert.ok(c.allow());
  c.failed("ECONNREFUSED");
  assert.ok(c.isOpen);
  assert.equal(c.allow(), false);
  assert.ok(c.refusal() instanceof DatabaseUnavailableError);
  assert.equal(c.retryAfterSeconds(), 2);
  assert.ok(c.allow(true), "a retry is a probe and always passes");
  now = 1000;
  assert.equal(c.allow(), true, "the probe");
  assert.equal(c.allow(), false, "only one probe at a time");
  c.failed("ECONNREFUSED");
  now = 1500;
  assert.equal(c.allow(), false);
  now = 2000;
  assert.equal(c.allow(), true);
  c.succeeded();
  assert.equal(c.isOpen, false);
  assert.ok(c.allow());
  assert.equal(c.opened, 1);
});

Deno.test("circuit: a connection that did not open while other queries completed is not an outage", () => {
  let now = 0;
  const c = new DatabaseCircuit({
    log: createLogSink({ stderr: false }).logger("db"),
    now: () => now,
  });
  const since = c.now();
  now = 100;
  c.succeeded(); // another query, on another connection
  now = 3000;
  c.failed("CONNECT_TIMEOUT", since);
  assert.equal(c.isOpen, false);
  assert.equal(c.isolatedFailures, 1);
  // Nothing completed since this attempt began: the database is unreachable.
  const later = c.now();
  now = 6000;
  c.failed("CONNECT_TIMEOUT", later);
  assert.equal(c.isOpen, true);
  assert.equal(c.opened, 1);
});

Deno.test("db errors: connection failures are told apart from statement errors", () => {
  assert.equal(classifyDbError(Object.assign(new Error("x"), { code: "ECONNREFUSED" })), "connect");
  assert.equal(classifyDbError(Object.assign(new Error("x"), { code: "57P03" })), "connect");
  assert.equal(classifyDbError(Object.assign(new Error("x"), { code: "57P01" })), "aborted");
  assert.equal(
    classifyDbError(Object.assign(new Error("x"), { code: "CONNECTION_CLOSED" })),
    "lost",
  );
  assert.equal(classifyDbError(Object.assign(new Error("x"), { code: "23505" })), null);
  assert.equal(classifyDbError(new TypeError("nope")), null);
  assert.ok(isDatabaseUnavailable(new DatabaseUnavailableError("down")));
});
