/**
 * Readers for recorded market data in the layout of ../shared/data (freqtrade-style file names):
 * - candles: `<BASE>_<QUOTE>_<SETTLE>-<tf>.csv[.gz]`, header `timestamp,open,high,low,close,volume`, timestamp = candle
 *   OPEN time in Unix ms, rows sorted and unique;
 * - funding: `<BASE>_<QUOTE>_<SETTLE>-funding-8h.csv[.gz]`, header `timestamp,funding_rate`.
 * Files ending in `.gz` are gunzipped. Every error names the file and the 1-based line (the header is line 1).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { FundingEvent } from '../core/snapshot';
import type { Candle } from '../core/types';

const gunzipAsync = promisify(gunzip);

const CANDLE_HEADER = 'timestamp,open,high,low,close,volume';
const FUNDING_HEADER = 'timestamp,funding_rate';
const MINUTE_MS = 60_000;

/** A row that could not be used: where it is and what is wrong with it. `line` is 1-based; the header is line 1. */
export interface MalformedRow {
  file: string;
  line: number;
  message: string;
}

/**
 * Path of a recorded data file: `dataFile('data', 'BTC/USDT:USDT', '30m')` → `data/BTC_USDT_USDT-30m.csv.gz`.
 * @param kind a timeframe (`30m`, `1h`, `1d`) or a series name such as `funding-8h` or `mark-8h`
 * @throws Error when `pair` is not `BASE/QUOTE` or `BASE/QUOTE:SETTLE`, or `kind` has characters other than
 *   letters, digits and `-`.
 */
export function dataFile(dir: string, pair: string, kind: string): string {
  if (!/^[A-Za-z0-9]+\/[A-Za-z0-9]+(:[A-Za-z0-9]+)?$/.test(pair)) {
    throw new Error(`invalid pair "${pair}": expected BASE/QUOTE:SETTLE, e.g. BTC/USDT:USDT`);
  }
  if (!/^[A-Za-z0-9-]+$/.test(kind)) {
    throw new Error(`invalid data file kind "${kind}": expected a timeframe such as 30m, or funding-8h`);
  }
  return join(dir, `${pair.replace(/[/:]/g, '_')}-${kind}.csv.gz`);
}

/** Path of the funding-rate file of `pair`: `<dir>/<BASE>_<QUOTE>_<SETTLE>-funding-8h.csv.gz`. */
export function fundingFile(dir: string, pair: string): string {
  return dataFile(dir, pair, 'funding-8h');
}

/**
 * Reads a candle CSV (`.csv` or `.csv.gz`). Strict: the first malformed row throws.
 * @returns candles sorted by open time (as in the file, which must already be sorted and unique)
 * @throws Error `<file>:<line>: <problem>` on a missing file, a wrong header or a malformed row
 */
export async function readCandleCsv(file: string): Promise<Candle[]> {
  const candles: Candle[] = [];
  await parseRows(file, CANDLE_HEADER, parseCandleRow, candles, (problem) => {
    throw new Error(`${problem.file}:${problem.line}: ${problem.message}`);
  });
  return candles;
}

/**
 * Reads a candle CSV like {@link readCandleCsv} but skips malformed rows (wrong field count, non-numeric or
 * non-positive prices, high/low inconsistent with open/close, negative volume, timestamp not after the previous good
 * row) and reports each one. A missing file or a wrong header still throws: nothing can be read then.
 */
export async function readCandleCsvLenient(file: string): Promise<{ candles: Candle[]; problems: MalformedRow[] }> {
  const candles: Candle[] = [];
  const problems: MalformedRow[] = [];
  await parseRows(file, CANDLE_HEADER, parseCandleRow, candles, (problem) => problems.push(problem));
  return { candles, problems };
}

/**
 * Reads a funding-rate CSV (`timestamp,funding_rate`, `.csv` or `.csv.gz`). Timestamps are rounded DOWN to the
 * minute, because the exchange reports them a few milliseconds past the funding hour (e.g. 1747872000001 →
 * 1747872000000). Strict: the first malformed row throws `<file>:<line>: <problem>`.
 * @returns events sorted by time, `rate` as a fraction per funding interval (0.0001 = 0.01 %)
 */
export async function readFundingCsv(file: string): Promise<FundingEvent[]> {
  const events: FundingEvent[] = [];
  await parseRows(file, FUNDING_HEADER, parseFundingRow, events, (problem) => {
    throw new Error(`${problem.file}:${problem.line}: ${problem.message}`);
  });
  return events;
}

