import assert from "node:assert/strict";
import { exitCodeOf, UnixPty, unixPtyAvailable } from "./pty_unix.ts";

Deno.test("pty: waitpid status → exit code or 128 + signal", () => {
  assert.equal(exitCodeOf(0), 0);
  assert.equal(exitCodeOf(3 << 8), 3);
  assert.equal(exitCodeOf(9), 137);
  assert.equal(exitCodeOf(15), 143);
});

Deno.test({
  name: "pty: the shell has a controlling terminal, its own session and the window size",
  ignore: !unixPtyAvailable(),
  async fn() {
    const pty = UnixPty.spawn({
      file: "/bin/sh",
      argv: [
        "sh",
        "-c",
        'tty; stty size; echo "ids:$(ps -o sid= -p $$ | tr -d " "):$(ps -o pgid= -p $$ | tr -d " ")"; read x; stty size; exit 5',
      ],
      env: { PATH: "/usr/bin:/bin", TERM: "xterm-256color" },
      cols: 100,
      rows: 30,
    });
    let text = "";
    const reading = (async () => {
      for (let b; (b = await pty.read(4096)) !== null;) text += new TextDecoder().decode(b);
    })();
    const end = Date.now() + 10_000;
    while (!/ids:\d+:\d+/.test(text) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(text, /30 100/);
    assert.match(text, /\/dev\/pts\/\d+/);
    const [sid, pgid] = /ids:(\d+):(\d+)/.exec(text)!.slice(1).map(Number);
    assert.equal(sid, pty.pid);
    assert.equal(pgid, pty.pid);
    pty.resize(120, 40);
    pty.write(new TextEncoder().encode("\n"));
    assert.equal(await pty.wait(), 5);
    await reading;
    assert.match(text, /40 120/);
    await pty.close();
  },
});
