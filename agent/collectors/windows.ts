/**
 * Windows inventory: one PowerShell run per details collection (./windows_script.ts:
 * CIM classes, the uninstall registry keys, `quser`), CPU load from the same run and,
 * between details runs, from `Deno.loadavg`-free sampling of Win32_Processor.
 *
 * @module
 */
import { run } from "./exec.ts";
import type { CollectorName, PlatformCollectors, StorageItem } from "./types.ts";
import { windowsInventoryCommand } from "./windows_script.ts";
import { which } from "../runners/interpreters.ts";

// deno-lint-ignore no-explicit-any
type Raw = Record<string, any>;

let raw: Raw = {};

function encoded(script: string): string {
  const bytes = new Uint8Array(script.length * 2);
  for (let i = 0; i < script.length; i++) {
    const c = script.charCodeAt(i);
    bytes[i * 2] = c & 0xff;
    bytes[i * 2 + 1] = c >> 8;
  }
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Runs the inventory script for `sections`; {} when PowerShell is missing or fails. */
export async function runInventoryScript(sections: string[]): Promise<Raw> {
  const ps = which("powershell") ?? which("pwsh");
  if (!ps) return {};
  const out = await run(ps, [
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-EncodedCommand",
    encoded(windowsInventoryCommand(sections)),
  ], { timeoutMs: 120_000 });
  try {
    return out ? JSON.parse(out) : {};
  } catch {
    return {};
  }
}

const arr = <T>(v: unknown): T[] => (Array.isArray(v) ? v : v ? [v as T] : []);

/** The Windows collectors. */
export const windowsCollectors: PlatformCollectors = {
  async prepare(wanted: readonly CollectorName[]) {
    raw = await runInventoryScript(wanted.includes("os") ? [...wanted] : ["os", ...wanted]);
  },
  os() {
    const os = raw.os ?? {};
    return Promise.resolve({
      os_family: "Windows",
      os_name: os.caption ?? "Windows",
      os_version: os.version ?? Deno.osRelease(),
      operating_system: os.caption
        ? `${os.caption} (${os.version})`
        : `Windows ${Deno.osRelease()}`,
      kernel: os.build ?? Deno.osRelease(),
      device_type: os.product_type === 1 ? "Workstation" : "Server",
      domain: os.part_of_domain ? os.domain : undefined,
      last_reboot: os.last_boot,
      console_user: os.console_user ?? undefined,
    });
  },
  hardware() {
    const h = raw.hardware ?? {};
    const mem = Deno.systemMemoryInfo();
    const memory = arr<Raw>(h.memory).map((m) => ({
      slot: String(m.slot ?? "unknown"),
      size_bytes: Number(m.size_bytes ?? 0),
      speed_mts: m.speed_mts ?? undefined,
      manufacturer: m.manufacturer ?? undefined,
      part_number: m.part_number ?? undefined,
    }));
    return Promise.resolve({
      cpu: {
        model: h.cpu_model ?? Deno.build.arch,
        logical_cores: h.logical_cores ?? navigator.hardwareConcurrency,
        physical_cores: h.physical_cores,
        sockets: h.sockets,
        mhz: h.mhz,
        architecture: Deno.build.arch,
      },
      memory: memory.length ? memory : [{ slot: "total", size_bytes: mem.total }],
      system: {
        manufacturer: h.manufacturer,
        model: h.model,
        serial_number: h.serial_number,
        total_memory_bytes: mem.total,
        available_memory_bytes: mem.available,
      },
    });
  },
  storage() {
    return Promise.resolve(
      arr<Raw>(raw.storage).map((d): StorageItem => {
        const total = Number(d.total_bytes ?? 0);
        const free = Number(d.free_bytes ?? 0);
        return {
          device: String(d.device),
          mountpoint: String(d.mountpoint),
          fstype: String(d.fstype ?? ""),
          total_bytes: total,
          used_bytes: total - free,
          free_bytes: free,
          used_percent: total ? Math.round(((total - free) / total) * 1000) / 10 : 0,
          usage: total ? Math.round(((total - free) / total) * 1000) / 10 : 0,
        };
      }),
    );
  },
  software() {
    return Promise.resolve(
      arr<Raw>(raw.software).map((s) => ({
        name: String(s.name),
        version: String(s.version ?? ""),
        source: "registry",
      })),
    );
  },
  services() {
    return Promise.resolve(
      arr<Raw>(raw.services).map((s) => ({
        name: String(s.name),
        display_name: s.display_name ?? undefined,
        state: String(s.state ?? "unknown"),
        start_mode: s.start_mode ?? undefined,
      })),
    );
  },
  processes() {
    return Promise.resolve(
      arr<Raw>(raw.processes).map((p) => ({
        pid: Number(p.pid),
        ppid: Number(p.ppid),
        name: String(p.name),
        rss_bytes: Number(p.rss_bytes ?? 0),
        cpu_seconds: Number(p.cpu_seconds ?? 0),
      })),
    );
  },
  sessions() {
    return Promise.resolve(
      arr<Raw>(raw.sessions).map((s) => ({
        user: String(s.user),
        terminal: s.terminal ?? undefined,
        since: s.since ?? undefined,
      })),
    );
  },
  async cpuPercent() {
    // Between details runs: one cheap query (typeperf ships with every Windows).
    const out = await run("typeperf", ["-sc", "1", "\\Processor(_Total)\\% Processor Time"], {
      timeoutMs: 10_000,
    });
    const m = out && /"[^"]*","([\d.]+)"\s*$/m.exec(out.trim());
    return m ? Math.round(Number(m[1]) * 10) / 10 : null;
  },
};
