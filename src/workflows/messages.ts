/**
 * The workflows' public surface: inputs, signals, queries, search attribute keys, ids. Shared by the workflows,
 * the worker and the CLI (client side). Deterministic and bundle-safe: only @temporalio/workflow and src/core types.
 */
import { defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { RiskConfig, TradingMode } from '../core/config';
import type { DecisionRecord, PairState } from '../core/cycle';
import type { ClosedTrade, PositionState, Side } from '../core/types';
import type { AdmissionBook, AdmissionDecision, AdmissionRequest, HeldSlot, Settlement, Slot } from '../core/admission';

export type { TradingMode };

/** Replay mode: recorded time runs `secondsPerCandle` wall seconds per main candle from `wallStart`. */
export interface ReplaySchedule {
  /** recorded (market) time at `wallStart`, Unix ms */
  recordedStart: number;
  /** workflow time at which the replay started, Unix ms; set by the workflow on its first run when null */
  wallStart: number | null;
  secondsPerCandle: number;
  /** the last recorded candle close: the workflow completes after deciding at it */
  recordedEnd: number;
}

/**
 * Everything a pair workflow needs, and everything it carries across continue-as-new. Never contains a secret:
 * keys live on the worker and are read by activities.
 */
export interface PairTraderInput {
  pair: string;
  /** ccxt exchange id, e.g. binanceusdm */
  exchange: string;
  mode: TradingMode;
  /** main timeframe, e.g. 30m */
  timeframe: string;
  /** wait after each candle close before deciding, ms of market time */
  graceMs: number;
  /** continue-as-new after this many cycles in one run (also when the server suggests it) */
  maxCyclesPerRun: number;
  risk: RiskConfig;
  maintenanceMarginRate: number;
  maxRecentDecisions: number;
  /** the decide activity's start-to-close timeout (the LLM timeout x attempts, plus margin), ms */
  decideTimeoutMs: number;
  /** the decide activity's attempts (1 = no retry) */
  decideAttempts: number;
  replay: ReplaySchedule | null;
  /**
   * the account the pair trades in and journals under: `replay-<id>` (one paper account per replay execution),
   * `paper` or `live`; absent in inputs of older versions (then the mode's name)
   */
  account?: string;
  /** short, secret-free summary of the configuration for the memo (provider, model, limits) */
  configSummary: Record<string, string | number | boolean>;
  /** carried across continue-as-new; absent on the first run */
  carried?: CarriedState;
}

export interface CarriedState {
  state: PairState;
  paused: boolean;
  forceExitPending: boolean;
  /** runs so far (continue-as-new count + 1) */
  run: number;
  /** candle close of the last cycle started (decided, failed or abandoned as stale); absent from older versions */
  lastTickAsOf?: number | null;
  /** candle closes not decided at (outages, stale cycles) so far */
  missedCandles?: number;
  /** the pair's portfolio admission slot as the pair holds it (absent from older versions: none) */
  admissionSlot?: HeldSlot | null;
}

export interface TradeReviewInput {
  trade: ClosedTrade;
  /** the pair workflow that closed the trade */
  parentWorkflowId: string;
  mode: TradingMode;
  /** the account (journal run) of the pair workflow; absent from older versions */
  account?: string;
}

export interface PairStatus {
  pair: string;
  mode: TradingMode;
  paused: boolean;
  stopRequested: boolean;
  forceExitPending: boolean;
  position: PositionState | null;
  lastDecision: DecisionRecord | null;
  /** workflow (wall) time of the next wake-up, Unix ms; null while a cycle runs */
  nextWakeTime: number | null;
  /** market time of the next decision (candle close), Unix ms */
  nextDecisionAsOf: number | null;
  lastCycleAsOf: number | null;
  counters: PairState['counters'];
  /** candle closes the pair did not decide at (outages, cycles that outlived their candle); journaled as missed */
  missedCandles: number;
  /** the account traded in (journal run) */
  account: string;
  run: number;
  cyclesThisRun: number;
}

// ---- signals: fire-and-forget, accepted by servers as old as 1.19 (no Workflow Update) ----
/** Stop asking for decisions. Protective exits (emergency stop, liquidation buffer) keep running. */
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Close the position at the next candle close, bypassing the model. */
export const forceExitSignal = defineSignal('forceExit');
/** Finish the current cycle (if one is running), then complete the workflow. */
export const stopSignal = defineSignal('stop');

/** The account workflow's answer to a pair's admission request (sent by the account workflow to the requester). */
export const admissionDecisionSignal = defineSignal<[AdmissionDecision]>('admissionDecision');

// ---- the account workflow: portfolio admission for one exchange account (src/workflows/account.ts) ----
export const ACCOUNT_WORKFLOW = 'account';

/**
 * `account:<account id>@<task queue>`, e.g. `account:live@llm-trader`: one per account traded in by the workers of a
 * task queue (workers of one task queue share one configuration, so one data folder and exchange account).
 */
export function accountWorkflowId(account: string, taskQueue: string): string {
  return `account:${account}@${taskQueue}`;
}

export interface AccountWorkflowInput {
  /** the account id (`live`, `paper`, `replay-<id>`) */
  account: string;
  /** complete after this long with no slot held and no request, ms (a later request starts it again, empty) */
  idleMs: number;
  /** carried across continue-as-new */
  carried?: { book: AdmissionBook; runs: number; granted: number; refused: number; undelivered: number };
}

/** A pair asks to add exposure; the answer comes back as {@link admissionDecisionSignal} to `replyTo`. */
export interface AdmissionRequestMessage {
  request: AdmissionRequest;
  /** the requesting workflow's id (its current run gets the answer) */
  replyTo: string;
}
export const admissionRequestSignal = defineSignal<[AdmissionRequestMessage]>('admissionRequest');
/** A pair's slot now holds `notional` (0 = released): its trade closed, shrank, or its admitted order did not fill. */
export const settleSlotSignal = defineSignal<[Settlement]>('settleSlot');

export interface AccountStatus {
  account: string;
  slots: Slot[];
  /** requests answered in this execution chain, by outcome */
  granted: number;
  refused: number;
  /** answers that could not be delivered (the requester was gone): their grants were released */
  undelivered: number;
  runs: number;
}
export const accountStatusQuery = defineQuery<AccountStatus>('accountStatus');

// ---- queries ----
export const statusQuery = defineQuery<PairStatus>('status');
export const recentDecisionsQuery = defineQuery<DecisionRecord[]>('recentDecisions');

// ---- search attributes (register them with `llm-trader setup` or the dev server's --search-attribute flags) ----
export const TradingPairKey = defineSearchAttributeKey('TradingPair', 'KEYWORD');
export const TradingModeKey = defineSearchAttributeKey('TradingMode', 'KEYWORD');
export const PausedKey = defineSearchAttributeKey('Paused', 'BOOL');
export const PositionSideKey = defineSearchAttributeKey('PositionSide', 'KEYWORD');
export const LastActionKey = defineSearchAttributeKey('LastAction', 'KEYWORD');

/** Name -> type, for registration (`temporal operator search-attribute create`, dev server flags). */
export const SEARCH_ATTRIBUTES = {
  TradingPair: 'Keyword',
  TradingMode: 'Keyword',
  Paused: 'Bool',
  PositionSide: 'Keyword',
  LastAction: 'Keyword',
} as const;

export const PAIR_TRADER_WORKFLOW = 'pairTrader';
/**
 * Workflow task timeout for pair workflows. It bounds recovery: when a worker dies mid-cycle, the server gives the
 * task to another worker once this has passed. The steps run as local activities inside the task; the SDK heartbeats
 * a task whose local activities run longer than ~80 % of this (3 history events each time), so a model call of 20 s
 * adds about 6 events.
 */
export const PAIR_WORKFLOW_TASK_TIMEOUT = '10 seconds';
export const TRADE_REVIEW_WORKFLOW = 'tradeReview';

/** `pair:<exchange>:<symbol>`, e.g. `pair:binanceusdm:BTC/USDT:USDT`. */
export function pairWorkflowId(exchange: string, pair: string): string {
  return `pair:${exchange}:${pair}`;
}

/** `review:<pair>:<trade id>`: one review per closed trade; a second start with the same id is refused. */
export function reviewWorkflowId(pair: string, tradeId: string): string {
  return `review:${pair}:${tradeId}`;
}

export function positionSideLabel(side: Side | null): string {
  return side ?? 'flat';
}
