/**
 * The backtest result: the shape of `result.json`, documented field by field (README "Backtests" points here).
 *
 * Determinism: a result holds no wall-clock time, no path of this machine and no latency; keys come in the order of
 * these interfaces; numbers are JavaScript doubles as `JSON.stringify` writes them. So the same data, config, policy
 * and decision cache give a byte-identical file (the run's timing is printed on the terminal only).
 *
 * Units: times are Unix milliseconds (UTC); money is USDT; `*_pct` fields are percents (12.5 = 12.5 %).
 */
import type { Config, ModelPrice } from '../core/config';
import type { ProblemKind } from '../core/validate';
import type { CloseReason, Side, ToolName } from '../core/types';
import type { TradeRow } from '../core/trade-row';
import type { SeriesQuality } from '../core/data-quality';
import type { ReplayLogReport } from './replay-log';

export const RESULT_FORMAT = 'llm-trader backtest result v1';

/** One closed trade (see src/core/trade-row.ts). Every position still open at the last decision time is closed there (`force_exit`). */
export type { TradeRow };

/** One order the risk gate approved, with what the paper exchange made of it. */
export interface OrderRow {
  time: number;
  pair: string;
  client_order_id: string;
  /** open, increase, reduce or close */
  kind: 'open' | 'increase' | 'reduce' | 'close';
  /** the position's side */
  side: Side;
  status: 'filled' | 'rejected';
  /** ordered quantity, base units */
  quantity: number;
  filled_quantity: number;
  /** the decision price the order was sized at */
  reference_price: number;
  /** average fill price (after slippage); null when nothing filled */
  fill_price: number | null;
  fee: number;
  /** leverage of an open or increase; null for reductions and closes */
  leverage: number | null;
  /** margin the gate approved for an open or increase, at the reference price; null otherwise */
  margin: number | null;
  /** why a close was placed (model, emergency_stop, liquidation_buffer, force_exit); null for other kinds */
  close_reason: CloseReason | null;
  /** the exchange's reason when rejected */
  error: string | null;
}

/**
 * Every decision of the run, one per pair and decision time (plus protective and end-of-run exits): a row of the
 * engine's decision log (src/backtest/decision-log.ts). result.json does not hold them (the run's decision log,
 * `llm_decisions.jsonl`, is the record); it holds their aggregates in `breakdowns.decisions`.
 */
export interface DecisionRow {
  time: number;
  pair: string;
  tool: ToolName;
  /**
   * who decided: baseline, openai, replay, fallback (invalid model output or a missing replay line), protective (the
   * emergency stop or liquidation buffer), operator (the end-of-run exit). A decision served from the decision cache
   * is reported as `openai`, so a cached rerun gives the same result.
   */
  source: string;
  model: string | null;
  confidence: number | null;
  reason: string;
  /**
   * none (hold, wait), executed, rejected (by the risk gate), refused (at portfolio admission, or by the exchange),
   * failed (a protective exit the exchange did not fill)
   */
  outcome: 'none' | 'executed' | 'rejected' | 'refused' | 'failed';
  /** the gate's rejection reasons or clamp notes, the admission's refusal, or the exchange's error */
  detail: string | null;
  /** the tool's arguments except pair and reason; null for a protective or operator exit */
  args: Record<string, unknown> | null;
  /** leveraged PnL % of the open position when decided; null when flat */
  pnl_pct: number | null;
  /** the account the cycle saw: equity and the balance available for new margin */
  equity: number;
  available: number;
  client_order_id: string | null;
  /** model tokens the decision cost (for a cache hit: those of the original request) */
  tokens_in: number;
  tokens_out: number;
  /** of `tokens_in`, prompt tokens the server served from its prompt cache (0 when it does not say) */
  tokens_cached_in: number;
  /** model requests the decision took: 1, 2 after a repair round (for a cache hit: the original's); 0 without a model */
  requests: number;
  /** validation problems on the way (repair round, fallback cause); empty for a clean answer */
  problems: readonly string[];
  /** fields of the model's tool call that the tool does not have: dropped, the call accepted without them */
  dropped_fields: readonly string[];
}

/** The account after every pair's cycle at a decision time, positions marked to the last close. */
export interface EquityPoint {
  time: number;
  equity: number;
  /** open positions at that moment */
  open_positions: number;
}

