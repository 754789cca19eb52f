/**
 * The inventory document the agent sends in `POST /api/agent/details` (see
 * docs/agent.md, "What is collected") and the cheap metrics in every heartbeat.
 *
 * @module
 */

/** Collectors that can be turned off one by one (`collectors` in agent.json). */
export const COLLECTORS = [
  "os",
  "hardware",
  "storage",
  "network",
  "software",
  "services",
  "processes",
  "sessions",
] as const;

/** One collector's name. */
export type CollectorName = typeof COLLECTORS[number];

/** An installed program. */
export interface SoftwareItem {
  name: string;
  version: string;
  source: string;
}

/** A mounted file system or a logical disk. */
export interface StorageItem {
  device: string;
  mountpoint: string;
  fstype: string;
  total_bytes: number;
  used_bytes: number;
  free_bytes: number;
  used_percent: number;
  /** Same as used_percent: the name device filters read. */
  usage: number;
}

/** A memory module (or, when modules cannot be read, one `total` entry). */
export interface MemoryItem {
  slot: string;
  size_bytes: number;
  type?: string;
  speed_mts?: number;
  manufacturer?: string;
  part_number?: string;
}

/** A network adapter and its addresses. */
export interface NetworkItem {
  name: string;
  mac: string | null;
  state?: string;
  speed_mbps?: number;
  addresses: { address: string; family: "IPv4" | "IPv6"; netmask: string; cidr: string | null }[];
}

/** A service and its state. */
export interface ServiceItem {
  name: string;
  display_name?: string;
  state: string;
  start_mode?: string;
}

/** A process. */
export interface ProcessItem {
  pid: number;
  ppid?: number;
  name: string;
  user?: string;
  rss_bytes?: number;
  cpu_seconds?: number;
}

/** A logged-on user session. */
export interface SessionItem {
  user: string;
  terminal?: string;
  since?: string;
  from?: string;
}

/** The details document (fields as the engine stores them). */
export interface Details {
  summary: Record<string, unknown>;
  cpu?: Record<string, unknown>;
  memory?: MemoryItem[];
  storage?: StorageItem[];
  network?: NetworkItem[];
  software?: SoftwareItem[];
  services?: ServiceItem[];
  processes?: ProcessItem[];
  sessions?: SessionItem[];
}

/** What one OS-specific collector set provides. */
export interface PlatformCollectors {
  /** Gathers what the wanted collectors need in one go (Windows: one PowerShell run). */
  prepare?(wanted: readonly CollectorName[]): Promise<void>;
  os(): Promise<Record<string, unknown>>;
  hardware(): Promise<
    { cpu: Record<string, unknown>; memory: MemoryItem[]; system: Record<string, unknown> }
  >;
  storage(): Promise<StorageItem[]>;
  software(): Promise<SoftwareItem[]>;
  services(): Promise<ServiceItem[]>;
  processes(): Promise<ProcessItem[]>;
  sessions(): Promise<SessionItem[]>;
  /** CPU busy percent since the previous call (null on the first call where it needs two samples). */
  cpuPercent(): Promise<number | null>;
}
