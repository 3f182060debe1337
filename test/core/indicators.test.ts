import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { ADX, ATR, BollingerBands, MFI, OBV } from 'technicalindicators';
import {
  averageDirectionalIndex,
  averageTrueRange,
  computeIndicatorSeries,
  indicatorsAt,
  moneyFlowIndex,
  onBalanceVolume,
  INDICATOR_NAMES,
  valuesBetween,
  type IndicatorName,
  type IndicatorSeries,
} from '../../src/core/indicators';
import type { Candle } from '../../src/core/types';
import { dataFile, readCandleCsv } from '../../src/store/csv-candles';

const DATA_DIR = path.resolve(process.cwd(), '../shared/data/binanceusdm');

// ---------------------------------------------------------------------------------------------
// Reference implementations: plain loops over textbook definitions, independent of technicalindicators.
// Each returns an array aligned to the input (null where the indicator is not defined yet).
// ---------------------------------------------------------------------------------------------

/** EMA seeded with the simple mean of the first n values (at index n-1), then prev + (v - prev) * 2/(n+1). */
function emaRef(values: (number | null)[], n: number): (number | null)[] {
  const out: (number | null)[] = values.map(() => null);
  const first = values.findIndex((v) => v !== null);
  if (first < 0 || values.length - first < n) return out;
  let sum = 0;
  for (let i = first; i < first + n; i++) sum += values[i]!;
  let prev = sum / n;
  out[first + n - 1] = prev;
  const k = 2 / (n + 1);
  for (let i = first + n; i < values.length; i++) {
    prev = prev + (values[i]! - prev) * k;
    out[i] = prev;
  }
  return out;
}

/** Wilder average: simple mean of the first n values of x (x[start..start+n-1]), then (prev*(n-1) + x)/n. */
function wilderAverage(x: number[], start: number, n: number): (number | null)[] {
  const out: (number | null)[] = x.map(() => null);
  if (x.length - start < n) return out;
  let sum = 0;
  for (let i = start; i < start + n; i++) sum += x[i]!;
  let prev = sum / n;
  out[start + n - 1] = prev;
  for (let i = start + n; i < x.length; i++) {
    prev = (prev * (n - 1) + x[i]!) / n;
    out[i] = prev;
  }
  return out;
}

function rsiRef(close: number[], n: number): (number | null)[] {
  const gains = close.map((c, i) => (i === 0 ? 0 : Math.max(c - close[i - 1]!, 0)));
  const losses = close.map((c, i) => (i === 0 ? 0 : Math.max(close[i - 1]! - c, 0)));
  const g = wilderAverage(gains, 1, n);
  const l = wilderAverage(losses, 1, n);
  return close.map((_, i) => (g[i] == null ? null : l[i] === 0 ? 100 : 100 - 100 / (1 + g[i]! / l[i]!)));
}

function trueRanges(c: Candle[]): number[] {
  return c.map((k, i) =>
    i === 0 ? 0 : Math.max(k.high - k.low, Math.abs(k.high - c[i - 1]!.close), Math.abs(k.low - c[i - 1]!.close)),
  );
}

function atrRef(c: Candle[], n: number): (number | null)[] {
  return wilderAverage(trueRanges(c), 1, n);
}

function macdRef(close: number[]): { macd: (number | null)[]; signal: (number | null)[]; hist: (number | null)[] } {
  const fast = emaRef(close, 12);
  const slow = emaRef(close, 26);
  const macd = close.map((_, i) => (fast[i] == null || slow[i] == null ? null : fast[i]! - slow[i]!));
  const signal = emaRef(macd, 9);
  const hist = macd.map((m, i) => (m == null || signal[i] == null ? null : m - signal[i]!));
  return { macd, signal, hist };
}

function bollingerRef(close: number[], n: number, k: number) {
  const upper: (number | null)[] = close.map(() => null);
  const middle = [...upper];
  const lower = [...upper];
  for (let i = n - 1; i < close.length; i++) {
    const w = close.slice(i - n + 1, i + 1);
    const mean = w.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / n); // population SD, as Bollinger defined it
    middle[i] = mean;
    upper[i] = mean + k * sd;
    lower[i] = mean - k * sd;
  }
  return { upper, middle, lower };
}

