/**
 * Activities: the side effects of the decision cycle and of trade reviews. Thin adapters from src/core functions to
 * I/O: market data and the exchange (paper or ccxt), the context builder, the decision provider, the journal.
 *
 * `createActivities(deps)` takes explicit dependencies (tests pass their own); `createActivityRuntime(config)` builds
 * them from the configuration for the worker. Secrets stay here: they are read from the config on the worker and never
 * travel in activity inputs or results.
 *
 * Failures are classified once: exchange errors keep their ExchangeError type, LLM transport errors their LlmError
 * type, and both become `ApplicationFailure`s with that type and `nonRetryable` set, so the workflow's retry policies
 * decide on type names alone.
 */
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { activityInfo, heartbeat, Context as ActivityContext } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/common';
import {
  ACCOUNT_WORKFLOW,
  accountWorkflowId,
  admissionRequestSignal,
  settleSlotSignal,
  type AccountWorkflowInput,
} from '../workflows/messages';
import type { Config } from '../core/config';
import { Journal, journalContext } from '../store/journal';
import type { MarketView, OpenTradeRef, RiskRequest } from '../core/cycle';
import type { DecisionContext } from '../core/context-types';
import type { Candle, ExchangePosition, Execution, ExternalClose, MarketSnapshot, Verdict } from '../core/types';
import { checkRisk, type MarketLimits } from '../core/risk';
import {
  buildSnapshot,
  compactSnapshot,
  missingLatestCandle,
  snapshotAt,
  type SnapshotOptions,
} from '../core/snapshot';
import { timeframeMs } from '../core/timeframe';
import { CONFIGURATION_ERROR, MARKET_DATA_GAP, MARKET_DATA_UNAVAILABLE } from '../core/error-types';
import { currentStopOf, protectiveStopPlan } from '../core/protective-stop';
import { reviewTrade, reflectOnTrade, evaluateTrade, rewardForTrade } from '../core/learning';
import { buildDecisionContext } from '../llm/context-builder';
import type { DecisionProvider, ProviderDecision } from '../llm/provider';
import { BaselineProvider } from '../llm/baseline';
import { CachedProvider, DecisionCache } from '../llm/decision-cache';
import { ReplayProvider } from '../llm/replay-provider';
import { LlmError, safeUrl } from '../llm/errors';
import { ExchangeError, classifyError } from '../exchange/errors';
import type { Exchange } from '../exchange/port';
// ccxt and the OpenAI client are loaded by the modes and providers that use them (createActivityRuntime)
import type { CcxtExchange, CcxtExchangeOptions } from '../exchange/ccxt-exchange';
import { PaperExchange } from '../exchange/paper-exchange';
import { LiveMarketSource, RecordedMarketSource, type MarketSource } from '../exchange/market-source';
import { openRecordedSource } from '../store/recorded-source';
import type {
  AccountId,
  Activities,
  BuildContextRequest,
  DecideRequest,
  ExecuteActivityRequest,
  PromptRef,
  RecordDecisionInput,
  TradeReviewResult,
} from './types';
import { createFailpoints, type Failpoints } from './failpoints';
import type { ClosedTrade } from '../core/types';

/** A structured logger (the worker's). */
export interface ActivityLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

/** How many candles of history each timeframe is read with: enough to warm up EMA100 and ADX. */
export const HISTORY_CANDLES = 300;
/** At most this many main candles are returned in `candlesSince` (a long pause is summarised by its extremes). */
export const MAX_CANDLES_SINCE = 500;

/** One trading account: where its orders go, and its paper exchange when it trades on paper. */
export interface TradingAccount {
  /** where orders go: the paper exchange (paper, replay) or the real one (live) */
  exchange: Exchange;
  /** the paper exchange when trading on paper: advanced to each cycle's asOf (funding, stops, liquidations) */
  paper: PaperExchange | null;
  /** advances the market clock of the paper exchange (replay: recorded time) */
  setMarketTime?: (t: number) => void;
}