/**
 * The metrics are measured over the tradable period only ({@link TradablePeriod}): from the decision time before its
 * start (the account as it stood then: the starting balance, since no trade comes earlier) to the last decision time.
 */
export interface BacktestMetrics {
  starting_balance: number;
  final_equity: number;
  /** final equity − starting balance: the sum of every trade's PnL (`pairs[].pnl` sums to it) */
  net_pnl: number;
  total_return_pct: number;
  /** largest fall from a peak of the equity curve, percent of the peak */
  max_drawdown_pct: number;
  /** annualised from the per-step returns of the equity curve (src/backtest/metrics.ts); null without variance */
  sharpe: number | null;
  sortino: number | null;
  trades: number;
  wins: number;
  losses: number;
  win_rate_pct: number | null;
  /** gross profit / gross loss; null without a losing trade */
  profit_factor: number | null;
  average_trade_pnl: number | null;
  average_trade_pct: number | null;
  /** share of decision times with at least one open position */
  exposure_pct: number;
  /** trading fees paid */
  fees: number;
  /** funding paid (+) or received (−) */
  funding: number;
  liquidations: number;
  /** isolated margin lost to liquidations */
  liquidation_losses: number;
  /** closes by the emergency stop, the liquidation buffer or an exchange stop order */
  protective_exits: number;
  decisions: number;
  /** decisions the provider could not make validly (safe hold/wait instead) */
  fallbacks: number;
  rejections: number;
  model_tokens_in: number;
  model_tokens_out: number;
  /** what the model tokens cost at the model's price (`llm.cost_usd`); 0 without a model; null when the price is unknown */
  estimated_cost_usd: number | null;
}

/** One row of the comparison table over the tradable period: the policy, the baseline policy, buy-and-hold of each pair. */
export interface ComparisonRow {
  label: string;
  kind: 'policy' | 'baseline' | 'buy_and_hold';
  /** the pair of a buy-and-hold row; null otherwise */
  pair: string | null;
  final_equity: number;
  total_return_pct: number;
  max_drawdown_pct: number;
  sharpe: number | null;
  sortino: number | null;
  trades: number;
  win_rate_pct: number | null;
  profit_factor: number | null;
}

/** What the look-ahead check compared and found (null in a result when the check was not asked for). */
export interface LookaheadReport {
  /** pair-cycles rerun with the future corrupted */
  samples: number;
  /** how the future was corrupted */
  corruption: string;
  passed: boolean;
  mismatches: LookaheadMismatch[];
}

export interface LookaheadMismatch {
  pair: string;
  time: number;
  /** `decision`: the decision or its orders changed; `input`: what the provider was given changed */
  kind: 'decision' | 'input';
  /** the first differing field, e.g. `events[0].context.snapshot.timeframes.1d.close` */
  path: string;
  original: string;
  rerun: string;
}

/** Cycle counters of one pair (see CycleCounters in src/core/cycle.ts; token counts are in the metrics). */
export interface PairCounters {
  pair: string;
  cycles: number;
  decisions: number;
  entries: number;
  exits: number;
  adjustments: number;
  holds: number;
  waits: number;
  rejections: number;
  protective_exits: number;
  external_closes: number;
  execution_failures: number;
  fallbacks: number;
}

/** Tokens and cost of a set of model decisions (as originally asked: a cache hit counts what its request cost). */
export interface LlmSpend {
  /** model decisions (fallbacks included) */
  decisions: number;
  /** model requests they took (a repair round is a second one) */
  requests: number;
  tokens: {
    input: number;
    /** of `input`, prompt tokens the server served from its prompt cache (billed at `cached_input`) */
    cached_input: number;
    output: number;
  };
  /** USD at `llm.price`; null when the model has no price */
  cost_usd: number | null;
}

