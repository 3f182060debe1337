import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fc from 'fast-check';
import {
  aggregateCandles,
  candleCloseTime,
  candleOpenTime,
  closedCandles,
  lastClosedCandleOpen,
  nextCloseAfter,
  timeframeMs,
} from '../../src/core/timeframe';
import type { Candle } from '../../src/core/types';
import { dataFile, readCandleCsv } from '../../src/store/csv-candles';

const DATA_DIR = path.resolve(process.cwd(), '../shared/data/binanceusdm');
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const utc = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0) => Date.UTC(y, mo - 1, d, h, mi, s, ms);

describe('timeframeMs', () => {
  test('parses minutes, hours, days and weeks', () => {
    assert.equal(timeframeMs('1m'), MIN);
    assert.equal(timeframeMs('30m'), 30 * MIN);
    assert.equal(timeframeMs('4h'), 4 * HOUR);
    assert.equal(timeframeMs('1d'), DAY);
    assert.equal(timeframeMs('3d'), 3 * DAY);
    assert.equal(timeframeMs('1w'), 7 * DAY);
  });

  test('rejects anything else with a message that says how to fix it', () => {
    for (const bad of ['', '30', 'm', '0m', '1M', '1.5h', ' 30m', '30 m', '-1h', '1y', '01h']) {
      assert.throws(
        () => timeframeMs(bad),
        { message: `invalid timeframe "${bad}": use a number followed by m, h, d or w, e.g. 30m` },
        bad,
      );
    }
  });
});

