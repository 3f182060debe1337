/**
 * Live mode end to end against the local Binance USDⓈ-M exchange (test/local-exchange): the worker's activities, the
 * real ccxt `binanceusdm` over HTTP (signed requests, rate limiter on), the decision cycle, the journal. The market is
 * the recorded BTC/USDT:USDT of 2025-06-22 (../shared/data): a long entered at 07:00, increased at 07:30, reduced at
 * 09:00, held over the 08:00 funding, stopped out by its exchange-side stop when BTC fell in the afternoon; then a
 * second long from 15:00 to 16:30 over the 16:00 funding, closed by the model. Every figure the trader records is
 * checked against the exchange's own books (its trades, income history and wallet).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ClosedTrade } from '../../src/core/types';
import { stopPriceFor } from '../../src/core/risk';
import { roundToStep } from '../local-exchange/engine';
import type { LocalExchange } from '../local-exchange/server';
import {
  HALF_HOUR,
  liveHarness,
  startLocalExchange,
  tools,
  type LiveHarness,
  type ScriptedDecision,
} from '../helpers/live-exchange';

const PAIR = 'BTC/USDT:USDT';
const SYMBOL = 'BTCUSDT';
const at = (hhmm: string): number => Date.parse(`2025-06-22T${hhmm}:00Z`);
const cent = (x: number): number => Math.round(x * 100) / 100;

function script(): ScriptedDecision[] {
  const decisions: ScriptedDecision[] = [];
  const special = new Map<number, ScriptedDecision>([
    [at('07:00'), { time: at('07:00'), tool: 'signal_entry_long', args: tools.entry(10, 200) }],
    [at('07:30'), { time: at('07:30'), tool: 'adjust_position', args: tools.adjust(50) }],
    [at('09:00'), { time: at('09:00'), tool: 'adjust_position', args: tools.adjust(-30) }],
    [at('15:00'), { time: at('15:00'), tool: 'signal_entry_long', args: tools.entry(3, 150) }],
    [at('16:30'), { time: at('16:30'), tool: 'signal_exit', args: tools.exit() }],
  ]);
  for (let t = at('07:00'); t <= at('17:00'); t += HALF_HOUR) {
    decisions.push(special.get(t) ?? { time: t, tool: 'signal_hold', args: tools.hold() });
  }
  return decisions;
}

describe('live mode on the local exchange: entry → increase → reduce → stop fill, then entry → exit', () => {
  let exchange: LocalExchange;
  let clock: { now: number };
  let live: LiveHarness;
  const trades: ClosedTrade[] = [];
  /** open stop orders of BTCUSDT after each cycle, by cycle time */
  const openStops = new Map<number, { quantity: number; triggerPrice: number; clientAlgoId: string }[]>();
  /** the exchange's BTCUSDT position after each cycle */
  const positions = new Map<number, { amount: number; entryPrice: number } | undefined>();

  before(async () => {
    ({ exchange, clock } = await startLocalExchange(at('06:59')));
    live = await liveHarness({ exchange, clock, pair: PAIR, decisions: script() });
    for (let t = at('07:00'); t <= at('17:00'); t += HALF_HOUR) {
      const out = await live.cycle(t);
      for (const e of out.events) if (e.type === 'tradeClosed') trades.push(e.trade);
      openStops.set(
        t,
        exchange.engine.algoOrders
          .filter((a) => a.symbol === SYMBOL && a.algoStatus === 'NEW')
          .map((a) => ({ quantity: a.quantity, triggerPrice: a.triggerPrice, clientAlgoId: a.clientAlgoId })),
      );
      const p = exchange.engine.position(SYMBOL);
      positions.set(t, p ? { amount: p.amount, entryPrice: p.entryPrice } : undefined);
    }
  });

  after(async () => {
    await live?.close();
    await exchange?.close();
  });

  test('two trades closed: the first by its exchange stop, the second by the model', () => {
    assert.deepEqual(
      trades.map((t) => t.exitReason),
      ['stop', 'model'],
      `trades: ${JSON.stringify(trades.map((t) => [t.exitReason, t.exitText]))}`,
    );
    assert.deepEqual(exchange.unexpected, [], 'ccxt called endpoints the local exchange does not implement');
    assert.equal(live.state.position, null);
    assert.equal(exchange.engine.position(SYMBOL), undefined, 'flat on the exchange too');
  });

  test('the protective stop follows the position: placed at entry, replaced after the increase and the reduction', () => {
    const expected = (t: number) => {
      const p = positions.get(t)!;
      return {
        quantity: p.amount,
        triggerPrice: roundToStep(stopPriceFor('long', p.entryPrice, 10, -0.15), '0.10', 'nearest'),
      };
    };
    for (const t of [at('07:00'), at('07:30'), at('09:00'), at('12:00')]) {
      const stops = openStops.get(t)!;
      assert.equal(
        stops.length,
        1,
        `one open stop after the ${new Date(t).toISOString()} cycle: ${JSON.stringify(stops)}`,
      );
      const { quantity, triggerPrice } = expected(t);
      assert.equal(stops[0]!.quantity, quantity, `stop quantity = position at ${new Date(t).toISOString()}`);
      assert.ok(
        Math.abs(stops[0]!.triggerPrice - triggerPrice) <= 0.1 + 1e-9,
        `stop at the emergency level of the average entry: ${stops[0]!.triggerPrice} vs ${triggerPrice}`,
      );
    }
    // three stops for one trade, each replacing the previous one (never two open at a cycle's end)
    const ids = [at('07:00'), at('07:30'), at('09:00')].map((t) => openStops.get(t)![0]!.clientAlgoId);
    assert.equal(new Set(ids).size, 3);
    const statuses = exchange.engine.algoOrders.filter((a) => ids.includes(a.clientAlgoId)).map((a) => a.algoStatus);
    assert.deepEqual(statuses, ['CANCELED', 'CANCELED', 'FINISHED']);
    assert.ok(positions.get(at('07:30'))!.amount > positions.get(at('07:00'))!.amount, 'increased');
    assert.ok(positions.get(at('09:00'))!.amount < positions.get(at('07:30'))!.amount, 'reduced');
  });

  test('the stop fill is recorded at its real fill price and time (from the user trades), not at a candle close', () => {
    const stopped = trades[0]!;
    const stop = exchange.engine.algoOrders.find((a) => a.algoStatus === 'FINISHED')!;
    const fills = exchange.engine.tradesOf(stop.actualOrderId!);
    assert.equal(fills.length, 1);
    const fill = fills[0]!;
    assert.equal(stopped.exitPrice, fill.price);
    assert.equal(stopped.exitTime, fill.time);
    assert.notEqual(stopped.exitTime % HALF_HOUR, 0, 'a moment inside the candle, not its close');
    assert.equal(stopped.exitPrice, stop.triggerPrice, 'a stop-market fill at its trigger (no gap, no slippage)');
  });

  test('fees and funding of each trade match the exchange books to the cent, and so does the account PnL', () => {
    const books = exchange.engine;
    for (const trade of trades) {
      // the trade's orders: those it placed, and the market order its triggered stop spawned
      const stops = books.algoOrders.filter((a) => trade.clientOrderIds.some((id) => a.clientAlgoId === `${id}s`));
      const orderIds = new Set([
        ...books.orders.filter((o) => trade.clientOrderIds.includes(o.clientOrderId)).map((o) => o.orderId),
        ...stops.flatMap((a) => (a.actualOrderId === null ? [] : [a.actualOrderId])),
      ]);
      const own = books.trades.filter((t) => orderIds.has(t.orderId));
      const from = trade.entryTime;
      const to = Math.max(trade.exitTime, ...own.map((t) => t.time));
      const commission = own.reduce((s, t) => s + t.commission, 0);
      const realized = own.reduce((s, t) => s + t.realizedPnl, 0);
      const funding = books.incomeTotal('FUNDING_FEE', { symbol: SYMBOL, from, to });
      assert.ok(funding !== 0, `the trade ${trade.tradeId} was held over a funding time`);
      assert.equal(cent(trade.fees), cent(commission), `fees of ${trade.tradeId}`);
      assert.ok(Math.abs(trade.fees - commission) < 1e-8, `fees ${trade.fees} vs ${commission}`);
      assert.equal(cent(trade.funding), cent(-funding), `funding of ${trade.tradeId} (paid > 0)`);
      assert.ok(Math.abs(trade.funding + funding) < 1e-8, `funding ${trade.funding} vs ${-funding}`);
      assert.equal(cent(trade.pnl), cent(realized - commission + funding), `net PnL of ${trade.tradeId}`);
    }
    const total = trades.reduce((s, t) => s + t.pnl, 0);
    assert.equal(cent(total), cent(books.wallet - 10_000), 'the trades add up to the wallet');
  });

  test('every client order id names exactly one order on the exchange', () => {
    const ids = new Map<string, number>();
    for (const o of exchange.engine.orders) ids.set(o.clientOrderId, (ids.get(o.clientOrderId) ?? 0) + 1);
    assert.deepEqual(
      [...ids].filter(([, n]) => n > 1),
      [],
    );
    const placed = live.events.filter((e) => e.type === 'order').length;
    assert.equal(exchange.engine.orders.filter((o) => o.algoId === null).length, placed, 'one order per order step');
  });
});
