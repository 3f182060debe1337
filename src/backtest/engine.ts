/**
 * The backtester: runs the live decision cycle (`runCycle`, src/core/cycle.ts) over recorded candles, in process.
 *
 * The steps of the cycle
 * - fetchMarket: the snapshot from the pair's precomputed series (`mainSnapshotAt` plus the informative timeframes:
 *   closed candles only, O(tail), no tails for the baseline's light context); what `openTime` prepared for the pair at
 *   the decision time: the paper ledger advanced over the pair's main candles closed since its previous cycle (funding
 *   from the data's funding files, stop orders, liquidation) — the closes it made are the cycle's external closes —
 *   and the account after every pair's candles up to the decision time (every position marked at its last close);
 *   the market limits.
 * - buildContext: `light` for the baseline (snapshot and position only: no prompt is rendered or tokenised), else the
 *   live builder (`buildDecisionContext`) with a learning context from the run's own closed trades and decisions.
 * - decide: the policy's provider (a remote model's questions held until every pair's are built, see `simulate`).
 * - checkRisk: the core risk gate with `config.risk`, against the account as it is at the pair's turn; admit: the
 *   portfolio admission of the account workflow (src/core/admission.ts) on the run's one book; execute: a market
 *   order on the ledger, plus the protective stop kept as the live activities keep it (src/core/protective-stop.ts):
 *   placed with an entry at the intent's stop price (`<tradeId>s`), replaced after an increase or a reduction,
 *   cancelled when the trade is closed. All three run in the fixed pair order (execution-order.ts): this is where
 *   the pairs of a decision time meet on the shared account.
 *
 * The loop: for each main-timeframe close time t in the range (one global clock), one cycle per pair at asOf = t, in
 * three phases (see `simulate`): every pair's candles, then every pair's context and question, then the risk checks
 * and orders in the given pair order; all pairs share one account, and each pair owns its client order ids
 * (`<runId>/<pair>`, as a pair workflow does). After every pair's cycle at t, the equity is sampled. At the last
 * decision time no new decision is asked for and every open position is closed by the operator's force-exit path
 * (exit_reason `force_exit`), so every trade is in the result and the final equity is realised.
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
 * time, after every question in flight has its answer: the decision cache keeps what was decided, so a rerun resumes
 * cheaply. A `BacktestStop` (a dry run, the cost cap, the fallback alarm) stops it the same way, as itself.
 */
import { redactConfig, type Config } from '../core/config';
import type { DecisionContext } from '../core/context-types';
import {
  initialPairState,
  isPending,
  runCycle,
  type CycleEvent,
  type CycleResult,
  type CycleSettings,
  type ExecuteRequest,
  type RiskRequest,
  type CycleSteps,
  type CycleTick,
  type MarketView,
  type PairState,
  type Step,
} from '../core/cycle';
import { shortHash, stopOrderId } from '../core/ids';
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
  type AdmissionDecision,
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
import type { DecisionProvider, ProviderDecision } from '../llm/provider';
import { DecisionLog } from './decision-log';
import {
  breakdowns,
  decisionsSummary,
  equalWeightBenchmark,
  pairResults,
  pairWarmupEnd,
  tradableStart,
  warmupIndicators,
} from './analysis';
import { ExecutionOrder } from './execution-order';
import { llmUsage } from './llm-usage';
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
  type LlmUsage,
  type LookaheadReport,
  type OrderRow,
  type PairCounters,
  type ResultConfig,
  type StopRow,
  type TradablePeriod,
} from './result';

/** Decisions of a pair kept for the learning context's warnings (as the journal's window). */
const LEARNING_DECISIONS = 50;

/** Progress of a run: decision times done out of the total, and the decisions recorded so far. */
export interface BacktestProgress {
  done: number;
  total: number;
  /** the last decision time done */
  time: number;
  /** decisions recorded (protective and end-of-run exits included) */
  decisions: number;
  /** for a remote model: pair-cycles of the run that ask it (see {@link RequestPreview}); 0 otherwise */
  decisionSlots: number;
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
  /** called every 64 decision times of the policy's run (after every one for a remote model), and after the last */
  onProgress?: (progress: BacktestProgress) => void;
  /**
   * called with every decision of the policy's run, in order (by decision time, then pair); a `BacktestStop` thrown
   * here stops the run (e.g. the fallback alarm)
   */
  onDecision?: (pair: string, event: DecisionEvent, runId: string) => void;
  /**
   * for a remote model: called once, before the first request is sent (every question before it was answered from
   * the decision cache), with what is known then (see {@link RequestPreview}); a `BacktestStop` thrown here (a dry
   * run) stops the run before anything is sent
   */
  beforeFirstRequest?: (preview: RequestPreview) => void | Promise<void>;
  /**
   * for a remote model with a `prefetch` (openaiPolicy with a decision cache): while the last answers of a decision
   * time are outstanding, ask the next one's questions ahead on the guess that those answers place no order (see
   * `simulate`); the result is the same, the wall time shorter, and a wrong guess costs the requests asked for it
   */
  prefetch?: boolean;
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
  /** the order in which the pairs' risk checks and orders run at a decision time; absent: at once */
  order?: ExecutionOrder;
  /** holds the model questions of a decision time until all are built (remote models); absent: asked at once */
  held?: HeldQuestions;
  /** the run's portfolio admission book (default: an empty one); the driver settles it after each cycle */
  book?: AdmissionBook;
}

