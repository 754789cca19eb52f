import assert from "node:assert/strict";
import { ActionInput, DevicePath, InputFrame, OpenFrame } from "./schemas.ts";

Deno.test("schemas: device paths are absolute on Linux, macOS and Windows; nothing else", () => {
  for (
    const ok of [
      "/var/log/syslog",
      "C:\\Windows\\Temp\\x.log",
      "d:/data/a.bin",
      "\\\\srv\\share\\f",
    ]
  ) {
    assert.ok(DevicePath.safeParse(ok).success, ok);
  }
  for (const bad of ["relative/x", "x", "", "/a\0b", "C:", "~/.bashrc"]) {
    assert.ok(!DevicePath.safeParse(bad).success, JSON.stringify(bad));
  }
});

Deno.test("schemas: actions — service names without paths or shell, process ids, refresh parts", () => {
  const ok = (v: unknown) => ActionInput.safeParse(v).success;
  assert.ok(ok({ kind: "service", action: "restart", name: "nginx.service" }));
  assert.ok(ok({ kind: "service", action: "stop", name: "Print Spooler" }));
  assert.ok(!ok({ kind: "service", action: "reload", name: "nginx" }));
  assert.ok(!ok({ kind: "service", action: "stop", name: "../../bin/sh" }));
  assert.ok(!ok({ kind: "service", action: "stop", name: "a;rm -rf /" }));
  assert.ok(!ok({ kind: "service", action: "stop", name: "--help" }));
  assert.ok(!ok({ kind: "service", action: "stop", name: "x", extra: 1 }));
  assert.ok(ok({ kind: "process_kill", pid: 4321, name: "sleep" }));
  assert.ok(!ok({ kind: "process_kill", pid: 0 }));
  assert.ok(!ok({ kind: "process_kill", pid: 1.5 }));
  const r = ActionInput.parse({ kind: "refresh" });
  assert.deepEqual(r, { kind: "refresh", parts: ["services", "processes"] });
  assert.ok(!ok({ kind: "refresh", parts: ["software"] }));
});

Deno.test("schemas: terminal frames — sizes, base64 input within a chunk, reasons", () => {
  assert.ok(OpenFrame.safeParse({ guid: "x", cols: 80, rows: 24 }).success);
  assert.ok(!OpenFrame.safeParse({ guid: "x", cols: 1, rows: 24 }).success);
  assert.ok(
    !OpenFrame.safeParse({ guid: "x", cols: 80, rows: 24, reason: "r".repeat(501) }).success,
  );
  const id = crypto.randomUUID();
  assert.ok(InputFrame.safeParse({ session_id: id, offset: 0, data: btoa("ls\n") }).success);
  assert.ok(!InputFrame.safeParse({ session_id: id, offset: 0, data: "not base64!" }).success);
  assert.ok(!InputFrame.safeParse({ session_id: id, offset: -1, data: "" }).success);
  const big = btoa("x".repeat(16_500));
  assert.ok(!InputFrame.safeParse({ session_id: id, offset: 0, data: big }).success);
});
