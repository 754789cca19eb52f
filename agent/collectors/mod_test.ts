import assert from "node:assert/strict";
import { collectDetails } from "./mod.ts";
import type { PlatformCollectors } from "./types.ts";

const fake = (fail: string[]): PlatformCollectors => {
  const maybe = <T>(name: string, v: T) => () =>
    fail.includes(name) ? Promise.reject(new Error(`${name} tool missing`)) : Promise.resolve(v);
  return {
    os: maybe("os", { operating_system: "Test OS 1", os_name: "Test OS" }),
    hardware: maybe("hardware", {
      cpu: { model: "cpu" },
      memory: [{ slot: "total", size_bytes: 1 }],
      system: {},
    }),
    storage: maybe("storage", []),
    software: maybe("software", [{ name: "a", version: "1", source: "x" }, {
      name: "a",
      version: "1",
      source: "x",
    }]),
    services: maybe("services", []),
    processes: maybe("processes", [{ pid: 1, name: "init" }]),
    sessions: maybe("sessions", [{ user: "alice" }]),
    cpuPercent: () => Promise.resolve(null),
  };
};

Deno.test("collectors: a failing collector is left out and named; disabled ones are not run", async () => {
  const d = await collectDetails({ platform: fake(["services"]), disabled: ["processes"] });
  assert.equal(d.summary.operating_system, "Test OS 1");
  assert.equal(d.summary.last_user, "alice");
  assert.deepEqual(d.software, [{ name: "a", version: "1", source: "x" }]);
  assert.equal(d.services, undefined);
  assert.equal(d.processes, undefined);
  assert.deepEqual(d.summary.collector_errors, { services: "services tool missing" });
  assert.deepEqual(d.summary.collectors_disabled, ["processes"]);
  assert.equal(typeof (d.summary.collection_ms as Record<string, number>).total, "number");
});

Deno.test("collectors: this machine's real inventory has the basics", async () => {
  const d = await collectDetails();
  assert.ok(typeof d.summary.operating_system === "string");
  assert.ok(d.cpu && d.memory!.length > 0);
  assert.ok(d.network!.every((n) => n.addresses.length > 0));
  assert.ok(d.processes!.some((p) => p.pid === Deno.pid));
});
