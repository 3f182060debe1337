import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { binanceusdm } from 'ccxt';
import type { Candle } from '../../src/core/types';
import { CandleStore } from '../../src/store/candle-store';
import { downloadMarketData, type MarketDataClient } from '../../src/store/download';

const M = 60_000;
const H = 60 * M;
const T0 = Date.UTC(2025, 5, 1); // 2025-06-01T00:00:00Z
const SYMBOL = 'BTC/USDT:USDT';

/** The final (closed) candle the fake exchange has for an open time: values derived from the time. */
function finalCandle(time: number): Candle {
  const i = (time - T0) / H;
  return { time, open: 100 + i, high: 102 + i, low: 99 + i, close: 101 + i, volume: 1000 + i };
}

/**
 * A ccxt-like exchange with 1h candles from T0 - 30 days and funding every 8 h (reported 3 ms late), served like
 * Binance: `since` inclusive, at most `limit` rows, and the candle still forming at `now` included with partial
 * values (close = 1, volume = 1) that differ from its final ones.
 */
class FakeExchange implements MarketDataClient {
  now = 0;
  ohlcvCalls: { since: number | undefined; limit: number | undefined }[] = [];
  fundingCalls: { since: number | undefined; limit: number | undefined }[] = [];
  failOnCall: number | null = null;
  malformedAt: number | null = null;

  milliseconds(): number {
    return this.now;
  }

  fetchOHLCV(symbol: string, timeframe?: string, since?: number, limit?: number): Promise<(number | undefined)[][]> {
    this.ohlcvCalls.push({ since, limit });
    if (this.failOnCall === this.ohlcvCalls.length) {
      return Promise.reject(new Error('ECONNRESET socket hang up'));
    }
    assert.equal(symbol, SYMBOL);
    assert.equal(timeframe, '1h');
    const rows: (number | undefined)[][] = [];
    for (let t = Math.ceil((since ?? T0) / H) * H; t <= this.now && rows.length < (limit ?? 500); t += H) {
      if (t < T0 - 30 * 24 * H) continue;
      const c = finalCandle(t);
      const forming = t + H > this.now;
      if (t === this.malformedAt) rows.push([t, c.open, c.high, c.low, c.close, undefined]);
      else rows.push([t, c.open, c.high, c.low, forming ? 1 : c.close, forming ? 1 : c.volume]);
    }
    return Promise.resolve(rows);
  }

  fetchFundingRateHistory(
    symbol?: string,
    since?: number,
    limit?: number,
  ): Promise<{ fundingRate: number | undefined; timestamp?: number | undefined }[]> {
    this.fundingCalls.push({ since, limit });
    assert.equal(symbol, SYMBOL);
    const out: { fundingRate: number; timestamp: number }[] = [];
    for (let k = -90; T0 + k * 8 * H <= this.now && out.length < (limit ?? 100); k++) {
      const timestamp = T0 + k * 8 * H + 3;
      if (timestamp >= (since ?? 0) && timestamp <= this.now) out.push({ fundingRate: k / 100_000, timestamp });
    }
    return Promise.resolve(out);
  }
}