export interface ActivityDeps {
  config: Config;
  /** one account for every request, when `accountFor` is not given: the exchange (paper, replay or live) */
  exchange?: Exchange;
  /** its paper exchange when trading on paper: advanced to each cycle's asOf (funding, stops, liquidations) */
  paper?: PaperExchange | null;
  /**
   * the account a request names (`account`; a request that names none: the mode's name, `paper`, `replay` or
   * `live`), e.g. one paper account per replay execution, opened on first use
   */
  accountFor?: (id: AccountId) => TradingAccount;
  /** candles and funding, asOf-bounded */
  market: MarketSource;
  provider: DecisionProvider;
  journal: Journal;
  logger: ActivityLogger;
  /** advances the market clock of the paper exchange (replay: recorded time) */
  setMarketTime?: (t: number) => void;
  /** crash-test pauses (see failpoints.ts); default: none */
  failpoints?: Failpoints;
}

function toFailure(err: unknown, what: string): Error {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof LlmError) {
    return ApplicationFailure.create({ type: err.type, message: err.message, nonRetryable: !err.retryable });
  }
  if (err instanceof ExchangeError) {
    return ApplicationFailure.create({ type: err.type, message: err.message, nonRetryable: !err.retryable });
  }
  const classified = classifyError(err, { operation: what });
  return ApplicationFailure.create({
    type: classified.type,
    message: classified.message,
    nonRetryable: !classified.retryable,
  });
}

async function classified<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toFailure(err, what);
  }
}

/** The compact result recorded in history: the decision and its cost, plus the model's reasoning for the audit. */
function compactResult(result: ProviderDecision): ProviderDecision {
  return {
    decision: result.decision,
    source: result.source,
    model: result.model,
    usage: result.usage,
    latencyMs: result.latencyMs,
    problems: result.problems,
    ...(result.thinking ? { thinking: result.thinking } : {}),
    ...(result.rawToolCalls ? { rawToolCalls: result.rawToolCalls } : {}),
    ...(result.notes && result.notes.length > 0 ? { notes: result.notes } : {}),
    ...(result.originalUsage ? { originalUsage: result.originalUsage } : {}),
  };
}

/** How often the order activity heartbeats (its heartbeat timeout in the workflow is 4 s). */
export const EXECUTE_HEARTBEAT_MS = 1_000;

/** The attempt number of the running activity (1 for the first); 1 outside an activity (tests, backtests). */
function activityAttempt(): number {
  try {
    return activityInfo().attempt;
  } catch {
    return 1;
  }
}

/** Heartbeats when running as a regular activity; outside an activity (tests, backtests) it does nothing. */
function heartbeatQuietly(): void {
  try {
    heartbeat();
  } catch {
    // not in an activity context
  }
}

/**
 * Full snapshots, built prompts and the provider's answers are kept between a cycle's steps on this worker, by group:
 * a pair's snapshots, a workflow's prompts and answers. A pair workflow runs one cycle at a time, so a group keeps its
 * last {@link STEP_CACHE_PER_GROUP} entries (the cycle in flight and the one before, for a step retried late), and the
 * cache holds a few entries per pair however long the worker runs (it kept up to 2,048 of each before).
 * A step that finds nothing kept builds it again (snapshot, prompt) or takes the history's copy (the answer).
 */
export const STEP_CACHE_PER_GROUP = 2;
/** At most this many entries in all (the oldest goes first). */
export const STEP_CACHE_ENTRIES = 2048;

/** A bounded insertion-ordered cache: the oldest entry of a group, and of the whole cache, goes first. */
export class StepCache<V> {
  private readonly map = new Map<string, { value: V; group: string }>();
  private readonly groups = new Map<string, string[]>();
  constructor(
    private readonly capacity: number,
    private readonly perGroup: number = STEP_CACHE_PER_GROUP,
  ) {}
  get size(): number {
    return this.map.size;
  }
  get(key: string): V | undefined {
    return this.map.get(key)?.value;
  }
  set(key: string, value: V, group: string): void {
    this.delete(key);
    this.map.set(key, { value, group });
    const keys = this.groups.get(group) ?? [];
    keys.push(key);
    this.groups.set(group, keys);
    while (keys.length > this.perGroup) this.delete(keys[0]!);
    while (this.map.size > this.capacity) this.delete(this.map.keys().next().value as string);
  }
  private delete(key: string): void {
    const entry = this.map.get(key);
    if (entry === undefined) return;
    this.map.delete(key);
    const keys = this.groups.get(entry.group)!;
    keys.splice(keys.indexOf(key), 1);
    if (keys.length === 0) this.groups.delete(entry.group);
  }
}

