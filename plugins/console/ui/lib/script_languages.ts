/**
 * Syntax highlighting per script type for the code editor: CodeMirror's maintained
 * legacy modes for PowerShell, shell (Bash), Python, YAML (Ansible) and JSON
 * (workflows). Batch has no maintained mode, so it is described here as rules for the
 * maintained `simpleMode` engine: comments (REM, ::), labels, variables (%X%, %%i,
 * !X!), strings, keywords and the common commands.
 *
 * @module
 */
import { StreamLanguage } from "@codemirror/language";
import { json } from "@codemirror/legacy-modes/mode/javascript";
import { powerShell } from "@codemirror/legacy-modes/mode/powershell";
import { python } from "@codemirror/legacy-modes/mode/python";
import { shell } from "@codemirror/legacy-modes/mode/shell";
import { simpleMode } from "@codemirror/legacy-modes/mode/simple-mode";
import { yaml } from "@codemirror/legacy-modes/mode/yaml";

const BATCH_KEYWORDS = [
  "if",
  "else",
  "for",
  "in",
  "do",
  "goto",
  "call",
  "exit",
  "not",
  "exist",
  "defined",
  "errorlevel",
  "equ",
  "neq",
  "lss",
  "leq",
  "gtr",
  "geq",
  "setlocal",
  "endlocal",
  "enabledelayedexpansion",
  "shift",
];
const BATCH_COMMANDS = [
  "echo",
  "set",
  "cd",
  "chdir",
  "copy",
  "xcopy",
  "robocopy",
  "del",
  "erase",
  "dir",
  "md",
  "mkdir",
  "rd",
  "rmdir",
  "move",
  "ren",
  "rename",
  "type",
  "pause",
  "start",
  "title",
  "cls",
  "pushd",
  "popd",
  "findstr",
  "where",
  "net",
  "sc",
  "reg",
  "taskkill",
  "tasklist",
  "shutdown",
  "powershell",
  "cmd",
];

const words = (list: string[]) => new RegExp(`(?:${list.join("|")})\\b`, "i");

/** Rules of the Windows batch (cmd.exe) language for `simpleMode`. */
export const batchRules = {
  start: [
    { regex: /@?rem\b.*/i, token: "comment", sol: true },
    { regex: /\s*@?rem\b.*/i, token: "comment", sol: true },
    { regex: /\s*::.*/, token: "comment", sol: true },
    { regex: /\s*:[A-Za-z_][\w.-]*/, token: "labelName", sol: true },
    { regex: /"(?:[^"\\]|\\.)*"?/, token: "string" },
    { regex: /%%~?[A-Za-z]/, token: "variableName" },
    { regex: /%~[0-9A-Za-z]+/, token: "variableName" },
    { regex: /%[0-9*]/, token: "variableName" },
    { regex: /%[^%\s]+%/, token: "variableName" },
    { regex: /![^!\s]+!/, token: "variableName" },
    { regex: /@/, token: "meta" },
    { regex: words(BATCH_KEYWORDS), token: "keyword" },
    { regex: words(BATCH_COMMANDS), token: "builtin" },
    { regex: /\d+\b/, token: "number" },
    { regex: /[<>|&()=^]+/, token: "operator" },
    { regex: /[A-Za-z_][\w.-]*/, token: null },
    { regex: /\s+/, token: null },
    { regex: /./, token: null },
  ],
  languageData: { commentTokens: { line: "REM" } },
};

/** Script and document types the editor highlights. */
export type EditorLanguage =
  | "powershell"
  | "bash"
  | "batch"
  | "python"
  | "ansible"
  | "workflow"
  | "json"
  | "text";

const cache = new Map<EditorLanguage, StreamLanguage<unknown>>();

/** The CodeMirror language of a script type (plain text when unknown). */
export function languageFor(type: string | null | undefined): StreamLanguage<unknown> | null {
  const key = (type ?? "text") as EditorLanguage;
  const hit = cache.get(key);
  if (hit) return hit;
  const parser = key === "powershell"
    ? powerShell
    : key === "bash"
    ? shell
    : key === "python"
    ? python
    : key === "batch"
    ? simpleMode(batchRules)
    : key === "ansible"
    ? yaml
    : key === "workflow" || key === "json"
    ? json
    : null;
  if (!parser) return null;
  const lang = StreamLanguage.define(parser);
  cache.set(key, lang);
  return lang;
}