/** Like `readFundingCsv`, but a malformed row is reported (file and line) and skipped; the rest is read. */
export async function readFundingCsvLenient(
  file: string,
): Promise<{ events: FundingEvent[]; problems: MalformedRow[] }> {
  const events: FundingEvent[] = [];
  const problems: MalformedRow[] = [];
  await parseRows(file, FUNDING_HEADER, parseFundingRow, events, (problem) => problems.push(problem));
  return { events, problems };
}

/** Parses one data row; returns the value or a message saying what is wrong. `prev` is the last accepted row. */
type RowParser<T extends { time: number }> = (fields: string[], prev: T | undefined) => T | string;

async function readText(file: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? 'no such file; check the data directory and the pair/timeframe' : String(err);
    throw new Error(`${file}: cannot read: ${hint}`, { cause: err });
  }
  if (!file.endsWith('.gz')) return bytes.toString('utf8');
  try {
    return (await gunzipAsync(bytes)).toString('utf8');
  } catch (err) {
    throw new Error(`${file}: not a valid gzip file (${String(err)}); is it really compressed?`, { cause: err });
  }
}

async function parseRows<T extends { time: number }>(
  file: string,
  header: string,
  parseRow: RowParser<T>,
  out: T[],
  onProblem: (problem: MalformedRow) => void,
): Promise<void> {
  const text = await readText(file);
  const lines = text.split('\n');
  const first = (lines[0] ?? '').replace(/^\uFEFF/, '').trim();
  if (first !== header) {
    throw new Error(`${file}:1: expected the header "${header}", got "${first.slice(0, 80)}"`);
  }
  let prev: T | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const result = parseRow(line.split(','), prev);
    if (typeof result === 'string') {
      onProblem({ file, line: i + 1, message: result });
    } else {
      out.push(result);
      prev = result;
    }
  }
}

/** Number(field) for a non-empty numeric field (Number('') would be 0), else NaN. */
function num(field: string): number {
  return field.trim() === '' ? Number.NaN : Number(field);
}

function parseTimestamp(field: string): number | string {
  const time = num(field);
  if (!Number.isSafeInteger(time) || time < 0) {
    return `timestamp "${field}" is not a non-negative integer of Unix milliseconds`;
  }
  return time;
}

function isPositivePrice(v: number): boolean {
  return v > 0 && Number.isFinite(v);
}

const parseCandleRow: RowParser<Candle> = (fields, prev) => {
  if (fields.length !== 6) {
    return `expected 6 fields (${CANDLE_HEADER}), got ${fields.length}`;
  }
  const time = parseTimestamp(fields[0]!);
  if (typeof time === 'string') return time;
  // field by field, without intermediate arrays: this runs once per recorded candle
  const open = num(fields[1]!);
  if (!isPositivePrice(open)) return `open "${fields[1]}" is not a positive number`;
  const high = num(fields[2]!);
  if (!isPositivePrice(high)) return `high "${fields[2]}" is not a positive number`;
  const low = num(fields[3]!);
  if (!isPositivePrice(low)) return `low "${fields[3]}" is not a positive number`;
  const close = num(fields[4]!);
  if (!isPositivePrice(close)) return `close "${fields[4]}" is not a positive number`;
  const volume = num(fields[5]!);
  if (!(volume >= 0) || !Number.isFinite(volume)) return `volume "${fields[5]}" is not a number >= 0`;
  if (high < Math.max(open, close, low)) return `high ${high} is below open, close or low`;
  if (low > Math.min(open, close)) return `low ${low} is above open or close`;
  if (prev && time <= prev.time) {
    return `timestamp ${time} is not after the previous row's ${prev.time}: rows must be sorted by time without duplicates`;
  }
  return { time, open, high, low, close, volume };
};

const parseFundingRow: RowParser<FundingEvent> = (fields, prev) => {
  if (fields.length !== 2) return `expected 2 fields (${FUNDING_HEADER}), got ${fields.length}`;
  const raw = parseTimestamp(fields[0]!);
  if (typeof raw === 'string') return raw;
  const rate = num(fields[1]!);
  if (!Number.isFinite(rate)) return `funding_rate "${fields[1]}" is not a number`;
  const time = Math.floor(raw / MINUTE_MS) * MINUTE_MS;
  if (prev && time <= prev.time) {
    return `timestamp ${raw} (minute ${time}) is not after the previous row's minute ${prev.time}: rows must be sorted, one per funding event`;
  }
  return { time, rate };
};
