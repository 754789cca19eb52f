/**
 * The agent_updates plugin's public contract: its service key and the shapes other
 * plugins (and the console) see.
 *
 * @module
 */
import { serviceKey } from "../../core/plugin.ts";
import type { AgentUpdatesService } from "./service.ts";

/** Service key: `ctx.use(agentUpdatesKey)`. */
export const agentUpdatesKey = serviceKey<AgentUpdatesService>("agent_updates.service");

/** Release channels a site or device follows. */
export type Channel = "stable" | "beta" | "pinned";

/** A device's update state as the device list shows it. */
export type UpdateState = "idle" | "queued" | "updating" | "succeeded" | "failed" | "rolled_back";

/** The install commands of a site (one per OS family). */
export interface InstallCommands {
  linux: string;
  macos: string;
  windows: string;
  token_id: string;
  expires_at: string;
  version: string;
}

/** What the device list shows about a device's agent. */
export interface DeviceAgentInfo {
  version: string | null;
  platform: string | null;
  channel: Channel;
  desired_version: string | null;
  update_state: UpdateState;
  target_version: string | null;
  last_error: string | null;
  last_check_at: string | null;
}