/** Wilder's ADX: smoothed sums of +DM, -DM, TR (first = plain sum of 14), DX, then ADX = Wilder average of DX. */
function adxRef(c: Candle[], n: number): (number | null)[] {
  const out: (number | null)[] = c.map(() => null);
  const tr = trueRanges(c);
  const pdm = c.map((k, i) => {
    if (i === 0) return 0;
    const up = k.high - c[i - 1]!.high;
    const down = c[i - 1]!.low - k.low;
    return up > down && up > 0 ? up : 0;
  });
  const mdm = c.map((k, i) => {
    if (i === 0) return 0;
    const up = k.high - c[i - 1]!.high;
    const down = c[i - 1]!.low - k.low;
    return down > up && down > 0 ? down : 0;
  });
  const dx: number[] = c.map(() => 0);
  let sTr = 0;
  let sP = 0;
  let sM = 0;
  for (let i = 1; i < c.length; i++) {
    if (i <= n) {
      sTr += tr[i]!;
      sP += pdm[i]!;
      sM += mdm[i]!;
    } else {
      sTr = sTr - sTr / n + tr[i]!;
      sP = sP - sP / n + pdm[i]!;
      sM = sM - sM / n + mdm[i]!;
    }
    if (i >= n) {
      const pdi = (100 * sP) / sTr;
      const mdi = (100 * sM) / sTr;
      dx[i] = (100 * Math.abs(pdi - mdi)) / (pdi + mdi);
    }
  }
  const adx = wilderAverage(dx, n, n); // first DX at index n, first ADX at 2n - 1
  for (let i = 0; i < c.length; i++) out[i] = adx[i] ?? null;
  return out;
}

/** Textbook MFI: flow at i compares typical price with i-1 (unchanged = no flow); MFI over the last n flows. */
function mfiRef(c: Candle[], n: number): (number | null)[] {
  const tp = c.map((k) => (k.high + k.low + k.close) / 3);
  const pos = c.map((k, i) => (i > 0 && tp[i]! > tp[i - 1]! ? tp[i]! * k.volume : 0));
  const neg = c.map((k, i) => (i > 0 && tp[i]! < tp[i - 1]! ? tp[i]! * k.volume : 0));
  return c.map((_, i) => {
    if (i < n) return null;
    let p = 0;
    let m = 0;
    for (let j = i - n + 1; j <= i; j++) {
      p += pos[j]!;
      m += neg[j]!;
    }
    return 100 - 100 / (1 + p / m);
  });
}

function obvRef(c: Candle[]): (number | null)[] {
  let obv = 0;
  return c.map((k, i) => {
    if (i === 0) return null;
    const prev = c[i - 1]!.close;
    if (k.close > prev) obv += k.volume;
    else if (k.close < prev) obv -= k.volume;
    return obv;
  });
}

function relClose(actual: number | null | undefined, expected: number | null | undefined, rel: number, what: string) {
  assert.ok(actual != null && expected != null, `${what}: expected a value, got ${actual} (reference ${expected})`);
  const err = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-12);
  assert.ok(err <= rel, `${what}: ${actual} vs reference ${expected} (relative error ${err})`);
}

/** A whole series as its readers see it: numbers, `null` where the value is missing. */
function values(s: IndicatorSeries, name: IndicatorName): (number | null)[] {
  return valuesBetween(s, name, 0, s.length);
}

function firstNonNull(xs: (number | null)[]): number {
  return xs.findIndex((v) => v !== null);
}

const btc30m = await readCandleCsv(dataFile(DATA_DIR, 'BTC/USDT:USDT', '30m'));
const btc1d = await readCandleCsv(dataFile(DATA_DIR, 'BTC/USDT:USDT', '1d'));
const series = computeIndicatorSeries(btc30m);
const closes = btc30m.map((c) => c.close);

