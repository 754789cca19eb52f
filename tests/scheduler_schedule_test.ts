/** Next-run arithmetic and PowerShell quoting: pure tables, no engine. */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  dueSlot,
  expirationMs,
  nextRun,
  type Schedule,
  slotAfter,
} from "../plugins/scheduler/schedule.ts";
import {
  checkVariables,
  environmentOf,
  powershellLiteral,
  substitutePowershell,
} from "../plugins/scheduler/variables.ts";

const U = (s: string) => Date.parse(s);
const I = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

Deno.test("schedule: next-run table for every schedule type, month ends and leap years", () => {
  const rows: Array<[Schedule, string, string | null]> = [
    [
      { type: "immediately", start: U("2026-01-05T12:00:30Z") },
      "2026-01-05T11:59:00Z",
      "2026-01-05T12:00:00.000Z",
    ],
    [{ type: "immediately", start: U("2026-01-05T12:00:00Z") }, "2026-01-05T12:00:00Z", null],
    [
      { type: "once", start: U("2026-03-01T08:15:00Z") },
      "2026-02-01T00:00:00Z",
      "2026-03-01T08:15:00.000Z",
    ],
    [{ type: "once", start: U("2026-03-01T08:15:00Z") }, "2026-03-01T08:15:00Z", null],
    [
      { type: "every_5_minutes", start: U("2026-01-01T00:02:00Z") },
      "2026-01-01T00:02:00Z",
      "2026-01-01T00:07:00.000Z",
    ],
    [
      { type: "every_10_minutes", start: U("2026-01-01T00:00:00Z") },
      "2026-01-01T00:25:00Z",
      "2026-01-01T00:30:00.000Z",
    ],
    [
      { type: "every_15_minutes", start: U("2026-01-01T00:00:00Z") },
      "2026-01-01T00:44:59Z",
      "2026-01-01T00:45:00.000Z",
    ],
    [
      { type: "every_30_minutes", start: U("2026-01-01T00:10:00Z") },
      "2026-01-01T05:00:00Z",
      "2026-01-01T05:10:00.000Z",
    ],
    [
      { type: "every_hour", start: U("2026-01-01T00:20:00Z") },
      "2026-01-01T00:19:00Z",
      "2026-01-01T00:20:00.000Z",
    ],
    [
      { type: "daily", start: U("2026-01-01T03:00:00Z") },
      "2026-01-10T03:00:00Z",
      "2026-01-11T03:00:00.000Z",
    ],
    [
      { type: "weekly", start: U("2026-01-05T09:00:00Z") },
      "2026-01-06T00:00:00Z",
      "2026-01-12T09:00:00.000Z",
    ],
    // monthly on the 31st: clamped to the end of shorter months
    [
      { type: "monthly", start: U("2026-01-31T10:00:00Z") },
      "2026-01-31T10:00:00Z",
      "2026-02-28T10:00:00.000Z",
    ],
    [
      { type: "monthly", start: U("2026-01-31T10:00:00Z") },
      "2026-02-28T10:00:00Z",
      "2026-03-31T10:00:00.000Z",
    ],
    [
      { type: "monthly", start: U("2026-01-31T10:00:00Z") },
      "2026-03-31T10:00:00Z",
      "2026-04-30T10:00:00.000Z",
    ],
    [
      { type: "monthly", start: U("2027-12-31T10:00:00Z") },
      "2028-01-31T10:00:00Z",
      "2028-02-29T10:00:00.000Z",
    ],
    [
      { type: "monthly", start: U("2026-01-30T00:00:00Z") },
      "2026-12-30T00:00:00Z",
      "2027-01-30T00:00:00.000Z",
    ],
    // yearly on 29 February: 28 February in common years
    [
      { type: "yearly", start: U("2024-02-29T06:00:00Z") },
      "2024-02-29T06:00:00Z",
      "2025-02-28T06:00:00.000Z",
    ],
    [
      { type: "yearly", start: U("2024-02-29T06:00:00Z") },
      "2027-03-01T00:00:00Z",
      "2028-02-29T06:00:00.000Z",
    ],
    [
      { type: "yearly", start: U("2026-07-04T00:00:00Z") },
      "2026-07-04T00:00:00Z",
      "2027-07-04T00:00:00.000Z",
    ],
    // cron in UTC and in a named zone
    [
      { type: "cron", start: U("2026-01-01T00:00:00Z"), cron: "30 2 * * *" },
      "2026-01-05T03:00:00Z",
      "2026-01-06T02:30:00.000Z",
    ],
    [
      {
        type: "cron",
        start: U("2026-01-01T00:00:00Z"),
        cron: "0 9 * * 1-5",
        timezone: "Europe/Berlin",
      },
      "2026-01-09T09:00:00Z",
      "2026-01-12T08:00:00.000Z",
    ],
  ];
  for (const [s, after, expected] of rows) {
    assert.equal(I(slotAfter(s, U(after))), expected, `${s.type} after ${after}`);
  }
});

