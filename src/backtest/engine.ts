/**
 * The backtester: runs the live decision cycle (`runCycle`, src/core/cycle.ts) over recorded candles, in process.
 *
 * The steps of the cycle
 * - fetchMarket: the snapshot from the pair's precomputed series (`mainSnapshotAt` plus the informative timeframes:
 *   closed candles only, O(tail), no tails for the baseline's light context); the
 *   paper ledger advanced over the pair's main candles closed since its previous cycle (funding from the data's funding
 *   files, stop orders, liquidation) — the closes it made are the cycle's external closes; the account from the ledger
 *   (every position marked at the last price the ledger processed for its pair); the market limits.
 * - buildContext: `light` for the baseline (snapshot and position only: no prompt is rendered or tokenised), else the
 *   live builder (`buildDecisionContext`) with a learning context from the run's own closed trades and decisions.
 * - decide: the policy's provider. checkRisk: the core risk gate with `config.risk`.
 * - execute: a market order on the ledger, plus the protective stop kept as the live activities keep it
 *   (src/core/protective-stop.ts): placed with an entry at the intent's stop price (`<tradeId>s`), replaced after an
 *   increase or a reduction, cancelled when the trade is closed.
 *
 * The loop: for each main-timeframe close time t in the range (one global clock), for each pair in the given order,
 * one cycle at asOf = t; all pairs share one account, and each pair owns its client order ids (`<runId>/<pair>`, as a
 * pair workflow does). After every pair's cycle at t, the equity is sampled. At the last decision time no new decision
 * is asked for and every open position is closed by the operator's force-exit path (exit_reason `force_exit`), so every
 * trade is in the result and the final equity is realised.
 *
 * Speed (see bench/backtest.ts): no prompt for the baseline; the steps answer at once (no promise, so a cycle runs
 * through without suspending); the snapshot of an informative timeframe is rebuilt only when one of its candles
 * closes; candle lookups walk forward with the clock instead of searching; a decision leaves one row of a
 * {@link DecisionLog} behind and nothing else.
 *
 * Market limits: `paper.min_notional`, quantity step 0 and minimum quantity 0 (any quantity, as the paper exchange
 * without a markets file), `paper.maintenance_margin_rate`, and `paper.taker_fee` reserved with the margin.
 *
 * A pair whose main candle closing at t is missing from the data (a gap), or whose informative timeframe lacks the
 * candle that closed last at t, skips that cycle: no decision is made on a snapshot whose latest candle is missing.
 * The skipped cycles are listed in result.json `dataQuality.skipped_cycles`; the next cycle processes the candles
 * the pair missed. A failing step (e.g. the model's server is down) stops the run with an error naming the pair and
 * time: the decision cache keeps what was decided, so a rerun resumes cheaply.
 */
import { redactConfig, type Config } from '../core/config';
import type { DecisionContext } from '../core/context-types';
import {
  initialPairState,
  isPending,
  runCycle,
  type CycleEvent,
  type CycleSettings,
  type CycleSteps,
  type CycleTick,
  type MarketView,
  type PairState,
  type Step,
} from '../core/cycle';
import { shortHash } from '../core/ids';
import { currentStopOf, protectiveStopPlan } from '../core/protective-stop';
import { tradeRow } from '../core/trade-row';
import type { DecisionRecord as WarningRecord } from '../core/learning/warnings';
import { checkRisk, type MarketLimits } from '../core/risk';
import {
  admit,
  emptyBook,
  settle,
  slotAfterAdmission,
  slotAfterCycle,
  type AdmissionBook,
  type HeldSlot,
} from '../core/admission';
import {
  mainSnapshotAt,
  missingLatestCandle,
  timeframeSnapshotAt,
  upperBoundByTime,
  type FundingEvent,
  type PairSeriesCache,
  type SnapshotOptions,
  type TimeframeSeries,
} from '../core/snapshot';
import { closedCount, lastClosedCandleOpen, timeframeMs } from '../core/timeframe';
import { allowedTools } from '../core/tools';
import type {
  AccountSnapshot,
  Candle,
  ClosedTrade,
  DecisionResult,
  ExchangePosition,
  Execution,
  ExternalClose,
  MarketSnapshot,
  TimeframeSnapshot,
  ToolName,
  Verdict,
} from '../core/types';
import type { RecordedMarketSource } from '../exchange/market-source';
import { LedgerRejection, PaperLedger, type LedgerState } from '../exchange/paper-ledger';
import type { buildDecisionContext, buildLearningContext } from '../llm/context-builder';
import { canonicalJson } from '../llm/decision-cache';
import type { DecisionProvider } from '../llm/provider';
import { DecisionLog } from './decision-log';
import {
  buyAndHoldEquity,
  maxDrawdownPct,
  periodsPerYear,
  sharePct,
  sharpeRatio,
  sortinoRatio,
  stepReturns,
  totalReturnPct,
  tradeStats,
} from './metrics';
import { baselinePolicy, type BacktestPolicy } from './policy';
import { seriesQuality, type SeriesQuality } from '../core/data-quality';
import {
  RESULT_FORMAT,
  type BacktestMetrics,
  type DataQualityReport,
  type SkippedCycles,
  type BacktestResult,
  type ComparisonRow,
  type EquityPoint,
  type LookaheadReport,
  type OrderRow,
  type PairCounters,
} from './result';

