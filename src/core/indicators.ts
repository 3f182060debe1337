/**
 * Technical indicators per timeframe, computed once over a candle array with the `technicalindicators` library and
 * aligned to the candles: every series has one entry per candle. The series are stored together in one Float64Array,
 * row by row (the 14 values of a candle side by side: one or two cache lines to read a candle's indicators, 8 bytes
 * a value, nothing for the garbage collector to trace), and NaN marks a missing value: the indicator is warming up,
 * or undefined (e.g. a 0/0 ratio). Every reader outside this module gets `null` for it ({@link indicatorsAt},
 * {@link valuesBetween}): never 0 or NaN in place of a missing value.
 *
 * All indicators are causal: the value at index i depends only on candles[0..i]. So values computed once over a whole
 * history equal values computed over any prefix ending at i (given the same first candle), which lets the backtest
 * compute each series once and read index i per step.
 *
 * Conventions (index = candle index, first candle = 0; first non-null index in brackets):
 * - EMA n: seeded with the simple average of the first n closes, then ema = prev + (close - prev) * 2 / (n + 1)
 *   [n - 1]. This is the library's convention (and the common textbook one). Because of the seed, an EMA depends
 *   slightly on where the candle window starts: a live window should be several times longer than 100 candles.
 * - RSI 14 (Wilder): gains/losses from close-to-close changes starting at candle 1; the first average is the simple
 *   mean of 14 changes, then avg = (prev * 13 + x) / 14 [14]. RSI = 100 - 100 / (1 + avgGain / avgLoss); 100 when
 *   avgLoss is 0 (also for a flat market, as the library does). Built from the library's AverageGain/AverageLoss
 *   because its RSI class rounds to 2 decimals.
 * - MACD 12/26/9: EMA(12) - EMA(26) of closes [25]; signal = EMA(9) of MACD [33]; histogram = MACD - signal [33].
 *   Run with SimpleMAOscillator/SimpleMASignal false (the library's default is SMA-based, which is not MACD).
 * - Bollinger 20/2: middle = SMA(20), bands = middle ± 2 × population standard deviation of the 20 closes [19].
 *   Computed here ({@link bollingerBands}) with the library's arithmetic, operation for operation, so every value is
 *   the one its BollingerBands gives (test/core/indicators.test.ts checks all recorded series bit for bit): the
 *   library walks its 20-value window through a generator for every candle, which made Bollinger alone 180-220 ms of
 *   the ~420 ms the 17 recorded pairs' indicators took, and most of the garbage the backtest's load left behind.
 * - ATR 14 (Wilder): true range from candle 1 (needs a previous close); first ATR = mean of 14 true ranges, then
 *   atr = prev + (tr - prev) / 14 [14].
 * - ADX 14 (Wilder): +DM/-DM and TR from candle 1, Wilder-smoothed sums over 14 [14 for DX], ADX = Wilder average
 *   of 14 DX values [27].
 * - MFI 14: library MFI, which starts its money flows at candle 2 (it ignores candle 0) [15], counts a typical price
 *   equal to the previous one as negative flow, and rounds to 2 decimals.
 * - A 0/0 ratio gives null (e.g. MFI with no volume over 14 candles). The library's ADX smoothing cannot recover
 *   from a 0/0 DX (no directional movement and no range over 14 candles), so ADX stays null from there on.
 * - OBV: null at candle 0 (no previous close to compare with); from candle 1 it is the running sum of +volume (close
 *   up), -volume (close down) or 0 (unchanged) over candles 1..i. Its level depends on where the candle window
 *   starts; only its changes carry information.
 */
import { ADX, ATR, AverageGain, AverageLoss, EMA, MACD, MFI, OBV } from 'technicalindicators';
import type { Candle, IndicatorValues } from './types';

/**
 * Every indicator series over `length` candles, aligned to the candles. Read values with {@link indicatorsAt} or
 * {@link valuesBetween}, which turn missing values into `null`.
 */
export interface IndicatorSeries {
  /** number of candles the series were computed over */
  readonly length: number;
  /**
   * row-major: the value of indicator k (in {@link INDICATOR_NAMES} order) at candle i is
   * `values[i * INDICATOR_NAMES.length + k]`; NaN = missing
   */
  readonly values: Float64Array;
}

