import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createSession,
  decisionTimes,
  loadPairs,
  resultJson,
  runBacktest,
  snapshotOptionsFor,
} from '../../src/backtest/engine';
import { baselinePolicy, replayPolicy } from '../../src/backtest/policy';
import type { DecisionLog } from '../../src/backtest/decision-log';
import type { BacktestResult, BacktestResultFile } from '../../src/backtest/result';
import { snapshotAt } from '../../src/core/snapshot';
import { PaperLedger } from '../../src/exchange/paper-ledger';
import { BaselineProvider } from '../../src/llm/baseline';
import {
  ALL_PAIRS,
  DAY_MS,
  DecisionLogRecorder,
  MAIN_MS,
  leakyPolicy,
  recordedMarket,
  testConfig,
} from '../helpers/backtest';

const BTC = 'BTC/USDT:USDT';
const ETH = 'ETH/USDT:USDT';
const SOL = 'SOL/USDT:USDT';

/** first 30m candle of the data opens 2025-05-22 00:00 UTC; its close is the first possible decision time */
const DATA_START = Date.UTC(2025, 4, 22, 0, 30);

describe('the baseline through runCycle over the full BTC 30m range (LLM issue acceptance)', () => {
  let result: BacktestResult;
  let decisions: DecisionLog;
  before(async () => {
    ({ result, decisions } = await runBacktest({
      config: testConfig(),
      market: recordedMarket(),
      pairs: [BTC],
      policy: baselinePolicy(),
    }));
  });

  test('runs a cycle at every 30m close of the data', () => {
    assert.equal(result.range.from, DATA_START);
    // the last 30m candle of the data opens 2025-07-21 17:30, so the last decision time is 18:00
    assert.equal(result.range.to, Date.UTC(2025, 6, 21, 18, 0));
    assert.equal(result.range.steps, (result.range.to - result.range.from) / MAIN_MS + 1);
    assert.equal(result.range.candle_steps, result.range.steps);
    assert.equal(result.equity.length, result.range.steps);
    assert.equal(result.counters[0]!.cycles, result.range.steps);
  });

  test('opens and closes trades: it is exercised, not idle', () => {
    const entries = decisions
      .toArray()
      .filter((d) => (d.tool === 'signal_entry_long' || d.tool === 'signal_entry_short') && d.outcome === 'executed');
    const modelExits = decisions.toArray().filter((d) => d.tool === 'signal_exit' && d.source === 'baseline');
    assert.ok(entries.length >= 5, `expected several entries over two months, got ${entries.length}`);
    assert.ok(modelExits.length >= 3, `expected the baseline to close trades itself, got ${modelExits.length}`);
    assert.ok(entries.some((d) => d.tool === 'signal_entry_long'));
    assert.ok(entries.some((d) => d.tool === 'signal_entry_short'));
    // every executed entry is a trade, and every trade closed (the run ends flat)
    assert.equal(result.trades.length, entries.length);
    assert.equal(result.equity.at(-1)!.open_positions, 0);
    for (const trade of result.trades) {
      const entry = entries.find((d) => d.time === trade.entry_time);
      assert.ok(entry, `trade ${trade.trade_id} has no executed entry decision at ${trade.entry_time}`);
      assert.equal(entry.client_order_id, trade.trade_id);
      assert.equal(trade.side, entry.tool === 'signal_entry_long' ? 'long' : 'short');
      assert.ok(trade.exit_time > trade.entry_time);
    }
  });

  test('one decision per cycle: the provider every time but at the end, where open positions are closed', () => {
    const asked = decisions.toArray().filter((d) => d.source === 'baseline');
    assert.equal(asked.length, result.range.steps - 1);
    const last = decisions.toArray().filter((d) => d.time === result.range.to);
    assert.ok(last.every((d) => d.source === 'operator' && d.tool === 'signal_exit'));
  });
});