Deno.test("schedule: cron across DST changes in a named time zone", () => {
  const daily = {
    type: "cron" as const,
    start: U("2026-01-01T00:00:00Z"),
    cron: "30 1 * * *",
    timezone: "Europe/Berlin",
  };
  // Berlin moves from UTC+1 to UTC+2 on 29 March 2026 (02:00 → 03:00).
  // 01:30 local is 00:30Z while CET (up to and including the 29th, the change is at 02:00)…
  assert.equal(I(slotAfter(daily, U("2026-03-28T00:29:00Z"))), "2026-03-28T00:30:00.000Z");
  assert.equal(I(slotAfter(daily, U("2026-03-28T00:30:00Z"))), "2026-03-29T00:30:00.000Z");
  // …and 23:30Z the day before once CEST applies.
  assert.equal(I(slotAfter(daily, U("2026-03-29T00:30:00Z"))), "2026-03-29T23:30:00.000Z");
  // And back on 25 October 2026 (03:00 → 02:00): 01:30 local is 23:30Z (CEST) then 00:30Z (CET).
  assert.equal(I(slotAfter(daily, U("2026-10-24T23:00:00Z"))), "2026-10-24T23:30:00.000Z");
  assert.equal(I(slotAfter(daily, U("2026-10-24T23:31:00Z"))), "2026-10-26T00:30:00.000Z");
  // A wall time skipped by the spring change does not fire twice nor at a wrong day.
  const skipped = { ...daily, cron: "30 2 * * *" };
  const spring = slotAfter(skipped, U("2026-03-28T02:00:00Z"))!;
  assert.ok(spring >= U("2026-03-29T00:00:00Z") && spring <= U("2026-03-30T01:30:00Z"), I(spring)!);
  // New York, 8 March 2026: 09:00 local is 14:00Z before and 13:00Z after.
  const ny = {
    type: "cron" as const,
    start: U("2026-01-01T00:00:00Z"),
    cron: "0 9 * * *",
    timezone: "America/New_York",
  };
  assert.equal(I(slotAfter(ny, U("2026-03-07T00:00:00Z"))), "2026-03-07T14:00:00.000Z");
  assert.equal(I(slotAfter(ny, U("2026-03-08T00:00:00Z"))), "2026-03-08T13:00:00.000Z");
});