/** The model's side of a run with a remote model (`llm` in result.json; null for other policies). */
export interface LlmUsage extends LlmSpend {
  /** the configured model, and the endpoint without credentials */
  model: string;
  endpoint: string;
  /** USD per million tokens (llm.pricing, else the built-in table: `source`); null when neither knows the model */
  price: (ModelPrice & { model: string; source: 'config' | 'built-in' }) | null;
  /** by the state of the pair: `entry` (flat: the entry prompt) and `position` (the position prompt) */
  by_kind: { entry: LlmSpend; position: LlmSpend };
  /** decisions whose answers stayed invalid after the repair round (a safe hold or wait instead) */
  fallbacks: {
    decisions: number;
    /** share of the model decisions, percent; null without any */
    pct: number | null;
    /** fallbacks by what was wrong with the last answer (a fallback counts once under each kind it had) */
    by_reason: Partial<Record<ProblemKind, number>>;
  };
  /** tool calls accepted without fields the tool does not have */
  extra_fields: {
    /** decisions with at least one such field */
    decisions: number;
    /** how often each field name was dropped, by name */
    fields: Record<string, number>;
  };
}

/** Pair-cycles skipped because the latest candle of a timeframe was missing: consecutive decision times. */
export interface SkippedCycles {
  pair: string;
  /** the timeframe whose latest candle was missing */
  timeframe: string;
  /** first and last skipped decision time */
  from: number;
  to: number;
  cycles: number;
}

/** result.json `dataQuality`: the series the run read and the cycles it skipped over gaps. */
export interface DataQualityReport {
  /** per pair and timeframe (main first): first/last candle, gaps with their ranges, rows skipped at import */
  series: SeriesQuality[];
  /** no decision is made on a snapshot whose latest candle is missing: the cycle is skipped and listed here */
  skipped_cycles: SkippedCycles[];
}

/** Why the tradable period starts where it does. */
export type TradableReason =
  /** every pair's warm-up indicators had values at this decision time */
  | 'warmup_end'
  /** the warm-up was over at the first decision time */
  | 'range_start'
  /** the policy entered before the warm-up ended (a model can), so the period starts with its first entry */
  | 'first_entry'
  /** the warm-up does not end within the range: the whole range is measured */
  | 'no_warmup_end';

/**
 * result.json `period`: the decision times the metrics, the comparison and the benchmark measure. Before the
 * indicators every pair's entry rules read have values (the warm-up: with the shared data, 4h EMA50 needs 8 days),
 * no trade can come, and counting those days would dilute every figure and start buy-and-hold too early.
 */
export interface TradablePeriod {
  /** first and last decision time measured */
  from: number;
  to: number;
  /** decision times measured */
  steps: number;
  reason: TradableReason;
  /** the first decision time at which every pair's warm-up indicators have values; null when none is in the range */
  warmup_end: number | null;
  /** the indicators the warm-up waits for, as `<timeframe> <name>` (the baseline's entry rules) */
  warmup_indicators: string[];
}

/** A group of the policy's closed trades (by pair, exit reason, side or month). */
export interface TradeGroup {
  /** what the group is: the exit reason, `long`/`short`, or the month of the exit (`YYYY-MM`, UTC) */
  key: string;
  trades: number;
  wins: number;
  losses: number;
  win_rate_pct: number | null;
  /** net PnL after fees and funding, USDT */
  pnl: number;
  /** pnl as a percent of the starting balance: what the group added to the total return */
  return_contribution_pct: number;
  /** mean PnL per trade, percent of its margin; null without trades */
  average_trade_pct: number | null;
  profit_factor: number | null;
  fees: number;
  /** funding paid (+) or received (−) */
  funding: number;
  /** mean time from entry to exit, hours; null without trades */
  average_duration_hours: number | null;
}

/** result.json `pairs[]`: the policy's results on one pair (every traded pair, in the run's order). */
export interface PairResult extends Omit<TradeGroup, 'key'> {
  pair: string;
  long_trades: number;
  short_trades: number;
  /** largest fall of the pair's cumulative closed-trade PnL (in exit order) from its peak, USDT */
  max_drawdown: number;
  /** max_drawdown as a percent of the starting balance */
  max_drawdown_pct: number;
}

