/**
 * Every `deno task …` command the project shows a reader — in README.md and every
 * docs/*.md (new files included, found by listing the folder), in the `--help` output
 * of those commands, and in the engine's own messages and doc comments (main.ts, core/,
 * plugins/ — the console's sources too —, the agent and the reference agent, bench/) — is
 * run as printed, from the repository root,
 * with a fresh data dir (a fresh clone has none). A command that reads only, or whose
 * state lands in that data dir, runs for real; one that would change the repository,
 * serve forever or needs a placeholder filled in (`--server URL`) runs with `--help`,
 * which still proves the task exists and the command line parses. Either way it must
 * exit 0 without "Unexpected argument" or "unknown command".
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createTestDatabase } from "./helpers/test_db.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** One command as printed, and where it was found. */
export interface PrintedCommand {
  /** `deno task …` with the leading `NAME=value` assignments removed. */
  command: string;
  env: Record<string, string>;
  where: string;
}

// Usage notation ends the literal part of a command: `[--status]`, `profile|sessions`,
// `postgres://…`, `<name>`, a shell comment, or two spaces before a description column.
const NOTATION = /\s{2,}|\s#|[[|…<>()"'`]|\s→|\\n|\$\{/;

/** The literal command at the start of `text` (which begins with an optional env, then `deno task`). */
export function literalCommand(text: string, where: string): PrintedCommand | null {
  const flat = text.replace(/\s*\n\s*(\*\s*)?/g, " ").trim();
  const cut = NOTATION.exec(flat);
  const literal = (cut ? flat.slice(0, cut.index) : flat).trim()
    .replace(/[`'".,;:]+$/, "")
    .replace(/^npx -y deno@2 task\b/, "deno task");
  const words = literal.split(/\s+/);
  // An option whose value is a placeholder (`--server ${url}`, `--version <v>`) belongs to
  // the notation too: run without it rather than give it the next word as its value.
  if (cut && /^\s*(\$\{|<|…)/.test(flat.slice(cut.index)) && /^--?[a-z]/.test(words.at(-1)!)) {
    words.pop();
  }
  const env: Record<string, string> = {};
  while (words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[0]!)) {
    const [k, ...v] = words.shift()!.split("=");
    env[k!] = v.join("=");
  }
  if (words[0] !== "deno" || words[1] !== "task" || !words[2]) return null;
  return { command: words.join(" "), env, where };
}

const TASK_IN_TEXT = /(?:[A-Z_][A-Z0-9_]*=\S+\s+)*(?:npx -y deno@2|deno) task\b/g;

/** Commands in Markdown: inline code spans (which may wrap lines) and fenced blocks. */
export function commandsInMarkdown(markdown: string, file: string): PrintedCommand[] {
  const out: PrintedCommand[] = [];
  const fences = /^```[^\n]*\n([\s\S]*?)^```/gm;
  let prose = markdown;
  for (const m of markdown.matchAll(fences)) {
    prose = prose.replace(m[0], "");
    for (const line of m[1]!.split("\n")) {
      for (const hit of line.matchAll(TASK_IN_TEXT)) {
        const c = literalCommand(line.slice(hit.index), file);
        if (c) out.push(c);
      }
    }
  }
  for (const m of prose.matchAll(/`([^`]+)`/g)) {
    for (const hit of m[1]!.matchAll(TASK_IN_TEXT)) {
      const c = literalCommand(m[1]!.slice(hit.index), file);
      if (c) out.push(c);
    }
  }
  return out;
}

/** Commands in TypeScript: strings the engine prints and doc comments, line by line. */
export function commandsInSource(source: string, file: string): PrintedCommand[] {
  const out: PrintedCommand[] = [];
  for (const line of source.split("\n")) {
    for (const hit of line.matchAll(TASK_IN_TEXT)) {
      const c = literalCommand(line.slice(hit.index), file);
      if (c) out.push(c);
    }
  }
  return out;
}

async function* files(dir: string, test: (name: string) => boolean): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory && e.name !== "node_modules" && !e.name.startsWith(".")) {
      yield* files(path, test);
    } else if (e.isFile && test(e.name)) yield path;
  }
}

/**
 * Commands that only read, or write only into the (fresh, temporary) data dir, run as
 * printed; everything else gets `--help`. That includes `deno task agent:package …`
 * (docs/agent.md): building packages fetches about 210 MB of pinned Deno runtimes, so here
 * it proves the task and its options parse; tests/agent_package_test.ts builds packages.
 */
const RUN_AS_PRINTED = [
  /^deno task start config$/,
  /^deno task start migrate( --status)?$/,
  /^deno task start plugins( --json)?$/,
  /^deno task start db profile$/,
  /^deno task (start|agent|bench|assemblies)( .*)? (--help|-h)$/,
  /^deno task start (--help|-h|help|--version)$/,
];

