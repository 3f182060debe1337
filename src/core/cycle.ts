/**
 * The decision cycle: one function shared by live/paper/replay trading (Temporal workflows pass activities as
 * `steps`) and by backtests (in-process steps). Deterministic: it only awaits steps and updates state; it reads no
 * clock other than `tick.asOf` and does no I/O of its own.
 *
 *   fetchMarket → reconcile with the exchange → track MFE/MAE → protective exits (no model)
 *   → buildContext → decide → checkRisk → execute → update the position mirror → events
 */
import type {
  AccountSnapshot,
  Candle,
  ClosedTrade,
  CloseReason,
  Decision,
  DecisionResult,
  DecisionSource,
  Execution,
  MarketSnapshot,
  MarketStateSummary,
  OrderIntent,
  PositionState,
  Side,
  Verdict,
} from './types';
import type { RiskConfig } from './config';
import type { DecisionContext } from './context-types';
import { clientOrderId } from './ids';
import {
  applyExecution,
  closeTrade,
  copyPosition,
  leveragedReturn,
  protectiveStopOf,
  trackExcursions,
} from './position';
import { protectiveExit, type MarketLimits } from './risk';
import type { AdmissionDecision, AdmissionRequest } from './admission';
import type { DecisionRecord as WarningRecord } from './learning/warnings';

/** What fetchMarket returns: the snapshot plus the account and what happened on the exchange since last cycle. */
export interface MarketView {
  snapshot: MarketSnapshot;
  account: AccountSnapshot;
  /** closed main-timeframe candles in (since, asOf], oldest first (for MFE/MAE from highs and lows) */
  candlesSince: Candle[];
  /**
   * funding paid (+) or received (-) on this pair's position since the previous cycle, USDT (live: the exchange's
   * funding payments since the entry minus what the position already counts, so a payment booked late is counted then)
   */
  fundingSince: number;
  /** the exchange's order limits for this pair (minimums, step) and the costs the risk gate reserves */
  limits: MarketLimits;
}

export interface ContextRequest {
  snapshot: MarketSnapshot;
  account: AccountSnapshot;
  position: PositionState | null;
  recentDecisions: DecisionRecord[];
}

export interface RiskRequest {
  decision: Decision;
  snapshot: MarketSnapshot;
  account: AccountSnapshot;
  position: PositionState | null;
  now: number;
  lastStopOutTime: number | null;
  limits: MarketLimits;
}

export interface ExecuteRequest {
  intent: OrderIntent;
  clientOrderId: string;
  asOf: number;
  /**
   * the trade the order belongs to (the entry's client order id; for an open, this order's id). The protective stop
   * placed after an order has the id `<that order's client id>s` (`stopOrderId`), so the entry's is `<tradeId>s`.
   */
  tradeId: string;
  /**
   * the protective stop on the exchange for the position the order adjusts or closes (replaced or cancelled after
   * it); null for an open, or when the position has none. Absent in requests recorded before: `<tradeId>s`.
   */
  stopOrderId?: string | null;
}

/** What the market step is told about the open position of its pair (to read the exchange's books for it). */
export interface OpenTradeRef {
  tradeId: string;
  side: Side;
  /** the decision time of the entry */
  entryTime: number;
  quantity: number;
  /** funding counted so far (+ paid, − received), USDT */
  funding: number;
  /** the protective stop on the exchange for it; null: none */
  stopOrderId: string | null;
}

/** The market step's request. */
export interface MarketRequest {
  pair: string;
  asOf: number;
  /** the previous cycle's asOf; null on the first cycle */
  since: number | null;
  /** the open position of the pair as the cycle tracks it; null when flat (absent in requests recorded before) */
  open?: OpenTradeRef | null;
}

/**
 * The side effects a cycle needs. Activities in a workflow; in-process functions in a backtest.
 *
 * `C` is what `buildContext` hands to `decide` and the decision event carries: the whole {@link DecisionContext} in a
 * backtest, a compact reference to the prompt stored on the worker in a workflow (so that histories stay small). The
 * cycle never looks inside it.
 */
