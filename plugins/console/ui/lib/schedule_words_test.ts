import assert from "node:assert/strict";
import { cronInWords, scheduleInWords, targetsInWords } from "./schedule_words.ts";

const o = { locale: "en-GB", timeZone: "UTC" };

Deno.test("schedule words: each type, cron described with its zone", () => {
  assert.equal(
    scheduleInWords({ type: "cron", cron: "30 2 * * 1-5", timezone: "Europe/Berlin" }, o),
    "At 02:30, Monday through Friday (Europe/Berlin)",
  );
  assert.equal(
    scheduleInWords({ type: "cron", cron: "bogus", timezone: null }, o),
    "Cron bogus (UTC)",
  );
  assert.equal(
    scheduleInWords({ type: "daily", start: 1767580200 }, o),
    "Every day from 5 Jan 2026, 02:30",
  );
  assert.equal(
    scheduleInWords({ type: "once", start: "2026-01-05T02:30:00Z" }, o),
    "Once, 5 Jan 2026, 02:30",
  );
  assert.equal(scheduleInWords({ type: "immediately" }, o), "Immediately, once");
  assert.equal(cronInWords("*/15 * * * *"), "Every 15 minutes");
});

Deno.test("schedule words: targets", () => {
  const names = { filter: (id: number) => `F${id}`, site: (id: number) => `S${id}` };
  assert.equal(
    targetsInWords([
      { kind: "device", device_guid: "A" },
      { kind: "device", device_guid: "B" },
      { kind: "filter", filter_id: 3 },
    ], names),
    "2 devices, filter F3",
  );
  assert.equal(targetsInWords([{ kind: "all_devices" }], names), "All devices");
  assert.equal(targetsInWords([], names), "No targets");
});
