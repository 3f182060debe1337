import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyExecution,
  applyFill,
  applyFunding,
  closeTrade,
  feeRate,
  floorToStep,
  fundingPayment,
  leveragedReturn,
  liquidationPrice,
  marginFor,
  notional,
  quantityFor,
  timeHeldMs,
  tradingFee,
  unrealizedPnl,
  updateExcursions,
  type FillContext,
} from '../../src/core/position';
import type { Candle, Execution, Fill, MarketStateSummary } from '../../src/core/types';

/** Equal within 1e-9 relative (float arithmetic of hand-checked decimal figures). */
function near(actual: number, expected: number, what: string): void {
  const tolerance = 1e-9 * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: expected ${expected}, got ${actual}`);
}

const MARKET: MarketStateSummary = {
  price: 50_000,
  atr14: 400,
  rsi14: 55,
  ema20: 49_800,
  ema50: 49_500,
  macdHist: 12,
  adx14: 22,
};
const T0 = Date.UTC(2024, 0, 1, 0, 0);
const HALF_HOUR = 30 * 60_000;

function fill(side: 'buy' | 'sell', quantity: number, price: number, fee: number, id: string, time = T0): Fill {
  return { clientOrderId: id, pair: 'BTC/USDT:USDT', side, price, quantity, fee, time, reduceOnly: false };
}

const OPEN_CTX: FillContext = {
  maintenanceMarginRate: 0.005,
  open: { tradeId: 't1', leverage: 10, entryReason: 'breakout', entryConfidence: 72, entryMarket: MARKET },
  exit: { reason: 'model', exitText: 'target reached', tradeScore: 80 },
};

function candle(time: number, open: number, high: number, low: number, close: number): Candle {
  return { time, open, high, low, close, volume: 1 };
}

describe('sizing, fees and funding', () => {
  test('quantity, notional and margin', () => {
    // 1,000 USDT margin at 10x buys 10,000 USDT of notional; at 50,000 that is 0.2 BTC.
    near(quantityFor(1000, 10, 50_000), 0.2, 'quantity');
    near(notional(0.2, 50_000), 10_000, 'notional');
    near(marginFor(10_000, 10), 1000, 'margin');
  });

  test('fees are qty x price x rate, taker or maker', () => {
    const paper = { taker_fee: 0.0005, maker_fee: 0.0002 };
    // 0.2 x 50,000 = 10,000 notional; taker 0.05 % = 5 USDT, maker 0.02 % = 2 USDT.
    near(tradingFee(0.2, 50_000, feeRate('taker', paper)), 5, 'taker fee');
    near(tradingFee(0.2, 50_000, feeRate('maker', paper)), 2, 'maker fee');
  });

  test('funding: longs pay and shorts receive when the rate is positive (positive = paid)', () => {
    // notional at mark 0.2 x 50,000 = 10,000; x 0.0001 = 1 USDT.
    near(fundingPayment('long', 0.2, 50_000, 0.0001), 1, 'long pays');
    near(fundingPayment('short', 0.2, 50_000, 0.0001), -1, 'short receives');
    near(fundingPayment('long', 0.2, 50_000, -0.0001), -1, 'long receives on a negative rate');
    near(fundingPayment('short', 0.2, 50_000, -0.0001), 1, 'short pays on a negative rate');
  });

  test('floorToStep rounds down to the step, never up, without losing a step to float noise', () => {
    assert.equal(floorToStep(0.123456, 0.001), 0.123);
    assert.equal(floorToStep(0.3, 0.1), 0.3); // 0.3 / 0.1 is 2.9999999999999996 in floats
    assert.equal(floorToStep(0.0999, 0.1), 0);
    assert.equal(floorToStep(7, 5), 5);
    assert.equal(floorToStep(0.0037, 0.0025), 0.0025);
    assert.equal(floorToStep(0.5, 1e-9), 0.5, 'tiny steps keep their decimals');
    assert.equal(floorToStep(0.1234567899, 1e-9), 0.123456789);
    assert.equal(floorToStep(1.23456, 0), 1.23456, 'step 0 = any quantity');
    assert.equal(floorToStep(-1, 0.1), 0);
  });
});

describe('PnL and liquidation', () => {
  test('unrealised PnL by side', () => {
    // 0.5 bought at 100, now 110: +10 x 0.5 = +5; a short loses the same.
    near(unrealizedPnl('long', 100, 0.5, 110), 5, 'long');
    near(unrealizedPnl('short', 100, 0.5, 110), -5, 'short');
  });

  test('leveraged PnL is a fraction of margin', () => {
    // -1.5 % price move x 10 = -0.15 of margin.
    near(leveragedReturn('long', 100, 98.5, 10), -0.15, 'long loss');
    near(leveragedReturn('short', 100, 98.5, 10), 0.15, 'short gain');
    near(leveragedReturn('short', 100, 102, 5), -0.1, 'short loss'); // +2 % x 5
  });

  test('isolated liquidation price: long 100,000 at 10x with mmr 0.5 % is 90,500, short 109,500', () => {
    // long: 100,000 x (1 - 1/10 + 0.005) = 100,000 x 0.905 = 90,500
    near(liquidationPrice('long', 100_000, 10, 0.005), 90_500, 'long');
    // short: 100,000 x (1 + 1/10 - 0.005) = 100,000 x 1.095 = 109,500
    near(liquidationPrice('short', 100_000, 10, 0.005), 109_500, 'short');
    // 1x long: 100,000 x (1 - 1 + 0.005) = 500
    near(liquidationPrice('long', 100_000, 1, 0.005), 500, 'long 1x');
  });

  test('time held', () => {
    assert.equal(timeHeldMs({ entryTime: T0 }, T0 + 90 * 60_000), 90 * 60_000);
    assert.equal(timeHeldMs({ entryTime: T0 }, T0 - 1), 0);
  });
});

describe('applyFill and closeTrade', () => {
  test('open, increase, reduce, close: average entry, margin, realised PnL, fees, funding, peaks', () => {
    // OPEN: buy 0.2 @ 50,000, fee 5, 10x → long, margin 10,000 / 10 = 1,000, liquidation 50,000 x 0.905 = 45,250.
    const opened = applyFill(null, fill('buy', 0.2, 50_000, 5, 'o1'), OPEN_CTX);
    assert.equal(opened.kind, 'open');
    const p1 = opened.position!;
    assert.equal(p1.side, 'long');
    assert.equal(p1.entryTime, T0);
    near(p1.entryPrice, 50_000, 'entry');
    near(p1.margin, 1000, 'margin');
    near(p1.fees, 5, 'fees');
    near(p1.liquidationPrice!, 45_250, 'liquidation');
    assert.deepEqual(p1.clientOrderIds, ['o1']);
    assert.equal(p1.adjustments, 0);

    // INCREASE: buy 0.1 @ 53,000, fee 2.65 → qty 0.3, average (0.2 x 50,000 + 0.1 x 53,000) / 0.3 = 15,300 / 0.3
    // = 51,000; margin 1,000 + 5,300 / 10 = 1,530; fees 7.65; liquidation 51,000 x 0.905 = 46,155.
    const inc = applyFill(p1, fill('buy', 0.1, 53_000, 2.65, 'a1'), { ...OPEN_CTX, adjustment: true });
    assert.equal(inc.kind, 'increase');
    const p2 = inc.position!;
    near(p2.quantity, 0.3, 'qty');
    near(p2.entryPrice, 51_000, 'average entry');
    near(p2.margin, 1530, 'margin');
    near(p2.fees, 7.65, 'fees');
    near(p2.liquidationPrice!, 46_155, 'liquidation');
    assert.equal(p2.adjustments, 1);

    // Funding: long pays 0.3 x 51,000 x 0.0001 = 1.53.
    const p3 = applyFunding(p2, 51_000, 0.0001);
    near(p3.funding, 1.53, 'funding');

    // REDUCE: sell 0.15 @ 54,000, fee 4.05 → realised (54,000 - 51,000) x 0.15 = 450; margin released
    // 1,530 x 0.15 / 0.3 = 765 → 765 left; qty 0.15; fees 11.7; entry unchanged.
    const red = applyFill(p3, fill('sell', 0.15, 54_000, 4.05, 'a2'), { ...OPEN_CTX, adjustment: true });
    assert.equal(red.kind, 'reduce');
    const p4 = red.position!;
    near(p4.quantity, 0.15, 'qty');
    near(p4.realizedPnl, 450, 'realised');
    near(p4.margin, 765, 'margin');
    near(p4.fees, 11.7, 'fees');
    near(p4.entryPrice, 51_000, 'entry unchanged');
    assert.equal(p4.adjustments, 2);

    // CLOSE: sell 0.15 @ 52,000, fee 3.9 → last leg (52,000 - 51,000) x 0.15 = 150; gross 450 + 150 = 600;
    // fees 11.7 + 3.9 = 15.6; net 600 - 15.6 - 1.53 = 582.87; largest margin 1,530 → 582.87 / 1,530 x 100 = 38.0961 %.
    const closedAt = T0 + 10 * HALF_HOUR;
    const out = applyFill(p4, fill('sell', 0.15, 52_000, 3.9, 'c1', closedAt), OPEN_CTX);
    assert.equal(out.kind, 'close');
    assert.equal(out.position, null);
    const trade = out.closed!;
    near(trade.pnl, 582.87, 'net pnl');
    near(trade.pnlPct, (582.87 / 1530) * 100, 'pnl % of largest margin');
    near(trade.fees, 15.6, 'fees');
    near(trade.funding, 1.53, 'funding');
    near(trade.quantity, 0.3, 'largest quantity');
    near(trade.margin, 1530, 'largest margin');
    near(trade.notional, 0.3 * 51_000, 'notional of the largest quantity at the average entry');
    near(trade.exitPrice, 52_000, 'exit price');
    assert.equal(trade.exitTime, closedAt);
    assert.equal(trade.exitReason, 'model');
    assert.equal(trade.tradeScore, 80);
    assert.equal(trade.adjustments, 2);
    assert.deepEqual(trade.clientOrderIds, ['o1', 'a1', 'a2', 'c1']);
  });

  test('a short: sell opens, buy closes; profit when the price falls', () => {
    // sell 2 @ 100 at 5x → margin 40; buy 2 @ 90 → (100 - 90) x 2 = 20; fees 0.1 + 0.09 → net 19.81 = 49.525 % of 40.
    const p = applyFill(null, fill('sell', 2, 100, 0.1, 's1'), {
      ...OPEN_CTX,
      open: { ...OPEN_CTX.open!, leverage: 5 },
    }).position!;
    assert.equal(p.side, 'short');
    near(p.margin, 40, 'margin');
    near(p.liquidationPrice!, 119.5, 'liquidation 100 x (1 + 0.2 - 0.005)');
    const out = applyFill(p, fill('buy', 2, 90, 0.09, 's2'), OPEN_CTX);
    near(out.closed!.pnl, 19.81, 'net pnl');
    near(out.closed!.pnlPct, 49.525, 'pnl %');
  });

  test('closeTrade after a reduce reports the largest size held and includes the exit price in MAE', () => {
    // long 1 @ 100 at 10x (margin 10), reduced by 0.5 @ 110 (realised +5), closed (external stop) at 95, fee 0.05.
    const opened = applyFill(null, fill('buy', 1, 100, 0, 'x'), OPEN_CTX).position!;
    const reduced = applyFill(
      opened,
      { ...fill('sell', 0.5, 110, 0, 'r'), reduceOnly: true },
      { ...OPEN_CTX, adjustment: true },
    ).position!;
    const t = closeTrade(reduced, {
      time: T0 + 1,
      price: 95,
      fee: 0.05,
      reason: 'stop',
      exitText: 'stop',
      tradeScore: null,
    });
    // net: +5 realised + 0.5 x (95 - 100) = -2.5 on the rest, - 0.05 fee = 2.45; largest margin 10 -> 24.5 %.
    near(t.pnl, 2.45, 'pnl');
    near(t.pnlPct, 24.5, 'pnl %');
    assert.equal(t.quantity, 1, 'largest quantity held, not the remainder');
    assert.equal(t.margin, 10);
    // MAE includes the exit price: (95 - 100) / 100 x 10 = -50 %.
    near(t.maePct, -50, 'mae');
  });

  test('refuses fills it cannot apply, saying why', () => {
    const p = applyFill(null, fill('buy', 1, 100, 0, 'x'), OPEN_CTX).position!;
    assert.throws(
      () => applyFill(p, fill('sell', 1.5, 100, 0, 'y'), OPEN_CTX),
      /exceeds the open long quantity 1.*close, then open/,
    );
    assert.throws(
      () => applyFill(null, { ...fill('sell', 1, 100, 0, 'z'), reduceOnly: true }, OPEN_CTX),
      /no position is open/,
    );
    assert.throws(() => applyFill(null, fill('buy', 1, 100, 0, 'z'), {}), /ctx\.open is missing/);
    assert.throws(() => applyFill(p, fill('sell', 1, 100, 0, 'z'), {}), /ctx\.exit is missing/);
    assert.throws(
      () => applyFill(p, { ...fill('buy', 1, 100, 0, 'z'), pair: 'ETH/USDT:USDT' }, OPEN_CTX),
      /is for ETH/,
    );
    assert.throws(() => applyFill(p, fill('buy', 0, 100, 0, 'z'), OPEN_CTX), /quantity must be positive/);
  });

  test('applyExecution: an open with two partial fills, the exchange liquidation price wins, one adjustment per order', () => {
    const intent = {
      kind: 'open' as const,
      pair: 'BTC/USDT:USDT',
      side: 'long' as const,
      leverage: 10,
      margin: 1000,
      quantity: 0.2,
      price: 50_000,
      stopPrice: 49_250,
    };
    const execution: Execution = {
      clientOrderId: 'o1',
      status: 'filled',
      // two partial fills of the same order: 0.1 @ 50,000 and 0.1 @ 50,200 → average 50,100, margin 1,002
      fills: [fill('buy', 0.1, 50_000, 2.5, 'o1', T0 + 3000), fill('buy', 0.1, 50_200, 2.51, 'o1', T0 + 4000)],
      position: {
        pair: 'BTC/USDT:USDT',
        side: 'long',
        quantity: 0.2,
        entryPrice: 50_100,
        leverage: 10,
        margin: 1002,
        notional: 10_020,
        liquidationPrice: 45_400,
        unrealizedPnl: 0,
      },
      error: null,
    };
    const ctx = {
      time: T0,
      exitReason: 'model' as const,
      exitText: '',
      tradeScore: null,
      entry: { tradeId: 'tr', reason: 'r', confidence: 70, market: MARKET },
    };
    const { position, closed } = applyExecution(null, intent, execution, ctx);
    assert.equal(closed, null);
    near(position!.entryPrice, 50_100, 'average of the partial fills');
    near(position!.margin, 1002, 'margin');
    near(position!.fees, 5.01, 'fees');
    assert.equal(position!.liquidationPrice, 45_400, 'the exchange-reported liquidation price');
    assert.equal(position!.entryTime, T0, 'the trade is dated from the decision time');
    assert.equal(position!.adjustments, 0, 'the entry is not an adjustment');
    assert.deepEqual(position!.clientOrderIds, ['o1']);

    const add: Execution = {
      ...execution,
      clientOrderId: 'a1',
      fills: [fill('buy', 0.05, 50_000, 1, 'a1'), fill('buy', 0.05, 50_000, 1, 'a1')],
      position: null,
    };
    const after = applyExecution(
      position,
      {
        kind: 'increase',
        pair: 'BTC/USDT:USDT',
        side: 'long',
        leverage: 10,
        margin: 500,
        quantity: 0.1,
        price: 50_000,
      },
      add,
      { ...ctx, entry: null },
    );
    assert.equal(after.position!.adjustments, 1, 'two fills of one adjust order count once');
    // liquidation scales with the average entry: 45,400 x (0.3 avg = (0.2 x 50,100 + 0.1 x 50,000) / 0.3 = 50,066.67) / 50,100
    near(
      after.position!.liquidationPrice!,
      (45_400 * ((0.2 * 50_100 + 0.1 * 50_000) / 0.3)) / 50_100,
      'scaled liquidation',
    );
    assert.throws(() => applyExecution(null, intent, execution, { ...ctx, entry: null }), /needs ctx\.entry/);
  });
});

describe('updateExcursions', () => {
  const base = applyFill(null, fill('buy', 1, 100, 0, 'x'), OPEN_CTX).position!;

  test('long: MFE/MAE come from highs and lows, not closes, and only after entry', () => {
    const candles = [
      candle(T0 - HALF_HOUR, 100, 130, 80, 100), // before entry: ignored
      candle(T0, 100, 103, 99, 101),
      candle(T0 + HALF_HOUR, 101, 102, 97, 100),
    ];
    const p = updateExcursions(base, candles);
    // best high 103: (103 - 100) / 100 x 10 x 100 = +30 %; worst low 97: -30 %.
    // From closes only it would have been +10 % and 0 %.
    near(p.mfePct, 30, 'mfe');
    near(p.maePct, -30, 'mae');
    assert.equal(p.highestPrice, 103);
    assert.equal(p.lowestPrice, 97);
  });

  test('short: MFE from lows, MAE from highs; previous extremes are kept', () => {
    const short = applyFill(null, fill('sell', 1, 100, 0, 'x'), OPEN_CTX).position!;
    const first = updateExcursions(short, [candle(T0, 100, 101, 95, 96)]);
    // low 95: +5 % x 10 = +50 %; high 101: -10 %.
    near(first.mfePct, 50, 'mfe');
    near(first.maePct, -10, 'mae');
    const second = updateExcursions(first, [candle(T0 + HALF_HOUR, 96, 99, 97, 98)]);
    near(second.mfePct, 50, 'mfe kept');
    near(second.maePct, -10, 'mae kept');
  });

  test('with candleMs a candle still open at entry counts; without it only candles opened at or after entry', () => {
    const entered = { ...base, entryTime: T0 + 5000 };
    const straddling = [candle(T0, 100, 104, 98, 102)];
    assert.equal(updateExcursions(entered, straddling), entered, 'no candle counts: same object');
    near(updateExcursions(entered, straddling, HALF_HOUR).mfePct, 40, 'counted with its length');
  });
});