export interface CycleSteps<C = DecisionContext> {
  fetchMarket(req: MarketRequest): Step<MarketView>;
  buildContext(req: ContextRequest): Step<C>;
  decide(ctx: C): Step<DecisionResult>;
  checkRisk(req: RiskRequest): Step<Verdict>;
  /**
   * Portfolio admission of an approved order that adds exposure (an entry, an increase), against the whole account
   * (src/core/admission.ts): the account workflow in trading, an in-process book in a backtest. Never asked for a
   * reduction or an exit.
   */
  admit(req: AdmissionRequest): Step<AdmissionDecision>;
  execute(req: ExecuteRequest): Step<Execution>;
}

/**
 * What a step returns: a promise (an activity, a model call), or the value itself when the step has it at once (a
 * backtest's in-process steps). {@link runCycle} waits only for a promise: a cycle whose steps all answer at once runs
 * through and returns its result, which a backtest of millions of cycles notices.
 */
export type Step<T> = T | Promise<T>;

/** True when a step answered with a promise (anything with a `then` method, as `await` itself decides). */
export function isPending<T>(step: Step<T>): step is Promise<T> {
  return typeof (step as { then?: unknown }).then === 'function';
}

/**
 * One decision as kept in the pair's state (small: it lives in workflow state and in continue-as-new input).
 * A superset of the record the decision-quality warnings read.
 */
export interface DecisionRecord extends WarningRecord {
  confidence: number | null;
  source: DecisionSource | 'protective' | 'operator';
  /**
   * what happened to it: rejected by the risk gate; refused at portfolio admission or by the exchange (the detail
   * says which and why); failed (an order whose outcome is not a fill, e.g. a protective exit the exchange refused)
   */
  outcome: 'none' | 'executed' | 'rejected' | 'refused' | 'failed';
  detail: string | null;
}

export interface CycleCounters {
  cycles: number;
  /** cycles that asked the decision provider */
  decisions: number;
  entries: number;
  exits: number;
  adjustments: number;
  holds: number;
  waits: number;
  rejections: number;
  protectiveExits: number;
  externalCloses: number;
  /** orders the exchange refused (insufficient margin, below the minimums, invalid, ...): recorded, never fatal */
  executionFailures: number;
  /** approved entries and increases refused at portfolio admission (the account's open-trade or exposure limit) */
  admissionRefusals: number;
  /** cycles abandoned because a step failed for good (set by the driver: workflow or backtester) */
  failedCycles: number;
  fallbacks: number;
  tokensIn: number;
  tokensOut: number;
}

export interface PairState {
  pair: string;
  position: PositionState | null;
  /** newest last, capped at `settings.maxRecentDecisions` */
  recentDecisions: DecisionRecord[];
  /** asOf of the last completed cycle */
  lastCycleAsOf: number | null;
  /** time of the last protective or exchange stop-out on this pair (for the cooldown) */
  lastStopOutTime: number | null;
  counters: CycleCounters;
}

export interface CycleTick {
  /** decision time: the close time of the candle that just closed */
  asOf: number;
  /** owner of the client order ids (the pair workflow id, or the backtest run id) */
  orderOwner: string;
  /** operator asked to close the position without the model */
  forceExit: boolean;
  /**
   * the pair is paused: no new decision is asked for, but the position is still tracked, reconciled and protected
   * (emergency stop, liquidation buffer, force exit) — pausing the model never disables the stop
   */
  paused: boolean;
}

export interface CycleSettings {
  risk: RiskConfig;
  /** decisions kept in state for warnings and prompts */
  maxRecentDecisions: number;
  /** for liquidation prices when the exchange does not report one (paper.maintenance_margin_rate) */
  maintenanceMarginRate: number;
}

export type CycleEvent<C = DecisionContext> =
  | {
      type: 'decision';
      record: DecisionRecord;
      /** null for a protective or operator exit: no provider was asked */
      result: DecisionResult | null;
      verdict: Verdict | null;
      /** what the provider was given (the prompt, or the steps' reference to it); null when no context was built */
      context: C | null;
      /** the order this decision produced, if any */
      clientOrderId: string | null;
    }
  | { type: 'order'; intent: OrderIntent; execution: Execution }
  /** portfolio admission was asked for an entry or an increase, and answered */
  | { type: 'admission'; request: AdmissionRequest; decision: AdmissionDecision }
  /** a trade closed: the caller starts one review for it */
  | { type: 'tradeClosed'; trade: ClosedTrade };

