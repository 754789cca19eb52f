/**
 * Group mappings: which role and which sites a directory user's groups grant. The
 * highest privilege among matching role mappings wins (Admin over User); sites are the
 * union of every matching site mapping; no matching role mapping means no access —
 * never a default role.
 *
 * @module
 */
import { normalizeDn } from "./escape.ts";
import type { Provider } from "./providers.ts";

/** What a set of groups maps to. */
export interface Mapped {
  /** null: no role mapping matched, so the user gets no access. */
  role: "Admin" | "User" | null;
  site_ids: number[];
  /** Mapped group DNs that matched (as configured). */
  matched_groups: string[];
}

const RANK = { User: 1, Admin: 2 } as const;

/** Maps a user's groups through a provider's mappings. */
export function mapGroups(
  p: Pick<Provider, "group_mappings" | "site_mappings">,
  groups: readonly string[],
): Mapped {
  const have = new Set(groups.map(normalizeDn));
  let role: Mapped["role"] = null;
  const matched = new Set<string>();
  for (const m of p.group_mappings) {
    if (!have.has(normalizeDn(m.group_dn))) continue;
    matched.add(m.group_dn);
    if (!role || RANK[m.role] > RANK[role]) role = m.role;
  }
  const sites = new Set<number>();
  for (const m of p.site_mappings) {
    const hits = m.group_dns.filter((g) => have.has(normalizeDn(g)));
    if (hits.length === 0) continue;
    for (const g of hits) matched.add(g);
    for (const s of m.site_ids) sites.add(s);
  }
  return {
    role,
    // Admins see every site; listing sites for them would only mislead.
    site_ids: role === "Admin" ? [] : [...sites].sort((a, b) => a - b),
    matched_groups: [...matched],
  };
}