/** The in-process steps, and what the driver does around them. */
export interface Session {
  steps: CycleSteps;
  /**
   * Phase 1 of a decision time: brings the ledger to `asOf` for the first `count` of `entries` (their candles since
   * their previous cycle: stops, liquidations, funding) and fixes the account that all their contexts are built from.
   * A pair's fetchMarket at `asOf` then returns what was prepared for it.
   */
  openTime(asOf: number, entries: readonly OpenEntry[], count?: number): void;
  /** the account the pair's cycle at the last prepared time saw (its context's); null before any */
  accountSeen(pair: string): AccountSnapshot | null;
  /** the candles and funding the ledger was advanced with for the pair at the last prepared time */
  advanceInputs(pair: string): { candles: readonly Candle[]; funding: readonly FundingEvent[] } | null;
  /**
   * the account the risk checks, admissions and orders work on from now on: the ledger, and the admission book when
   * given (the look-ahead check's rerun, at the pair's turn)
   */
  useAccount(ledger: PaperLedger, book?: AdmissionBook): void;
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
  /** the decision time's start: the whole account before any pair's candles were processed, and those candles */
  open: { ledger: LedgerState; entries: OpenEntry[] };
  /**
   * the whole account at the pair's turn (after the orders of the pairs before it): the ledger and the portfolio
   * admission book; null until then
   */
  turn: { ledger: LedgerState; book: AdmissionBook } | null;
  /** closed trades before the decision time (learning) */
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
const EMPTY_ACCOUNT: AccountSnapshot = Object.freeze({
  equity: 0,
  available: 0,
  usedMargin: 0,
  positions: NO_CLOSES as unknown as AccountSnapshot['positions'],
  externalCloses: NO_CLOSES,
});
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
  const seen = new Set<string>();
  for (const pair of pairs) {
    if (seen.has(pair)) throw new Error(`backtest: pair ${pair} is listed twice; list each pair once`);
    seen.add(pair);
  }
  const load = (pair: string) => market.seriesCache(pair, config.timeframes.main, informative);
  // one pair ahead: its files are read and unzipped (off the main thread) while this one's are parsed and its
  // indicators computed. A failure is reported for the first failing pair in the order given.
  let next = pairs.length > 0 ? load(pairs[0]!) : null;
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    const current = next!;
    next = i + 1 < pairs.length ? load(pairs[i + 1]!) : null;
    // a failure of the pair ahead is reported at its turn (or not at all, when an earlier pair fails first)
    next?.catch(() => undefined);
    const cache = await current;
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

/** What one pair's cycle at a decision time starts from: its previous cycle time (the ledger moves on from there). */
export interface OpenEntry {
  pair: string;
  /** the pair's previous cycle time (`PairState.lastCycleAsOf`); null before its first */
  since: number | null;
  /**
   * the main candles and funding events to advance the ledger with, when given (the look-ahead check replays the
   * other pairs' exactly as the run had them); else read from the pair's data
   */
  given?: { candles: readonly Candle[]; funding: readonly FundingEvent[] };
}

/** A pair's side of a decision time, prepared by `openTime`: what its fetchMarket returns besides the snapshot. */
interface PreparedView {
  asOf: number;
  since: number | null;
  candlesSince: Candle[];
  funding: readonly FundingEvent[];
  fundingSince: number;
  account: AccountSnapshot;
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
  const { config, provider, snapshotOptions, prompt } = env;
  let ledger = env.ledger;
  const order = env.order ?? null;
  const held = env.held ?? null;
  const mainMs = timeframeMs(config.timeframes.main);
  let book = env.book ?? emptyBook();
  const memos = new Map<string, PairMemo>();
  const views = new Map<string, PreparedView>();
  const memoOf = (pair: string): PairMemo => {
    let memo = memos.get(pair);
    if (!memo) {
      const rt = env.pairs.get(pair);
      if (!rt) throw new Error(`backtest: no data loaded for ${pair}`);
      memos.set(pair, (memo = pairMemo(rt.cache)));
    }
    return memo;
  };

  /** Main candles closed at `asOf`, checked to include the one closing exactly then. */
  const closedMain = (pair: string, asOf: number): number => {
    const memo = memoOf(pair);
    const main = memo.cache.timeframes[0]!;
    const n = memo.cursor.closedAt(asOf);
    if (n === 0 || main.time[n - 1]! + main.timeframeMs !== asOf) {
      throw new Error(`backtest: no ${main.timeframe} candle of ${pair} closes at ${iso(asOf)} in the data`);
    }
    return n;
  };

  const openTime = (asOf: number, entries: readonly OpenEntry[], count = entries.length): void => {
    const closes: (readonly ExternalClose[])[] = [];
    for (let i = 0; i < count; i++) {
      const entry = entries[i]!;
      const { pair, since } = entry;
      let candlesSince: Candle[];
      let funding: readonly FundingEvent[];
      if (entry.given) {
        candlesSince = entry.given.candles as Candle[];
        funding = entry.given.funding;
      } else {
        const rt = env.pairs.get(pair);
        if (!rt) throw new Error(`backtest: no data loaded for ${pair}`);
        const n = closedMain(pair, asOf);
        const time = rt.cache.timeframes[0]!.time;
        const from = since ?? asOf - mainMs;
        let k = n;
        while (k > 0 && time[k - 1]! + mainMs > from) k--;
        candlesSince = rt.cache.timeframes[0]!.candles.slice(k, n) as Candle[];
        funding = ledger.hasExposure(pair)
          ? rt.funding.slice(upperBoundByTime(rt.funding, from), upperBoundByTime(rt.funding, asOf))
          : NO_FUNDING;
      }
      const chargesBefore = ledger.fundingCharges().length;
      closes.push(ledger.advance(pair, candlesSince, funding, mainMs));
      const charges = ledger.fundingCharges();
      let fundingSince = 0;
      for (let c = chargesBefore; c < charges.length; c++) fundingSince += charges[c]!.amount;
      let view = views.get(pair);
      if (!view) views.set(pair, (view = { asOf, since, candlesSince, funding, fundingSince, account: EMPTY_ACCOUNT }));
      view.asOf = asOf;
      view.since = since;
      view.candlesSince = candlesSince;
      view.funding = funding;
      view.fundingSince = fundingSince;
    }
    // the account every pair deciding at asOf sees: after every pair's candles up to asOf, before any order at asOf
    const positions = ledger.positions();
    let usedMargin = 0;
    for (const p of positions) usedMargin += p.margin;
    const shared: AccountSnapshot = {
      equity: ledger.equity(),
      available: ledger.cash,
      usedMargin,
      positions,
      externalCloses: NO_CLOSES,
    };
    for (let i = 0; i < count; i++) {
      const own = closes[i]!;
      views.get(entries[i]!.pair)!.account =
        own.length > 0 ? { ...shared, externalCloses: (own as ExternalClose[]).slice() } : shared;
    }
  };