describe('indicators on real BTC 30m candles match reference computations', () => {
  const last = btc30m.length - 1;
  const at = indicatorsAt(series, last);

  test('ACCEPTANCE: EMA 20/50/100 at the last candle (SMA-seeded, as technicalindicators does)', () => {
    relClose(at.ema20, emaRef(closes, 20)[last], 1e-6, 'EMA 20');
    relClose(at.ema50, emaRef(closes, 50)[last], 1e-6, 'EMA 50');
    relClose(at.ema100, emaRef(closes, 100)[last], 1e-6, 'EMA 100');
  });

  test('ACCEPTANCE: RSI 14 (Wilder) and ATR 14 (Wilder) at the last candle', () => {
    relClose(at.rsi14, rsiRef(closes, 14)[last], 1e-6, 'RSI 14');
    relClose(at.atr14, atrRef(btc30m, 14)[last], 1e-6, 'ATR 14');
  });

  test('ACCEPTANCE: MACD 12/26/9 (EMA-based line and signal) at the last candle', () => {
    const ref = macdRef(closes);
    relClose(at.macd, ref.macd[last], 1e-6, 'MACD');
    relClose(at.macdSignal, ref.signal[last], 1e-6, 'MACD signal');
    relClose(at.macdHist, ref.hist[last], 1e-6, 'MACD histogram');
  });

  test('Bollinger 20/2, ADX 14 and OBV at the last candle', () => {
    const bb = bollingerRef(closes, 20, 2);
    relClose(at.bbUpper, bb.upper[last], 1e-6, 'BB upper');
    relClose(at.bbMiddle, bb.middle[last], 1e-6, 'BB middle');
    relClose(at.bbLower, bb.lower[last], 1e-6, 'BB lower');
    relClose(at.adx14, adxRef(btc30m, 14)[last], 1e-6, 'ADX 14');
    relClose(at.obv, obvRef(btc30m)[last], 1e-9, 'OBV');
  });

  test('MFI 14 agrees with the textbook MFI to the library rounding (2 decimals)', () => {
    const ref = mfiRef(btc30m, 14);
    // The library starts its flows at candle 2, so its first value is at 15 (textbook: 14); compare from 15 on.
    for (let i = 15; i <= last; i++) {
      const got = values(series, 'mfi14')[i];
      assert.ok(got != null && ref[i] != null, `MFI at ${i}: ${got} vs ${ref[i]}`);
      assert.ok(Math.abs(got - ref[i]!) <= 0.005 + 1e-9, `MFI at ${i}: ${got} vs reference ${ref[i]}`);
    }
  });

  test('every value of every series matches the reference, not only the last one', () => {
    const ref: Record<string, (number | null)[]> = {
      ema20: emaRef(closes, 20),
      ema50: emaRef(closes, 50),
      ema100: emaRef(closes, 100),
      rsi14: rsiRef(closes, 14),
      atr14: atrRef(btc30m, 14),
      adx14: adxRef(btc30m, 14),
      obv: obvRef(btc30m),
    };
    const m = macdRef(closes);
    const bb = bollingerRef(closes, 20, 2);
    Object.assign(ref, {
      macd: m.macd,
      macdSignal: m.signal,
      bbUpper: bb.upper,
      bbMiddle: bb.middle,
      bbLower: bb.lower,
    });
    for (const [name, expected] of Object.entries(ref)) {
      const got = values(series, name as IndicatorName);
      assert.equal(firstNonNull(got), firstNonNull(expected), `${name}: first computable index`);
      for (let i = 0; i < expected.length; i++) {
        if (expected[i] == null) {
          assert.equal(got[i], null, `${name}[${i}] must be null during warm-up`);
          continue;
        }
        // Absolute floor scaled to the price for oscillating series that cross 0 (MACD).
        const tol = 1e-9 * Math.max(Math.abs(expected[i]!), closes[i]!);
        assert.ok(Math.abs(got[i]! - expected[i]!) <= tol, `${name}[${i}]: ${got[i]} vs reference ${expected[i]}`);
      }
    }
  });
});