/** The name of one indicator series. */
export type IndicatorName = keyof IndicatorValues;

/** Names of every indicator, in the order of {@link IndicatorValues}. */
export const INDICATOR_NAMES: readonly IndicatorName[] = [
  'ema20',
  'ema50',
  'ema100',
  'rsi14',
  'macd',
  'macdSignal',
  'macdHist',
  'bbUpper',
  'bbMiddle',
  'bbLower',
  'atr14',
  'adx14',
  'mfi14',
  'obv',
];

const COUNT = INDICATOR_NAMES.length;
const COLUMN = new Map(INDICATOR_NAMES.map((name, k) => [name, k]));

/** Identity formatter: keeps full precision even if someone set the library's global `precision` config. */
const raw = (v: number): number => v;

/** A finite number, or NaN (missing) for undefined/NaN/±Infinity. */
function finiteOrNaN(v: number | undefined): number {
  return v !== undefined && Number.isFinite(v) ? v : NaN;
}

/**
 * The values of one indicator for candles [start, end) as numbers, `null` for a missing one (a snapshot tail).
 * `start` and `end` must lie in 0..length.
 */
export function valuesBetween(
  series: IndicatorSeries,
  name: IndicatorName,
  start: number,
  end: number,
): (number | null)[] {
  const values = series.values;
  const k = COLUMN.get(name)!;
  const out = new Array<number | null>(end - start);
  for (let i = start; i < end; i++) {
    const v = values[i * COUNT + k]!;
    out[i - start] = Number.isNaN(v) ? null : v;
  }
  return out;
}

/**
 * Right-aligns a library output (which omits the warm-up entries) to `n` candles: the last output value belongs to
 * the last candle. Throws if the library returned more values than candles (an alignment bug, not bad data).
 */
function alignRight(values: readonly (number | undefined)[], n: number, name: string): Float64Array {
  const offset = n - values.length;
  if (offset < 0) throw new Error(`${name}: library returned ${values.length} values for ${n} candles`);
  const out = new Float64Array(n).fill(NaN);
  for (let k = 0; k < values.length; k++) out[offset + k] = finiteOrNaN(values[k]);
  return out;
}

/**
 * Bollinger bands over `close`, aligned to it (NaN before index `period - 1`), with technicalindicators' arithmetic
 * (its SMA, SD and BollingerBands classes): the window sum is kept as the SMA keeps it (the first `period - 1`
 * closes added one by one, then `sum - leaving + entering` per candle), middle = sum / period; the deviation is
 * `Math.sqrt(Σ Math.pow(close - middle, 2) / period)` over the window, oldest first; the bands are
 * middle ± deviation × `stdDev`. The same operations in the same order give the same doubles. A middle of 0 gives no
 * value here (the library repeats its previous one then); closes are positive prices, so it does not happen.
 */
export function bollingerBands(
  close: readonly number[],
  period: number,
  stdDev: number,
): { upper: Float64Array; middle: Float64Array; lower: Float64Array } {
  const n = close.length;
  const upper = new Float64Array(n).fill(NaN);
  const middle = new Float64Array(n).fill(NaN);
  const lower = new Float64Array(n).fill(NaN);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = close[i]!;
    if (i < period - 1) {
      sum = sum + x;
      continue;
    }
    sum = sum - (i >= period ? close[i - period]! : 0) + x;
    const mean = sum / period;
    if (!mean) continue;
    let squares = 0;
    for (let j = i - period + 1; j <= i; j++) squares = squares + Math.pow(close[j]! - mean, 2);
    const sd = Math.sqrt(squares / period);
    middle[i] = finiteOrNaN(mean);
    upper[i] = finiteOrNaN(mean + sd * stdDev);
    lower[i] = finiteOrNaN(mean - sd * stdDev);
  }
  return { upper, middle, lower };
}

/**
 * Computes every indicator over `candles` (sorted by open time, oldest first; typically closed candles only).
 * Each returned series has `candles.length` entries; see the module comment for warm-up lengths. With fewer candles
 * than an indicator needs, that series is all missing (NaN). O(n) per indicator.
 */