interface Outcome {
  run: string;
  code: number;
  output: string;
}

/** Runs one command with a database and data dir of its own (as on a fresh clone). */
async function run(c: PrintedCommand): Promise<Outcome> {
  const asPrinted = RUN_AS_PRINTED.some((r) => r.test(c.command));
  const argv = c.command.split(" ").slice(1); // after "deno"
  if (!asPrinted) argv.push("--help");
  const db = await createTestDatabase();
  try {
    const child = await new Deno.Command(Deno.execPath(), {
      args: argv,
      cwd: ROOT,
      env: { ...db.env, ...c.env, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const output = new TextDecoder().decode(child.stdout) +
      new TextDecoder().decode(child.stderr);
    return { run: `deno ${argv.join(" ")}`, code: child.code, output };
  } finally {
    await db.drop();
  }
}

Deno.test("docs: the command extractor reads inline, wrapped and fenced commands and stops at usage notation", () => {
  const md = [
    "Run `deno task start config` or `BOREALIS_PLUGINS=all,example deno task start`;",
    "the agent: `deno task agent --server URL --code CODE --state DIR",
    "--connect` and `deno task start migrate [--status]`.",
    "```sh",
    "npx -y deno@2 task test      # the whole suite",
    "deno task start db profile|sessions",
    "```",
    "Templates: `deno task agent --server ${url} --code ${code}`.",
  ].join("\n");
  assert.deepEqual(commandsInMarkdown(md, "x.md").map((c) => [c.command, c.env]), [
    ["deno task test", {}],
    ["deno task start db profile", {}],
    ["deno task start config", {}],
    ["deno task start", { BOREALIS_PLUGINS: "all,example" }],
    ["deno task agent --server URL --code CODE --state DIR --connect", {}],
    ["deno task start migrate", {}],
    ["deno task agent", {}],
  ]);
  const ts = "print(`  deno task start users create-admin --username NAME\\n`);\n" +
    " *   deno task start plugins            loaded plugins, requirements and routes";
  assert.deepEqual(commandsInSource(ts, "x.ts").map((c) => c.command), [
    "deno task start users create-admin --username NAME",
    "deno task start plugins",
  ]);
});

Deno.test({
  name:
    "docs: every deno task command in README.md, docs/*.md, --help and the engine's messages works as printed",
  // Each command is a deno process; two at a time keep the shared cores usable.
  async fn() {
    const found: PrintedCommand[] = [];
    const readme = join(ROOT, "README.md");
    found.push(...commandsInMarkdown(await Deno.readTextFile(readme), "README.md"));
    for await (const f of files(join(ROOT, "docs"), (n) => n.endsWith(".md"))) {
      found.push(...commandsInMarkdown(await Deno.readTextFile(f), f.slice(ROOT.length)));
    }
    const sources = [join(ROOT, "main.ts")];
    for (const dir of ["core", "plugins", "agent", "tests/agent", "bench"]) {
      for await (
        const f of files(join(ROOT, dir), (n) => n.endsWith(".ts") && !n.endsWith("_test.ts"))
      ) {
        sources.push(f);
      }
    }
    for (const f of sources) {
      found.push(...commandsInSource(await Deno.readTextFile(f), f.slice(ROOT.length)));
    }
    assert.ok(found.length >= 20, `only ${found.length} commands found; is the extractor broken?`);

    const failures: string[] = [];
    const seen = new Map<string, string[]>();
    const key = (c: PrintedCommand) => `${JSON.stringify(c.env)} ${c.command}`;
    const queue = [...found];
    let ran = 0;
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const k = key(c);
        if (seen.has(k)) {
          seen.get(k)!.push(c.where);
          continue;
        }
        seen.set(k, [c.where]);
        const o = await run(c);
        ran++;
        const refused = /Unexpected argument|unknown command|Task not found|error: /i.test(
          o.output,
        );
        if (o.code !== 0 || refused) {
          failures.push(
            `${c.command} (${c.where}) → \`${o.run}\` exited ${o.code}:\n${o.output.slice(-600)}`,
          );
          continue;
        }
        // Commands a --help prints are commands shown to a reader too.
        for (const more of commandsInSource(o.output, `${c.command} --help`)) {
          if (!seen.has(key(more))) queue.push(more);
        }
      }
    };
    await Promise.all([worker(), worker()]);
    assert.deepEqual(failures, [], `${failures.length} of ${ran} commands failed`);
    for (
      const command of [
        "deno task start users create-admin --username NAME",
        "deno task agent:package --version 1.0.0 --channel stable --force",
      ]
    ) {
      assert.ok(seen.has(key({ command, env: {}, where: "" })), `${command} was not found`);
    }
  },
});
