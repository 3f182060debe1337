import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  runCycle,
  initialPairState,
  isPending,
  type CycleSettings,
  type CycleSteps,
  type MarketView,
  type PairState,
  type CycleTick,
  type Step,
} from '../../src/core/cycle';
import { checkRisk } from '../../src/core/risk';
import { admit, emptyBook } from '../../src/core/admission';
import { RiskConfigSchema } from '../../src/core/config';
import { clientOrderId } from '../../src/core/ids';
import type {
  AccountSnapshot,
  Candle,
  Decision,
  DecisionResult,
  Execution,
  ExchangePosition,
  ExternalClose,
  IndicatorValues,
  MarketSnapshot,
  OrderIntent,
} from '../../src/core/types';
import type { DecisionContext } from '../../src/core/context-types';

const PAIR = 'BTC/USDT:USDT';
const TF = 30 * 60_000;
const T0 = Date.UTC(2025, 5, 1, 0, 0);
const OWNER = `pair:binanceusdm:${PAIR}`;

const risk = RiskConfigSchema.parse({
  max_leverage: 10,
  default_leverage: 5,
  max_position_pct: 50,
  default_stake_pct: 10,
  min_confidence: 60,
  emergency_stop_loss: -0.15,
  liquidation_buffer: 0.01,
  liquidation_atr_multiple: 2,
});
const settings: CycleSettings = { risk, maxRecentDecisions: 5, maintenanceMarginRate: 0.005 };

function indicators(atr: number): IndicatorValues {
  return {
    ema20: null,
    ema50: null,
    ema100: null,
    rsi14: 50,
    macd: null,
    macdSignal: null,
    macdHist: null,
    bbUpper: null,
    bbMiddle: null,
    bbLower: null,
    atr14: atr,
    adx14: null,
    mfi14: null,
    obv: null,
  };
}

/** A candle of the main timeframe closing at `close` time `asOf`. */
function candle(asOf: number, o: number, h: number, l: number, c: number): Candle {
  return { time: asOf - TF, open: o, high: h, low: l, close: c, volume: 10 };
}

function snapshot(asOf: number, last: Candle): MarketSnapshot {
  return {
    pair: PAIR,
    asOf,
    mainTimeframe: '30m',
    price: last.close,
    timeframes: {
      '30m': {
        timeframe: '30m',
        lastCandleTime: last.time,
        close: last.close,
        changePct: null,
        indicators: indicators(100),
        tails: { close: [], volume: [], rsi14: [], macd: [], macdHist: [], ema20: [], ema50: [], adx14: [] },
        candles: [last],
      },
    },
    funding: { rate: null, time: null },
  };
}

/**
 * A minimal in-process exchange for the cycle: fills market orders at the intent's price, no fees, one account.
 * Records every call so tests can assert what reached it.
 */
class FakeExchange {
  cash = 10_000;
  position: ExchangePosition | null = null;
  executed: { intent: OrderIntent; clientOrderId: string }[] = [];
  externalCloses: ExternalClose[] = [];

  account(price: number): AccountSnapshot {
    const upnl = this.position
      ? (price - this.position.entryPrice) * this.position.quantity * (this.position.side === 'long' ? 1 : -1)
      : 0;
    return {
      equity: this.cash + (this.position?.margin ?? 0) + upnl,
      available: this.cash,
      usedMargin: this.position?.margin ?? 0,
      positions: this.position ? [this.position] : [],
      externalCloses: this.externalCloses.splice(0),
    };
  }

  execute(intent: OrderIntent, id: string, asOf: number): Execution {
    this.executed.push({ intent, clientOrderId: id });
    const buy = (intent.kind === 'open' || intent.kind === 'increase') === (intent.side === 'long');
    const fill = {
      clientOrderId: id,
      pair: intent.pair,
      side: buy ? ('buy' as const) : ('sell' as const),
      price: intent.price,
      quantity: intent.quantity,
      fee: 0,
      time: asOf,
      reduceOnly: intent.kind === 'reduce' || intent.kind === 'close',
    };
    if (intent.kind === 'open') {
      this.cash -= intent.margin;
      this.position = {
        pair: intent.pair,
        side: intent.side,
        quantity: intent.quantity,
        entryPrice: intent.price,
        leverage: intent.leverage,
        margin: intent.margin,
        notional: intent.quantity * intent.price,
        liquidationPrice: null,
        unrealizedPnl: 0,
      };
    } else if (intent.kind === 'close' && this.position) {
      const p = this.position;
      this.cash += p.margin + (intent.price - p.entryPrice) * p.quantity * (p.side === 'long' ? 1 : -1);
      this.position = null;
    }
    return { clientOrderId: id, status: 'filled', fills: [fill], position: this.position, error: null };
  }
}

