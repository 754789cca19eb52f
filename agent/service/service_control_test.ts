import assert from "node:assert/strict";
import { serviceCommand, serviceControl } from "./service_control.ts";

Deno.test("service control: each platform's tool; names that could be paths or options are refused", async () => {
  assert.deepEqual(
    serviceCommand("restart", "Print Spooler", "windows").args.at(-1),
    "Restart-Service -Name 'Print Spooler' -Force -ErrorAction Stop",
  );
  assert.deepEqual(
    serviceCommand("start", "o'brien", "windows").args.at(-1),
    "Start-Service -Name 'o''brien' -ErrorAction Stop",
  );
  assert.deepEqual(serviceCommand("stop", "com.example.d", "darwin"), {
    cmd: "launchctl",
    args: ["kill", "SIGTERM", "system/com.example.d"],
    manager: "launchctl",
  });
  assert.deepEqual(serviceCommand("restart", "com.example.d", "darwin").args, [
    "kickstart",
    "-k",
    "system/com.example.d",
  ]);
  const linux = serviceCommand("restart", "cron", "linux");
  assert.ok(["systemctl", "service", "rc-service", "init.d"].includes(linux.manager));
  for (const bad of ["../x", "a/b", "-h", "x;y", "", "a".repeat(300)]) {
    const r = await serviceControl("restart", bad);
    assert.equal(r.ok, false, bad);
    assert.match(r.error!, /invalid service name/);
  }
  assert.match((await serviceControl("reload", "cron")).error!, /unknown action/);
});
