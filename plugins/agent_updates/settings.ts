/**
 * The agent_updates plugin's settings.
 *
 * @module
 */
import { intEnv, setting } from "../../core/config.ts";

/** BOREALIS_AGENT_UPDATE_* and BOREALIS_INSTALL_TOKEN_* variables. */
export const agentUpdatesSettings = {
  checkSeconds: setting(
    "BOREALIS_AGENT_UPDATE_CHECK_SECONDS",
    intEnv(3600, 10, 86_400),
    "seconds, 10 to 86400",
    "How often agents ask whether to update (they also ask at start and when told).",
    "3600",
  ),
  updateTimeoutMinutes: setting(
    "BOREALIS_AGENT_UPDATE_TIMEOUT_MINUTES",
    intEnv(30, 1, 1440),
    "minutes, 1 to 1440",
    "An update not confirmed within this long is marked failed and frees its slot.",
    "30",
  ),
  autoMaxConcurrent: setting(
    "BOREALIS_AGENT_UPDATE_MAX_CONCURRENT",
    intEnv(50, 1, 100_000),
    "an integer from 1 to 100000",
    "Devices updating at once through automatic (channel) updates.",
    "50",
  ),
  tokenDefaultHours: setting(
    "BOREALIS_INSTALL_TOKEN_HOURS",
    intEnv(24, 1, 720),
    "hours, 1 to 720",
    "Default lifetime of an install token.",
    "24",
  ),
  scanSeconds: setting(
    "BOREALIS_AGENT_PACKAGE_SCAN_SECONDS",
    intEnv(60, 5, 86_400),
    "seconds, 5 to 86400",
    "How often the engine looks for packages built by `deno task agent:package`.",
    "60",
  ),
};
