/**
 * No trade or order in a backtest result breaks a configured risk limit: checked from result.json alone (plus the
 * recorded candles for valuations), independently of the risk gate, for the baseline over all pairs and for an
 * adversarial policy that asks for leverage 125, a billion-USDT stake, confidence 100 and +100 % adjustments every
 * candle, with the limits clamped (allow_model_freedom) and enforced strictly.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { runBacktest } from '../../src/backtest/engine';
import { baselinePolicy } from '../../src/backtest/policy';
import type { DecisionLog } from '../../src/backtest/decision-log';
import type { BacktestResult } from '../../src/backtest/result';
import type { Config } from '../../src/core/config';
import type { Candle } from '../../src/core/types';
import type { RecordedMarketSource } from '../../src/exchange/market-source';
import { ALL_PAIRS, DAY_MS, MAIN_MS, adversarialPolicy, recordedMarket, testConfig } from '../helpers/backtest';

const DATA_START = Date.UTC(2025, 4, 22, 0, 30);
const STOP_OUTS = new Set(['emergency_stop', 'liquidation_buffer', 'stop', 'liquidation']);
/** relative float tolerance */
const EPS = 1e-9;

interface Held {
  side: 'long' | 'short';
  quantity: number;
  margin: number;
  leverage: number;
}

/**
 * Every violation of `config.risk` in `result`, as sentences; empty when none. Reconstructs the account's positions
 * from the orders and the exchange's closes (stops, liquidations) in the order the backtest runs them (by decision
 * time; at a decision time every pair's candles, hence every exchange close, come first, then the orders in pair
 * order) and checks each order that adds exposure against the limits with the equity and available balance the
 * cycle's context saw (its decision row: the account after the candles, before any order at that time; the gate
 * itself sees the account at its turn, which the earlier orders only made smaller). Positions are valued as the paper
 * account values them then: at the current close (every pair's candles up to the decision time are processed before
 * any order).
 */
