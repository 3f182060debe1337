/**
 * Portfolio limits across pairs in a backtest, checked from result.json alone: 17 pairs and a policy that wants to
 * enter on every pair at every candle (and exits after three candles), `max_open_trades` 3 → never more than 3 trades
 * open at any decision time, whatever the pair order. The backtester admits entries with the same rule and book code
 * as the account workflow (src/core/admission.ts).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { resultJson, runBacktest } from '../../src/backtest/engine';
import type { BacktestPolicy } from '../../src/backtest/policy';
import type { BacktestResultFile, DecisionRow } from '../../src/backtest/result';
import type { DecisionContext } from '../../src/core/context-types';
import type { Decision, DecisionResult } from '../../src/core/types';
import { ALL_PAIRS, DAY_MS, MAIN_MS, recordedMarket, testConfig } from '../helpers/backtest';

const DATA_START = Date.UTC(2025, 4, 22, 0, 30);

/**
 * `answerDelay` null: answers at once, one pair after the other (concurrency 1). Else every pair's question is out at
 * the same time and the answers come back after a delay of 0-`answerDelay` ms in a scrambled order (as 16 concurrent
 * model requests do).
 */
function alwaysEnter(answerDelay: number | null = null): BacktestPolicy {
  return {
    name: 'always-enter',
    id: 'always-enter-test-policy',
    context: 'light',
    remote: false,
    provider: () => ({
      name: 'always-enter',
      decide(ctx: DecisionContext) {
        const result = decideNow(ctx);
        if (answerDelay === null) return result;
        // a scrambled but repeatable order: the delay is a function of the pair and time
        const delay = (ctx.pair.length * 7 + Math.floor(ctx.asOf / MAIN_MS) * 13) % (answerDelay + 1);
        return new Promise<typeof result>((resolve) => setTimeout(() => resolve(result), delay));
      },
    }),
  };
}

function decideNow(ctx: DecisionContext) {
  const price = ctx.snapshot.price;
  const base = { pair: ctx.pair, confidence_score: 90, rsi_value: 50 };
  let decision: Decision;
  if (ctx.position === null) {
    decision = {
      tool: 'signal_entry_long',
      args: {
        ...base,
        leverage: 2,
        stake_amount: 100,
        key_support: price * 0.9,
        key_resistance: price * 1.1,
        trend_strength: 'strong',
        reason: 'always enter',
      },
    };
  } else if ((ctx.asOf - ctx.position.entryTime) / MAIN_MS >= 3) {
    decision = { tool: 'signal_exit', args: { ...base, trade_score: 50, reason: 'three candles held' } };
  } else {
    decision = { tool: 'signal_hold', args: { ...base, reason: 'hold' } };
  }
  const result: DecisionResult = {
    decision,
    source: 'baseline',
    model: 'always-enter',
    usage: { input: 0, output: 0 },
    latencyMs: 0,
    problems: [],
  };
  return result;
}

/** The most trades open at once, from the trades' entry and exit times in result.json. */
function mostOpen(result: BacktestResultFile): { most: number; at: number } {
  const events: [number, number][] = [];
  for (const t of result.trades) {
    events.push([t.entry_time, 1], [t.exit_time, -1]);
  }
  // at one instant, exits (which free the slot) come before entries
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let most = 0;
  let at = 0;
  for (const [time, delta] of events) {
    open += delta;
    if (open > most) [most, at] = [open, time];
  }
  return { most, at };
}

describe('portfolio admission in the backtester', () => {
  const run = async (answerDelay: number | null): Promise<{ text: string; decisions: DecisionRow[] }> => {
    const config = testConfig({ risk: { max_open_trades: 3, cooldown_minutes: 0, min_confidence: 50 } });
    const { result, decisions } = await runBacktest({
      config,
      market: recordedMarket(),
      pairs: ALL_PAIRS,
      from: DATA_START + 2 * DAY_MS,
      to: DATA_START + 5 * DAY_MS,
      policy: alwaysEnter(answerDelay),
      compareBaseline: false,
    });
    return { text: resultJson(result), decisions: decisions.toArray() };
  };

  test('answers one at a time and all at once in a scrambled order trade the same, within the limit', async () => {
    const one = (await run(null)).text;
    const scrambled = (await run(5)).text;
    const strip = (text: string) => {
      const r = JSON.parse(text) as BacktestResultFile & { timing?: unknown };
      return JSON.stringify({ trades: r.trades, orders: r.orders, equity: r.equity });
    };
    assert.equal(strip(scrambled), strip(one), "the answers' order changes nothing");
    assert.ok(mostOpen(JSON.parse(scrambled) as BacktestResultFile).most <= 3);
  });

  test('17 pairs that all want to enter at every candle, max_open_trades 3: never more than 3 open', async () => {
    const { text, decisions } = await run(null);
    const parsed = JSON.parse(text) as BacktestResultFile;
    assert.ok(parsed.trades.length > 20, `trades: ${parsed.trades.length}`);
    const { most, at } = mostOpen(parsed);
    assert.ok(most <= 3, `${most} trades open at ${new Date(at).toISOString()}`);
    assert.equal(most, 3, 'the limit is reached: the policy wants more');
    for (const point of parsed.equity) assert.ok(point.open_positions <= 3, `equity point ${point.time}`);
    // the pairs that wanted in and could not were told why
    const refusedOrRejected = decisions.filter(
      (d) => d.tool === 'signal_entry_long' && (d.outcome === 'refused' || d.outcome === 'rejected'),
    );
    assert.ok(refusedOrRejected.length > 0);
    assert.ok(
      refusedOrRejected.every((d) => /max_open_trades 3/.test(d.detail ?? '')),
      refusedOrRejected[0]?.detail ?? '',
    );
  });
});
