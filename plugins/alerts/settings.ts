/**
 * The alerts plugin's BOREALIS_ALERTS_* settings.
 *
 * @module
 */
import { boolEnv, intEnv, setting } from "../../core/config.ts";

/** Settings of the alerts plugin. */
export const alertsSettings = {
  allowPrivateTargets: setting(
    "BOREALIS_ALERTS_ALLOW_PRIVATE_TARGETS",
    boolEnv(false),
    "true or false",
    "Allow webhook and mail servers on loopback, private, link-local and other non-public " +
      "addresses (checked when saved and again at every delivery).",
    "false",
  ),
  workerMs: setting(
    "BOREALIS_ALERTS_WORKER_MS",
    intEnv(1000, 100, 60_000),
    "milliseconds, 100 to 60000",
    "How often the delivery worker looks for new incident events and due messages.",
    "1000",
  ),
  timeoutMs: setting(
    "BOREALIS_ALERTS_TIMEOUT_MS",
    intEnv(10_000, 100, 120_000),
    "milliseconds, 100 to 120000",
    "Longest one delivery attempt may take (connect, send, answer) before it counts as failed.",
    "10000",
  ),
  maxAttempts: setting(
    "BOREALIS_ALERTS_MAX_ATTEMPTS",
    intEnv(8, 1, 50),
    "an integer from 1 to 50",
    "Attempts before a message is dead-lettered.",
    "8",
  ),
  retryBaseSeconds: setting(
    "BOREALIS_ALERTS_RETRY_BASE_SECONDS",
    intEnv(30, 1, 3600),
    "seconds, 1 to 3600",
    "First retry delay; each further retry doubles it (with jitter), up to one hour.",
    "30",
  ),
  concurrency: setting(
    "BOREALIS_ALERTS_CONCURRENCY",
    intEnv(16, 1, 256),
    "an integer from 1 to 256",
    "Messages in flight at once on the delivering instance (at most 4 per channel).",
    "16",
  ),
  retentionDays: setting(
    "BOREALIS_ALERTS_RETENTION_DAYS",
    intEnv(30, 1, 3650),
    "days, 1 to 3650",
    "How long the outbox and the delivery log keep finished entries.",
    "30",
  ),
};
