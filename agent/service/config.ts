/**
 * agent.json: the engine's URL, an optional hostname override, collectors turned off,
 * log rotation and intervals. Written by `install`, read at every start; unknown keys
 * are kept so an older agent does not drop a newer one's settings.
 *
 * @module
 */
import { type CollectorName, COLLECTORS } from "../collectors/types.ts";
import { writeJsonAtomic } from "./fs.ts";

/** The agent's configuration. */
export interface AgentConfig {
  /** Engine base URL (https in production). */
  server: string;
  hostname?: string;
  /** `{ "software": false }` turns that collector off. */
  collectors?: Partial<Record<CollectorName, boolean>>;
  /** Full details are sent at start and then this often (seconds; default 21600 = 6 h). */
  details_interval_seconds?: number;
  /** Rotate agent.log at this size (bytes; default 10 MB) and keep this many old files (5). */
  log_max_bytes?: number;
  log_keep?: number;
  /** How long a new version has to connect before the agent rolls back (seconds; 120). */
  update_trial_seconds?: number;
  [key: string]: unknown;
}

/** Reads agent.json; throws a clear error when it is missing or broken. */
export async function readConfig(path: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw new Error(`no configuration at ${path}: install the agent first`);
  }
  const cfg = JSON.parse(text) as AgentConfig;
  if (typeof cfg.server !== "string" || !/^https?:\/\//.test(cfg.server)) {
    throw new Error(`${path}: "server" must be the engine's http(s) URL`);
  }
  return cfg;
}

/** Writes agent.json (mode 0600: it names the engine the machine trusts). */
export async function writeConfig(path: string, cfg: AgentConfig): Promise<void> {
  await writeJsonAtomic(path, cfg);
}

/** Collectors turned off in the config or by `BOREALIS_AGENT_COLLECTORS_OFF=a,b`. */
export function disabledCollectors(cfg: AgentConfig): CollectorName[] {
  const off = new Set<string>(
    (Deno.env.get("BOREALIS_AGENT_COLLECTORS_OFF") ?? "").split(",").map((s) => s.trim()),
  );
  for (const [k, v] of Object.entries(cfg.collectors ?? {})) if (v === false) off.add(k);
  return COLLECTORS.filter((c) => off.has(c));
}
