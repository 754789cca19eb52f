/**
 * Reads the engine's own sources for the layout checks: which tables each owner's
 * migrations create, and which tables the SQL in a plugin's code names. The scanner
 * walks TypeScript by hand (strings, comments, regular expressions, template literals
 * with nested `${…}`), so a table name in a comment or an error message is not SQL.
 *
 * @module
 */

/** A string or template literal found in a source file. */
export interface Literal {
  /** The static text; each `${…}` hole becomes a single space. */
  text: string;
  /** The tag of a tagged template (`sql`, `tx`, `this.sql`), else "". */
  tag: string;
  /** 1-based line of the opening quote. */
  line: number;
  /** Index of the enclosing template literal in the result list, or -1. */
  parent: number;
  kind: "template" | "string";
}

const REGEX_PREFIX = /[(,=:[!&|?{};+\-*%<>~^]$|^$|\breturn$|\btypeof$|\bcase$/;

/** All string and template literals of a TypeScript source, in order. */
export function literalsOf(source: string): Literal[] {
  const out: Literal[] = [];
  let i = 0;
  let line = 1;
  // Each open template: its index in `out` and the brace depth of the hole it is in.
  const templates: Array<{ index: number; braces: number }> = [];
  let braces = 0;

  const lastCode = (): string => {
    let j = i - 1;
    while (j >= 0 && /\s/.test(source[j]!)) j--;
    let k = j;
    while (k >= 0 && /[A-Za-z0-9_$#.]/.test(source[k]!)) k--;
    return source.slice(k + 1, j + 1) || (j >= 0 ? source[j]! : "");
  };

  const readTemplate = (tag: string, parent: number): void => {
    // `i` is just past the backtick.
    const index = out.length;
    out.push({ text: "", tag, line, parent, kind: "template" });
    let text = "";
    while (i < source.length) {
      const ch = source[i]!;
      if (ch === "\\") {
        text += source.slice(i, i + 2);
        i += 2;
        continue;
      }
      if (ch === "\n") line++;
      if (ch === "`") {
        i++;
        out[index]!.text = text;
        return;
      }
      if (ch === "$" && source[i + 1] === "{") {
        i += 2;
        text += " ";
        out[index]!.text = text;
        templates.push({ index, braces });
        braces = 0;
        scanCode(true);
        templates.pop();
        continue;
      }
      text += ch;
      i++;
    }
    out[index]!.text = text;
  };

  const scanCode = (inHole: boolean): void => {
    while (i < source.length) {
      const ch = source[i]!;
      const next = source[i + 1];
      if (ch === "\n") {
        line++;
        i++;
      } else if (ch === "/" && next === "/") {
        while (i < source.length && source[i] !== "\n") i++;
      } else if (ch === "/" && next === "*") {
        const end = source.indexOf("*/", i + 2);
        const stop = end < 0 ? source.length : end + 2;
        for (let k = i; k < stop; k++) if (source[k] === "\n") line++;
        i = stop;
      } else if (ch === '"' || ch === "'") {
        const start = line;
        let text = "";
        i++;
        while (i < source.length && source[i] !== ch && source[i] !== "\n") {
          if (source[i] === "\\") {
            text += source.slice(i, i + 2);
            i += 2;
          } else text += source[i++];
        }
        i++;
        out.push({
          text,
          tag: "",
          line: start,
          parent: templates.at(-1)?.index ?? -1,
          kind: "string",
        });
      } else if (ch === "`") {
        const before = lastCode();
        const tag = /^[A-Za-z_$#][A-Za-z0-9_$#.]*$/.test(before) &&
            !/^(return|typeof|case|await|yield|in|of)$/.test(before)
          ? before
          : "";
        i++;
        readTemplate(tag, templates.at(-1)?.index ?? -1);
      } else if (ch === "/" && REGEX_PREFIX.test(lastCode())) {
        // A regular expression literal: skip it, classes included.
        i++;
        let inClass = false;
        while (i < source.length && source[i] !== "\n") {
          const c = source[i]!;
          if (c === "\\") i += 2;
          else if (c === "[") inClass = true, i++;
          else if (c === "]") inClass = false, i++;
          else if (c === "/" && !inClass) {
            i++;
            break;
          } else i++;
        }
      } else if (ch === "{") {
        braces++;
        i++;
      } else if (ch === "}") {
        if (inHole && braces === 0) {
          i++;
          braces = templates.at(-1)!.braces;
          return;
        }
        braces--;
        i++;
      } else i++;
    }
  };

  scanCode(false);
  return out;
}

/** Tags whose templates are SQL (postgres.js clients and transactions). */
const SQL_TAG = /(^|\.)(sql|tx|sp|trx|q|db)$/;
const SQL_WORDS =
  /\b(select\s[\s\S]*\bfrom|insert\s+into|update\s+\S+\s+set|delete\s+from|create\s+(unique\s+)?(table|index))\b/i;

/** True when a literal is SQL: a template with a SQL client's tag, or text shaped like a statement. */
export function isSql(l: Literal): boolean {
  return (l.kind === "template" && SQL_TAG.test(l.tag)) || SQL_WORDS.test(l.text);
}

const TABLE_POSITION =
  /\b(from|join|into|update|table|references|using|truncate)\s+(?:only\s+|if\s+(?:not\s+)?exists\s+)?([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)((?:\s+(?:as\s+)?[a-z_][a-z0-9_]*)?(?:\s*,\s*[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?(?:\s+(?:as\s+)?[a-z_][a-z0-9_]*)?)*)/gi;
const SQL_NOT_TABLE = new Set([
  "select",
  "lateral",
  "unnest",
  "jsonb_array_elements",
  "jsonb_array_elements_text",
  "jsonb_each",
  "jsonb_to_recordset",
  "generate_series",
  "set",
  "only",
  "values",
]);

/** Table names a piece of SQL reads or writes (lower case, schema kept). */
export function tablesIn(sqlText: string): string[] {
  const found = new Set<string>();
  const text = sqlText.replace(/--[^\n]*/g, " ").toLowerCase();
  for (const m of text.matchAll(TABLE_POSITION)) {
    const [, keyword, first, rest] = m;
    if (keyword === "update" && /^\s*set\b/.test(rest ?? "")) {
      // "do update set": no table
    }
    if (!SQL_NOT_TABLE.has(first!)) found.add(first!);
    if (keyword === "from" || keyword === "using") {
      for (const extra of (rest ?? "").matchAll(/,\s*([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)/g)) {
        if (!SQL_NOT_TABLE.has(extra[1]!)) found.add(extra[1]!);
      }
    }
  }
  return [...found];
}

/** Tables each migration file creates (`create table [if not exists] name`). */
export function tablesCreated(migrationSql: string): string[] {
  const text = migrationSql.replace(/--[^\n]*/g, " ").toLowerCase();
  return [
    ...text.matchAll(
      /\bcreate\s+(?:unlogged\s+)?(?:table|view|materialized\s+view)\s+(?:if\s+not\s+exists\s+)?([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)/g,
    ),
  ].map((m) => m[1]!);
}
