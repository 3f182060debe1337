import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CandleStore, candleDbPath } from '../../src/store/candle-store';
import type { Candle } from '../../src/core/types';

const H = 3_600_000;
const T0 = 1_747_872_000_000; // 2025-05-22T00:00:00Z

/** `n` 1h candles from T0 + start hours, with prices derived from the index so each row is distinguishable. */
function hourly(start: number, n: number): Candle[] {
  return Array.from({ length: n }, (_, k) => {
    const i = start + k;
    return { time: T0 + i * H, open: 100 + i, high: 101 + i, low: 99 + i, close: 100.5 + i, volume: 10 + i };
  });
}

describe('CandleStore', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'candle-store-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('inserts count only new rows; re-inserting or overlapping adds only what is missing', () => {
    const store = new CandleStore(path.join(dir, 'a.sqlite'));
    try {
      assert.equal(store.insertCandles('binanceusdm', 'BTC/USDT:USDT', '1h', hourly(0, 10)), 10);
      assert.equal(store.insertCandles('binanceusdm', 'BTC/USDT:USDT', '1h', hourly(0, 10)), 0);
      // hours 5..14 overlap 5..9: 5 new
      assert.equal(store.insertCandles('binanceusdm', 'BTC/USDT:USDT', '1h', hourly(5, 10)), 5);
      // same times under another symbol, timeframe, exchange or price type are different series
      assert.equal(store.insertCandles('binanceusdm', 'ETH/USDT:USDT', '1h', hourly(0, 3)), 3);
      assert.equal(store.insertCandles('binanceusdm', 'BTC/USDT:USDT', '2h', hourly(0, 3)), 3);
      assert.equal(store.insertCandles('bybit', 'BTC/USDT:USDT', '1h', hourly(0, 3)), 3);
      assert.equal(store.insertCandles('binanceusdm', 'BTC/USDT:USDT', '1h', hourly(0, 3), 'mark'), 3);
      assert.equal(store.allCandles('binanceusdm', 'BTC/USDT:USDT', '1h').length, 15);
    } finally {
      store.close();
    }
  });

  test('a stored row is kept as it is when a different row with the same key arrives (insert-or-ignore)', () => {
    const store = new CandleStore(path.join(dir, 'b.sqlite'));
    try {
      const [first] = hourly(0, 1) as [Candle];
      store.insertCandles('x', 'BTC/USDT:USDT', '1h', [first]);
      assert.equal(store.insertCandles('x', 'BTC/USDT:USDT', '1h', [{ ...first, close: 1 }]), 0);
      assert.deepEqual(store.allCandles('x', 'BTC/USDT:USDT', '1h'), [first]);
    } finally {
      store.close();
    }
  });

  test('range queries: inclusive open-time bounds, oldest first whatever the insert order', () => {
    const store = new CandleStore(path.join(dir, 'c.sqlite'));
    try {
      const candles = hourly(0, 24);
      store.insertCandles('x', 'BTC/USDT:USDT', '1h', [...candles].reverse());
      assert.deepEqual(store.candles('x', 'BTC/USDT:USDT', '1h', T0 + 3 * H, T0 + 6 * H), candles.slice(3, 7));
      assert.deepEqual(store.candles('x', 'BTC/USDT:USDT', '1h', T0 + 3 * H + 1, T0 + 6 * H - 1), candles.slice(4, 6));
      assert.deepEqual(store.candles('x', 'BTC/USDT:USDT', '1h', T0 + 30 * H, T0 + 40 * H), []);
      // the 5 candles closed at T0 + 10h: open times 5h..9h (the one opening at 10h is still forming)
      assert.deepEqual(store.lastCandles('x', 'BTC/USDT:USDT', '1h', T0 + 10 * H - H, 5), candles.slice(5, 10));
      assert.deepEqual(store.lastCandles('x', 'BTC/USDT:USDT', '1h', T0 + 2 * H, 5), candles.slice(0, 3));
      assert.equal(store.lastCandleTime('x', 'BTC/USDT:USDT', '1h'), T0 + 23 * H);
      assert.equal(store.lastCandleTime('x', 'BTC/USDT:USDT', '4h'), null);
      assert.deepEqual(store.candleExtent('x', 'BTC/USDT:USDT', '1h'), { count: 24, first: T0, last: T0 + 23 * H });
      assert.equal(store.candleExtent('x', 'ETH/USDT:USDT', '1h'), null);
    } finally {
      store.close();
    }
  });

  test('mark-price candles are a separate series of the same symbol and timeframe', () => {
    const store = new CandleStore(path.join(dir, 'd.sqlite'));
    try {
      const trade = hourly(0, 4);
      const mark = hourly(0, 2).map((c) => ({ ...c, close: c.close + 0.25, volume: 0 }));
      store.insertCandles('x', 'BTC/USDT:USDT', '8h', trade);
      store.insertCandles('x', 'BTC/USDT:USDT', '8h', mark, 'mark');
      assert.deepEqual(store.allCandles('x', 'BTC/USDT:USDT', '8h'), trade);
      assert.deepEqual(store.allCandles('x', 'BTC/USDT:USDT', '8h', 'mark'), mark);
      assert.equal(store.lastCandleTime('x', 'BTC/USDT:USDT', '8h', 'mark'), T0 + H);
      assert.deepEqual(store.seriesOf('x', 'BTC/USDT:USDT'), [
        { timeframe: '8h', priceType: 'mark' },
        { timeframe: '8h', priceType: 'trade' },
      ]);
    } finally {
      store.close();
    }
  });

  test('funding: insert-or-ignore, range (inclusive), last time', () => {
    const store = new CandleStore(path.join(dir, 'e.sqlite'));
    try {
      const events = [0, 8, 16, 24].map((h, i) => ({ time: T0 + h * H, rate: 0.0001 * (i + 1) }));
      assert.equal(store.lastFundingTime('x', 'BTC/USDT:USDT'), null);
      assert.equal(store.insertFunding('x', 'BTC/USDT:USDT', events), 4);
      assert.equal(store.insertFunding('x', 'BTC/USDT:USDT', events), 0);
      assert.deepEqual(store.funding('x', 'BTC/USDT:USDT', T0 + 8 * H, T0 + 16 * H), events.slice(1, 3));
      assert.deepEqual(store.allFunding('x', 'BTC/USDT:USDT'), events);
      assert.equal(store.lastFundingTime('x', 'BTC/USDT:USDT'), T0 + 24 * H);
      assert.deepEqual(store.fundingExtent('x', 'BTC/USDT:USDT'), { count: 4, first: T0, last: T0 + 24 * H });
    } finally {
      store.close();
    }
  });

  test('summary lists every series with its count and extent', () => {
    const store = new CandleStore(path.join(dir, 'f.sqlite'));
    try {
      store.insertCandles('binanceusdm', 'ETH/USDT:USDT', '1h', hourly(2, 3));
      store.insertCandles('binanceusdm', 'BTC/USDT:USDT', '1h', hourly(0, 5));
      store.insertFunding('binanceusdm', 'BTC/USDT:USDT', [{ time: T0, rate: 0.0001 }]);
      assert.deepEqual(store.summary(), {
        candles: [
          {
            exchange: 'binanceusdm',
            symbol: 'BTC/USDT:USDT',
            timeframe: '1h',
            priceType: 'trade',
            count: 5,
            first: T0,
            last: T0 + 4 * H,
          },
          {
            exchange: 'binanceusdm',
            symbol: 'ETH/USDT:USDT',
            timeframe: '1h',
            priceType: 'trade',
            count: 3,
            first: T0 + 2 * H,
            last: T0 + 4 * H,
          },
        ],
        funding: [{ exchange: 'binanceusdm', symbol: 'BTC/USDT:USDT', count: 1, first: T0, last: T0 }],
      });
    } finally {
      store.close();
    }
  });

  test('a candle with a non-finite value or a fractional time is refused, naming the file, and nothing is stored', () => {
    const file = path.join(dir, 'g.sqlite');
    const store = new CandleStore(file);
    try {
      const good = hourly(0, 3);
      const bad = [...good, { ...good[0]!, time: T0 + 10 * H, close: Number.NaN }];
      assert.throws(
        () => store.insertCandles('x', 'BTC/USDT:USDT', '1h', bad),
        (err: Error) => err.message.includes(file) && /candle 3 .*finite numbers/.test(err.message),
      );
      assert.throws(
        () => store.insertCandles('x', 'BTC/USDT:USDT', '1h', [{ ...good[0]!, time: T0 + 0.5 }]),
        /time must be integer Unix ms/,
      );
      assert.throws(() => store.insertFunding('x', 'BTC/USDT:USDT', [{ time: T0, rate: Number.NaN }]), /rate a finite/);
      assert.equal(store.lastCandleTime('x', 'BTC/USDT:USDT', '1h'), null);
    } finally {
      store.close();
    }
  });

  test('persists across reopen, uses WAL, and creates missing parent folders', () => {
    const file = path.join(dir, 'nested', 'deeper', 'h.sqlite');
    const store = new CandleStore(file);
    store.insertCandles('x', 'BTC/USDT:USDT', '1h', hourly(0, 2));
    store.close();
    const again = new CandleStore(file, { readonly: true });
    try {
      assert.equal(again.allCandles('x', 'BTC/USDT:USDT', '1h').length, 2);
    } finally {
      again.close();
    }
    const raw = new Database(file, { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
  });

  test('errors name the database file and say what to do', async () => {
    const missing = path.join(dir, 'missing.sqlite');
    assert.throws(
      () => new CandleStore(missing, { readonly: true }),
      (err: Error) => err.message.includes(missing) && /import or download data first/.test(err.message),
    );
    const garbage = path.join(dir, 'garbage.sqlite');
    await writeFile(garbage, 'this is not a database, just text that is long enough to look like a header page');
    assert.throws(
      () => new CandleStore(garbage),
      (err: Error) => err.message.includes(garbage) && /not a database/.test(err.message),
    );
  });

  test('candleDbPath puts candles.sqlite in the data_dir', () => {
    assert.equal(candleDbPath('/srv/user_data/'), '/srv/user_data/candles.sqlite');
    assert.equal(candleDbPath('user_data'), path.resolve('user_data/candles.sqlite'));
  });
});
