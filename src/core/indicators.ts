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
 * - ATR, ADX, MFI and OBV are computed here ({@link averageTrueRange}, {@link averageDirectionalIndex},
 *   {@link moneyFlowIndex}, {@link onBalanceVolume}) with the library's arithmetic, operation for operation, as the
 *   Bollinger bands are: the library feeds every candle as a new object through a chain of generators (ADX: five,
 *   nested), which made these four 106 of the 143 ms that its indicators took over the 51 recorded series, and most
 *   of what they allocated (bench figures in the README). test/core/indicators.test.ts checks them bit for bit
 *   against the library on every recorded series and on random candles. EMA, RSI's averages and MACD stay the
 *   library's.
 * - A 0/0 ratio gives null (e.g. MFI with no volume over 14 candles). The library's ADX smoothing cannot recover
 *   from a 0/0 DX (no directional movement and no range over 14 candles), so ADX stays null from there on.
 * - OBV: null at candle 0 (no previous close to compare with); from candle 1 it is the running sum of +volume (close
 *   up), -volume (close down) or 0 (unchanged) over candles 1..i. Its level depends on where the candle window
 *   starts; only its changes carry information.
 */
import { AverageGain, AverageLoss, EMA, MACD } from 'technicalindicators';
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
 * technicalindicators' true range of candle `i` (>= 1; TrueRange): the largest of high - low and the distances of
 * the high and the low from the previous close, a distance that is NaN counting as 0.
 */
function trueRange(high: readonly number[], low: readonly number[], close: readonly number[], i: number): number {
  const previousClose = close[i - 1]!;
  const fromHigh = Math.abs(high[i]! - previousClose);
  const fromLow = Math.abs(low[i]! - previousClose);
  return Math.max(high[i]! - low[i]!, Number.isNaN(fromHigh) ? 0 : fromHigh, Number.isNaN(fromLow) ? 0 : fromLow);
}

/**
 * technicalindicators' WEMA, fed one value at a time: the first `period` values give their mean as its SMA sums
 * them (one by one, then `sum - 0 + value`; divided by the period), every later one
 * `((value - previous) * (1 / period)) + previous`. {@link push} says whether there is a value yet.
 */
class WilderAverage {
  /** the current average once {@link push} has returned true */
  value = NaN;
  private count = 0;
  private sum = 0;
  private readonly exponent: number;

  constructor(private readonly period: number) {
    this.exponent = 1 / period;
  }

  push(x: number): boolean {
    if (this.count >= this.period) {
      this.value = (x - this.value) * this.exponent + this.value;
      return true;
    }
    this.count++;
    if (this.count < this.period) {
      this.sum = this.sum + x;
      return false;
    }
    this.sum = this.sum - 0 + x;
    this.value = this.sum / this.period;
    return true;
  }
}

/**
 * technicalindicators' WilderSmoothing, fed one value at a time: a running sum, not an average. The `period`-th value
 * gives the sum of the first `period`; every later one `smoothed - smoothed / period + value`.
 */
class WilderSum {
  value = 0;
  private count = 0;
  private sum = 0;

  constructor(private readonly period: number) {}

  push(x: number): boolean {
    this.count++;
    if (this.count < this.period) {
      this.sum = this.sum + x;
      return false;
    }
    if (this.count === this.period) {
      this.sum = this.sum + x;
      this.value = this.sum;
      return true;
    }
    this.value = this.value - this.value / this.period + x;
    return true;
  }
}

/**
 * ATR over `period` candles with technicalindicators' arithmetic (its ATR: TrueRange from candle 1 into a WEMA),
 * aligned to the candles: NaN before candle `period`.
 */
export function averageTrueRange(
  high: readonly number[],
  low: readonly number[],
  close: readonly number[],
  period: number,
): Float64Array {
  const n = close.length;
  const out = new Float64Array(n).fill(NaN);
  const average = new WilderAverage(period);
  for (let i = 1; i < n; i++) {
    if (average.push(trueRange(high, low, close, i))) out[i] = finiteOrNaN(average.value);
  }
  return out;
}

/**
 * ADX over `period` candles with technicalindicators' arithmetic (its ADX): from candle 1, +DM, -DM and the true
 * range, each Wilder-smoothed as a sum (WilderSmoothing); +DI = +DM sum * 100 / TR sum, -DI likewise; DX =
 * |+DI - -DI| / (+DI + -DI) * 100, and ADX its WEMA. Aligned to the candles: NaN before candle `2 * period - 1`.
 * A 0/0 DX (no movement and no range over the window) makes every later ADX NaN, as in the library.
 */
