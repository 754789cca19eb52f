/**
 * The five platform packages from one `deno task agent:package` run: every platform has
 * its runtime (the right executable format and CPU), the same bundled agent, its service
 * files (WinSW and its XML on Windows), runtimes recorded with their npm integrity from
 * agent/package/deno.lock; the engine signs the manifest with its code-signing key. The
 * systemd unit passes `systemd-analyze verify` (where installed) and the PowerShell
 * scripts pass the tree-sitter PowerShell parser.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { parseManifest, PLATFORMS, verifyManifestSignature } from "../agent/updater/manifest.ts";
import { renderServiceFile } from "../agent/service/install.ts";
import { agentPaths } from "../agent/service/paths.ts";
import { windowsInventoryCommand } from "../agent/collectors/windows_script.ts";
import { COLLECTORS } from "../agent/collectors/types.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import { startIdentity } from "./agent/harness.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** Compressed runtimes shared by every build of the suite (and by the next run). */
const PACKAGE_CACHE = join(tmpdir(), "borealis-agent-package-cache");

async function head(path: string, n = 64): Promise<Uint8Array> {
  const res = new Response(
    (await Deno.open(path)).readable.pipeThrough(new DecompressionStream("gzip")),
  );
  const reader = res.body!.getReader();
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const { value, done } = await reader.read();
    if (done) break;
    const take = value.subarray(0, n - got);
    out.set(take, got);
    got += take.length;
  }
  await reader.cancel();
  return out;
}

/** Executable format and CPU of a runtime from its first bytes. */
function executableKind(b: Uint8Array): string {
  const dv = new DataView(b.buffer);
  if (b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46) {
    const machine = dv.getUint16(18, true);
    return `elf-${machine === 0x3e ? "x64" : machine === 0xb7 ? "arm64" : machine}`;
  }
  if (dv.getUint32(0, true) === 0xfeedfacf) {
    const cpu = dv.getUint32(4, true);
    return `macho-${cpu === 0x01000007 ? "x64" : cpu === 0x0100000c ? "arm64" : cpu}`;
  }
  if (b[0] === 0x4d && b[1] === 0x5a) return "pe";
  return "unknown";
}