function violations(
  { result, decisions }: { result: BacktestResult; decisions: DecisionLog },
  config: Config,
  closes: Map<string, Map<number, number>>,
): string[] {
  const risk = config.risk;
  const out: string[] = [];
  const pairIndex = new Map(result.range.pairs.map((p, i) => [p, i]));
  const where = (pair: string, time: number) => `${pair} ${new Date(time).toISOString()}`;

  for (const t of result.trades) {
    if (!Number.isInteger(t.leverage) || t.leverage < 1 || t.leverage > risk.max_leverage) {
      out.push(`${where(t.pair, t.entry_time)}: leverage ${t.leverage} outside 1..${risk.max_leverage}`);
    }
    if (t.entry_confidence < risk.min_confidence) {
      out.push(`${where(t.pair, t.entry_time)}: entry confidence ${t.entry_confidence} < ${risk.min_confidence}`);
    }
    if (t.adjustments > risk.max_adjustments_per_trade) {
      out.push(`${where(t.pair, t.entry_time)}: ${t.adjustments} adjustments > ${risk.max_adjustments_per_trade}`);
    }
  }

  type Event =
    | { time: number; pair: string; rank: 0; kind: 'exchange-close' }
    | { time: number; pair: string; rank: 1; kind: 'order'; order: BacktestResult['orders'][number] };
  const events: Event[] = [];
  for (const t of result.trades) {
    if (t.exit_reason === 'stop' || t.exit_reason === 'liquidation') {
      events.push({ time: t.exit_time, pair: t.pair, rank: 0, kind: 'exchange-close' });
    }
  }
  for (const o of result.orders)
    if (o.status === 'filled') events.push({ time: o.time, pair: o.pair, rank: 1, kind: 'order', order: o });
  events.sort((a, b) => a.time - b.time || a.rank - b.rank || pairIndex.get(a.pair)! - pairIndex.get(b.pair)!);

  const decisionAt = new Map(decisions.toArray().map((d) => [`${d.pair} ${d.time}`, d]));
  for (const t of result.trades) {
    // cooldown: an entry on a pair must come cooldown_minutes after the previous stop-out there
    const previous = result.trades
      .filter((p) => p.pair === t.pair && p.exit_time <= t.entry_time && STOP_OUTS.has(p.exit_reason))
      .map((p) => p.exit_time);
    const last = previous.length > 0 ? Math.max(...previous) : null;
    if (last !== null && t.entry_time - last < risk.cooldown_minutes * 60_000) {
      out.push(`${where(t.pair, t.entry_time)}: entry ${(t.entry_time - last) / 60_000} min after a stop-out`);
    }
  }

  const held = new Map<string, Held>();
  for (const ev of events) {
    if (ev.kind === 'exchange-close') {
      held.delete(ev.pair);
      continue;
    }
    const o = ev.order;
    const adds = o.kind === 'open' || o.kind === 'increase';
    if (adds) {
      const d = decisionAt.get(`${o.pair} ${o.time}`);
      if (!d) {
        out.push(`${where(o.pair, o.time)}: an order without a decision`);
        continue;
      }
      const lev = o.leverage!;
      const newMargin = (o.quantity * o.reference_price) / lev;
      const current = held.get(o.pair);
      if (o.kind === 'open' && held.size >= risk.max_open_trades) {
        out.push(
          `${where(o.pair, o.time)}: opened with ${held.size} trades already open (max ${risk.max_open_trades})`,
        );
      }
      if (lev > risk.max_leverage) out.push(`${where(o.pair, o.time)}: order leverage ${lev}`);
      const positionCap = (risk.max_position_pct / 100) * d.equity;
      if ((current?.margin ?? 0) + newMargin > positionCap * (1 + EPS)) {
        out.push(
          `${where(o.pair, o.time)}: margin ${(current?.margin ?? 0) + newMargin} above ${risk.max_position_pct}% of equity ${d.equity}`,
        );
      }
      if (newMargin * (1 + lev * config.paper.taker_fee) > d.available * (1 + EPS)) {
        out.push(`${where(o.pair, o.time)}: margin and fee ${newMargin} above the available ${d.available}`);
      }
      let exposure = o.quantity * o.reference_price;
      for (const [pair, h] of held) {
        // a pair without a candle at this time (a gap in its data) was last processed a candle earlier
        const price = closes.get(pair)!.get(o.time) ?? closes.get(pair)!.get(o.time - MAIN_MS)!;
        exposure += h.quantity * price;
      }
      const exposureCap = (risk.max_total_exposure_pct / 100) * d.equity;
      if (exposure > exposureCap * (1 + EPS)) {
        out.push(
          `${where(o.pair, o.time)}: total notional ${exposure} above ${risk.max_total_exposure_pct}% of ${d.equity}`,
        );
      }
      const fillMargin = (o.filled_quantity * o.fill_price!) / lev;
      if (current) {
        current.quantity += o.filled_quantity;
        current.margin += fillMargin;
      } else {
        held.set(o.pair, { side: o.side, quantity: o.filled_quantity, margin: fillMargin, leverage: lev });
      }
    } else {
      const current = held.get(o.pair);
      if (!current) {
        out.push(`${where(o.pair, o.time)}: ${o.kind} without a position`);
        continue;
      }
      if (o.kind === 'close' || o.filled_quantity >= current.quantity * (1 - 1e-9)) {
        held.delete(o.pair);
      } else {
        current.margin *= 1 - o.filled_quantity / current.quantity;
        current.quantity -= o.filled_quantity;
      }
    }
  }
  if (held.size > 0) out.push(`positions left open at the end: ${[...held.keys()].join(', ')}`);
  return out;
}

async function closesOf(
  market: RecordedMarketSource,
  pairs: readonly string[],
): Promise<Map<string, Map<number, number>>> {
  const out = new Map<string, Map<number, number>>();
  for (const pair of pairs) {
    const candles: readonly Candle[] = await market.history(pair, '30m');
    out.set(pair, new Map(candles.map((c) => [c.time + MAIN_MS, c.close])));
  }
  return out;
}

const STRESS_PAIRS = [
  'BTC/USDT:USDT',
  'ETH/USDT:USDT',
  'SOL/USDT:USDT',
  'DOGE/USDT:USDT',
  'XRP/USDT:USDT',
  'ADA/USDT:USDT',
];
const STRESS_RISK = {
  max_leverage: 20,
  default_leverage: 5,
  max_position_pct: 25,
  default_stake_pct: 10,
  max_total_exposure_pct: 300,
  max_open_trades: 3,
  max_adjustments_per_trade: 2,
  min_confidence: 60,
  cooldown_minutes: 120,
};

