/**
 * JSON Lines files (`llm_decisions.jsonl`, `trade_experience.jsonl`): one JSON value per line, appended whole.
 *
 * Writing: every record is serialised first (a value that cannot be serialised throws before anything is written),
 * then written with ONE append of the complete line including its newline, through a descriptor opened for appending,
 * so a record is never split across writes and nothing already in the file is touched. If the file does not end with
 * a newline (a previous writer crashed mid-line), a newline is written in front of the record, so the damaged line
 * stays on its own and the new record is still a whole line.
 *
 * Reading: the file is read in chunks (constant memory besides the records kept), line by line. A line that is not
 * valid JSON (truncated by a crash, garbage) or that the caller's validator rejects is skipped and reported with its
 * line number; it never stops the read. Blank lines are ignored.
 */
import { closeSync, mkdirSync, openSync, readSync, fstatSync, appendFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/** A line that could not be read: its 1-based line number and why. */
export interface CorruptLine {
  line: number;
  error: string;
}

export interface JsonLinesResult<T> {
  /** the accepted records, in file order */
  records: T[];
  /** the skipped lines, in file order */
  corrupt: CorruptLine[];
}

/** One line as {@link iterateJsonLines} yields it: either the parsed value or the reason it was skipped. */
export type JsonLine = { line: number; value: unknown } | { line: number; error: string };

/** Bytes read per chunk. */
const CHUNK_BYTES = 1 << 20;

/**
 * Appends `value` as one JSON line to `file` (created with its folders when missing). Returns the number of bytes
 * written (the line, its newline and the separating newline when one was needed; see the module comment).
 *
 * Throws a TypeError when `value` cannot be serialised to JSON (undefined, a function, a BigInt, a cycle) and an
 * Error naming the file when it cannot be written; in both cases the file is left as it was, except that a write
 * failing part-way (disk full) can leave a partial line, which the next append puts on its own line.
 */
export function appendJsonLine(file: string, value: unknown): number {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`appendJsonLine ${file}: the record cannot be serialised to JSON (${errorText(err)})`);
  }
  if (json === undefined) {
    throw new TypeError(
      `appendJsonLine ${file}: the record is ${typeof value}, which has no JSON form; pass an object`,
    );
  }
  // JSON.stringify escapes control characters inside strings, so the text holds no raw newline.
  let fd: number;
  try {
    mkdirSync(dirname(file), { recursive: true });
    fd = openSync(file, 'a+');
  } catch (err) {
    throw new Error(`appendJsonLine: cannot open ${file} for appending (${errorText(err)})`);
  }
  try {
    const text = (endsWithoutNewline(fd) ? '\n' : '') + json + '\n';
    appendFileSync(fd, text, 'utf8');
    return Buffer.byteLength(text, 'utf8');
  } catch (err) {
    throw new Error(`appendJsonLine: cannot append to ${file} (${errorText(err)})`);
  } finally {
    closeSync(fd);
  }
}

/** True when the open file is not empty and its last byte is not a newline. */
function endsWithoutNewline(fd: number): boolean {
  const size = fstatSync(fd).size;
  if (size === 0) return false;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  return last[0] !== 0x0a;
}

/**
 * The lines of `file` one at a time (see the module comment): `{ line, value }` for a JSON line, `{ line, error }`
 * for a line that is not JSON. Blank lines are skipped; a trailing `\r` is ignored. A missing file yields nothing.
 * Throws an Error naming the file when it exists but cannot be read.
 */
export function* iterateJsonLines(file: string): Generator<JsonLine> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new Error(`readJsonLines: cannot open ${file} (${errorText(err)})`);
  }
  try {
    const buffer = Buffer.alloc(CHUNK_BYTES);
    const decoder = new StringDecoder('utf8');
    let carry = '';
    let lineNo = 0;
    for (;;) {
      const n = readSync(fd, buffer, 0, CHUNK_BYTES, null);
      const text = n > 0 ? carry + decoder.write(buffer.subarray(0, n)) : carry + decoder.end();
      const parts = text.split('\n');
      carry = n > 0 ? (parts.pop() ?? '') : '';
      for (const part of parts) {
        lineNo += 1;
        const parsed = parseLine(part, lineNo);
        if (parsed) yield parsed;
      }
      if (n === 0) return;
    }
  } finally {
    closeSync(fd);
  }
}

function parseLine(raw: string, line: number): JsonLine | null {
  const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  if (text.trim() === '') return null;
  try {
    return { line, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { line, error: `not valid JSON (${errorText(err)})` };
  }
}

/**
 * Reads every record of `file`, skipping and counting the lines that are not JSON or that `validate` rejects.
 * `validate` turns a parsed value (and its 1-based line number) into a record, or throws an Error whose message says
 * what is wrong with it (that message becomes the corrupt line's `error`). A missing file reads as empty (no records, no corrupt lines).
 */
export function readJsonLines<T = unknown>(
  file: string,
  validate: (value: unknown, line: number) => T = (value) => value as T,
): JsonLinesResult<T> {
  const records: T[] = [];
  const corrupt: CorruptLine[] = [];
  for (const item of iterateJsonLines(file)) {
    if ('error' in item) {
      corrupt.push({ line: item.line, error: item.error });
      continue;
    }
    try {
      records.push(validate(item.value, item.line));
    } catch (err) {
      corrupt.push({ line: item.line, error: errorText(err) });
    }
  }
  return { records, corrupt };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** How much of a file's end {@link jsonLineInTail} reads, bytes. */
export const TAIL_SEARCH_BYTES = 4 << 20;

/**
 * True when one of the complete lines in the last `maxBytes` of `file` contains `needle` and, parsed as JSON,
 * satisfies `match`. For finding out whether a record was already appended before an interrupted write (the writer
 * retries the append only when this is false). A missing file has no lines. The first line of the window is skipped
 * when the window does not start at the beginning of the file (it may be cut). Throws an Error naming the file when it
 * exists but cannot be read.
 */
export function jsonLineInTail(
  file: string,
  needle: string,
  match: (value: unknown) => boolean,
  maxBytes: number = TAIL_SEARCH_BYTES,
): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new Error(`jsonLineInTail: cannot open ${file} (${errorText(err)})`);
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - maxBytes);
    const buffer = Buffer.alloc(size - start);
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(fd, buffer, read, buffer.length - read, start + read);
      if (n === 0) break;
      read += n;
    }
    const lines = buffer.subarray(0, read).toString('utf8').split('\n');
    if (start > 0) lines.shift();
    for (const line of lines) {
      if (!line.includes(needle)) continue;
      try {
        if (match(JSON.parse(line) as unknown)) return true;
      } catch {
        // a damaged line is not the record
      }
    }
    return false;
  } catch (err) {
    throw new Error(`jsonLineInTail: cannot read ${file} (${errorText(err)})`);
  } finally {
    closeSync(fd);
  }
}
