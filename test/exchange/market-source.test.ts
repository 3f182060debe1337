import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { snapshotAt } from '../../src/core/snapshot';
import type { Candle, FundingInfo } from '../../src/core/types';
import {
  LiveMarketSource,
  RecordedMarketSource,
  csvRecordedData,
  storeRecordedData,
} from '../../src/exchange/market-source';
import type { FundingRecord } from '../../src/exchange/port';
import { CandleStore } from '../../src/store/candle-store';
import { dataFile, fundingFile, readCandleCsv, readFundingCsv } from '../../src/store/csv-candles';

const DATA_DIR = path.resolve(process.cwd(), '../shared/data/binanceusdm');
const M = 60_000;
const H = 60 * M;
const TF_MS: Record<string, number> = { '30m': 30 * M, '1h': H, '4h': 4 * H, '1d': 24 * H };
const PAIRS = ['BTC/USDT:USDT', 'ETH/USDT:USDT', 'DOGE/USDT:USDT', 'USDC/USDT:USDT'];
const TIMEFRAMES = ['30m', '1h', '4h', '1d'];

/**
 * Reference data read independently of the source under test: the files as they are, and 4h built from 1h here
 * (open of the first hour, max high, min low, close of the last, summed volume; complete 4-hour groups only).
 */
async function referenceSeries(pair: string): Promise<Record<string, Candle[]>> {
  const out: Record<string, Candle[]> = {};
  for (const tf of ['30m', '1h', '1d']) out[tf] = await readCandleCsv(dataFile(DATA_DIR, pair, tf));
  const byTime = new Map(out['1h']!.map((c) => [c.time, c]));
  const fourHours: Candle[] = [];
  for (const c of out['1h']!) {
    if (c.time % (4 * H) !== 0) continue;
    const group = [0, 1, 2, 3].map((k) => byTime.get(c.time + k * H));
    if (group.some((g) => g === undefined)) continue;
    const g = group as Candle[];
    fourHours.push({
      time: c.time,
      open: g[0]!.open,
      high: Math.max(...g.map((x) => x.high)),
      low: Math.min(...g.map((x) => x.low)),
      close: g[3]!.close,
      volume: g.reduce((s, x) => s + x.volume, 0),
    });
  }
  out['4h'] = fourHours;
  return out;
}

function assertSameCandles(actual: readonly Candle[], expected: readonly Candle[], where: string): void {
  assert.equal(actual.length, expected.length, `${where}: count`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.deepEqual(
      { time: a.time, open: a.open, high: a.high, low: a.low, close: a.close },
      { time: e.time, open: e.open, high: e.high, low: e.low, close: e.close },
      `${where}: candle ${i}`,
    );
    assert.ok(Math.abs(a.volume - e.volume) <= 1e-9 * Math.max(1, e.volume), `${where}: volume of candle ${i}`);
  }
}

