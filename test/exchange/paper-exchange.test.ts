import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { PaperConfigSchema, type PaperConfig } from '../../src/core/config';
import { liquidationPrice } from '../../src/core/position';
import type { FundingEvent } from '../../src/core/snapshot';
import type { Candle, Side } from '../../src/core/types';
import { ExchangeError } from '../../src/exchange/errors';
import { RecordedMarketSource, csvRecordedData, type RecordedData } from '../../src/exchange/market-source';
import type { LedgerState } from '../../src/exchange/paper-ledger';
import { PaperExchange, toOrderResult, type PaperMarketData } from '../../src/exchange/paper-exchange';
import type { OrderRequest, OrderResult, StopOrderRequest } from '../../src/exchange/port';
import { dataFile, readCandleCsv, readFundingCsv } from '../../src/store/csv-candles';

const DIR = mkdtempSync(join(tmpdir(), 'paper-exchange-test-'));
after(() => rmSync(DIR, { recursive: true, force: true }));
let fileCounter = 0;
function freshFile(): string {
  fileCounter += 1;
  return join(DIR, `account-${fileCounter}.sqlite`);
}
function removeDb(file: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
}

/** The defaults: 10,000 USDT, taker 0.05 %, slippage 0.02 %, maintenance margin 0.5 %, min notional 5 USDT. */
const PAPER: PaperConfig = PaperConfigSchema.parse({});
const TAKER = PAPER.taker_fee;
const SLIP = PAPER.slippage;
const MMR = PAPER.maintenance_margin_rate;
const HALF_HOUR = 30 * 60_000;