const ACCOUNT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** The compact form of a provider's answer for the workflow history: no prompt and no reasoning text. */
function historyResult(result: ProviderDecision): ProviderDecision {
  const { thinking: _thinking, rawToolCalls: _raw, prompt: _prompt, ...rest } = compactResult(result);
  return rest;
}

/** An account workflow with no slot held and no request for this long completes (the next request starts it again). */
const ACCOUNT_IDLE_MS = 60 * 60_000;
/** As the pair workflows': a worker that dies while answering hands the account to another within seconds. */
const ACCOUNT_WORKFLOW_TASK_TIMEOUT = '10 seconds';

export function createActivities(deps: ActivityDeps): Activities {
  const { config, market, provider, journal, logger } = deps;
  const failpoint: Failpoints = deps.failpoints ?? (() => Promise.resolve());
  const accountFor = deps.accountFor;
  if (accountFor === undefined && deps.exchange === undefined) {
    throw new TypeError('createActivities: pass either accountFor or the exchange of the one account');
  }
  const single: TradingAccount | null = accountFor
    ? null
    : {
        exchange: deps.exchange!,
        paper: deps.paper ?? null,
        ...(deps.setMarketTime ? { setMarketTime: deps.setMarketTime } : {}),
      };
  /** the account of a request */
  function accountOf(id: AccountId | undefined, pair: string): TradingAccount {
    if (single) return single;
    if (id === undefined) return accountFor!(config.mode);
    if (!ACCOUNT_ID.test(id)) {
      configurationError(
        `the workflow of ${pair} names the account "${id}": an account id is 1-64 letters, digits, "-" or "_" ` +
          `(restart the pair with \`llm-trader start\`)`,
      );
    }
    return accountFor!(id);
  }
  /** full snapshots by pair and time, grouped by pair (fetchMarket keeps them for the context step) */
  const snapshots = new StepCache<MarketSnapshot>(STEP_CACHE_ENTRIES);
  /** built prompts by decision id, grouped by workflow (buildContext keeps them for decide) */
  const contexts = new StepCache<DecisionContext>(STEP_CACHE_ENTRIES);
  /**
   * the provider's whole answer by decision id, grouped by workflow (decide keeps it for the journal: reasoning text,
   * raw tool calls)
   */
  const answers = new StepCache<ProviderDecision>(STEP_CACHE_ENTRIES);
  const main = config.timeframes.main;
  const informative = config.context.include_multi_timeframe_data ? config.timeframes.informative : [];
  const snapshotOptions: SnapshotOptions = {
    tailLength: Math.max(1, config.context.indicator_history_points),
    rawCandles: config.context.raw_kline_history_points,
  };

  /** the full snapshot (series tails and raw candles for the prompt) of `pair` at `asOf`: kept, else read again */
  async function fullSnapshot(pair: string, asOf: number): Promise<MarketSnapshot> {
    const key = `${pair}|${asOf}`;
    const kept = snapshots.get(key);
    if (kept) return kept;
    const snapshot = await snapshotFor(pair, asOf);
    snapshots.set(key, snapshot, pair);
    return snapshot;
  }

  async function snapshotFor(pair: string, asOf: number): Promise<MarketSnapshot> {
    if (market instanceof RecordedMarketSource) {
      const cache = await market.seriesCache(pair, main, informative);
      return snapshotAt(cache, asOf, snapshotOptions);
    }
    const candles: Record<string, Candle[]> = {};
    for (const tf of [main, ...informative]) candles[tf] = await market.candles(pair, tf, asOf, HISTORY_CANDLES);
    return buildSnapshot({
      pair,
      asOf,
      mainTimeframe: main,
      candles,
      funding: await market.funding(pair, asOf),
      ...snapshotOptions,
    });
  }

  async function limitsFor(exchange: Exchange, pair: string): Promise<MarketLimits> {
    const info = await exchange.market(pair);
    return {
      // an exchange that states no minimum notional: the configured one (paper.min_notional)
      minNotional: info.minNotional ?? config.paper.min_notional,
      qtyStep: info.qtyStep,
      minQty: info.minQty,
      maintenanceMarginRate: config.paper.maintenance_margin_rate,
      takerFeeRate: config.paper.taker_fee,
    };
  }

  /** builds the prompt of `req` on the full snapshot, stores it in the journal under the decision id, keeps it */
  async function promptFor(req: BuildContextRequest): Promise<DecisionContext> {
    const { decisionId, owner, run, ...request } = req;
    const pair = request.snapshot.pair;
    const snapshot = await classified(`read the market of ${pair}`, () => fullSnapshot(pair, request.snapshot.asOf));
    const learning = journal.learningContext(pair, snapshot.asOf, config.experience);
    const context = buildDecisionContext({ ...request, snapshot, learning }, config);
    journal.recordPrompt({ decisionId, owner, run, pair, time: snapshot.asOf, context: journalContext(context) });
    contexts.set(decisionId, context, owner);
    return context;
  }

  /**
   * Places the order of `req` under its client order id (idempotent: a retried attempt finds the order it placed),
   * then keeps the protective stop right for the position it leaves (placed with an entry, replaced after an increase
   * or a reduction, cancelled when flat: src/core/protective-stop.ts). A partly filled order counts with what filled.
   * A stop the exchange refuses for good does not undo the order: the fill is reported, the refusal logged, and the
   * cycle's own protective exit still guards the position.
   */
  function placeOrder(exchange: Exchange, req: ExecuteActivityRequest, attempt: number): Promise<Execution> {
    return classified(`execute ${req.intent.kind} on ${req.intent.pair}`, async () => {
      const { intent, clientOrderId } = req;
      // an earlier attempt may have placed the order (and its stop) before its worker died or its answer was lost
      const mayExist = attempt > 1;
      await failpoint('execute.beforeOrder');
      const adds = intent.kind === 'open' || intent.kind === 'increase';
      if (adds) await exchange.prepareEntry(intent.pair, intent.leverage);
      const buy = adds === (intent.side === 'long');
      const result = await exchange.createOrder({
        pair: intent.pair,
        side: buy ? 'buy' : 'sell',
        quantity: intent.quantity,
        reduceOnly: !adds,
        clientOrderId,
        referencePrice: intent.price,
        mayExist,
      });
      await failpoint('execute.afterOrder');
      const positions = await exchange.fetchPositions();
      const position = positions.find((p) => p.pair === intent.pair) ?? null;
      if (!(result.filledQuantity > 0)) {
        return {
          clientOrderId,
          status: 'rejected',
          fills: [],
          position,
          error: `order ${clientOrderId} is ${result.status} with nothing filled`,
        };
      }
      const stopOrderId = await keepProtectiveStop(exchange, req, position, mayExist);
      return { clientOrderId, status: 'filled', fills: result.fills, position, error: null, stopOrderId };
    });
  }

  /** Carries out the stop plan after a filled order; returns the stop protecting the position. */
  async function keepProtectiveStop(
    exchange: Exchange,
    req: ExecuteActivityRequest,
    position: ExchangePosition | null,
    mayExist: boolean,
  ): Promise<string | null> {
    const plan = protectiveStopPlan(req, position, config.risk.emergency_stop_loss);
    const pair = req.intent.pair;
    if (plan.place !== null) {
      let placed;
      try {
        placed = await exchange.placeStopOrder({ pair, ...plan.place, mayExist });
      } catch (err) {
        if (!(err instanceof ExchangeError) || err.retryable) throw err;
        logger.warn('protective stop refused by the exchange; the previous stop (if any) is kept', {
          pair,
          clientOrderId: plan.place.clientOrderId,
          stopPrice: plan.place.stopPrice,
          error: err.message,
        });
        return currentStopOf(req);
      }
      if (placed === null) return null; // the exchange has no stop orders
    }
    if (plan.cancel !== null) await exchange.cancelOrder(pair, plan.cancel);
    return plan.result;
  }

  /**
   * Live: what the exchange's books say about the open position of `open` since the last cycle: the funding it paid
   * or received since its entry (minus what the cycle counts already), and its protective stop's fill when the stop
   * closed it (real price, fee and time of the execution). A position gone without its stop leaves the stop open:
   * it is cancelled here.
   */
  async function exchangeBooks(
    exchange: Exchange,
    pair: string,
    open: OpenTradeRef,
    positions: ExchangePosition[],
  ): Promise<{ fundingSince: number; externalCloses: ExternalClose[] }> {
    const payments = await exchange.fetchFundingPayments(pair, open.entryTime);
    const paid = payments.reduce((sum, p) => sum + p.amount, 0);
    const fundingSince = Math.round((paid - open.funding) * 1e8) / 1e8;
    const externalCloses: ExternalClose[] = [];
    if (open.stopOrderId !== null && !positions.some((p) => p.pair === pair)) {
      const stop = await exchange.fetchOrderByClientId(pair, open.stopOrderId);
      if (stop !== null && stop.status === 'open') {
        // the position is gone without its stop (liquidated, or closed by hand): it must not fire on a later one
        await exchange.cancelOrder(pair, open.stopOrderId);
      }
      if (stop !== null && stop.status === 'filled' && stop.fills.length === 0) {
        throw new ExchangeError(
          'ExchangeOperationFailed',
          `${exchange.id}: the protective stop ${open.stopOrderId} of ${pair} has triggered but the exchange does not ` +
            'list its fills yet; retried, so that the trade is recorded at the fill price',
        );
      }
      if (stop !== null && stop.status === 'filled') {
        const quantity = stop.fills.reduce((sum, f) => sum + f.quantity, 0);
        externalCloses.push({
          pair,
          time: Math.max(...stop.fills.map((f) => f.time)),
          price: stop.fills.reduce((sum, f) => sum + f.price * f.quantity, 0) / quantity,
          quantity,
          fee: stop.fills.reduce((sum, f) => sum + f.fee, 0),
          reason: 'stop',
          clientOrderId: open.stopOrderId,
        });
      }
    }
    return { fundingSince, externalCloses };
  }

  return {
    async fetchMarket({ pair, asOf, since, mode, account: accountId, open }): Promise<MarketView> {
      if (mode !== undefined && mode !== config.mode) {
        configurationError(
          `the workflow of ${pair} trades in ${mode} mode but this worker is configured for ${config.mode} mode: ` +
            `run a worker with a ${mode} config (llm-trader worker --config <${mode} config>) on this task queue`,
        );
      }
      await failpoint('fetchMarket.start');
      const { exchange, paper, setMarketTime } = accountOf(accountId, pair);
      let snapshot: MarketSnapshot;
      try {
        snapshot = await fullSnapshot(pair, asOf);
      } catch (err) {
        if (market instanceof RecordedMarketSource) {
          throw ApplicationFailure.create({
            type: MARKET_DATA_UNAVAILABLE,
            message: `no recorded market data for ${pair} at ${new Date(asOf).toISOString()}: ${err instanceof Error ? err.message : String(err)}`,
            nonRetryable: true,
          });
        }
        throw toFailure(err, `fetch market data of ${pair}`);
      }
      if (market instanceof RecordedMarketSource) {
        // never decide on a snapshot whose latest candle is missing: past the end of the data the replay ends; in a
        // gap this cycle fails without a decision and the pair goes on at the next close
        const missing = missingLatestCandle(await market.seriesCache(pair, main, informative), asOf);
        if (missing?.dataEnded) {
          throw ApplicationFailure.create({
            type: MARKET_DATA_UNAVAILABLE,
            message: `recorded data of ${pair} ends at ${new Date(snapshot.asOf).toISOString()}, before ${new Date(asOf).toISOString()}`,
            nonRetryable: true,
          });
        }
        if (missing) {
          throw ApplicationFailure.create({
            type: MARKET_DATA_GAP,
            message:
              `no decision for ${pair} at ${new Date(asOf).toISOString()}: its latest ${missing.timeframe} candle is ` +
              `missing from the recorded data (${market.data.description}); waiting for the next candle close`,
            nonRetryable: true,
          });
        }
      }
      // the market clock moves only to a time the data covers
      setMarketTime?.(asOf);
      return classified(`fetch market view of ${pair}`, async () => {
        // the paper exchange processes funding, stops and liquidations up to asOf before anything is read from it
        const from = since ?? asOf - timeframeMs(main);
        // read the closes by time window: another pair's balance read may already have advanced this pair
        if (paper) await paper.advancePair(pair, asOf);
        const recent = await market.candles(
          pair,
          main,
          asOf,
          Math.min(MAX_CANDLES_SINCE, Math.max(1, Math.ceil((asOf - from) / timeframeMs(main)))),
        );
        const candlesSince = recent.filter((c) => c.time + timeframeMs(main) > from);
        const [balance, positions] = await Promise.all([exchange.fetchBalance(), exchange.fetchPositions()]);
        let externalCloses: ExternalClose[] = [];
        let fundingSince = 0;
        if (paper) {
          externalCloses = paper.externalCloses(pair, from, asOf);
          fundingSince = paperFundingPaid(paper, pair, from, asOf);
        } else if (open) {
          ({ fundingSince, externalCloses } = await exchangeBooks(exchange, pair, open, positions));
        }
        return {
          // compact: the workflow records this view in its history
          snapshot: compactSnapshot(snapshot),
          account: {
            equity: balance.equity,
            available: balance.available,
            usedMargin: balance.usedMargin,
            positions,
            externalCloses: externalCloses.filter((c) => c.pair === pair),
          },
          candlesSince,
          fundingSince,
          limits: await limitsFor(exchange, pair),
        };
      });
    },

    async buildContext(req: BuildContextRequest): Promise<PromptRef> {
      const context = await promptFor(req);
      return {
        decisionId: req.decisionId,
        tokens: context.tokens,
        hasPosition: context.hasPosition,
        allowedTools: context.allowedTools,
        price: context.snapshot.price,
      };
    },

    async decide({ ref, request }: DecideRequest): Promise<ProviderDecision> {
      // the prompt built by this worker's context step, or (after a worker change) built again from its request
      const context = contexts.get(ref.decisionId) ?? (await promptFor(request));
      try {
        await failpoint('decide.beforeProvider');
        const result = await provider.decide(context);
        answers.set(ref.decisionId, result, request.owner);
        return { ...historyResult(result), answeredAt: Date.now() };
      } catch (err) {
        throw toFailure(err, `decide ${context.pair}`);
      }
    },

    async checkRisk(req: RiskRequest): Promise<Verdict> {
      return checkRisk({ ...req, risk: config.risk, market: req.limits });
    },

    async execute(req: ExecuteActivityRequest): Promise<Execution> {
      const { exchange, setMarketTime } = accountOf(req.account, req.intent.pair);
      // replay: the order is placed at its candle close also on a worker whose first step of this account it is (a
      // retry after a worker died); its market clock would otherwise still be at the start
      setMarketTime?.(req.asOf);
      // heartbeats tell the server this worker is alive: a dead one is noticed within the heartbeat timeout
      const beat = setInterval(heartbeatQuietly, EXECUTE_HEARTBEAT_MS);
      heartbeatQuietly();
      try {
        return await placeOrder(exchange, req, activityAttempt());
      } finally {
        clearInterval(beat);
      }
    },

    async wallClock(): Promise<number> {
      return Date.now();
    },

    async requestAdmission({ account, request, replyTo }): Promise<void> {
      const client = ActivityContext.current().client;
      const args: AccountWorkflowInput = { account, idleMs: ACCOUNT_IDLE_MS };
      await client.workflow.signalWithStart(ACCOUNT_WORKFLOW, {
        workflowId: accountWorkflowId(account, activityInfo().taskQueue),
        taskQueue: activityInfo().taskQueue,
        args: [args],
        signal: admissionRequestSignal,
        signalArgs: [{ request, replyTo }],
        workflowTaskTimeout: ACCOUNT_WORKFLOW_TASK_TIMEOUT,
      });
      await failpoint('requestAdmission.afterSignal');
    },

    async settleSlot({ account, settlement }): Promise<void> {
      const client = ActivityContext.current().client;
      try {
        const id = accountWorkflowId(account, activityInfo().taskQueue);
        await client.workflow.getHandle(id).signal(settleSlotSignal, settlement);
      } catch (err) {
        // no account workflow running: it holds no slot (a new one starts empty), so there is nothing to settle
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    },

    async recordDecision(input: RecordDecisionInput): Promise<void> {
      await failpoint('recordDecision.start');
      // the whole answer (reasoning text, raw tool calls) when this worker asked the provider; else the history's
      const answer = input.result ? (answers.get(input.decisionId) ?? input.result) : null;
      journal.recordDecision({
        decisionId: input.decisionId,
        run: input.run,
        owner: input.owner,
        pair: input.pair,
        record: input.record,
        result: answer === null ? null : compactResult(answer),
        verdict: input.verdict,
        // the prompt was stored by the context step under the decision id
        context: null,
        clientOrderId: input.clientOrderId,
      });
    },

    async recordMissedCandles(input): Promise<void> {
      const { inserted } = journal.recordMissedCandles(input);
      if (inserted) {
        logger.warn('candles missed: the pair decides on the latest closed candle only', {
          pair: input.pair,
          count: input.count,
          firstClose: new Date(input.firstClose).toISOString(),
          lastClose: new Date(input.lastClose).toISOString(),
          reason: input.reason,
        });
      }
    },

    async reviewTrade(trade: ClosedTrade): Promise<TradeReviewResult> {
      return {
        review: reviewTrade(trade),
        reflection: reflectOnTrade(trade),
        evaluation: evaluateTrade(trade),
        reward: rewardForTrade(trade),
      };
    },

    async recordTrade(input): Promise<void> {
      const { inserted } = journal.recordTrade(
        input.trade,
        input.review,
        input.reflection,
        input.evaluation,
        input.reward,
        { run: input.run ?? '' },
      );
      logger.info(inserted ? 'trade journaled' : 'trade already journaled', {
        tradeId: input.trade.tradeId,
        pair: input.trade.pair,
        pnl: input.trade.pnl,
      });
    },
  };
}

/** Funding paid (+) or received (-) on `pair` with `from < time <= to`, from the paper account. */
function paperFundingPaid(paper: PaperExchange, pair: string, from: number, to: number): number {
  let sum = 0;
  for (const f of paper.ledgerState().funding) if (f.pair === pair && f.time > from && f.time <= to) sum += f.amount;
  return sum;
}

/**
 * Live mode: checks the keys and the account before the worker takes work (a bad key or an account in hedge mode
 * fails at start, not at the first order). An exchange that cannot be reached right now is only a warning: the
 * activities retry.
 * @throws Error naming the exchange's answer and what to fix, for a non-retryable failure
 */
async function checkLiveAccount(live: CcxtExchange, config: Config, logger: ActivityLogger): Promise<void> {
  try {
    const balance = await live.checkAccount(config.pairs[0]!);
    logger.info('live exchange account checked', {
      exchange: live.id,
      environment: live.environment,
      ...(config.exchange.api_url !== null ? { apiUrl: safeUrl(config.exchange.api_url) } : {}),
      currency: balance.currency,
      equity: balance.equity,
      available: balance.available,
    });
  } catch (err) {
    const failure = classifyError(err);
    if (failure.retryable) {
      logger.warn('live exchange not reachable at start; the activities retry when they run', {
        error: failure.message,
      });
      return;
    }
    throw new Error(`live mode: the exchange account cannot be traded: ${failure.message}`, { cause: err });
  }
}

export interface ActivityRuntime {
  activities: Activities;
  close(): Promise<void>;
}

function configurationError(message: string): never {
  throw ApplicationFailure.create({ type: CONFIGURATION_ERROR, message, nonRetryable: true });
}

async function providerFor(
  config: Config,
  dataDir: string,
): Promise<{ provider: DecisionProvider; close: () => void }> {
  switch (config.llm.provider) {
    case 'baseline':
      return { provider: new BaselineProvider(), close: () => undefined };
    case 'replay': {
      if (!config.llm.replay_file)
        configurationError(
          'llm.provider is "replay" but llm.replay_file is not set: point it at a previous llm_decisions.jsonl',
        );
      return { provider: ReplayProvider.fromFile(config.llm.replay_file), close: () => undefined };
    }
    case 'openai': {
      const { OpenAIProvider } = await import('../llm/openai-provider');
      const inner = new OpenAIProvider(config.llm);
      if (!config.llm.cache) return { provider: inner, close: () => undefined };
      const cache = DecisionCache.open(join(dataDir, 'decision-cache.sqlite'));
      return { provider: new CachedProvider(inner, cache), close: () => cache.close() };
    }
  }
}

/**
 * Build the worker's activities from the configuration:
 * - live: the ccxt exchange with keys; market data from it
 * - paper: the paper exchange (SQLite account under data_dir) over the real exchange's public market data
 * - replay: the paper exchange over recorded candles (the candle database, or the CSV folder `replay.data`), on the
 *   recorded clock the workflows pass in; ccxt is not loaded (test/cli/lazy-loading.test.ts)
 */
export interface ActivityRuntimeOptions {
  logger: ActivityLogger;
  /** replaces the configured decision provider (scripted runs, tests) */
  provider?: DecisionProvider;
  /** timings of the live exchange client (tests shorten them); default the adapter's */
  exchangeTimings?: Pick<CcxtExchangeOptions, 'maxBackOffWaitMs' | 'lookupRetryDelaysMs'>;
}

export async function createActivityRuntime(config: Config, opts: ActivityRuntimeOptions): Promise<ActivityRuntime> {
  const dataDir = config.data_dir;
  const journal = Journal.fromConfig(config);
  const closers: (() => void | Promise<void>)[] = [() => journal.close()];
  try {
    const { provider, close } = opts.provider
      ? { provider: opts.provider, close: () => undefined }
      : await providerFor(config, dataDir);
    closers.push(close);
    const marketsCacheFile = join(dataDir, `markets-${config.exchange.name}.json`);
    let market: MarketSource;
    let markets: Pick<Exchange, 'market'> | undefined;
    let live: CcxtExchange | null = null;
    if (config.mode === 'live') {
      const { CcxtExchange } = await import('../exchange/ccxt-exchange');
      live = CcxtExchange.fromConfig(config.exchange, { marketsCacheFile, ...opts.exchangeTimings });
      market = new LiveMarketSource(live);
    } else if (config.mode === 'replay') {
      const recorded = await openRecordedSource(config);
      closers.push(() => recorded.close());
      market = recorded.market;
    } else {
      // public market data only: no keys leave the worker for paper trading
      const { CcxtExchange } = await import('../exchange/ccxt-exchange');
      const publicExchange = CcxtExchange.fromConfig(
        { ...config.exchange, api_key: '', api_secret: '' },
        { marketsCacheFile },
      );
      market = new LiveMarketSource(publicExchange);
      markets = publicExchange;
    }
    /** paper accounts by id, each in its own SQLite file (`paper-<id>.sqlite`), opened on first use */
    const accounts = new Map<AccountId, TradingAccount>();
    const openAccount = (id: AccountId): TradingAccount => {
      const known = accounts.get(id);
      if (known) return known;
      let account: TradingAccount;
      if (live) {
        if (id !== 'live') {
          configurationError(
            `a live worker trades the live account only, not "${id}": run a ${id.startsWith('replay') ? 'replay' : 'paper'} ` +
              'worker (llm-trader worker --config <its config>) for that pair',
          );
        }
        account = { exchange: live, paper: null };
      } else {
        let marketTime = 0;
        const paper = new PaperExchange({
          file: join(dataDir, `paper-${id}.sqlite`),
          config: config.paper,
          source: market,
          clock: () => (config.mode === 'replay' ? marketTime : Date.now()),
          triggerTimeframe: config.timeframes.main,
          ...(markets ? { markets } : {}),
        });
        closers.push(() => paper.close());
        account = {
          exchange: paper,
          paper,
          setMarketTime: (t) => {
            marketTime = Math.max(marketTime, t);
          },
        };
      }
      accounts.set(id, account);
      return account;
    };
    const activities = createActivities({
      config,
      // requests that name no account trade the mode's own: `paper-paper.sqlite`, `paper-replay.sqlite`, the exchange
      accountFor: openAccount,
      market,
      provider,
      journal,
      logger: opts.logger,
      failpoints: createFailpoints(opts.logger),
    });
    opts.logger.info('activities ready', {
      mode: config.mode,
      provider: provider.name,
      exchange: config.exchange.name,
    });
    if (live) await checkLiveAccount(live, config, opts.logger);
    return {
      activities,
      close: async () => {
        // idempotent: every resource is closed once
        for (let c = closers.pop(); c; c = closers.pop()) await c();
      },
    };
  } catch (err) {
    for (let c = closers.pop(); c; c = closers.pop()) await c();
    throw err;
  }
}