export interface CycleResult<C = DecisionContext> {
  state: PairState;
  events: CycleEvent<C>[];
}

export function emptyCounters(): CycleCounters {
  return {
    cycles: 0,
    decisions: 0,
    entries: 0,
    exits: 0,
    adjustments: 0,
    holds: 0,
    waits: 0,
    rejections: 0,
    protectiveExits: 0,
    externalCloses: 0,
    executionFailures: 0,
    admissionRefusals: 0,
    failedCycles: 0,
    fallbacks: 0,
    tokensIn: 0,
    tokensOut: 0,
  };
}

/**
 * A copy of `c`, field by field (an object spread of the counters was 5 % of a backtest's time). Every field of
 * {@link CycleCounters} must be listed: the type checker rejects a missing one.
 */
function copyCounters(c: CycleCounters): CycleCounters {
  return {
    cycles: c.cycles,
    decisions: c.decisions,
    entries: c.entries,
    exits: c.exits,
    adjustments: c.adjustments,
    holds: c.holds,
    waits: c.waits,
    rejections: c.rejections,
    protectiveExits: c.protectiveExits,
    externalCloses: c.externalCloses,
    executionFailures: c.executionFailures,
    admissionRefusals: c.admissionRefusals,
    failedCycles: c.failedCycles,
    fallbacks: c.fallbacks,
    tokensIn: c.tokensIn,
    tokensOut: c.tokensOut,
  };
}

export function initialPairState(pair: string): PairState {
  return {
    pair,
    position: null,
    recentDecisions: [],
    lastCycleAsOf: null,
    lastStopOutTime: null,
    counters: emptyCounters(),
  };
}

const STOP_OUT_REASONS: ReadonlySet<CloseReason> = new Set([
  'emergency_stop',
  'liquidation_buffer',
  'stop',
  'liquidation',
]);

function decisionConfidence(decision: Decision): number {
  return decision.args.confidence_score;
}

/**
 * Run one decision cycle. Returns the new state (the input is not mutated) and the events to journal: the result
 * itself when every step answered at once (a backtest's in-process steps), else a promise of it (activities).
 * Throws, or rejects, with only what a step throws (the caller — Temporal or the backtester — owns retries).
 *
 * The cycle is a chain of stages, one after each step: a stage is called at once with the step's answer, or when
 * the step's promise settles. The work between two steps is done by the synchronous phases below on one
 * {@link CycleWork}. A backtest's cycle thus runs through without creating a promise, a closure or a suspended
 * frame, which it notices: a cycle there takes a few microseconds.
 */
export function runCycle<C = DecisionContext>(
  steps: CycleSteps<C>,
  input: PairState,
  tick: CycleTick,
  settings: CycleSettings,
): Step<CycleResult<C>> {
  // the stages only pass the context from buildContext to decide and into the decision event
  const any = steps as unknown as CycleSteps<Context>;
  const held = input.position;
  const fetched = any.fetchMarket({
    pair: input.pair,
    asOf: tick.asOf,
    since: input.lastCycleAsOf,
    open:
      held === null
        ? null
        : {
            tradeId: held.tradeId,
            side: held.side,
            entryTime: held.entryTime,
            quantity: held.quantity,
            funding: held.funding,
            stopOrderId: protectiveStopOf(held),
          },
  });
  return (
    isPending(fetched)
      ? fetched.then((view) => marketStage(openCycle(any, settings, input, tick, view)))
      : marketStage(openCycle(any, settings, input, tick, fetched))
  ) as Step<CycleResult<C>>;
}

/** The stages' view of the steps' context type: passed along, never read. */
type Context = unknown;

