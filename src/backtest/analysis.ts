/**
 * What a trader reads first in a backtest, computed once by the engine so that result.json and the report agree:
 * the tradable period (after the indicator warm-up), the policy's results per pair, its trades broken down by exit
 * reason, side and month, the decisions panel (per tool, fallbacks by reason, risk rejections by rule, tokens), and
 * the equal-weight buy-and-hold benchmark of the traded pairs. Pure functions: no I/O, no clock.
 */
import type { IndicatorValues } from '../core/types';
import { indicatorsAt } from '../core/indicators';
import type { PairSeriesCache } from '../core/snapshot';
import { closedCount } from '../core/timeframe';
import type { TradeRow } from '../core/trade-row';
import { PROBLEM_KIND_LABELS, type ProblemKind } from '../core/validate';
import type { DecisionLog } from './decision-log';
import { fallbackKinds } from './llm-usage';
import {
  buyAndHoldEquity,
  maxDrawdownPct,
  sharpeRatio,
  sortinoRatio,
  stepReturns,
  totalReturnPct,
  tradeStats,
} from './metrics';
import type { Benchmark, Breakdowns, DecisionsSummary, PairResult, TradableReason, TradeGroup } from './result';

/** The indicators the warm-up waits for on the main timeframe (those the baseline's entry rules read). */
export const WARMUP_MAIN: readonly (keyof IndicatorValues)[] = [
  'ema20',
  'ema50',
  'rsi14',
  'macdHist',
  'atr14',
  'adx14',
];
/** The indicators the warm-up waits for on the higher timeframe (4h, else 1h: the baseline's trend confirmation). */
export const WARMUP_HIGHER: readonly (keyof IndicatorValues)[] = ['ema20', 'ema50'];

function ready(values: IndicatorValues, names: readonly (keyof IndicatorValues)[]): boolean {
  for (const n of names) if (values[n] === null) return false;
  return true;
}

/** The warm-up's indicators as `timeframe:name`, for the result and the report's header. */
export function warmupIndicators(cache: PairSeriesCache): string[] {
  const main = cache.timeframes[0]!;
  const higher = higherTimeframe(cache);
  return [
    ...WARMUP_MAIN.map((n) => `${main.timeframe} ${n}`),
    ...(higher ? WARMUP_HIGHER.map((n) => `${higher.timeframe} ${n}`) : []),
  ];
}

function higherTimeframe(cache: PairSeriesCache) {
  return cache.timeframes.find((t) => t.timeframe === '4h') ?? cache.timeframes.find((t) => t.timeframe === '1h');
}

/**
 * The first of `times` at which every warm-up indicator of the pair has a value (computed from the candles closed
 * by then), or null when that never happens within `times`.
 */
export function pairWarmupEnd(cache: PairSeriesCache, times: readonly number[]): number | null {
  const main = cache.timeframes[0]!;
  const higher = higherTimeframe(cache);
  for (const t of times) {
    const n = closedCount(main.candles, main.timeframeMs, t);
    if (n === 0 || !ready(indicatorsAt(main.indicators, n - 1), WARMUP_MAIN)) continue;
    if (higher) {
      const h = closedCount(higher.candles, higher.timeframeMs, t);
      if (h === 0 || !ready(indicatorsAt(higher.indicators, h - 1), WARMUP_HIGHER)) continue;
    }
    return t;
  }
  return null;
}

/**
 * Where the measured period starts: the end of the warm-up of every pair, unless the policy entered earlier (a model
 * can enter on partial indicators; its trades are never left out), or the warm-up does not end within the range.
 * @returns the index into `times` of the first decision time measured, and why it is that one
 */
export function tradableStart(
  times: readonly number[],
  warmupEnd: number | null,
  firstEntry: number | null,
): { index: number; reason: TradableReason } {
  let index = warmupEnd === null ? 0 : times.indexOf(warmupEnd);
  let reason: TradableReason = warmupEnd === null ? 'no_warmup_end' : index === 0 ? 'range_start' : 'warmup_end';
  if (index < 0) index = 0;
  if (firstEntry !== null && firstEntry < times[index]!) {
    const i = times.findIndex((t) => t >= firstEntry);
    if (i >= 0 && i < index) {
      index = i;
      reason = 'first_entry';
    }
  }
  return { index, reason };
}

interface GroupTotals {
  pnl: number;
  fees: number;
  funding: number;
  durationMs: number;
}