describe('RecordedMarketSource over ../shared/data', () => {
  const source = new RecordedMarketSource(csvRecordedData(DATA_DIR));
  const reference: Record<string, Record<string, Candle[]>> = {};
  let start = 0;
  let end = 0;

  before(async () => {
    for (const pair of PAIRS) reference[pair] = await referenceSeries(pair);
    const btc30m = reference['BTC/USDT:USDT']!['30m']!;
    start = btc30m[0]!.time;
    end = btc30m.at(-1)!.time + TF_MS['30m']!; // close time of the last recorded 30m candle
  });

  test('ACCEPTANCE: 10,000 random asOf never yield a candle closing after asOf, and the last one is the latest closed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...PAIRS),
        fc.constantFrom(...TIMEFRAMES),
        // from two days before the data to the last recorded close, biased towards candle boundaries (± 1 ms)
        fc.oneof(
          fc.integer({ min: start - 2 * 24 * H, max: end }),
          fc
            .tuple(
              fc.integer({ min: (start - 2 * 24 * H) / (30 * M), max: end / (30 * M) }),
              fc.integer({ min: -1, max: 1 }),
            )
            .map(([k, d]) => Math.min(end, k * 30 * M + d)),
        ),
        fc.integer({ min: 1, max: 120 }),
        async (pair, tf, asOf, count) => {
          const ms = TF_MS[tf]!;
          const got = await source.candles(pair, tf, asOf, count);
          for (const c of got) {
            assert.ok(c.time + ms <= asOf, `${pair} ${tf} candle ${c.time} closes after asOf ${asOf}`);
          }
          // Reference: the latest candle closed at asOf opens at floor(asOf / ms) * ms - ms (epoch-aligned grid);
          // the answer is the `count` recorded candles ending there.
          const latestClosedOpen = Math.floor(asOf / ms) * ms - ms;
          const expected = reference[pair]![tf]!.filter((c) => c.time <= latestClosedOpen).slice(-count);
          assertSameCandles(got, expected, `${pair} ${tf} asOf ${asOf} count ${count}`);
          if (expected.length > 0) assert.equal(got.at(-1)!.time, latestClosedOpen, 'not one candle too early');
        },
      ),
      { numRuns: 10_000 },
    );
  });

  test('at a candle close the candle that closes exactly then is included; 1 ms earlier it is not', async () => {
    // BTC 30m candle opening at T (first row) closes at T + 30m
    const t = reference['BTC/USDT:USDT']!['30m']![0]!.time;
    assert.deepEqual(
      (await source.candles('BTC/USDT:USDT', '30m', t + 30 * M, 5)).map((c) => c.time),
      [t],
    );
    assert.deepEqual(await source.candles('BTC/USDT:USDT', '30m', t + 30 * M - 1, 5), []);
    assert.deepEqual(await source.candles('BTC/USDT:USDT', '30m', t + 30 * M, 0), []);
  });

  test('4h is aggregated from 1h: 00:00-04:00 UTC from the four hourly candles of the file', async () => {
    const oneHour = reference['ETH/USDT:USDT']!['1h']!;
    const [h0, h1, h2, h3] = oneHour.slice(0, 4) as [Candle, Candle, Candle, Candle];
    assert.equal(h0.time % (4 * H), 0, 'the data starts at 00:00 UTC');
    const [four] = await source.candles('ETH/USDT:USDT', '4h', h0.time + 4 * H, 1);
    assert.deepEqual(
      { time: four!.time, open: four!.open, close: four!.close },
      { time: h0.time, open: h0.open, close: h3.close },
    );
    assert.equal(four!.high, Math.max(h0.high, h1.high, h2.high, h3.high));
    assert.equal(four!.low, Math.min(h0.low, h1.low, h2.low, h3.low));
  });

  test('past the end of the recorded data it refuses to serve stale candles', async () => {
    await assert.rejects(
      source.candles('BTC/USDT:USDT', '30m', end + 30 * M, 3),
      /BTC\/USDT:USDT 30m: no recorded candle for .*ends with the candle closing at 2025-07-21T18:00:00.000Z/,
    );
    // at the last close itself, everything is there
    assert.equal((await source.candles('BTC/USDT:USDT', '30m', end, 3)).at(-1)!.time, end - 30 * M);
  });

  test('funding: the latest event at or before asOf; fundingBetween is (from, to]', async () => {
    const events = await readFundingCsv(fundingFile(DATA_DIR, 'BTC/USDT:USDT'));
    const [e0, e1, e2] = events as [(typeof events)[0], (typeof events)[0], (typeof events)[0]];
    const none: FundingInfo = { rate: null, time: null };
    assert.deepEqual(await source.funding('BTC/USDT:USDT', e0.time - 1), none);
    assert.deepEqual(await source.funding('BTC/USDT:USDT', e0.time), { rate: e0.rate, time: e0.time });
    assert.deepEqual(await source.funding('BTC/USDT:USDT', e1.time - 1), { rate: e0.rate, time: e0.time });
    assert.deepEqual(await source.fundingBetween('BTC/USDT:USDT', e0.time, e1.time), [e1]);
    assert.deepEqual(await source.fundingBetween('BTC/USDT:USDT', e0.time - 1, e2.time - 1), [e0, e1]);
    assert.deepEqual(await source.fundingBetween('BTC/USDT:USDT', e1.time, e1.time), []);
  });

  test('returned candles are frozen: a caller cannot corrupt the shared history', async () => {
    const [c] = await source.candles('BTC/USDT:USDT', '1h', end, 1);
    assert.throws(() => {
      (c as { close: number }).close = 0;
    }, TypeError);
  });

  test('a pair without data, or a timeframe that cannot be built, is an error that says what is missing', async () => {
    await assert.rejects(
      source.candles('PEPE/USDT:USDT', '30m', end, 1),
      /PEPE\/USDT:USDT: no 30m candles in the CSV folder .*no candle data there\. Expected file names:\n.*<BASE>_<QUOTE>_<SETTLE>-<tf>\.csv/s,
    );
    await assert.rejects(
      source.candles('BTC/USDT:USDT', '45m', end, 1),
      /no 45m candles .* no finer recorded timeframe to aggregate them from \(recorded: 1d, 1h, 30m\)/,
    );
    await assert.rejects(source.candles('BTC/USDT:USDT', '1h', end, -1), /count must be an integer >= 0/);
  });

  test('seriesCache: built once per pair and timeframes, usable by snapshotAt, never past asOf', async () => {
    const cache = await source.seriesCache('SOL/USDT:USDT', '30m', ['1h', '4h', '1d']);
    assert.equal(await source.seriesCache('SOL/USDT:USDT', '30m', ['1h', '4h', '1d']), cache);
    assert.deepEqual(
      cache.timeframes.map((t) => t.timeframe),
      ['30m', '1h', '4h', '1d'],
    );
    const asOf = start + 20 * 24 * H + 17 * M; // mid-candle: the snapshot is at the previous 30m close
    const snap = snapshotAt(cache, asOf, { tailLength: 3, rawCandles: 2 });
    assert.equal(snap.asOf, start + 20 * 24 * H);
    for (const [tf, s] of Object.entries(snap.timeframes)) {
      assert.ok(s.lastCandleTime + TF_MS[tf]! <= asOf, `${tf} snapshot uses a candle closing after asOf`);
    }
  });
});