/** Decisions of a pair kept for the learning context's warnings (as the journal's window). */
const LEARNING_DECISIONS = 50;

/** Progress of a run: decision times done out of the total. */
export interface BacktestProgress {
  done: number;
  total: number;
}

/** A decision as the cycle emitted it, for a decision log (e.g. `llm_decisions.jsonl`). */
export type DecisionEvent = Extract<CycleEvent, { type: 'decision' }>;

export interface BacktestOptions {
  /** the effective configuration (risk, paper, timeframes, context, experience, llm prices) */
  config: Config;
  /** recorded candles and funding; its series caches are built once and reused across runs */
  market: RecordedMarketSource;
  /** the traded pairs, in the order their cycles run at each decision time */
  pairs: readonly string[];
  /**
   * first decision time, Unix ms (inclusive; a time between two closes means the next close). Default: the first
   * main-timeframe close that every pair has.
   */
  from?: number | null;
  /** last decision time, Unix ms (inclusive). Default: the last main-timeframe close that every pair has. */
  to?: number | null;
  policy: BacktestPolicy;
  /** also run the baseline policy for the comparison table (default: true when the policy is not the baseline) */
  compareBaseline?: boolean;
  /** rerun this many pair-cycles with the future corrupted (see lookahead.ts); 0 or absent: no check */
  lookaheadSamples?: number;
  /** called every 64 decision times of the policy's run, and after the last */
  onProgress?: (progress: BacktestProgress) => void;
  /** called with every decision of the policy's run, in order */
  onDecision?: (pair: string, event: DecisionEvent, runId: string) => void;
  /** rows skipped when a series was imported or downloaded (the candle store knows), for the data quality report */
  skippedRows?: (pair: string, timeframe: string) => number | null;
}

/** One pair's precomputed data and limits. */
export interface PairRuntime {
  pair: string;
  cache: PairSeriesCache;
  /** the timeframes recorded for the pair (the others were aggregated); undefined when not known */
  recorded?: readonly string[];
  /** funding events sorted by time */
  funding: readonly FundingEvent[];
  limits: MarketLimits;
}

/** The live context builder and learning functions (src/llm/context-builder.ts), loaded only for prompt policies. */
export interface PromptBuilder {
  buildDecisionContext: typeof buildDecisionContext;
  buildLearningContext: typeof buildLearningContext;
}

/** Everything the in-process steps work on. */
export interface SessionEnv {
  config: Config;
  ledger: PaperLedger;
  pairs: ReadonlyMap<string, PairRuntime>;
  provider: DecisionProvider;
  /** null: the light context (snapshot and position only) */
  prompt: PromptBuilder | null;
  snapshotOptions: SnapshotOptions;
  /** closed trades so far (learning context); the driver appends */
  closedTrades: ClosedTrade[];
  /** recent decisions per pair, oldest first (learning context); the driver appends */
  learningDecisions: Map<string, WarningRecord[]>;
  /** the run's portfolio admission book (default: an empty one); the driver settles it after each cycle */
  book?: AdmissionBook;
}

/** The in-process steps plus the account each pair's last fetchMarket returned. */
export interface Session {
  steps: CycleSteps;
  /** the account the last fetchMarket returned (of the pair whose cycle ran last) */
  lastAccount(): AccountSnapshot | null;
  /**
   * The timeframe whose latest candle is missing from the data at `asOf` (the main candle closing exactly at `asOf`,
   * or an informative timeframe's candle that closed last at `asOf`), or null when every one is recorded and a cycle
   * can run. No decision is ever made on a snapshot whose latest candle is missing.
   */
  missingAt(pair: string, asOf: number): string | null;
}

/** A pair-cycle captured for the look-ahead check: what went in, and what came out. */
export interface CycleCapture {
  pair: string;
  tick: CycleTick;
  /** the pair's state before the cycle */
  state: PairState;
  /** the whole account before the cycle */
  ledger: LedgerState;
  /** the portfolio admission book before the cycle */
  book: AdmissionBook;
  /** closed trades before the cycle (learning) */
  closedTrades: ClosedTrade[];
  learningDecisions: Map<string, WarningRecord[]>;
  events: CycleEvent[];
}

/** The raw outcome of one simulation. */
export interface Simulation {
  runId: string;
  times: number[];
  trades: ClosedTrade[];
  orders: OrderRow[];
  decisions: DecisionLog;
  equity: EquityPoint[];
  states: PairState[];
  ledger: PaperLedger;
  candleSteps: number;
  skippedSteps: number;
  /** the pair-cycles skipped because a latest candle was missing, as ranges of consecutive decision times */
  skipped: SkippedCycles[];
  captures: CycleCapture[];
}

// Shared empty values (everything a step returns is read-only): one fewer allocation per cycle each.
const NO_FUNDING: readonly FundingEvent[] = Object.freeze([]);
const NO_CLOSES = Object.freeze([]) as unknown as ExternalClose[];
const NO_MESSAGES = Object.freeze([]) as unknown as DecisionContext['messages'];
const NO_TOOLS = Object.freeze([]) as unknown as DecisionContext['tools'];
const ENTRY_TOOLS: readonly ToolName[] = Object.freeze(allowedTools(false));
const POSITION_TOOLS: readonly ToolName[] = Object.freeze(allowedTools(true));