export function computeIndicatorSeries(candles: readonly Candle[]): IndicatorSeries {
  const n = candles.length;
  const close = new Array<number>(n);
  const high = new Array<number>(n);
  const low = new Array<number>(n);
  const volume = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const c = candles[i]!;
    close[i] = c.close;
    high[i] = c.high;
    low[i] = c.low;
    volume[i] = c.volume;
  }

  const ema = (period: number): Float64Array =>
    alignRight(EMA.calculate({ period, values: close, format: raw }), n, `EMA ${period}`);

  // RSI from the library's Wilder averages (its RSI class rounds to 2 decimals). Both averages start at candle 14.
  const avgGain = alignRight(AverageGain.calculate({ period: 14, values: close, format: raw }), n, 'RSI gains');
  const avgLoss = alignRight(AverageLoss.calculate({ period: 14, values: close, format: raw }), n, 'RSI losses');
  const rsi14 = new Float64Array(n).fill(NaN);
  for (let i = 0; i < n; i++) {
    const g = avgGain[i]!;
    const l = avgLoss[i]!;
    if (Number.isNaN(g) || Number.isNaN(l)) continue;
    rsi14[i] = l === 0 ? 100 : 100 - 100 / (1 + g / l);
  }

  const macdOut = MACD.calculate({
    values: close,
    fastPeriod: 12,
    slowPeriod: 26,
    signalPeriod: 9,
    SimpleMAOscillator: false,
    SimpleMASignal: false,
    format: raw,
  });
  const macd = alignRight(
    macdOut.map((o) => o.MACD),
    n,
    'MACD',
  );
  const macdSignal = alignRight(
    macdOut.map((o) => o.signal),
    n,
    'MACD signal',
  );
  // The library's histogram is MACD - signal; recompute from the aligned values so a missing signal gives NaN.
  const macdHist = new Float64Array(n);
  for (let i = 0; i < n; i++) macdHist[i] = macd[i]! - macdSignal[i]!;

  const bb = bollingerBands(close, 20, 2);
  const adx = ADX.calculate({ period: 14, high, low, close, format: raw });

  const columns: Record<IndicatorName, Float64Array> = {
    ema20: ema(20),
    ema50: ema(50),
    ema100: ema(100),
    rsi14,
    macd,
    macdSignal,
    macdHist,
    bbUpper: bb.upper,
    bbMiddle: bb.middle,
    bbLower: bb.lower,
    atr14: alignRight(ATR.calculate({ period: 14, high, low, close, format: raw }), n, 'ATR'),
    adx14: alignRight(
      adx.map((a) => a.adx),
      n,
      'ADX',
    ),
    mfi14: alignRight(MFI.calculate({ period: 14, high, low, close, volume, format: raw }), n, 'MFI'),
    obv: alignRight(OBV.calculate({ close, volume, format: raw }), n, 'OBV'),
  };
  const values = new Float64Array(n * COUNT);
  INDICATOR_NAMES.forEach((name, k) => {
    const column = columns[name];
    for (let i = 0; i < n; i++) values[i * COUNT + k] = column[i]!;
  });
  return { length: n, values };
}

/**
 * The value of every indicator at candle index `i` (0-based, as in the candles the series were computed from).
 * O(1).
 * @throws RangeError when `i` is not an index of the series.
 */
export function indicatorsAt(series: IndicatorSeries, i: number): IndicatorValues {
  if (!Number.isInteger(i) || i < 0 || i >= series.length) {
    throw new RangeError(`indicator index ${i} is out of range: the series cover ${series.length} candles`);
  }
  const v = series.values;
  const o = i * COUNT;
  return {
    ema20: orNull(v[o]!),
    ema50: orNull(v[o + 1]!),
    ema100: orNull(v[o + 2]!),
    rsi14: orNull(v[o + 3]!),
    macd: orNull(v[o + 4]!),
    macdSignal: orNull(v[o + 5]!),
    macdHist: orNull(v[o + 6]!),
    bbUpper: orNull(v[o + 7]!),
    bbMiddle: orNull(v[o + 8]!),
    bbLower: orNull(v[o + 9]!),
    atr14: orNull(v[o + 10]!),
    adx14: orNull(v[o + 11]!),
    mfi14: orNull(v[o + 12]!),
    obv: orNull(v[o + 13]!),
  };
}

function orNull(v: number): number | null {
  return Number.isNaN(v) ? null : v;
}
