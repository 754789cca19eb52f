/**
 * The example plugin's settings: environment variables with their zod schema, form,
 * description and default (`deno task start config` lists them).
 *
 * @module
 */
import { intEnv, setting } from "borealis/core/config.ts";

/** `ctx.settings` of the example plugin is typed from this declaration. */
export const settings = {
  maxNotes: setting(
    "BOREALIS_EXAMPLE_MAX_NOTES",
    intEnv(1000, 1, 1_000_000),
    "an integer from 1 to 1000000",
    "How many notes the board holds.",
    "1000",
  ),
  retentionDays: setting(
    "BOREALIS_EXAMPLE_RETENTION_DAYS",
    intEnv(30, 1, 3650),
    "days, an integer from 1 to 3650",
    "Notes older than this are pruned hourly.",
    "30",
  ),
};