describe('downloadMarketData', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'download-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const request = { exchange: 'binanceusdm', pairs: [SYMBOL], timeframes: ['1h'], days: 2, funding: false, limit: 10 };

  test('paginates by since/limit, stores only closed candles, and resumes from the last stored one', async () => {
    const store = new CandleStore(path.join(dir, 'a.sqlite'));
    const fake = new FakeExchange();
    try {
      fake.now = T0 + 48 * H + 20 * M; // the candle opening at T0 + 48h is forming
      const [first] = await downloadMarketData(fake, store, request);
      // window: now - 2 days = T0 + 20m, aligned down to the hour = T0; closed candles T0 .. T0 + 47h = 48 candles.
      // pages of 10 from T0: since T0, +10h, +20h, +30h, +40h (the last page is 40h..48h incl. the forming one)
      assert.deepEqual(
        fake.ohlcvCalls.map((c) => (c.since! - T0) / H),
        [0, 10, 20, 30, 40],
      );
      assert.ok(fake.ohlcvCalls.every((c) => c.limit === 10));
      assert.equal(first!.requests, 5);
      assert.equal(first!.added, 48);
      assert.equal(first!.forming, 1);
      const stored = store.allCandles('binanceusdm', SYMBOL, '1h');
      assert.deepEqual(
        stored,
        Array.from({ length: 48 }, (_, i) => finalCandle(T0 + i * H)),
      );
      assert.ok(
        stored.every((c) => c.time + H <= fake.now),
        'no stored candle closes after the download time',
      );

      // 5 hours and 10 minutes later: only what is new is fetched, starting at the candle that was forming
      fake.now = T0 + 53 * H + 30 * M;
      fake.ohlcvCalls = [];
      const [second] = await downloadMarketData(fake, store, request);
      assert.deepEqual(
        fake.ohlcvCalls.map((c) => (c.since! - T0) / H),
        [48],
      );
      assert.equal(second!.added, 5); // 48h .. 52h closed; 53h forming
      assert.equal(second!.forming, 1);
      // the candle that was forming during the first run is stored with its final values, not the partial ones
      assert.deepEqual(store.allCandles('binanceusdm', SYMBOL, '1h').at(48), finalCandle(T0 + 48 * H));
      assert.equal(store.lastCandleTime('binanceusdm', SYMBOL, '1h'), T0 + 52 * H);

      // nothing new has closed: no request at all
      fake.ohlcvCalls = [];
      const [third] = await downloadMarketData(fake, store, request);
      assert.deepEqual(fake.ohlcvCalls, []);
      assert.deepEqual(third!.ranges, []);
      assert.equal(third!.added, 0);
    } finally {
      store.close();
    }
  });

  test('a longer window than before fills the gap before the first stored candle, without refetching the rest', async () => {
    const store = new CandleStore(path.join(dir, 'b.sqlite'));
    const fake = new FakeExchange();
    try {
      fake.now = T0 + 48 * H + 20 * M;
      await downloadMarketData(fake, store, request);
      fake.ohlcvCalls = [];
      const [result] = await downloadMarketData(fake, store, { ...request, days: 3 });
      // window start now - 3 days = T0 - 24h + 20m -> T0 - 24h; the 24 candles T0 - 24h .. T0 - 1h are missing
      assert.deepEqual(result!.ranges, [{ from: T0 - 24 * H, to: T0 }]);
      assert.deepEqual(
        fake.ohlcvCalls.map((c) => (c.since! - T0) / H),
        [-24, -14, -4],
      );
      assert.equal(result!.added, 24);
      assert.deepEqual(store.candleExtent('binanceusdm', SYMBOL, '1h'), {
        count: 72,
        first: T0 - 24 * H,
        last: T0 + 47 * H,
      });
    } finally {
      store.close();
    }
  });

  test('funding: paginated, times rounded down to the minute, resumed after the last stored event', async () => {
    const store = new CandleStore(path.join(dir, 'c.sqlite'));
    const fake = new FakeExchange();
    try {
      fake.now = T0 + 48 * H + 20 * M;
      const fundingOnly = { ...request, timeframes: [], funding: true, limit: 2 };
      const [first] = await downloadMarketData(fake, store, fundingOnly);
      // window from now - 2 days = T0 + 20m: events at T0 + 8h .. T0 + 48h (k = 1..6), 2 per page, then an empty page
      assert.deepEqual(
        store.allFunding('binanceusdm', SYMBOL),
        [1, 2, 3, 4, 5, 6].map((k) => ({ time: T0 + k * 8 * H, rate: k / 100_000 })),
      );
      assert.equal(first!.requests, 4);
      assert.deepEqual(
        fake.fundingCalls.map((c) => c.since),
        [T0 + 20 * M, T0 + 16 * H + 4, T0 + 32 * H + 4, T0 + 48 * H + 4],
      );

      fake.now = T0 + 64 * H + 5 * M;
      fake.fundingCalls = [];
      const [second] = await downloadMarketData(fake, store, fundingOnly);
      assert.equal(fake.fundingCalls[0]!.since, T0 + 48 * H + M); // the minute after the last stored event
      assert.equal(second!.added, 2); // T0 + 56h and T0 + 64h
      assert.equal(store.lastFundingTime('binanceusdm', SYMBOL), T0 + 64 * H);
    } finally {
      store.close();
    }
  });

  test('malformed rows are counted, reported and skipped; the rest is stored', async () => {
    const store = new CandleStore(path.join(dir, 'd.sqlite'));
    const fake = new FakeExchange();
    try {
      fake.now = T0 + 48 * H + 20 * M;
      fake.malformedAt = T0 + 5 * H;
      const [result] = await downloadMarketData(fake, store, request);
      assert.equal(result!.malformed, 1);
      assert.match(result!.problems[0]!, /BTC\/USDT:USDT 1h: row \[.*\] is not \[openTime ms, open, high, low/);
      assert.equal(result!.added, 47);
      assert.equal(store.candles('binanceusdm', SYMBOL, '1h', T0 + 5 * H, T0 + 5 * H).length, 0);
    } finally {
      store.close();
    }
  });

  test('a failing request names the series and keeps what was stored; running again resumes', async () => {
    const store = new CandleStore(path.join(dir, 'e.sqlite'));
    const fake = new FakeExchange();
    try {
      fake.now = T0 + 48 * H + 20 * M;
      fake.failOnCall = 3;
      await assert.rejects(
        downloadMarketData(fake, store, request),
        /binanceusdm BTC\/USDT:USDT 1h: request since 2025-06-01T20:00:00.000Z failed: Error: ECONNRESET .*run the same command again to resume/,
      );
      assert.equal(store.lastCandleTime('binanceusdm', SYMBOL, '1h'), T0 + 19 * H); // two pages of 10 were stored
      fake.failOnCall = null;
      fake.ohlcvCalls = [];
      const [result] = await downloadMarketData(fake, store, request);
      assert.equal(fake.ohlcvCalls[0]!.since, T0 + 20 * H);
      assert.equal(result!.added, 28);
    } finally {
      store.close();
    }
  });

  test('progress is reported per page and per finished series', async () => {
    const store = new CandleStore(path.join(dir, 'f.sqlite'));
    const fake = new FakeExchange();
    try {
      fake.now = T0 + 24 * H + 20 * M;
      const events: { series: string; added: number; done: boolean; index: number; total: number }[] = [];
      await downloadMarketData(fake, store, { ...request, days: 1, funding: true }, (p) =>
        events.push({ series: p.series, added: p.added, done: p.done, index: p.index, total: p.total }),
      );
      // 1h: window T0 .. now, 24 closed candles in pages of 10: 10, 20, 24 (the last page also holds the forming one)
      assert.deepEqual(
        events.filter((e) => e.series === '1h'),
        [
          { series: '1h', added: 10, done: false, index: 0, total: 2 },
          { series: '1h', added: 20, done: false, index: 0, total: 2 },
          { series: '1h', added: 24, done: false, index: 0, total: 2 },
          { series: '1h', added: 24, done: true, index: 0, total: 2 },
        ],
      );
      assert.deepEqual(events.at(-1), { series: 'funding', added: 3, done: true, index: 1, total: 2 });
    } finally {
      store.close();
    }
  });

  test('rejects an invalid request before any request is sent', async () => {
    const store = new CandleStore(path.join(dir, 'g.sqlite'));
    const fake = new FakeExchange();
    try {
      await assert.rejects(downloadMarketData(fake, store, { ...request, days: 0 }), /days must be a number > 0/);
      await assert.rejects(downloadMarketData(fake, store, { ...request, limit: 0 }), /limit must be an integer >= 1/);
      await assert.rejects(
        downloadMarketData(fake, store, { ...request, timeframes: ['1x'] }),
        /invalid timeframe "1x"/,
      );
      await assert.rejects(downloadMarketData(fake, store, { ...request, pairs: [] }), /at least one pair/);
      assert.deepEqual(fake.ohlcvCalls, []);
    } finally {
      store.close();
    }
  });

  test('a real ccxt exchange instance fits the MarketDataClient interface', async () => {
    // compile-time: tsc rejects this function if ccxt's types drift from the interface
    const asClient = (exchange: binanceusdm): MarketDataClient => exchange;
    const { binanceusdm: BinanceUsdm } = await import('ccxt');
    const client = asClient(new BinanceUsdm({ enableRateLimit: true }));
    const before = Date.now();
    const now = client.milliseconds();
    assert.ok(now >= before && now <= Date.now());
    assert.equal(typeof client.fetchOHLCV, 'function');
    assert.equal(typeof client.fetchFundingRateHistory, 'function');
  });
});
