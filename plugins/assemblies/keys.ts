/**
 * The plugin's service key and event, in their own module so the CLI command and the
 * plugin can both import them without a cycle. Re-exported from mod.ts.
 *
 * @module
 */
import { eventKey } from "../../core/events.ts";
import { serviceKey } from "../../core/plugin.ts";
import type { AssembliesService } from "./service.ts";

/** The catalog service (`ctx.use(assembliesService)` in a plugin that requires assemblies). */
export const assembliesService = serviceKey<AssembliesService>("assemblies.catalog");

/** Published after a flush or sync committed: other instances reload these GUIDs. */
export const assembliesChanged = eventKey<{ changed: string[]; deleted: string[] }>(
  "assemblies.changed",
);