Deno.test({
  name: "agent packages: five platforms, right runtimes and service files, signed by the engine",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const h = await startIdentity({ plugins: builtinPlugins });
    const out = join(h.t.db.dataDir, "agent_packages");
    try {
      const build = await new Deno.Command(Deno.execPath(), {
        args: ["task", "agent:package", "--version", "3.0.0", "--channel", "beta", "--out", out],
        cwd: ROOT,
        env: { NO_COLOR: "1", BOREALIS_AGENT_PACKAGE_CACHE: PACKAGE_CACHE },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(build.stdout) + new TextDecoder().decode(build.stderr);
      assert.ok(build.success, log);
      for (const p of PLATFORMS) assert.match(log, new RegExp(`${p}: [\\d.]+ MB to download`));

      const manifestBytes = await Deno.readFile(join(out, "3.0.0/manifest.txt"));
      const m = parseManifest(new TextDecoder().decode(manifestBytes));
      const lock = JSON.parse(await Deno.readTextFile(join(ROOT, "agent/package/deno.lock")));
      const expected: Record<string, { files: string[]; exe: string }> = {
        "linux-x64": { files: ["deno", "agent.js", "borealis-agent.service"], exe: "elf-x64" },
        "linux-arm64": { files: ["deno", "agent.js", "borealis-agent.service"], exe: "elf-arm64" },
        "darwin-x64": { files: ["deno", "agent.js", "com.borealis.agent.plist"], exe: "macho-x64" },
        "darwin-arm64": {
          files: ["deno", "agent.js", "com.borealis.agent.plist"],
          exe: "macho-arm64",
        },
        "windows-x64": {
          files: [
            "deno.exe",
            "agent.js",
            "borealis-agent-service.xml",
            "winsw.exe",
            "winsw.exe.config",
            "winsw-license.txt",
          ],
          exe: "pe",
        },
      };
      const agentHashes = new Set<string>();
      for (const [platform, want] of Object.entries(expected)) {
        const files = m.files.filter((f) => f.platform === platform);
        assert.deepEqual(files.map((f) => f.name).sort(), [...want.files].sort(), platform);
        const runtime = m.runtimes.find((r) =>
          r.platform === platform && r.npm.startsWith("@deno/")
        )!;
        const [name, version] = [
          runtime.npm.slice(0, runtime.npm.lastIndexOf("@")),
          runtime.npm.split("@").pop(),
        ];
        assert.equal(runtime.integrity, lock.npm[`${name}@${version}`].integrity, platform);
        assert.match(runtime.integrity, /^sha512-/);
        const exe = files.find((f) => f.name.startsWith("deno"))!;
        assert.equal(
          executableKind(await head(join(out, "3.0.0", platform, `${exe.name}.gz`))),
          want.exe,
        );
        assert.ok(exe.size > 50_000_000, `${platform} runtime is ${exe.size} bytes`);
        agentHashes.add(files.find((f) => f.name === "agent.js")!.sha256);
        if (platform === "windows-x64") {
          const winsw = files.find((f) => f.name === "winsw.exe")!;
          assert.equal(
            executableKind(await head(join(out, "3.0.0", platform, "winsw.exe.gz"))),
            "pe",
          );
          assert.ok(
            m.runtimes.some((r) => r.platform === platform && r.npm.startsWith("node-windows@")),
          );
          assert.ok(winsw.size > 10_000);
        }
      }
      assert.equal(agentHashes.size, 1, "one bundle for every platform");

      // The engine registers and signs it; the signature verifies with the code-signing key.
      const scan = await h.op("/api/agent-updates/releases/scan", { json: {} });
      assert.deepEqual((await scan.json()).registered, ["3.0.0"]);
      const sig = (await Deno.readTextFile(join(out, "3.0.0/manifest.sig"))).trim();
      const key = (await (await h.t.request("/api/agent/code-signing-key")).json()).signing_key;
      assert.ok(await verifyManifestSignature(manifestBytes, sig, key));
      const tampered = manifestBytes.slice();
      tampered[tampered.length - 2] = tampered[tampered.length - 2]! ^ 1;
      assert.equal(await verifyManifestSignature(tampered, sig, key), false);
      const release = (await (await h.op("/api/agent-updates/releases")).json()).releases[0];
      assert.equal(release.channel, "beta");
      assert.deepEqual(Object.keys(release.platforms).sort(), [...PLATFORMS].sort());
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "agent packages: the systemd unit passes systemd-analyze verify",
  ignore: !(await Deno.stat("/usr/bin/systemd-analyze").catch(() => null)),
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "borealis-agent-unit-" });
    try {
      const paths = agentPaths(root);
      await Deno.mkdir(join(paths.program, "current"), { recursive: true });
      await Deno.mkdir(paths.state, { recursive: true });
      await Deno.copyFile(Deno.execPath(), join(paths.program, "current/deno"));
      await Deno.writeTextFile(join(paths.program, "current/agent.js"), "");
      const unit = renderServiceFile(
        await Deno.readTextFile(join(ROOT, "agent/service/files/borealis-agent.service")),
        paths,
      );
      assert.equal(unit.includes("@"), false, "every placeholder is filled");
      const file = join(root, "borealis-agent.service");
      await Deno.writeTextFile(file, unit);
      const r = await new Deno.Command("systemd-analyze", {
        args: ["verify", file],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
      assert.ok(r.success, err);
      assert.equal(err.trim(), "", "no warnings");
      // And a broken one is caught, so the check can fail.
      await Deno.writeTextFile(file, unit.replace("Restart=always", "Restart=sometimes"));
      const bad = await new Deno.Command("systemd-analyze", {
        args: ["verify", file],
        stderr: "piped",
      })
        .output();
      assert.match(new TextDecoder().decode(bad.stderr), /restart specifier/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("agent packages: the PowerShell scripts parse (tree-sitter PowerShell grammar)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "borealis-agent-ps-" });
  try {
    const inventory = join(dir, "inventory.ps1");
    await Deno.writeTextFile(inventory, windowsInventoryCommand([...COLLECTORS]));
    const broken = join(dir, "broken.ps1");
    await Deno.writeTextFile(broken, "param([string]$A\nif ($A) { Write-Host 'x' \n");
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        "agent/package/deno.json",
        "agent/package/check_powershell.ts",
        join(ROOT, "agent/service/files/install.ps1"),
        inventory,
        broken,
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const lines = new TextDecoder().decode(r.stdout).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 3, new TextDecoder().decode(r.stderr));
    assert.deepEqual(lines.map((l) => l.ok), [true, true, false], JSON.stringify(lines));
    assert.equal(r.code, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
