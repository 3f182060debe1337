/**
 * Faults on the way to the exchange, each injected by the local exchange (test/local-exchange) under the real ccxt
 * `binanceusdm` and the worker's real activities, with the order and market steps retried as Temporal retries them
 * (an activity context with its attempt number, the workflow's retry delays). For each fault: what came of it
 * (retried, reconciled, recorded, refused) and the exchange's books, where a client order id must never name two
 * orders.
 */
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityRuntimeOptions } from '../../src/activities';
import type { ExecuteActivityRequest } from '../../src/activities/types';
import type { MarketView } from '../../src/core/cycle';
import { stopPriceFor } from '../../src/core/risk';
import type { EngineConfig } from '../local-exchange/engine';
import { IN_FLIGHT_MS, type LocalExchange, type LocalExchangeOptions } from '../local-exchange/server';
import {
  HALF_HOUR,
  MARKET_RETRY,
  executeWithRetries,
  liveHarness,
  startLocalExchange,
  tools,
  withRetries,
  type LiveHarness,
} from '../helpers/live-exchange';

const PAIR = 'BTC/USDT:USDT';
const SYMBOL = 'BTCUSDT';
const AS_OF = Date.parse('2025-06-22T07:00:00Z');
/** short look-up retry delays: the faults below decide how many look-ups miss */
const FAST = { lookupRetryDelaysMs: [100, 200] };

let exchange: LocalExchange | null = null;
let live: LiveHarness | null = null;

afterEach(async () => {
  await live?.close();
  await exchange?.close();
  live = null;
  exchange = null;
});

async function setUp(
  opts: {
    engine?: Partial<EngineConfig>;
    server?: Partial<LocalExchangeOptions>;
    timings?: ActivityRuntimeOptions['exchangeTimings'];
    decisions?: Parameters<typeof liveHarness>[0]['decisions'];
  } = {},
): Promise<{ exchange: LocalExchange; live: LiveHarness; price: number }> {
  const started = await startLocalExchange(AS_OF + 5_000, {
    ...opts.server,
    ...(opts.engine ? { engine: opts.engine } : {}),
  });
  exchange = started.exchange;
  live = await liveHarness({
    exchange,
    clock: started.clock,
    pair: PAIR,
    decisions: opts.decisions ?? [],
    exchangeTimings: opts.timings ?? FAST,
  });
  return { exchange, live, price: exchange.market.lastPrice(SYMBOL, AS_OF + 5_000) };
}

/** A 10x long entry of 0.02 BTC at `price` with its protective stop. */
function entry(price: number, clientOrderId: string, quantity = 0.02): ExecuteActivityRequest {
  return {
    intent: {
      kind: 'open',
      pair: PAIR,
      side: 'long',
      leverage: 10,
      margin: (quantity * price) / 10,
      quantity,
      price,
      stopPrice: stopPriceFor('long', price, 10, -0.15),
    },
    clientOrderId,
    asOf: AS_OF,
    tradeId: clientOrderId,
    stopOrderId: null,
    account: 'live',
  };
}

/** Orders (market and stop) on the exchange named by `clientOrderId`. */
function named(ex: LocalExchange, clientOrderId: string): number {
  return (
    ex.engine.orders.filter((o) => o.clientOrderId === clientOrderId).length +
    ex.engine.algoOrders.filter((a) => a.clientAlgoId === clientOrderId).length
  );
}

/** The one order and the one stop of an entry, filled as the execution reports. */
function assertOneEntry(
  ex: LocalExchange,
  clientOrderId: string,
  fills: { price: number; quantity: number; fee: number }[],
): void {
  assert.equal(named(ex, clientOrderId), 1, `one order named ${clientOrderId}`);
  assert.equal(named(ex, `${clientOrderId}s`), 1, `one stop named ${clientOrderId}s`);
  const order = ex.engine.orders.find((o) => o.clientOrderId === clientOrderId)!;
  const trades = ex.engine.tradesOf(order.orderId);
  assert.deepEqual(
    fills.map((f) => [f.price, f.quantity, f.fee]),
    trades.map((t) => [t.price, t.qty, t.commission]),
    'the execution reports the exchange trades',
  );
  assert.equal(ex.engine.position(SYMBOL)?.amount, order.executedQty);
}

const statusOf = (ex: LocalExchange, path: string, method: string) =>
  ex.requestsTo(path, method).map((r) => `${r.status}${r.code === null ? '' : ` ${r.code}`}`);