describe('no trade breaks a configured risk limit', () => {
  test('the checker finds violations when there are some', async () => {
    // the same result judged against tighter limits than it was run with must fail: the checker is not blind
    const config = testConfig({ risk: STRESS_RISK });
    const market = recordedMarket();
    const run = await runBacktest({
      config,
      market,
      pairs: STRESS_PAIRS,
      from: DATA_START + 2 * DAY_MS,
      to: DATA_START + 6 * DAY_MS,
      policy: adversarialPolicy('extreme'),
      compareBaseline: false,
    });
    const tighter = testConfig({
      risk: {
        ...STRESS_RISK,
        max_leverage: 10,
        default_leverage: 5,
        max_open_trades: 2,
        max_position_pct: 10,
        default_stake_pct: 5,
        max_total_exposure_pct: 150,
        max_adjustments_per_trade: 1,
      },
    });
    const found = violations(run, tighter, await closesOf(market, STRESS_PAIRS));
    assert.ok(
      found.some((v) => /leverage 20 outside/.test(v)),
      found.slice(0, 3).join('\n'),
    );
    assert.ok(found.some((v) => /trades already open/.test(v)));
    assert.ok(found.some((v) => /% of equity/.test(v)));
    assert.ok(found.some((v) => /total notional/.test(v)));
    assert.ok(found.some((v) => /adjustments > 1/.test(v)));
  });

  test('the baseline over all 17 pairs', async () => {
    const config = testConfig();
    const market = recordedMarket();
    const run = await runBacktest({ config, market, pairs: ALL_PAIRS, policy: baselinePolicy() });
    assert.ok(run.result.trades.length > 50);
    assert.deepEqual(violations(run, config, await closesOf(market, ALL_PAIRS)), []);
  });

  const stress = async (freedom: boolean, mode: 'extreme' | 'edge') => {
    const config = testConfig({ risk: { ...STRESS_RISK, allow_model_freedom: freedom } });
    const market = recordedMarket();
    const { result, decisions } = await runBacktest({
      config,
      market,
      pairs: STRESS_PAIRS,
      from: DATA_START + 2 * DAY_MS,
      to: DATA_START + 22 * DAY_MS,
      policy: adversarialPolicy(mode),
      compareBaseline: false,
    });
    assert.deepEqual(violations({ result, decisions }, config, await closesOf(market, STRESS_PAIRS)), []);
    const details = decisions
      .toArray()
      .map((d) => d.detail ?? '')
      .join('\n');
    const saw = (re: RegExp) => assert.ok(re.test(details), `no decision detail matches ${re}`);
    return { result, saw };
  };

  test('an adversarial policy (leverage 125, a billion USDT, +100 % adjustments), limits clamped', async () => {
    const { result, saw } = await stress(true, 'extreme');
    // it did push: every limit got in its way, and the clamped orders still traded
    assert.ok(result.trades.length > 10, `only ${result.trades.length} trades`);
    assert.ok(result.trades.every((t) => t.leverage === STRESS_RISK.max_leverage));
    assert.ok(result.orders.some((o) => o.kind === 'increase' && o.status === 'filled'));
    assert.ok(result.metrics.rejections > 0);
    saw(/leverage 125x clamped to risk.max_leverage 20x/);
    saw(/clamped to .* by risk.max_position_pct/);
    saw(/max_open_trades 3; no new entry/);
    saw(/max_adjustments_per_trade 2/);
  });

  test('an adversarial policy, limits enforced strictly: over-limit asks are rejected, the others trade', async () => {
    const extreme = await stress(false, 'extreme');
    assert.equal(extreme.result.trades.length, 0, 'leverage 125 and a billion-USDT stake are never placed');
    extreme.saw(/leverage 125x is above risk.max_leverage 20x/);
    const edge = await stress(false, 'edge');
    assert.ok(edge.result.trades.length > 5, `only ${edge.result.trades.length} trades`);
    edge.saw(/leverage 21x is above risk.max_leverage 20x/);
    edge.saw(/margin 2600.00 USDT is above risk.max_position_pct 25%/);
    edge.saw(/max_open_trades 3; no new entry/);
  });
});