/** Snapshot options: the live ones for prompts; for the light context no tails (the baseline reads none). */
export function snapshotOptionsFor(config: Config, context: 'light' | 'prompt'): SnapshotOptions {
  return {
    tailLength: context === 'light' ? 0 : Math.max(1, config.context.indicator_history_points),
    rawCandles: config.context.raw_kline_history_points,
  };
}

/** The informative timeframes in the snapshots (none when `context.include_multi_timeframe_data` is off). */
export function informativeTimeframes(config: Config): string[] {
  const main = config.timeframes.main;
  return config.context.include_multi_timeframe_data ? config.timeframes.informative.filter((tf) => tf !== main) : [];
}

/** Market limits of the backtest (see the module comment). */
export function backtestLimits(config: Config): MarketLimits {
  return Object.freeze({
    minNotional: config.paper.min_notional,
    qtyStep: 0,
    minQty: 0,
    maintenanceMarginRate: config.paper.maintenance_margin_rate,
    takerFeeRate: config.paper.taker_fee,
  });
}

/** Loads (once per market source) and returns the runtime data of `pairs`. */
export async function loadPairs(
  market: RecordedMarketSource,
  config: Config,
  pairs: readonly string[],
): Promise<Map<string, PairRuntime>> {
  const out = new Map<string, PairRuntime>();
  const limits = backtestLimits(config);
  const informative = informativeTimeframes(config);
  for (const pair of pairs) {
    if (out.has(pair)) throw new Error(`backtest: pair ${pair} is listed twice; list each pair once`);
    const cache = await market.seriesCache(pair, config.timeframes.main, informative);
    const recorded = await market.data.timeframes(pair);
    out.set(pair, { pair, cache, recorded, funding: cache.funding, limits });
  }
  return out;
}

function iso(t: number): string {
  return Number.isFinite(t) && Math.abs(t) <= 8.64e15 ? new Date(t).toISOString() : String(t);
}

function exchangePosition(ledger: PaperLedger, pair: string): ExchangePosition | null {
  const p = ledger.position(pair);
  if (p === null) return null;
  const price = ledger.lastPrice(pair) ?? p.entryPrice;
  return {
    pair,
    side: p.side,
    quantity: p.quantity,
    entryPrice: p.entryPrice,
    leverage: p.leverage,
    margin: p.margin,
    notional: p.quantity * price,
    liquidationPrice: p.liquidationPrice,
    unrealizedPnl: p.side === 'long' ? (price - p.entryPrice) * p.quantity : (p.entryPrice - price) * p.quantity,
  };
}

/**
 * `closedCount(candles, ms, asOf)` for a clock that moves forward: it walks on from the previous answer (one candle
 * per step of a backtest) instead of a binary search per call, which matters when 17 pairs' series do not fit in the
 * CPU caches. A time earlier than the previous one falls back to the binary search.
 */
export class ClosedCandleCursor {
  private count = 0;
  private asOf = -Infinity;

  /**
   * @param time the candles' open times, ascending (a series' `time`)
   * @param ms the timeframe's length
   */
  constructor(
    readonly time: Float64Array,
    readonly ms: number,
  ) {}

  /** Number of leading candles closed at `asOf` (close time <= asOf). */
  closedAt(asOf: number): number {
    const time = this.time;
    const lastOpen = asOf - this.ms;
    let c = this.count;
    if (asOf < this.asOf || this.asOf === -Infinity) {
      // binary search: the first open time after lastOpen
      let lo = 0;
      let hi = time.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (time[mid]! <= lastOpen) lo = mid + 1;
        else hi = mid;
      }
      c = lo;
    } else {
      while (c < time.length && time[c]! <= lastOpen) c++;
    }
    this.count = c;
    this.asOf = asOf;
    return c;
  }
}

/** One informative timeframe of a pair, with the snapshot of its last closed candle kept between cycles. */
interface InformativeMemo {
  series: TimeframeSeries;
  cursor: ClosedCandleCursor;
  /** closed candles counted when `snapshot` was built; -1 before the first */
  count: number;
  snapshot: TimeframeSnapshot | null;
}

/** Per pair and session: the cursor over the main candles and the informative timeframes' snapshots. */
interface PairMemo {
  cache: PairSeriesCache;
  cursor: ClosedCandleCursor;
  informative: InformativeMemo[];
}

function pairMemo(cache: PairSeriesCache): PairMemo {
  const [main, ...informative] = cache.timeframes;
  return {
    cache,
    cursor: new ClosedCandleCursor(main!.time, main!.timeframeMs),
    informative: informative.map((series) => ({
      series,
      cursor: new ClosedCandleCursor(series.time, series.timeframeMs),
      count: -1,
      snapshot: null,
    })),
  };
}

/**
 * `snapshotAt(cache, asOf, opts)` for the `mainCount` main candles closed at `asOf` (the pair's cursor), with the
 * informative timeframes kept between calls: an informative timeframe's snapshot is rebuilt only when a new candle
 * of it has closed (every 2nd, 8th, 48th 30m step for 1h, 4h, 1d) and is shared by the snapshots until then
 * (snapshots are read-only everywhere; freezing them cost 4 % of a backtest). Equal, field for field and in key
 * order, to `snapshotAt` of the whole cache (tested).
 */