describe('faults on the order step (real ccxt over HTTP, retried as Temporal retries activities)', () => {
  test('429 with Retry-After on the order: retried after the wait, nothing sent during it, one order', async () => {
    const { exchange: ex, live: lv, price } = await setUp();
    ex.fault({
      method: 'POST',
      path: '/fapi/v1/order',
      kind: 'error',
      status: 429,
      code: -1003,
      msg: 'Too many requests.',
      retryAfterSec: 2,
    });
    const { result, attempts, failures } = await executeWithRetries(lv.runtime.activities, entry(price, 'fault-429'));
    assert.equal(attempts, 2);
    assert.equal(failures[0]?.type, 'ExchangeRateLimited');
    assert.equal(result.status, 'filled');
    assertOneEntry(ex, 'fault-429', result.fills);
    const limited = ex.requests.find((r) => r.status === 429)!;
    const during = ex.requests.filter((r) => r.at > limited.at && r.at < limited.at + 2_000);
    assert.deepEqual(
      during.map((r) => r.path),
      [],
      'nothing reached the exchange before its Retry-After had passed',
    );
    assert.equal(ex.requests.filter((r) => r.status === 418).length, 0, 'never banned');
    assert.deepEqual(ex.pendingFaults, []);
  });

  test('418 ban on a read: not sent at all while banned (refused locally, retryable), read again once it ends', async () => {
    const { exchange: ex, live: lv } = await setUp({ timings: { ...FAST, maxBackOffWaitMs: 500 } });
    ex.fault({
      method: 'GET',
      path: '/fapi/v3/account',
      kind: 'error',
      status: 418,
      code: -1003,
      msg: 'Way too many requests; IP banned.',
      retryAfterSec: 3,
    });
    const a = lv.runtime.activities;
    const { result, attempts, failures } = await withRetries<MarketView>(
      (env) => env.run(a.fetchMarket, { pair: PAIR, asOf: AS_OF, since: null, mode: 'live' as const, account: 'live' }),
      MARKET_RETRY,
    );
    assert.equal(result.account.equity, 10_000);
    assert.deepEqual(
      failures.map((f) => f.type),
      ['ExchangeRateLimited', 'ExchangeRateLimited'],
    );
    assert.match(failures[1]!.message, /not sent: the exchange banned this client \(HTTP 418\)/);
    assert.equal(attempts, 3);
    const ban = ex.requests.find((r) => r.status === 418)!;
    // requests already in flight when the 418 was answered arrive within a few ms of it
    const during = ex.requests.filter((r) => r.at > ban.at + 100 && r.at < ban.at + 3_000);
    assert.deepEqual(
      during.map((r) => r.path),
      [],
      'nothing was sent while the ban lasted',
    );
  });

  test('5xx before the order was executed: retried into one order', async () => {
    const { exchange: ex, live: lv, price } = await setUp();
    ex.fault({
      method: 'POST',
      path: '/fapi/v1/order',
      kind: 'error',
      status: 500,
      code: -1001,
      msg: 'Internal error; unable to process your request. Please try again.',
    });
    const { result, attempts, failures } = await executeWithRetries(lv.runtime.activities, entry(price, 'fault-500'));
    assert.equal(attempts, 2);
    assert.equal(failures[0]?.type, 'ExchangeOperationFailed');
    assertOneEntry(ex, 'fault-500', result.fills);
    assert.deepEqual(statusOf(ex, '/fapi/v1/order', 'POST'), ['500 -1001', '200']);
  });

  test('503 "execution status unknown" after the order was executed: reconciled with the order that exists', async () => {
    const { exchange: ex, live: lv, price } = await setUp();
    ex.fault({
      method: 'POST',
      path: '/fapi/v1/order',
      kind: 'error-after',
      status: 503,
      code: -1007,
      msg: 'Timeout waiting for response from backend server. Send status unknown; execution status unknown.',
    });
    const { result, attempts } = await executeWithRetries(lv.runtime.activities, entry(price, 'fault-503'));
    assert.equal(attempts, 2);
    assertOneEntry(ex, 'fault-503', result.fills);
    assert.deepEqual(
      statusOf(ex, '/fapi/v1/order', 'POST'),
      ['503 -1007'],
      'the retry found the order: no second POST',
    );
  });

  test('a slow answer: within the client timeout it is simply waited for; past it, retried and reconciled', async () => {
    const { exchange: ex, live: lv, price } = await setUp();
    ex.fault({ method: 'POST', path: '/fapi/v1/order', kind: 'delay-after', ms: 500 });
    const slow = await executeWithRetries(lv.runtime.activities, entry(price, 'fault-slow'));
    assert.equal(slow.attempts, 1);
    assertOneEntry(ex, 'fault-slow', slow.result.fills);

    // past ccxt's 3 s timeout (the test configuration): a RequestTimeout, retried
    const close: ExecuteActivityRequest = {
      intent: { kind: 'close', pair: PAIR, side: 'long', quantity: 0.02, price, reason: 'model' },
      clientOrderId: 'fault-slow-exit',
      asOf: AS_OF,
      tradeId: 'fault-slow',
      stopOrderId: 'fault-slows',
      account: 'live',
    };
    ex.fault({ method: 'POST', path: '/fapi/v1/order', kind: 'delay-after', ms: 3_500 });
    const timedOut = await executeWithRetries(lv.runtime.activities, close);
    assert.equal(timedOut.attempts, 2);
    assert.equal(timedOut.failures[0]?.type, 'ExchangeTimeout');
    assert.equal(named(ex, 'fault-slow-exit'), 1);
    assert.equal(ex.engine.position(SYMBOL), undefined, 'closed once, not twice');
    assert.equal(timedOut.result.stopOrderId, null);
    assert.equal(ex.engine.algoOrders.find((a) => a.clientAlgoId === 'fault-slows')?.algoStatus, 'CANCELED');
  });

  test('the answer is lost after the exchange accepted the order: the retry finds it, one order', async () => {
    const { exchange: ex, live: lv, price } = await setUp();
    ex.fault({ method: 'POST', path: '/fapi/v1/order', kind: 'drop-after' });
    const { result, attempts, failures } = await executeWithRetries(lv.runtime.activities, entry(price, 'fault-drop'));
    assert.equal(attempts, 2);
    assert.equal(failures[0]?.type, 'ExchangeNetworkError');
    assertOneEntry(ex, 'fault-drop', result.fills);
    assert.equal(ex.requestsTo('/fapi/v1/order', 'POST').length, 1);
  });

  test('-4116 for the stop after its answer was lost and the look-ups missed it: "already placed", one stop', async () => {
    const { exchange: ex, live: lv, price } = await setUp();
    ex.fault({ method: 'POST', path: '/fapi/v1/algoOrder', kind: 'drop-after' });
    // the first attempt's look-up (before sending), then the retry's look-up and its two repeats miss the stop
    ex.fault({
      method: 'GET',
      path: '/fapi/v1/algoOrder',
      kind: 'error',
      status: 400,
      code: -2013,
      msg: 'Order does not exist.',
      times: 4,
      match: (p) => p.clientAlgoId === 'fault-4116s',
    });
    const { result, attempts } = await executeWithRetries(lv.runtime.activities, entry(price, 'fault-4116'));
    assert.equal(attempts, 2);
    assert.equal(result.stopOrderId, 'fault-4116s');
    assert.deepEqual(statusOf(ex, '/fapi/v1/algoOrder', 'POST'), ['0', '400 -4116'], 'sent again, told it exists');
    assertOneEntry(ex, 'fault-4116', result.fills);
    assert.deepEqual(ex.pendingFaults, []);
  });

  test('-4116 for a market order (ids unique among all orders): reconciled as already placed, one order', async () => {
    const { exchange: ex, live: lv, price } = await setUp({ engine: { clientOrderIdScope: 'all' } });
    ex.fault({ method: 'POST', path: '/fapi/v1/order', kind: 'drop-after' });
    // the first attempt's look-up, then the retry's look-up and its two repeats miss the order
    ex.fault({
      method: 'GET',
      path: '/fapi/v1/order',
      kind: 'error',
      status: 400,
      code: -2013,
      msg: 'Order does not exist.',
      times: 4,
    });
    const { result, attempts } = await executeWithRetries(lv.runtime.activities, entry(price, 'fault-dup'));
    assert.equal(attempts, 2);
    assert.deepEqual(statusOf(ex, '/fapi/v1/order', 'POST'), ['0', '400 -4116']);
    assertOneEntry(ex, 'fault-dup', result.fills);
  });

  test('-4116 while the exchange does not show the order at all: retryable, never a refusal; the next attempt reconciles', async () => {
    const { exchange: ex, live: lv, price } = await setUp({ engine: { clientOrderIdScope: 'all' } });
    ex.fault({ method: 'POST', path: '/fapi/v1/order', kind: 'drop-after' });
    // the first attempt's look-up; attempt 2: three look-ups before sending, three after the -4116: all miss
    ex.fault({
      method: 'GET',
      path: '/fapi/v1/order',
      kind: 'error',
      status: 400,
      code: -2013,
      msg: 'Order does not exist.',
      times: 7,
    });
    const { result, attempts, failures } = await executeWithRetries(
      lv.runtime.activities,
      entry(price, 'fault-unseen'),
    );
    assert.equal(attempts, 3);
    assert.deepEqual(
      failures.map((f) => [f.type, f.nonRetryable]),
      [
        ['ExchangeNetworkError', false],
        ['ExchangeOperationFailed', false],
      ],
    );
    assert.match(failures[1]!.message, /already in use .* does not show that order yet/);
    assertOneEntry(ex, 'fault-unseen', result.fills);
  });

  test('a lost answer and look-ups lagging behind: a retried order is looked up again before it is sent, one order', async () => {
    // Binance keeps client order ids unique among OPEN orders only: a filled market order sent again would be a
    // second order. Look-ups here miss orders younger than 1.5 s; the retry comes 1 s after the failure.
    const {
      exchange: ex,
      live: lv,
      price,
    } = await setUp({
      server: { lookupLagMs: 1_500 },
      timings: { lookupRetryDelaysMs: [1_000] },
    });
    ex.fault({ method: 'POST', path: '/fapi/v1/order', kind: 'drop-after' });
    const { result, attempts } = await executeWithRetries(lv.runtime.activities, entry(price, 'fault-lag'));
    assert.equal(attempts, 2);
    assert.equal(ex.requestsTo('/fapi/v1/order', 'POST').length, 1, 'not sent a second time');
    assert.equal(named(ex, 'fault-lag'), 1);
    assert.equal(result.status, 'filled');
  });

  test('insufficient margin: refused for good (not retried), nothing placed', async () => {
    const { exchange: ex, live: lv, price } = await setUp({ engine: { startingBalance: 100 } });
    await assert.rejects(
      executeWithRetries(lv.runtime.activities, entry(price, 'fault-margin')),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.type === 'ExchangeInsufficientFunds' &&
        err.nonRetryable &&
        /Margin is insufficient/.test(err.message),
    );
    assert.deepEqual(statusOf(ex, '/fapi/v1/order', 'POST'), ['400 -2019'], 'one attempt');
    assert.equal(ex.engine.orders.length, 0);
    assert.equal(ex.engine.algoOrders.length, 0);
  });
});

