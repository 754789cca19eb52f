/**
 * Queries several pages share (sites, filters, credentials, users' own settings), so
 * pickers on one page and the list on another read one cache entry.
 *
 * @module
 */
import { useQuery } from "@tanstack/react-query";
import { api } from "./client.ts";
import type { Credential, DeviceFilter, IncidentCounts, SitesReply } from "./types.ts";

/** `GET /api/sites`. */
export function useSites() {
  return useQuery({
    queryKey: ["sites"],
    queryFn: ({ signal }) => api<SitesReply>("/api/sites", { signal }),
  });
}

/** `GET /api/device_filters` (not archived). */
export function useFilters() {
  return useQuery({
    queryKey: ["device_filters"],
    queryFn: ({ signal }) => api<{ filters: DeviceFilter[] }>("/api/device_filters", { signal }),
  });
}

/** `GET /api/credentials` (flags only). */
export function useCredentials() {
  return useQuery({
    queryKey: ["credentials"],
    queryFn: ({ signal }) => api<{ credentials: Credential[] }>("/api/credentials", { signal }),
  });
}

/** Open/suppressed/resolved incident counts (the navigation's badge and the alerts page). */
export function useIncidentCounts() {
  return useQuery({
    queryKey: ["incident-counts"],
    queryFn: ({ signal }) =>
      api<{ counts: IncidentCounts }>("/api/watchdogs/incidents?state=open&limit=1", { signal }),
    refetchInterval: 120_000,
    select: (r) => r.counts,
  });
}
