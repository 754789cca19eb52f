/**
 * The local notice of remote access: every terminal session, file transfer and device
 * action is written to the agent's log (it is one of the worker's events) and to the
 * machine's own log — syslog through `logger -t borealis-agent` on Linux and macOS, the
 * Application event log through `eventcreate` on Windows — where the machine's owner
 * and their log collection see it. A message on users' terminals (`wall`) was left out:
 * it interrupts whoever is working, and on a desktop nobody sees it.
 *
 * @module
 */

/** Writes one line to the system log; never throws, never waits long. */
export async function systemNotice(message: string): Promise<void> {
  const text = message.replace(/[\r\n]+/g, " ").slice(0, 900);
  let cmd: string;
  let args: string[];
  if (Deno.build.os === "windows") {
    cmd = "eventcreate";
    args = [
      "/L",
      "APPLICATION",
      "/T",
      "INFORMATION",
      "/SO",
      "BorealisAgent",
      "/ID",
      "100",
      "/D",
      text,
    ];
  } else {
    cmd = "logger";
    args = ["-t", "borealis-agent", "-p", "auth.notice", "--", text];
  }
  try {
    const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" })
      .spawn();
    const timer = setTimeout(() => {
      try {
        child.kill();
      } catch { /* gone */ }
    }, 5000);
    await child.status;
    clearTimeout(timer);
  } catch { /* no logger here: the agent's own log still has it */ }
}
