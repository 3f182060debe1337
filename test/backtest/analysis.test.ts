/**
 * The figures of result.json `period`, `benchmark`, `pairs` and `breakdowns`, on small hand-made inputs: where the
 * tradable period starts, the equal-weight buy-and-hold, the per-pair drawdown, the rules a rejection cites.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { equalWeightBenchmark, pairResults, rejectionRules, tradableStart } from '../../src/backtest/analysis';
import { buyAndHoldEquity } from '../../src/backtest/metrics';
import type { TradeRow } from '../../src/core/trade-row';

const H = 3_600_000;
const times = [1, 2, 3, 4, 5, 6].map((k) => k * H);

function trade(pair: string, exit: number, pnl: number, side: 'long' | 'short' = 'long'): TradeRow {
  return {
    trade_id: `${pair}-${exit}`,
    pair,
    side,
    entry_time: exit - H,
    exit_time: exit,
    entry_price: 1,
    exit_price: 1,
    quantity: 1,
    leverage: 1,
    margin: 100,
    notional: 100,
    pnl,
    pnl_pct: pnl,
    fees: 1,
    funding: 0.5,
    exit_reason: 'model',
    mfe_pct: 0,
    mae_pct: 0,
    holds: 0,
    adjustments: 0,
    entry_confidence: 70,
    entry_reason: '',
    exit_text: '',
    trade_score: null,
    client_order_ids: [],
  };
}

describe('the tradable period', () => {
  test('starts at the end of the warm-up, or at an earlier first entry, or covers the whole range', () => {
    assert.deepEqual(tradableStart(times, 3 * H, 5 * H), { index: 2, reason: 'warmup_end' });
    assert.deepEqual(tradableStart(times, 3 * H, null), { index: 2, reason: 'warmup_end' });
    assert.deepEqual(tradableStart(times, 1 * H, null), { index: 0, reason: 'range_start' });
    // a model entered on partial indicators: its trade is measured
    assert.deepEqual(tradableStart(times, 4 * H, 2 * H), { index: 1, reason: 'first_entry' });
    assert.deepEqual(tradableStart(times, null, null), { index: 0, reason: 'no_warmup_end' });
  });
});

describe('the equal-weight buy-and-hold', () => {
  test('is the sum of each pair bought with an equal part of the balance', () => {
    const closes = [
      [100, 110, 120],
      [10, 9, 8],
    ];
    const costs = { startingBalance: 1000, fee: 0.001, slippage: 0.0005 };
    const b = equalWeightBenchmark(['A', 'B'], closes, times.slice(0, 3), costs, 8760);
    const a = buyAndHoldEquity(closes[0]!, { ...costs, startingBalance: 500 });
    const c = buyAndHoldEquity(closes[1]!, { ...costs, startingBalance: 500 });
    assert.equal(b.equity.length, 3);
    assert.ok(Math.abs(b.final_equity - (a.at(-1)! + c.at(-1)!)) < 1e-9);
    assert.ok(Math.abs(b.total_return_pct - ((a.at(-1)! + c.at(-1)!) / 1000 - 1) * 100) < 1e-9);
    assert.deepEqual([b.best_pair, b.worst_pair], ['A', 'B']);
    assert.ok(b.max_drawdown_pct > 0);
  });
});

describe('results per pair', () => {
  test('sum to the trades; the drawdown is that of the cumulative closed-trade PnL', () => {
    const trades = [
      trade('A', 2 * H, 50),
      trade('A', 3 * H, -80),
      trade('A', 4 * H, -20),
      trade('A', 5 * H, 30),
      trade('B', 3 * H, 5, 'short'),
    ];
    const rows = pairResults(['A', 'B', 'C'], trades, 1000);
    assert.deepEqual(
      rows.map((r) => [r.pair, r.trades, r.long_trades, r.short_trades]),
      [
        ['A', 4, 4, 0],
        ['B', 1, 0, 1],
        ['C', 0, 0, 0],
      ],
    );
    const a = rows[0]!;
    assert.equal(a.pnl, -20);
    // peak +50, then down to -50: 100 USDT, 10 % of the starting balance
    assert.equal(a.max_drawdown, 100);
    assert.equal(a.max_drawdown_pct, 10);
    assert.equal(a.return_contribution_pct, -2);
    assert.equal(rows[2]!.win_rate_pct, null);
  });
});

describe('rejections by rule', () => {
  test('the risk settings a rejection cites, or what it is about', () => {
    assert.deepEqual(
      rejectionRules(
        '3 trades are already open, at risk.max_open_trades 3; no new entry.; leverage 30x is above risk.max_leverage 20x.',
      ),
      ['max_leverage', 'max_open_trades'],
    );
    assert.deepEqual(rejectionRules('margin 500.00 USDT is above the available balance 100.00 USDT.'), [
      'available_balance',
    ]);
    assert.deepEqual(rejectionRules('signal_exit while flat on BTC/USDT:USDT: there is no position to close.'), [
      'position_state',
    ]);
    assert.deepEqual(rejectionRules(null), ['other']);
  });
});