function memoSnapshotAt(memo: PairMemo, mainCount: number, opts: SnapshotOptions): MarketSnapshot {
  const snapshot = mainSnapshotAt(memo.cache, mainCount, opts);
  for (const inf of memo.informative) {
    const count = inf.cursor.closedAt(snapshot.asOf);
    if (count === 0) continue;
    if (count !== inf.count || inf.snapshot === null) {
      inf.count = count;
      inf.snapshot = timeframeSnapshotAt(inf.series, count, opts.tailLength, 0);
    }
    snapshot.timeframes[inf.series.timeframe] = inf.snapshot;
  }
  return snapshot;
}

/**
 * {@link Session.missingAt} without a session: the timeframe of `runtime` whose latest candle is missing at `asOf`,
 * or null when a cycle can run there (binary searches; for planning, e.g. which cycles a replayed log must cover).
 */
export function latestCandleMissing(runtime: PairRuntime, asOf: number): string | null {
  return missingLatestCandle(runtime.cache, asOf)?.timeframe ?? null;
}

/** The in-process cycle steps over `env` (see the module comment). */
export function createSession(env: SessionEnv): Session {
  const { config, ledger, provider, snapshotOptions, prompt } = env;
  const book = env.book ?? emptyBook();
  let lastAccount: AccountSnapshot | null = null;
  const memos = new Map<string, PairMemo>();
  const memoOf = (pair: string): PairMemo => {
    let memo = memos.get(pair);
    if (!memo) {
      const rt = env.pairs.get(pair);
      if (!rt) throw new Error(`backtest: no data loaded for ${pair}`);
      memos.set(pair, (memo = pairMemo(rt.cache)));
    }
    return memo;
  };

  const steps: CycleSteps = {
    fetchMarket({ pair, asOf, since }): MarketView {
      const rt = env.pairs.get(pair)!;
      const memo = memoOf(pair);
      const main = rt.cache.timeframes[0]!;
      const ms = main.timeframeMs;
      const candles = main.candles;
      const n = memo.cursor.closedAt(asOf);
      const time = main.time;
      if (n === 0 || time[n - 1]! + ms !== asOf) {
        throw new Error(`backtest: no ${main.timeframe} candle of ${pair} closes at ${iso(asOf)} in the data`);
      }
      const snapshot = memoSnapshotAt(memo, n, snapshotOptions);
      const from = since ?? asOf - ms;
      let k = n;
      while (k > 0 && time[k - 1]! + ms > from) k--;
      const candlesSince = candles.slice(k, n) as Candle[];
      const chargesBefore = ledger.fundingCharges().length;
      const funding = ledger.hasExposure(pair)
        ? rt.funding.slice(upperBoundByTime(rt.funding, from), upperBoundByTime(rt.funding, asOf))
        : NO_FUNDING;
      const closes = ledger.advance(pair, candlesSince, funding, ms);
      const charges = ledger.fundingCharges();
      let fundingSince = 0;
      for (let i = chargesBefore; i < charges.length; i++) fundingSince += charges[i]!.amount;
      const positions = ledger.positions();
      let usedMargin = 0;
      for (const p of positions) usedMargin += p.margin;
      const account: AccountSnapshot = {
        equity: ledger.equity(),
        available: ledger.cash,
        usedMargin,
        positions,
        externalCloses: closes.length > 0 ? (closes as ExternalClose[]).slice() : NO_CLOSES,
      };
      lastAccount = account;
      return { snapshot, account, candlesSince, fundingSince, limits: rt.limits };
    },

    buildContext(req): DecisionContext {
      const { snapshot, position } = req;
      if (prompt === null) {
        const hasPosition = position !== null;
        return {
          pair: snapshot.pair,
          asOf: snapshot.asOf,
          hasPosition,
          allowedTools: (hasPosition ? POSITION_TOOLS : ENTRY_TOOLS) as ToolName[],
          messages: NO_MESSAGES,
          tools: NO_TOOLS,
          tokens: null,
          snapshot,
          position,
        };
      }
      const learning = prompt.buildLearningContext({
        pair: snapshot.pair,
        asOf: snapshot.asOf,
        trades: env.closedTrades,
        decisions: env.learningDecisions.get(snapshot.pair) ?? [],
        experience: config.experience,
      });
      return prompt.buildDecisionContext({ ...req, learning }, config);
    },

    decide(ctx): Step<DecisionResult> {
      return provider.decide(ctx);
    },

    checkRisk(req): Verdict {
      return checkRisk({ ...req, risk: config.risk, market: req.limits });
    },

    // the same portfolio admission as the account workflow, on the run's one book (pairs are executed in order)
    admit(req) {
      return admit(book, req);
    },

    execute(req): Execution {
      const { intent, clientOrderId, asOf } = req;
      const adds = intent.kind === 'open' || intent.kind === 'increase';
      const buy = adds === (intent.side === 'long');
      let order;
      try {
        order = ledger.placeMarketOrder({
          pair: intent.pair,
          side: buy ? 'buy' : 'sell',
          quantity: intent.quantity,
          reduceOnly: !adds,
          clientOrderId,
          referencePrice: intent.price,
          leverage: adds ? intent.leverage : 1,
          time: asOf,
        });
      } catch (err) {
        if (!(err instanceof LedgerRejection)) throw err;
        return {
          clientOrderId,
          status: 'rejected',
          fills: [],
          position: exchangePosition(ledger, intent.pair),
          error: err.message,
        };
      }
      const position = exchangePosition(ledger, intent.pair);
      // the protective stop, as the live order step keeps it (src/core/protective-stop.ts)
      const plan = protectiveStopPlan(req, position, config.risk.emergency_stop_loss);
      let stopOrderId = plan.result;
      if (plan.place !== null) {
        try {
          ledger.placeStopOrder({ pair: intent.pair, ...plan.place, time: asOf });
        } catch (err) {
          if (!(err instanceof LedgerRejection)) throw err;
          stopOrderId = currentStopOf(req);
        }
      }
      if (plan.cancel !== null && stopOrderId === plan.result) ledger.cancelOrder(plan.cancel, asOf);
      return { clientOrderId, status: 'filled', fills: order.fills, position, error: null, stopOrderId };
    },
  };
  return {
    steps,
    lastAccount: () => lastAccount,
    missingAt(pair, asOf) {
      const memo = memoOf(pair);
      const main = memo.cache.timeframes[0]!;
      const n = memo.cursor.closedAt(asOf);
      if (n === 0 || main.time[n - 1]! + main.timeframeMs !== asOf) return main.timeframe;
      for (const inf of memo.informative) {
        const count = inf.cursor.closedAt(asOf);
        // none closed yet (the series starts later) is not a gap: the snapshot omits the timeframe
        if (count === 0) continue;
        // the candle that closed last is older than the one that should have: a gap, or the series ended early
        if (inf.series.time[count - 1]! !== lastClosedCandleOpen(asOf, inf.series.timeframe))
          return inf.series.timeframe;
      }
      return null;
    },
  };
}

