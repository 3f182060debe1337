/**
 * The process's one structured logger: the worker, the activities and the CLI's long-running verbs log through it,
 * and it is installed as Temporal's Runtime logger, so SDK, workflow (`log` from @temporalio/workflow) and activity
 * messages come out in the same format.
 *
 * Output, one record per line on stderr (stdout stays free for command output):
 * - `json`:   `{"time":"2025-06-10T00:00:00.000Z","level":"info","message":"worker started","taskQueue":"llm-trader"}`
 * - `pretty`: `00:00:00.000 INFO  worker started taskQueue=llm-trader`
 * `auto` picks `pretty` when the stream is a terminal and `json` otherwise (files, containers, log collectors).
 *
 * Secrets: every configured secret string (8 characters or longer, see src/core/redact.ts) is replaced by `***` in
 * the message and in every metadata value and key before anything is written.
 */
import { Redactor } from '../core/redact';

export type LogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
export type LogFormat = 'json' | 'pretty' | 'auto';

export const LOG_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty', 'auto'];

/** What the rest of the project logs through. */
export interface Logger {
  trace(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

/**
 * A {@link Logger} that also has Temporal's `log(level, message, meta)`, so it satisfies @temporalio/common's `Logger`
 * and can be passed to `Runtime.install({ logger })` and `bundleWorkflowCode({ logger })`.
 */
export interface StructuredLogger extends Logger {
  readonly level: LogLevel;
  // Temporal's metadata type is Record<string | symbol, any>; symbol keys (its timestamp) are read, never written.
  log(level: LogLevel, message: string, meta?: Record<string | symbol, unknown>): void;
}

/** Where records go: anything with `write(text)`; `isTTY` decides the `auto` format. */
export interface LogStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface LoggerOptions {
  /** records below this level are dropped; default INFO */
  level?: LogLevel;
  /** default `auto` */
  format?: LogFormat;
  /** strings to hide (API keys, secrets); values shorter than 8 characters are ignored */
  secrets?: readonly string[];
  /** default process.stderr */
  stream?: LogStream;
  /** clock for the `time` field, Unix ms; default Date.now */
  now?: () => number;
}

/** Temporal puts the original time of a forwarded Core log record under this symbol (bigint nanoseconds). */
const LOG_TIMESTAMP = Symbol.for('log_timestamp');

const SEVERITY: Record<LogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };

/** Nesting beyond this depth is written as "[nested]": log metadata is for a few fields, not whole documents. */
const MAX_DEPTH = 6;

/**
 * Parses a level name, any case (`info`, `WARN`). Returns null for anything else, so the caller can say what is
 * allowed.
 */
export function parseLogLevel(text: string): LogLevel | null {
  const upper = text.trim().toUpperCase();
  return (LOG_LEVELS as readonly string[]).includes(upper) ? (upper as LogLevel) : null;
}

/** Creates a logger (see the module comment for the formats). */
export function createLogger(options: LoggerOptions = {}): StructuredLogger {
  const level = options.level ?? 'INFO';
  const stream: LogStream = options.stream ?? process.stderr;
  const format =
    options.format === 'auto' || options.format === undefined ? (stream.isTTY ? 'pretty' : 'json') : options.format;
  const redactor = new Redactor(options.secrets ?? []);
  const now = options.now ?? Date.now;
  const threshold = SEVERITY[level];

  const log = (lvl: LogLevel, message: string, meta?: Record<string | symbol, unknown>): void => {
    if (SEVERITY[lvl] < threshold) return;
    const stamp = meta?.[LOG_TIMESTAMP];
    const time = typeof stamp === 'bigint' ? Number(stamp / 1_000_000n) : now();
    const fields = meta === undefined ? {} : (toJsonSafe(meta, 0, new WeakSet()) as Record<string, unknown>);
    const safeMessage = redactor.redact(String(message));
    const safeFields = redactor.redactDeep(fields);
    const line =
      format === 'json' ? jsonLine(time, lvl, safeMessage, safeFields) : prettyLine(time, lvl, safeMessage, safeFields);
    stream.write(line);
  };

  return {
    level,
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}

function jsonLine(time: number, level: LogLevel, message: string, fields: Record<string, unknown>): string {
  const record: Record<string, unknown> = { time: new Date(time).toISOString(), level: level.toLowerCase(), message };
  // the record's own keys come first and win over metadata keys of the same name
  for (const [key, value] of Object.entries(fields)) if (!(key in record)) record[key] = value;
  return `${JSON.stringify(record)}\n`;
}

function prettyLine(time: number, level: LogLevel, message: string, fields: Record<string, unknown>): string {
  const clock = new Date(time).toISOString().slice(11, 23);
  const parts = Object.entries(fields).map(
    ([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`,
  );
  return `${clock} ${level.padEnd(5)} ${message}${parts.length > 0 ? ` ${parts.join(' ')}` : ''}\n`;
}

/**
 * A copy of `value` that JSON.stringify can write and the redactor can walk: errors become
 * `{ name, message, stack, cause }`, bigints strings, dates ISO strings, functions and symbols are dropped, and cycles
 * and over-deep nesting are cut with a marker.
 */
function toJsonSafe(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'undefined' || typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[nested]';
  seen.add(value);
  try {
    if (value instanceof Error) {
      const out: Record<string, unknown> = { name: value.name, message: value.message };
      if (value.stack !== undefined) out.stack = value.stack;
      if (value.cause !== undefined) out.cause = toJsonSafe(value.cause, depth + 1, seen);
      return out;
    }
    if (Array.isArray(value)) return value.map((item) => toJsonSafe(item, depth + 1, seen) ?? null);
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const safe = toJsonSafe(item, depth + 1, seen);
      if (safe !== undefined) out[key] = safe;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}
