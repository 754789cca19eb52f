import assert from "node:assert/strict";
import { LineModeShell } from "./line_mode.ts";

const enc = new TextEncoder();

/** Reads everything the shell prints into `out.text` until it ends. */
function collect(shell: LineModeShell): { text: string; done: Promise<void> } {
  const out = { text: "", done: Promise.resolve() };
  out.done = (async () => {
    for (let b; (b = await shell.read(4096)) !== null;) out.text += new TextDecoder().decode(b);
  })();
  return out;
}

async function until(what: string, pred: () => boolean): Promise<void> {
  const end = Date.now() + 20_000;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Line mode is the fallback where no pseudo-terminal is reachable (Windows without
// ConPTY); its line discipline is the agent's own, so it is exercised here on a POSIX
// shell with pipes.
Deno.test({
  name: "line mode: echo, backspace, Ctrl+C discards the line, one line per Enter, exit code",
  ignore: Deno.build.os === "windows",
  async fn() {
    const shell = LineModeShell.spawn({
      file: "/bin/sh",
      argv: ["sh"],
      env: { PATH: "/usr/bin:/bin" },
      cols: 80,
      rows: 24,
    });
    assert.equal(shell.mode, "line");
    const out = collect(shell);
    // Typed characters are echoed by the agent; backspace erases on screen and in the line.
    shell.write(enc.encode("echo abX"));
    shell.write(new Uint8Array([0x7f]));
    shell.write(enc.encode("c-$((2+3))\r"));
    await until("the command's output", () => /^abc-5\r$/m.test(out.text));
    assert.ok(out.text.startsWith("echo abX\b \bc-$((2+3))\r\n"), JSON.stringify(out.text));
    // Ctrl+C drops what was typed: the shell never sees it.
    shell.write(enc.encode("echo dropped"));
    shell.write(new Uint8Array([0x03]));
    shell.write(enc.encode("echo kept\r"));
    await until("the second command", () => /^kept\r$/m.test(out.text));
    assert.ok(!/^dropped/m.test(out.text), "the discarded line did not run");
    assert.match(out.text, /echo dropped\^C\r\n/);
    // The shell's LF becomes CR LF for the terminal; stderr comes through too.
    shell.write(enc.encode("echo to-stderr >&2; exit 7\n"));
    assert.equal(await shell.wait(), 7);
    await shell.close();
    await out.done;
    assert.match(out.text, /^to-stderr\r$/m);
  },
});

Deno.test({
  name: "line mode: close ends a running shell",
  ignore: Deno.build.os === "windows",
  async fn() {
    const shell = LineModeShell.spawn({
      file: "/bin/sh",
      argv: ["sh"],
      env: { PATH: "/usr/bin:/bin" },
      cols: 80,
      rows: 24,
    });
    const out = collect(shell);
    shell.write(enc.encode("echo ready; read x\r"));
    await until("the shell runs", () => /^ready\r$/m.test(out.text));
    await shell.close();
    await out.done;
    const code = await shell.wait();
    assert.ok(code !== 0, `the shell was ended (exit ${code})`);
  },
});