/** 2. Protective exits and the operator's force-exit act without the model. 3. Else ask for the provider's context. */
function marketStage(work: CycleWork): Step<CycleResult<Context>> {
  const { steps, view } = work;
  const protective = protectiveOrder(work);
  if (protective) {
    const sent = steps.execute(protective.request);
    return isPending(sent)
      ? sent.then((execution) => protectiveStage(work, protective, execution))
      : protectiveStage(work, protective, sent);
  }
  if (work.tick.paused) return cycleResult(work);
  const built = steps.buildContext({
    snapshot: view.snapshot,
    account: view.account,
    position: work.position,
    recentDecisions: work.input.recentDecisions,
  });
  return isPending(built) ? built.then((context) => contextStage(work, context)) : contextStage(work, built);
}

function protectiveStage(work: CycleWork, exit: ProtectiveOrder, execution: Execution): CycleResult<Context> {
  recordProtectiveExit(work, exit, execution);
  return cycleResult(work);
}

/** 3. Ask the decision provider. */
function contextStage(work: CycleWork, context: Context): Step<CycleResult<Context>> {
  const decided = work.steps.decide(context);
  return isPending(decided)
    ? decided.then((result) => decisionStage(work, context, result))
    : decisionStage(work, context, decided);
}

/** 4. The risk gate is enforcement: nothing reaches execute without an approved verdict. */
function decisionStage(work: CycleWork, context: Context, result: DecisionResult): Step<CycleResult<Context>> {
  const { steps, view } = work;
  const decision = result.decision;
  if (decision.tool === 'signal_hold' || decision.tool === 'signal_wait') {
    return verdictStage(work, context, result, NOTHING_TO_DO);
  }
  const checked = steps.checkRisk({
    decision,
    snapshot: view.snapshot,
    account: view.account,
    position: work.position,
    now: work.tick.asOf,
    lastStopOutTime: work.lastStopOutTime,
    limits: view.limits,
  });
  return isPending(checked)
    ? checked.then((verdict) => verdictStage(work, context, result, verdict))
    : verdictStage(work, context, result, checked);
}

/** 5. An approved order that adds exposure passes portfolio admission first; reductions and exits go straight out. */
function verdictStage(
  work: CycleWork,
  context: Context,
  result: DecisionResult,
  verdict: Verdict,
): Step<CycleResult<Context>> {
  if (verdict.status !== 'approved') {
    return executedStage(work, { context, result, verdict, order: null, admission: null }, null);
  }
  const { intent } = verdict;
  if (intent.kind !== 'open' && intent.kind !== 'increase') {
    return sendStage(work, { context, result, verdict, order: orderRequest(work, intent), admission: null });
  }
  const request = admissionRequest(work, intent, orderRequest(work, intent).clientOrderId);
  const admitted = work.steps.admit(request);
  return isPending(admitted)
    ? admitted.then((decision) => admissionStage(work, { context, result, verdict }, request, decision))
    : admissionStage(work, { context, result, verdict }, request, admitted);
}

/** The admission answer: a refusal is recorded (nothing is sent); a grant sends the order, cut down when clamped. */
function admissionStage(
  work: CycleWork,
  decided: { context: Context; result: DecisionResult; verdict: Extract<Verdict, { status: 'approved' }> },
  request: AdmissionRequest,
  decision: AdmissionDecision,
): Step<CycleResult<Context>> {
  work.events.push({ type: 'admission', request, decision });
  const { context, result } = decided;
  if (decision.status === 'refused') {
    return executedStage(work, { context, result, verdict: decided.verdict, order: null, admission: decision }, null);
  }
  let verdict: Verdict = decided.verdict;
  if (decision.clamped !== null) {
    const intent = decided.verdict.intent;
    if (intent.kind === 'open' || intent.kind === 'increase') {
      const ratio = intent.quantity > 0 ? decision.quantity / intent.quantity : 0;
      verdict = {
        status: 'approved',
        intent: { ...intent, quantity: decision.quantity, margin: intent.margin * ratio },
        notes: [...decided.verdict.notes, decision.clamped],
      };
    }
  }
  const approved = verdict as Extract<Verdict, { status: 'approved' }>;
  return sendStage(work, {
    context,
    result,
    verdict,
    order: orderRequest(work, approved.intent),
    admission: decision,
  });
}

