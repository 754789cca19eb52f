import assert from "node:assert/strict";
import { EditorState } from "@codemirror/state";
import { classHighlighter, highlightTree } from "@lezer/highlight";
import { ensureSyntaxTree } from "@codemirror/language";
import { languageFor } from "./script_languages.ts";

/** The highlighted pieces of `doc` as [text, class] pairs. */
function tokens(type: string, doc: string): Array<[string, string]> {
  const lang = languageFor(type)!;
  const state = EditorState.create({ doc, extensions: [lang] });
  const tree = ensureSyntaxTree(state, doc.length, 5000)!;
  const out: Array<[string, string]> = [];
  highlightTree(tree, classHighlighter, (from, to, cls) => out.push([doc.slice(from, to), cls]));
  return out;
}

const classOf = (t: Array<[string, string]>, text: string) => t.find(([x]) => x === text)?.[1];

Deno.test("script languages: batch comments, labels, variables, keywords and commands", () => {
  const t = tokens(
    "batch",
    '@echo off\nREM clean up\n:: also a comment\n:loop\nset NAME=%USERPROFILE%\nif exist "C:\\x" goto loop\nfor %%i in (*) do echo !X!\n',
  );
  assert.equal(classOf(t, "REM clean up"), "tok-comment");
  assert.equal(classOf(t, ":: also a comment"), "tok-comment");
  assert.equal(classOf(t, ":loop"), "tok-labelName");
  assert.equal(classOf(t, "%USERPROFILE%"), "tok-variableName");
  assert.equal(classOf(t, "%%i"), "tok-variableName");
  assert.equal(classOf(t, "!X!"), "tok-variableName");
  assert.equal(classOf(t, "if"), "tok-keyword");
  assert.equal(classOf(t, '"C:\\x"'), "tok-string");
  assert.ok(classOf(t, "set"), "commands are highlighted");
});

Deno.test("script languages: PowerShell, Bash and Python each highlight their own syntax", () => {
  const ps = tokens("powershell", "# note\n$name = 'x'\nWrite-Output $name\n");
  assert.equal(classOf(ps, "# note"), "tok-comment");
  assert.equal(classOf(ps, "'x'"), "tok-string");
  assert.ok(ps.some(([x, c]) => x === "$name" && c.includes("variableName")), JSON.stringify(ps));
  const sh = tokens("bash", '#!/bin/bash\necho "hi $USER"\nif [ -f x ]; then exit 1; fi\n');
  assert.ok(sh.some(([x, c]) => x === "if" && c.includes("keyword")), JSON.stringify(sh));
  const py = tokens("python", "import sys\ndef f(x):\n    return 'y'  # done\n");
  assert.equal(classOf(py, "import"), "tok-keyword");
  assert.equal(classOf(py, "# done"), "tok-comment");
  assert.equal(languageFor("unknown-type"), null);
  assert.equal(languageFor("bash"), languageFor("bash"), "languages are made once");
});