describe('faults in decision cycles (what the trader records)', () => {
  const start = Date.parse('2025-06-22T07:00:00Z');

  test('a partly filled entry is recorded with what filled, and its stop covers exactly that', async () => {
    const { exchange: ex, live: lv } = await setUp({
      decisions: [{ time: start, tool: 'signal_entry_long', args: tools.entry(10, 200) }],
    });
    ex.fault({ method: 'POST', path: '/fapi/v1/order', kind: 'fill', fillFraction: 0.5 });
    await lv.cycle(start);
    const order = ex.engine.orders[0]!;
    assert.equal(order.status, 'EXPIRED');
    assert.ok(order.executedQty > 0 && order.executedQty < order.origQty, `${order.executedQty} of ${order.origQty}`);
    const position = lv.state.position!;
    assert.equal(position.quantity, order.executedQty, 'the mirror holds what filled');
    assert.equal(ex.engine.position(SYMBOL)?.amount, order.executedQty);
    const stops = ex.engine.algoOrders.filter((a) => a.algoStatus === 'NEW');
    assert.deepEqual(
      stops.map((a) => a.quantity),
      [order.executedQty],
    );
    assert.equal(position.stopOrderId, stops[0]!.clientAlgoId);
    assert.equal(lv.state.recentDecisions.at(-1)?.outcome, 'executed');
  });

  test('an entry filled in several trades: each fill with its own price and fee; the mirror has their average', async () => {
    const { exchange: ex, live: lv } = await setUp({
      decisions: [{ time: start, tool: 'signal_entry_long', args: tools.entry(10, 200) }],
    });
    ex.fault({ method: 'POST', path: '/fapi/v1/order', kind: 'fill', split: 3 });
    await lv.cycle(start);
    const order = ex.engine.orders[0]!;
    const trades = ex.engine.tradesOf(order.orderId);
    assert.equal(trades.length, 3);
    assert.equal(new Set(trades.map((t) => t.price)).size, 3, 'three prices');
    const execution = lv.events.find((e) => e.type === 'order');
    assert.ok(execution?.type === 'order');
    assert.deepEqual(
      execution.execution.fills.map((f) => [f.price, f.quantity, f.fee]),
      trades.map((t) => [t.price, t.qty, t.commission]),
    );
    const position = lv.state.position!;
    assert.ok(Math.abs(position.entryPrice - order.avgPrice) < 1e-6, `${position.entryPrice} vs ${order.avgPrice}`);
    assert.ok(Math.abs(position.fees - trades.reduce((s, t) => s + t.commission, 0)) < 1e-9);
  });

  test('insufficient margin in a cycle: the refusal is recorded, no position, nothing on the exchange', async () => {
    const { exchange: ex, live: lv } = await setUp({
      decisions: [{ time: start, tool: 'signal_entry_long', args: tools.entry(10, 200) }],
    });
    // between the market step and the order another client of the account moves most of the wallet out
    ex.fault({
      method: 'POST',
      path: '/fapi/v1/order',
      kind: 'before',
      run: (x) => {
        x.engine.wallet = 50;
      },
    });
    await lv.cycle(start);
    const record = lv.state.recentDecisions.at(-1)!;
    assert.equal(record.outcome, 'refused');
    assert.match(record.detail ?? '', /^refused by the exchange: ExchangeInsufficientFunds: .*Margin is insufficient/);
    assert.equal(lv.state.position, null);
    assert.equal(ex.engine.orders.length, 0);
    assert.deepEqual(statusOf(ex, '/fapi/v1/order', 'POST'), ['400 -2019'], 'not retried');
  });

  test('a position closed outside the trader: recorded as an external close, and its stop cancelled', async () => {
    const { exchange: ex, live: lv } = await setUp({
      decisions: [{ time: start, tool: 'signal_entry_long', args: tools.entry(10, 200) }],
    });
    await lv.cycle(start);
    const stopId = lv.state.position!.stopOrderId!;
    // someone closes the position by hand on the exchange
    const amount = ex.engine.position(SYMBOL)!.amount;
    ex.engine.placeMarketOrder(
      { symbol: SYMBOL, side: 'SELL', type: 'MARKET', quantity: String(amount), reduceOnly: 'true' },
      start + 600_000,
    );
    await lv.cycle(start + HALF_HOUR);
    const closed = lv.events.find((e) => e.type === 'tradeClosed');
    assert.ok(closed?.type === 'tradeClosed');
    assert.equal(closed.trade.exitReason, 'external');
    assert.equal(lv.state.position, null);
    assert.equal(ex.engine.algoOrders.find((a) => a.clientAlgoId === stopId)?.algoStatus, 'CANCELED');
  });

  test('the weight limit under concurrent pairs: 429s are waited out by every request of the client, never banned', async () => {
    const { exchange: ex, live: lv } = await setUp({ server: { weightLimit: 60, weightWindowMs: 2_000 } });
    const a = lv.runtime.activities;
    const pairs = ['BTC/USDT:USDT', 'ETH/USDT:USDT', 'SOL/USDT:USDT'];
    for (let cycle = 0; cycle < 2; cycle++) {
      const asOf = start + cycle * HALF_HOUR;
      const views = await Promise.all(
        pairs.map((pair) =>
          withRetries<MarketView>(
            (env) => env.run(a.fetchMarket, { pair, asOf, since: null, mode: 'live' as const, account: 'live' }),
            MARKET_RETRY,
          ),
        ),
      );
      assert.deepEqual(
        views.map((v) => v.result.snapshot.asOf),
        pairs.map(() => asOf),
      );
    }
    const limited = ex.requests.filter((r) => r.status === 429);
    assert.ok(limited.length > 0, 'the limit was reached');
    assert.equal(ex.requests.filter((r) => r.status === 418).length, 0, 'never banned');
    for (const r of limited) {
      // requests already on their way when the 429 was answered (concurrent pairs) arrive just after it
      const early = ex.requests.filter((x) => x.at > r.at + IN_FLIGHT_MS && x.at < r.at + 1_000 * r.retryAfter!);
      assert.deepEqual(
        early.map((x) => x.path),
        [],
        `nothing sent before the Retry-After ${r.retryAfter} s had passed`,
      );
    }
  });
});
