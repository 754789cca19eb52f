/**
 * macOS inventory: `sw_vers`, `sysctl`, `system_profiler SPMemoryDataType` (modules),
 * `df`, the bundles in /Applications (Info.plist through `plutil`) plus `pkgutil`
 * receipts, `launchctl list` for services, `ps` for processes and `who` for sessions.
 *
 * @module
 */
import { run } from "./exec.ts";
import { parseDf, parseWho } from "./linux.ts";
import type { MemoryItem, PlatformCollectors, SoftwareItem } from "./types.ts";

async function sysctl(name: string): Promise<string | undefined> {
  return (await run("sysctl", ["-n", name]))?.trim() || undefined;
}

async function appVersion(app: string): Promise<{ name: string; version: string } | null> {
  const json = await run("plutil", [
    "-convert",
    "json",
    "-o",
    "-",
    `${app}/Contents/Info.plist`,
  ], { timeoutMs: 5000 });
  if (!json) return null;
  try {
    const p = JSON.parse(json);
    return {
      name: String(p.CFBundleDisplayName ?? p.CFBundleName ?? app.replace(/^.*\/|\.app$/g, "")),
      version: String(p.CFBundleShortVersionString ?? p.CFBundleVersion ?? ""),
    };
  } catch {
    return null;
  }
}

/** The macOS collectors. */
export const macosCollectors: PlatformCollectors = {
  async os() {
    const name = (await run("sw_vers", ["-productName"]))?.trim() ?? "macOS";
    const version = (await run("sw_vers", ["-productVersion"]))?.trim() ?? Deno.osRelease();
    const model = await sysctl("hw.model");
    return {
      os_family: "macOS",
      os_name: name,
      os_version: version,
      operating_system: `${name} ${version}`,
      kernel: Deno.osRelease(),
      device_type: /book/i.test(model ?? "") ? "Laptop" : "Desktop",
    };
  },
  async hardware() {
    const mem = Deno.systemMemoryInfo();
    let memory: MemoryItem[] = [];
    const prof = await run("system_profiler", ["SPMemoryDataType", "-json"], { timeoutMs: 30_000 });
    try {
      const items = JSON.parse(prof ?? "{}").SPMemoryDataType?.[0]?._items ?? [];
      memory = items.map((m: Record<string, string>) => ({
        slot: m._name ?? "unknown",
        size_bytes: (Number(/(\d+)/.exec(m.dimm_size ?? "")?.[1]) || 0) * 1024 ** 3,
        type: m.dimm_type,
        speed_mts: Number(/(\d+)/.exec(m.dimm_speed ?? "")?.[1]) || undefined,
        manufacturer: m.dimm_manufacturer,
      })).filter((m: MemoryItem) => m.size_bytes > 0);
    } catch { /* Apple silicon reports one unified block, or the tool is missing */ }
    if (!memory.length) memory = [{ slot: "total", size_bytes: mem.total }];
    return {
      cpu: {
        model: (await sysctl("machdep.cpu.brand_string")) ?? Deno.build.arch,
        logical_cores: Number(await sysctl("hw.logicalcpu")) || navigator.hardwareConcurrency,
        physical_cores: Number(await sysctl("hw.physicalcpu")) || undefined,
        architecture: Deno.build.arch,
        load_average: Deno.loadavg(),
      },
      memory,
      system: {
        manufacturer: "Apple",
        model: await sysctl("hw.model"),
        total_memory_bytes: mem.total,
        available_memory_bytes: mem.available,
      },
    };
  },
  async storage() {
    const out = await run("df", ["-Pk"], { anyExit: true });
    if (!out) return [];
    // macOS df has no -T: insert an empty type column so the Linux parser reads it.
    const withType = out.split("\n").map((l, i) => i === 0 ? l : l.replace(/^(\S+)\s+/, "$1 - "))
      .join("\n");
    return parseDf(withType).filter((d) => d.device.startsWith("/dev/"));
  },
  async software() {
    const out: SoftwareItem[] = [];
    for (const dir of ["/Applications", "/Applications/Utilities"]) {
      try {
        for await (const e of Deno.readDir(dir)) {
          if (!e.name.endsWith(".app")) continue;
          const app = await appVersion(`${dir}/${e.name}`);
          if (app) out.push({ ...app, source: "applications" });
        }
      } catch { /* folder missing */ }
    }
    const pkgs = await run("pkgutil", ["--pkgs"]);
    for (const id of pkgs?.split("\n").filter(Boolean) ?? []) {
      out.push({ name: id.trim(), version: "", source: "pkgutil" });
    }
    return out;
  },
  async services() {
    const out = await run("launchctl", ["list"]);
    return (out ?? "").split("\n").slice(1).map((l) => l.trim().split(/\s+/)).filter((c) =>
      c.length >= 3
    ).map((c) => ({ name: c[2]!, state: c[0] === "-" ? "stopped" : "running" }));
  },
  async processes() {
    const out = await run("ps", ["-axo", "pid=,ppid=,user=,rss=,comm="]);
    return (out ?? "").split("\n").map((l) => l.trim().split(/\s+/)).filter((c) => c.length >= 5)
      .map((c) => ({
        pid: Number(c[0]),
        ppid: Number(c[1]),
        user: c[2],
        rss_bytes: Number(c[3]) * 1024,
        name: c.slice(4).join(" ").replace(/^.*\//, ""),
      }));
  },
  async sessions() {
    return parseWho((await run("who", [])) ?? "");
  },
  cpuPercent() {
    const [one] = Deno.loadavg();
    return Promise.resolve(
      Math.min(100, Math.round(((one ?? 0) / navigator.hardwareConcurrency) * 1000) / 10),
    );
  },
};
