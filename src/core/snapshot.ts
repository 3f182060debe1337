/**
 * The compact MarketSnapshot the decision cycle reads: per timeframe, the last closed candle's close, its change,
 * every indicator's latest value, short series tails and (main timeframe only) a few raw candles.
 *
 * Two ways to build one, with identical results:
 * - {@link buildSnapshot}: from candle arrays (e.g. just fetched from the exchange). Drops candles not closed at
 *   `asOf`, computes the indicators over the closed ones. O(history) per call.
 * - {@link buildPairSeriesCache} once per pair over the whole recorded history, then {@link snapshotAt} per step:
 *   binary search for the last closed candle and slices of precomputed series. O(tail + log history) per call, no
 *   indicator recomputation. Honest because every indicator is causal (value at i depends on candles[0..i] only).
 *
 * Either way a snapshot never contains a candle (or an indicator value derived from one) whose close time is after
 * the snapshot's time.
 */
import { computeIndicatorSeries, indicatorsAt, valuesBetween, type IndicatorSeries } from './indicators';
import { candleOpenTime, closedCount, lastClosedCandleOpen, timeframeMs } from './timeframe';
import type { Candle, FundingInfo, MarketSnapshot, SeriesTails, TimeframeSnapshot } from './types';

/** One settled funding payment: `time` in Unix ms (rounded down to the minute), `rate` per funding interval. */
export interface FundingEvent {
  time: number;
  rate: number;
}

export interface SnapshotOptions {
  /**
   * number of entries in each series tail (close, volume, rsi14, ...); integer >= 0. 0: no tails (every tail is one
   * shared, frozen empty array), for a reader that needs none, such as the baseline policy in a backtest.
   */
  tailLength: number;
  /** number of raw candles of the MAIN timeframe to include (integer >= 0); informative timeframes get none */
  rawCandles: number;
}

export interface SnapshotInput extends SnapshotOptions {
  pair: string;
  /** decision instant, Unix ms; candles closing after it are ignored */
  asOf: number;
  mainTimeframe: string;
  /**
   * Candles per timeframe (key = timeframe string), each sorted by open time, oldest first. May include candles not
   * yet closed at `asOf`; they are dropped. Must contain `mainTimeframe`.
   */
  candles: Readonly<Record<string, readonly Candle[]>>;
  /** latest funding known at `asOf`, passed through as is (see {@link fundingAt} for a recorded history) */
  funding: FundingInfo;
}

/** Candles of one pair × timeframe with their indicator series, computed once. Treat as read-only. */
export interface TimeframeSeries {
  timeframe: string;
  timeframeMs: number;
  /** the input candles, frozen (frozen inputs are shared, others copied), oldest first */
  candles: readonly Candle[];
  /** the candles' open times (for searches that should not visit every candle object) */
  time: Float64Array;
  close: Float64Array;
  volume: Float64Array;
  /** NaN = missing; see indicators.ts */
  indicators: IndicatorSeries;
}

/** Everything {@link snapshotAt} needs for one pair, precomputed over the whole history. */
export interface PairSeriesCache {
  pair: string;
  mainTimeframe: string;
  /** the main timeframe first, then the informative ones in input order */
  timeframes: readonly TimeframeSeries[];
  /** funding events sorted by time */
  funding: readonly FundingEvent[];
  /** the funding events' times (for searches that should not visit every event object) */
  fundingTime: Float64Array;
}

/**
 * Freezes `candles` (an already frozen candle is shared, not copied: the recorded market source freezes what it
 * loads, so a backtest holds each candle once), extracts closes and volumes and computes every indicator series once.
 * @throws Error when the candles are not strictly increasing in time or not aligned to the `timeframe` grid.
 */
export function buildTimeframeSeries(timeframe: string, candles: readonly Candle[]): TimeframeSeries {
  const ms = timeframeMs(timeframe);
  const n = candles.length;
  const copies = new Array<Candle>(n);
  const time = new Float64Array(n);
  const close = new Float64Array(n);
  const volume = new Float64Array(n);
  let prevTime = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const c = candles[i]!;
    if (!(c.time > prevTime)) {
      throw new Error(
        `${timeframe} candle ${i} (time ${c.time}) is not after the previous one (${prevTime}): candles must be sorted by open time without duplicates`,
      );
    }
    if (candleOpenTime(c.time, timeframe) !== c.time) {
      throw new Error(
        `${timeframe} candle ${i} (time ${c.time}) does not open on a ${timeframe} boundary: are these really ${timeframe} candles?`,
      );
    }
    prevTime = c.time;
    copies[i] = Object.isFrozen(c)
      ? c
      : Object.freeze({ time: c.time, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume });
    time[i] = c.time;
    close[i] = c.close;
    volume[i] = c.volume;
  }
  return {
    timeframe,
    timeframeMs: ms,
    candles: copies,
    time,
    close,
    volume,
    indicators: computeIndicatorSeries(copies),
  };
}