describe('all 17 pairs over the full range with the baseline', () => {
  let result: BacktestResult;
  before(async () => {
    ({ result } = await runBacktest({
      config: testConfig(),
      market: recordedMarket(),
      pairs: ALL_PAIRS,
      policy: baselinePolicy(),
    }));
  });

  test('completes: every pair cycles at every decision time, and several pairs trade', () => {
    assert.equal(result.range.pairs.length, 17);
    assert.equal(result.range.skipped_steps, 0);
    assert.equal(result.range.candle_steps, 17 * result.range.steps);
    for (const c of result.counters) assert.equal(c.cycles, result.range.steps, c.pair);
    const traded = new Set(result.trades.map((t) => t.pair));
    assert.ok(traded.size >= 8, `expected most pairs to trade, got ${[...traded].join(', ')}`);
  });

  test('one shared account: it never holds more positions than risk.max_open_trades', () => {
    const max = testConfig().risk.max_open_trades;
    assert.ok(result.equity.every((p) => p.open_positions <= max));
    assert.ok(
      result.equity.some((p) => p.open_positions === max),
      'the cap was never reached',
    );
  });

  test('the account adds up: final equity = starting balance + the net PnL of every trade', () => {
    // every position is closed at the end, so the equity is cash; the baseline's stop (-15 % of margin) sits far inside
    // the liquidation price, so no trade was liquidated (a liquidation loses the whole margin, not the trade's PnL)
    assert.equal(result.metrics.liquidations, 0);
    const sum = result.trades.reduce((s, t) => s + t.pnl, 0);
    const expected = result.metrics.starting_balance + sum;
    assert.ok(
      Math.abs(result.metrics.final_equity - expected) < 1e-6,
      `final equity ${result.metrics.final_equity} vs ${expected}`,
    );
    const fees = result.trades.reduce((s, t) => s + t.fees, 0);
    assert.ok(Math.abs(result.metrics.fees - fees) < 1e-6, `ledger fees ${result.metrics.fees} vs trades ${fees}`);
    const funding = result.trades.reduce((s, t) => s + t.funding, 0);
    assert.ok(Math.abs(result.metrics.funding - funding) < 1e-6, `funding ${result.metrics.funding} vs ${funding}`);
    assert.notEqual(funding, 0, 'funding from the data files was charged');
  });

  test('the comparison table has the policy and a buy-and-hold row per pair', () => {
    assert.equal(result.comparison[0]!.kind, 'policy');
    assert.equal(result.comparison.filter((r) => r.kind === 'buy_and_hold').length, 17);
    // the policy is the baseline: no second baseline row
    assert.equal(result.comparison.filter((r) => r.kind === 'baseline').length, 0);
  });
});

describe('buy-and-hold and baseline rows', () => {
  test('buy-and-hold buys the first decision close and sells the last, 1x, with fee and slippage', async () => {
    const config = testConfig();
    const from = DATA_START + 10 * DAY_MS;
    const to = from + 5 * DAY_MS;
    const market = recordedMarket();
    const { result } = await runBacktest({ config, market, pairs: [BTC], from, to, policy: leakyPolicy() });
    const candles = await market.history(BTC, '30m');
    const first = candles.find((c) => c.time + MAIN_MS === from)!.close;
    const last = candles.find((c) => c.time + MAIN_MS === to)!.close;
    const { taker_fee: fee, slippage } = config.paper;
    const expected = ((last * (1 - slippage) * (1 - fee)) / (first * (1 + slippage) * (1 + fee)) - 1) * 100;
    const row = result.comparison.find((r) => r.kind === 'buy_and_hold')!;
    assert.ok(Math.abs(row.total_return_pct - expected) < 1e-9, `${row.total_return_pct} vs ${expected}`);
    // a policy other than the baseline gets the baseline beside it, run over the same range
    const baseline = result.comparison.find((r) => r.kind === 'baseline');
    assert.ok(baseline);
    const alone = await runBacktest({ config, market, pairs: [BTC], from, to, policy: baselinePolicy() });
    assert.equal(baseline.total_return_pct, alone.result.metrics.total_return_pct);
    assert.equal(baseline.trades, alone.result.metrics.trades);
  });
});

