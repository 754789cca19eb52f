import assert from "node:assert/strict";
import { QuietHours, quietUntil } from "./quiet_hours.ts";

const at = (iso: string) => Date.parse(iso);
const q = (o: Record<string, unknown>) => QuietHours.parse(o);

Deno.test("quiet hours: an overnight period in a time zone, end exclusive", () => {
  const night = q({ start: "22:00", end: "07:00", time_zone: "Europe/Berlin" });
  // Berlin is UTC+1 in January.
  assert.equal(quietUntil(night, at("2026-01-05T20:59:00Z")), null, "21:59 local");
  assert.equal(quietUntil(night, at("2026-01-05T21:00:00Z")), at("2026-01-06T06:00:00Z"));
  assert.equal(quietUntil(night, at("2026-01-06T02:30:00Z")), at("2026-01-06T06:00:00Z"));
  assert.equal(quietUntil(night, at("2026-01-06T06:00:00Z")), null, "07:00 local: over");
  assert.equal(quietUntil(night, at("2026-01-06T12:00:00Z")), null);
});

Deno.test("quiet hours: daylight saving moves the period with the wall clock", () => {
  const night = q({ start: "22:00", end: "07:00", time_zone: "Europe/Berlin" });
  // Night of 28→29 March 2026: clocks go from 02:00 to 03:00 (UTC+1 → UTC+2).
  assert.equal(quietUntil(night, at("2026-03-28T21:30:00Z")), at("2026-03-29T05:00:00Z"));
  const ny = q({ start: "20:00", end: "06:00", time_zone: "America/New_York" });
  assert.equal(quietUntil(ny, at("2026-07-01T01:00:00Z")), at("2026-07-01T10:00:00Z"));
});

Deno.test("quiet hours: only on given days, counted by the day the period starts", () => {
  // Weeknights: starts Monday to Friday at 22:00.
  const weeknights = q({
    start: "22:00",
    end: "07:00",
    time_zone: "UTC",
    days: [1, 2, 3, 4, 5],
  });
  // 2026-01-09 is a Friday, 2026-01-10 a Saturday.
  assert.equal(quietUntil(weeknights, at("2026-01-09T23:00:00Z")), at("2026-01-10T07:00:00Z"));
  assert.equal(quietUntil(weeknights, at("2026-01-10T03:00:00Z")), at("2026-01-10T07:00:00Z"));
  assert.equal(quietUntil(weeknights, at("2026-01-10T23:00:00Z")), null, "Saturday night");
  assert.equal(quietUntil(weeknights, at("2026-01-11T03:00:00Z")), null, "Sunday morning");
  // Office hours off: a same-day period on weekdays.
  const office = q({ start: "09:00", end: "17:00", time_zone: "UTC", days: [1, 2, 3, 4, 5] });
  assert.equal(quietUntil(office, at("2026-01-05T10:00:00Z")), at("2026-01-05T17:00:00Z"));
  assert.equal(quietUntil(office, at("2026-01-10T10:00:00Z")), null, "Saturday");
});

Deno.test("quiet hours: the schema refuses unknown zones, bad times and empty periods", () => {
  const bad = [
    { start: "22:00", end: "07:00", time_zone: "Mars/Olympus" },
    { start: "24:00", end: "07:00", time_zone: "UTC" },
    { start: "7:00", end: "08:00", time_zone: "UTC" },
    { start: "07:00", end: "07:00", time_zone: "UTC" },
    { start: "07:00", end: "08:00", time_zone: "UTC", days: [7] },
    { start: "07:00", end: "08:00", time_zone: "UTC", extra: 1 },
  ];
  for (const b of bad) assert.equal(QuietHours.safeParse(b).success, false, JSON.stringify(b));
  assert.equal(
    q({ start: "07:00", end: "08:00", time_zone: "UTC" }).breakthrough_severity,
    "error",
  );
});
