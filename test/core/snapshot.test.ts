import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fc from 'fast-check';
import { computeIndicatorSeries, indicatorsAt } from '../../src/core/indicators';
import {
  buildPairSeriesCache,
  buildSnapshot,
  fundingAt,
  snapshotAt,
  type SnapshotOptions,
} from '../../src/core/snapshot';
import { aggregateCandles, timeframeMs } from '../../src/core/timeframe';
import type { Candle, MarketSnapshot } from '../../src/core/types';
import { dataFile, fundingFile, readCandleCsv, readFundingCsv } from '../../src/store/csv-candles';

const DATA_DIR = path.resolve(process.cwd(), '../shared/data/binanceusdm');
const MIN = 60_000;
const utc = (y: number, mo: number, d: number, h = 0, mi = 0) => Date.UTC(y, mo - 1, d, h, mi);

const PAIR = 'BTC/USDT:USDT';
const m30 = await readCandleCsv(dataFile(DATA_DIR, PAIR, '30m'));
const h1 = await readCandleCsv(dataFile(DATA_DIR, PAIR, '1h'));
const d1 = await readCandleCsv(dataFile(DATA_DIR, PAIR, '1d'));
const funding = await readFundingCsv(fundingFile(DATA_DIR, PAIR));
const candles: Record<string, Candle[]> = { '30m': m30, '1h': h1, '4h': aggregateCandles(h1, '1h', '4h'), '1d': d1 };
const cache = buildPairSeriesCache({ pair: PAIR, mainTimeframe: '30m', candles, funding });
const opts: SnapshotOptions = { tailLength: 12, rawCandles: 5 };
const firstClose = m30[0]!.time + 30 * MIN;
const lastClose = m30[m30.length - 1]!.time + 30 * MIN;

function slowSnapshot(asOf: number, o: SnapshotOptions = opts): MarketSnapshot {
  return buildSnapshot({ pair: PAIR, asOf, mainTimeframe: '30m', candles, funding: fundingAt(funding, asOf), ...o });
}

/** Asserts that nothing in the snapshot comes from a candle still open at `asOf`, and that it is the latest data. */
function assertNoLookAhead(s: MarketSnapshot, asOf: number): void {
  assert.ok(s.asOf <= asOf, `snapshot time ${s.asOf} after asOf ${asOf}`);
  for (const [tf, snap] of Object.entries(s.timeframes)) {
    const ms = timeframeMs(tf);
    assert.ok(snap.lastCandleTime + ms <= s.asOf, `${tf}: last candle ${snap.lastCandleTime} closes after ${s.asOf}`);
    for (const c of snap.candles) assert.ok(c.time + ms <= s.asOf, `${tf}: raw candle ${c.time} closes after asOf`);
    // ... and it IS the latest closed candle: the next one in the data closes after the snapshot time.
    const next = candles[tf]!.find((c) => c.time > snap.lastCandleTime);
    if (next) assert.ok(next.time + ms > s.asOf, `${tf}: candle ${next.time} had closed but is missing`);
  }
  if (s.funding.time !== null) assert.ok(s.funding.time <= s.asOf, 'funding event from the future');
}