describe('reproducibility', () => {
  test('the same data, config and policy give a byte-identical result.json', async () => {
    const run = async () => {
      const { result } = await runBacktest({
        config: testConfig(),
        market: recordedMarket(),
        pairs: [BTC, ETH, SOL],
        from: DATA_START + 5 * DAY_MS,
        to: DATA_START + 25 * DAY_MS,
        policy: baselinePolicy(),
        lookaheadSamples: 5,
      });
      return resultJson(result);
    };
    const a = await run();
    const b = await run();
    assert.ok(a.length > 100_000);
    assert.ok(a === b, 'the two result.json texts differ');
    const parsed = JSON.parse(a) as BacktestResultFile;
    assert.ok(parsed.trades.length > 0);
    // nothing of this machine or this moment in it
    assert.ok(!a.includes(process.cwd()), 'the result holds a local path');
    assert.ok(!/latency/i.test(a), 'the result holds a latency');
  });

  test('another config gives another run id (and client order ids)', async () => {
    const base = { market: recordedMarket(), pairs: [BTC], from: DATA_START + DAY_MS, to: DATA_START + 2 * DAY_MS };
    const a = await runBacktest({ ...base, config: testConfig(), policy: baselinePolicy() });
    const b = await runBacktest({
      ...base,
      config: testConfig({ risk: { max_leverage: 10 } }),
      policy: baselinePolicy(),
    });
    assert.notEqual(a.result.run_id, b.result.run_id);
  });
});

describe('the look-ahead check', () => {
  const from = DATA_START + 3 * DAY_MS;
  const to = DATA_START + 23 * DAY_MS;
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'backtest-lookahead-'));
  });

  test('passes for the baseline, and a replay of its decisions reproduces it and passes too', async (t) => {
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const market = recordedMarket();
    const config = testConfig();
    const log = new DecisionLogRecorder();
    const base = await runBacktest({
      config,
      market,
      pairs: [BTC, ETH],
      from,
      to,
      policy: baselinePolicy(),
      lookaheadSamples: 40,
      onDecision: log.onDecision,
    });
    assert.equal(base.result.lookahead?.samples, 40);
    assert.deepEqual(base.result.lookahead?.mismatches, []);
    assert.equal(base.result.lookahead?.passed, true);

    const file = join(dir, 'llm_decisions.jsonl');
    log.write(file);
    const replay = await runBacktest({
      config,
      market,
      pairs: [BTC, ETH],
      from,
      to,
      policy: await replayPolicy(file),
      lookaheadSamples: 20,
    });
    assert.equal(replay.result.lookahead?.passed, true, JSON.stringify(replay.result.lookahead?.mismatches));
    assert.equal(replay.result.metrics.fallbacks, 0);
    assert.ok(replay.decisions.toArray().some((d) => d.source === 'replay'));
    // the same decisions at the same times: the same trades
    const key = (r: BacktestResult) =>
      r.trades.map((x) => [x.pair, x.side, x.entry_time, x.exit_time, x.entry_price, x.exit_price, x.pnl]);
    assert.ok(base.result.trades.length > 0);
    assert.deepEqual(key(replay.result), key(base.result));
  });

  test('fails for a policy that reads the candle after the decision time', async () => {
    const { result } = await runBacktest({
      config: testConfig(),
      market: recordedMarket(),
      pairs: [BTC, ETH],
      from,
      to,
      policy: leakyPolicy(),
      lookaheadSamples: 40,
      compareBaseline: false,
    });
    const la = result.lookahead!;
    assert.equal(la.passed, false);
    assert.ok(la.mismatches.length >= 5, `only ${la.mismatches.length} of 40 samples caught`);
    for (const m of la.mismatches) {
      assert.equal(m.kind, 'decision');
      assert.ok(m.time >= from && m.time <= to);
    }
  });
});

