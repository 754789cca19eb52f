/**
 * Windows security identifiers (MS-DTYP §2.4.2): Active Directory does not list a user's
 * primary group (usually _Domain Users_, RID 513) in `memberOf`, nor does the in-chain
 * member search find it; the user only carries `primaryGroupID` (the group's RID). The
 * group's SID is the user's `objectSid` with its last sub-authority (the user's RID)
 * replaced by that RID, and the group is found by an `(objectSid=…)` search on the
 * binary value.
 *
 * Binary layout: revision (1 byte, always 1), sub-authority count N (1 byte, ≤ 15),
 * identifier authority (6 bytes, big-endian), N sub-authorities (4 bytes each,
 * little-endian). String form: `S-1-<authority>-<sub1>-…-<subN>`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { EqualityFilter } from "ldapts";
import { escapeFilterBytes } from "./escape.ts";

/** A parsed SID. */
export interface Sid {
  revision: number;
  /** The 48-bit identifier authority (5 = NT Authority). */
  authority: number;
  subAuthorities: number[];
}

const MAX_SUB_AUTHORITIES = 15;
const MAX_AUTHORITY = 2 ** 48 - 1;
const MAX_U32 = 2 ** 32 - 1;

/** Parses a binary SID; null when the bytes are not one. */
export function parseSid(bytes: Uint8Array): Sid | null {
  if (bytes.length < 8) return null;
  const revision = bytes[0]!;
  const count = bytes[1]!;
  if (revision !== 1 || count > MAX_SUB_AUTHORITIES || bytes.length !== 8 + 4 * count) {
    return null;
  }
  let authority = 0;
  for (let i = 2; i < 8; i++) authority = authority * 256 + bytes[i]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const subAuthorities: number[] = [];
  for (let i = 0; i < count; i++) subAuthorities.push(view.getUint32(8 + 4 * i, true));
  return { revision, authority, subAuthorities };
}

/** The binary form of a SID. */
export function encodeSid(sid: Sid): Uint8Array {
  if (
    sid.revision !== 1 || sid.subAuthorities.length > MAX_SUB_AUTHORITIES ||
    !Number.isInteger(sid.authority) || sid.authority < 0 || sid.authority > MAX_AUTHORITY ||
    sid.subAuthorities.some((s) => !Number.isInteger(s) || s < 0 || s > MAX_U32)
  ) {
    throw new RangeError("not a valid SID");
  }
  const out = new Uint8Array(8 + 4 * sid.subAuthorities.length);
  out[0] = sid.revision;
  out[1] = sid.subAuthorities.length;
  let a = sid.authority;
  for (let i = 7; i >= 2; i--) {
    out[i] = a % 256;
    a = Math.floor(a / 256);
  }
  const view = new DataView(out.buffer);
  sid.subAuthorities.forEach((s, i) => view.setUint32(8 + 4 * i, s, true));
  return out;
}

/** `S-1-5-21-…`; authorities of 2^32 and above in hex, as MS-DTYP §2.4.2.1 says. */
export function sidToString(sid: Sid): string {
  const authority = sid.authority < 2 ** 32
    ? String(sid.authority)
    : "0x" + sid.authority.toString(16).toUpperCase().padStart(12, "0");
  return ["S", sid.revision, authority, ...sid.subAuthorities].join("-");
}

/** Parses `S-1-5-21-…`; null when it is not a SID string. */
export function parseSidString(text: string): Sid | null {
  const m = /^S-1-(\d{1,15}|0x[0-9A-Fa-f]{12})((?:-\d{1,10}){0,15})$/i.exec(text);
  if (!m) return null;
  const authority = m[1]!.toLowerCase().startsWith("0x") ? parseInt(m[1]!, 16) : Number(m[1]);
  const subAuthorities = m[2] ? m[2].slice(1).split("-").map(Number) : [];
  if (authority > MAX_AUTHORITY || subAuthorities.some((s) => s > MAX_U32)) return null;
  return { revision: 1, authority, subAuthorities };
}

/**
 * The SID of the primary group of the user whose `objectSid` is `userSid`: the domain
 * part of the user's SID (all but the last sub-authority) followed by `rid`. Null when
 * the user SID is not a domain account's (fewer than two sub-authorities) or the RID is
 * out of range.
 */
export function primaryGroupSid(userSid: Uint8Array, rid: number): Uint8Array | null {
  const sid = parseSid(userSid);
  if (!sid || sid.subAuthorities.length < 2) return null;
  if (!Number.isInteger(rid) || rid <= 0 || rid > MAX_U32) return null;
  return encodeSid({ ...sid, subAuthorities: [...sid.subAuthorities.slice(0, -1), rid] });
}

/**
 * The `(objectSid=<binary>)` filter for a SID, as the RFC 4515 string (every byte
 * `\XX`, for logs and tests) and as the ldapts filter object that is actually sent.
 * The object is needed: ldapts decodes `\XX` escapes of a string filter into characters
 * and re-encodes them as UTF-8, which corrupts every byte from 0x80 up; a Buffer value
 * goes on the wire unchanged.
 */
export function objectSidFilter(sid: Uint8Array): { text: string; filter: EqualityFilter } {
  return {
    text: `(objectSid=${escapeFilterBytes(sid)})`,
    filter: new EqualityFilter({ attribute: "objectSid", value: Buffer.from(sid) }),
  };
}
