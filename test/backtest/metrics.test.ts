import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  buyAndHoldEquity,
  drawdownSeries,
  maxDrawdownPct,
  periodsPerYear,
  sharePct,
  sharpeRatio,
  sortinoRatio,
  stepReturns,
  totalReturnPct,
  tradeStats,
} from '../../src/backtest/metrics';

const close = (a: number | null, b: number, eps = 1e-9) => {
  assert.ok(a !== null, `expected ${b}, got null`);
  assert.ok(Math.abs(a - b) <= eps * Math.max(1, Math.abs(b)), `expected ${b}, got ${a}`);
};

describe('equity series', () => {
  test('step returns are v_i / v_(i-1) - 1', () => {
    // 100 -> 110: +10 %; 110 -> 99: -10 %; 99 -> 99: 0
    const r = stepReturns([100, 110, 99, 99]);
    assert.equal(r.length, 3);
    close(r[0]!, 0.1);
    close(r[1]!, -0.1);
    close(r[2]!, 0);
    assert.deepEqual(stepReturns([100]), []);
  });

  test('total return is last / first - 1, in percent', () => {
    close(totalReturnPct([10_000, 12_000, 11_500]), 15); // 11,500 / 10,000 = 1.15
    assert.equal(totalReturnPct([10_000]), 0);
  });

  test('drawdown is measured from the running peak, in percent', () => {
    // peaks: 100, 120, 120, 130, 130; drawdowns: 0, 0, 30/120 = 25 %, 0, 65/130 = 50 %
    const dd = drawdownSeries([100, 120, 90, 130, 65]);
    assert.deepEqual(
      dd.map((d) => Math.round(d * 1e9) / 1e9),
      [0, 0, 25, 0, 50],
    );
    close(maxDrawdownPct([100, 120, 90, 130, 65]), 50);
    assert.equal(maxDrawdownPct([1, 2, 3]), 0);
  });

  test('periods per year: 365 days of 30-minute steps', () => {
    assert.equal(periodsPerYear(30 * 60_000), 365 * 48); // 17,520
    assert.throws(() => periodsPerYear(0), /positive/);
  });
});

describe('risk-adjusted ratios', () => {
  // returns +1 %, -1 %, +2 %: mean = 0.02 / 3 = 0.0066667
  // deviations: 0.0033333, -0.0166667, 0.0133333; squares: 1.1111e-5, 2.7778e-4, 1.7778e-4; sum 4.6667e-4
  // sample variance = 4.6667e-4 / 2 = 2.3333e-4; sd = 0.0152753; mean / sd = 0.436436
  const returns = [0.01, -0.01, 0.02];

  test('Sharpe: mean / sample sd x sqrt(periods)', () => {
    close(sharpeRatio(returns, 4), 0.436436 * 2, 1e-5); // sqrt(4) = 2
    close(sharpeRatio(returns, 1), 0.436436, 1e-5);
  });

  test('Sortino: mean / downside deviation over all returns x sqrt(periods)', () => {
    // downside: only -0.01 -> sum of squares 1e-4, / 3 returns = 3.3333e-5, sqrt = 0.0057735; 0.0066667 / 0.0057735 = 1.154701
    close(sortinoRatio(returns, 4), 1.154701 * 2, 1e-5);
  });

  test('undefined ratios are null, never Infinity or NaN', () => {
    assert.equal(sharpeRatio([0.01, 0.01, 0.01], 4), null); // no variance
    assert.equal(sharpeRatio([0.01], 4), null); // one return
    assert.equal(sortinoRatio([0.01, 0.02], 4), null); // nothing negative
    assert.equal(sortinoRatio([], 4), null);
  });
});

describe('trades', () => {
  test('win rate, profit factor and averages from net PnL', () => {
    // wins 30 and 10 (gross profit 40); losses -20 (gross loss 20); a break-even trade counts as neither
    const s = tradeStats([
      { pnl: 30, pnlPct: 15 },
      { pnl: -20, pnlPct: -10 },
      { pnl: 10, pnlPct: 5 },
      { pnl: 0, pnlPct: 0 },
    ]);
    assert.equal(s.trades, 4);
    assert.equal(s.wins, 2);
    assert.equal(s.losses, 1);
    close(s.winRatePct, 50); // 2 of 4
    close(s.profitFactor, 2); // 40 / 20
    close(s.averagePnl, 5); // 20 / 4
    close(s.averagePnlPct, 2.5); // 10 / 4
  });

  test('no trades or no losing trade: the undefined figures are null', () => {
    const none = tradeStats([]);
    assert.equal(none.winRatePct, null);
    assert.equal(none.profitFactor, null);
    assert.equal(none.averagePnl, null);
    assert.equal(tradeStats([{ pnl: 5, pnlPct: 1 }]).profitFactor, null);
  });

  test('exposure share', () => {
    close(sharePct([true, false, false, true]), 50);
    assert.equal(sharePct([]), 0);
  });
});

describe('buy-and-hold', () => {
  test('buys at the first close with slippage and fee, marks to market, sells at the last close with both', () => {
    // balance 1000, fee 0.1 %, slippage 1 %: fill 100 x 1.01 = 101; quantity = 1000 / (101 x 1.001) = 9.890...
    const q = 1000 / (101 * 1.001);
    const v = buyAndHoldEquity([100, 110, 120], { startingBalance: 1000, fee: 0.001, slippage: 0.01 });
    assert.equal(v.length, 4);
    assert.equal(v[0], 1000);
    close(v[1]!, q * 100);
    close(v[2]!, q * 110);
    // sell at 120 x 0.99 = 118.8, less 0.1 %: q x 118.8 x 0.999 = 1173.9...
    close(v[3]!, q * 118.8 * 0.999);
    close(totalReturnPct(v), ((118.8 * 0.999) / (101 * 1.001) - 1) * 100);
  });

  test('rejects a non-positive close', () => {
    assert.throws(() => buyAndHoldEquity([100, 0], { startingBalance: 1, fee: 0, slippage: 0 }), /positive price/);
    assert.throws(() => buyAndHoldEquity([], { startingBalance: 1, fee: 0, slippage: 0 }), /no closes/);
  });
});