/** result.json `breakdowns.decisions`: the decisions panel. */
export interface DecisionsSummary {
  decisions: number;
  /** per tool: decisions and their outcomes */
  by_tool: Partial<
    Record<ToolName, { decisions: number } & Record<'none' | 'executed' | 'rejected' | 'refused' | 'failed', number>>
  >;
  /** who decided (baseline, openai, replay, fallback, protective, operator) */
  by_source: Record<string, number>;
  fallbacks: number;
  /** fallbacks by what was wrong with the answer (a fallback counts once under each kind it had) */
  fallbacks_by_reason: Record<string, number>;
  rejections: number;
  /** risk-gate rejections by the rule they cite (`risk.<setting>` names, `available_balance`, `position_state`) */
  rejections_by_rule: Record<string, number>;
  /** refusals: at portfolio admission, or by the exchange */
  refusals: Record<string, number>;
  /** decisions a model was asked for, their requests, tokens and cost (null cost: no model or no price) */
  model: {
    decisions: number;
    requests: number;
    tokens: { input: number; cached_input: number; output: number };
    cost_usd: number | null;
  };
}

/** result.json `breakdowns`. */
export interface Breakdowns {
  exit_reason: TradeGroup[];
  side: TradeGroup[];
  /** by the month of the exit, UTC */
  month: TradeGroup[];
  decisions: DecisionsSummary;
}

/**
 * result.json `benchmark`: the equal-weight buy-and-hold of the traded pairs over the tradable period (Freqtrade's
 * "market change"): the starting balance split evenly, each part bought at the first close with the paper fee and
 * slippage, held at 1x without funding, sold at the last close.
 */
export interface Benchmark {
  label: string;
  pairs: string[];
  final_equity: number;
  total_return_pct: number;
  max_drawdown_pct: number;
  sharpe: number | null;
  sortino: number | null;
  /** the pairs with the best and the worst buy-and-hold return */
  best_pair: string;
  worst_pair: string;
  /** the benchmark's value at every measured decision time */
  equity: { time: number; equity: number }[];
}

/** result.json `stops[]`: a protective stop order the run placed (src/core/protective-stop.ts). */
export interface StopRow {
  pair: string;
  client_order_id: string;
  /** the trade it protected (the entry's client order id) */
  trade_id: string;
  /** when it was placed, and when it ended (filled or cancelled; the last decision time while still open) */
  from: number;
  to: number;
  stop_price: number;
  quantity: number;
  status: 'open' | 'filled' | 'canceled';
}

export interface BacktestResult {
  format: typeof RESULT_FORMAT;
  /** `bt-` + a hash of the effective config, pairs, range and policy id: owner of the run's client order ids */
  run_id: string;
  policy: { name: string; id: string };
  range: {
    /** first and last decision time (main-timeframe close times) */
    from: number;
    to: number;
    main_timeframe: string;
    /** informative timeframes in the snapshots */
    informative_timeframes: string[];
    pairs: string[];
    /** decision times */
    steps: number;
    /** pair-cycles run (steps × pairs, less skipped ones) */
    candle_steps: number;
    /** pair-cycles skipped because the pair's candle closing then is missing from the data */
    skipped_steps: number;
  };
  /**
   * the effective configuration, secrets masked, without the settings that only steer the run and never change its
   * result: `backtest` (concurrency, fallback alarm), `llm.max_cost_usd` and `llm.cache`
   */
  /** the decision times measured (after the indicator warm-up) */
  period: TradablePeriod;
  config: ResultConfig;
  metrics: BacktestMetrics;
  benchmark: Benchmark;
  comparison: ComparisonRow[];
  /** the policy's results per traded pair; their `pnl` sums to `metrics.net_pnl` */
  pairs: PairResult[];
  breakdowns: Breakdowns;
  counters: PairCounters[];
  lookahead: LookaheadReport | null;
  dataQuality: DataQualityReport;
  /** for a replay policy: what the decision log held and what the run made of it; null otherwise */
  replayLog: ReplayLogReport | null;
  /** a remote model's tokens, cost, fallbacks and dropped fields; null for other policies */
  llm: LlmUsage | null;
  trades: TradeRow[];
  orders: OrderRow[];
  stops: StopRow[];
  /** the account at every decision time of the range (the warm-up included) */
  equity: EquityPoint[];
}

/** The configuration as a result records it (see `config` in {@link BacktestResult}). */
export type ResultConfig = Omit<Config, 'backtest' | 'llm'> & { llm: Omit<Config['llm'], 'max_cost_usd' | 'cache'> };

/** result.json as read back. */
export type BacktestResultFile = BacktestResult;