Deno.test("schedule: the firing window, no backfill, fast-forward past missed slots", () => {
  const w = 5 * 60_000;
  const hourly: Schedule = { type: "every_hour", start: U("2026-01-01T00:00:00Z") };
  // inside the window after a slot
  assert.equal(I(dueSlot(hourly, null, U("2026-01-01T03:04:59Z"), w)), "2026-01-01T03:00:00.000Z");
  // just past the window: nothing (the 03:00 slot is lost, no backfill)
  assert.equal(dueSlot(hourly, null, U("2026-01-01T03:05:00Z"), w), null);
  // already fired this slot
  assert.equal(dueSlot(hourly, U("2026-01-01T03:00:00Z"), U("2026-01-01T03:02:00Z"), w), null);
  // engine down for hours: only the current slot, never the missed ones
  assert.equal(
    I(dueSlot(hourly, U("2026-01-01T00:00:00Z"), U("2026-01-01T09:01:00Z"), w)),
    "2026-01-01T09:00:00.000Z",
  );
  assert.equal(
    I(nextRun(hourly, U("2026-01-01T00:00:00Z"), U("2026-01-01T09:30:00Z"))),
    "2026-01-01T10:00:00.000Z",
  );
  // once in the past beyond the window never fires
  const once: Schedule = { type: "once", start: U("2026-01-01T00:00:00Z") };
  assert.equal(dueSlot(once, null, U("2026-01-01T00:06:00Z"), w), null);
  assert.equal(I(dueSlot(once, null, U("2026-01-01T00:00:10Z"), w)), "2026-01-01T00:00:00.000Z");
  // expiration parsing
  assert.equal(expirationMs("30m"), 1_800_000);
  assert.equal(expirationMs("2h"), 7_200_000);
  assert.equal(expirationMs("1d"), 86_400_000);
  assert.equal(expirationMs("15"), 900_000);
  assert.equal(expirationMs("no_expire"), null);
});

/** Parses a PowerShell single-quoted literal the way PowerShell's tokenizer does. */
function parsePsSingleQuoted(src: string): { value: string; rest: string } {
  const Q = /['\u2018\u2019\u201A\u201B]/;
  assert.ok(Q.test(src[0]!), "starts with a quote");
  let i = 1;
  let value = "";
  for (;;) {
    if (i >= src.length) throw new Error("unterminated string");
    const ch = src[i]!;
    if (Q.test(ch)) {
      if (i + 1 < src.length && Q.test(src[i + 1]!)) {
        value += ch;
        i += 2;
        continue;
      }
      return { value, rest: src.slice(i + 1) };
    }
    value += ch;
    i++;
  }
}

Deno.test("variables: PowerShell literals keep hostile values as data", () => {
  const hostile = [
    "it's",
    "'; Remove-Item -Recurse C:\\ ; '",
    "$(Invoke-Expression 'calc')",
    "line1\nline2'\n; whoami",
    "\u2019; whoami; \u2018",
    "`$env:PATH` and ${env:SECRET}",
    "",
  ];
  for (const v of hostile) {
    const lit = powershellLiteral(v);
    const { value, rest } = parsePsSingleQuoted(lit + "; Next-Statement");
    assert.equal(value, v);
    assert.equal(rest, "; Next-Statement");
  }
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (v) => {
      const { value, rest } = parsePsSingleQuoted(powershellLiteral(v) + "#");
      return value === v && rest === "#";
    }),
    { numRuns: 500 },
  );
  assert.equal(powershellLiteral(true), "$true");
  assert.equal(powershellLiteral(false), "$false");
  assert.equal(powershellLiteral(42), "42");

  const values = checkVariables(
    [
      { name: "Target", type: "string", required: true },
      { name: "count", type: "number", default: 3 },
      { name: "force", type: "boolean" },
    ],
    { target: "a'b$(x)\nc", force: "true" },
  );
  const script = "Write-Host $env:TARGET\n$n = ${env:count}\nif ($env:Force) { $env:OTHER }";
  const out = substitutePowershell(script, values);
  assert.equal(out, "Write-Host 'a''b$(x)\nc'\n$n = 3\nif ($true) { $env:OTHER }");
  assert.deepEqual(environmentOf(values), {
    TARGET: "a'b$(x)\nc",
    Target: "a'b$(x)\nc",
    COUNT: "3",
    count: "3",
    FORCE: "True",
    force: "True",
  });
});

Deno.test("variables: type and required checks", () => {
  const defs = [
    { name: "n", type: "number" as const, required: true },
    { name: "b", type: "boolean" as const },
  ];
  assert.throws(() => checkVariables(defs, {}), /variable_values.n: required/);
  assert.throws(() => checkVariables(defs, { n: "abc" }), /a number/);
  assert.throws(() => checkVariables(defs, { n: 1, b: "maybe" }), /true or false/);
  assert.throws(() => checkVariables(defs, { n: 1, nope: 1 }), /no such variable/);
  assert.deepEqual([...checkVariables(defs, { n: "2.5" })], [["n", 2.5]]);
});