describe('candle open/close times', () => {
  // 2025-07-21 is a Monday.
  const t = utc(2025, 7, 21, 17, 45, 12, 345);

  test('open time of the candle containing an instant, per timeframe', () => {
    assert.equal(candleOpenTime(t, '30m'), utc(2025, 7, 21, 17, 30));
    assert.equal(candleOpenTime(t, '1h'), utc(2025, 7, 21, 17));
    assert.equal(candleOpenTime(t, '4h'), utc(2025, 7, 21, 16)); // 4h grid: 00, 04, 08, 12, 16, 20 UTC
    assert.equal(candleOpenTime(t, '1d'), utc(2025, 7, 21));
    assert.equal(candleOpenTime(t, '1w'), utc(2025, 7, 21)); // Monday 00:00
    assert.equal(candleOpenTime(utc(2025, 7, 20, 23, 59), '1w'), utc(2025, 7, 14)); // Sunday -> previous Monday
    assert.equal(candleOpenTime(utc(2025, 7, 21, 3, 59, 59, 999), '4h'), utc(2025, 7, 21, 0));
  });

  test('an instant exactly on a boundary belongs to the candle opening there', () => {
    const b = utc(2025, 7, 21, 18);
    assert.equal(candleOpenTime(b, '30m'), b);
    assert.equal(candleCloseTime(b, '30m'), utc(2025, 7, 21, 18, 30));
    assert.equal(candleCloseTime(b - 1, '30m'), b);
    assert.equal(candleCloseTime(b, '4h'), utc(2025, 7, 21, 20));
    assert.equal(candleCloseTime(utc(2025, 6, 30, 12), '1d'), utc(2025, 7, 1)); // month boundary
    assert.equal(candleCloseTime(utc(2025, 12, 31, 23, 59), '1h'), utc(2026, 1, 1)); // year boundary
  });

  test('nextCloseAfter is strictly after t, also when t is a close time', () => {
    assert.equal(nextCloseAfter(utc(2025, 7, 21, 17, 30), '30m'), utc(2025, 7, 21, 18));
    assert.equal(nextCloseAfter(utc(2025, 7, 21, 17, 29, 59, 999), '30m'), utc(2025, 7, 21, 17, 30));
    assert.equal(nextCloseAfter(utc(2025, 7, 21, 23), '4h'), utc(2025, 7, 22, 0)); // across midnight
    assert.equal(nextCloseAfter(utc(2025, 7, 22, 0), '4h'), utc(2025, 7, 22, 4));
    assert.equal(nextCloseAfter(utc(2025, 7, 20, 12), '1d'), utc(2025, 7, 21));
    assert.equal(nextCloseAfter(utc(2025, 7, 21), '1d'), utc(2025, 7, 22));
    assert.equal(nextCloseAfter(utc(2025, 7, 23, 9), '1w'), utc(2025, 7, 28)); // Wednesday -> next Monday
  });

  test('lastClosedCandleOpen counts a candle closing exactly at asOf as closed', () => {
    assert.equal(lastClosedCandleOpen(utc(2025, 7, 21, 18), '30m'), utc(2025, 7, 21, 17, 30));
    assert.equal(lastClosedCandleOpen(utc(2025, 7, 21, 18, 0, 0, 1), '30m'), utc(2025, 7, 21, 17, 30));
    assert.equal(lastClosedCandleOpen(utc(2025, 7, 21, 17, 59, 59, 999), '30m'), utc(2025, 7, 21, 17));
    assert.equal(lastClosedCandleOpen(utc(2025, 7, 21, 16), '4h'), utc(2025, 7, 21, 12));
    assert.equal(lastClosedCandleOpen(utc(2025, 7, 21, 15, 59), '4h'), utc(2025, 7, 21, 8));
    assert.equal(lastClosedCandleOpen(utc(2025, 7, 21), '1d'), utc(2025, 7, 20));
    assert.equal(lastClosedCandleOpen(utc(2025, 7, 20, 23, 59), '1d'), utc(2025, 7, 19));
    assert.equal(lastClosedCandleOpen(utc(2025, 7, 21), '1w'), utc(2025, 7, 14));
  });

  test('property: open <= t < close, the open is on the grid, and the closed candle precedes t', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1e12, max: 4e12 }),
        fc.constantFrom('1m', '5m', '30m', '1h', '4h', '12h', '1d', '3d', '1w', '2w'),
        (time, tf) => {
          const ms = timeframeMs(tf);
          const open = candleOpenTime(time, tf);
          assert.ok(open <= time && time < open + ms);
          assert.equal(candleCloseTime(time, tf), open + ms);
          if (tf.endsWith('w')) {
            const d = new Date(open);
            assert.equal(d.getUTCDay(), 1, 'weeks open on Monday');
            assert.equal(Math.abs(open % DAY), 0, 'at 00:00 UTC');
          } else {
            assert.equal(Math.abs(open % ms), 0);
          }
          const lastOpen = lastClosedCandleOpen(time, tf);
          assert.ok(lastOpen + ms <= time && time < lastOpen + 2 * ms);
          assert.ok(nextCloseAfter(time, tf) > time && nextCloseAfter(time, tf) - ms <= time);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

const load = (base: string, tf: string) => readCandleCsv(dataFile(DATA_DIR, `${base}/USDT:USDT`, tf));

describe('closedCandles on real data', async () => {
  const btc30m = await load('BTC', '30m');
  const btc1h = await load('BTC', '1h');

  test('property: never returns a candle closing after asOf, and keeps every one closing at or before it', () => {
    const first = btc30m[0]!.time;
    const last = btc30m[btc30m.length - 1]!.time;
    // Half the runs land within 1 ms of a candle boundary, where off-by-one errors live.
    const nearBoundary = fc
      .tuple(fc.integer({ min: 0, max: btc30m.length }), fc.integer({ min: -1, max: 1 }))
      .map(([i, d]) => first + i * 30 * MIN + d);
    const anywhere = fc.integer({ min: first - DAY, max: last + 2 * DAY });
    fc.assert(
      fc.property(fc.oneof(nearBoundary, anywhere), fc.constantFrom(['30m', btc30m], ['1h', btc1h]), (asOf, pick) => {
        const [tf, candles] = pick as [string, Candle[]];
        const ms = timeframeMs(tf);
        const got = closedCandles(candles, tf, asOf);
        for (const c of got) assert.ok(c.time + ms <= asOf, `candle ${c.time} closes after asOf ${asOf}`);
        const expectedCount = candles.filter((c) => c.time + ms <= asOf).length;
        assert.equal(got.length, expectedCount);
        assert.equal(got[got.length - 1], candles[expectedCount - 1]);
      }),
      { numRuns: 4000 },
    );
  });

  test('asOf exactly at a close includes that candle; 1 ms earlier excludes it', () => {
    const c = btc30m[100]!;
    const close = c.time + 30 * MIN;
    assert.equal(closedCandles(btc30m, '30m', close).at(-1), c);
    assert.equal(closedCandles(btc30m, '30m', close - 1).at(-1), btc30m[99]);
    assert.deepEqual(closedCandles(btc30m, '30m', btc30m[0]!.time), []);
  });
});

describe('aggregateCandles', () => {
  for (const base of ['BTC', 'ETH']) {
    test(`ACCEPTANCE: ${base} 30m candles aggregate to exactly the exchange's 1h and 1d candles`, async () => {
      const m30 = await load(base, '30m');
      for (const tf of ['1h', '1d']) {
        const exchange = await load(base, tf);
        const aggregated = aggregateCandles(m30, '30m', tf);
        assert.equal(aggregated.length, exchange.length, `${base} ${tf} row count`);
        for (let i = 0; i < exchange.length; i++) {
          assert.deepStrictEqual(aggregated[i], exchange[i], `${base} ${tf} row ${i}`);
        }
      }
    });
  }

  test('ACCEPTANCE: 4h from 1h equals 4h from 30m, on the 4h UTC grid', async () => {
    for (const base of ['BTC', 'ETH']) {
      const from1h = aggregateCandles(await load(base, '1h'), '1h', '4h');
      const from30m = aggregateCandles(await load(base, '30m'), '30m', '4h');
      // 1458 hours from 2025-05-22 00:00 = 364 complete 4h candles (1456 h) + 2 hours of a partial one, dropped.
      assert.equal(from1h.length, 364);
      assert.deepStrictEqual(from1h, from30m);
      for (const c of from1h) assert.equal(c.time % (4 * HOUR), 0);
    }
  });

  const candle = (time: number, open: number, high: number, low: number, close: number, volume: number): Candle => ({
    time,
    open,
    high,
    low,
    close,
    volume,
  });

  test('combines open/high/low/close/volume and drops incomplete buckets at both ends', () => {
    const h = (k: number) => utc(2025, 7, 21, k);
    const hourly = [
      candle(h(3), 9, 9, 9, 9, 1), // alone in the 00-04 bucket: incomplete
      candle(h(4), 10, 12, 9, 11, 1.1),
      candle(h(5), 11, 15, 10, 14, 2.2),
      candle(h(6), 14, 14, 8, 9, 3.3),
      candle(h(7), 9, 10, 8.5, 10, 0.3),
      candle(h(8), 10, 11, 10, 11, 5), // 08-12 has only this one: incomplete
    ];
    // 04-08 bucket: open 10 (first), high max(12,15,14,10)=15, low min(9,10,8,8.5)=8, close 10 (last),
    // volume 1.1+2.2+3.3+0.3 = 6.9 exactly (a naive float sum gives 6.8999999999999995)
    assert.deepStrictEqual(aggregateCandles(hourly, '1h', '4h'), [candle(h(4), 10, 15, 8, 10, 6.9)]);
  });

  test('a gap inside a bucket drops that bucket only', () => {
    const m = (k: number) => utc(2025, 7, 21, 0, 30 * k);
    const thirty = [0, 1, 2, 4, 5].map((k) => candle(m(k), 1, 2, 0.5, 1, 1)); // the 01:30 candle is missing
    const hours = aggregateCandles(thirty, '30m', '1h').map((c) => c.time);
    assert.deepEqual(hours, [utc(2025, 7, 21, 0), utc(2025, 7, 21, 2)]);
  });

  test('days into Monday-aligned weeks', () => {
    // 2025-07-09 is a Wednesday: 07-09..07-13 is a partial week; 07-14..07-20 is complete.
    const days = Array.from({ length: 12 }, (_, k) =>
      candle(utc(2025, 7, 9 + k), 100 + k, 200 + k, 50 + k, 101 + k, 1),
    );
    const weeks = aggregateCandles(days, '1d', '1w');
    // week of Monday 07-14 = days k=5..11: open 105, high 211, low 55, close 112, volume 7
    assert.deepStrictEqual(weeks, [candle(utc(2025, 7, 14), 105, 211, 55, 112, 7)]);
  });

  test('rejects impossible or malformed aggregations with an explanation', () => {
    assert.throws(() => aggregateCandles([], '30m', '45m'), /45m is not a whole multiple of 30m/);
    assert.throws(() => aggregateCandles([], '3d', '1w'), /not a whole multiple/);
    assert.throws(() => aggregateCandles([], '1w', '28d'), /Mondays/);
    const a = candle(utc(2025, 7, 21, 1), 1, 1, 1, 1, 1);
    const b = candle(utc(2025, 7, 21, 0), 1, 1, 1, 1, 1);
    assert.throws(() => aggregateCandles([a, b], '1h', '4h'), /candle 1 .* is not after the previous one/);
    assert.throws(
      () => aggregateCandles([candle(utc(2025, 7, 21, 0, 30), 1, 1, 1, 1, 1)], '1h', '4h'),
      /does not open on a 1h boundary/,
    );
  });
});