export function averageDirectionalIndex(
  high: readonly number[],
  low: readonly number[],
  close: readonly number[],
  period: number,
): Float64Array {
  const n = close.length;
  const out = new Float64Array(n).fill(NaN);
  const range = new WilderSum(period);
  const plus = new WilderSum(period);
  const minus = new WilderSum(period);
  const adx = new WilderAverage(period);
  for (let i = 1; i < n; i++) {
    const upMove = high[i]! - high[i - 1]!;
    const downMove = low[i - 1]! - low[i]!;
    const plusDM = upMove > downMove && upMove > 0 ? upMove : 0;
    const minusDM = downMove > upMove && downMove > 0 ? downMove : 0;
    // the three sums start together, so one answer stands for all three
    range.push(trueRange(high, low, close, i));
    plus.push(plusDM);
    if (!minus.push(minusDM)) continue;
    const plusDI = (plus.value * 100) / range.value;
    const minusDI = (minus.value * 100) / range.value;
    const dx = (Math.abs(plusDI - minusDI) / (plusDI + minusDI)) * 100;
    if (adx.push(dx)) out[i] = finiteOrNaN(adx.value);
  }
  return out;
}

/**
 * MFI over `period` candles with technicalindicators' arithmetic (its MFI): from candle 1 the typical price
 * (high + low + close) / 3; from candle 2 its money flow (typical price x volume) counts as positive when the typical
 * price rose, else as negative; each side summed over the last `period` flows as its FixedSizeLinkedList keeps the
 * sum (`sum - leaving`, then `+ entering`); MFI = 100 - 100 / (1 + positive / negative), rounded to 2 decimals.
 * Aligned to the candles: NaN before candle `period + 1`.
 */
export function moneyFlowIndex(
  high: readonly number[],
  low: readonly number[],
  close: readonly number[],
  volume: readonly number[],
  period: number,
): Float64Array {
  const n = close.length;
  const out = new Float64Array(n).fill(NaN);
  const positive = new Float64Array(period);
  const negative = new Float64Array(period);
  let positiveSum = 0;
  let negativeSum = 0;
  let pushed = 0;
  let previous = NaN;
  for (let i = 1; i < n; i++) {
    const typical = (high[i]! + low[i]! + close[i]!) / 3;
    if (i >= 2) {
      const flow = typical * volume[i]!;
      const up = typical > previous ? flow : 0;
      const down = typical > previous ? 0 : flow;
      const slot = pushed % period;
      if (pushed >= period) {
        positiveSum = positiveSum - positive[slot]!;
        negativeSum = negativeSum - negative[slot]!;
      }
      positive[slot] = up;
      negative[slot] = down;
      positiveSum = positiveSum + up;
      negativeSum = negativeSum + down;
      pushed++;
      if (pushed >= period) {
        out[i] = finiteOrNaN(parseFloat((100 - 100 / (1 + positiveSum / negativeSum)).toFixed(2)));
      }
    }
    previous = typical;
  }
  return out;
}

/**
 * OBV with technicalindicators' arithmetic (its OBV): from candle 1 the running sum of +volume (close above the
 * previous one), -volume (below) or nothing (equal). Aligned to the candles: NaN at candle 0, unless that close is 0
 * or not a number, which the library then counts as a candle of its sum (0).
 */
export function onBalanceVolume(close: readonly number[], volume: readonly number[]): Float64Array {
  const n = close.length;
  const out = new Float64Array(n).fill(NaN);
  if (n === 0) return out;
  let sum = 0;
  let previous = close[0]!;
  let i = 1;
  // the library takes the first close as the previous one only when it is a non-zero number
  if (!previous) {
    previous = NaN;
    i = 0;
  }
  for (; i < n; i++) {
    const c = close[i]!;
    if (previous < c) sum = sum + volume[i]!;
    else if (c < previous) sum = sum - volume[i]!;
    previous = c;
    out[i] = finiteOrNaN(sum);
  }
  return out;
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
    atr14: averageTrueRange(high, low, close, 14),
    adx14: averageDirectionalIndex(high, low, close, 14),
    mfi14: moneyFlowIndex(high, low, close, volume, 14),
    obv: onBalanceVolume(close, volume),
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