describe('warm-up and alignment', () => {
  test('every series has one entry per candle and first values where the definitions put them', () => {
    // First computable index = warm-up implied by each definition (see the module comment of indicators.ts):
    // EMA n: n-1; RSI/ATR 14: 14 changes need 15 candles -> 14; MACD line: EMA26 -> 25; signal: 9 MACD values -> 33;
    // Bollinger 20: 19; ADX: 14 DX values, first DX at 14 -> 27; MFI (library): 15; OBV: first change at 1.
    const expected: Record<IndicatorName, number> = {
      ema20: 19,
      ema50: 49,
      ema100: 99,
      rsi14: 14,
      macd: 25,
      macdSignal: 33,
      macdHist: 33,
      bbUpper: 19,
      bbMiddle: 19,
      bbLower: 19,
      atr14: 14,
      adx14: 27,
      mfi14: 15,
      obv: 1,
    };
    assert.equal(series.length, btc30m.length);
    for (const name of INDICATOR_NAMES) {
      const s = values(series, name);
      assert.equal(s.length, btc30m.length, `${name} length`);
      assert.equal(firstNonNull(s), expected[name], `${name} first value index`);
      for (let i = expected[name]; i < s.length; i++) {
        assert.ok(typeof s[i] === 'number' && Number.isFinite(s[i]), `${name}[${i}] = ${s[i]} must be a finite number`);
      }
    }
  });

  test('EMA 100 on the 60 daily candles is null at every candle, and nothing is 0 or NaN in place of a value', () => {
    assert.equal(btc1d.length, 60);
    const d = computeIndicatorSeries(btc1d);
    assert.ok(
      values(d, 'ema100').every((v) => v === null),
      'EMA 100 needs 100 daily candles',
    );
    assert.equal(firstNonNull(values(d, 'ema50')), 49);
    for (const name of INDICATOR_NAMES) {
      for (const v of values(d, name)) assert.ok(v === null || (Number.isFinite(v) && v !== 0), `${name}: ${v}`);
    }
    const lastDay = indicatorsAt(d, 59);
    assert.equal(lastDay.ema100, null);
    assert.equal(typeof lastDay.ema50, 'number');
  });

  test('too few candles: all-null series of the right length; no candles: empty series', () => {
    const few = computeIndicatorSeries(btc30m.slice(0, 10));
    for (const name of INDICATOR_NAMES) {
      assert.equal(values(few, name).length, 10, name);
      if (name !== 'obv')
        assert.ok(
          values(few, name).every((v) => v === null),
          `${name} must be null with 10 candles`,
        );
    }
    assert.deepEqual(values(few, 'obv').slice(0, 1), [null]);
    const none = computeIndicatorSeries([]);
    assert.equal(none.length, 0);
    for (const name of INDICATOR_NAMES) assert.deepEqual(values(none, name), []);
  });

  test('OBV convention: null at the first candle, then the running signed volume from candle 1', () => {
    const c = (close: number, volume: number): Candle => ({
      time: 0,
      open: close,
      high: close,
      low: close,
      close,
      volume,
    });
    const s = computeIndicatorSeries([c(10, 5), c(11, 2), c(11, 7), c(9, 3), c(12, 4)]);
    // +2 (up), +0 (unchanged), -3 (down), +4 (up): 2, 2, -1, 3
    assert.deepEqual(values(s, 'obv'), [null, 2, 2, -1, 3]);
  });

  test('indicatorsAt rejects an index outside the series', () => {
    assert.throws(() => indicatorsAt(series, btc30m.length), RangeError);
    assert.throws(() => indicatorsAt(series, -1), RangeError);
    assert.throws(() => indicatorsAt(series, 1.5), RangeError);
  });
});