describe('the in-process market step', () => {
  test('snapshots equal snapshotAt over the whole history, forward, after a jump back, and at the first candle', async () => {
    const config = testConfig();
    const market = recordedMarket();
    const pairs = await loadPairs(market, config, [BTC]);
    const cache = pairs.get(BTC)!.cache;
    for (const kind of ['light', 'prompt'] as const) {
      const opts = snapshotOptionsFor(config, kind);
      const session = createSession({
        config,
        ledger: new PaperLedger(config.paper),
        pairs,
        provider: new BaselineProvider(),
        prompt: null,
        snapshotOptions: opts,
        closedTrades: [],
        learningDecisions: new Map(),
      });
      const times: number[] = [];
      for (let t = DATA_START; t < DATA_START + 3 * DAY_MS; t += MAIN_MS) times.push(t);
      // a jump back (a rerun) and a jump forward across many informative candles
      times.push(DATA_START + DAY_MS, DATA_START + 40 * DAY_MS, DATA_START + 40 * DAY_MS + MAIN_MS);
      let since: number | null = null;
      for (const t of times) {
        const view = await session.steps.fetchMarket({
          pair: BTC,
          asOf: t,
          since: since !== null && t > since ? since : null,
        });
        assert.deepEqual(view.snapshot, snapshotAt(cache, t, opts), `${kind} snapshot at ${new Date(t).toISOString()}`);
        since = t;
      }
    }
  });

  test('candles since the previous cycle and the account come from the ledger', async () => {
    const config = testConfig();
    const pairs = await loadPairs(recordedMarket(), config, [BTC]);
    const ledger = new PaperLedger(config.paper);
    const session = createSession({
      config,
      ledger,
      pairs,
      provider: new BaselineProvider(),
      prompt: null,
      snapshotOptions: snapshotOptionsFor(config, 'light'),
      closedTrades: [],
      learningDecisions: new Map(),
    });
    const t0 = DATA_START + 2 * DAY_MS;
    const first = await session.steps.fetchMarket({ pair: BTC, asOf: t0, since: null });
    assert.deepEqual(
      first.candlesSince.map((c) => c.time),
      [t0 - MAIN_MS],
    );
    assert.equal(first.account.equity, config.paper.starting_balance);
    assert.deepEqual(first.account.positions, []);
    // three candles later: the three candles closed in (t0, t0 + 3 x 30m]
    const later = await session.steps.fetchMarket({ pair: BTC, asOf: t0 + 3 * MAIN_MS, since: t0 });
    assert.deepEqual(
      later.candlesSince.map((c) => c.time),
      [t0, t0 + MAIN_MS, t0 + 2 * MAIN_MS],
    );
    assert.equal(ledger.syncedTo(BTC), t0 + 3 * MAIN_MS);
    assert.equal(later.limits.minNotional, config.paper.min_notional);
    assert.equal(later.limits.takerFeeRate, config.paper.taker_fee);
  });
});

describe('the range', () => {
  test('a range outside the data is refused with the recorded range in the message', async () => {
    const config = testConfig();
    const pairs = await loadPairs(recordedMarket(), config, [BTC]);
    const rts = [pairs.get(BTC)!];
    assert.throws(
      () => decisionTimes(rts, '30m', Date.UTC(2025, 0, 1), null),
      /before the data; the data of every pair covers 2025-05-22T00:30/,
    );
    assert.throws(() => decisionTimes(rts, '30m', null, Date.UTC(2026, 0, 1)), /after the data/);
    // a time between closes means the next close; --to is inclusive
    const times = decisionTimes(rts, '30m', DATA_START + 10 * 60_000, DATA_START + 2 * MAIN_MS);
    assert.deepEqual(times, [DATA_START + MAIN_MS, DATA_START + 2 * MAIN_MS]);
  });

  test('a pair without data is refused', async () => {
    await assert.rejects(
      runBacktest({
        config: testConfig(),
        market: recordedMarket(),
        pairs: ['NOPE/USDT:USDT'],
        policy: baselinePolicy(),
      }),
      /NOPE\/USDT:USDT/,
    );
  });
});