/** What portfolio admission is asked for an entry or an increase: the order, and the account as this cycle read it. */
function admissionRequest(
  work: CycleWork,
  intent: Extract<OrderIntent, { kind: 'open' | 'increase' }>,
  requestId: string,
): AdmissionRequest {
  const { account, limits } = work.view;
  const { risk } = work.settings;
  return {
    requestId,
    pair: intent.pair,
    holder: work.tick.orderOwner,
    kind: intent.kind,
    quantity: intent.quantity,
    price: intent.price,
    equity: account.equity,
    positions: account.positions.map((p) => ({ pair: p.pair, notional: p.notional })),
    limits: {
      maxOpenTrades: risk.max_open_trades,
      maxTotalExposurePct: risk.max_total_exposure_pct,
      clampToRoom: risk.allow_model_freedom,
    },
    market: { qtyStep: limits.qtyStep, minQty: limits.minQty, minNotional: limits.minNotional },
    at: work.tick.asOf,
  };
}

/** 6. Send the order, then record what came of the decision. */
function sendStage(work: CycleWork, decided: DecidedStep): Step<CycleResult<Context>> {
  const sent = work.steps.execute(decided.order!);
  return isPending(sent)
    ? sent.then((execution) => executedStage(work, decided, execution))
    : executedStage(work, decided, sent);
}

function executedStage(work: CycleWork, decided: DecidedStep, execution: Execution | null): CycleResult<Context> {
  recordDecision(work, decided, execution);
  return cycleResult(work);
}

/** The verdict of a hold or a wait (shared: never mutated). */
const NOTHING_TO_DO: Verdict = Object.freeze({ status: 'none' });

/** A cycle's working state between its steps: made by {@link openCycle}, updated in place by the phases. */
interface CycleWork {
  steps: CycleSteps<Context>;
  settings: CycleSettings;
  input: PairState;
  tick: CycleTick;
  view: MarketView;
  /** this cycle's own copy of the position (updated in place until it is handed to a step or an event) */
  position: PositionState | null;
  lastStopOutTime: number | null;
  counters: CycleCounters;
  /** the cycle's events; its decision records are those of its decision events */
  events: CycleEvent<Context>[];
}

/** 1. Track the open position between cycles: excursions from highs/lows, funding, then reconcile with the exchange. */
function openCycle(
  steps: CycleSteps<Context>,
  settings: CycleSettings,
  input: PairState,
  tick: CycleTick,
  view: MarketView,
): CycleWork {
  const counters = copyCounters(input.counters);
  counters.cycles += 1;
  const work: CycleWork = {
    steps,
    settings,
    input,
    tick,
    view,
    position: null,
    lastStopOutTime: input.lastStopOutTime,
    counters,
    events: [],
  };
  const { snapshot, account } = view;
  if (input.position === null) return work;
  const position = copyPosition(input.position);
  trackExcursions(position, view.candlesSince);
  position.funding += view.fundingSince;
  const onExchange = account.positions.find((p) => p.pair === input.pair);
  const external = account.externalCloses.find((c) => c.pair === input.pair);
  if (external || !onExchange) {
    const reason: CloseReason = external ? external.reason : 'external';
    const trade = closeTrade(position, {
      time: external?.time ?? tick.asOf,
      price: external?.price ?? snapshot.price,
      fee: external?.fee ?? 0,
      reason,
      exitText: external
        ? `closed by the exchange (${external.reason}) at ${external.price}`
        : 'position no longer on the exchange (closed outside this trader)',
      tradeScore: null,
    });
    work.events.push({ type: 'tradeClosed', trade });
    counters.externalCloses += 1;
    if (STOP_OUT_REASONS.has(reason)) work.lastStopOutTime = trade.exitTime;
    return work;
  }
  position.lastPnlPct = leveragedReturn(position.side, position.entryPrice, snapshot.price, position.leverage) * 100;
  work.position = position;
  return work;
}

/** A protective or operator exit to place, and why. */
interface ProtectiveOrder {
  reason: CloseReason;
  detail: string;
  /** the close order to send (its intent is the exit's) */
  request: ExecuteRequest;
}