/**
 * Precomputes the series of every timeframe of one pair over its whole history, for {@link snapshotAt}.
 * @param input.candles candles per timeframe (must contain `mainTimeframe`), each sorted by open time
 * @param input.funding funding events (any order; sorted here)
 */
export function buildPairSeriesCache(input: {
  pair: string;
  mainTimeframe: string;
  candles: Readonly<Record<string, readonly Candle[]>>;
  funding: readonly FundingEvent[];
}): PairSeriesCache {
  const timeframes: TimeframeSeries[] = [];
  for (const tf of orderedTimeframes(input.pair, input.mainTimeframe, input.candles)) {
    timeframes.push(buildTimeframeSeries(tf, input.candles[tf]!));
  }
  const funding = [...input.funding].sort((a, b) => a.time - b.time);
  const fundingTime = Float64Array.from(funding, (e) => e.time);
  return { pair: input.pair, mainTimeframe: input.mainTimeframe, timeframes, funding, fundingTime };
}

/**
 * The latest funding event at or before `t` (Unix ms), or `{ rate: null, time: null }` when there is none.
 * @param events sorted by time, ascending. O(log n).
 */
export function fundingAt(events: readonly FundingEvent[], t: number): FundingInfo {
  const e = events[upperBoundByTime(events, t) - 1];
  return e ? { rate: e.rate, time: e.time } : { rate: null, time: null };
}

/** Index of the first element whose `time` is after `t` (`items` sorted by time, ascending). O(log n). */
export function upperBoundByTime(items: readonly { time: number }[], t: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid]!.time <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Fast path: the snapshot of `cache`'s pair at `asOf` (Unix ms), equal to what {@link buildSnapshot} returns for
 * the same candles. The snapshot time is the close time of the last main-timeframe candle closed at `asOf`;
 * informative timeframes include only candles closed by then and are omitted when none has closed.
 * Cost: a binary search per timeframe plus O(tailLength + rawCandles) copying; no indicator is recomputed.
 * @throws Error when no main-timeframe candle has closed at `asOf`, or the options are invalid.
 */
export function snapshotAt(cache: PairSeriesCache, asOf: number, opts: SnapshotOptions): MarketSnapshot {
  checkOptions(opts);
  const main = cache.timeframes[0]!;
  const mainCount = closedCount(main.candles, main.timeframeMs, asOf);
  if (mainCount === 0) throw noClosedCandle(cache.pair, main.timeframe, asOf, main.candles);
  const snapshot = mainSnapshotAt(cache, mainCount, opts);
  for (let k = 1; k < cache.timeframes.length; k++) {
    const tf = cache.timeframes[k]!;
    const count = closedCount(tf.candles, tf.timeframeMs, snapshot.asOf);
    if (count > 0) snapshot.timeframes[tf.timeframe] = timeframeSnapshot(tf, count - 1, opts.tailLength, 0);
  }
  return snapshot;
}

/** Number of open times in `time` (ascending) that are <= `lastOpen`. */
function countUpTo(time: Float64Array, lastOpen: number): number {
  let lo = 0;
  let hi = time.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (time[mid]! <= lastOpen) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Whether a snapshot at `asOf` would miss its latest candle: the main candle closing exactly at `asOf`, or an
 * informative timeframe's candle that closed last at `asOf` (a timeframe with no closed candle yet is not missing:
 * the snapshot leaves it out). Returns the first such timeframe and whether the data has ended there (no later
 * candle of it is recorded: past the end of the data, rather than a gap); null when every latest candle is recorded.
 * No decision may be made on such a snapshot.
 */
export function missingLatestCandle(
  cache: PairSeriesCache,
  asOf: number,
): { timeframe: string; dataEnded: boolean } | null {
  const [main, ...informative] = cache.timeframes;
  const n = countUpTo(main!.time, asOf - main!.timeframeMs);
  if (n === 0 || main!.time[n - 1]! + main!.timeframeMs !== asOf) {
    return { timeframe: main!.timeframe, dataEnded: n === main!.time.length };
  }
  for (const series of informative) {
    const count = countUpTo(series.time, asOf - series.timeframeMs);
    if (count > 0 && series.time[count - 1]! !== lastClosedCandleOpen(asOf, series.timeframe)) {
      return { timeframe: series.timeframe, dataEnded: count === series.time.length };
    }
  }
  return null;
}

/**
 * The snapshot after the first `mainCount` main-timeframe candles of `cache` have closed, with the main timeframe
 * and funding only: for a caller that tracks the closed count itself (a backtest walking forward) and adds the
 * informative timeframes (`timeframes[tf] = timeframeSnapshotAt(series, count, ...)`) in `cache` order, as
 * {@link snapshotAt} does. `opts` must be valid (see {@link snapshotAt}, which checks them).
 * @throws RangeError when `mainCount` is not in 1..(number of main candles)
 */
