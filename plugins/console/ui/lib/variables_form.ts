/**
 * The quick-job form generated from an assembly's variable definitions: one field per
 * variable (text, number, switch, or a stored-credential picker), defaults filled in,
 * checked the way the engine checks them (required, a number, a credential id), and
 * turned into the `variable_values` of `POST /api/scripts/quick_run`.
 *
 * @module
 */
import type { VariableDef } from "../api/types.ts";

/** How a variable is edited. */
export type FieldKind = "text" | "number" | "boolean" | "credential";

/** One generated form field. */
export interface FieldModel {
  name: string;
  label: string;
  kind: FieldKind;
  required: boolean;
  description?: string;
}

/** Values as the form holds them (text inputs hold strings). */
export type FormValues = Record<string, string | boolean>;

/** Fields for the definitions: nameless ones are skipped, a repeated name keeps the first. */
export function fieldsFor(defs: readonly VariableDef[] | undefined): FieldModel[] {
  const seen = new Set<string>();
  const out: FieldModel[] = [];
  for (const d of defs ?? []) {
    const name = typeof d?.name === "string" ? d.name.trim() : "";
    if (!name || seen.has(name.toLowerCase())) continue;
    seen.add(name.toLowerCase());
    const kind: FieldKind = d.type === "number" || d.type === "boolean" || d.type === "credential"
      ? d.type
      : "text";
    out.push({
      name,
      label: (typeof d.label === "string" && d.label.trim()) || name,
      kind,
      required: d.required === true,
      ...(typeof d.description === "string" && d.description.trim()
        ? { description: d.description.trim() }
        : {}),
    });
  }
  return out;
}

/** The form's starting values: each definition's default. */
export function initialValues(
  fields: readonly FieldModel[],
  defs: readonly VariableDef[] | undefined,
): FormValues {
  const byName = new Map((defs ?? []).map((d) => [String(d?.name ?? "").trim().toLowerCase(), d]));
  const values: FormValues = {};
  for (const f of fields) {
    const def = byName.get(f.name.toLowerCase())?.default;
    if (f.kind === "boolean") values[f.name] = def === true || def === "true";
    else values[f.name] = def === undefined || def === null ? "" : String(def);
  }
  return values;
}

/** Problems per field name (empty when the form may be sent). */
export function validate(
  fields: readonly FieldModel[],
  values: FormValues,
): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const f of fields) {
    const v = values[f.name];
    if (f.kind === "boolean") continue;
    const text = typeof v === "string" ? v.trim() : "";
    if (!text) {
      if (f.required) errors[f.name] = f.kind === "credential" ? "Pick a credential" : "Required";
      continue;
    }
    if (f.kind === "number" && !Number.isFinite(Number(text))) errors[f.name] = "Enter a number";
    if (f.kind === "credential" && !/^[1-9]\d*$/.test(text)) errors[f.name] = "Pick a credential";
    if (f.kind === "text" && text.includes("\u0000")) errors[f.name] = "NUL is not allowed";
  }
  return errors;
}

/**
 * The `variable_values` to send. An empty optional field is left out, so the engine
 * applies the assembly's own default (the same rule it uses).
 */
export function toVariableValues(
  fields: readonly FieldModel[],
  values: FormValues,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const f of fields) {
    const v = values[f.name];
    if (f.kind === "boolean") {
      out[f.name] = v === true;
      continue;
    }
    if (typeof v !== "string" || !v.trim()) continue;
    if (f.kind === "number" || f.kind === "credential") out[f.name] = Number(v.trim());
    else out[f.name] = v;
  }
  return out;
}