/** 2. The operator's force-exit, else the emergency stop or the liquidation buffer, when a position is open. */
function protectiveOrder(work: CycleWork): ProtectiveOrder | null {
  const { position, tick, view, settings } = work;
  if (position === null) return null;
  let exit: { reason: CloseReason; intent: OrderIntent; detail: string } | null;
  if (tick.forceExit) {
    exit = {
      reason: 'force_exit',
      intent: {
        kind: 'close',
        pair: work.input.pair,
        side: position.side,
        quantity: position.quantity,
        price: view.snapshot.price,
        reason: 'force_exit',
      },
      detail: 'operator requested an exit (forceExit signal)',
    };
  } else {
    exit = protectiveExit({
      position,
      snapshot: view.snapshot,
      risk: settings.risk,
      candles: view.candlesSince,
      maintenanceMarginRate: settings.maintenanceMarginRate,
    });
  }
  if (exit === null) return null;
  const request: ExecuteRequest = {
    intent: exit.intent,
    clientOrderId: clientOrderId(tick.orderOwner, tick.asOf, 0),
    asOf: tick.asOf,
    tradeId: position.tradeId,
    stopOrderId: protectiveStopOf(position),
  };
  return { reason: exit.reason, detail: exit.detail, request };
}

/** After a protective exit was sent: its order, its decision record, and the position it leaves. */
function recordProtectiveExit(work: CycleWork, exit: ProtectiveOrder, execution: Execution): void {
  const { settings } = work;
  const position = work.position!;
  const asOf = work.tick.asOf;
  const { counters, events } = work;
  events.push({ type: 'order', intent: exit.request.intent, execution });
  const record: DecisionRecord = {
    time: asOf,
    tool: 'signal_exit',
    reason: exit.detail,
    confidence: null,
    pnlPct: position.lastPnlPct,
    source: exit.reason === 'force_exit' ? 'operator' : 'protective',
    outcome: execution.status === 'filled' ? 'executed' : 'failed',
    detail: execution.error,
  };
  events.push({
    type: 'decision',
    record,
    result: null,
    verdict: null,
    context: null,
    clientOrderId: exit.request.clientOrderId,
  });
  if (execution.status !== 'filled') {
    counters.executionFailures += 1;
    return;
  }
  const applied = applyExecution(position, exit.request.intent, execution, {
    time: asOf,
    exitReason: exit.reason,
    exitText: exit.detail,
    tradeScore: null,
    entry: null,
    maintenanceMarginRate: settings.maintenanceMarginRate,
  });
  work.position = applied.position;
  if (applied.closed) {
    events.push({ type: 'tradeClosed', trade: applied.closed });
    counters.exits += 1;
    if (exit.reason !== 'force_exit') counters.protectiveExits += 1;
    if (STOP_OUT_REASONS.has(exit.reason)) work.lastStopOutTime = asOf;
  }
}

/** The order of an approved verdict: its client order id and the trade it belongs to. */
function orderRequest(work: CycleWork, intent: OrderIntent): ExecuteRequest {
  const orderId = clientOrderId(work.tick.orderOwner, work.tick.asOf, 0);
  const position = intent.kind === 'open' ? null : work.position;
  return {
    intent,
    clientOrderId: orderId,
    asOf: work.tick.asOf,
    tradeId: position?.tradeId ?? orderId,
    stopOrderId: position ? protectiveStopOf(position) : null,
  };
}

/** What a decision stage hands on: the provider's context and answer, the gate's verdict, the order if approved. */
interface DecidedStep {
  context: Context;
  result: DecisionResult;
  verdict: Verdict;
  order: ExecuteRequest | null;
  /** the portfolio admission answer for an entry or an increase (null: not asked) */
  admission: AdmissionDecision | null;
}

