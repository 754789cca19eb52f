/**
 * WebSocket upgrades for routes. Use {@link upgradeWebSocket} instead of calling
 * `Deno.upgradeWebSocket` directly: it also tells the listener that the connection has
 * become a socket (it leaves the pending pool and its descriptor is counted until the
 * socket closes; see core/listener.ts).
 *
 * @module
 */
import type { Context } from "hono";
import type { AppEnv } from "./http.ts";

/** Upgrades the request of `c`; returns the server-side socket and the 101 response. */
export function upgradeWebSocket(
  c: Context<AppEnv>,
  options?: Deno.UpgradeWebSocketOptions,
): { socket: WebSocket; response: Response } {
  const upgrade = Deno.upgradeWebSocket(c.req.raw, options);
  c.env?.connection?.upgraded(upgrade.socket);
  return upgrade;
}
