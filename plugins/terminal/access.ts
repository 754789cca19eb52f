/**
 * Who may act on a device live: an operator (not a read-only token) who may see the
 * device's site, on an active device whose agent is connected right now. Live actions
 * are never queued for later; an offline device answers 409 at once.
 *
 * @module
 */
import type { Principal } from "../../core/auth.ts";
import { conflict, forbidden, notFound } from "../../core/errors.ts";
import { type DeviceRecord, type InventoryService, isGuid } from "../inventory/mod.ts";
import type { AgentChannel } from "../realtime/mod.ts";

/** The device for a live action by `p`, or the error explaining why not. */
export async function liveDevice(
  inventory: InventoryService,
  channel: AgentChannel,
  p: Principal,
  guid: string,
): Promise<DeviceRecord> {
  if (p.kind !== "operator" && p.kind !== "system") {
    throw forbidden("operator_required", "this route is for operators");
  }
  if (p.readOnly) throw forbidden("read_only_token", "this API token is read-only");
  const g = guid.toUpperCase();
  if (!isGuid(g)) throw notFound(`no device ${guid}`);
  const device = await inventory.visibleDevice(p, g);
  if (device.status !== "active") {
    throw conflict("device_not_active", `this device is ${device.status}`);
  }
  if (!channel.connected(g) && !(await channel.connectedNow(g))) {
    throw conflict("agent_offline", "the device's agent is not connected");
  }
  return { ...device, guid: g };
}