interface Script {
  /** candles by asOf */
  candles: Map<number, Candle>;
  decisions: Decision[];
}

/** `atOnce`: the steps answer with values instead of promises (as a backtest's in-process steps do). */
function harness(script: Script, atOnce = false) {
  const exchange = new FakeExchange();
  const answer = <T>(value: T): Step<T> => (atOnce ? value : Promise.resolve(value));
  const calls = { decide: 0, checkRisk: 0, buildContext: 0 };
  const book = emptyBook();
  const steps: CycleSteps = {
    fetchMarket: ({ asOf, since }) => {
      const last = script.candles.get(asOf);
      if (!last) throw new Error(`test script has no candle closing at ${new Date(asOf).toISOString()}`);
      const candlesSince = [...script.candles.entries()]
        .filter(([closeTime]) => closeTime <= asOf && (since === null || closeTime > since))
        .map(([, c]) => c);
      const view: MarketView = {
        snapshot: snapshot(asOf, last),
        account: exchange.account(last.close),
        candlesSince,
        fundingSince: 0,
        limits: { minNotional: 5, qtyStep: 0.001, minQty: 0.001, maintenanceMarginRate: 0.005 },
      };
      return answer(view);
    },
    buildContext: (req) => {
      calls.buildContext += 1;
      const ctx: DecisionContext = {
        pair: PAIR,
        asOf: req.snapshot.asOf,
        hasPosition: req.position !== null,
        allowedTools: [],
        messages: [],
        tools: [],
        tokens: null,
        snapshot: req.snapshot,
        position: req.position,
      };
      return answer(ctx);
    },
    decide: () => {
      const decision = script.decisions[calls.decide];
      calls.decide += 1;
      if (!decision) throw new Error('test script ran out of decisions');
      const result: DecisionResult = {
        decision,
        source: 'baseline',
        model: 'scripted',
        usage: { input: 100, output: 10 },
        latencyMs: 1,
        problems: [],
      };
      return answer(result);
    },
    checkRisk: (req) => {
      calls.checkRisk += 1;
      return answer(checkRisk({ ...req, risk, market: req.limits }));
    },
    admit: (req) => answer(admit(book, req)),
    execute: ({ intent, clientOrderId: id, asOf }) => answer(exchange.execute(intent, id, asOf)),
  };
  return { exchange, calls, steps, book };
}

function entryLong(confidence = 80, leverage = 5): Decision {
  return {
    tool: 'signal_entry_long',
    args: {
      pair: PAIR,
      leverage,
      stake_amount: 1000,
      confidence_score: confidence,
      key_support: 99_000,
      key_resistance: 103_000,
      rsi_value: 55,
      trend_strength: 'medium',
      reason: 'breakout above resistance',
    },
  };
}

const hold: Decision = {
  tool: 'signal_hold',
  args: { pair: PAIR, confidence_score: 70, rsi_value: 55, reason: 'trend intact' },
};

const exitDecision: Decision = {
  tool: 'signal_exit',
  args: { pair: PAIR, confidence_score: 70, rsi_value: 70, trade_score: 65, reason: 'target reached' },
};

function tick(asOf: number, forceExit = false, paused = false): CycleTick {
  return { asOf, orderOwner: OWNER, forceExit, paused };
}

/** Run the cycles at the given close times in order; returns every state and event list. */
async function runAll(steps: CycleSteps, closes: number[], force: Set<number> = new Set()) {
  let state: PairState = initialPairState(PAIR);
  const history = [];
  for (const asOf of closes) {
    const out = await runCycle(steps, state, tick(asOf, force.has(asOf)), settings);
    history.push(out);
    state = out.state;
  }
  return { state, history };
}

const t = (i: number) => T0 + i * TF;