describe('snapshot contents at a hand-checked time', () => {
  const asOf = utc(2025, 7, 1, 12); // a 30m, 1h and 4h close, mid-day
  const s = snapshotAt(cache, asOf, opts);
  const iClose = m30.findIndex((c) => c.time === utc(2025, 7, 1, 11, 30));

  test('each timeframe ends at its last candle closed at 12:00', () => {
    assert.equal(s.asOf, asOf);
    assert.equal(s.pair, PAIR);
    assert.equal(s.mainTimeframe, '30m');
    assert.deepEqual(Object.keys(s.timeframes), ['30m', '1h', '4h', '1d']);
    assert.equal(s.timeframes['30m']!.lastCandleTime, utc(2025, 7, 1, 11, 30)); // 11:30-12:00
    assert.equal(s.timeframes['1h']!.lastCandleTime, utc(2025, 7, 1, 11)); // 11:00-12:00
    assert.equal(s.timeframes['4h']!.lastCandleTime, utc(2025, 7, 1, 8)); // 08:00-12:00
    assert.equal(s.timeframes['1d']!.lastCandleTime, utc(2025, 6, 30)); // 07-01 has not closed
  });

  test('price, change, tails and raw candles come from the right candles', () => {
    const tf = s.timeframes['30m']!;
    const close = m30[iClose]!.close;
    const prev = m30[iClose - 1]!.close;
    assert.equal(s.price, close);
    assert.equal(tf.close, close);
    assert.ok(Math.abs(tf.changePct! - ((close - prev) / prev) * 100) < 1e-12);
    assert.deepEqual(
      tf.tails.close,
      m30.slice(iClose - 11, iClose + 1).map((c) => c.close),
    );
    assert.deepEqual(
      tf.tails.volume,
      m30.slice(iClose - 11, iClose + 1).map((c) => c.volume),
    );
    assert.deepEqual(tf.candles, m30.slice(iClose - 4, iClose + 1));
    for (const name of ['rsi14', 'macd', 'macdHist', 'ema20', 'ema50', 'adx14'] as const) {
      assert.equal(tf.tails[name].length, 12, name);
      assert.equal(tf.tails[name].at(-1), tf.indicators[name], `${name} tail ends at the current value`);
    }
    for (const k of ['1h', '4h', '1d']) assert.deepEqual(s.timeframes[k]!.candles, [], `${k} carries no raw candles`);
  });

  test('funding is the 08:00 event (timestamps rounded to the minute)', () => {
    const event = funding.find((f) => f.time === utc(2025, 7, 1, 8));
    assert.ok(event);
    assert.deepEqual(s.funding, { rate: event.rate, time: utc(2025, 7, 1, 8) });
  });

  test('asOf between closes gives the snapshot of the previous close; 1 ms before a close excludes that candle', () => {
    assert.deepStrictEqual(snapshotAt(cache, asOf + 17 * MIN, opts), s);
    const before = snapshotAt(cache, asOf - 1, opts);
    assert.equal(before.asOf, utc(2025, 7, 1, 11, 30));
    assert.equal(before.timeframes['30m']!.lastCandleTime, utc(2025, 7, 1, 11));
    assert.equal(before.timeframes['1h']!.lastCandleTime, utc(2025, 7, 1, 10));
    assert.equal(before.timeframes['4h']!.lastCandleTime, utc(2025, 7, 1, 4));
  });

  test('informative timeframes with no closed candle yet are omitted; the main one is required', () => {
    const early = snapshotAt(cache, m30[0]!.time + 60 * MIN, opts);
    assert.deepEqual(Object.keys(early.timeframes), ['30m', '1h']);
    const change = early.timeframes['30m']!.changePct!;
    assert.ok(Math.abs(change - (m30[1]!.close / m30[0]!.close - 1) * 100) < 1e-12, `change ${change}`);
    const first = snapshotAt(cache, firstClose, opts);
    assert.equal(first.timeframes['30m']!.changePct, null, 'one candle: no change');
    assert.equal(first.timeframes['30m']!.indicators.ema20, null);
    assert.throws(
      () => snapshotAt(cache, firstClose - 1, opts),
      /no 30m candle has closed at 2025-05-22T00:29:59.999Z/,
    );
    assert.throws(() => slowSnapshot(firstClose - 1), /no 30m candle has closed/);
    assert.throws(
      () =>
        buildSnapshot({ pair: PAIR, asOf, mainTimeframe: '15m', candles, funding: fundingAt(funding, asOf), ...opts }),
      /no candles for the main timeframe 15m/,
    );
  });

  test('invalid options are rejected', () => {
    assert.throws(
      () => snapshotAt(cache, asOf, { tailLength: -1, rawCandles: 5 }),
      /tailLength must be an integer >= 0/,
    );
    assert.throws(
      () => snapshotAt(cache, asOf, { tailLength: 1.5, rawCandles: 5 }),
      /tailLength must be an integer >= 0/,
    );
    assert.throws(
      () => snapshotAt(cache, asOf, { tailLength: 5, rawCandles: -1 }),
      /rawCandles must be an integer >= 0/,
    );
  });

  test('a snapshot cannot corrupt the cache: candles are frozen, tails are copies', () => {
    const a = snapshotAt(cache, asOf, opts);
    assert.throws(() => {
      a.timeframes['30m']!.candles[0]!.close = 1;
    }, TypeError);
    a.timeframes['30m']!.tails.close[0] = -1;
    assert.deepStrictEqual(snapshotAt(cache, asOf, opts), s);
  });

  test('tailLength 0: every tail is empty (and frozen); everything else as with tails', () => {
    const bare = snapshotAt(cache, asOf, { tailLength: 0, rawCandles: 5 });
    for (const [tf, snap] of Object.entries(bare.timeframes)) {
      for (const [name, tail] of Object.entries(snap.tails)) {
        assert.deepEqual(tail, [], `${tf} ${name}`);
        assert.throws(() => (tail as number[]).push(1), TypeError);
      }
      const { tails: _bareTails, ...restBare } = snap;
      const { tails: _tails, ...rest } = s.timeframes[tf]!;
      assert.deepStrictEqual(restBare, rest, tf);
    }
    assert.deepStrictEqual({ ...bare, timeframes: null }, { ...s, timeframes: null });
  });
});

