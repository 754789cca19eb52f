/**
 * Pieces of the device page: labelled value lists, cards, storage bars and the output
 * viewer of a job.
 *
 * @module
 */
import Box from "@mui/material/Box";
import LinearProgress from "@mui/material/LinearProgress";
import Paper from "@mui/material/Paper";
import Stack from "@mui/material/Stack";
import Typography from "@mui/material/Typography";
import type { ReactNode } from "react";
import { bytes, list, num, text } from "../lib/format.ts";

/** A titled card. */
export function Card(
  { title, children, action }: { title: string; children: ReactNode; action?: ReactNode },
) {
  return (
    <Paper variant="outlined" sx={{ p: 2, minWidth: 0 }} component="section" aria-label={title}>
      <Stack direction="row" sx={{ alignItems: "center", mb: 1 }}>
        <Typography variant="subtitle1" component="h2" sx={{ fontWeight: 600, flexGrow: 1 }}>
          {title}
        </Typography>
        {action}
      </Stack>
      {children}
    </Paper>
  );
}

/** Label/value pairs as a description list. */
export function Facts({ items }: { items: Array<[string, ReactNode]> }) {
  return (
    <Box
      component="dl"
      sx={{
        display: "grid",
        gridTemplateColumns: "max-content 1fr",
        columnGap: 2,
        rowGap: 0.75,
        m: 0,
      }}
    >
      {items.map(([label, value]) => (
        <Box key={label} sx={{ display: "contents" }}>
          <Typography component="dt" variant="body2" color="text.secondary">{label}</Typography>
          <Typography component="dd" variant="body2" sx={{ m: 0, overflowWrap: "anywhere" }}>
            {value === null || value === undefined || value === "" ? "—" : value}
          </Typography>
        </Box>
      ))}
    </Box>
  );
}

/** One volume of the storage list: name, used of total, a bar (warning above 90 %). */
export function storageRows(storage: unknown) {
  return list(storage)
    .map((v) => {
      const name = text(v.drive) ?? text(v.mount) ?? text(v.mountpoint) ?? text(v.name) ??
        text(v.device) ?? "Volume";
      const total = num(v.total) ?? num(v.total_bytes) ?? num(v.size) ?? num(v.capacity);
      const free = num(v.free) ?? num(v.free_bytes) ?? num(v.available);
      const used = num(v.used) ?? num(v.used_bytes) ??
        (total !== null && free !== null ? total - free : null);
      let percent = num(v.percent) ?? num(v.used_percent) ?? num(v.usage);
      if (percent === null && total && used !== null) percent = (used / total) * 100;
      const type = (text(v.type) ?? text(v.drive_type) ?? "").toLowerCase();
      return { name, total, used, percent, cdrom: /cd|dvd|rom/.test(type) };
    })
    .filter((v) => !v.cdrom);
}

/** Storage usage bars. */
export function StorageBars({ storage }: { storage: unknown }) {
  const rows = storageRows(storage);
  if (!rows.length) {
    return <Typography variant="body2" color="text.secondary">Not reported yet.</Typography>;
  }
  return (
    <Stack spacing={1.5}>
      {rows.map((v, i) => {
        const pct = v.percent === null ? null : Math.max(0, Math.min(100, v.percent));
        const warn = pct !== null && pct >= 90;
        return (
          <Box key={`${v.name}-${i}`}>
            <Stack sx={{ justifyContent: "space-between" }} direction="row">
              <Typography variant="body2">{v.name}</Typography>
              <Typography variant="body2" color={warn ? "error" : "text.secondary"}>
                {v.used !== null && v.total !== null
                  ? `${bytes(v.used)} of ${bytes(v.total)}`
                  : "size unknown"}
                {pct !== null && ` · ${Math.round(pct)} %`}
                {warn && " · almost full"}
              </Typography>
            </Stack>
            <LinearProgress
              variant="determinate"
              value={pct ?? 0}
              color={warn ? "error" : "primary"}
              aria-label={`${v.name} ${
                pct === null ? "usage unknown" : `${Math.round(pct)} percent used`
              }`}
              sx={{ height: 8, borderRadius: 4, mt: 0.5 }}
            />
          </Box>
        );
      })}
    </Stack>
  );
}

/** A scrolling, monospaced output pane. */
export function OutputPane(
  { label, value, tone }: { label: string; value: string | null; tone?: "error" },
) {
  return (
    <Box sx={{ minWidth: 0, flex: 1, display: "flex", flexDirection: "column" }}>
      <Typography variant="subtitle2" component="h3" sx={{ mb: 0.5 }}>{label}</Typography>
      <Box
        component="pre"
        tabIndex={0}
        aria-label={label}
        sx={{
          m: 0,
          p: 1.5,
          flex: 1,
          minHeight: 140,
          maxHeight: 320,
          overflow: "auto",
          bgcolor: "action.hover",
          color: tone === "error" && value ? "error.main" : "text.primary",
          borderRadius: 1,
          fontSize: 12.5,
          whiteSpace: "pre-wrap",
          overflowWrap: "anywhere",
        }}
      >
        {value || (
          <Typography component="span" variant="body2" color="text.secondary">(empty)</Typography>
        )}
      </Box>
    </Box>
  );
}
