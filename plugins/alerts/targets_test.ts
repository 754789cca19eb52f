import assert from "node:assert/strict";
import http from "node:http";
import { postJson } from "./http_post.ts";
import {
  addressProblem,
  assertTarget,
  checkedAddresses,
  type Resolver,
  TargetRefused,
  webhookUrl,
} from "./targets.ts";
import { HttpError } from "../../core/errors.ts";

Deno.test("targets: internal address ranges are named, public ones pass", () => {
  const internal: Array<[string, string]> = [
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["::1", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "link-local"],
    ["fe80::1", "link-local"],
    ["fd12:3456::1", "unique-local (private)"],
    ["100.64.0.1", "shared (carrier-grade NAT)"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:10.0.0.1", "private"],
    ["64:ff9b::a00:1", "NAT64"],
    ["2002:a00:1::1", "6to4"],
  ];
  for (const [addr, name] of internal) assert.equal(addressProblem(addr), name, addr);
  for (const addr of ["93.184.216.34", "1.1.1.1", "172.32.0.1", "2606:4700::1111"]) {
    assert.equal(addressProblem(addr), null, addr);
  }
  assert.equal(addressProblem("not-an-ip"), "not an IP address");
});

Deno.test("targets: webhook URLs must be http(s) without credentials", () => {
  assert.equal(webhookUrl("https://hooks.example.com/x?y=1").hostname, "hooks.example.com");
  for (const bad of ["ftp://x.example/", "file:///etc/passwd", "https://u:p@x.example/", "nope"]) {
    assert.throws(() => webhookUrl(bad), (e) => e instanceof HttpError && e.status === 400, bad);
  }
});

Deno.test("targets: a name is refused when any address it resolves to is internal", async () => {
  const fixed = (...addresses: string[]): Resolver => () =>
    Promise.resolve(
      addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 })),
    );
  assert.equal((await checkedAddresses("ok.example", false, fixed("93.184.216.34"))).length, 1);
  await assert.rejects(
    checkedAddresses("mixed.example", false, fixed("93.184.216.34", "10.0.0.5")),
    (e) => e instanceof TargetRefused && /10\.0\.0\.5, a private address/.test(e.message),
  );
  // Allowed by the admin setting.
  assert.equal((await checkedAddresses("lan.example", true, fixed("10.0.0.5"))).length, 1);
  // Address literals need no resolver.
  await assert.rejects(checkedAddresses("[::1]", false), TargetRefused);
  await assert.rejects(
    assertTarget("169.254.169.254", false),
    (e) => e instanceof HttpError && e.code === "target_refused",
  );
  await assertTarget("93.184.216.34", false);
  await assert.rejects(
    assertTarget("nowhere.example", false, () => Promise.reject(new Error("ENOTFOUND"))),
    (e) => e instanceof HttpError && e.code === "target_unresolvable",
  );
});

Deno.test("targets: the address is checked again when connecting (DNS rebinding)", async () => {
  // A real server on loopback; the name first resolves to a public address (the save-time
  // check passes), then to 127.0.0.1 when the delivery connects.
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.end("ok");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  let calls = 0;
  const rebinding: Resolver = () =>
    Promise.resolve([{ address: calls++ === 0 ? "93.184.216.34" : "127.0.0.1", family: 4 }]);
  try {
    await checkedAddresses("rebind.example", false, rebinding);
    const url = new URL(`http://rebind.example:${port}/hook`);
    await assert.rejects(
      postJson(url, "{}", {}, { timeoutMs: 2000, allowPrivate: false, resolve: rebinding }),
      (e) => e instanceof TargetRefused && /127\.0\.0\.1, a loopback address/.test(e.message),
    );
    assert.equal(hits, 0, "no connection was made");
    // With internal targets allowed, the same lookup connects to exactly that address.
    const answer = await postJson(url, "{}", {}, {
      timeoutMs: 2000,
      allowPrivate: true,
      resolve: () => Promise.resolve([{ address: "127.0.0.1", family: 4 }]),
    });
    assert.equal(answer.status, 200);
    assert.equal(hits, 1);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
