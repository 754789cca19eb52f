/**
 * Escaping for everything the directory plugin puts on the wire: LDAP filter values
 * (RFC 4515 §3), DN attribute values (RFC 4514 §2.4), the configured user-search filter
 * template, Active Directory's matching-rule-in-chain group filter, and a DN
 * normal form used to compare group DNs from mappings with those a server returns.
 *
 * @module
 */

/** Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: transitive membership in one search. */
export const AD_IN_CHAIN_OID = "1.2.840.113556.1.4.1941";

const FILTER_SPECIALS: Record<string, string> = {
  "\\": "\\5c",
  "*": "\\2a",
  "(": "\\28",
  ")": "\\29",
  "\u0000": "\\00",
};

/**
 * Escapes a value for use inside an LDAP filter assertion (RFC 4515 §3): `\`, `*`,
 * `(`, `)` and NUL become `\XX`. Everything else, UTF-8 included, is left as is, which
 * RFC 4515 allows; the result can never close a filter item or add a wildcard.
 */
export function escapeFilterValue(value: string): string {
  // deno-lint-ignore no-control-regex -- NUL must be escaped
  return value.replace(/[\\*()\u0000]/g, (ch) => FILTER_SPECIALS[ch]!);
}

/**
 * Escapes a binary value (such as an `objectSid`) for a filter: RFC 4515 §3 lets any
 * octet be written as `\XX`, and octets that are not valid UTF-8 must be, so every one
 * is.
 */
export function escapeFilterBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => "\\" + b.toString(16).padStart(2, "0")).join("");
}

/**
 * Escapes an attribute value for use in a DN (RFC 4514 §2.4): `"` `+` `,` `;` `<` `>`
 * `\` get a backslash, NUL becomes `\00`, and a leading space or `#` and a trailing
 * space are escaped.
 */
export function escapeDnValue(value: string): string {
  // deno-lint-ignore no-control-regex -- NUL must be escaped
  let out = value.replace(/["+,;<>\\]/g, (ch) => "\\" + ch).replace(/\u0000/g, "\\00");
  if (value.startsWith(" ") || value.startsWith("#")) out = "\\" + out;
  // A one-character " " was escaped as leading already.
  if (value.length > 1 && value.endsWith(" ")) out = out.slice(0, -1) + "\\ ";
  return out;
}

/** The placeholder in user search filters and DN templates. */
export const USERNAME_PLACEHOLDER = "{username}";

/**
 * Fills a filter template: every `{username}` becomes the RFC 4515-escaped value. The
 * template itself is admin configuration and is validated when saved.
 */
export function renderFilter(template: string, username: string): string {
  return template.split(USERNAME_PLACEHOLDER).join(escapeFilterValue(username));
}

/**
 * The AD filter that finds every group `userDn` belongs to, directly or through any
 * depth of nesting, evaluated by the domain controller:
 * `(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=<escaped DN>))`.
 */
export function adNestedGroupsFilter(userDn: string, memberAttribute = "member"): string {
  return `(&(objectClass=group)(${memberAttribute}:${AD_IN_CHAIN_OID}:=${
    escapeFilterValue(userDn)
  }))`;
}

/** `(|(member=dn1)(member=dn2)…)`: groups having any of `dns` as a direct member. */
export function directMembersFilter(dns: readonly string[], memberAttribute = "member"): string {
  const items = dns.map((dn) => `(${memberAttribute}=${escapeFilterValue(dn)})`);
  return items.length === 1 ? items[0]! : `(|${items.join("")})`;
}

/** Splits a DN into `[attribute, raw value, separator before]` triples (escapes honoured). */
function splitDn(dn: string): Array<[string, string, string]> | null {
  const parts: Array<[string, string, string]> = [];
  let sep = "";
  let attr = "";
  let value = "";
  let inValue = false;
  for (let i = 0; i < dn.length; i++) {
    const ch = dn[i]!;
    if (ch === "\\" && inValue) {
      const hex = dn.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        // A run of hex escapes is UTF-8; collect the bytes and decode them together.
        const bytes: number[] = [];
        while (dn[i] === "\\" && /^[0-9a-fA-F]{2}$/.test(dn.slice(i + 1, i + 3))) {
          bytes.push(parseInt(dn.slice(i + 1, i + 3), 16));
          i += 3;
        }
        i--;
        value += new TextDecoder().decode(new Uint8Array(bytes));
      } else if (i + 1 < dn.length) {
        value += dn[++i];
      } else {
        return null;
      }
    } else if (ch === "=" && !inValue) {
      inValue = true;
    } else if ((ch === "," || ch === "+" || ch === ";") && inValue) {
      parts.push([attr.trim(), value.trim(), sep]);
      sep = ch === "+" ? "+" : ",";
      attr = "";
      value = "";
      inValue = false;
    } else if (inValue) {
      value += ch;
    } else {
      attr += ch;
    }
  }
  if (!inValue) return dn.trim() === "" ? [] : null;
  parts.push([attr.trim(), value.trim(), sep]);
  return parts;
}

/**
 * A comparable form of a DN: attribute names and values lower-cased, spaces around
 * separators dropped, escapes decoded and re-applied canonically. Equal for
 * `CN=Ops, OU=Groups,DC=example,DC=org` and `cn=ops,ou=groups,dc=example,dc=org`, and for
 * `cn=a\2Cb` and `cn=a\,b`. Unparseable input is returned lower-cased and trimmed.
 */
export function normalizeDn(dn: string): string {
  const parts = splitDn(dn);
  if (!parts) return dn.trim().toLowerCase();
  return parts.map(([a, v, sep]) => `${sep}${a.toLowerCase()}=${escapeDnValue(v.toLowerCase())}`)
    .join("");
}

/**
 * The domain root of a DN: its trailing `dc=` RDNs (`DC=corp,DC=example,DC=com` for
 * `CN=Ann,OU=Staff,DC=corp,DC=example,DC=com`), values re-escaped per RFC 4514; null
 * when the DN does not end in `dc=` components.
 */
export function domainRoot(dn: string): string | null {
  const parts = splitDn(dn);
  if (!parts) return null;
  let start = parts.length;
  // A multi-valued RDN (`+`) ends the domain part: its pieces belong together.
  while (
    start > 0 && parts[start - 1]![0].toLowerCase() === "dc" &&
    (start === parts.length || parts[start]![2] !== "+") && parts[start - 1]![2] !== "+"
  ) start--;
  if (start === parts.length) return null;
  return parts.slice(start).map(([a, v]) => `${a}=${escapeDnValue(v)}`).join(",");
}

/** True when `dn` parses as a non-empty DN (`attr=value` pairs). */
export function isDn(dn: string): boolean {
  const parts = splitDn(dn);
  return !!parts && parts.length > 0 &&
    parts.every(([a]) => /^[A-Za-z][A-Za-z0-9-]*$|^\d+(\.\d+)*$/.test(a));
}