/** |actual - expected| <= 1e-9 x max(1, |scale|): money figures are compared relative to the account's size. */
function near(actual: number | null | undefined, expected: number, what: string, scale = expected): void {
  assert.ok(typeof actual === 'number', `${what}: expected ${expected}, got ${actual}`);
  const tolerance = 1e-9 * Math.max(1, Math.abs(scale), Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: expected ${expected}, got ${actual}`);
}

async function rejectsWith(promise: Promise<unknown>, type: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ExchangeError, `expected an ExchangeError, got ${String(err)}`);
    assert.equal(err.type, type, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Real candles from ../shared/data
// ---------------------------------------------------------------------------------------------------------------

const DATA = resolve(process.cwd(), '../shared/data/binanceusdm');
const BTC = 'BTC/USDT:USDT';
const realSource = new RecordedMarketSource(csvRecordedData(DATA));

async function btcCandle(iso: string): Promise<Candle> {
  const time = Date.parse(iso);
  const found = (await realSource.history(BTC, '30m')).find((c) => c.time === time);
  assert.ok(found, `no BTC 30m candle at ${iso} in ${DATA}`);
  return found;
}

function realExchange(startIso: string): { ex: PaperExchange; setNow: (iso: string) => void } {
  let now = Date.parse(startIso);
  const ex = new PaperExchange({
    file: freshFile(),
    config: PAPER,
    source: realSource,
    clock: () => now,
    triggerTimeframe: '30m',
  });
  return { ex, setNow: (iso) => (now = Date.parse(iso)) };
}

describe('stops and liquidation on real BTC 30m candles (hand-checked)', () => {
  test('a 10x long entered at 2025-06-16 22:30 is liquidated by the LOW of the 2025-06-22 20:00 candle', async () => {
    // Entry: the decision at 22:30 uses the close of the 2025-06-16T22:00 candle,
    //   O 108470.9 H 108900 L 108470.9 C 108609.
    // fill = 108,609 x 1.0002 = 108,630.7218; quantity 0.05: notional 5,431.53609, margin (10x) 543.153609,
    //   fee 5,431.53609 x 0.0005 = 2.715768045
    // liquidation = 108,630.7218 x (1 - 1/10 + 0.005) = 108,630.7218 x 0.905 = 98,310.803229
    // The lowest low from 22:30 on 06-16 through the 2025-06-22T19:30 candle is 98,608.9 (the 16:00 candle): no
    // trigger. The 2025-06-22T20:00 candle, O 98829.7 H 98897.7 L 98115.4 C 98466, crosses 98,310.803229 with its
    // LOW; it opened above it, so the position is liquidated AT the liquidation price, stamped 20:30 (its close).
    const entryCandle = await btcCandle('2025-06-16T22:00:00Z');
    assert.deepEqual(
      [entryCandle.open, entryCandle.high, entryCandle.low, entryCandle.close],
      [108470.9, 108900, 108470.9, 108609],
    );
    const liqCandle = await btcCandle('2025-06-22T20:00:00Z');
    assert.deepEqual(
      [liqCandle.open, liqCandle.high, liqCandle.low, liqCandle.close],
      [98829.7, 98897.7, 98115.4, 98466],
    );

    const { ex, setNow } = realExchange('2025-06-16T22:30:00Z');
    await ex.prepareEntry(BTC, 10);
    const order = await ex.createOrder({
      pair: BTC,
      side: 'buy',
      quantity: 0.05,
      reduceOnly: false,
      clientOrderId: 'liq-long-1',
      referencePrice: 108_609,
    });
    near(order.averagePrice, 108_630.7218, 'entry fill');
    near(order.fee, 2.715768045, 'entry fee');
    const [position] = await ex.fetchPositions();
    near(position!.margin, 543.153609, 'margin');
    near(position!.liquidationPrice, 98_310.803229, 'liquidation price');

    setNow('2025-06-22T20:00:00Z');
    assert.deepEqual(await ex.syncTo(), [], 'still open before the 20:00 candle');
    setNow('2025-06-22T20:30:00Z');
    const closes = await ex.syncTo();
    assert.equal(closes.length, 1);
    assert.equal(closes[0]!.reason, 'liquidation');
    assert.equal(closes[0]!.time, Date.parse('2025-06-22T20:30:00Z'));
    near(closes[0]!.price, 98_310.803229, 'liquidation fill price');
    near(closes[0]!.quantity, 0.05, 'quantity');
    near(ex.ledger.liquidations()[0]!.marginLost, 543.153609, 'the loss is the isolated margin');
    assert.deepEqual(await ex.fetchPositions(), []);

    // Funding while open, recomputed from the recorded files: every event after the entry (22:30 on 06-16) up to the
    // liquidation, valued at the close of the 30m candle ending at the funding time, long pays rate x notional.
    const candles = await readCandleCsv(dataFile(DATA, BTC, '30m'));
    const closeAt = new Map(candles.map((c) => [c.time + HALF_HOUR, c.close]));
    const events = (await readFundingCsv(dataFile(DATA, BTC, 'funding-8h'))).filter(
      (e) => e.time > Date.parse('2025-06-16T22:30:00Z') && e.time <= Date.parse('2025-06-22T20:30:00Z'),
    );
    assert.equal(events.length, 18, '06-17 00:00 through 06-22 16:00, every 8 hours');
    const funding = events.reduce((sum, e) => sum + 0.05 * closeAt.get(e.time)! * e.rate, 0);
    near(ex.ledger.totals().funding, funding, 'funding');
    // cash = 10,000 - margin - fee - funding; the margin is gone with the liquidation
    const balance = await ex.fetchBalance();
    near(balance.available, 10_000 - 543.153609 - 2.715768045 - funding, 'cash', 10_000);
    near(balance.equity, balance.available, 'flat equity is cash', 10_000);
    ex.close();
  });

  test('a short stop is hit by the HIGH of the next candle although it closes below the stop', async () => {
    // Entry: decision at 2025-05-22T03:30 on the close of the 03:00 candle, 110,728.1.
    //   fill = 110,728.1 x 0.9998 = 110,705.95438 (sell: minus slippage)
    // Stop buy 0.05 at 111,813. The 2025-05-22T03:30 candle: O 110728.1 H 111866.4 L 110661.7 C 111755.9 — the HIGH
    //   reaches the stop, the close does not. Fill = 111,813 x 1.0002 = 111,835.3626, stamped 04:00.
    //   fee = 0.05 x 111,835.3626 x 0.0005 = 2.795884065
    //   pnl = (110,705.95438 - 111,835.3626) x 0.05 = -56.470411
    const c = await btcCandle('2025-05-22T03:30:00Z');
    assert.deepEqual([c.open, c.high, c.low, c.close], [110728.1, 111866.4, 110661.7, 111755.9]);
    const { ex, setNow } = realExchange('2025-05-22T03:30:00Z');
    await ex.prepareEntry(BTC, 10);
    await ex.createOrder({
      pair: BTC,
      side: 'sell',
      quantity: 0.05,
      reduceOnly: false,
      clientOrderId: 'short-1',
      referencePrice: 110_728.1,
    });
    const stop = await ex.placeStopOrder({
      pair: BTC,
      side: 'buy',
      quantity: 0.05,
      stopPrice: 111_813,
      clientOrderId: 'short-1-stop',
    });
    assert.equal(stop.status, 'open');
    setNow('2025-05-22T04:00:00Z');
    const closes = await ex.syncTo();
    assert.deepEqual(closes, [
      {
        pair: BTC,
        time: Date.parse('2025-05-22T04:00:00Z'),
        price: closes[0]!.price,
        quantity: 0.05,
        fee: closes[0]!.fee,
        reason: 'stop',
        clientOrderId: 'short-1-stop',
      },
    ]);
    near(closes[0]!.price, 111_835.3626, 'stop fill');
    near(closes[0]!.fee, 2.795884065, 'stop fee');
    near(ex.ledger.fills()[1]!.realizedPnl, -56.470411, 'realised pnl');
    const after = await ex.fetchOrderByClientId(BTC, 'short-1-stop');
    assert.equal(after!.status, 'filled');
    // entry fee 0.05 x 110,705.95438 x 0.0005 = 2.7676488595; no funding between 03:30 and 04:00
    near((await ex.fetchBalance()).available, 10_000 - 2.7676488595 - 2.795884065 - 56.470411, 'cash', 10_000);
    assert.deepEqual(
      ex.externalCloses(BTC, Date.parse('2025-05-22T03:30:00Z'), Date.parse('2025-05-22T04:00:00Z')),
      closes,
    );
    ex.close();
  });

  test('one candle crossing both the stop and the liquidation price liquidates', async () => {
    // Entry: decision at 2025-06-13T00:00 on the close of the 2025-06-12T23:30 candle, 105,609.5; 50x long 0.05.
    //   fill = 105,609.5 x 1.0002 = 105,630.6219; margin = 0.05 x 105,630.6219 / 50 = 105.630622 (105.6306219)
    //   liquidation = 105,630.6219 x (1 - 1/50 + 0.005) = 105,630.6219 x 0.985 = 104,046.1625715
    // Stop sell at 104,600, between the price and the liquidation price.
    // The 2025-06-13T00:00 candle: O 105609.4 H 105661 L 103500 C 103668: the LOW crosses the stop (104,600) AND the
    // liquidation price. The path inside the candle is unknown: the liquidation wins, the stop is cancelled.
    const c = await btcCandle('2025-06-13T00:00:00Z');
    assert.deepEqual([c.open, c.high, c.low, c.close], [105609.4, 105661, 103500, 103668]);
    const { ex, setNow } = realExchange('2025-06-13T00:00:00Z');
    await ex.prepareEntry(BTC, 50);
    await ex.createOrder({
      pair: BTC,
      side: 'buy',
      quantity: 0.05,
      reduceOnly: false,
      clientOrderId: 'both-1',
      referencePrice: 105_609.5,
    });
    await ex.placeStopOrder({
      pair: BTC,
      side: 'sell',
      quantity: 0.05,
      stopPrice: 104_600,
      clientOrderId: 'both-1-stop',
    });
    near(ex.ledger.position(BTC)!.liquidationPrice, 104_046.1625715, 'liquidation price');
    setNow('2025-06-13T00:30:00Z');
    const closes = await ex.syncTo();
    assert.equal(closes.length, 1);
    assert.equal(closes[0]!.reason, 'liquidation');
    near(closes[0]!.price, 104_046.1625715, 'liquidated at the liquidation price');
    near(ex.ledger.liquidations()[0]!.marginLost, 105.6306219, 'margin lost');
    const stop = await ex.fetchOrderByClientId(BTC, 'both-1-stop');
    assert.equal(stop!.status, 'canceled');
    assert.equal(stop!.filledQuantity, 0);
    // the funding at 00:00 was settled before the order (flat); entry fee = 0.05 x 105,630.6219 x 0.0005 = 2.6407655475
    near(ex.ledger.cash, 10_000 - 105.6306219 - 2.6407655475, 'cash', 10_000);
    ex.close();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Port behaviour
// ---------------------------------------------------------------------------------------------------------------

describe('the Exchange port', () => {
  test('a repeated client order id returns the original order, also after reopening, and never fills twice', async () => {
    const file = freshFile();
    let now = Date.parse('2025-06-01T12:00:00Z');
    const open = (): PaperExchange =>
      new PaperExchange({ file, config: PAPER, source: realSource, clock: () => now, triggerTimeframe: '30m' });
    let ex = open();
    await ex.prepareEntry(BTC, 5);
    const request: OrderRequest = {
      pair: BTC,
      side: 'buy',
      quantity: 0.02,
      reduceOnly: false,
      clientOrderId: 'lt-once-1',
      referencePrice: 105_000,
    };
    const first = await ex.createOrder(request);
    const stopRequest: StopOrderRequest = {
      pair: BTC,
      side: 'sell',
      quantity: 0.02,
      stopPrice: 90_000,
      clientOrderId: 'lt-once-stop',
    };
    const firstStop = await ex.placeStopOrder(stopRequest);
    const state = ex.ledgerState();
    assert.deepEqual(await ex.createOrder(request), first);
    assert.deepEqual(await ex.placeStopOrder(stopRequest), firstStop);
    ex.close();

    now += 2 * HALF_HOUR;
    ex = open();
    assert.deepEqual(ex.ledgerState(), state, 'reopening changes nothing');
    assert.deepEqual(await ex.createOrder(request), first, 'the retry after a restart finds the order');
    assert.deepEqual(await ex.placeStopOrder(stopRequest), firstStop);
    assert.equal(ex.ledger.fills().length, 1);
    assert.equal(ex.ledger.position(BTC)!.quantity, 0.02);
    await rejectsWith(
      ex.createOrder({ ...request, quantity: 0.03 }),
      'ExchangeDuplicateOrderId',
      /lt-once-1 is already used by the market buy 0\.02 on BTC\/USDT:USDT order; this request is a market buy 0\.03/,
    );
    assert.deepEqual(await ex.fetchOrderByClientId(BTC, 'lt-once-1'), first);
    assert.equal(await ex.fetchOrderByClientId('ETH/USDT:USDT', 'lt-once-1'), null);
    ex.close();
  });

  test("two workers sharing one account file (two connections) see and keep each other's orders", async () => {
    const file = freshFile();
    let now = Date.parse('2025-06-01T12:00:00Z');
    const open = (): PaperExchange =>
      new PaperExchange({ file, config: PAPER, source: realSource, clock: () => now, triggerTimeframe: '30m' });
    const a = open();
    const b = open();
    const ETH = 'ETH/USDT:USDT';
    await a.prepareEntry(BTC, 5);
    await b.prepareEntry(ETH, 5);
    const order = (pair: string, id: string, quantity: number, price: number): OrderRequest => ({
      pair,
      side: 'buy',
      quantity,
      reduceOnly: false,
      clientOrderId: id,
      referencePrice: price,
    });
    await a.createOrder(order(BTC, 'lt-a-1', 0.02, 105_000));
    await a.placeStopOrder({ pair: BTC, side: 'sell', quantity: 0.02, stopPrice: 90_000, clientOrderId: 'lt-a-1s' });
    // b opened the file before a's orders: it must not write from its stale copy
    await b.createOrder(order(ETH, 'lt-b-1', 0.5, 2_500));
    now += 4 * HALF_HOUR;
    await b.syncTo();
    await a.syncTo();
    for (const ex of [a, b]) {
      assert.deepEqual(
        ex.ledger
          .positions()
          .map((p) => p.pair)
          .sort(),
        [BTC, ETH],
        'both positions, seen from either connection',
      );
      assert.equal(ex.ledger.fills().length, 2);
    }
    a.close();
    b.close();
    // and the file holds a consistent account that a third process can open
    const c = open();
    assert.equal(c.ledger.positions().length, 2);
    assert.notEqual(c.ledger.order('lt-a-1s'), null, "a's protective stop survived b's writes");
    c.close();
  });

  test('entries need a leverage, a minimum notional and a valid id; leverage cannot change under a position', async () => {
    const { ex } = realExchange('2025-06-01T12:00:00Z');
    const request: OrderRequest = {
      pair: BTC,
      side: 'buy',
      quantity: 0.01,
      reduceOnly: false,
      clientOrderId: 'lev-1',
      referencePrice: 105_000,
    };
    await rejectsWith(
      ex.createOrder(request),
      'ExchangeInvalidOrder',
      /no leverage is set for BTC\/USDT:USDT; call prepareEntry/,
    );
    await ex.prepareEntry(BTC, 3);
    await rejectsWith(
      ex.createOrder({ ...request, quantity: 0.00001 }),
      'ExchangeInvalidOrder',
      /notional 0\.00001 x 105000 = 1\.05 USDT is below the minimum 5 USDT/,
    );
    await rejectsWith(
      ex.createOrder({ ...request, clientOrderId: 'has space' }),
      'ExchangeInvalidOrder',
      /client order id "has space" is invalid/,
    );
    await ex.createOrder(request);
    assert.equal(ex.ledger.position(BTC)!.leverage, 3);
    await ex.setLeverage(BTC, 3);
    await rejectsWith(ex.setLeverage(BTC, 10), 'ExchangeRejected', /a long position is open at 3x/);
    await rejectsWith(ex.setLeverage(BTC, 0), 'ExchangeBadRequest', /leverage must be an integer in 1\.\.125, got 0/);
    await rejectsWith(
      ex.createOrder({ ...request, clientOrderId: 'lev-2', quantity: 10 }),
      'ExchangeInsufficientFunds',
      /only [\d.]+ USDT is available/,
    );
    await rejectsWith(ex.market('BTCUSDT'), 'ExchangeBadSymbol', /use BASE\/QUOTE:SETTLE like BTC\/USDT:USDT/);
    ex.close();
  });

  test('cancelling a stop that already triggered reports it filled; an open stop is cancelled', async () => {
    // BTC 2025-05-22: long 0.01 at the 03:30 decision (close of the 03:00 candle 110,728.1); the 03:30 candle's
    // low is 110,661.7, so a sell stop at 110,700 triggers in it, a stop at 110,000 does not.
    const { ex, setNow } = realExchange('2025-05-22T03:30:00Z');
    await ex.prepareEntry(BTC, 2);
    await ex.createOrder({
      pair: BTC,
      side: 'buy',
      quantity: 0.01,
      reduceOnly: false,
      clientOrderId: 'c-open',
      referencePrice: 110_728.1,
    });
    await ex.placeStopOrder({ pair: BTC, side: 'sell', quantity: 0.005, stopPrice: 110_700, clientOrderId: 'c-s1' });
    await ex.placeStopOrder({ pair: BTC, side: 'sell', quantity: 0.005, stopPrice: 110_000, clientOrderId: 'c-s2' });
    setNow('2025-05-22T04:10:00Z');
    const first = await ex.cancelOrder(BTC, 'c-s1');
    assert.equal(first!.status, 'filled');
    near(first!.averagePrice, 110_700 * (1 - SLIP), 'stop fill');
    const second = await ex.cancelOrder(BTC, 'c-s2');
    assert.equal(second!.status, 'canceled');
    assert.equal(await ex.cancelOrder(BTC, 'unknown'), null);
    near(ex.ledger.position(BTC)!.quantity, 0.005, 'half the position is left');
    ex.close();
  });

  test('closed candles and funding come from the source; a replay past the recorded data is rejected', async () => {
    const { ex, setNow } = realExchange('2025-06-01T12:00:00Z');
    const since = Date.parse('2025-06-01T10:00:00Z');
    const candles = await ex.fetchClosedCandles(BTC, '1h', since, Date.parse('2025-06-01T12:10:00Z'));
    assert.deepEqual(
      candles.map((c) => new Date(c.time).toISOString()),
      ['2025-06-01T10:00:00.000Z', '2025-06-01T11:00:00.000Z'],
    );
    const history = await ex.fetchFundingRateHistory(BTC, Date.parse('2025-06-01T00:00:00Z'));
    assert.deepEqual(
      history.map((r) => new Date(r.time).toISOString()),
      ['2025-06-01T00:00:00.000Z', '2025-06-01T08:00:00.000Z'],
    );
    setNow('2025-08-01T00:00:00Z');
    await ex.prepareEntry(BTC, 2);
    await rejectsWith(
      ex.createOrder({
        pair: BTC,
        side: 'buy',
        quantity: 0.01,
        reduceOnly: false,
        clientOrderId: 'late',
        referencePrice: 100_000,
      }),
      'ExchangeRejected',
      /market data unavailable: .*no recorded candle/,
    );
    ex.close();
  });

  test('a failed database write is a retryable error and leaves memory and file in agreement', async () => {
    const { ex } = realExchange('2025-06-01T12:00:00Z');
    await ex.prepareEntry(BTC, 5);
    const request: OrderRequest = {
      pair: BTC,
      side: 'buy',
      quantity: 0.01,
      reduceOnly: false,
      clientOrderId: 'w-1',
      referencePrice: 105_000,
    };
    await ex.createOrder(request);
    const before = ex.ledgerState();
    // Another connection takes the sequence number the next order's fill will get (order nextSeq, fill nextSeq + 1),
    // so writing that fill fails with a UNIQUE constraint after the ledger has already applied the order in memory.
    const other = new Database(ex.file);
    other.pragma('foreign_keys = OFF'); // an orphan row: the reload ignores fills of unknown orders
    other
      .prepare(
        `INSERT INTO fills (seq, client_order_id, pair, side, price, quantity, fee, time, reduce_only, order_kind,
           effect, realized_pnl, margin_change, bankruptcy_cover)
         VALUES (?, 'not-an-order', 'X/USDT:USDT', 'buy', 1, 1, 0, 0, 0, 'market', 'open', 0, 0, 0)`,
      )
      .run(before.nextSeq + 1);
    other.close();
    await rejectsWith(
      ex.createOrder({ ...request, clientOrderId: 'w-2' }),
      'ExchangeOperationFailed',
      /the paper account database failed \(SQLITE_CONSTRAINT_PRIMARYKEY: UNIQUE constraint failed: fills\.seq\); nothing was committed/,
    );
    assert.deepEqual(ex.ledgerState(), before, 'memory is back to what is committed');
    assert.equal(ex.ledger.order('w-2'), null);
    const file = ex.file;
    ex.close();
    const reopened = new PaperExchange({
      file,
      config: PAPER,
      source: realSource,
      clock: () => 0,
      triggerTimeframe: '30m',
    });
    assert.deepEqual(reopened.ledgerState(), before, 'the file holds the same');
    reopened.close();
  });

  test('an account cannot be reopened with other fee or slippage figures', () => {
    const file = freshFile();
    const options = { file, source: realSource, clock: () => 0, triggerTimeframe: '30m' };
    new PaperExchange({ ...options, config: PAPER }).close();
    assert.throws(
      () => new PaperExchange({ ...options, config: { ...PAPER, taker_fee: 0.0004 } }),
      /was created with other rules: paper\.taker_fee is 0\.0004 in the config but 0\.0005 in the account/,
    );
    // the starting balance only matters at creation, but it is part of the account's identity too
    const reopened = new PaperExchange({ ...options, config: PAPER });
    assert.equal(reopened.ledger.cash, 10_000);
    reopened.close();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// ACCEPTANCE: 1,000 random order sequences over 3 pairs
// ---------------------------------------------------------------------------------------------------------------

const PAIRS = ['AAA/USDT:USDT', 'BBB/USDT:USDT', 'CCC/USDT:USDT'] as const;
const BASE_PRICES = [100, 2.5, 30_000];
const CANDLES = 48; // one day of 30m candles
const T0 = Date.UTC(2025, 0, 1);
const END = T0 + CANDLES * HALF_HOUR;
// every 3 hours (more often than Binance's 8) so that positions meet funding often
const FUNDING_TIMES = [0, 3, 6, 9, 12, 15, 18, 21, 24].map((h) => T0 + h * 3_600_000);

type Op =
  | { kind: 'step'; n: number }
  | { kind: 'open'; pair: number; side: 'buy' | 'sell'; leverage: number; pct: number; noise: number }
  | { kind: 'reduce'; pair: number; pct: number; reduceOnly: boolean; noise: number }
  | { kind: 'stop'; pair: number; distance: number; half: boolean }
  | { kind: 'cancel'; which: number }
  | { kind: 'repeat'; which: number }
  | { kind: 'conflict'; which: number };

const pairIndex = fc.integer({ min: 0, max: PAIRS.length - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('step' as const), n: fc.integer({ min: 1, max: 3 }) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('open' as const),
      pair: pairIndex,
      side: fc.constantFrom('buy' as const, 'sell' as const),
      leverage: fc.integer({ min: 1, max: 60 }),
      pct: fc.integer({ min: 1, max: 100 }),
      noise: fc.integer({ min: -20, max: 20 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('reduce' as const),
      pair: pairIndex,
      pct: fc.integer({ min: 1, max: 130 }),
      reduceOnly: fc.boolean(),
      noise: fc.integer({ min: -20, max: 20 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('stop' as const),
      pair: pairIndex,
      distance: fc.integer({ min: -20, max: 150 }),
      half: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), which: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('repeat' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('conflict' as const), which: fc.nat() }) },
);
/** per candle: close move, upper wick, lower wick, in per mille */
const seriesArb = fc.record({
  moves: fc.array(
    fc.tuple(fc.integer({ min: -40, max: 40 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 })),
    { minLength: CANDLES, maxLength: CANDLES },
  ),
  /** funding rates at FUNDING_TIMES in units of 0.01 % (real rates are smaller; large ones test the edge cases) */
  rates: fc.array(fc.integer({ min: -50, max: 50 }), {
    minLength: FUNDING_TIMES.length,
    maxLength: FUNDING_TIMES.length,
  }),
});
const runArb = fc.record({
  series: fc.tuple(seriesArb, seriesArb, seriesArb),
  ops: fc.array(opArb, { minLength: 10, maxLength: 40 }),
});

interface World {
  candles: Map<string, Candle[]>;
  funding: Map<string, FundingEvent[]>;
  /** leverage each market order opened a position with (what prepareEntry set, or the position's) */
  orderLeverage: Map<string, number>;
}

function buildWorld(series: { moves: [number, number, number][]; rates: number[] }[]): World {
  const candles = new Map<string, Candle[]>();
  const funding = new Map<string, FundingEvent[]>();
  PAIRS.forEach((pair, i) => {
    let price = BASE_PRICES[i]!;
    const s = series[i]!;
    candles.set(
      pair,
      s.moves.map(([move, up, down], k) => {
        const open = price;
        const close = open * (1 + move / 1000);
        price = close;
        return {
          time: T0 + k * HALF_HOUR,
          open,
          high: Math.max(open, close) * (1 + up / 1000),
          low: Math.min(open, close) * (1 - down / 1000),
          close,
          volume: 1,
        };
      }),
    );
    funding.set(
      pair,
      FUNDING_TIMES.map((time, k) => ({ time, rate: s.rates[k]! / 10_000 })),
    );
  });
  return { candles, funding, orderLeverage: new Map() };
}

function memorySource(world: World): PaperMarketData {
  const data: RecordedData = {
    description: 'generated test candles',
    timeframes: (pair) => Promise.resolve(world.candles.has(pair) ? ['30m'] : []),
    loadCandles: (pair) => Promise.resolve(world.candles.get(pair)!),
    loadFunding: (pair) => Promise.resolve(world.funding.get(pair) ?? []),
  };
  return new RecordedMarketSource(data);
}

/** The candle of `pair` that closes at `time` (the test data has no gaps). */
function candleClosingAt(world: World, pair: string, time: number): Candle {
  const c = world.candles.get(pair)![(time - T0) / HALF_HOUR - 1];
  assert.ok(c && c.time + HALF_HOUR === time, `no candle of ${pair} closes at ${time}`);
  return c;
}

interface RefPosition {
  side: Side;
  qty: number;
  entry: number;
  leverage: number;
  margin: number;
  deficit: number;
  /** time from which the current liquidation price applies */
  liqSince: number;
}

function refLiquidation(p: RefPosition): number {
  const base = liquidationPrice(p.side, p.entry, p.leverage, MMR);
  return p.side === 'long' ? base + p.deficit / p.qty : base - p.deficit / p.qty;
}

function adverseCrosses(side: Side, c: Candle, price: number): boolean {
  return side === 'long' ? c.low <= price : c.high >= price;
}

/**
 * A straightforward re-computation of the account from its event stream (fills, funding settlements, liquidations
 * in sequence order), checking on the way that every fill price, funding amount and liquidation is what the rules
 * say given the test's own candles, funding rates and order requests.
 */
function recompute(state: LedgerState, world: World) {
  let cash = PAPER.starting_balance;
  let fees = 0;
  let funding = 0;
  let realized = 0;
  let liquidationLosses = 0;
  let cover = 0;
  const positions = new Map<string, RefPosition>();
  const orders = new Map(state.orders.map((o) => [o.clientOrderId, o]));
  type Event =
    | { seq: number; fill: LedgerState['orders'][number]['fills'][number] }
    | { seq: number; funding: LedgerState['funding'][number] }
    | { seq: number; liquidation: LedgerState['liquidations'][number] };
  const events: Event[] = [
    ...state.orders.flatMap((o) => o.fills.map((fill) => ({ seq: fill.seq, fill }))),
    ...state.funding.map((f) => ({ seq: f.seq, funding: f })),
    ...state.liquidations.map((l) => ({ seq: l.seq, liquidation: l })),
  ].sort((a, b) => a.seq - b.seq);

  for (const e of events) {
    if ('fill' in e) {
      const f = e.fill;
      const order = orders.get(f.clientOrderId)!;
      const p = positions.get(f.pair);
      const buy = f.side === 'buy';
      // the fill price
      if (order.kind === 'market') {
        near(f.price, order.referencePrice! * (buy ? 1 + SLIP : 1 - SLIP), `market fill price of ${f.clientOrderId}`);
      } else {
        assert.ok(p, `stop ${f.clientOrderId} filled without a position`);
        const c = candleClosingAt(world, f.pair, f.time);
        const stopPrice = order.stopPrice!;
        assert.ok(adverseCrosses(p.side, c, stopPrice), `stop ${f.clientOrderId} filled by a candle that missed it`);
        assert.ok(
          !adverseCrosses(p.side, c, refLiquidation(p)),
          `stop filled in a candle that crossed the liquidation`,
        );
        const gapped = p.side === 'long' ? c.open <= stopPrice : c.open >= stopPrice;
        near(f.price, (gapped ? c.open : stopPrice) * (buy ? 1 + SLIP : 1 - SLIP), `stop fill price`);
      }
      const fee = f.quantity * f.price * TAKER;
      fees += fee;
      if (!p || buy === (p.side === 'long')) {
        assert.equal(order.kind, 'market', 'only market orders open or add');
        const leverage = p ? p.leverage : world.orderLeverage.get(f.clientOrderId);
        assert.ok(leverage !== undefined, `no leverage known for the opening order ${f.clientOrderId}`);
        const margin = (f.quantity * f.price) / leverage;
        cash -= margin + fee;
        if (p) {
          p.entry = (p.qty * p.entry + f.quantity * f.price) / (p.qty + f.quantity);
          p.qty += f.quantity;
          p.margin += margin;
          p.liqSince = f.time;
        } else {
          positions.set(f.pair, {
            side: buy ? 'long' : 'short',
            qty: f.quantity,
            entry: f.price,
            leverage,
            margin,
            deficit: 0,
            liqSince: f.time,
          });
        }
      } else {
        const closes = f.quantity >= p.qty * (1 - 1e-9);
        const pnl = (p.side === 'long' ? f.price - p.entry : p.entry - f.price) * f.quantity;
        const released = closes ? p.margin : (p.margin * f.quantity) / p.qty;
        const net = released + pnl - fee;
        realized += pnl;
        if (net < 0) cover -= net;
        else cash += net;
        if (closes) positions.delete(f.pair);
        else {
          p.deficit *= 1 - f.quantity / p.qty;
          p.qty -= f.quantity;
          p.margin -= released;
        }
      }
    } else if ('funding' in e) {
      const r = e.funding;
      const p = positions.get(r.pair);
      assert.ok(p, `funding on ${r.pair} at ${r.time} without a position`);
      const rate = world.funding.get(r.pair)!.find((x) => x.time === r.time)!.rate;
      const mark = candleClosingAt(world, r.pair, r.time).close;
      const amount = (p.side === 'long' ? 1 : -1) * p.qty * mark * rate;
      near(r.amount, amount, `funding of ${r.pair} at ${r.time}`);
      if (amount > cash) {
        const fromMargin = amount - cash;
        cash = 0;
        p.margin -= fromMargin;
        p.deficit += fromMargin;
        p.liqSince = r.time;
      } else {
        cash -= amount;
      }
      funding += amount;
    } else {
      const l = e.liquidation;
      const p = positions.get(l.pair);
      assert.ok(p, `liquidation on ${l.pair} without a position`);
      const c = candleClosingAt(world, l.pair, l.time);
      assert.ok(
        adverseCrosses(p.side, c, refLiquidation(p)),
        `liquidation on ${l.pair} by a candle that did not cross`,
      );
      liquidationLosses += p.margin;
      positions.delete(l.pair);
    }
  }
  return { cash, fees, funding, realized, liquidationLosses, cover, positions };
}

/** Is `pair` holding a position at funding time `t`? Market fills at t come after it, stops/liquidations at t before. */
function openAtFunding(state: LedgerState, pair: string, t: number): boolean {
  const kindOf = new Map(state.orders.map((o) => [o.clientOrderId, o.kind]));
  const changes = [
    ...state.orders
      .flatMap((o) => o.fills)
      .filter((f) => f.pair === pair)
      .map((f) => ({ seq: f.seq, time: f.time, fill: f })),
    ...state.liquidations.filter((l) => l.pair === pair).map((l) => ({ seq: l.seq, time: l.time, fill: null })),
  ]
    .filter((x) => (x.fill !== null && kindOf.get(x.fill.clientOrderId) === 'market' ? x.time < t : x.time <= t))
    .sort((a, b) => a.seq - b.seq);
  let signed = 0;
  for (const x of changes) {
    if (x.fill === null) signed = 0;
    else signed += x.fill.side === 'buy' ? x.fill.quantity : -x.fill.quantity;
    if (Math.abs(signed) < 1e-12) signed = 0;
  }
  return signed !== 0;
}

function checkInvariants(ex: PaperExchange, world: World, now: number): void {
  const ledger = ex.ledger;
  const state = ex.ledgerState();
  const scale = Math.max(PAPER.starting_balance, Math.abs(ledger.equity()));

  // isolated margin: cash never goes below zero, liquidation or not
  assert.ok(state.cash >= 0, `cash ${state.cash} < 0`);

  // fees: qty x price x taker rate over every fill
  const fills = state.orders.flatMap((o) => o.fills);
  const feeSum = fills.reduce((s, f) => s + f.quantity * f.price * TAKER, 0);
  near(state.totals.fees, feeSum, 'total fees = recomputation from the fills', scale);

  // a client order id never fills twice
  for (const o of state.orders) {
    const count = fills.filter((f) => f.clientOrderId === o.clientOrderId).length;
    assert.ok(o.kind === 'market' ? count === 1 : count <= 1, `order ${o.clientOrderId} has ${count} fills`);
  }

  // the whole account, recomputed
  const ref = recompute(state, world);
  near(state.cash, ref.cash, 'cash', scale);
  near(state.totals.funding, ref.funding, 'total funding = recomputation from positions at funding times', scale);
  near(state.totals.realizedPnl, ref.realized, 'realised pnl', scale);
  near(state.totals.liquidationLosses, ref.liquidationLosses, 'liquidation losses', scale);
  near(state.totals.bankruptcyCover, ref.cover, 'bankruptcy cover', scale);
  assert.deepEqual(
    state.positions.map((p) => p.pair),
    [...ref.positions.keys()].sort(),
    'open positions',
  );
  for (const p of state.positions) {
    const r = ref.positions.get(p.pair)!;
    assert.equal(p.side, r.side);
    near(p.quantity, r.qty, `${p.pair} quantity`);
    near(p.entryPrice, r.entry, `${p.pair} entry`);
    near(p.margin, r.margin, `${p.pair} margin`, scale);
    near(p.liquidationPrice, refLiquidation(r), `${p.pair} liquidation price`);
  }

  // equity = cash + margin + unrealised PnL, each term computed here, at the last closes
  const prices: Record<string, number> = {};
  let equity = ref.cash;
  for (const [pair, r] of ref.positions) {
    const price = candleClosingAt(world, pair, now).close;
    prices[pair] = price;
    equity += r.margin + (r.side === 'long' ? price - r.entry : r.entry - price) * r.qty;
  }
  near(ledger.equity(prices), equity, 'equity = cash + margin + unrealised pnl', scale);
  // money is conserved
  const margins = state.positions.reduce((s, p) => s + p.margin, 0);
  const t = state.totals;
  near(
    state.cash + margins,
    PAPER.starting_balance - t.fees - t.funding + t.realizedPnl - t.liquidationLosses + t.bankruptcyCover,
    'cash + margin = start - fees - funding + realised - liquidations + cover',
    scale,
  );

  // funding is charged exactly when a position is held at a funding time
  for (const pair of PAIRS) {
    const synced = ledger.syncedTo(pair);
    for (const event of world.funding.get(pair)!) {
      if (synced === null || event.time > synced || event.time <= T0) continue;
      const charged = state.funding.some((f) => f.pair === pair && f.time === event.time);
      assert.equal(charged, openAtFunding(state, pair, event.time), `${pair} funding at ${event.time}`);
    }
  }

  // no trigger was missed: no processed candle since an open position's liquidation price was set crossed it,
  // and none since an open stop was placed reached the stop
  for (const [pair, r] of ref.positions) {
    const synced = ledger.syncedTo(pair)!;
    const liq = refLiquidation(r);
    for (const c of world.candles.get(pair)!) {
      if (c.time >= r.liqSince && c.time + HALF_HOUR <= synced) {
        assert.ok(!adverseCrosses(r.side, c, liq), `${pair}: candle ${c.time} crossed the liquidation price ${liq}`);
      }
    }
  }
  for (const o of state.orders) {
    if (o.kind !== 'stop' || o.status !== 'open') continue;
    const r = ref.positions.get(o.pair);
    assert.ok(r, `open stop ${o.clientOrderId} without a position`);
    const synced = ledger.syncedTo(o.pair)!;
    for (const c of world.candles.get(o.pair)!) {
      if (c.time >= o.time && c.time + HALF_HOUR <= synced) {
        assert.ok(!adverseCrosses(r.side, c, o.stopPrice!), `stop ${o.clientOrderId} missed by candle ${c.time}`);
      }
    }
  }
}

/** Everything a user can read from the exchange, for the reopen comparison. */
async function readable(ex: PaperExchange, ids: { pair: string; id: string }[]) {
  return {
    state: ex.ledgerState(),
    balance: await ex.fetchBalance(),
    positions: await ex.fetchPositions(),
    orders: await Promise.all(ids.map((x) => ex.fetchOrderByClientId(x.pair, x.id))),
  };
}

describe('ACCEPTANCE: paper exchange property test', () => {
  test('1,000 random order sequences over 3 pairs keep the invariants; reopening mid-sequence changes nothing', async (t) => {
    // how often the interesting paths ran, so the property cannot pass vacuously
    const seen = {
      fills: 0,
      stopFills: 0,
      liquidations: 0,
      fundingCharges: 0,
      fundingFromMargin: 0,
      repeats: 0,
      duplicateIds: 0,
      insufficientFunds: 0,
      invalidOrders: 0,
      cancels: 0,
      reopens: 0,
    };
    await fc.assert(
      fc.asyncProperty(runArb, async ({ series, ops }) => {
        const world = buildWorld(series);
        const file = freshFile();
        let now = T0 + 2 * HALF_HOUR;
        // NORMAL instead of the default FULL: the same rows are written, only without an fsync per commit, which
        // would dominate 30,000 commits; FULL is what the other tests use.
        const open = (): PaperExchange =>
          new PaperExchange({
            file,
            config: PAPER,
            source: memorySource(world),
            clock: () => now,
            triggerTimeframe: '30m',
            synchronous: 'NORMAL',
          });
        let ex = open();
        const requests: (
          | { kind: 'market'; req: OrderRequest; result: OrderResult }
          | {
              kind: 'stop';
              req: StopOrderRequest;
              result: OrderResult;
            }
        )[] = [];
        const stops: { pair: string; id: string }[] = [];
        const leverageSetting = new Map<string, number>();
        let nextId = 0;
        const lastClose = (pair: string): number => candleClosingAt(world, pair, now).close;
        /** An expected rejection: an ExchangeError of one of `types`, with the account unchanged. */
        const expectRejection = (err: unknown, types: string[], before: LedgerState): void => {
          if (!(err instanceof ExchangeError) || !types.includes(err.type)) throw err;
          if (err.type === 'ExchangeInsufficientFunds') seen.insufficientFunds++;
          if (err.type === 'ExchangeInvalidOrder') seen.invalidOrders++;
          if (err.type === 'ExchangeDuplicateOrderId') seen.duplicateIds++;
          assert.deepEqual(ex.ledgerState(), before, `a rejected request changed the account: ${err.message}`);
        };

        try {
          for (let i = 0; i < ops.length; i++) {
            if (i === Math.floor(ops.length / 2)) {
              await ex.syncTo(now);
              const ids = requests.map((r) => ({ pair: r.req.pair, id: r.req.clientOrderId }));
              const beforeClose = await readable(ex, ids);
              ex.close();
              ex = open();
              assert.deepEqual(await readable(ex, ids), beforeClose, 'reopening changed a figure');
              seen.reopens++;
            }
            const op = ops[i]!;
            if (op.kind === 'step') {
              now = Math.min(END, now + op.n * HALF_HOUR);
              await ex.syncTo(now);
            } else if (op.kind === 'open' || op.kind === 'reduce') {
              const pair = PAIRS[op.pair]!;
              await ex.advancePair(pair, now);
              const before = ex.ledgerState();
              const position = ex.ledger.position(pair);
              let side: 'buy' | 'sell';
              let quantity: number;
              let reduceOnly = false;
              if (op.kind === 'open') {
                try {
                  await ex.prepareEntry(pair, op.leverage);
                  leverageSetting.set(pair, op.leverage);
                } catch (err) {
                  expectRejection(err, ['ExchangeRejected'], before);
                }
                side = op.side;
                const leverage = position?.leverage ?? op.leverage;
                quantity = (((ex.ledger.cash * op.pct) / 100) * leverage) / lastClose(pair);
              } else {
                side = position?.side === 'long' ? 'sell' : 'buy';
                quantity = position ? (position.quantity * op.pct) / 100 : (1000 * op.pct) / 100 / lastClose(pair);
                reduceOnly = op.reduceOnly;
              }
              const req: OrderRequest = {
                pair,
                side,
                quantity,
                reduceOnly,
                clientOrderId: `o${nextId++}`,
                referencePrice: lastClose(pair) * (1 + op.noise / 1000),
              };
              // the leverage a position opened by this order gets: the exchange's setting for the pair
              const opensWith = position?.leverage ?? leverageSetting.get(pair);
              if (opensWith !== undefined) world.orderLeverage.set(req.clientOrderId, opensWith);
              const stateBeforeOrder = ex.ledgerState();
              try {
                const result = await ex.createOrder(req);
                requests.push({ kind: 'market', req, result });
              } catch (err) {
                expectRejection(err, ['ExchangeInsufficientFunds', 'ExchangeInvalidOrder'], stateBeforeOrder);
              }
            } else if (op.kind === 'stop') {
              const pair = PAIRS[op.pair]!;
              await ex.advancePair(pair, now);
              const before = ex.ledgerState();
              const position = ex.ledger.position(pair);
              const long = position?.side !== 'short';
              const req: StopOrderRequest = {
                pair,
                side: long ? 'sell' : 'buy',
                quantity: position ? (op.half ? position.quantity / 2 : position.quantity) : 1,
                stopPrice: lastClose(pair) * (long ? 1 - op.distance / 1000 : 1 + op.distance / 1000),
                clientOrderId: `s${nextId++}`,
              };
              try {
                const result = await ex.placeStopOrder(req);
                requests.push({ kind: 'stop', req, result });
                stops.push({ pair, id: req.clientOrderId });
              } catch (err) {
                expectRejection(err, ['ExchangeInvalidOrder'], before);
              }
            } else if (op.kind === 'cancel') {
              if (stops.length === 0) continue;
              const { pair, id } = stops[op.which % stops.length]!;
              await ex.advancePair(pair, now);
              const status = ex.ledger.order(id)!.status;
              const result = await ex.cancelOrder(pair, id);
              assert.equal(result!.status, status === 'open' ? 'canceled' : status);
              if (status === 'open') seen.cancels++;
            } else if (requests.length > 0) {
              const r = requests[op.which % requests.length]!;
              const before = ex.ledgerState();
              if (op.kind === 'repeat') {
                const result = r.kind === 'market' ? await ex.createOrder(r.req) : await ex.placeStopOrder(r.req);
                assert.deepEqual(result, toOrderResult(ex.ledger.order(r.req.clientOrderId)!));
                if (r.kind === 'market') assert.deepEqual(result, r.result, 'a repeated market order is the original');
                assert.deepEqual(ex.ledgerState(), before, 'a repeated request changed the account');
                seen.repeats++;
              } else {
                const changed = { ...r.req, quantity: r.req.quantity * 2 };
                try {
                  if (r.kind === 'market') await ex.createOrder(changed as OrderRequest);
                  else await ex.placeStopOrder(changed as StopOrderRequest);
                  assert.fail('a different request under a used id was accepted');
                } catch (err) {
                  expectRejection(err, ['ExchangeDuplicateOrderId'], before);
                }
              }
            }
            checkInvariants(ex, world, now);
          }
          await ex.syncTo(now);
          checkInvariants(ex, world, now);
          const ids = requests.map((r) => ({ pair: r.req.pair, id: r.req.clientOrderId }));
          const beforeClose = await readable(ex, ids);
          ex.close();
          ex = open();
          assert.deepEqual(await readable(ex, ids), beforeClose, 'reopening at the end changed a figure');
          const final = ex.ledgerState();
          const fills = final.orders.flatMap((o) => o.fills);
          seen.fills += fills.length;
          seen.stopFills += fills.filter((f) => f.orderKind === 'stop').length;
          seen.liquidations += final.liquidations.length;
          seen.fundingCharges += final.funding.length;
          seen.fundingFromMargin += final.funding.filter((f) => f.fromMargin > 0).length;
        } finally {
          ex.close();
          removeDb(file);
        }
      }),
      { numRuns: 1000, includeErrorInReport: true },
    );
    t.diagnostic(`paths exercised: ${JSON.stringify(seen)}`);
    for (const [path, count] of Object.entries(seen))
      assert.ok(count > 0, `the generated sequences never exercised ${path}`);
  });
});