  /** The account as it is now (at a pair's turn: after the orders of every pair before it). */
  const accountNow = (): AccountSnapshot => {
    const positions = ledger.positions();
    let usedMargin = 0;
    for (const p of positions) usedMargin += p.margin;
    return { equity: ledger.equity(), available: ledger.cash, usedMargin, positions, externalCloses: NO_CLOSES };
  };

  /**
   * The risk gate at the pair's turn, against the account as the orders of every pair before it left it (not the
   * account the context was built from: a risk limit holds across pairs deciding at the same close).
   */
  const riskAtTurn = (req: RiskRequest): Verdict =>
    checkRisk({ ...req, account: accountNow(), risk: config.risk, market: req.limits });

  /** An order at the pair's turn: a market order on the ledger, with the protective stop of an entry. */
  const orderAtTurn = (req: ExecuteRequest): Execution => {
    const { intent, clientOrderId, asOf } = req;
    const adds = intent.kind === 'open' || intent.kind === 'increase';
    const buy = adds === (intent.side === 'long');
    let placed;
    try {
      placed = ledger.placeMarketOrder({
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
    return { clientOrderId, status: 'filled', fills: placed.fills, position, error: null, stopOrderId };
  };

  const steps: CycleSteps = {
    fetchMarket({ pair, asOf, since }): MarketView {
      const rt = env.pairs.get(pair);
      if (!rt) throw new Error(`backtest: no data loaded for ${pair}`);
      let view = views.get(pair);
      if (view === undefined || view.asOf !== asOf || view.since !== since) {
        // a cycle run on its own (tests, a look-ahead rerun without a prepared decision time)
        openTime(asOf, [{ pair, since }]);
        view = views.get(pair)!;
      }
      const snapshot = memoSnapshotAt(memoOf(pair), closedMain(pair, asOf), snapshotOptions);
      return {
        snapshot,
        account: view.account,
        candlesSince: view.candlesSince,
        fundingSince: view.fundingSince,
        limits: rt.limits,
      };
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
      return held ? held.add(ctx) : provider.decide(ctx);
    },

    checkRisk(req): Step<Verdict> {
      return order ? order.at(req.snapshot.pair, () => riskAtTurn(req)) : riskAtTurn(req);
    },

    // the same portfolio admission as the account workflow, on the run's one book, at the pair's turn
    admit(req): Step<AdmissionDecision> {
      return order ? order.at(req.pair, () => admit(book, req)) : admit(book, req);
    },

    execute(req): Step<Execution> {
      return order ? order.at(req.intent.pair, () => orderAtTurn(req)) : orderAtTurn(req);
    },
  };
  return {
    steps,
    openTime,
    accountSeen(pair) {
      return views.get(pair)?.account ?? null;
    },
    advanceInputs(pair) {
      const view = views.get(pair);
      return view ? { candles: view.candlesSince, funding: view.funding } : null;
    },
    useAccount(nextLedger, nextBook) {
      ledger = nextLedger;
      if (nextBook) book = nextBook;
    },
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

/**
 * The configuration as a result records it: secrets masked, `pairs` as run, and without the settings that only steer
 * the run (`backtest`: concurrency and the fallback alarm; `llm.max_cost_usd`; `llm.cache`), which never change a
 * result: a run at another concurrency, or resumed after a cost cap, is the same run.
 */
export function resultConfig(config: Config, pairs: readonly string[]): ResultConfig {
  const { backtest: _backtest, ...rest } = redactConfig({ ...config, pairs: [...pairs] });
  const { max_cost_usd: _maxCost, cache: _cache, ...llm } = rest.llm;
  return { ...rest, llm };
}

/** `bt-` + 12 hex characters of a hash of the result's config (see {@link resultConfig}), pairs, range and policy id. */
export function backtestRunId(
  config: Config,
  pairs: readonly string[],
  from: number,
  to: number,
  policyId: string,
): string {
  const effective = resultConfig(config, pairs);
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

/** The model questions of one decision time, held until every pair's context is built, then sent in pair order. */
export class HeldQuestions {
  private held: {
    ctx: DecisionContext;
    resolve: (result: ProviderDecision) => void;
    reject: (err: unknown) => void;
  }[] = [];

  /**
   * @param hooks `sent`: a question went to the provider; `settled`: its answer (or failure) came back — called right
   *   after the cycle waiting for it was handed the answer
   */
  constructor(
    private readonly provider: DecisionProvider,
    private readonly hooks: { sent?: (pair: string) => void; settled?: (pair: string) => void } = {},
  ) {}

  get size(): number {
    return this.held.length;
  }

  /** Holds a question; the promise settles with the provider's answer once the question is sent. */
  add(ctx: DecisionContext): Promise<ProviderDecision> {
    return new Promise((resolve, reject) => this.held.push({ ctx, resolve, reject }));
  }

  /** The held questions' contexts, in the order they were asked. */
  contexts(): DecisionContext[] {
    return this.held.map((h) => h.ctx);
  }

  /** Sends every held question to the provider, in the order asked. */
  send(): void {
    const held = this.held;
    this.held = [];
    for (const h of held) {
      let answer: Promise<ProviderDecision>;
      try {
        answer = Promise.resolve(this.provider.decide(h.ctx));
      } catch (err) {
        answer = Promise.reject(err);
      }
      this.hooks.sent?.(h.ctx.pair);
      answer.then(
        (result) => {
          h.resolve(result);
          this.hooks.settled?.(h.ctx.pair);
        },
        (err: unknown) => {
          h.reject(err);
          this.hooks.settled?.(h.ctx.pair);
        },
      );
    }
  }

  /** Sends none of them: every held question fails with `err`. */
  fail(err: unknown): void {
    const held = this.held;
    this.held = [];
    for (const h of held) h.reject(err);
  }
}

/**
 * What is known before the first request to a remote model is sent (after every question before it was answered
 * from the decision cache): the decision time it is at, the prompts about to go out, and what is left of the run.
 */
export interface RequestPreview {
  /** the decision time of the first request */
  time: number;
  /** index of that time among the run's decision times, and their number */
  timeIndex: number;
  times: number;
  /** pairs of the run */
  pairs: number;
  /**
   * pair-cycles of the whole run that ask the model (every decision time but the last, where positions are closed
   * without asking): an upper bound of the model decisions, as a protective exit asks none
   */
  decisionSlots: number;
  /** of them, those from this decision time on */
  remainingSlots: number;
  /** questions answered from the decision cache before this time, and at it */
  cachedBefore: number;
  cachedNow: number;
  /** the output tokens of the answers from the cache before this time (as originally answered): answer length */
  cachedOutputTokens: number;
  /** the questions of this time that go to the model: the size of each prompt (as built) and its kind */
  prompts: { tokens: number | null; hasPosition: boolean }[];
}

/** Thrown by a hook or a provider to stop a run on purpose (a dry run, a cost cap, a fallback alarm); never wrapped. */
export class BacktestStop extends Error {
  constructor(
    readonly kind: 'dry-run' | 'cost-cap' | 'fallbacks',
    message: string,
  ) {
    super(message);
    this.name = 'BacktestStop';
  }
}

/** Pair-cycles at each decision time of `times`: pairs whose latest candles are all recorded then (see missingAt). */
function cyclesPerTime(runtimes: readonly PairRuntime[], times: readonly number[]): Int32Array {
  const counts = new Int32Array(times.length);
  for (const rt of runtimes) {
    for (let i = 0; i < times.length; i++) if (latestCandleMissing(rt, times[i]!) === null) counts[i]!++;
  }
  return counts;
}

/**
 * One run of `policy` over `times`: the cycles, the collected rows, the equity curve; captures the pair-cycles at
 * the step indexes in `captureAt` (pair-cycle index over the grid times × pairs) for the look-ahead check; an index
 * whose pair-cycle is skipped (a missing candle) is taken at one of that pair's next cycles.
 *
 * A decision time, in three phases:
 * 1. `openTime`: every pair with a candle closing then has its candles since its previous cycle processed (stops,
 *    liquidations, funding), in pair order; then the account is fixed, and every pair's context is built from it.
 * 2. Every pair's cycle starts: protective rules, context, the question to the provider. A remote model's questions
 *    are held until all are built, then sent together (the provider's scheduler runs them concurrently).
 * 3. The risk checks and orders run in the fixed pair order ({@link ExecutionOrder}), each at its pair's turn, as the
 *    answers arrive; then the decisions are recorded in pair order and the learning context of the next decision
 *    time gets this one's closed trades and decisions.
 * Nothing of a decision time depends on the order in which the answers arrive, so the result is the same at any
 * concurrency. When every step answers at once (the baseline), a decision time runs through without a promise.
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
  beforeFirstRequest?: (preview: RequestPreview) => void | Promise<void>;
  /** ask the next decision time's questions ahead (see {@link BacktestOptions.prefetch}) */
  prefetch?: boolean;
}): Promise<Simulation> {
  const { config, pairs, times, policy, runId, captureAt, onProgress, onDecision } = input;
  const ledger = new PaperLedger(config.paper);
  const closedTrades: ClosedTrade[] = [];
  const learningDecisions = new Map<string, WarningRecord[]>();
  const prompt = policy.context === 'prompt' ? await import('../llm/context-builder') : null;
  const provider = policy.provider(input.market);
  const order = new ExecutionOrder(pairs);
  const indexOf = new Map(pairs.map((p, i) => [p, i]));
  /** 1 while the pair's question of the current decision time is with the model */
  const awaiting = new Uint8Array(pairs.length);
  const prefetching = policy.remote && input.prefetch === true && policy.prefetch !== undefined;
  /** the prefetch of the current decision time, until it is done (null: none, or done) */
  let guess: (() => void) | null = null;
  let guessTimer: NodeJS.Timeout | null = null;
  const sentAt = new Float64Array(pairs.length);
  /** the mean time from a question's sending to its answer, ms (its first sample: 0) */
  let latency = { sum: 0, count: 0 };
  /**
   * Answers come in bursts (the questions sent together come back together): the prefetch waits for the burst to be
   * taken in — a twentieth of the mean answer time, 1 to 50 ms — so that it guesses only about the stragglers.
   */
  const nudge = (): void => {
    if (guess === null || guessTimer !== null) return;
    const wait = Math.min(50, Math.max(1, latency.count > 0 ? latency.sum / latency.count / 20 : 1));
    guessTimer = setTimeout(() => {
      guessTimer = null;
      guess?.();
    }, wait);
  };
  const asking = policy.remote
    ? new HeldQuestions(provider, {
        sent: (pair) => {
          const i = indexOf.get(pair)!;
          awaiting[i] = 1;
          sentAt[i] = performance.now();
        },
        settled: (pair) => {
          const i = indexOf.get(pair)!;
          awaiting[i] = 0;
          latency = { sum: latency.sum + (performance.now() - sentAt[i]!), count: latency.count + 1 };
          nudge();
        },
      })
    : null;
  const book = emptyBook();
  const session = createSession({
    config,
    ledger,
    book,
    pairs: input.runtimes,
    provider,
    prompt,
    snapshotOptions: snapshotOptionsFor(config, policy.context),
    closedTrades,
    learningDecisions,
    order,
    ...(asking ? { held: asking } : {}),
  });
  const settings = settingsFor(config);
  const runtimes = pairs.map((p) => input.runtimes.get(p)!);
  /**
   * As the turn moves past a pair (in pair order, before the next pair's risk check or order): its admission answers
   * update its slot, and the slot is settled from its position, as a pair's driver does after its cycle.
   */
  order.onPassed = (pi) => {
    const out = outs[pi] ?? null;
    if (out === null) return;
    for (const ev of out.events) {
      if (ev.type === 'admission') slots[pi] = slotAfterAdmission(slots[pi]!, ev.request, ev.decision);
    }
    if (slots[pi] !== null) {
      const after = slotAfterCycle(slots[pi]!, out.state.position, runtimes[pi]!.pair, owners[pi]!);
      if (after.settlement) settle(book, after.settlement);
      slots[pi] = after.held;
    }
  };
  const states = pairs.map((p) => initialPairState(p));
  const owners = pairs.map((p) => orderOwner(runId, p));
  /** each pair's admission slot, as the pair's driver keeps it (src/core/admission.ts) */
  const slots: (HeldSlot | null)[] = pairs.map(() => null);
  const orders: OrderRow[] = [];
  const decisions = new DecisionLog(times.length * runtimes.length);
  const equity: EquityPoint[] = [];
  const captures: CycleCapture[] = [];
  const n = runtimes.length;
  const cycles = new Array<boolean>(n).fill(false);
  const outs = new Array<CycleResult | null>(n).fill(null);
  const pending = new Array<Promise<void> | null>(n).fill(null);
  const entries: OpenEntry[] = runtimes.map((rt) => ({ pair: rt.pair, since: null }));
  const timeCaptures = new Array<CycleCapture | null>(n).fill(null);
  /** per pair, the look-ahead samples that fell on its skipped pair-cycles (a missing candle), not yet taken */
  const captureOwed = new Uint32Array(n);
  const perTime = asking ? cyclesPerTime(runtimes, times) : null;
  let slotsLeft = 0;
  if (perTime) for (let i = 0; i < times.length - 1; i++) slotsLeft += perTime[i]!;
  const decisionSlots = slotsLeft;
  let previewed = input.beforeFirstRequest === undefined;
  let cachedAnswers = 0;
  let cachedOutputTokens = 0;
  let candleSteps = 0;
  let skippedSteps = 0;

  /**
   * The prefetch of the decision time after `ti` (`prefetch`): when the only cycles of `ti` not finished are a few
   * pairs waiting for their model's answers (at most half of the pairs, at least one), the next decision time is built
   * as it will be if none of those answers places an order (a hold, a wait, a rejection: the account stays as it is),
   * on a copy of everything, and its questions — of every other pair — are asked ahead, on request places nothing else
   * is waiting for. When the guess
   * holds, the real questions are the same prompts and get those answers (the decision cache joins them); when it
   * does not, they are other prompts and are asked then: the prefetched answers are paid for and unused. Either way
   * the result is that of a run without prefetching.
   */
  const prefetchAfter = (ti: number): void => {
    const t = times[ti]!;
    const next = times[ti + 1]!;
    let still = 0;
    for (let pi = 0; pi < n; pi++) {
      if (!cycles[pi] || outs[pi] !== null) continue;
      // answered but not finished (its turn has not come), or not asking: its order may still change the account
      if (awaiting[pi] === 0) return;
      const pair = runtimes[pi]!.pair;
      const seen = session.accountSeen(pair)!;
      // its cycle closed a trade before asking (a stop, a liquidation): the next prompts of other pairs show it
      if (seen.externalCloses.length > 0) return;
      if (states[pi]!.position !== null && !seen.positions.some((p) => p.pair === pair)) return;
      still++;
    }
    // a guess about more answers fails more often (any of them may place an order): at most half of the pairs. With
    // more pairs than request places, one prefetch waits each decision time and the number of outstanding answers
    // grows by one; half the pairs lets that run for several decision times before a full round resets it (measured:
    // 17 pairs at concurrency 16 took 1.48x the ideal time with at most one, 1.31x with four, 1.22x with eight)
    if (still === 0 || still > Math.max(1, Math.floor(n / 2))) return;
    guess = null;
    const forkTrades = closedTrades.slice();
    const forkLearning = new Map([...learningDecisions].map(([k, v]) => [k, v.slice()]));
    const forkStates = states.slice();
    for (let pi = 0; pi < n; pi++) {
      if (!cycles[pi]) continue;
      const out = outs[pi] ?? null;
      if (out === null) {
        forkStates[pi] = { ...states[pi]!, lastCycleAsOf: t };
        continue;
      }
      forkStates[pi] = out.state;
      for (const ev of out.events) {
        if (ev.type === 'tradeClosed') forkTrades.push(ev.trade);
        else if (ev.type === 'decision') {
          let list = forkLearning.get(runtimes[pi]!.pair);
          if (!list) forkLearning.set(runtimes[pi]!.pair, (list = []));
          list.push({ time: ev.record.time, tool: ev.record.tool, reason: ev.record.reason, pnlPct: ev.record.pnlPct });
          if (list.length > LEARNING_DECISIONS) list.shift();
        }
      }
    }
    // never sent: the questions are read, and their cycles are left waiting (and dropped)
    const questions = new HeldQuestions(provider);
    const fork = createSession({
      config,
      ledger: PaperLedger.restore(config.paper, ledger.state()),
      pairs: input.runtimes,
      provider,
      prompt,
      snapshotOptions: snapshotOptionsFor(config, policy.context),
      closedTrades: forkTrades,
      learningDecisions: forkLearning,
      held: questions,
    });
    try {
      const ahead: OpenEntry[] = [];
      const closing: number[] = [];
      for (let pi = 0; pi < n; pi++) {
        if (fork.missingAt(runtimes[pi]!.pair, next) !== null) continue;
        ahead.push({ pair: runtimes[pi]!.pair, since: forkStates[pi]!.lastCycleAsOf });
        closing.push(pi);
      }
      fork.openTime(next, ahead);
      for (const pi of closing) {
        if (outs[pi] === null) continue;
        const tick: CycleTick = { asOf: next, orderOwner: owners[pi]!, forceExit: false, paused: false };
        // stops at its question, which is never answered: what is wanted is the question
        void runCycle(fork.steps, forkStates[pi]!, tick, settings);
      }
    } catch {
      // a guess that cannot be built is no guess: the next decision time asks as usual
      return;
    }
    for (const ctx of questions.contexts()) policy.prefetch!(ctx);
  };

  /** Waits for every cycle of the decision time, then throws the first failure in pair order, if any. */
  const settleTime = async (failed: unknown = undefined): Promise<void> => {
    const results = await Promise.allSettled(pending.map((p) => p ?? Promise.resolve()));
    let first: { err: unknown } | null = failed === undefined ? null : { err: failed };
    for (let pi = 0; pi < n && first === null; pi++) {
      const r = results[pi]!;
      if (r.status === 'rejected') first = { err: r.reason };
    }
    if (first !== null) throw first.err;
  };

  /** The error a failed step stops the run with: a deliberate stop as it is, anything else naming the pair and time. */
  const raised = new WeakSet<object>();
  const stopped = (pi: number, t: number, err: unknown): unknown => {
    if (err instanceof BacktestStop || (typeof err === 'object' && err !== null && raised.has(err))) return err;
    const wrapped = new Error(
      `backtest stopped at ${runtimes[pi]!.pair} ${iso(t)}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
    raised.add(wrapped);
    return wrapped;
  };
  const skipped: SkippedCycles[] = [];
  const openSkips: (SkippedCycles | undefined)[] = pairs.map(() => undefined);

  for (let ti = 0; ti < times.length; ti++) {
    const t = times[ti]!;
    const final = ti === times.length - 1;
    const base = ti * n;
    // 1. the account at t, which every context at t is built from
    let open = 0;
    let captureHere = false;
    for (let pi = 0; pi < n; pi++) {
      const rt = runtimes[pi]!;
      outs[pi] = null;
      pending[pi] = null;
      timeCaptures[pi] = null;
      const missing = session.missingAt(rt.pair, t);
      cycles[pi] = missing === null;
      if (missing !== null) {
        skippedSteps++;
        // a sample that falls on a skipped pair-cycle moves to the pair's next cycle that runs (one each)
        if (captureAt?.has(base + pi)) captureOwed[pi]!++;
        const open = openSkips[pi];
        if (open && open.timeframe === missing && open.to === times[ti - 1]) {
          open.to = t;
          open.cycles++;
        } else {
          skipped.push((openSkips[pi] = { pair: rt.pair, timeframe: missing, from: t, to: t, cycles: 1 }));
        }
        continue;
      }
      const entry = entries[open++]!;
      entry.pair = rt.pair;
      entry.since = states[pi]!.lastCycleAsOf;
      if (captureAt?.has(base + pi) || captureOwed[pi]! > 0) captureHere = true;
    }
    const openLedger = captureHere ? ledger.state() : null;
    session.openTime(t, entries, open);
    const openCapture = openLedger
      ? {
          ledger: openLedger,
          entries: entries
            .slice(0, open)
            .map((e) => ({ pair: e.pair, since: e.since, given: session.advanceInputs(e.pair)! })),
        }
      : null;
    order.onTurn = openCapture
      ? (pi) => {
          const c = timeCaptures[pi];
          if (c && c.turn === null) c.turn = { ledger: ledger.state(), book: structuredClone(book) };
        }
      : null;
    if (openCapture) {
      for (let pi = 0; pi < n; pi++) {
        if (!cycles[pi]) continue;
        if (!captureAt!.has(base + pi)) {
          if (captureOwed[pi] === 0) continue;
          captureOwed[pi]!--;
        }
        timeCaptures[pi] = {
          pair: runtimes[pi]!.pair,
          tick: { asOf: t, orderOwner: owners[pi]!, forceExit: final, paused: final },
          state: states[pi]!,
          open: openCapture,
          turn: null,
          closedTrades: closedTrades.slice(),
          learningDecisions: new Map([...learningDecisions].map(([k, v]) => [k, v.slice()])),
          events: [],
        };
      }
    }
    order.begin(cycles);
    const guessHere = prefetching && ti + 1 < times.length - 1 ? () => prefetchAfter(ti) : null;
    guess = null;

    // 2. every pair's cycle, up to its question (or through, when its steps answer at once and its turn has come)
    let waiting = 0;
    for (let pi = 0; pi < n; pi++) {
      if (!cycles[pi]) continue;
      // at the last decision time: no new decision, every open position closed (see the module comment)
      const tick: CycleTick = timeCaptures[pi]?.tick ?? {
        asOf: t,
        orderOwner: owners[pi]!,
        forceExit: final,
        paused: final,
      };
      let cycle;
      try {
        cycle = runCycle(session.steps, states[pi]!, tick, settings);
      } catch (err) {
        const stop = stopped(pi, t, err);
        order.abort(stop);
        asking?.fail(stop);
        await settleTime(stop);
        throw stop;
      }
      if (isPending(cycle)) {
        waiting++;
        const index = pi;
        pending[pi] = cycle.then(
          (out) => {
            outs[index] = out;
            order.finish(index);
            nudge();
          },
          (err: unknown) => {
            const stop = stopped(index, t, err);
            order.abort(stop);
            throw stop;
          },
        );
      } else {
        outs[pi] = cycle;
        order.finish(pi);
      }
    }

    // 3. the questions go out; the risk checks and orders run in pair order as the answers come in
    if (waiting > 0) {
      if (asking && asking.size > 0) {
        const asked = asking.contexts();
        if (!previewed && asked.some((ctx) => !policy.isCached?.(ctx))) {
          previewed = true;
          const toSend = asked.filter((ctx) => !policy.isCached?.(ctx));
          try {
            await input.beforeFirstRequest!({
              time: t,
              timeIndex: ti,
              times: times.length,
              pairs: n,
              decisionSlots,
              remainingSlots: slotsLeft,
              cachedBefore: cachedAnswers,
              cachedNow: asked.length - toSend.length,
              cachedOutputTokens,
              prompts: toSend.map((ctx) => ({ tokens: ctx.tokens, hasPosition: ctx.hasPosition })),
            });
          } catch (err) {
            order.abort(err);
            asking.fail(err);
            await settleTime(err);
          }
        }
        guess = guessHere;
        asking.send();
      }
      await settleTime();
      guess = null;
      if (guessTimer !== null) clearTimeout(guessTimer);
      guessTimer = null;
    }
    order.end();
    if (perTime && !final) slotsLeft -= perTime[ti]!;

    // the decision time's records, in pair order; the next decision time's learning context gets them
    for (let pi = 0; pi < n; pi++) {
      if (!cycles[pi]) continue;
      const rt = runtimes[pi]!;
      const out = outs[pi]!;
      candleSteps++;
      states[pi] = out.state;
      const capture = timeCaptures[pi];
      if (capture) {
        capture.events = out.events;
        captures.push(capture);
      }
      for (const ev of out.events) {
        if (ev.type === 'decision') {
          decisions.add(rt.pair, ev.record, ev.result, session.accountSeen(rt.pair)!, ev.clientOrderId);
          const provided = ev.result as ProviderDecision | null;
          if (provided?.cached) {
            cachedAnswers++;
            cachedOutputTokens += (provided.originalUsage ?? provided.usage).output;
          }
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
        } else if (ev.type === 'tradeClosed') {
          closedTrades.push(ev.trade);
        }
      }
    }
    let openPositions = 0;
    for (const st of states) if (st.position !== null) openPositions++;
    equity.push({ time: t, equity: ledger.equity(), open_positions: openPositions });
    if (onProgress && (asking !== null || (ti & 63) === 63 || final)) {
      onProgress({ done: ti + 1, total: times.length, time: t, decisions: decisions.length, decisionSlots });
    }
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

/**
 * The account values measured from decision time index `from` on: the value before it (the account at the previous
 * decision time, or the starting balance), then one per decision time.
 */
function measuredValues(sim: Simulation, config: Config, from: number): number[] {
  const start = from === 0 ? config.paper.starting_balance : sim.equity[from - 1]!.equity;
  const values = [start];
  for (let i = from; i < sim.equity.length; i++) values.push(sim.equity[i]!.equity);
  return values;
}

/**
 * The metrics of a simulation (see metrics.ts for the conventions), over the decision times from index `from` (the
 * tradable period; 0: all of them). Trade figures count every trade: none comes before the period.
 */
export function simulationMetrics(
  sim: Simulation,
  config: Config,
  llm: LlmUsage | null = null,
  from = 0,
): BacktestMetrics {
  const start = config.paper.starting_balance;
  const values = measuredValues(sim, config, from);
  const returns = stepReturns(values);
  const periods = periodsPerYear(timeframeMs(config.timeframes.main));
  const stats = tradeStats(sim.trades);
  const totals = sim.ledger.totals();
  const { tokensIn, tokensOut, fallbacks, rejections } = sim.decisions.totals;
  const finalEquity = values[values.length - 1]!;
  return {
    starting_balance: start,
    final_equity: finalEquity,
    net_pnl: finalEquity - start,
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
    exposure_pct: sharePct(sim.equity.slice(from).map((p) => p.open_positions > 0)),
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
    estimated_cost_usd: llm ? llm.cost_usd : 0,
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

/** The pair's close at each of `times` (the last candle closed by then). */
function closesAt(runtime: PairRuntime, times: readonly number[]): number[] {
  const main = runtime.cache.timeframes[0]!;
  return times.map((t) => {
    const n = closedCount(main.candles, main.timeframeMs, t);
    return main.close[n - 1]!;
  });
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
  const values = buyAndHoldEquity(closesAt(runtime, times), {
    startingBalance: config.paper.starting_balance,
    fee: config.paper.taker_fee,
    slippage: config.paper.slippage,
  });
  const pnl = values[values.length - 1]! - values[0]!;
  return comparisonRow(`buy-and-hold ${runtime.pair}`, 'buy_and_hold', runtime.pair, values, periods, [
    { pnl, pnlPct: (pnl / values[0]!) * 100 },
  ]);
}

/**
 * The tradable period of a run (see {@link TradablePeriod}): from the first decision time at which every pair's
 * warm-up indicators have values, or from the policy's first entry when that comes earlier.
 */
export function tradablePeriod(
  runtimes: readonly PairRuntime[],
  times: readonly number[],
  firstEntry: number | null,
): { index: number; period: TradablePeriod } {
  let warmupEnd: number | null = times[0]!;
  for (const rt of runtimes) {
    const end = pairWarmupEnd(rt.cache, times);
    if (end === null) {
      warmupEnd = null;
      break;
    }
    if (end > warmupEnd) warmupEnd = end;
  }
  const { index, reason } = tradableStart(times, warmupEnd, firstEntry);
  return {
    index,
    period: {
      from: times[index]!,
      to: times[times.length - 1]!,
      steps: times.length - index,
      reason,
      warmup_end: warmupEnd,
      warmup_indicators: runtimes.length > 0 ? warmupIndicators(runtimes[0]!.cache) : [],
    },
  };
}

/** The protective stops of a simulation, in the order placed, with the trade each protected. */
function stopRows(sim: Simulation): StopRow[] {
  const tradeOf = new Map<string, string>();
  for (const t of sim.trades) for (const id of t.clientOrderIds) tradeOf.set(stopOrderId(id), t.tradeId);
  const last = sim.times[sim.times.length - 1]!;
  return sim.ledger
    .state()
    .orders.filter((o) => o.kind === 'stop' && o.stopPrice !== null)
    .map((o) => ({
      pair: o.pair,
      client_order_id: o.clientOrderId,
      trade_id: tradeOf.get(o.clientOrderId) ?? o.clientOrderId.replace(/s$/, ''),
      from: o.time,
      to: o.status === 'open' ? last : o.updatedAt,
      stop_price: o.stopPrice!,
      quantity: o.quantity,
      status: o.status === 'filled' ? 'filled' : o.status === 'open' ? 'open' : 'canceled',
    }));
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

/** What {@link runBacktest} returns: the result (result.json), the policy's decisions and figures for the terminal. */
export interface BacktestRun {
  result: BacktestResult;
  /** every decision of the policy's run (the decision log is their record; result.json holds their aggregates) */
  decisions: DecisionLog;
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
    ...(opts.beforeFirstRequest ? { beforeFirstRequest: opts.beforeFirstRequest } : {}),
    ...(opts.prefetch ? { prefetch: true } : {}),
    onDecision: (pair, event, id) => {
      if ((event.result as ProviderDecision | null)?.cached) cacheHits++;
      opts.onDecision?.(pair, event, id);
    },
  });

  const periods = periodsPerYear(timeframeMs(config.timeframes.main));
  const llm = policy.remote ? llmUsage(sim.decisions, config) : null;
  const firstEntry = sim.trades.reduce<number | null>(
    (m, t) => (m === null || t.entryTime < m ? t.entryTime : m),
    null,
  );
  const { index: first, period } = tradablePeriod(ordered, times, firstEntry);
  const metrics = simulationMetrics(sim, config, llm, first);
  const measured = times.slice(first);
  const comparison: ComparisonRow[] = [
    comparisonRow(`policy ${policy.name}`, 'policy', null, measuredValues(sim, config, first), periods, sim.trades),
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
    const baseValues = measuredValues(base, config, first);
    comparison.push(comparisonRow('baseline', 'baseline', null, baseValues, periods, base.trades));
  }
  const costs = {
    startingBalance: config.paper.starting_balance,
    fee: config.paper.taker_fee,
    slippage: config.paper.slippage,
  };
  const benchmark = equalWeightBenchmark(
    pairs,
    ordered.map((rt) => closesAt(rt, measured)),
    measured,
    costs,
    periods,
  );
  for (const rt of ordered) comparison.push(buyAndHoldRow(rt, measured, config, periods));
  const trades = sim.trades.map(tradeRow);

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
    period,
    config: resultConfig(config, pairs),
    metrics,
    benchmark,
    comparison,
    pairs: pairResults(pairs, trades, config.paper.starting_balance),
    breakdowns: breakdowns(
      trades,
      config.paper.starting_balance,
      decisionsSummary(sim.decisions, llm ? llm.cost_usd : null),
    ),
    counters: sim.states.map(countersOf),
    lookahead,
    dataQuality: dataQualityOf(ordered, sim.skipped, opts.skippedRows),
    replayLog: null,
    llm,
    trades,
    orders: sim.orders,
    stops: stopRows(sim),
    equity: sim.equity,
  };
  return { result, decisions: sim.decisions, cacheHits };
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