function group(key: string, trades: readonly TradeRow[], startingBalance: number): TradeGroup {
  const stats = tradeStats(trades.map((t) => ({ pnl: t.pnl, pnlPct: t.pnl_pct })));
  const sums: GroupTotals = { pnl: 0, fees: 0, funding: 0, durationMs: 0 };
  for (const t of trades) {
    sums.pnl += t.pnl;
    sums.fees += t.fees;
    sums.funding += t.funding;
    sums.durationMs += t.exit_time - t.entry_time;
  }
  return {
    key,
    trades: stats.trades,
    wins: stats.wins,
    losses: stats.losses,
    win_rate_pct: stats.winRatePct,
    pnl: sums.pnl,
    return_contribution_pct: (sums.pnl / startingBalance) * 100,
    average_trade_pct: stats.averagePnlPct,
    profit_factor: stats.profitFactor,
    fees: sums.fees,
    funding: sums.funding,
    average_duration_hours: trades.length > 0 ? sums.durationMs / trades.length / 3_600_000 : null,
  };
}

/**
 * The policy's results per pair, in the run's pair order (a pair without trades gets a row of zeros). The max
 * drawdown of a pair is that of its cumulative closed-trade PnL (in exit order), from the starting balance.
 */
export function pairResults(
  pairs: readonly string[],
  trades: readonly TradeRow[],
  startingBalance: number,
): PairResult[] {
  return pairs.map((pair) => {
    const own = trades.filter((t) => t.pair === pair);
    const byExit = [...own].sort((a, b) => a.exit_time - b.exit_time);
    const curve = [startingBalance];
    for (const t of byExit) curve.push(curve[curve.length - 1]! + t.pnl);
    let peak = startingBalance;
    let worst = 0;
    for (const v of curve) {
      if (v > peak) peak = v;
      if (peak - v > worst) worst = peak - v;
    }
    const { key: _key, ...row } = group(pair, own, startingBalance);
    return {
      pair,
      ...row,
      long_trades: own.filter((t) => t.side === 'long').length,
      short_trades: own.filter((t) => t.side === 'short').length,
      max_drawdown: worst,
      max_drawdown_pct: (worst / startingBalance) * 100,
    };
  });
}

function groupsBy(
  trades: readonly TradeRow[],
  keyOf: (t: TradeRow) => string,
  startingBalance: number,
  order?: readonly string[],
): TradeGroup[] {
  const map = new Map<string, TradeRow[]>();
  for (const k of order ?? []) map.set(k, []);
  for (const t of trades) {
    const k = keyOf(t);
    let list = map.get(k);
    if (!list) map.set(k, (list = []));
    list.push(t);
  }
  const keys = order ? [...map.keys()] : [...map.keys()].sort();
  return keys.filter((k) => map.get(k)!.length > 0).map((k) => group(k, map.get(k)!, startingBalance));
}

/** `YYYY-MM` (UTC) of a time. */
function month(t: number): string {
  return new Date(t).toISOString().slice(0, 7);
}

const EXIT_ORDER = ['model', 'stop', 'emergency_stop', 'liquidation_buffer', 'liquidation', 'external', 'force_exit'];

/**
 * The rules a risk-gate rejection names (its detail is the gate's reasons joined): every `risk.<setting>` it cites,
 * or what it is about when it cites none (the available balance, the position's state, the account's equity).
 */
export function rejectionRules(detail: string | null): string[] {
  if (detail === null || detail === '') return ['other'];
  const found = new Set<string>();
  for (const m of detail.matchAll(/risk\.([a-z_]+)/g)) found.add(m[1]!);
  if (/available balance/.test(detail)) found.add('available_balance');
  if (found.size > 0) return [...found].sort();
  if (/while flat|there is no position|while a (long|short) position is open|does not track/.test(detail)) {
    return ['position_state'];
  }
  if (/account equity/.test(detail)) return ['equity'];
  return ['other'];
}

function bump(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

function sortedRecord(map: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.keys(map)
      .sort()
      .map((k) => [k, map[k]!]),
  );
}

