/**
 * The inventory plugin: sites (enrollment codes, auto-approval windows), devices,
 * containment and site scope. Other plugins reach it through {@link inventoryKey}.
 *
 * @module
 */
import { intEnv, setting } from "../../core/config.ts";
import { definePlugin, serviceKey } from "../../core/plugin.ts";
import { vaultKey } from "../aegis/mod.ts";
import { FilterService } from "./filters.ts";
import { registerDeviceRoutes } from "./routes_devices.ts";
import { registerFilterRoutes, registerViewRoutes } from "./routes_filters.ts";
import { registerSiteRoutes } from "./routes_sites.ts";
import { PresenceService } from "./presence.ts";
import { InventoryService } from "./service.ts";

export { fmtGuid, InventoryService, isGuid } from "./service.ts";
export type { RowFields } from "./service.ts";
export type { DeviceQuery, DeviceSortField, DeviceTextField } from "./service.ts";
export { PRESENCE_STATES, presenceOf, PresenceService } from "./presence.ts";
export type { LiveSource, Presence, PresenceThresholds } from "./presence.ts";
export { FilterDefinition, FilterService } from "./filters.ts";
export type { FilterDef, FilterRecord, FilterUsageProvider, ResolvedDevice } from "./filters.ts";
export * from "./types.ts";
export {
  digestsEqual,
  generateEnrollmentCode,
  hashEnrollmentCode,
  maskEnrollmentCode,
  normalizeEnrollmentCode,
  sha256Hex,
} from "./codes.ts";

/** Service key: `ctx.use(inventoryKey)` in plugins that require "inventory". */
export const inventoryKey = serviceKey<InventoryService>("inventory.service");

/**
 * Service key of the filter resolver: `resolveById(id, principal)` turns a filter into
 * device GUIDs with one query; `registerUsage` lets jobs and watchdogs report use.
 */
export const filtersKey = serviceKey<FilterService>("inventory.filters");

export default definePlugin({
  name: "inventory",
  description: "Sites, devices, containment and site scope",
  requires: ["operators"],
  migrations: new URL("./migrations/", import.meta.url),
  settings: {
    offlineSeconds: setting(
      "BOREALIS_AGENT_OFFLINE_SECONDS",
      intEnv(0, 10, 86_400),
      "seconds, 10 to 86400",
      "A device not heard from for this long is offline (an open agent socket counts as heard " +
        "from now). The one threshold of the device list, filters, watchdogs, quick runs and " +
        "the operator socket.",
      "120",
    ),
    overdueSeconds: setting(
      "BOREALIS_AGENT_OVERDUE_SECONDS",
      intEnv(1800, 60, 30 * 86_400),
      "seconds, 60 to 2592000",
      "A device not heard from for this long is overdue (the same surfaces, and the sites' " +
        "overdue counts).",
      "1800",
    ),
    legacyOnlineSeconds: setting(
      "BOREALIS_DEVICE_ONLINE_SECONDS",
      intEnv(0, 10, 86_400),
      "seconds, 10 to 86400",
      "Former name of BOREALIS_AGENT_OFFLINE_SECONDS, read only when that is unset.",
      "(unset)",
    ),
    maxAutoApprovalMinutes: setting(
      "BOREALIS_AUTO_APPROVAL_MAX_MINUTES",
      intEnv(1440, 1, 10_080),
      "minutes, an integer from 1 to 10080",
      "Longest site auto-approval window an admin may open.",
      "1440",
    ),
  },
  setup(ctx) {
    const s = ctx.settings;
    if (s.legacyOnlineSeconds && !s.offlineSeconds) {
      ctx.log.warn(
        "BOREALIS_DEVICE_ONLINE_SECONDS is the former name of BOREALIS_AGENT_OFFLINE_SECONDS; " +
          "rename it (it is read only while the new name is unset)",
      );
    }
    const offlineMs = (s.offlineSeconds || s.legacyOnlineSeconds || 120) * 1000;
    const presence = new PresenceService(ctx.clock, {
      offlineMs,
      // Overdue comes after offline, whatever the two settings say.
      overdueMs: Math.max(offlineMs, s.overdueSeconds * 1000),
    });
    const service = new InventoryService({
      sql: ctx.sql,
      clock: ctx.clock,
      vault: ctx.use(vaultKey),
      events: ctx.events,
      presence,
      maxAutoApprovalMinutes: ctx.settings.maxAutoApprovalMinutes,
    });
    ctx.provide(inventoryKey, service);
    // Codes are found by their hash, so a vault force-reset (the default: NULL) only stops
    // admins from displaying the current code until they rotate it; rotation re-seals it.
    ctx.use(vaultKey).registerColumn({
      table: "sites",
      column: "enrollment_code_sealed",
      idColumn: "id",
    });
    const filters = new FilterService(ctx.sql, ctx.clock, presence);
    ctx.provide(filtersKey, filters);
    registerSiteRoutes(ctx.http, service, ctx.audit, ctx.core.publicBaseUrl ?? null);
    // Filters before devices: /api/device_filters/metadata must not reach a {id} route.
    registerFilterRoutes(ctx.http, filters, ctx.audit);
    registerViewRoutes(ctx.http, ctx.sql, ctx.clock, ctx.audit);
    registerDeviceRoutes(ctx.http, service, ctx.audit, filters);
  },
});