export function mainSnapshotAt(cache: PairSeriesCache, mainCount: number, opts: SnapshotOptions): MarketSnapshot {
  const main = cache.timeframes[0]!;
  if (!(mainCount >= 1 && mainCount <= main.candles.length)) {
    throw new RangeError(
      `${cache.pair}: ${mainCount} closed ${main.timeframe} candles asked for, ${main.candles.length} recorded`,
    );
  }
  const snapshotTime = main.time[mainCount - 1]! + main.timeframeMs;
  const timeframes: Record<string, TimeframeSnapshot> = {};
  timeframes[main.timeframe] = timeframeSnapshot(main, mainCount - 1, opts.tailLength, opts.rawCandles);
  return {
    pair: cache.pair,
    asOf: snapshotTime,
    mainTimeframe: main.timeframe,
    price: main.close[mainCount - 1]!,
    timeframes,
    funding: fundingOf(cache, snapshotTime),
  };
}

/** {@link fundingAt} over a cache's funding events, searching their time array. */
function fundingOf(cache: PairSeriesCache, t: number): FundingInfo {
  const time = cache.fundingTime;
  let lo = 0;
  let hi = time.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (time[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  const e = cache.funding[lo - 1];
  return e ? { rate: e.rate, time: e.time } : { rate: null, time: null };
}

/**
 * The snapshot of one timeframe after its first `count` candles (>= 1) have closed, with `rawCandles` raw candles
 * (informative timeframes get 0).
 */
export function timeframeSnapshotAt(
  series: TimeframeSeries,
  count: number,
  tailLength: number,
  rawCandles: number,
): TimeframeSnapshot {
  return timeframeSnapshot(series, count - 1, tailLength, rawCandles);
}

/**
 * Slow path: builds the snapshot from candle arrays, computing the indicators over the candles closed at `asOf`.
 * The snapshot time (`asOf` of the result) is the close time of the last main-timeframe candle closed at `asOf`
 * (equal to `asOf` when `asOf` is a main-timeframe close and that candle is present; earlier when it is missing,
 * which the caller can detect). Informative timeframes are cut at that same time and omitted when no candle of
 * theirs has closed by then; they carry no raw candles.
 * @throws Error when `mainTimeframe` has no candles closed at `asOf`, or the options or candles are invalid.
 */
export function buildSnapshot(input: SnapshotInput): MarketSnapshot {
  checkOptions(input);
  const order = orderedTimeframes(input.pair, input.mainTimeframe, input.candles);
  const mainCandles = input.candles[input.mainTimeframe]!;
  const mainMs = timeframeMs(input.mainTimeframe);
  const mainCount = closedCount(mainCandles, mainMs, input.asOf);
  if (mainCount === 0) throw noClosedCandle(input.pair, input.mainTimeframe, input.asOf, mainCandles);
  const snapshotTime = mainCandles[mainCount - 1]!.time + mainMs;

  const mainSeries = buildTimeframeSeries(input.mainTimeframe, mainCandles.slice(0, mainCount));
  const timeframes: Record<string, TimeframeSnapshot> = {};
  timeframes[input.mainTimeframe] = timeframeSnapshot(mainSeries, mainCount - 1, input.tailLength, input.rawCandles);
  for (const tf of order.slice(1)) {
    const candles = input.candles[tf]!;
    const count = closedCount(candles, timeframeMs(tf), snapshotTime);
    if (count === 0) continue;
    const series = buildTimeframeSeries(tf, candles.slice(0, count));
    timeframes[tf] = timeframeSnapshot(series, count - 1, input.tailLength, 0);
  }
  return {
    pair: input.pair,
    asOf: snapshotTime,
    mainTimeframe: input.mainTimeframe,
    price: mainSeries.close[mainCount - 1]!,
    timeframes,
    funding: { rate: input.funding.rate, time: input.funding.time },
  };
}

const EMPTY_TAIL = Object.freeze([]) as unknown as number[];

/** The raw candles of a snapshot built with `rawCount` 0 (shared: snapshots are read-only everywhere). */
const NO_CANDLES = Object.freeze([]) as unknown as Candle[];

/** The tails of a snapshot built with `tailLength` 0. */
const NO_TAILS: SeriesTails = Object.freeze({
  close: EMPTY_TAIL,
  volume: EMPTY_TAIL,
  rsi14: EMPTY_TAIL,
  macd: EMPTY_TAIL,
  macdHist: EMPTY_TAIL,
  ema20: EMPTY_TAIL,
  ema50: EMPTY_TAIL,
  adx14: EMPTY_TAIL,
});

/** Snapshot of one timeframe at candle index `last` (the last closed candle). O(tailLength + rawCount). */
function timeframeSnapshot(
  series: TimeframeSeries,
  last: number,
  tailLength: number,
  rawCount: number,
): TimeframeSnapshot {
  const end = last + 1;
  const start = end > tailLength ? end - tailLength : 0;
  const ind = series.indicators;
  const tails: SeriesTails =
    tailLength === 0
      ? NO_TAILS
      : {
          close: numbersBetween(series.close, start, end),
          volume: numbersBetween(series.volume, start, end),
          rsi14: valuesBetween(ind, 'rsi14', start, end),
          macd: valuesBetween(ind, 'macd', start, end),
          macdHist: valuesBetween(ind, 'macdHist', start, end),
          ema20: valuesBetween(ind, 'ema20', start, end),
          ema50: valuesBetween(ind, 'ema50', start, end),
          adx14: valuesBetween(ind, 'adx14', start, end),
        };
  const close = series.close[last]!;
  const prev = last > 0 ? series.close[last - 1]! : 0;
  return {
    timeframe: series.timeframe,
    lastCandleTime: series.time[last]!,
    close,
    changePct: prev > 0 ? ((close - prev) / prev) * 100 : null,
    indicators: indicatorsAt(series.indicators, last),
    tails,
    candles: rawCount > 0 ? series.candles.slice(end > rawCount ? end - rawCount : 0, end) : NO_CANDLES,
  };
}

/** `values[start..end)` as an array (closes and volumes are never missing). */
function numbersBetween(values: Float64Array, start: number, end: number): number[] {
  const out = new Array<number>(end - start);
  for (let i = start; i < end; i++) out[i - start] = values[i]!;
  return out;
}

/** The timeframes of `candles`, main first; validates that the main one is present and every key parses. */
function orderedTimeframes(
  pair: string,
  mainTimeframe: string,
  candles: Readonly<Record<string, readonly Candle[]>>,
): string[] {
  const keys = Object.keys(candles);
  if (!keys.includes(mainTimeframe)) {
    throw new Error(
      `${pair}: no candles for the main timeframe ${mainTimeframe} (got ${keys.join(', ') || 'none'}); pass them under candles["${mainTimeframe}"]`,
    );
  }
  for (const tf of keys) timeframeMs(tf);
  return [mainTimeframe, ...keys.filter((k) => k !== mainTimeframe)];
}

function checkOptions(opts: SnapshotOptions): void {
  if (!Number.isInteger(opts.tailLength) || opts.tailLength < 0) {
    throw new Error(`snapshot tailLength must be an integer >= 0, got ${opts.tailLength}`);
  }
  if (!Number.isInteger(opts.rawCandles) || opts.rawCandles < 0) {
    throw new Error(`snapshot rawCandles must be an integer >= 0, got ${opts.rawCandles}`);
  }
}

function noClosedCandle(pair: string, tf: string, asOf: number, candles: readonly Candle[]): Error {
  const first = candles[0];
  const range = first ? `its first candle opens at ${iso(first.time)}` : 'there are no candles';
  return new Error(
    `${pair}: no ${tf} candle has closed at ${iso(asOf)}; ${range}. Use a later asOf or load earlier data.`,
  );
}

/** `2025-07-21T17:30:00.000Z (1753119000000)`, or just the number when it is not a valid time. */
function iso(t: number): string {
  return Number.isFinite(t) && Math.abs(t) <= 8.64e15 ? `${new Date(t).toISOString()} (${t})` : String(t);
}

/**
 * The compact form of a snapshot that a workflow keeps in its history: per timeframe the latest close, change and
 * indicator values, no series tails, and of the raw candles only the main timeframe's last one (the protective exits
 * read its high and low). Everything the cycle itself reads (price, indicators, funding) is kept; the prompt's series
 * are read again on the worker by the context step.
 */
export function compactSnapshot(snapshot: MarketSnapshot): MarketSnapshot {
  const timeframes: Record<string, TimeframeSnapshot> = {};
  for (const [tf, s] of Object.entries(snapshot.timeframes)) {
    const last = tf === snapshot.mainTimeframe ? s.candles.at(-1) : undefined;
    timeframes[tf] = {
      timeframe: s.timeframe,
      lastCandleTime: s.lastCandleTime,
      close: s.close,
      changePct: s.changePct,
      indicators: { ...s.indicators },
      tails: { close: [], volume: [], rsi14: [], macd: [], macdHist: [], ema20: [], ema50: [], adx14: [] },
      candles: last ? [{ ...last }] : [],
    };
  }
  return {
    pair: snapshot.pair,
    asOf: snapshot.asOf,
    mainTimeframe: snapshot.mainTimeframe,
    price: snapshot.price,
    timeframes,
    funding: { ...snapshot.funding },
  };
}
