/**
 * Linux inventory from /proc, /sys and the package manager that is present (dpkg, rpm or
 * apk), systemd for services, `df` for disks, `who`/`loginctl` for sessions and
 * `dmidecode` for memory modules when the agent runs as root (else one `total` entry).
 * Every tool is optional: a missing one leaves its part empty.
 *
 * @module
 */
import { readText, run } from "./exec.ts";
import type {
  MemoryItem,
  PlatformCollectors,
  ProcessItem,
  ServiceItem,
  SessionItem,
  SoftwareItem,
  StorageItem,
} from "./types.ts";

/** Parses /etc/os-release into its keys. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^["']|["']$/g, "");
  }
  return out;
}

/** Parses `df -PkT` output. */
export function parseDf(text: string): StorageItem[] {
  const out: StorageItem[] = [];
  for (const line of text.split("\n").slice(1)) {
    const c = line.trim().split(/\s+/);
    if (c.length < 7) continue;
    const [device, fstype, blocks, used, avail, , ...mount] = c;
    const total = Number(blocks) * 1024;
    const usedB = Number(used) * 1024;
    const free = Number(avail) * 1024;
    if (!Number.isFinite(total) || total <= 0) continue;
    out.push({
      device: device!,
      mountpoint: mount.join(" "),
      fstype: fstype!,
      total_bytes: total,
      used_bytes: usedB,
      free_bytes: free,
      used_percent: Math.round((usedB / (usedB + free || 1)) * 1000) / 10,
      usage: Math.round((usedB / (usedB + free || 1)) * 1000) / 10,
    });
  }
  return out;
}

/** Parses `dmidecode -t 17` (memory devices); empty slots are skipped. */
export function parseDmidecodeMemory(text: string): MemoryItem[] {
  const out: MemoryItem[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    if (!/Memory Device/.test(block)) continue;
    const field = (name: string) =>
      new RegExp(`^\\s*${name}:\\s*(.+)$`, "m").exec(block)?.[1]?.trim();
    const size = field("Size") ?? "";
    const m = /^(\d+)\s*(MB|GB|TB|kB)/i.exec(size);
    if (!m) continue;
    const unit = { kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 }[m[2]!.toLowerCase()]!;
    const speed = Number(/(\d+)/.exec(field("Speed") ?? "")?.[1]);
    out.push({
      slot: field("Locator") ?? "unknown",
      size_bytes: Number(m[1]) * unit,
      type: field("Type"),
      speed_mts: Number.isFinite(speed) ? speed : undefined,
      manufacturer: field("Manufacturer"),
      part_number: field("Part Number"),
    });
  }
  return out;
}

/** Parses `dpkg-query -W -f '${Package}\t${Version}\t${db:Status-Abbrev}\n'`. */
export function parseDpkg(text: string): SoftwareItem[] {
  const out: SoftwareItem[] = [];
  for (const line of text.split("\n")) {
    const [name, version, status] = line.split("\t");
    if (!name || !status?.startsWith("ii")) continue;
    out.push({ name, version: version ?? "", source: "dpkg" });
  }
  return out;
}

/** Parses `systemctl list-units --type=service --all --no-legend --plain`. */
export function parseSystemctl(text: string): ServiceItem[] {
  const out: ServiceItem[] = [];
  for (const line of text.split("\n")) {
    const c = line.trim().split(/\s+/);
    if (c.length < 4 || !c[0]!.endsWith(".service")) continue;
    out.push({
      name: c[0]!.replace(/\.service$/, ""),
      display_name: c.slice(4).join(" ") || undefined,
      state: c[3] === "running" ? "running" : c[2] === "failed" ? "failed" : c[3]!,
      start_mode: c[1] === "loaded" ? undefined : c[1],
    });
  }
  return out;
}

/**
 * Parses `service --status-all` (SysV init scripts, where systemd is not the running
 * init: containers, Devuan, minimal systems): ` [ + ]  name` running, `[ - ]` stopped,
 * `[ ? ]` no status.
 */