/**
 * The decision times of a run: every main-timeframe close in [from, to] (see {@link BacktestOptions}), within the
 * range every pair has data for.
 * @throws Error naming the pair and the recorded range when `from` or `to` is outside the data, or the range is empty
 */
export function decisionTimes(
  runtimes: readonly PairRuntime[],
  mainTimeframe: string,
  from: number | null,
  to: number | null,
): number[] {
  const ms = timeframeMs(mainTimeframe);
  let start = -Infinity;
  let end = Infinity;
  let startPair = '';
  let endPair = '';
  for (const rt of runtimes) {
    const candles = rt.cache.timeframes[0]!.candles;
    if (candles.length === 0) throw new Error(`backtest: ${rt.pair} has no ${mainTimeframe} candles in the data`);
    const first = candles[0]!.time + ms;
    const last = candles[candles.length - 1]!.time + ms;
    if (first > start) [start, startPair] = [first, rt.pair];
    if (last < end) [end, endPair] = [last, rt.pair];
  }
  if (runtimes.length === 0) throw new Error('backtest: no pairs to trade; pass at least one pair');
  const range = `the data of every pair covers ${iso(start)} (${startPair}) to ${iso(end)} (${endPair})`;
  if (start > end) throw new Error(`backtest: the pairs' recorded ranges do not overlap (${range})`);
  if (from !== null && from < start) {
    throw new Error(`backtest: --from ${iso(from)} is before the data; ${range}. Use a later --from or omit it.`);
  }
  if (to !== null && to > end) {
    throw new Error(`backtest: --to ${iso(to)} is after the data; ${range}. Use an earlier --to or omit it.`);
  }
  const first = from === null ? start : Math.ceil(from / ms) * ms;
  const last = to === null ? end : Math.floor(to / ms) * ms;
  if (first > last) {
    throw new Error(`backtest: no ${mainTimeframe} close between --from ${iso(first)} and --to ${iso(last)}`);
  }
  const times: number[] = [];
  for (let t = first; t <= last; t += ms) times.push(t);
  return times;
}

/** `bt-` + 12 hex characters of a hash of the effective config, pairs, range and policy id. */
export function backtestRunId(
  config: Config,
  pairs: readonly string[],
  from: number,
  to: number,
  policyId: string,
): string {
  const effective = redactConfig({ ...config, pairs: [...pairs] });
  return `bt-${shortHash(canonicalJson({ config: effective, from, to, policy: policyId }))}`;
}

/**
 * The owner of a pair's client order ids in a run: `<runId>/<pair>` (one owner per pair, as the per-pair workflows
 * of live trading; the id of an order is derived from its owner and decision time).
 */
export function orderOwner(runId: string, pair: string): string {
  return `${runId}/${pair}`;
}

/** The cycle settings of a run (as the workflow starter derives them from the config). */
export function settingsFor(config: Config): CycleSettings {
  return {
    risk: config.risk,
    maxRecentDecisions: Math.max(1, config.experience.max_recent_decisions_context),
    maintenanceMarginRate: config.paper.maintenance_margin_rate,
  };
}

function orderRow(time: number, event: Extract<CycleEvent, { type: 'order' }>): OrderRow {
  const { intent, execution } = event;
  let filled = 0;
  let value = 0;
  let fee = 0;
  for (const f of execution.fills) {
    filled += f.quantity;
    value += f.quantity * f.price;
    fee += f.fee;
  }
  const adds = intent.kind === 'open' || intent.kind === 'increase';
  return {
    time,
    pair: intent.pair,
    client_order_id: execution.clientOrderId,
    kind: intent.kind,
    side: intent.side,
    status: execution.status,
    quantity: intent.quantity,
    filled_quantity: filled,
    reference_price: intent.price,
    fill_price: filled > 0 ? value / filled : null,
    fee,
    leverage: adds ? intent.leverage : null,
    margin: adds ? intent.margin : null,
    close_reason: intent.kind === 'close' ? intent.reason : null,
    error: execution.error,
  };
}

