/**
 * SSRF guard for alert targets (webhook URLs, mail servers). A target must be http or
 * https without credentials in the URL, and every address its host resolves to must be a
 * public unicast address unless BOREALIS_ALERTS_ALLOW_PRIVATE_TARGETS is set. The check
 * runs when a channel is saved and again at every delivery, on the addresses the
 * connection then actually uses ({@link guardedLookup}), so a name that later resolves to
 * an internal address (DNS rebinding) is refused too.
 *
 * @module
 */
import { lookup as dnsLookup } from "node:dns";
import { BlockList, isIP } from "node:net";
import { badRequest } from "../../core/errors.ts";

/** Ranges that are not public unicast, with the name a refusal gives. */
const RANGES: Array<[string, number, "ipv4" | "ipv6", string]> = [
  ["0.0.0.0", 8, "ipv4", "unspecified"],
  ["10.0.0.0", 8, "ipv4", "private"],
  ["100.64.0.0", 10, "ipv4", "shared (carrier-grade NAT)"],
  ["127.0.0.0", 8, "ipv4", "loopback"],
  ["169.254.0.0", 16, "ipv4", "link-local"],
  ["172.16.0.0", 12, "ipv4", "private"],
  ["192.0.0.0", 24, "ipv4", "reserved"],
  ["192.0.2.0", 24, "ipv4", "documentation"],
  ["192.168.0.0", 16, "ipv4", "private"],
  ["198.18.0.0", 15, "ipv4", "benchmarking"],
  ["198.51.100.0", 24, "ipv4", "documentation"],
  ["203.0.113.0", 24, "ipv4", "documentation"],
  ["224.0.0.0", 4, "ipv4", "multicast"],
  ["240.0.0.0", 4, "ipv4", "reserved"],
  ["::", 128, "ipv6", "unspecified"],
  ["::1", 128, "ipv6", "loopback"],
  // Addresses that embed an IPv4 address a gateway would reach on our behalf.
  ["64:ff9b::", 96, "ipv6", "NAT64"],
  ["64:ff9b:1::", 48, "ipv6", "NAT64"],
  ["2001::", 32, "ipv6", "Teredo"],
  ["2002::", 16, "ipv6", "6to4"],
  ["2001:db8::", 32, "ipv6", "documentation"],
  ["fc00::", 7, "ipv6", "unique-local (private)"],
  ["fe80::", 10, "ipv6", "link-local"],
  ["fec0::", 10, "ipv6", "site-local"],
  ["ff00::", 8, "ipv6", "multicast"],
];

const lists = RANGES.map(([addr, bits, family, name]) => {
  const list = new BlockList();
  list.addSubnet(addr, bits, family);
  return { list, name };
});

/**
 * Why an address may not be a target (e.g. "loopback"), or null when it is public.
 * IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
 */
export function addressProblem(address: string): string | null {
  const v = isIP(address);
  if (!v) return "not an IP address";
  const family = v === 4 ? "ipv4" : "ipv6";
  for (const { list, name } of lists) {
    if (list.check(address, family)) return name;
  }
  return null;
}

/** A target the SSRF rules refuse. */
export class TargetRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TargetRefused";
  }
}

/** Resolves a host name to every address (the system resolver, as connections use). */
export type Resolver = (host: string) => Promise<Array<{ address: string; family: number }>>;

/** The system resolver. */
export const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) =>
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => {
      if (err) reject(err);
      else resolve(addresses);
    })
  );

/** Strips IPv6 brackets from a URL host. */
export const bareHost = (host: string): string => host.replace(/^\[(.*)\]$/, "$1");

/**
 * Resolves `host` and checks every address. Refuses the whole name when any address is
 * not allowed: a name mixing public and internal addresses is an attack, not a mistake.
 */
export async function checkedAddresses(
  host: string,
  allowPrivate: boolean,
  resolve: Resolver = systemResolver,
): Promise<Array<{ address: string; family: number }>> {
  const h = bareHost(host);
  const literal = isIP(h);
  const addresses = literal ? [{ address: h, family: literal }] : await resolve(h);
  if (!addresses.length) throw new TargetRefused(`${h} does not resolve`);
  if (!allowPrivate) {
    for (const a of addresses) {
      const problem = addressProblem(a.address);
      if (problem) {
        throw new TargetRefused(
          `${h} ${literal ? "is" : `resolves to ${a.address},`} a ${problem} address; ` +
            "set BOREALIS_ALERTS_ALLOW_PRIVATE_TARGETS=true to allow internal targets",
        );
      }
    }
  }
  return addresses;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | Array<{ address: string; family: number }>,
  family?: number,
) => void;

/**
 * A `lookup` for node:http(s) and node:net that resolves and checks in one step, so the
 * connection goes to exactly the addresses that were checked.
 */
export function guardedLookup(allowPrivate: boolean, resolve: Resolver = systemResolver) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    checkedAddresses(hostname, allowPrivate, resolve).then(
      (addresses) => {
        if (options?.all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (err) => callback(err as NodeJS.ErrnoException, ""),
    );
  };
}

/** Checks a webhook URL's form: http(s), a host, no credentials. Returns the URL. */
export function webhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badRequest("invalid_url", "the webhook URL is not a valid URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw badRequest("invalid_url", "webhook URLs must be http or https");
  }
  if (url.username || url.password) {
    throw badRequest("invalid_url", "credentials in a webhook URL are not allowed");
  }
  if (!url.hostname) throw badRequest("invalid_url", "the webhook URL has no host");
  return url;
}

/** Save-time check of a host: refuses internal addresses with a 400 naming the reason. */
export async function assertTarget(
  host: string,
  allowPrivate: boolean,
  resolve: Resolver = systemResolver,
): Promise<void> {
  try {
    await checkedAddresses(host, allowPrivate, resolve);
  } catch (err) {
    if (err instanceof TargetRefused) throw badRequest("target_refused", err.message);
    throw badRequest(
      "target_unresolvable",
      `${bareHost(host)} does not resolve (${(err as Error).message})`,
    );
  }
}
