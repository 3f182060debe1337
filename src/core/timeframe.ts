/**
 * Candle-time maths: timeframe lengths, candle open/close times, closed-candle filtering and aggregation.
 *
 * Pure: no I/O, no clock; safe to import from workflow code. Times are Unix milliseconds, UTC; a candle's `time`
 * is its OPEN time and its close time is `time + timeframeMs(tf)` (the next candle's open time).
 *
 * Alignment follows Binance: minute, hour and day candles are aligned to the Unix epoch (so `4h` candles open at
 * 00:00, 04:00, ... UTC and `1d` candles at 00:00 UTC); week candles open on Monday 00:00 UTC.
 */
import type { Candle } from './types';

const MINUTE_MS = 60_000;
const UNIT_MS: Record<string, number> = {
  m: MINUTE_MS,
  h: 60 * MINUTE_MS,
  d: 24 * 60 * MINUTE_MS,
  w: 7 * 24 * 60 * MINUTE_MS,
};
/** 1970-01-05T00:00:00Z, the first Monday after the epoch (the epoch itself was a Thursday). */
const FIRST_MONDAY_MS = 4 * UNIT_MS.d!;

interface ParsedTimeframe {
  ms: number;
  /** offset of the alignment grid from the epoch: 0, or FIRST_MONDAY_MS for week-based timeframes */
  anchor: number;
}

const parsedCache = new Map<string, ParsedTimeframe>();

function parseTimeframe(tf: string): ParsedTimeframe {
  const cached = parsedCache.get(tf);
  if (cached) return cached;
  const match = /^([1-9]\d*)([mhdw])$/.exec(tf);
  if (!match) {
    throw new Error(`invalid timeframe "${tf}": use a number followed by m, h, d or w, e.g. 30m`);
  }
  const unit = match[2]!;
  const ms = Number(match[1]) * UNIT_MS[unit]!;
  if (!Number.isSafeInteger(ms)) {
    throw new Error(`invalid timeframe "${tf}": too long; use at most a few years`);
  }
  const parsed: ParsedTimeframe = { ms, anchor: unit === 'w' ? FIRST_MONDAY_MS : 0 };
  parsedCache.set(tf, parsed);
  return parsed;
}

/**
 * Length of one candle of `tf` in milliseconds.
 * @param tf `<n>m`, `<n>h`, `<n>d` or `<n>w` with n a positive integer, e.g. `30m`, `4h`, `1d`, `1w`.
 * @throws Error when `tf` does not have that shape.
 */
export function timeframeMs(tf: string): number {
  return parseTimeframe(tf).ms;
}

/**
 * Open time (Unix ms) of the `tf` candle that contains instant `t` (a candle spans [open, open + length)).
 * An instant exactly on a boundary belongs to the candle that opens there.
 */
export function candleOpenTime(t: number, tf: string): number {
  return gridFloor(t, parseTimeframe(tf));
}

/** The latest grid point of `p` at or before `t`. */
function gridFloor(t: number, p: ParsedTimeframe): number {
  return Math.floor((t - p.anchor) / p.ms) * p.ms + p.anchor;
}

/** Close time (Unix ms) of the `tf` candle that contains instant `t`: its open time plus the timeframe length. */
export function candleCloseTime(t: number, tf: string): number {
  return candleOpenTime(t, tf) + parseTimeframe(tf).ms;
}

/**
 * The first `tf` candle close time strictly after `t` (Unix ms). When `t` is itself a close time, the result is the
 * following one (`t + length`), so a loop `t = nextCloseAfter(t, tf)` visits every close once.
 */
export function nextCloseAfter(t: number, tf: string): number {
  return candleCloseTime(t, tf);
}

/**
 * Open time (Unix ms) of the latest `tf` candle that has closed at `asOf`, i.e. whose close time is <= `asOf`.
 * At `asOf` exactly on a boundary, the candle that closes at `asOf` counts as closed.
 */
export function lastClosedCandleOpen(asOf: number, tf: string): number {
  return candleOpenTime(asOf, tf) - parseTimeframe(tf).ms;
}

/**
 * Number of leading candles of `candles` (sorted by open time, ascending) whose close time (`time + ms`) is <= `asOf`.
 * Binary search: O(log n).
 */
