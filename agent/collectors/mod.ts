/**
 * Inventory collection: the details document (`POST /api/agent/details`) from the
 * collectors of this OS, each timed and isolated (one that throws leaves its part out and
 * is named in `summary.collector_errors`), and the cheap metrics every heartbeat carries.
 *
 * @module
 */
import { linuxCollectors } from "./linux.ts";
import { macosCollectors } from "./macos.ts";
import {
  type CollectorName,
  COLLECTORS,
  type Details,
  type NetworkItem,
  type PlatformCollectors,
} from "./types.ts";
import { windowsCollectors } from "./windows.ts";

export * from "./types.ts";

/** The collectors of the running OS. */
export function platformCollectors(os: typeof Deno.build.os = Deno.build.os): PlatformCollectors {
  if (os === "windows") return windowsCollectors;
  if (os === "darwin") return macosCollectors;
  return linuxCollectors;
}

function prefixToMask(family: "IPv4" | "IPv6", netmask: string): number | null {
  if (family === "IPv4") {
    const bits = netmask.split(".").map((o) => Number(o).toString(2).padStart(8, "0")).join("");
    return bits.includes("01") ? null : bits.indexOf("0") === -1 ? 32 : bits.indexOf("0");
  }
  const groups = netmask.split(":").filter(Boolean).map((g) =>
    parseInt(g, 16).toString(2).padStart(16, "0")
  );
  const bits = groups.join("");
  return bits.indexOf("0") === -1 ? bits.length : bits.indexOf("0");
}

/** Network adapters from the runtime (every OS), loopback left out. */
export async function networkAdapters(): Promise<NetworkItem[]> {
  const byName = new Map<string, NetworkItem>();
  for (const n of Deno.networkInterfaces()) {
    if (n.address === "127.0.0.1" || n.address === "::1") continue;
    let item = byName.get(n.name);
    if (!item) {
      item = {
        name: n.name,
        mac: n.mac && n.mac !== "00:00:00:00:00:00" ? n.mac : null,
        addresses: [],
      };
      if (Deno.build.os === "linux") {
        const read = async (f: string) => {
          try {
            return (await Deno.readTextFile(`/sys/class/net/${n.name}/${f}`)).trim();
          } catch {
            return undefined;
          }
        };
        item.state = await read("operstate");
        const speed = Number(await read("speed"));
        if (Number.isFinite(speed) && speed > 0) item.speed_mbps = speed;
      }
      byName.set(n.name, item);
    }
    const prefix = prefixToMask(n.family, n.netmask);
    item.addresses.push({
      address: n.address,
      family: n.family,
      netmask: n.netmask,
      cidr: prefix === null ? null : `${n.address}/${prefix}`,
    });
  }
  return [...byName.values()];
}

/** The first private IPv4 address, for the device list's internal_ip. */
export function primaryAddress(adapters: NetworkItem[]): string | undefined {
  for (const a of adapters) {
    for (const addr of a.addresses) {
      if (addr.family === "IPv4" && !addr.address.startsWith("169.254.")) return addr.address;
    }
  }
  return undefined;
}

/** Options of {@link collectDetails}. */
export interface CollectOptions {
  /** Collectors turned off (agent.json `collectors: {software: false}`). */
  disabled?: readonly CollectorName[];
  /** Extra summary fields (agent version, hostname). */
  summary?: Record<string, unknown>;
  /** The collectors to use (tests pass another OS's parsers). */
  platform?: PlatformCollectors;
}

/** Collects the details document. */
export async function collectDetails(o: CollectOptions = {}): Promise<Details> {
  const p = o.platform ?? platformCollectors();
  const wanted = COLLECTORS.filter((c) => !o.disabled?.includes(c));
  const errors: Record<string, string> = {};
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
    const start = performance.now();
    try {
      return await fn();
    } catch (err) {
      errors[name] = err instanceof Error ? err.message : String(err);
      return undefined;
    } finally {
      timings[name] = Math.round(performance.now() - start);
    }
  };
  const start = performance.now();
  if (p.prepare) await timed("prepare", () => p.prepare!(wanted));
  const want = (c: CollectorName) => wanted.includes(c);
  const os = (await timed("os", () => p.os())) ?? {};
  const hw = want("hardware") ? await timed("hardware", () => p.hardware()) : undefined;
  const storage = want("storage") ? await timed("storage", () => p.storage()) : undefined;
  const network = want("network") ? await timed("network", () => networkAdapters()) : undefined;
  const software = want("software") ? await timed("software", () => p.software()) : undefined;
  const services = want("services") ? await timed("services", () => p.services()) : undefined;
  const processes = want("processes") ? await timed("processes", () => p.processes()) : undefined;
  const sessions = want("sessions") ? await timed("sessions", () => p.sessions()) : undefined;
  const uptime = Math.round(Deno.osUptime());
  const lastReboot = typeof os.last_reboot === "string"
    ? os.last_reboot
    : new Date(Date.now() - uptime * 1000).toISOString();
  const consoleUser = typeof os.console_user === "string" ? os.console_user : undefined;
  const summary: Record<string, unknown> = {
    hostname: Deno.hostname(),
    ...(want("os") ? os : { operating_system: os.operating_system }),
    architecture: Deno.build.arch,
    uptime,
    last_reboot: lastReboot,
    last_user: consoleUser ?? sessions?.[0]?.user,
    internal_ip: network ? primaryAddress(network) : undefined,
    ...hw?.system,
    // The name device filters read (bytes).
    total_ram: (hw?.system as { total_memory_bytes?: number } | undefined)?.total_memory_bytes,
    ...o.summary,
    collection_ms: { total: Math.round(performance.now() - start), ...timings },
    ...(Object.keys(errors).length ? { collector_errors: errors } : {}),
    collectors_disabled: o.disabled?.length ? [...o.disabled] : undefined,
  };
  delete summary.console_user;
  const details: Details = { summary };
  if (hw) {
    details.cpu = hw.cpu;
    details.memory = hw.memory;
  }
  if (storage) details.storage = storage;
  if (network) details.network = network;
  if (software) details.software = dedupeSoftware(software);
  if (services) details.services = services;
  if (processes) details.processes = processes;
  if (sessions) details.sessions = sessions;
  return details;
}

function dedupeSoftware(items: { name: string; version: string; source: string }[]) {
  const seen = new Set<string>();
  return items.filter((s) => {
    const name = s.name.slice(0, 512);
    const key = `${name}\u0000${s.version}\u0000${s.source}`;
    if (!name.trim() || seen.has(key)) return false;
    seen.add(key);
    s.name = name;
    s.version = s.version.slice(0, 256);
    return true;
  }).slice(0, 50_000);
}

/** Metrics for a heartbeat: cheap enough for every 30 s. */
export async function heartbeatMetrics(
  p: PlatformCollectors = platformCollectors(),
  known: { operating_system?: string; last_user?: string; domain?: string } = {},
): Promise<Record<string, unknown>> {
  const mem = Deno.systemMemoryInfo();
  const uptime = Math.round(Deno.osUptime());
  const cpu = await p.cpuPercent().catch(() => null);
  return {
    ...(known.operating_system ? { operating_system: known.operating_system } : {}),
    ...(known.last_user ? { last_user: known.last_user } : {}),
    ...(known.domain ? { domain: known.domain } : {}),
    uptime,
    last_reboot: new Date(Date.now() - uptime * 1000).toISOString(),
    ...(cpu === null ? {} : { cpu_percent: cpu }),
    memory_percent: mem.total
      ? Math.round(((mem.total - mem.available) / mem.total) * 1000) / 10
      : undefined,
    service_mode: "system",
  };
}