describe("Bollinger bands are the library's, bit for bit", () => {
  /** technicalindicators' BollingerBands over `close`, right-aligned to it (null in the warm-up). */
  function libraryBands(close: number[]): {
    upper: (number | null)[];
    middle: (number | null)[];
    lower: (number | null)[];
  } {
    const out = BollingerBands.calculate({ period: 20, stdDev: 2, values: close, format: (v: number) => v });
    const pad = close.length - out.length;
    const col = (k: 'upper' | 'middle' | 'lower') => [...new Array<null>(pad).fill(null), ...out.map((b) => b[k])];
    return { upper: col('upper'), middle: col('middle'), lower: col('lower') };
  }

  function assertSameBands(candles: Candle[], where: string): void {
    const got = computeIndicatorSeries(candles);
    const lib = libraryBands(candles.map((c) => c.close));
    for (const [name, k] of [
      ['bbUpper', 'upper'],
      ['bbMiddle', 'middle'],
      ['bbLower', 'lower'],
    ] as const) {
      const mine = values(got, name);
      for (let i = 0; i < candles.length; i++) {
        // Object.is: the same double (or both missing), not "close enough"
        assert.ok(Object.is(mine[i], lib[k][i]), `${where} ${name}[${i}]: ${mine[i]} vs the library's ${lib[k][i]}`);
      }
    }
  }

  test('on every recorded series of ../shared/data (17 pairs x 30m, 1h, 1d)', async () => {
    const files = readdirSync(DATA_DIR).filter((f) => /-(30m|1h|1d)\.csv\.gz$/.test(f));
    assert.ok(files.length >= 51, `recorded series found: ${files.length}`);
    for (const f of files) assertSameBands(await readCandleCsv(path.join(DATA_DIR, f)), f);
  });

  test('on random walks over six orders of magnitude, flat stretches and fewer candles than the period', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-4, max: 1e5, noNaN: true }),
        fc.array(fc.oneof(fc.constant(0), fc.double({ min: -0.2, max: 0.2, noNaN: true })), { maxLength: 300 }),
        (start, steps) => {
          let price = start;
          const candles: Candle[] = [];
          for (const [i, step] of steps.entries()) {
            price = Math.max(1e-6, price * (1 + step));
            candles.push({ time: i * 1_800_000, open: price, high: price, low: price, close: price, volume: 1 });
          }
          assertSameBands(candles, `start ${start}`);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("ATR, ADX, MFI and OBV are the library's, bit for bit", () => {
  const raw = (v: number) => v;
  /** A library output right-aligned to `n` candles, null in the warm-up and for a value that is not finite. */
  function aligned(out: readonly number[], n: number): (number | null)[] {
    const column = new Array<number | null>(n).fill(null);
    out.forEach((v, k) => (column[n - out.length + k] = Number.isFinite(v) ? v : null));
    return column;
  }

  function assertSame(mine: Float64Array, lib: (number | null)[], what: string): void {
    assert.equal(mine.length, lib.length, `${what}: length`);
    for (let i = 0; i < lib.length; i++) {
      const v = Number.isNaN(mine[i]!) ? null : mine[i]!;
      // Object.is: the same double (or both missing), not "close enough"
      assert.ok(Object.is(v, lib[i]), `${what}[${i}]: ${v} vs the library's ${lib[i]}`);
    }
  }

  function assertSameAsLibrary(candles: readonly Candle[], where: string): void {
    const n = candles.length;
    const high = candles.map((c) => c.high);
    const low = candles.map((c) => c.low);
    const close = candles.map((c) => c.close);
    const volume = candles.map((c) => c.volume);
    const input = { period: 14, high, low, close, format: raw };
    assertSame(averageTrueRange(high, low, close, 14), aligned(ATR.calculate(input), n), `${where} ATR`);
    assertSame(
      averageDirectionalIndex(high, low, close, 14),
      aligned(
        ADX.calculate(input).map((a) => a.adx),
        n,
      ),
      `${where} ADX`,
    );
    assertSame(
      moneyFlowIndex(high, low, close, volume, 14),
      aligned(MFI.calculate({ ...input, volume }), n),
      `${where} MFI`,
    );
    assertSame(
      onBalanceVolume(close, volume),
      aligned(OBV.calculate({ close, volume, format: raw }), n),
      `${where} OBV`,
    );
    // and the series the snapshots read are these
    const series = computeIndicatorSeries(candles);
    assertSame(
      Float64Array.from(values(series, 'adx14'), (v) => v ?? NaN),
      aligned(
        ADX.calculate(input).map((a) => a.adx),
        n,
      ),
      `${where} adx14 of the series`,
    );
  }

  test('on every recorded series of ../shared/data (17 pairs x 30m, 1h, 1d)', async () => {
    const files = readdirSync(DATA_DIR).filter((f) => /-(30m|1h|1d)\.csv\.gz$/.test(f));
    assert.ok(files.length >= 51, `recorded series found: ${files.length}`);
    for (const f of files) assertSameAsLibrary(await readCandleCsv(path.join(DATA_DIR, f)), f);
  });

  test('on random candles: flat stretches (0/0 directional index), no volume, equal typical prices, short series', () => {
    const step = fc.oneof(fc.constant(0), fc.double({ min: -0.2, max: 0.2, noNaN: true }));
    const candle = fc.record({
      move: step,
      up: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.05, noNaN: true })),
      down: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.05, noNaN: true })),
      volume: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1e6, noNaN: true })),
    });
    fc.assert(
      fc.property(
        fc.double({ min: 1e-4, max: 1e5, noNaN: true }),
        fc.array(candle, { maxLength: 120 }),
        (start, rows) => {
          let price = start;
          const candles: Candle[] = rows.map((r, i) => {
            const open = price;
            price = Math.max(1e-6, price * (1 + r.move));
            const high = Math.max(open, price) * (1 + r.up);
            const low = Math.min(open, price) * (1 - r.down);
            return { time: i * 1_800_000, open, high, low, close: price, volume: r.volume };
          });
          assertSameAsLibrary(candles, `start ${start}`);
        },
      ),
      { numRuns: 400 },
    );
  });

  test('OBV counts a first close of 0 as the library does (a candle of its sum, not the previous close)', () => {
    const close = [0, 2, 1, 1, 3];
    const volume = [5, 7, 11, 13, 17];
    assertSame(onBalanceVolume(close, volume), aligned(OBV.calculate({ close, volume, format: raw }), 5), 'OBV');
    assert.deepEqual([...onBalanceVolume(close, volume)], [0, 7, -4, -4, 13]);
  });
});