export function closedCount(candles: readonly Candle[], ms: number, asOf: number): number {
  // Candles close in open-time order, so the closed ones form a prefix; find its length.
  const lastOpen = asOf - ms;
  let lo = 0;
  let hi = candles.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (candles[mid]!.time <= lastOpen) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The candles of `candles` (sorted by open time, ascending) that have closed at `asOf`: drops every candle whose
 * close time (`time + timeframeMs(tf)`) is after `asOf` — the still-forming candle and anything later.
 * Returns a new array (a slice; the candle objects are shared). O(log n) search plus the copy.
 */
export function closedCandles(candles: readonly Candle[], tf: string, asOf: number): Candle[] {
  return candles.slice(0, closedCount(candles, parseTimeframe(tf).ms, asOf));
}

/**
 * Aggregates `fromTf` candles into `toTf` candles: open of the first, highest high, lowest low, close of the last,
 * sum of volumes. Only COMPLETE buckets are emitted (every constituent `fromTf` candle present), so the output
 * matches the exchange's own `toTf` candles; a partial bucket at either end or around a gap is dropped.
 *
 * Volumes are summed in scaled integers at the decimal precision of the inputs, so the sum is the exact decimal sum
 * (e.g. 9251.867 + 6776.485 = 16028.352, not 16028.351999999999) like the exchange's figure.
 *
 * @param candles `fromTf` candles sorted by open time, ascending, unique, each aligned to the `fromTf` grid.
 * @throws Error when `toTf` is not a whole multiple of `fromTf`, or when the input is unsorted or misaligned.
 */
export function aggregateCandles(candles: readonly Candle[], fromTf: string, toTf: string): Candle[] {
  const from = parseTimeframe(fromTf);
  const to = parseTimeframe(toTf);
  if (to.ms % from.ms !== 0) {
    throw new Error(`cannot aggregate ${fromTf} candles into ${toTf}: ${toTf} is not a whole multiple of ${fromTf}`);
  }
  if ((to.anchor - from.anchor) % from.ms !== 0) {
    throw new Error(
      `cannot aggregate ${fromTf} candles into ${toTf}: ${toTf} candles open on Mondays, which is not on the ${fromTf} grid`,
    );
  }
  const perBucket = to.ms / from.ms;
  const out: Candle[] = [];
  let bucketOpen = Number.NaN;
  let count = 0;
  let open = 0;
  let high = 0;
  let low = 0;
  let close = 0;
  let volumes: number[] = [];
  let prevTime = Number.NEGATIVE_INFINITY;

  const flush = (): void => {
    if (count === perBucket) {
      out.push({ time: bucketOpen, open, high, low, close, volume: exactDecimalSum(volumes) });
    }
  };

  for (let i = 0; i < candles.length; i++) {
    const c = candles[i]!;
    if (!(c.time > prevTime)) {
      throw new Error(
        `cannot aggregate ${fromTf} candles: candle ${i} (time ${c.time}) is not after the previous one (${prevTime}); sort and de-duplicate the input`,
      );
    }
    if (gridFloor(c.time, from) !== c.time) {
      throw new Error(
        `cannot aggregate ${fromTf} candles: candle ${i} (time ${c.time}) does not open on a ${fromTf} boundary; is the input really ${fromTf}?`,
      );
    }
    prevTime = c.time;
    const b = gridFloor(c.time, to);
    if (b !== bucketOpen) {
      flush();
      bucketOpen = b;
      count = 0;
      open = c.open;
      high = c.high;
      low = c.low;
      volumes = [];
    }
    // Sorted, unique, aligned input: `count` reaches `perBucket` only when every constituent candle is present.
    count++;
    if (c.high > high) high = c.high;
    if (c.low < low) low = c.low;
    close = c.close;
    volumes.push(c.volume);
  }
  flush();
  return out;
}

/** Number of digits after the decimal point in the shortest round-trip representation of `v`. */
function decimals(v: number): number {
  const s = String(v);
  const e = s.indexOf('e');
  if (e >= 0) {
    // e.g. 1.5e-7: digits of the mantissa after the point, minus the exponent
    const mantissa = s.slice(0, e);
    const dot = mantissa.indexOf('.');
    const mantissaDecimals = dot >= 0 ? mantissa.length - dot - 1 : 0;
    return Math.max(0, mantissaDecimals - Number(s.slice(e + 1)));
  }
  const dot = s.indexOf('.');
  return dot >= 0 ? s.length - dot - 1 : 0;
}

/**
 * Sum of decimal numbers without binary rounding drift: scales by 10^d (d = most decimals among the terms) and adds
 * integers. Falls back to a plain float sum when the scaled terms would not be exact integers (more than 15
 * significant digits).
 */
function exactDecimalSum(values: readonly number[]): number {
  const floatSum = (): number => values.reduce((a, b) => a + b, 0);
  let d = 0;
  for (const v of values) d = Math.max(d, decimals(v));
  if (d > 15) return floatSum();
  const scale = 10 ** d;
  let scaledSum = 0;
  for (const v of values) {
    const scaled = Math.round(v * scale);
    if (!Number.isSafeInteger(scaled)) return floatSum();
    scaledSum += scaled;
  }
  return Number.isSafeInteger(scaledSum) ? scaledSum / scale : floatSum();
}