describe('no look-ahead, and the fast path equals the slow path', () => {
  const asOfArb = fc.oneof(
    // on a 30m close, or 1 ms either side of it
    fc
      .tuple(fc.integer({ min: 1, max: m30.length }), fc.integer({ min: -1, max: 1 }))
      .map(([i, d]) => firstClose + (i - 1) * 30 * MIN + d)
      .filter((t) => t >= firstClose),
    fc.integer({ min: firstClose, max: lastClose + 2 * 24 * 60 * MIN }),
  );

  test('property: no candle of any timeframe closes after asOf (fast path, real data)', () => {
    fc.assert(
      fc.property(asOfArb, (asOf) => assertNoLookAhead(snapshotAt(cache, asOf, opts), asOf)),
      { numRuns: 3000 },
    );
  });

  test('property: snapshotAt equals buildSnapshot over the raw candle arrays for random asOf', () => {
    const optsArb = fc.record({
      tailLength: fc.integer({ min: 1, max: 40 }),
      rawCandles: fc.integer({ min: 0, max: 8 }),
    });
    fc.assert(
      fc.property(asOfArb, optsArb, (asOf, o) => {
        const slow = slowSnapshot(asOf, o);
        assertNoLookAhead(slow, asOf);
        assert.deepStrictEqual(snapshotAt(cache, asOf, o), slow);
      }),
      { numRuns: 120 },
    );
  });

  test('indicators are causal: values at index k over the full history equal values over candles[0..k]', () => {
    // Warm-up edges of every indicator, plus random indices; BTC 30m and ETH 1h.
    const edges = [0, 1, 13, 14, 15, 19, 20, 25, 26, 27, 28, 33, 34, 49, 50, 99, 100, 101];
    const check = (series: Candle[], k: number) => {
      const full = computeIndicatorSeries(series);
      const prefix = computeIndicatorSeries(series.slice(0, k + 1));
      assert.deepStrictEqual(indicatorsAt(prefix, k), indicatorsAt(full, k), `index ${k}`);
    };
    for (const k of [...edges, m30.length - 1]) check(m30, k);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: m30.length - 1 }), (k) => check(m30, k)),
      { numRuns: 25 },
    );
  });

  test('causality on a second pair and timeframe (ETH 1h)', async () => {
    const eth = await readCandleCsv(dataFile(DATA_DIR, 'ETH/USDT:USDT', '1h'));
    const full = computeIndicatorSeries(eth);
    for (const k of [27, 33, 99, 700, eth.length - 2]) {
      assert.deepStrictEqual(indicatorsAt(computeIndicatorSeries(eth.slice(0, k + 1)), k), indicatorsAt(full, k));
    }
  });
});