export function parseServiceStatusAll(text: string): ServiceItem[] {
  const out: ServiceItem[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*\[\s*([+?-])\s*\]\s+(\S+)\s*$/.exec(line);
    if (!m) continue;
    const state = m[1] === "+" ? "running" : m[1] === "-" ? "stopped" : "unknown";
    out.push({ name: m[2]!, state, start_mode: "sysv" });
  }
  return out;
}

/** True when systemd is the running init (its runtime folder exists). */
export function systemdRunning(): boolean {
  try {
    return Deno.statSync("/run/systemd/system").isDirectory;
  } catch {
    return false;
  }
}

/** Parses `who` output. */
export function parseWho(text: string): SessionItem[] {
  const out: SessionItem[] = [];
  for (const line of text.split("\n")) {
    // Linux: "alice pts/0 2026-01-05 12:00 (10.0.0.5)"; macOS: "alice console Jan  5 12:00".
    const m = /^(\S+)\s+(\S+)\s+(.*?)(?:\s+\((.*)\))?$/.exec(line.trim());
    if (m) {
      out.push({ user: m[1]!, terminal: m[2], since: m[3] || undefined, from: m[4] || undefined });
    }
  }
  return out;
}

let prevCpu: { idle: number; total: number } | null = null;

async function cpuSample(): Promise<{ idle: number; total: number } | null> {
  const stat = await readText("/proc/stat");
  const line = stat?.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) return null;
  const n = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (n[3] ?? 0) + (n[4] ?? 0);
  return { idle, total: n.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) };
}

async function users(): Promise<Map<number, string>> {
  const map = new Map<number, string>();
  for (const line of (await readText("/etc/passwd"))?.split("\n") ?? []) {
    const c = line.split(":");
    if (c.length > 2) map.set(Number(c[2]), c[0]!);
  }
  return map;
}

const CHASSIS: Record<string, string> = {
  "3": "Desktop",
  "4": "Desktop",
  "6": "Desktop",
  "7": "Desktop",
  "8": "Laptop",
  "9": "Laptop",
  "10": "Laptop",
  "13": "Desktop",
  "14": "Laptop",
  "17": "Server",
  "23": "Server",
  "28": "Server",
  "31": "Laptop",
  "32": "Laptop",
  "35": "Desktop",
};

