/**
 * The caller's address behind reverse proxies. By default the engine trusts no proxy and
 * uses the TCP peer. With `BOREALIS_TRUSTED_PROXIES` (addresses and CIDR ranges), a
 * request whose peer is one of them has its `X-Forwarded-For` walked from the right,
 * skipping trusted hops: the first address that is not a trusted proxy is the client.
 * Everything to the left of it was written by the client and is ignored, so a client
 * cannot choose its own address (and with it escape per-address throttling).
 *
 * @module
 */
import { BlockList, isIP } from "node:net";
import type { Context } from "hono";
import type { AppEnv } from "./http.ts";

/** Matches addresses against the trusted proxies. */
export interface ProxyMatcher {
  trusts(address: string): boolean;
}

function family(address: string): "ipv4" | "ipv6" | null {
  const v = isIP(address);
  return v === 4 ? "ipv4" : v === 6 ? "ipv6" : null;
}

/**
 * Parses `10.0.0.0/8, 127.0.0.1, fd00::/8`. Returns the matcher, or the list of entries
 * that are not an address or a range (for the configuration error).
 */
export function parseTrustedProxies(entries: readonly string[]): ProxyMatcher | string[] {
  const list = new BlockList();
  const bad: string[] = [];
  for (const raw of entries) {
    const [addr = "", prefix, extra] = raw.split("/");
    const fam = family(addr);
    if (!fam || extra !== undefined) {
      bad.push(raw);
      continue;
    }
    if (prefix === undefined) {
      list.addAddress(addr, fam);
      continue;
    }
    const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
    if (!(bits >= 0 && bits <= (fam === "ipv4" ? 32 : 128))) {
      bad.push(raw);
      continue;
    }
    list.addSubnet(addr, bits, fam);
  }
  if (bad.length) return bad;
  return {
    trusts(address) {
      const fam = family(address);
      return fam !== null && list.check(address, fam);
    },
  };
}

/** One `X-Forwarded-For` element without an optional port or IPv6 brackets. */
function hop(raw: string): string {
  const s = raw.trim();
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracket) return bracket[1]!;
  const v4port = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(s);
  return v4port ? v4port[1]! : s;
}

/**
 * The client address for a request from `peer` carrying `forwardedFor` (the raw
 * `X-Forwarded-For` value, all of its header lines joined by commas).
 */
export function resolveClientIp(
  peer: string,
  forwardedFor: string | null,
  proxies: ProxyMatcher | undefined,
): string {
  if (!proxies || !forwardedFor || !proxies.trusts(peer)) return peer;
  const hops = forwardedFor.split(",").map(hop);
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const h = hops[i]!;
    // A malformed hop ends the walk: what the trusted proxies vouched for stops here.
    if (!family(h)) return client;
    client = h;
    if (!proxies.trusts(h)) return client;
  }
  return client;
}

/**
 * True when the request comes from this machine. A loopback peer that forwards for
 * someone else (a reverse proxy on the same host that is not in
 * `BOREALIS_TRUSTED_PROXIES`) does not count: otherwise a local nginx would make every
 * internet client look local to loopback-only routes.
 */
export function isLoopbackRequest(c: Context<AppEnv>): boolean {
  const ip = c.env?.clientIp ?? c.env?.remoteAddr?.hostname ?? null;
  const local = ip === "::1" || (ip?.startsWith("127.") ?? false) ||
    (ip?.startsWith("::ffff:127.") ?? false);
  if (!local) return false;
  return !c.req.header("x-forwarded-for") && !c.req.header("forwarded") &&
    !c.req.header("x-real-ip");
}