/** The decisions panel: per tool and outcome, by source, fallbacks by reason, rejections by rule, tokens. */
export function decisionsSummary(log: DecisionLog, costUsd: number | null): DecisionsSummary {
  const byTool: DecisionsSummary['by_tool'] = {};
  const bySource: Record<string, number> = {};
  const fallbackReasons: Record<string, number> = {};
  const rejectionRulesCount: Record<string, number> = {};
  const refusals: Record<string, number> = {};
  const tokens = { input: 0, cached_input: 0, output: 0 };
  let modelDecisions = 0;
  let requests = 0;
  let fallbacks = 0;
  let rejections = 0;
  for (const row of log) {
    const tool = (byTool[row.tool] ??= { decisions: 0, none: 0, executed: 0, rejected: 0, refused: 0, failed: 0 });
    tool.decisions++;
    tool[row.outcome]++;
    bump(bySource, row.source);
    if (row.source === 'fallback') {
      fallbacks++;
      const kinds = fallbackKinds(row.problems);
      if (kinds.length === 0) bump(fallbackReasons, 'no valid decision recorded');
      for (const k of kinds) bump(fallbackReasons, PROBLEM_KIND_LABELS[k as ProblemKind]);
    }
    if (row.outcome === 'rejected') {
      rejections++;
      for (const rule of rejectionRules(row.detail)) bump(rejectionRulesCount, rule);
    }
    if (row.outcome === 'refused') {
      const d = row.detail ?? '';
      bump(refusals, d.startsWith('refused at portfolio admission') ? 'portfolio admission' : 'exchange');
    }
    if (row.requests > 0) {
      modelDecisions++;
      requests += row.requests;
      tokens.input += row.tokens_in;
      tokens.cached_input += row.tokens_cached_in;
      tokens.output += row.tokens_out;
    }
  }
  return {
    decisions: log.length,
    by_tool: Object.fromEntries(
      Object.keys(byTool)
        .sort()
        .map((k) => [k, byTool[k as keyof typeof byTool]!]),
    ),
    by_source: sortedRecord(bySource),
    fallbacks,
    fallbacks_by_reason: sortedRecord(fallbackReasons),
    rejections,
    rejections_by_rule: sortedRecord(rejectionRulesCount),
    refusals: sortedRecord(refusals),
    model: { decisions: modelDecisions, requests, tokens, cost_usd: modelDecisions > 0 ? costUsd : null },
  };
}

/** The trades by exit reason, side and month (of the exit, UTC), and the decisions panel. */
export function breakdowns(
  trades: readonly TradeRow[],
  startingBalance: number,
  decisions: DecisionsSummary,
): Breakdowns {
  return {
    exit_reason: groupsBy(trades, (t) => t.exit_reason, startingBalance, EXIT_ORDER),
    side: groupsBy(trades, (t) => t.side, startingBalance, ['long', 'short']),
    month: groupsBy(trades, (t) => month(t.exit_time), startingBalance),
    decisions,
  };
}

/**
 * The equal-weight buy-and-hold of `closes` (per pair, the closes at the measured decision times): the starting
 * balance split evenly, each part bought at the first close and sold at the last with the paper fee and slippage
 * (see `buyAndHoldEquity`), summed. Its equity has one value per decision time, like the policy's curve.
 */
export function equalWeightBenchmark(
  pairs: readonly string[],
  closes: readonly (readonly number[])[],
  times: readonly number[],
  costs: { startingBalance: number; fee: number; slippage: number },
  periods: number,
): Benchmark {
  const part = costs.startingBalance / pairs.length;
  const sum = new Array<number>(times.length + 1).fill(0);
  const returns: number[] = [];
  pairs.forEach((_, i) => {
    const values = buyAndHoldEquity(closes[i]!, { ...costs, startingBalance: part });
    for (let k = 0; k < values.length; k++) sum[k]! += values[k]!;
    returns.push(totalReturnPct(values));
  });
  const stepRets = stepReturns(sum);
  return {
    label: `equal-weight buy-and-hold of the ${pairs.length} traded pairs`,
    pairs: [...pairs],
    final_equity: sum[sum.length - 1]!,
    total_return_pct: totalReturnPct(sum),
    max_drawdown_pct: maxDrawdownPct(sum),
    sharpe: sharpeRatio(stepRets, periods),
    sortino: sortinoRatio(stepRets, periods),
    best_pair: pairs[returns.indexOf(Math.max(...returns))]!,
    worst_pair: pairs[returns.indexOf(Math.min(...returns))]!,
    equity: times.map((t, k) => ({ time: t, equity: sum[k + 1]! })),
  };
}
