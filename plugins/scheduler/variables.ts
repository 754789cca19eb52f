/**
 * Script variables: values checked against the assembly's definitions (type,
 * required), turned into environment variables for every script type, and for
 * PowerShell substituted as literals where the script reads `$env:NAME` or
 * `${env:NAME}`. A PowerShell string literal is single-quoted with every single-quote
 * character (ASCII and the typographic ones PowerShell also accepts) doubled, so a
 * value holding `'`, `$(...)`, a backtick or a newline stays data.
 *
 * @module
 */
import { badRequest } from "../../core/errors.ts";

/** A variable definition from the assembly's metadata. */
export interface VariableDef {
  name: string;
  label?: string;
  type?: "string" | "number" | "boolean" | "credential";
  default?: string | number | boolean | null;
  required?: boolean;
}

/** A checked value. */
export type VariableValue = string | number | boolean;

/** Environment key of a variable name: upper case, non-alphanumerics become `_`. */
export const envKey = (name: string): string => name.toUpperCase().replace(/[^A-Z0-9]/g, "_");

/**
 * Checks values against definitions. Unknown names are refused (a typo would otherwise
 * run the script with its default silently); missing required ones too. Returns the
 * final value of every defined variable (defaults filled in).
 */
export function checkVariables(
  defs: readonly VariableDef[],
  values: Record<string, unknown> | undefined,
): Map<string, VariableValue> {
  const out = new Map<string, VariableValue>();
  const problems: Array<{ field: string; message: string }> = [];
  const byName = new Map(defs.map((d) => [d.name.toLowerCase(), d]));
  for (const key of Object.keys(values ?? {})) {
    if (!byName.has(key.toLowerCase())) {
      problems.push({ field: `variable_values.${key}`, message: "no such variable" });
    }
  }
  const given = new Map(
    Object.entries(values ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
  );
  for (const d of defs) {
    const field = `variable_values.${d.name}`;
    let v = given.get(d.name.toLowerCase());
    if (v === undefined || v === null || v === "") v = d.default ?? undefined;
    if (v === undefined || v === null || v === "") {
      if (d.required) problems.push({ field, message: "required" });
      continue;
    }
    const type = d.type ?? "string";
    if (type === "number") {
      const n = typeof v === "number" ? v : typeof v === "string" ? Number(v.trim()) : NaN;
      if (!Number.isFinite(n)) problems.push({ field, message: "a number" });
      else out.set(d.name, n);
    } else if (type === "boolean") {
      if (typeof v === "boolean") out.set(d.name, v);
      else if (typeof v === "string" && /^(true|false)$/i.test(v.trim())) {
        out.set(d.name, v.trim().toLowerCase() === "true");
      } else problems.push({ field, message: "true or false" });
    } else if (type === "credential") {
      const n = typeof v === "number" ? v : typeof v === "string" ? Number(v) : NaN;
      if (!Number.isInteger(n) || n <= 0) problems.push({ field, message: "a credential id" });
      else out.set(d.name, n);
    } else {
      if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
        problems.push({ field, message: "a string" });
      } else if (String(v).includes("\u0000")) {
        problems.push({ field, message: "NUL characters are not allowed" });
      } else if (String(v).length > 65_536) {
        problems.push({ field, message: "at most 65536 characters" });
      } else out.set(d.name, String(v));
    }
  }
  if (problems.length) {
    throw badRequest(
      "invalid_variables",
      problems.map((p) => `${p.field}: ${p.message}`).join("; "),
      problems,
    );
  }
  return out;
}

/** Text of a value in the environment. */
export function envText(v: VariableValue): string {
  return typeof v === "boolean" ? (v ? "True" : "False") : String(v);
}

/** Single-quote characters PowerShell accepts: ' ‘ ’ ‚ ‛. */
const PS_QUOTES = /['\u2018\u2019\u201A\u201B]/g;

/** A PowerShell literal: `$true`/`$false`, a number, or a single-quoted string. */
export function powershellLiteral(v: VariableValue): string {
  if (typeof v === "boolean") return v ? "$true" : "$false";
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return `'${String(v).replace(PS_QUOTES, (q) => q + q)}'`;
}

/**
 * Replaces `$env:NAME` and `${env:NAME}` (case-insensitive, NAME or its env key) with
 * literals. Other references stay as they are (the environment still carries them).
 */
export function substitutePowershell(script: string, values: Map<string, VariableValue>): string {
  const byKey = new Map<string, VariableValue>();
  for (const [name, v] of values) {
    byKey.set(name.toUpperCase(), v);
    byKey.set(envKey(name), v);
  }
  return script.replace(
    /\$\{env:([A-Za-z0-9_]+)\}|\$env:([A-Za-z0-9_]+)/gi,
    (whole, braced: string | undefined, bare: string | undefined) => {
      const v = byKey.get((braced ?? bare)!.toUpperCase());
      return v === undefined ? whole : powershellLiteral(v);
    },
  );
}

/** Normalises line endings to LF. */
export const toLf = (text: string): string => text.replace(/\r\n?/g, "\n");

/** Environment variables for the values (names as env keys plus the original spelling). */
export function environmentOf(values: Map<string, VariableValue>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, v] of values) {
    env[envKey(name)] = envText(v);
    if (name !== envKey(name)) env[name] = envText(v);
  }
  return env;
}
