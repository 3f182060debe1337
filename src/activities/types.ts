/**
 * The activity interface the workflows call (type-only: workflows import it with `import type`).
 * Implementations: `createActivities(deps)` in ./index.ts.
 */
import type {
  ContextRequest,
  DecisionRecord,
  ExecuteRequest,
  MarketRequest,
  MarketView,
  RiskRequest,
} from '../core/cycle';
import type { ClosedTrade, Execution, ToolName, Verdict } from '../core/types';
import type { ProviderDecision } from '../llm/provider';
import type { TradingMode } from '../core/config';
import type { AdmissionRequest, Settlement } from '../core/admission';
import type { TradeReview, Reflection, TradeEvaluation, RewardBreakdown } from '../core/learning';

export interface TradeReviewResult {
  review: TradeReview;
  reflection: Reflection;
  evaluation: TradeEvaluation;
  reward: RewardBreakdown;
}

/**
 * The account a pair trades in: `live`, `paper`, or `replay-<id>` (one paper account per replay execution, so a rerun
 * never continues an account an earlier replay already advanced to the end of its data). Decisions and trades are
 * journaled under it (the journal's `run`). Letters, digits, `-` and `_`, at most 64 characters.
 */
export type AccountId = string;

export interface FetchMarketRequest extends MarketRequest {
  /** the workflow's trading mode: a worker configured for another mode refuses to serve it */
  mode?: TradingMode;
  /** the account to read (default: the worker's mode name, i.e. `paper`, `replay` or `live`) */
  account?: AccountId;
}

export interface ExecuteActivityRequest extends ExecuteRequest {
  /** the account to trade in (default as in {@link FetchMarketRequest}) */
  account?: AccountId;
}

/** What the context step needs besides the cycle's request: the decision's id and who owns it. */
export interface BuildContextRequest extends ContextRequest {
  /** `decisionId(owner, pair, asOf)`: names the prompt in the journal and the decision built on it */
  decisionId: string;
  owner: string;
  run: AccountId;
}

/**
 * What a workflow keeps of a built prompt: a reference. The prompt itself (system and user messages, as sent) is in
 * the journal under `decisionId` (`llm-trader decisions --show <decisionId>`), so histories stay small.
 */
export interface PromptRef {
  decisionId: string;
  /** prompt size (messages + tools), o200k tokens; null when not counted */
  tokens: number | null;
  hasPosition: boolean;
  allowedTools: ToolName[];
  /** the decision price (last main-timeframe close) */
  price: number;
}

/** The decide step's input: the prompt's reference, and the request it was built from (to rebuild it elsewhere). */
export interface DecideRequest {
  ref: PromptRef;
  request: BuildContextRequest;
}

export interface PairActivities {
  /**
   * Closed candles, account, exchange-side closes and funding since the last cycle (paper: advances the ledger). The
   * snapshot is compact (latest indicator values, the last main candle): the prompt's series are read by buildContext.
   */
  fetchMarket(req: FetchMarketRequest): Promise<MarketView>;
  /** the worker's clock, Unix ms: a workflow records it (as a local activity) where its choices depend on the time */
  wallClock(): Promise<number>;
  /** builds the prompt (system + user messages within the token budget, tool definitions), stores it, returns its reference */
  buildContext(req: BuildContextRequest): Promise<PromptRef>;
  /** one validated decision from the configured provider for a stored prompt (compact: no prompt, no reasoning text) */
  decide(req: DecideRequest): Promise<ProviderDecision>;
  /** the risk gate with the worker's configuration and the exchange limits; the verdict is journaled */
  checkRisk(req: RiskRequest): Promise<Verdict>;
  /** places the order under its client order id (idempotent), with the protective stop on an entry */
  execute(req: ExecuteActivityRequest): Promise<Execution>;
  /**
   * hands an admission request to the account's workflow (`account:<account>`), starting it if it is not running; the
   * answer comes back to `replyTo` as a signal
   */
  requestAdmission(input: { account: AccountId; request: AdmissionRequest; replyTo: string }): Promise<void>;
  /** tells the account's workflow what a pair's slot holds now (0 = released); nothing to do when it is not running */
  settleSlot(input: { account: AccountId; settlement: Settlement }): Promise<void>;
  /** journals one decision of a cycle (SQLite + llm_decisions.jsonl, with its stored prompt); idempotent per decision id */
  recordDecision(input: RecordDecisionInput): Promise<void>;
  /** journals candles a pair could not decide in time (an outage, a cycle that outlived its candle); idempotent */
  recordMissedCandles(input: MissedCandles): Promise<void>;
}

/**
 * The journal step's input: a cycle's decision event, with the workflow (or backtest run) that owns it. A regular
 * activity: this is the step a reader of the history finds the decision at (tool, arguments, reason, price, outcome).
 */
export interface RecordDecisionInput {
  decisionId: string;
  pair: string;
  /** the decision price; null when no market was read */
  price: number | null;
  /**
   * workflow time at which the decision was taken (the model's answer came back, or the protective rule fired), Unix
   * ms: a decision journaled late after a worker died was still taken on time when this is within its candle
   */
  decidedAt: number;
  record: DecisionRecord;
  result: ProviderDecision | null;
  verdict: Verdict | null;
  clientOrderId: string | null;
  owner: string;
  run: AccountId;
}

/** Candle closes in [firstClose, lastClose] (main timeframe) that a pair did not decide at. */
export interface MissedCandles {
  owner: string;
  run: AccountId;
  pair: string;
  firstClose: number;
  lastClose: number;
  count: number;
  /** outage: the pair woke (or recovered) after later candles had closed; stale: a cycle outlived its candle */
  reason: 'outage' | 'stale';
}

export interface ReviewActivities {
  /** review, self-reflection, evaluation and reward of a closed trade (pure computations, recorded in history) */
  reviewTrade(trade: ClosedTrade): Promise<TradeReviewResult>;
  /** trade_experience.jsonl, reward_learning.json and SQLite; idempotent by trade id */
  recordTrade(input: { trade: ClosedTrade; run?: AccountId } & TradeReviewResult): Promise<void>;
}

export type Activities = PairActivities & ReviewActivities;
