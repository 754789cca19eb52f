/**
 * The sites plugin: the sites every site-scoped owner points at. It sits below the vault,
 * the operators and the inventory so each of them declares its own foreign keys to
 * `sites`; it has no routes (the inventory serves `/api/sites` with its enrollment codes
 * and device counts) and keeps the one table and its read view, `site_view`.
 *
 * @module
 */
import { definePlugin } from "../../core/plugin.ts";
import { sitesKey } from "./api.ts";
import { SiteStore } from "./store.ts";

export * from "./api.ts";

export default definePlugin({
  name: "sites",
  description: "Sites: the foundation of site scope and of every site foreign key",
  migrations: new URL("./migrations/", import.meta.url),
  setup(ctx) {
    ctx.provide(sitesKey, new SiteStore(ctx.sql, ctx.clock));
  },
});
