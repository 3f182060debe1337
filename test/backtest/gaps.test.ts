/**
 * Gaps are reported, never hidden: a backtest over data with missing candles lists every gap with its range in
 * result.json `dataQuality`, and makes no decision on a snapshot whose latest candle (main or informative) is missing:
 * the cycle is skipped and listed in `dataQuality.skipped_cycles`.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runBacktest, sampleIndexes } from '../../src/backtest/engine';
import { baselinePolicy } from '../../src/backtest/policy';
import { RecordedMarketSource, csvRecordedData, type RecordedData } from '../../src/exchange/market-source';
import { DATA_DIR, testConfig } from '../helpers/backtest';

const BTC = 'BTC/USDT:USDT';
const HOUR = 3_600_000;
const HALF_HOUR = HOUR / 2;

/** The recorded data with some candles left out: `drop` maps a timeframe to the open times removed. */
function withGaps(drop: Record<string, readonly number[]>): RecordedData {
  const csv = csvRecordedData(DATA_DIR);
  return {
    description: `${csv.description} with gaps`,
    timeframes: (pair) => csv.timeframes(pair),
    loadCandles: async (pair, tf) =>
      (await csv.loadCandles(pair, tf)).filter((c) => !(drop[tf] ?? []).includes(c.time)),
    loadFunding: (pair) => csv.loadFunding(pair),
  };
}

describe('backtest over data with gaps', () => {
  test('a missing 30m and a missing 1h candle: both gaps listed, the cycles they affect skipped and listed', async () => {
    const m30 = Date.UTC(2025, 4, 26, 3); // 30m candle 03:00-03:30 missing
    const h1 = Date.UTC(2025, 4, 27, 10); // 1h candle 10:00-11:00 missing
    const market = new RecordedMarketSource(withGaps({ '30m': [m30], '1h': [h1] }));
    const from = Date.UTC(2025, 4, 25);
    const to = Date.UTC(2025, 4, 28);
    const { result, decisions } = await runBacktest({
      config: testConfig(),
      market,
      pairs: [BTC],
      from,
      to,
      policy: baselinePolicy(),
    });

    const series = (tf: string) => result.dataQuality.series.find((s) => s.pair === BTC && s.timeframe === tf)!;
    assert.deepEqual(series('30m').gaps, [{ from: m30, to: m30, missing: 1 }]);
    assert.deepEqual(series('1h').gaps, [{ from: h1, to: h1, missing: 1 }]);
    // 4h is aggregated from 1h: the 08:00-12:00 candle cannot be built
    assert.deepEqual(series('4h').gaps, [{ from: Date.UTC(2025, 4, 27, 8), to: Date.UTC(2025, 4, 27, 8), missing: 1 }]);
    assert.equal(series('4h').origin, 'aggregated');
    assert.equal(series('1d').missing, 0);

    assert.deepEqual(
      result.dataQuality.skipped_cycles.map((s) => [s.timeframe, new Date(s.from).toISOString(), s.cycles]),
      [
        // the 30m candle closing at 03:30
        ['30m', '2025-05-26T03:30:00.000Z', 1],
        // the 1h candle closing at 11:00 is the latest closed 1h candle at 11:00 and 11:30
        ['1h', '2025-05-27T11:00:00.000Z', 2],
        // the 4h candle closing at 12:00 is the latest closed one from 12:00 to 15:30
        ['4h', '2025-05-27T12:00:00.000Z', 8],
      ],
    );
    assert.equal(result.range.skipped_steps, 11);
    const decided = new Set(decisions.toArray().map((d) => d.time));
    for (const s of result.dataQuality.skipped_cycles) {
      for (let t = s.from; t <= s.to; t += HALF_HOUR)
        assert.ok(!decided.has(t), `decided at ${new Date(t).toISOString()}`);
    }
    // the cycles around the gaps did run
    assert.ok(decided.has(Date.UTC(2025, 4, 26, 3)) && decided.has(Date.UTC(2025, 4, 26, 4)));
  });

  test('a look-ahead sample that falls on a skipped cycle is taken at the next cycle: every sample asked for is rerun', async () => {
    // the 4h gap skips 8 consecutive cycles: with these counts some evenly spaced samples fall into a skipped cycle
    const market = new RecordedMarketSource(withGaps({ '1h': [Date.UTC(2025, 4, 27, 10)] }));
    const hitSkip: number[] = [];
    for (const samples of [5, 9, 16, 30]) {
      const { result } = await runBacktest({
        config: testConfig(),
        market,
        pairs: [BTC],
        from: Date.UTC(2025, 4, 25),
        to: Date.UTC(2025, 4, 28),
        policy: baselinePolicy(),
        lookaheadSamples: samples,
      });
      assert.equal(result.lookahead?.samples, samples, `${samples} samples asked for`);
      assert.equal(result.lookahead?.passed, true);
      // one pair, every 30m from range.from: sample index i is the decision time from + i x 30m
      for (const i of sampleIndexes(result.range.steps, samples)) {
        const t = result.range.from + i * HALF_HOUR;
        if (result.dataQuality.skipped_cycles.some((s) => s.from <= t && t <= s.to)) hitSkip.push(samples);
      }
    }
    // the case under test did occur
    assert.ok(hitSkip.length > 0, 'no sample fell on a skipped cycle: choose other counts');
  });

  test('complete data: no gaps, nothing skipped', async () => {
    const market = new RecordedMarketSource(csvRecordedData(DATA_DIR));
    const { result } = await runBacktest({
      config: testConfig(),
      market,
      pairs: [BTC],
      from: Date.UTC(2025, 4, 25),
      to: Date.UTC(2025, 4, 26),
      policy: baselinePolicy(),
    });
    assert.ok(result.dataQuality.series.every((s) => s.missing === 0 && s.gaps.length === 0));
    assert.deepEqual(result.dataQuality.skipped_cycles, []);
  });
});
