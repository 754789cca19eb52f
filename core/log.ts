/**
 * The engine's logger: lines of the form
 * `<ISO-8601 UTC timestamp>-engine-<LEVEL>-<scope>: <message>` written to stderr and
 * to `<data dir>/Logs/engine.log`, rotated daily (`engine.log.YYYY-MM-DD`) and pruned
 * after the retention period. Every line passes through {@link redact} first, so a
 * secret handed to the logger by mistake never reaches a disk or a terminal.
 *
 * @module
 */
import { join } from "node:path";
import { type Clock, systemClock } from "./clock.ts";

/** Severity of a log line. */
export type LogLevel = "DEBUG" | "INFO" | "WARNING" | "ERROR";

const LEVEL_RANK: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40 };

/** Structured extras appended to a line as JSON (after redaction). */
export type LogFields = Record<string, unknown>;

/** A scoped logger. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose scope is this one's plus `.scope`. */
  child(scope: string): Logger;
}

/** Options for {@link createLogSink}. */
export interface LogSinkOptions {
  /** Folder for `engine.log`; no file logging when absent. */
  dir?: string;
  /** Lowest level written. */
  level?: LogLevel;
  /** Days of rotated files to keep. */
  retentionDays?: number;
  /** Also write to stderr (default true). */
  stderr?: boolean;
  clock?: Clock;
}

/** The destination behind every {@link Logger}: owns the file and its rotation. */
export interface LogSink {
  logger(scope: string): Logger;
  /** Flushes and closes the file. */
  close(): void;
  /** Path of the current log file, if any. */
  readonly path?: string;
}

const SECRET_KEY =
  /pass(word|phrase)?|secret|token|authorization|cookie|private|credential|api[_-]?key|otp|seed|nonce_secret|enrollment_code|^code$/i;

const SECRET_PATTERNS: Array<[RegExp, string]> = [
  // Authorization-style values: "Bearer x", "DPoP x", "Basic x".
  [/\b(Bearer|DPoP|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, "$1 [redacted]"],
  // JWTs / JWS compact serializations.
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, "[redacted-jwt]"],
  // Aegis sealed values.
  [/aegis:v\d+:[A-Za-z0-9_-]*:[A-Za-z0-9+/=_-]+/g, "aegis:[redacted]"],
  // key=value / key: value pairs whose key names a secret.
  [
    /\b([A-Za-z_]*(?:password|passphrase|secret|token|api[_-]?key|cookie)[A-Za-z_]*)(["']?\s*[=:]\s*["']?)([^\s"',;&]+)/gi,
    "$1$2[redacted]",
  ],
  // postgres://user:password@host
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]+:)([^@\s]+)@/gi, "$1[redacted]@"],
];

/** Masks anything that looks like a secret in a free-text string. */
export function redact(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Deep-copies `value`, replacing the values of secret-named keys. */
export function redactFields(value: unknown, depth = 0): unknown {
  if (depth > 6) return "[…]";
  if (typeof value === "string") return redact(value);
  if (Array.isArray(value)) return value.map((v) => redactFields(v, depth + 1));
  if (value instanceof Error) return redact(value.message);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && v !== null && typeof v !== "boolean" && typeof v !== "number"
        ? "[redacted]"
        : redactFields(v, depth + 1);
    }
    return out;
  }
  return value;
}

/** Formats one log line (without newline). Exposed for tests and tools. */
export function formatLine(
  at: number,
  level: LogLevel,
  scope: string,
  message: string,
  fields?: LogFields,
): string {
  const extra = fields && Object.keys(fields).length > 0
    ? " " + JSON.stringify(redactFields(fields))
    : "";
  const text = redact(message).replace(/[\r\n]+/g, " ");
  return `${new Date(at).toISOString()}-engine-${level}-${scope}: ${text}${extra}`;
}

const encoder = new TextEncoder();

/** Creates the process-wide log sink. */
export function createLogSink(options: LogSinkOptions = {}): LogSink {
  const clock = options.clock ?? systemClock;
  const minRank = LEVEL_RANK[options.level ?? "INFO"];
  const retentionDays = options.retentionDays ?? 14;
  const toStderr = options.stderr ?? true;
  const dir = options.dir;
  const path = dir ? join(dir, "engine.log") : undefined;
  let file: Deno.FsFile | undefined;
  let fileDay = "";

  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

  function openFile(now: number): void {
    if (!dir || !path) return;
    Deno.mkdirSync(dir, { recursive: true });
    let existingDay = day(now);
    try {
      existingDay = day(Deno.statSync(path).mtime?.getTime() ?? now);
    } catch { /* no file yet */ }
    if (existingDay !== day(now)) rotate(existingDay, now);
    file = Deno.openSync(path, { append: true, create: true });
    fileDay = day(now);
  }

  function rotate(oldDay: string, now: number): void {
    if (!dir || !path) return;
    file?.close();
    file = undefined;
    try {
      Deno.renameSync(path, `${path}.${oldDay}`);
    } catch { /* nothing to rotate */ }
    const cutoff = day(now - retentionDays * 86_400_000);
    for (const entry of Deno.readDirSync(dir)) {
      const m = /^engine\.log\.(\d{4}-\d{2}-\d{2})$/.exec(entry.name);
      if (m && m[1]! < cutoff) {
        try {
          Deno.removeSync(join(dir, entry.name));
        } catch { /* raced with another process */ }
      }
    }
  }

  function write(level: LogLevel, scope: string, message: string, fields?: LogFields): void {
    if (LEVEL_RANK[level] < minRank) return;
    const now = clock.now();
    const line = formatLine(now, level, scope, message, fields) + "\n";
    const bytes = encoder.encode(line);
    if (toStderr) {
      try {
        Deno.stderr.writeSync(bytes);
      } catch { /* stderr closed */ }
    }
    if (!dir) return;
    try {
      if (!file) openFile(now);
      else if (day(now) !== fileDay) {
        rotate(fileDay, now);
        openFile(now);
      }
      file?.writeSync(bytes);
    } catch {
      // A full disk must not take the engine down; stderr still has the line.
    }
  }

  function logger(scope: string): Logger {
    return {
      debug: (m, f) => write("DEBUG", scope, m, f),
      info: (m, f) => write("INFO", scope, m, f),
      warn: (m, f) => write("WARNING", scope, m, f),
      error: (m, f) => write("ERROR", scope, m, f),
      child: (sub) => logger(`${scope}.${sub}`),
    };
  }

  return {
    logger,
    close() {
      file?.close();
      file = undefined;
    },
    path,
  };
}