/** What the provider decided and what came of it: counters, the decision record, the position after the order. */
function recordDecision(work: CycleWork, step: DecidedStep, execution: Execution | null): void {
  const { settings, counters, events } = work;
  const { context, result, verdict, order, admission } = step;
  const { decision } = result;
  const asOf = work.tick.asOf;
  counters.decisions += 1;
  counters.tokensIn += result.usage.input;
  counters.tokensOut += result.usage.output;
  if (result.source === 'fallback') counters.fallbacks += 1;

  const record: DecisionRecord = {
    time: asOf,
    tool: decision.tool,
    reason: decision.args.reason,
    confidence: decisionConfidence(decision),
    pnlPct: work.position ? work.position.lastPnlPct : null,
    source: result.source,
    outcome: 'none',
    detail: null,
  };

  if (verdict.status === 'none') {
    if (decision.tool === 'signal_hold') {
      counters.holds += 1;
      if (work.position) {
        const held = copyPosition(work.position);
        held.holds += 1;
        work.position = held;
      }
    } else {
      counters.waits += 1;
    }
  } else if (verdict.status === 'rejected') {
    counters.rejections += 1;
    record.outcome = 'rejected';
    record.detail = verdict.reasons.join('; ');
  } else if (admission !== null && admission.status === 'refused') {
    counters.admissionRefusals += 1;
    record.outcome = 'refused';
    record.detail = `refused at portfolio admission: ${admission.reason}`;
  } else if (order !== null && execution !== null) {
    const { intent } = verdict;
    events.push({ type: 'order', intent, execution });
    if (execution.status !== 'filled') {
      counters.executionFailures += 1;
      record.outcome = 'refused';
      record.detail = `refused by the exchange: ${execution.error ?? 'no reason given'}`;
    } else {
      record.outcome = 'executed';
      record.detail = verdict.notes.length > 0 ? verdict.notes.join('; ') : null;
      const applied = applyExecution(work.position, intent, execution, {
        time: asOf,
        exitReason: 'model',
        exitText: decision.args.reason,
        tradeScore: decision.tool === 'signal_exit' ? decision.args.trade_score : null,
        entry:
          decision.tool === 'signal_entry_long' || decision.tool === 'signal_entry_short'
            ? {
                tradeId: order.clientOrderId,
                reason: decision.args.reason,
                confidence: decision.args.confidence_score,
                market: marketStateOf(work.view.snapshot),
              }
            : null,
        maintenanceMarginRate: settings.maintenanceMarginRate,
      });
      work.position = applied.position;
      if (intent.kind === 'open') counters.entries += 1;
      if (intent.kind === 'increase' || intent.kind === 'reduce') counters.adjustments += 1;
      if (applied.closed) {
        counters.exits += 1;
        events.push({ type: 'tradeClosed', trade: applied.closed });
      }
    }
  }
  events.push({
    type: 'decision',
    record,
    result,
    verdict,
    context,
    clientOrderId: order === null ? null : order.clientOrderId,
  });
}

/** The new state after a cycle (decisions appended to the recent ones, capped) and the cycle's events. */
function cycleResult(work: CycleWork): CycleResult<Context> {
  const { input, events, settings } = work;
  const max = settings.maxRecentDecisions;
  let added = 0;
  for (const ev of events) if (ev.type === 'decision') added++;
  const previous = input.recentDecisions;
  const keep = Math.max(0, Math.min(previous.length, max - added));
  let skip = Math.max(0, added - max);
  const recentDecisions: DecisionRecord[] = [];
  for (let i = previous.length - keep; i < previous.length; i++) recentDecisions.push(previous[i]!);
  for (const ev of events) {
    if (ev.type !== 'decision') continue;
    if (skip > 0) skip--;
    else recentDecisions.push(ev.record);
  }
  return {
    state: {
      pair: input.pair,
      position: work.position,
      recentDecisions,
      lastCycleAsOf: work.tick.asOf,
      lastStopOutTime: work.lastStopOutTime,
      counters: work.counters,
    },
    events: work.events,
  };
}

/** The main timeframe's state in a snapshot, as recorded at entry to tell the model how the market changed since. */
export function marketStateOf(snapshot: MarketSnapshot): MarketStateSummary {
  const ind = snapshot.timeframes[snapshot.mainTimeframe]?.indicators;
  return {
    price: snapshot.price,
    atr14: ind?.atr14 ?? null,
    rsi14: ind?.rsi14 ?? null,
    ema20: ind?.ema20 ?? null,
    ema50: ind?.ema50 ?? null,
    macdHist: ind?.macdHist ?? null,
    adx14: ind?.adx14 ?? null,
  };
}