describe('runCycle', () => {
  test('an entry is checked by the risk gate, executed with a deterministic client order id, and mirrored', async () => {
    const candles = new Map([[t(1), candle(t(1), 100_000, 100_100, 99_900, 100_000)]]);
    const h = harness({ candles, decisions: [entryLong()] });
    const { state, history } = await runAll(h.steps, [t(1)]);
    assert.equal(h.calls.checkRisk, 1);
    assert.equal(h.exchange.executed.length, 1);
    assert.equal(h.exchange.executed[0]!.clientOrderId, clientOrderId(OWNER, t(1), 0));
    assert.ok(state.position, 'the position mirror exists after the entry');
    assert.equal(state.position.side, 'long');
    assert.equal(state.position.leverage, 5);
    // stake 1000 at 5x and 100,000: 0.05 BTC
    assert.ok(Math.abs(state.position.quantity - 0.05) < 1e-12);
    assert.equal(state.position.tradeId, clientOrderId(OWNER, t(1), 0));
    assert.equal(state.counters.entries, 1);
    assert.equal(history[0]!.events.filter((e) => e.type === 'tradeClosed').length, 0);
  });

  test('steps that answer at once give the same cycles as steps that answer with promises, and the result at once', async () => {
    // entry, hold, then the next candle's low reaches the emergency stop: every step kind is used
    const candles = new Map([
      [t(1), candle(t(1), 100_000, 100_100, 99_900, 100_000)],
      [t(2), candle(t(2), 100_000, 100_500, 99_800, 100_400)],
      [t(3), candle(t(3), 100_400, 100_500, 96_000, 99_000)],
    ]);
    const script = () => ({ candles, decisions: [entryLong(), hold] });
    const promised = await runAll(harness(script()).steps, [t(1), t(2), t(3)]);
    const atOnce = harness(script(), true);
    const immediate = await runAll(atOnce.steps, [t(1), t(2), t(3)]);
    assert.deepEqual(immediate, promised);
    assert.equal(immediate.state.counters.protectiveExits, 1);

    // With values, runCycle returns the result itself, the whole cycle run; with promises, a promise, only the
    // first step asked.
    const fresh = harness(script(), true);
    const done = runCycle(fresh.steps, initialPairState(PAIR), tick(t(1)), settings);
    assert.equal(isPending(done), false);
    assert.equal(fresh.exchange.executed.length, 1, 'the entry was executed before runCycle returned');
    const slow = harness(script());
    const pending = runCycle(slow.steps, initialPairState(PAIR), tick(t(1)), settings);
    assert.equal(isPending(pending), true);
    assert.equal(slow.calls.buildContext, 0);
    assert.deepEqual(await pending, done);
    assert.equal(slow.exchange.executed.length, 1);
  });

  test('an emergency stop exits without calling decide', async () => {
    // long 5x from 100,000; the next candle's LOW reaches 96,000: -4 % x 5 = -20 % of margin < -15 %,
    // though it closes at 99,000 (-5 %): the stop must act on the low, and without the model.
    const candles = new Map([
      [t(1), candle(t(1), 100_000, 100_100, 99_900, 100_000)],
      [t(2), candle(t(2), 100_000, 100_200, 96_000, 99_000)],
    ]);
    const h = harness({ candles, decisions: [entryLong()] });
    const { state, history } = await runAll(h.steps, [t(1), t(2)]);
    assert.equal(h.calls.decide, 1, 'decide was called for the entry only');
    assert.equal(h.exchange.executed.length, 2);
    const exit = h.exchange.executed[1]!;
    assert.equal(exit.intent.kind, 'close');
    assert.equal(exit.intent.kind === 'close' && exit.intent.reason, 'emergency_stop');
    assert.equal(state.position, null);
    assert.equal(state.counters.protectiveExits, 1);
    assert.equal(state.lastStopOutTime, t(2), 'the stop-out starts the cooldown');
    const closed = history[1]!.events.filter((e) => e.type === 'tradeClosed');
    assert.equal(closed.length, 1);
    assert.equal(closed[0]!.type === 'tradeClosed' && closed[0]!.trade.exitReason, 'emergency_stop');
  });

  test('a rejected decision never reaches execute', async () => {
    // confidence 40 < min_confidence 60: rejected whatever the freedom setting
    const candles = new Map([[t(1), candle(t(1), 100_000, 100_100, 99_900, 100_000)]]);
    const h = harness({ candles, decisions: [entryLong(40)] });
    const { state, history } = await runAll(h.steps, [t(1)]);
    assert.equal(h.calls.checkRisk, 1);
    assert.equal(h.exchange.executed.length, 0);
    assert.equal(state.position, null);
    assert.equal(state.counters.rejections, 1);
    const decision = history[0]!.events.find((e) => e.type === 'decision');
    assert.ok(decision && decision.type === 'decision');
    assert.equal(decision.record.outcome, 'rejected');
    assert.match(decision.record.detail ?? '', /confidence/);
  });

  test('MFE and MAE follow candle highs and lows, not closes', async () => {
    // long 5x at 100,000; then candles close flat at 100,000 but reach 102,000 high and 98,500 low.
    // MFE = +2 % x 5 = +10 %; MAE = -1.5 % x 5 = -7.5 % (above the -15 % emergency stop).
    const candles = new Map([
      [t(1), candle(t(1), 100_000, 100_000, 100_000, 100_000)],
      [t(2), candle(t(2), 100_000, 102_000, 99_500, 100_000)],
      [t(3), candle(t(3), 100_000, 100_500, 98_500, 100_000)],
    ]);
    const h = harness({ candles, decisions: [entryLong(), hold, hold] });
    const { state } = await runAll(h.steps, [t(1), t(2), t(3)]);
    assert.ok(state.position);
    assert.ok(Math.abs(state.position.mfePct - 10) < 1e-9, `mfe ${state.position.mfePct}`);
    assert.ok(Math.abs(state.position.maePct - -7.5) < 1e-9, `mae ${state.position.maePct}`);
    assert.equal(state.position.highestPrice, 102_000);
    assert.equal(state.position.lowestPrice, 98_500);
    assert.equal(state.position.holds, 2);
    assert.equal(state.position.lastPnlPct, 0, 'PnL at the close is flat');
  });

  test('a close emits exactly one review request, with the model trade score', async () => {
    const candles = new Map([
      [t(1), candle(t(1), 100_000, 100_000, 100_000, 100_000)],
      [t(2), candle(t(2), 100_000, 101_000, 99_800, 101_000)],
      [t(3), candle(t(3), 101_000, 102_100, 100_900, 102_000)],
      [t(4), candle(t(4), 102_000, 102_100, 101_900, 102_000)],
    ]);
    const wait: Decision = {
      tool: 'signal_wait',
      args: { pair: PAIR, confidence_score: 50, rsi_value: 50, reason: 'flat' },
    };
    const h = harness({ candles, decisions: [entryLong(), hold, exitDecision, wait] });
    const { state, history } = await runAll(h.steps, [t(1), t(2), t(3), t(4)]);
    const closes = history.flatMap((c) => c.events.filter((e) => e.type === 'tradeClosed'));
    assert.equal(closes.length, 1);
    const trade = closes[0]!.type === 'tradeClosed' ? closes[0]!.trade : null;
    assert.ok(trade);
    assert.equal(trade.exitReason, 'model');
    assert.equal(trade.tradeScore, 65);
    assert.equal(trade.entryTime, t(1));
    assert.equal(trade.exitTime, t(3));
    // 0.05 BTC from 100,000 to 102,000, no fees: +100 USDT = +10 % of the 1,000 margin
    assert.ok(Math.abs(trade.pnl - 100) < 1e-9, `pnl ${trade.pnl}`);
    assert.ok(Math.abs(trade.pnlPct - 10) < 1e-9);
    assert.equal(state.position, null);
    assert.equal(state.counters.exits, 1);
    assert.equal(state.counters.waits, 1);
  });

  test('forceExit closes the position without asking the model', async () => {
    const candles = new Map([
      [t(1), candle(t(1), 100_000, 100_000, 100_000, 100_000)],
      [t(2), candle(t(2), 100_000, 100_200, 99_900, 100_100)],
    ]);
    const h = harness({ candles, decisions: [entryLong()] });
    const { state, history } = await runAll(h.steps, [t(1), t(2)], new Set([t(2)]));
    assert.equal(h.calls.decide, 1);
    assert.equal(h.exchange.executed[1]!.intent.kind, 'close');
    assert.equal(state.position, null);
    const closed = history[1]!.events.find((e) => e.type === 'tradeClosed');
    assert.ok(closed && closed.type === 'tradeClosed');
    assert.equal(closed.trade.exitReason, 'force_exit');
    assert.equal(state.lastStopOutTime, null, 'an operator exit is not a stop-out');
  });

  test('a position the exchange liquidated is closed in the mirror and reviewed, with a cooldown', async () => {
    const candles = new Map([
      [t(1), candle(t(1), 100_000, 100_000, 100_000, 100_000)],
      [t(2), candle(t(2), 100_000, 100_100, 99_900, 100_000)],
    ]);
    const wait: Decision = {
      tool: 'signal_wait',
      args: { pair: PAIR, confidence_score: 50, rsi_value: 50, reason: 'flat' },
    };
    const h = harness({ candles, decisions: [entryLong(), wait] });
    let state = initialPairState(PAIR);
    state = (await runCycle(h.steps, state, tick(t(1)), settings)).state;
    // between cycles, the exchange liquidates the position
    h.exchange.position = null;
    h.exchange.externalCloses.push({
      pair: PAIR,
      time: t(2) - 60_000,
      price: 80_500,
      quantity: 0.05,
      fee: 0,
      reason: 'liquidation',
      clientOrderId: null,
    });
    const out = await runCycle(h.steps, state, tick(t(2)), settings);
    const closed = out.events.filter((e) => e.type === 'tradeClosed');
    assert.equal(closed.length, 1);
    assert.equal(closed[0]!.type === 'tradeClosed' && closed[0]!.trade.exitReason, 'liquidation');
    assert.equal(out.state.position, null);
    assert.equal(out.state.lastStopOutTime, t(2) - 60_000);
    assert.equal(out.state.counters.externalCloses, 1);
    // flat again, the model was asked (and said wait)
    assert.equal(h.calls.decide, 2);
  });

  test('a paused pair asks no decision but still tracks the position and fires the emergency stop', async () => {
    const candles = new Map([
      [t(1), candle(t(1), 100_000, 100_000, 100_000, 100_000)],
      [t(2), candle(t(2), 100_000, 101_000, 99_500, 100_500)],
      [t(3), candle(t(3), 100_500, 100_600, 96_500, 97_000)],
    ]);
    const h = harness({ candles, decisions: [entryLong()] });
    let state = initialPairState(PAIR);
    state = (await runCycle(h.steps, state, tick(t(1)), settings)).state;
    const paused = await runCycle(h.steps, state, tick(t(2), false, true), settings);
    assert.equal(h.calls.buildContext, 1, 'no context was built while paused');
    assert.equal(h.calls.decide, 1, 'no decision was asked while paused');
    assert.equal(paused.state.position?.highestPrice, 101_000, 'the tracker still follows the candles');
    // -3.5 % x 5 = -17.5 % at the low of t(3): the stop acts although the pair is paused
    const stopped = await runCycle(h.steps, paused.state, tick(t(3), false, true), settings);
    assert.equal(stopped.state.position, null);
    assert.equal(h.calls.decide, 1);
    assert.equal(stopped.events.filter((e) => e.type === 'tradeClosed').length, 1);
  });

  test('the input state is never mutated and recent decisions are capped', async () => {
    const closes = [1, 2, 3, 4, 5, 6, 7].map(t);
    const candles = new Map(closes.map((c) => [c, candle(c, 100_000, 100_050, 99_950, 100_000)]));
    const h = harness({ candles, decisions: [entryLong(), hold, hold, hold, hold, hold, hold] });
    let state = initialPairState(PAIR);
    for (const asOf of closes) {
      const before = JSON.stringify(state);
      const out = await runCycle(h.steps, state, tick(asOf), settings);
      assert.equal(JSON.stringify(state), before, 'runCycle mutated its input');
      state = out.state;
    }
    assert.equal(state.recentDecisions.length, settings.maxRecentDecisions);
    assert.equal(state.recentDecisions.at(-1)!.time, t(7));
    assert.equal(state.counters.cycles, 7);
    assert.equal(state.counters.tokensIn, 700);
  });
});