/**
 * One run of `policy` over `times`: the cycles, the collected rows, the equity curve; captures the pair-cycles at
 * the step indexes in `captureAt` (pair-cycle index over the grid times × pairs) for the look-ahead check.
 */
export async function simulate(input: {
  config: Config;
  market: RecordedMarketSource;
  runtimes: Map<string, PairRuntime>;
  pairs: readonly string[];
  times: readonly number[];
  policy: BacktestPolicy;
  runId: string;
  captureAt?: ReadonlySet<number>;
  onProgress?: (progress: BacktestProgress) => void;
  onDecision?: (pair: string, event: DecisionEvent, runId: string) => void;
}): Promise<Simulation> {
  const { config, pairs, times, policy, runId, captureAt, onProgress, onDecision } = input;
  const ledger = new PaperLedger(config.paper);
  const closedTrades: ClosedTrade[] = [];
  const learningDecisions = new Map<string, WarningRecord[]>();
  const prompt = policy.context === 'prompt' ? await import('../llm/context-builder') : null;
  const book = emptyBook();
  const session = createSession({
    config,
    ledger,
    book,
    pairs: input.runtimes,
    provider: policy.provider(input.market),
    prompt,
    snapshotOptions: snapshotOptionsFor(config, policy.context),
    closedTrades,
    learningDecisions,
  });
  const settings = settingsFor(config);
  const runtimes = pairs.map((p) => input.runtimes.get(p)!);
  const states = pairs.map((p) => initialPairState(p));
  const owners = pairs.map((p) => orderOwner(runId, p));
  /** each pair's admission slot, as the pair's driver keeps it (src/core/admission.ts) */
  const held: (HeldSlot | null)[] = pairs.map(() => null);
  const orders: OrderRow[] = [];
  const decisions = new DecisionLog(times.length * runtimes.length);
  const equity: EquityPoint[] = [];
  const captures: CycleCapture[] = [];
  let candleSteps = 0;
  let skippedSteps = 0;
  const skipped: SkippedCycles[] = [];
  const openSkips: (SkippedCycles | undefined)[] = pairs.map(() => undefined);
  let index = 0;

  for (let ti = 0; ti < times.length; ti++) {
    const t = times[ti]!;
    const final = ti === times.length - 1;
    for (let pi = 0; pi < runtimes.length; pi++, index++) {
      const rt = runtimes[pi]!;
      const missing = session.missingAt(rt.pair, t);
      if (missing !== null) {
        skippedSteps++;
        const open = openSkips[pi];
        if (open && open.timeframe === missing && open.to === times[ti - 1]) {
          open.to = t;
          open.cycles++;
        } else {
          skipped.push((openSkips[pi] = { pair: rt.pair, timeframe: missing, from: t, to: t, cycles: 1 }));
        }
        continue;
      }
      // at the last decision time: no new decision, every open position closed (see the module comment)
      const tick: CycleTick = { asOf: t, orderOwner: owners[pi]!, forceExit: final, paused: final };
      const state = states[pi]!;
      const capture: CycleCapture | null = captureAt?.has(index)
        ? {
            pair: rt.pair,
            tick,
            state,
            ledger: ledger.state(),
            book: structuredClone(book),
            closedTrades: closedTrades.slice(),
            learningDecisions: new Map([...learningDecisions].map(([k, v]) => [k, v.slice()])),
            events: [],
          }
        : null;
      let out;
      try {
        const cycle = runCycle(session.steps, state, tick, settings);
        out = isPending(cycle) ? await cycle : cycle;
      } catch (err) {
        throw new Error(
          `backtest stopped at ${rt.pair} ${iso(t)}: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      }
      candleSteps++;
      states[pi] = out.state;
      if (capture) {
        capture.events = out.events;
        captures.push(capture);
      }
      for (const ev of out.events) {
        if (ev.type === 'decision') {
          decisions.add(rt.pair, ev.record, ev.result, session.lastAccount()!, ev.clientOrderId);
          if (prompt) {
            let list = learningDecisions.get(rt.pair);
            if (!list) learningDecisions.set(rt.pair, (list = []));
            list.push({
              time: ev.record.time,
              tool: ev.record.tool,
              reason: ev.record.reason,
              pnlPct: ev.record.pnlPct,
            });
            if (list.length > LEARNING_DECISIONS) list.shift();
          }
          onDecision?.(rt.pair, ev, runId);
        } else if (ev.type === 'order') {
          orders.push(orderRow(t, ev));
        } else if (ev.type === 'admission') {
          held[pi] = slotAfterAdmission(held[pi]!, ev.request, ev.decision);
        } else {
          closedTrades.push(ev.trade);
        }
      }
      if (held[pi] !== null) {
        const after = slotAfterCycle(held[pi]!, out.state.position, rt.pair, owners[pi]!);
        if (after.settlement) settle(book, after.settlement);
        held[pi] = after.held;
      }
    }
    let open = 0;
    for (const s of states) if (s.position !== null) open++;
    equity.push({ time: t, equity: ledger.equity(), open_positions: open });
    if (onProgress && ((ti & 63) === 63 || final)) onProgress({ done: ti + 1, total: times.length });
  }
  return {
    runId,
    times: times.slice(),
    trades: closedTrades,
    orders,
    decisions,
    equity,
    states,
    ledger,
    candleSteps,
    skippedSteps,
    skipped,
    captures,
  };
}

function countersOf(state: PairState): PairCounters {
  const c = state.counters;
  return {
    pair: state.pair,
    cycles: c.cycles,
    decisions: c.decisions,
    entries: c.entries,
    exits: c.exits,
    adjustments: c.adjustments,
    holds: c.holds,
    waits: c.waits,
    rejections: c.rejections,
    protective_exits: c.protectiveExits,
    external_closes: c.externalCloses,
    execution_failures: c.executionFailures,
    fallbacks: c.fallbacks,
  };
}

const PROTECTIVE_REASONS = new Set(['emergency_stop', 'liquidation_buffer', 'stop']);

/** The metrics of a simulation (see metrics.ts for the conventions). */
export function simulationMetrics(sim: Simulation, config: Config): BacktestMetrics {
  const start = config.paper.starting_balance;
  const values = [start, ...sim.equity.map((p) => p.equity)];
  const returns = stepReturns(values);
  const periods = periodsPerYear(timeframeMs(config.timeframes.main));
  const stats = tradeStats(sim.trades);
  const totals = sim.ledger.totals();
  const { tokensIn, tokensOut, fallbacks, rejections } = sim.decisions.totals;
  return {
    starting_balance: start,
    final_equity: values[values.length - 1]!,
    total_return_pct: totalReturnPct(values),
    max_drawdown_pct: maxDrawdownPct(values),
    sharpe: sharpeRatio(returns, periods),
    sortino: sortinoRatio(returns, periods),
    trades: stats.trades,
    wins: stats.wins,
    losses: stats.losses,
    win_rate_pct: stats.winRatePct,
    profit_factor: stats.profitFactor,
    average_trade_pnl: stats.averagePnl,
    average_trade_pct: stats.averagePnlPct,
    exposure_pct: sharePct(sim.equity.map((p) => p.open_positions > 0)),
    fees: totals.fees,
    funding: totals.funding,
    liquidations: sim.ledger.liquidations().length,
    liquidation_losses: totals.liquidationLosses,
    protective_exits: sim.trades.filter((t) => PROTECTIVE_REASONS.has(t.exitReason)).length,
    decisions: sim.decisions.length,
    fallbacks,
    rejections,
    model_tokens_in: tokensIn,
    model_tokens_out: tokensOut,
    estimated_cost_usd:
      (tokensIn / 1e6) * config.llm.price_input_per_mtok + (tokensOut / 1e6) * config.llm.price_output_per_mtok,
  };
}

function comparisonRow(
  label: string,
  kind: ComparisonRow['kind'],
  pair: string | null,
  values: readonly number[],
  periods: number,
  trades: readonly { pnl: number; pnlPct: number }[],
): ComparisonRow {
  const stats = tradeStats(trades);
  const returns = stepReturns(values);
  return {
    label,
    kind,
    pair,
    final_equity: values[values.length - 1]!,
    total_return_pct: totalReturnPct(values),
    max_drawdown_pct: maxDrawdownPct(values),
    sharpe: sharpeRatio(returns, periods),
    sortino: sortinoRatio(returns, periods),
    trades: stats.trades,
    win_rate_pct: stats.winRatePct,
    profit_factor: stats.profitFactor,
  };
}

/**
 * Buy-and-hold of `runtime`'s pair over `times`: bought at the close of the first decision time, sold at the close
 * of the last, 1x, with the paper taker fee and slippage on both fills, no funding (see `buyAndHoldEquity`).
 */
export function buyAndHoldRow(
  runtime: PairRuntime,
  times: readonly number[],
  config: Config,
  periods: number,
): ComparisonRow {
  const main = runtime.cache.timeframes[0]!;
  const closes = times.map((t) => {
    const n = closedCount(main.candles, main.timeframeMs, t);
    return main.close[n - 1]!;
  });
  const values = buyAndHoldEquity(closes, {
    startingBalance: config.paper.starting_balance,
    fee: config.paper.taker_fee,
    slippage: config.paper.slippage,
  });
  const pnl = values[values.length - 1]! - values[0]!;
  return comparisonRow(`buy-and-hold ${runtime.pair}`, 'buy_and_hold', runtime.pair, values, periods, [
    { pnl, pnlPct: (pnl / values[0]!) * 100 },
  ]);
}

/** What a run needs before it starts: the loaded pairs, the decision times and the run id. */
export interface BacktestPlan {
  pairs: string[];
  runtimes: Map<string, PairRuntime>;
  times: number[];
  runId: string;
}

/**
 * Loads the pairs (series caches, once per market source) and works out the decision times and the run id, e.g. to
 * name an output folder before the run.
 * @throws Error when a pair has no data, or the range does not fit the data (see {@link decisionTimes})
 */
export async function planBacktest(
  opts: Pick<BacktestOptions, 'config' | 'market' | 'pairs' | 'from' | 'to' | 'policy'>,
): Promise<BacktestPlan> {
  const pairs = [...opts.pairs];
  const runtimes = await loadPairs(opts.market, opts.config, pairs);
  const times = decisionTimes(
    pairs.map((p) => runtimes.get(p)!),
    opts.config.timeframes.main,
    opts.from ?? null,
    opts.to ?? null,
  );
  const runId = backtestRunId(opts.config, pairs, times[0]!, times[times.length - 1]!, opts.policy.id);
  return { pairs, runtimes, times, runId };
}

/** What {@link runBacktest} returns: the result (result.json) and figures for the terminal. */
export interface BacktestRun {
  result: BacktestResult;
  /** decisions served from the decision cache in the policy's run (terminal only: not in the result) */
  cacheHits: number;
}

/**
 * Run a backtest: the policy over the range, the baseline beside it (unless the policy is the baseline or
 * `compareBaseline` is false), buy-and-hold of each pair, the metrics, and the look-ahead check when asked for.
 * @param prepared the plan from {@link planBacktest} for these options, when the caller made one (e.g. to name the
 *   output folder after the run id, or to run the same backtest repeatedly); planned here otherwise
 * @throws Error when the pairs or the range do not fit the data, or a step fails (see the module comment)
 */
export async function runBacktest(opts: BacktestOptions, prepared?: BacktestPlan): Promise<BacktestRun> {
  const { config, market, policy } = opts;
  const { pairs, runtimes, times, runId } = prepared ?? (await planBacktest(opts));
  const ordered = pairs.map((p) => runtimes.get(p)!);
  const from = times[0]!;
  const to = times[times.length - 1]!;
  const samples = opts.lookaheadSamples ?? 0;
  const captureAt = samples > 0 ? sampleIndexes(times.length * pairs.length, samples) : undefined;

  let cacheHits = 0;
  const sim = await simulate({
    config,
    market,
    runtimes,
    pairs,
    times,
    policy,
    runId,
    ...(captureAt ? { captureAt } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    onDecision: (pair, event, id) => {
      if (event.record.source === 'cache') cacheHits++;
      opts.onDecision?.(pair, event, id);
    },
  });

  const periods = periodsPerYear(timeframeMs(config.timeframes.main));
  const metrics = simulationMetrics(sim, config);
  const values = [config.paper.starting_balance, ...sim.equity.map((p) => p.equity)];
  const comparison: ComparisonRow[] = [
    comparisonRow(`policy ${policy.name}`, 'policy', null, values, periods, sim.trades),
  ];
  const compare = opts.compareBaseline ?? policy.id !== 'baseline';
  if (compare && policy.id !== 'baseline') {
    const baseline = baselinePolicy();
    const base = await simulate({
      config,
      market,
      runtimes,
      pairs,
      times,
      policy: baseline,
      runId: backtestRunId(config, pairs, from, to, baseline.id),
    });
    const baseValues = [config.paper.starting_balance, ...base.equity.map((p) => p.equity)];
    comparison.push(comparisonRow('baseline', 'baseline', null, baseValues, periods, base.trades));
  }
  for (const rt of ordered) comparison.push(buyAndHoldRow(rt, times, config, periods));

  let lookahead: LookaheadReport | null = null;
  if (captureAt) {
    const { checkLookahead } = await import('./lookahead');
    lookahead = await checkLookahead({ config, market, policy, captures: sim.captures });
  }

  const result: BacktestResult = {
    format: RESULT_FORMAT,
    run_id: runId,
    policy: { name: policy.name, id: policy.id },
    range: {
      from,
      to,
      main_timeframe: config.timeframes.main,
      informative_timeframes: informativeTimeframes(config),
      pairs,
      steps: times.length,
      candle_steps: sim.candleSteps,
      skipped_steps: sim.skippedSteps,
    },
    config: redactConfig({ ...config, pairs: [...pairs] }),
    metrics,
    comparison,
    counters: sim.states.map(countersOf),
    lookahead,
    dataQuality: dataQualityOf(ordered, sim.skipped, opts.skippedRows),
    replayLog: null,
    trades: sim.trades.map(tradeRow),
    orders: sim.orders,
    equity: sim.equity,
    decisions: sim.decisions,
  };
  return { result, cacheHits };
}

/**
 * The data quality of a run: every series it read (main and informative timeframes of each pair, as loaded: an
 * aggregated one shows the gaps of its source), and the pair-cycles skipped because a latest candle was missing.
 */
export function dataQualityOf(
  runtimes: readonly PairRuntime[],
  skipped: readonly SkippedCycles[],
  skippedRows?: (pair: string, timeframe: string) => number | null,
): DataQualityReport {
  const series: SeriesQuality[] = [];
  for (const rt of runtimes) {
    for (const tf of rt.cache.timeframes) {
      series.push(
        seriesQuality({
          pair: rt.pair,
          timeframe: tf.timeframe,
          times: tf.time,
          origin: rt.recorded === undefined || rt.recorded.includes(tf.timeframe) ? 'recorded' : 'aggregated',
          skippedRows: skippedRows ? skippedRows(rt.pair, tf.timeframe) : null,
        }),
      );
    }
  }
  return { series, skipped_cycles: skipped.map((s) => ({ ...s })) };
}

/**
 * `count` pair-cycle indexes spread evenly over `total` (the middle of each of `count` equal slices); all of them when
 * `count` >= `total`.
 */
export function sampleIndexes(total: number, count: number): Set<number> {
  const out = new Set<number>();
  if (count >= total) {
    for (let i = 0; i < total; i++) out.add(i);
    return out;
  }
  for (let k = 0; k < count; k++) out.add(Math.floor(((k + 0.5) * total) / count));
  return out;
}

/** result.json text: two-space indented JSON of the result and a final newline. */
export function resultJson(result: BacktestResult): string {
  return `${JSON.stringify(result, null, 2)}\n`;
}