describe('RecordedMarketSource over the candle store', () => {
  let dir: string;
  let store: CandleStore;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'market-source-'));
    store = new CandleStore(path.join(dir, 'candles.sqlite'));
    for (const tf of ['30m', '1h', '1d']) {
      store.insertCandles(
        'binanceusdm',
        'ETH/USDT:USDT',
        tf,
        await readCandleCsv(dataFile(DATA_DIR, 'ETH/USDT:USDT', tf)),
      );
    }
    store.insertFunding('binanceusdm', 'ETH/USDT:USDT', await readFundingCsv(fundingFile(DATA_DIR, 'ETH/USDT:USDT')));
  });
  after(async () => {
    store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('answers exactly like the CSV-backed source (incl. aggregated 4h and funding)', async () => {
    const fromStore = new RecordedMarketSource(storeRecordedData(store, 'binanceusdm'));
    const fromCsv = new RecordedMarketSource(csvRecordedData(DATA_DIR));
    const first = (await fromCsv.history('ETH/USDT:USDT', '30m'))[0]!.time;
    const last = (await fromCsv.history('ETH/USDT:USDT', '30m')).at(-1)!.time + 30 * M;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...TIMEFRAMES),
        fc.integer({ min: first, max: last }),
        fc.integer({ min: 1, max: 50 }),
        async (tf, asOf, count) => {
          assert.deepEqual(
            await fromStore.candles('ETH/USDT:USDT', tf, asOf, count),
            await fromCsv.candles('ETH/USDT:USDT', tf, asOf, count),
          );
          assert.deepEqual(
            await fromStore.funding('ETH/USDT:USDT', asOf),
            await fromCsv.funding('ETH/USDT:USDT', asOf),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  test('a pair missing from the store names the database', async () => {
    const fromStore = new RecordedMarketSource(storeRecordedData(store, 'binanceusdm'));
    await assert.rejects(
      fromStore.candles('BTC/USDT:USDT', '30m', Date.UTC(2025, 5, 1), 1),
      (err: Error) => err.message.includes(store.file) && /no 30m candles/.test(err.message),
    );
  });
});

describe('LiveMarketSource', () => {
  const T = Date.UTC(2025, 5, 1); // 2025-06-01T00:00:00Z, a 30m boundary
  const candle = (time: number): Candle => ({ time, open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 });

  test('asks the exchange from the right candle and drops anything not closed at asOf', async () => {
    const calls: unknown[][] = [];
    const exchange = {
      fetchClosedCandles: (pair: string, tf: string, since: number, asOf: number): Promise<Candle[]> => {
        calls.push([pair, tf, since, asOf]);
        // a misbehaving exchange: returns the forming candle and one from the future too, unsorted
        return Promise.resolve([T, T - 30 * M, T - 60 * M, T - 90 * M, T + 30 * M].map(candle));
      },
      fetchFundingRate: (): Promise<FundingInfo> => Promise.resolve({ rate: 0.0002, time: T + 8 * H }),
      fetchFundingRateHistory: (): Promise<FundingRecord[]> => Promise.resolve([]),
    };
    const live = new LiveMarketSource(exchange);
    const asOf = T + 10 * M; // inside the candle opening at T: latest closed opens at T - 30m
    const got = await live.candles('BTC/USDT:USDT', '30m', asOf, 2);
    // 2 candles ending at T - 30m: since = T - 30m - (2 - 1) x 30m = T - 60m
    assert.deepEqual(calls, [['BTC/USDT:USDT', '30m', T - 60 * M, asOf]]);
    assert.deepEqual(
      got.map((c) => c.time),
      [T - 60 * M, T - 30 * M],
    );
    assert.deepEqual(await live.candles('BTC/USDT:USDT', '30m', asOf, 0), []);
    assert.deepEqual(await live.funding('BTC/USDT:USDT', asOf), { rate: 0.0002, time: T + 8 * H });
  });

  test('fundingBetween: (from, to], times rounded down to the minute', async () => {
    const sinces: number[] = [];
    const exchange = {
      fetchClosedCandles: (): Promise<Candle[]> => Promise.resolve([]),
      fetchFundingRate: (): Promise<FundingInfo> => Promise.resolve({ rate: null, time: null }),
      fetchFundingRateHistory: (_pair: string, since: number): Promise<FundingRecord[]> => {
        sinces.push(since);
        return Promise.resolve([
          { time: T + 3, rate: 0.0001 }, // the event at T, reported 3 ms late
          { time: T + 8 * H + 1, rate: -0.0002 },
          { time: T + 16 * H, rate: 0.0003 },
        ]);
      },
    };
    const live = new LiveMarketSource(exchange);
    assert.deepEqual(await live.fundingBetween('BTC/USDT:USDT', T, T + 8 * H), [{ time: T + 8 * H, rate: -0.0002 }]);
    assert.deepEqual(sinces, [T + 1]);
    assert.deepEqual(await live.fundingBetween('BTC/USDT:USDT', T - 1, T + 16 * H), [
      { time: T, rate: 0.0001 },
      { time: T + 8 * H, rate: -0.0002 },
      { time: T + 16 * H, rate: 0.0003 },
    ]);
  });
});
