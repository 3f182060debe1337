import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  LedgerRejection,
  PaperLedger,
  type MarketOrderInput,
  type PaperLedgerConfig,
  type StopOrderInput,
} from '../../src/exchange/paper-ledger';
import type { Candle } from '../../src/core/types';

/** Equal within 1e-9 relative (float arithmetic of hand-checked decimal figures). */
function near(actual: number | null | undefined, expected: number, what: string): void {
  assert.ok(typeof actual === 'number', `${what}: expected ${expected}, got ${actual}`);
  const tolerance = 1e-9 * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: expected ${expected}, got ${actual}`);
}

const CONFIG: PaperLedgerConfig = {
  starting_balance: 10_000,
  taker_fee: 0.0005,
  slippage: 0.0002,
  maintenance_margin_rate: 0.005,
};
const PAIR = 'BTC/USDT:USDT';
const ETH = 'ETH/USDT:USDT';
const HALF_HOUR = 30 * 60_000;
const T0 = Date.UTC(2025, 0, 1, 0, 0);

function candle(time: number, open: number, high: number, low: number, close: number): Candle {
  return { time, open, high, low, close, volume: 1 };
}

function market(overrides: Partial<MarketOrderInput> & Pick<MarketOrderInput, 'side' | 'quantity'>): MarketOrderInput {
  return {
    pair: PAIR,
    reduceOnly: false,
    clientOrderId: `m-${overrides.side}-${overrides.quantity}-${overrides.time ?? T0}`,
    referencePrice: 50_000,
    leverage: 10,
    time: T0,
    ...overrides,
  };
}

function stop(overrides: Partial<StopOrderInput> & Pick<StopOrderInput, 'side' | 'stopPrice'>): StopOrderInput {
  return { pair: PAIR, quantity: 0.1, clientOrderId: `s-${overrides.stopPrice}`, time: T0, ...overrides };
}

function rejects(fn: () => unknown, type: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LedgerRejection, `expected a LedgerRejection, got ${String(err)}`);
    assert.equal(err.type, type);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('market orders', () => {
  test('an open fills at the reference price plus slippage, locks margin and pays the taker fee', () => {
    const ledger = new PaperLedger(CONFIG);
    const order = ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open-1' }));
    // fill = 50,000 x 1.0002 = 50,010; notional = 0.1 x 50,010 = 5,001; margin = 5,001 / 10 = 500.1;
    // fee = 5,001 x 0.0005 = 2.5005; cash = 10,000 - 500.1 - 2.5005 = 9,497.3995
    assert.equal(order.status, 'filled');
    assert.equal(order.fills.length, 1);
    near(order.averagePrice, 50_010, 'fill price');
    near(order.fee, 2.5005, 'fee');
    near(ledger.cash, 9_497.3995, 'cash');
    const position = ledger.position(PAIR)!;
    assert.equal(position.side, 'long');
    near(position.margin, 500.1, 'margin');
    near(position.entryPrice, 50_010, 'entry');
    // liquidation = 50,010 x (1 - 1/10 + 0.005) = 45,259.05
    near(position.liquidationPrice, 45_259.05, 'liquidation price');
    // equity at 50,000 = cash + margin + (50,000 - 50,010) x 0.1 = 9,497.3995 + 500.1 - 1 = 9,996.4995
    near(ledger.equity({ [PAIR]: 50_000 }), 9_996.4995, 'equity');
    near(ledger.balance().usedMargin, 500.1, 'used margin');
  });

  test('a short sells below the reference price; its liquidation price is above the entry', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'sell', quantity: 0.1, leverage: 5 }));
    const position = ledger.position(PAIR)!;
    // fill = 50,000 x 0.9998 = 49,990; margin = 4,999 / 5 = 999.8; liquidation = 49,990 x (1 + 0.2 - 0.005) = 59,738.05
    assert.equal(position.side, 'short');
    near(position.entryPrice, 49_990, 'entry');
    near(position.margin, 999.8, 'margin');
    near(position.liquidationPrice, 59_738.05, 'liquidation price');
    // fee = 4,999 x 0.0005 = 2.4995; cash = 10,000 - 999.8 - 2.4995 = 8,997.7005
    near(ledger.cash, 8_997.7005, 'cash');
  });

  test('increase averages the entry, a reduction releases margin pro rata, the close returns the rest', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'a' }));
    ledger.placeMarketOrder(
      market({ side: 'buy', quantity: 0.1, clientOrderId: 'b', referencePrice: 51_000, time: T0 + HALF_HOUR }),
    );
    // fills 50,010 and 51,010.2: entry = (5,001 + 5,101.02) / 0.2 = 50,510.1; margin = 500.1 + 510.102 = 1,010.202
    let p = ledger.position(PAIR)!;
    near(p.entryPrice, 50_510.1, 'average entry');
    near(p.margin, 1_010.202, 'margin after increase');
    const cashBefore = ledger.cash;
    const reduce = ledger.placeMarketOrder(
      market({ side: 'sell', quantity: 0.05, clientOrderId: 'c', referencePrice: 52_000, time: T0 + 2 * HALF_HOUR }),
    );
    // fill 52,000 x 0.9998 = 51,989.6; pnl = (51,989.6 - 50,510.1) x 0.05 = 73.975;
    // released = 1,010.202 x 0.05 / 0.2 = 252.5505; fee = 0.05 x 51,989.6 x 0.0005 = 1.29974
    near(reduce.fills[0]!.price, 51_989.6, 'reduce price');
    near(reduce.fills[0]!.realizedPnl, 73.975, 'realised pnl');
    near(ledger.cash - cashBefore, 252.5505 + 73.975 - 1.29974, 'cash change of the reduction');
    p = ledger.position(PAIR)!;
    near(p.quantity, 0.15, 'quantity after reduce');
    near(p.margin, 757.6515, 'margin after reduce');
    near(p.entryPrice, 50_510.1, 'a reduction keeps the entry');
    ledger.placeMarketOrder(
      market({ side: 'sell', quantity: 0.15, clientOrderId: 'd', referencePrice: 49_000, time: T0 + 3 * HALF_HOUR }),
    );
    // fill 48,990.2; pnl = (48,990.2 - 50,510.1) x 0.15 = -227.985; fee = 0.15 x 48,990.2 x 0.0005 = 3.674265
    // fees = 2.5005 + 2.55051 + 1.29974 + 3.674265 = 10.025015; pnl = 73.975 - 227.985 = -154.01
    // cash = 10,000 - 10.025015 - 154.01 = 9,835.964985
    assert.equal(ledger.position(PAIR), null);
    near(ledger.cash, 9_835.964985, 'cash after close');
    near(ledger.totals().fees, 10.025015, 'total fees');
    near(ledger.totals().realizedPnl, -154.01, 'total realised pnl');
    near(ledger.equity(), 9_835.964985, 'flat equity is cash');
  });

  test('positions(): the report follows every change of size, margin and mark price, and is reused while none', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'a' }));
    const first = ledger.positions()[0]!;
    assert.equal(ledger.positions()[0], first, 'nothing changed: the same report');
    // fill 50,010 (0.02 % slippage); marked at the last price the ledger saw, the reference price 50,000
    near(first.notional, 5_000, 'notional at the reference price');
    near(first.unrealizedPnl, -1, 'pnl at the reference price');
    // a candle closing at 51,000 moves the mark price
    ledger.advance(PAIR, [candle(T0, 50_000, 51_200, 49_900, 51_000)], [], HALF_HOUR);
    const marked = ledger.positions()[0]!;
    assert.notEqual(marked, first);
    near(marked.notional, 5_100, 'notional at the new close');
    near(marked.unrealizedPnl, 99, 'pnl at the new close');
    assert.equal(ledger.positions()[0], marked);
    // a reduction at the same price changes the size and margin only
    ledger.placeMarketOrder(
      market({
        side: 'sell',
        quantity: 0.04,
        reduceOnly: true,
        clientOrderId: 'r',
        referencePrice: 51_000,
        time: T0 + HALF_HOUR,
      }),
    );
    const reduced = ledger.positions()[0]!;
    near(reduced.quantity, 0.06, 'quantity after the reduction');
    near(reduced.margin, 500.1 * 0.6, 'margin after the reduction');
    near(first.quantity, 0.1, 'an earlier report is left as it was');
    near(ledger.positions({ [PAIR]: 52_000 })[0]!.notional, 3_120, 'notional at a price passed in');
  });

  test('a repeated client order id returns the stored order and never fills twice', () => {
    const ledger = new PaperLedger(CONFIG);
    const request = market({ side: 'buy', quantity: 0.1, clientOrderId: 'once' });
    const first = ledger.placeMarketOrder(request);
    const state = ledger.state();
    const again = ledger.placeMarketOrder({ ...request, referencePrice: 60_000, time: T0 + HALF_HOUR });
    assert.deepEqual(again, first);
    assert.deepEqual(ledger.state(), state);
    assert.equal(ledger.fills().length, 1);
  });

  test('a different request under a used client order id is ExchangeDuplicateOrderId and changes nothing', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'dup' }));
    const state = ledger.state();
    rejects(
      () => ledger.placeMarketOrder(market({ side: 'sell', quantity: 0.1, clientOrderId: 'dup' })),
      'ExchangeDuplicateOrderId',
      /dup is already used by the market buy 0\.1 on BTC\/USDT:USDT order; this request is a market sell/,
    );
    rejects(
      () => ledger.placeStopOrder(stop({ side: 'sell', stopPrice: 45_000, clientOrderId: 'dup' })),
      'ExchangeDuplicateOrderId',
      /use a new client order id/,
    );
    assert.deepEqual(ledger.state(), state);
  });

  test('insufficient cash is ExchangeInsufficientFunds and changes nothing', () => {
    const ledger = new PaperLedger(CONFIG);
    const state = ledger.state();
    // 2 BTC at 50,010 and 10x needs margin 10,002 + fee 50.01 > 10,000
    rejects(
      () => ledger.placeMarketOrder(market({ side: 'buy', quantity: 2 })),
      'ExchangeInsufficientFunds',
      /needs 10052\.01 USDT \(margin 10002 \+ fee 50\.01\) but only 10000 USDT/,
    );
    assert.deepEqual(ledger.state(), state);
  });

  test('reduce-only: rejected without a position or when it would add; cut to the position when larger', () => {
    const ledger = new PaperLedger(CONFIG);
    rejects(
      () => ledger.placeMarketOrder(market({ side: 'sell', quantity: 0.1, reduceOnly: true })),
      'ExchangeInvalidOrder',
      /reduce-only, but no position is open/,
    );
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    rejects(
      () => ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, reduceOnly: true, clientOrderId: 'x' })),
      'ExchangeInvalidOrder',
      /would add to the long position/,
    );
    const close = ledger.placeMarketOrder(
      market({ side: 'sell', quantity: 0.5, reduceOnly: true, clientOrderId: 'close' }),
    );
    assert.equal(close.requestedQuantity, 0.5);
    assert.equal(close.quantity, 0.1);
    assert.equal(close.filledQuantity, 0.1);
    assert.equal(close.fills[0]!.effect, 'close');
    assert.equal(ledger.position(PAIR), null);
  });

  test('flipping sides in one order, an increase at another leverage, instant liquidation are rejected', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    rejects(
      () => ledger.placeMarketOrder(market({ side: 'sell', quantity: 0.2, clientOrderId: 'flip' })),
      'ExchangeInvalidOrder',
      /flipping sides in one order is not supported/,
    );
    rejects(
      () => ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, leverage: 20, clientOrderId: 'lev' })),
      'ExchangeInvalidOrder',
      /has leverage 10x; an increase must use it, got 20x/,
    );
    // mmr 0.01 >= 1/125: liquidation = fill x (1 - 0.008 + 0.01) is above the reference price
    const strict = new PaperLedger({ ...CONFIG, maintenance_margin_rate: 0.01 });
    rejects(
      () => strict.placeMarketOrder(market({ side: 'buy', quantity: 0.01, leverage: 125 })),
      'ExchangeInvalidOrder',
      /would be liquidated at once/,
    );
  });

  test('an order at a reference price beyond the liquidation price is refused until the candles are processed', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    rejects(
      () =>
        ledger.placeMarketOrder(
          market({ side: 'sell', quantity: 0.1, referencePrice: 45_000, clientOrderId: 'late', time: T0 + HALF_HOUR }),
        ),
      'ExchangeInvalidOrder',
      /at or beyond its liquidation price 4525[89]\.\d+ at the reference price 45000; it is being liquidated/,
    );
  });

  test('malformed requests and orders placed before processed candles', () => {
    const ledger = new PaperLedger(CONFIG);
    rejects(
      () => ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'bad id!' })),
      'ExchangeInvalidOrder',
      /client order id "bad id!" is invalid/,
    );
    rejects(() => ledger.placeMarketOrder(market({ side: 'buy', quantity: 0 })), 'ExchangeInvalidOrder', /quantity/);
    rejects(
      () => ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, referencePrice: Number.NaN })),
      'ExchangeInvalidOrder',
      /referencePrice must be a price > 0/,
    );
    ledger.advance(PAIR, [candle(T0, 50_000, 50_100, 49_900, 50_000)], [], HALF_HOUR);
    assert.throws(
      () => ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, time: T0 })),
      /is before 1735691400000, the close of the last candle already processed/,
    );
  });
});

describe('stops, liquidation and funding from candles', () => {
  test('a long stop triggers when a LOW reaches it and fills at the stop price minus slippage', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    ledger.placeStopOrder(stop({ side: 'sell', stopPrice: 49_000, clientOrderId: 'protect' }));
    // first candle: low 49,100 stays above the stop
    assert.deepEqual(ledger.advance(PAIR, [candle(T0, 50_000, 50_200, 49_100, 49_500)], [], HALF_HOUR), []);
    const closes = ledger.advance(PAIR, [candle(T0 + HALF_HOUR, 49_500, 49_600, 48_800, 49_300)], [], HALF_HOUR);
    // stop fill = 49,000 x 0.9998 = 48,990.2; fee = 0.1 x 48,990.2 x 0.0005 = 2.44951
    // pnl = (48,990.2 - 50,010) x 0.1 = -101.98; cash = 10,000 - 2.5005 - 2.44951 - 101.98 = 9,893.06999
    assert.equal(closes.length, 1);
    const close = closes[0]!;
    assert.equal(close.reason, 'stop');
    assert.equal(close.clientOrderId, 'protect');
    assert.equal(close.time, T0 + 2 * HALF_HOUR, 'stamped with the close time of the triggering candle');
    near(close.price, 48_990.2, 'stop fill price');
    near(close.fee, 2.44951, 'stop fee');
    near(close.quantity, 0.1, 'quantity');
    assert.equal(ledger.position(PAIR), null);
    assert.equal(ledger.order('protect')!.status, 'filled');
    near(ledger.cash, 9_893.06999, 'cash');
    assert.deepEqual(ledger.externalCloses(PAIR, T0, T0 + 2 * HALF_HOUR), [close]);
    assert.deepEqual(ledger.externalCloses(PAIR, T0 + 2 * HALF_HOUR, T0 + 3 * HALF_HOUR), []);
  });

  test('a short stop triggers on a HIGH; a candle that opens beyond the stop fills at its open', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'sell', quantity: 0.1, clientOrderId: 'open' }));
    ledger.placeStopOrder(stop({ side: 'buy', stopPrice: 51_000, clientOrderId: 'protect' }));
    // gap: the candle opens at 51,500, above the stop: fill = 51,500 x 1.0002 = 51,510.3
    const closes = ledger.advance(PAIR, [candle(T0, 51_500, 51_800, 51_200, 51_600)], [], HALF_HOUR);
    near(closes[0]!.price, 51_510.3, 'gap fill at the open');
    // pnl = (49,990 - 51,510.3) x 0.1 = -152.03
    near(ledger.fills()[1]!.realizedPnl, -152.03, 'realised pnl');
  });

  test('a stop that closes part of the position leaves the rest open with margin released pro rata', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    ledger.placeStopOrder(stop({ side: 'sell', stopPrice: 49_000, quantity: 0.04, clientOrderId: 'part' }));
    ledger.advance(PAIR, [candle(T0, 50_000, 50_100, 48_500, 49_800)], [], HALF_HOUR);
    const p = ledger.position(PAIR)!;
    near(p.quantity, 0.06, 'rest');
    // margin 500.1 x 0.6 = 300.06; the liquidation price does not move
    near(p.margin, 300.06, 'margin');
    near(p.liquidationPrice, 45_259.05, 'liquidation price');
  });

  test('a candle crossing both the stop and the liquidation price liquidates (pessimistic)', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    ledger.placeStopOrder(stop({ side: 'sell', stopPrice: 46_000, clientOrderId: 'protect' }));
    const cashBefore = ledger.cash;
    // liquidation 45,259.05 (see above); this candle's low 45,000 crosses it and the stop at 46,000
    const closes = ledger.advance(PAIR, [candle(T0, 47_000, 47_100, 45_000, 45_500)], [], HALF_HOUR);
    assert.equal(closes.length, 1);
    assert.equal(closes[0]!.reason, 'liquidation');
    assert.equal(closes[0]!.clientOrderId, null);
    near(closes[0]!.price, 45_259.05, 'liquidation price');
    assert.equal(closes[0]!.fee, 0);
    const record = ledger.liquidations()[0]!;
    near(record.marginLost, 500.1, 'the whole isolated margin is lost');
    near(ledger.cash, cashBefore, 'cash is untouched');
    near(ledger.equity(), cashBefore, 'equity = cash once flat');
    const protect = ledger.order('protect')!;
    assert.equal(protect.status, 'canceled');
    assert.equal(protect.cancelReason, 'position liquidated');
    assert.equal(protect.fills.length, 0);
  });

  test('a short is liquidated by a HIGH', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'sell', quantity: 0.1, leverage: 20, clientOrderId: 'open' }));
    // entry 49,990; liquidation = 49,990 x (1 + 0.05 - 0.005) = 52,239.55
    assert.deepEqual(ledger.advance(PAIR, [candle(T0, 50_000, 52_200, 49_800, 52_000)], [], HALF_HOUR), []);
    const closes = ledger.advance(PAIR, [candle(T0 + HALF_HOUR, 52_000, 52_300, 51_900, 52_100)], [], HALF_HOUR);
    assert.equal(closes[0]!.reason, 'liquidation');
    near(closes[0]!.price, 52_239.55, 'liquidation price');
    // margin = 4,999 / 20 = 249.95
    near(ledger.totals().liquidationLosses, 249.95, 'margin lost');
  });

  test('funding at a candle close is charged at that close; longs pay and shorts receive a positive rate', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'long' }));
    ledger.placeMarketOrder(
      market({ pair: ETH, side: 'sell', quantity: 1, referencePrice: 3_000, clientOrderId: 'short' }),
    );
    const cash = ledger.cash;
    const funding = [{ time: T0 + HALF_HOUR, rate: 0.0001 }];
    ledger.advance(PAIR, [candle(T0, 50_000, 50_600, 49_900, 50_500)], funding, HALF_HOUR);
    ledger.advance(ETH, [candle(T0, 3_000, 3_010, 2_990, 3_005)], funding, HALF_HOUR);
    // long pays 0.1 x 50,500 x 0.0001 = 0.505; short receives 1 x 3,005 x 0.0001 = 0.3005
    const [btc, eth] = ledger.fundingCharges();
    near(btc!.amount, 0.505, 'long pays');
    near(btc!.markPrice, 50_500, 'mark = close of the candle ending at the funding time');
    near(eth!.amount, -0.3005, 'short receives');
    near(ledger.cash, cash - 0.505 + 0.3005, 'cash');
    near(ledger.totals().funding, 0.2045, 'total funding');
    near(ledger.position(PAIR)!.funding, 0.505, 'position funding');
  });

  test('funding inside a longer candle, in a gap, and at the order time', () => {
    const ledger = new PaperLedger(CONFIG);
    const HOUR = 2 * HALF_HOUR;
    // A funding event at T0 is settled while the pair is still flat (processing the candle that closes at T0), so
    // the position opened at T0 does not pay it, and passing it again later changes nothing.
    ledger.advance(PAIR, [candle(T0 - HOUR, 49_000, 50_100, 48_900, 50_000)], [{ time: T0, rate: 0.01 }], HOUR);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    const events = [
      { time: T0, rate: 0.01 },
      { time: T0 + HALF_HOUR, rate: 0.0002 },
      { time: T0 + 2 * HOUR + HALF_HOUR, rate: 0.0003 },
    ];
    // 1h candles [T0, T0+1h) and, after a gap, [T0+3h, T0+4h)
    ledger.advance(
      PAIR,
      [candle(T0, 50_000, 50_300, 49_800, 50_200), candle(T0 + 3 * HOUR, 50_400, 50_500, 50_300, 50_450)],
      events,
      HOUR,
    );
    const charges = ledger.fundingCharges();
    assert.equal(charges.length, 2);
    // mid-candle event at T0+30m: valued at that candle's close 50,200: 0.1 x 50,200 x 0.0002 = 1.004
    near(charges[0]!.amount, 1.004, 'mid-candle funding');
    near(charges[0]!.markPrice, 50_200, 'mid-candle mark');
    // event in the gap (T0+2h30m): valued at the last known price, 50,200: 0.1 x 50,200 x 0.0003 = 1.506
    near(charges[1]!.amount, 1.506, 'gap funding');
    assert.equal(charges[1]!.time, T0 + 2 * HOUR + HALF_HOUR);
  });

  test('funding cash cannot pay comes out of the isolated margin and moves the liquidation price', () => {
    const ledger = new PaperLedger({ ...CONFIG, starting_balance: 1_000 });
    // buy 0.19 at 50,010 and 10x: margin 950.19, fee 4.75095; cash left = 1,000 - 954.94095 = 45.05905
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.19, clientOrderId: 'big' }));
    near(ledger.cash, 45.05905, 'cash after open');
    ledger.advance(
      PAIR,
      [candle(T0, 50_000, 50_100, 49_900, 50_000)],
      [{ time: T0 + HALF_HOUR, rate: 0.01 }],
      HALF_HOUR,
    );
    // payment = 0.19 x 50,000 x 0.01 = 95: 45.05905 from cash, 49.94095 from the margin
    const charge = ledger.fundingCharges()[0]!;
    near(charge.amount, 95, 'payment');
    near(charge.fromMargin, 49.94095, 'taken from the margin');
    assert.equal(ledger.cash, 0);
    const p = ledger.position(PAIR)!;
    near(p.margin, 950.19 - 49.94095, 'margin');
    near(p.marginDeficit, 49.94095, 'deficit');
    // liquidation = 50,010 x 0.905 + 49.94095 / 0.19 = 45,259.05 + 262.847105263... = 45,521.897105263...
    near(p.liquidationPrice, 45_259.05 + 49.94095 / 0.19, 'liquidation price moved up');
  });

  test('advance skips candles already processed, so overlapping calls are harmless', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    ledger.placeStopOrder(stop({ side: 'sell', stopPrice: 49_000, quantity: 0.05, clientOrderId: 'half' }));
    const candles = [candle(T0, 50_000, 50_100, 48_900, 49_500)];
    const funding = [{ time: T0 + HALF_HOUR, rate: 0.0001 }];
    assert.equal(ledger.advance(PAIR, candles, funding, HALF_HOUR).length, 1);
    const state = ledger.state();
    assert.deepEqual(ledger.advance(PAIR, candles, funding, HALF_HOUR), []);
    assert.deepEqual(ledger.state(), state);
    assert.equal(ledger.syncedTo(PAIR), T0 + HALF_HOUR);
  });

  test('malformed candles are refused before anything changes', () => {
    const ledger = new PaperLedger(CONFIG);
    assert.throws(
      () => ledger.advance(PAIR, [candle(T0 + HALF_HOUR, 1, 2, 0.5, 1), candle(T0, 1, 2, 0.5, 1)], [], HALF_HOUR),
      /candle 1 has open time 1735689600000, not after the previous 1735691400000/,
    );
    assert.throws(
      () => ledger.advance(PAIR, [candle(T0, 1, 0.9, 0.5, 1)], [], HALF_HOUR),
      /has inconsistent prices \(open 1, high 0\.9, low 0\.5, close 1\)/,
    );
    assert.equal(ledger.syncedTo(PAIR), null);
  });
});

describe('stop orders', () => {
  test('need an open position, the protecting side, and a price not already crossed', () => {
    const ledger = new PaperLedger(CONFIG);
    rejects(
      () => ledger.placeStopOrder(stop({ side: 'sell', stopPrice: 49_000 })),
      'ExchangeInvalidOrder',
      /no position is open on BTC\/USDT:USDT to protect/,
    );
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    rejects(
      () => ledger.placeStopOrder(stop({ side: 'buy', stopPrice: 51_000 })),
      'ExchangeInvalidOrder',
      /a buy stop cannot protect a long position; use sell/,
    );
    // the last price is the order's reference price 50,000
    rejects(
      () => ledger.placeStopOrder(stop({ side: 'sell', stopPrice: 50_000 })),
      'ExchangeInvalidOrder',
      /already crossed at the last price 50000; the order would trigger immediately/,
    );
  });

  test('cancel: an open stop is cancelled, a final order is returned unchanged, an unknown id is null', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    ledger.placeStopOrder(stop({ side: 'sell', stopPrice: 49_000, clientOrderId: 'protect' }));
    const canceled = ledger.cancelOrder('protect', T0 + 1)!;
    assert.equal(canceled.status, 'canceled');
    assert.equal(canceled.cancelReason, 'canceled by request');
    assert.equal(ledger.hasExposure(PAIR), true);
    assert.deepEqual(ledger.cancelOrder('protect', T0 + 2), canceled);
    assert.equal(ledger.cancelOrder('open', T0 + 2)!.status, 'filled');
    assert.equal(ledger.cancelOrder('nope', T0 + 2), null);
    // a cancelled stop no longer triggers
    assert.deepEqual(ledger.advance(PAIR, [candle(T0, 50_000, 50_100, 48_000, 49_000)], [], HALF_HOUR), []);
  });

  test('closing the position cancels its stops', () => {
    const ledger = new PaperLedger(CONFIG);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    ledger.placeStopOrder(stop({ side: 'sell', stopPrice: 49_000, clientOrderId: 'protect' }));
    ledger.placeMarketOrder(market({ side: 'sell', quantity: 0.1, reduceOnly: true, clientOrderId: 'close' }));
    assert.equal(ledger.order('protect')!.status, 'canceled');
    assert.equal(ledger.order('protect')!.cancelReason, 'position closed');
    assert.equal(ledger.hasExposure(PAIR), false);
  });
});

describe('accounting', () => {
  test('a fill beyond the bankruptcy price never takes more than the margin: the insurance fund covers it', () => {
    // 5 % slippage against a 0.5 % maintenance margin: a close just inside the liquidation price fills far beyond it
    const ledger = new PaperLedger({ ...CONFIG, slippage: 0.05 });
    ledger.placeMarketOrder(
      market({ side: 'buy', quantity: 1, referencePrice: 100, leverage: 10, clientOrderId: 'o' }),
    );
    // fill 105, margin 105 / 10 = 10.5, fee 0.0525; liquidation = 105 x (1 - 0.1 + 0.005) = 95.025
    near(ledger.position(PAIR)!.liquidationPrice, 95.025, 'liquidation price');
    const cash = ledger.cash;
    ledger.placeMarketOrder(
      market({ side: 'sell', quantity: 1, referencePrice: 95.1, reduceOnly: true, clientOrderId: 'c' }),
    );
    // fill 95.1 x 0.95 = 90.345; pnl = 90.345 - 105 = -14.655; fee = 90.345 x 0.0005 = 0.0451725;
    // margin + pnl - fee = 10.5 - 14.655 - 0.0451725 = -4.2001725: cash gets 0, the fund pays 4.2001725
    near(ledger.cash, cash, 'cash does not fall');
    near(ledger.totals().bankruptcyCover, 4.2001725, 'cover');
    near(ledger.fills()[1]!.bankruptcyCover, 4.2001725, 'cover on the fill');
  });

  test('restore(state()) gives a ledger that holds and does exactly the same', () => {
    const a = new PaperLedger(CONFIG);
    a.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    a.placeStopOrder(stop({ side: 'sell', stopPrice: 49_000, quantity: 0.05, clientOrderId: 'p1' }));
    a.placeStopOrder(stop({ side: 'sell', stopPrice: 48_000, clientOrderId: 'p2' }));
    a.advance(PAIR, [candle(T0, 50_000, 50_100, 48_900, 49_500)], [{ time: T0 + HALF_HOUR, rate: 0.0001 }], HALF_HOUR);
    const b = PaperLedger.restore(CONFIG, a.state());
    assert.deepEqual(b.state(), a.state());
    const next = [candle(T0 + HALF_HOUR, 49_500, 49_600, 47_000, 47_500)];
    assert.deepEqual(b.advance(PAIR, next, [], HALF_HOUR), a.advance(PAIR, next, [], HALF_HOUR));
    assert.deepEqual(b.state(), a.state());
    assert.equal(a.position(PAIR), null, 'the second stop closed the rest');
  });

  test('recorded changes list what a mutation touched', () => {
    const ledger = new PaperLedger(CONFIG, { recordChanges: true });
    assert.equal(ledger.hasChanges(), false);
    ledger.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    const changes = ledger.takeChanges();
    assert.deepEqual(changes.pairs, [PAIR]);
    assert.deepEqual(
      changes.orders.map((o) => o.clientOrderId),
      ['open'],
    );
    assert.equal(changes.fills.length, 1);
    assert.equal(changes.account, true);
    assert.equal(ledger.hasChanges(), false);
    const unrecorded = new PaperLedger(CONFIG);
    unrecorded.placeMarketOrder(market({ side: 'buy', quantity: 0.1, clientOrderId: 'open' }));
    assert.equal(unrecorded.hasChanges(), false);
  });

  test('the config is checked', () => {
    assert.throws(
      () => new PaperLedger({ ...CONFIG, starting_balance: 0, maintenance_margin_rate: 1 }),
      /paper ledger config: starting_balance must be > 0, got 0; maintenance_margin_rate must be in \(0, 1\), got 1/,
    );
  });
});
