import assert from "node:assert/strict";
import {
  parseDf,
  parseDmidecodeMemory,
  parseDpkg,
  parseOsRelease,
  parseServiceStatusAll,
  parseSystemctl,
  parseWho,
} from "./linux.ts";

Deno.test("linux collectors: os-release, df, dpkg, systemctl, who and dmidecode parse", () => {
  assert.deepEqual(
    parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n'),
    { PRETTY_NAME: "Debian GNU/Linux 12 (bookworm)", VERSION_ID: "12", ID: "debian" },
  );
  const df = parseDf(
    "Filesystem Type 1024-blocks Used Available Capacity Mounted on\n" +
      "/dev/vda1 ext4 1000 250 750 25% /\n/dev/sdb1 xfs 2000 1000 1000 50% /srv/my data\n",
  );
  assert.equal(df.length, 2);
  assert.deepEqual(df[1], {
    device: "/dev/sdb1",
    mountpoint: "/srv/my data",
    fstype: "xfs",
    total_bytes: 2_048_000,
    used_bytes: 1_024_000,
    free_bytes: 1_024_000,
    used_percent: 50,
    usage: 50,
  });
  assert.deepEqual(parseDpkg("bash\t5.2-1\tii \nold\t1.0\trc \n"), [
    { name: "bash", version: "5.2-1", source: "dpkg" },
  ]);
  assert.deepEqual(
    parseSystemctl(
      "ssh.service loaded active running OpenBSD Secure Shell server\n" +
        "bad.service loaded failed failed Broken thing\nfoo.socket loaded active listening x\n",
    ),
    [
      {
        name: "ssh",
        display_name: "OpenBSD Secure Shell server",
        state: "running",
        start_mode: undefined,
      },
      { name: "bad", display_name: "Broken thing", state: "failed", start_mode: undefined },
    ],
  );
  assert.deepEqual(
    parseWho("alice pts/0 2026-01-05 12:00 (10.0.0.5)\nbob console Jan  5 12:00\n"),
    [
      { user: "alice", terminal: "pts/0", since: "2026-01-05 12:00", from: "10.0.0.5" },
      { user: "bob", terminal: "console", since: "Jan  5 12:00", from: undefined },
    ],
  );
  const mem = parseDmidecodeMemory(
    "Handle 0x1100, DMI type 17\nMemory Device\n\tSize: 16 GB\n\tLocator: DIMM A1\n\tType: DDR4\n" +
      "\tSpeed: 3200 MT/s\n\tManufacturer: Samsung\n\tPart Number: M393A2K40DB3 \n\n" +
      "Handle 0x1101, DMI type 17\nMemory Device\n\tSize: No Module Installed\n\tLocator: DIMM A2\n",
  );
  assert.deepEqual(mem, [{
    slot: "DIMM A1",
    size_bytes: 16 * 1024 ** 3,
    type: "DDR4",
    speed_mts: 3200,
    manufacturer: "Samsung",
    part_number: "M393A2K40DB3",
  }]);
});

Deno.test("linux: SysV services from service --status-all", () => {
  const text = " [ + ]  cron\n [ - ]  procps\n [ ? ]  hwclock.sh\nnoise\n";
  assert.deepEqual(parseServiceStatusAll(text), [
    { name: "cron", state: "running", start_mode: "sysv" },
    { name: "procps", state: "stopped", start_mode: "sysv" },
    { name: "hwclock.sh", state: "unknown", start_mode: "sysv" },
  ]);
});