/** The Linux collectors. */
export const linuxCollectors: PlatformCollectors = {
  async os() {
    const rel = parseOsRelease((await readText("/etc/os-release")) ?? "");
    const chassis = (await readText("/sys/class/dmi/id/chassis_type"))?.trim() ?? "";
    const resolv = (await readText("/etc/resolv.conf")) ?? "";
    const domain = /^\s*(?:domain|search)\s+(\S+)/m.exec(resolv)?.[1];
    return {
      os_family: "Linux",
      os_name: rel.NAME ?? "Linux",
      os_version: rel.VERSION_ID ?? rel.VERSION ?? "",
      operating_system: rel.PRETTY_NAME ?? `Linux ${Deno.osRelease()}`,
      kernel: Deno.osRelease(),
      device_type: CHASSIS[chassis] ?? "Server",
      domain: domain && domain !== "." ? domain : undefined,
    };
  },

  async hardware() {
    const info = (await readText("/proc/cpuinfo")) ?? "";
    const model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ??
      /^Hardware\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? Deno.build.arch;
    const logical = (info.match(/^processor\s*:/gm) ?? []).length || navigator.hardwareConcurrency;
    const sockets = new Set(info.match(/^physical id\s*:\s*\d+/gm) ?? []).size || 1;
    const coresPer = Number(/^cpu cores\s*:\s*(\d+)/m.exec(info)?.[1]) || undefined;
    const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1]) || undefined;
    const mem = Deno.systemMemoryInfo();
    let memory: MemoryItem[] = [];
    if (Deno.uid() === 0) {
      const dmi = await run("dmidecode", ["-t", "17"], { timeoutMs: 10_000 });
      if (dmi) memory = parseDmidecodeMemory(dmi);
    }
    if (!memory.length) memory = [{ slot: "total", size_bytes: mem.total }];
    const dmi = async (f: string) =>
      (await readText(`/sys/class/dmi/id/${f}`))?.trim() || undefined;
    return {
      cpu: {
        model,
        logical_cores: logical,
        physical_cores: coresPer ? coresPer * sockets : undefined,
        sockets,
        mhz,
        architecture: Deno.build.arch,
        load_average: Deno.loadavg(),
      },
      memory,
      system: {
        manufacturer: await dmi("sys_vendor"),
        model: await dmi("product_name"),
        serial_number: Deno.uid() === 0 ? await dmi("product_serial") : undefined,
        total_memory_bytes: mem.total,
        available_memory_bytes: mem.available,
      },
    };
  },

  async storage() {
    const out = await run("df", [
      "-PkT",
      "-x",
      "tmpfs",
      "-x",
      "devtmpfs",
      "-x",
      "squashfs",
      "-x",
      "overlay",
      "-x",
      "efivarfs",
    ], { anyExit: true, timeoutMs: 10_000 });
    return out ? parseDf(out) : [];
  },

  async software() {
    const dpkg = await run("dpkg-query", [
      "-W",
      "-f",
      "${Package}\t${Version}\t${db:Status-Abbrev}\n",
    ]);
    if (dpkg) return parseDpkg(dpkg);
    const rpm = await run("rpm", ["-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n"]);
    if (rpm) {
      return rpm.split("\n").filter(Boolean).map((l) => {
        const [name, version] = l.split("\t");
        return { name: name!, version: version ?? "", source: "rpm" };
      });
    }
    const apk = await run("apk", ["info", "-v"]);
    if (apk) {
      return apk.split("\n").filter(Boolean).map((l) => {
        const m = /^(.+)-(\d[^-]*-r\d+)$/.exec(l.trim());
        return { name: m?.[1] ?? l.trim(), version: m?.[2] ?? "", source: "apk" };
      });
    }
    return [];
  },

  async services() {
    if (!systemdRunning()) {
      // `service` runs every script's status action; some exit non-zero for "stopped".
      const sysv = await run("service", ["--status-all"], { anyExit: true });
      return sysv ? parseServiceStatusAll(sysv) : [];
    }
    const out = await run("systemctl", [
      "list-units",
      "--type=service",
      "--all",
      "--no-legend",
      "--no-pager",
      "--plain",
    ]);
    return out ? parseSystemctl(out) : [];
  },

  async processes() {
    const names = await users();
    const out: ProcessItem[] = [];
    const tick = 100; // USER_HZ on every mainstream kernel
    const page = 4096;
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
        // comm may hold spaces and parentheses: it ends at the last ')'.
        const close = stat.lastIndexOf(")");
        const name = stat.slice(stat.indexOf("(") + 1, close);
        const f = stat.slice(close + 2).split(" ");
        const uid = (await Deno.stat(`/proc/${e.name}`)).uid;
        out.push({
          pid: Number(e.name),
          ppid: Number(f[1]),
          name,
          user: uid === null ? undefined : names.get(uid) ?? String(uid),
          rss_bytes: Number(f[21]) * page,
          cpu_seconds: Math.round(((Number(f[11]) + Number(f[12])) / tick) * 100) / 100,
        });
      } catch { /* the process ended meanwhile */ }
    }
    return out.sort((a, b) => a.pid - b.pid);
  },

  async sessions() {
    const out = await run("who", []);
    return out ? parseWho(out) : [];
  },

  async cpuPercent() {
    const now = await cpuSample();
    if (!now) return null;
    const prev = prevCpu;
    prevCpu = now;
    if (!prev || now.total <= prev.total) return null;
    const busy = 1 - (now.idle - prev.idle) / (now.total - prev.total);
    return Math.max(0, Math.min(100, Math.round(busy * 1000) / 10));
  },
};
