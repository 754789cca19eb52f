/**
 * The terminal plugin's BOREALIS_TERMINAL_* settings: limits, timeouts, flow-control
 * windows, transfer sizes and transcript retention. Per-site policy (terminals on or
 * off, a reason required, recording, file transfer) is data, set by admins through
 * `/api/terminal/site-policies/{site_id}`.
 *
 * @module
 */
import { intEnv, setting } from "../../core/config.ts";

/** Settings of the terminal plugin. */
export const terminalSettings = {
  maxPerDevice: setting(
    "BOREALIS_TERMINAL_MAX_PER_DEVICE",
    intEnv(3, 1, 100),
    "an integer from 1 to 100",
    "Open terminal sessions one device may have at once (across the cluster).",
    "3",
  ),
  maxPerOperator: setting(
    "BOREALIS_TERMINAL_MAX_PER_OPERATOR",
    intEnv(5, 1, 100),
    "an integer from 1 to 100",
    "Open terminal sessions one operator may have at once (across the cluster).",
    "5",
  ),
  idleSeconds: setting(
    "BOREALIS_TERMINAL_IDLE_SECONDS",
    intEnv(900, 30, 86_400),
    "seconds, 30 to 86400",
    "A session whose operator sent no keystroke (or resize) for this long is ended; output " +
      "alone does not keep it open.",
    "900",
  ),
  resumeSeconds: setting(
    "BOREALIS_TERMINAL_RESUME_SECONDS",
    intEnv(60, 5, 3600),
    "seconds, 5 to 3600",
    "How long a session waits for its operator's or its agent's socket to come back after a " +
      "network blip before it is ended.",
    "60",
  ),
  openTimeoutSeconds: setting(
    "BOREALIS_TERMINAL_OPEN_TIMEOUT_SECONDS",
    intEnv(30, 5, 600),
    "seconds, 5 to 600",
    "How long an opening session waits for the agent to start the shell.",
    "30",
  ),
  windowBytes: setting(
    "BOREALIS_TERMINAL_WINDOW_BYTES",
    intEnv(262_144, 16_384, 16_777_216),
    "bytes, 16384 to 16777216",
    "Output a session may have in flight before the operator's console confirms it (flow " +
      "control: the agent stops reading the terminal until then).",
    "262144",
  ),
  fileMaxBytes: setting(
    "BOREALIS_TERMINAL_FILE_MAX_BYTES",
    intEnv(536_870_912, 1024, 17_179_869_184),
    "bytes, 1024 to 17179869184",
    "Largest file downloaded from or uploaded to a device.",
    "536870912",
  ),
  fileWindowBytes: setting(
    "BOREALIS_TERMINAL_FILE_WINDOW_BYTES",
    intEnv(1_048_576, 65_536, 67_108_864),
    "bytes, 65536 to 67108864",
    "File bytes in flight between the engine and the agent before the receiver confirms them.",
    "1048576",
  ),
  actionTimeoutSeconds: setting(
    "BOREALIS_TERMINAL_ACTION_TIMEOUT_SECONDS",
    intEnv(30, 5, 600),
    "seconds, 5 to 600",
    "How long a device action request waits for the agent's answer before answering 202.",
    "30",
  ),
  transcriptDays: setting(
    "BOREALIS_TERMINAL_TRANSCRIPT_DAYS",
    intEnv(30, 1, 3650),
    "days, 1 to 3650",
    "How long recorded transcripts are kept (session records stay in the history).",
    "30",
  ),
};
