/**
 * The activity interface the workflows call (type-only: workflows import it with `import type`).
 * Implementations: `createActivities(deps)` in ./index.ts.
 */
import type { ContextRequest, DecisionRecord, ExecuteRequest, MarketView, RiskRequest } from '../core/cycle';
import type { DecisionContext } from '../core/context-types';
import type { ClosedTrade, DecisionResult, Execution, Verdict } from '../core/types';
import type { ProviderDecision } from '../llm/provider';
import type { TradingMode } from '../core/config';
import type { TradeReview, Reflection, TradeEvaluation, RewardBreakdown } from '../core/learning';

export interface TradeReviewResult {
  review: TradeReview;
  reflection: Reflection;
  evaluation: TradeEvaluation;
  reward: RewardBreakdown;
}

export interface FetchMarketRequest {
  pair: string;
  asOf: number;
  since: number | null;
  /** the workflow's trading mode: a worker configured for another mode refuses to serve it */
  mode?: TradingMode;
}

export interface PairActivities {
  /** closed candles, snapshot, account, exchange-side closes and funding since the last cycle (paper: advances the ledger) */
  fetchMarket(req: FetchMarketRequest): Promise<MarketView>;
  /** the prompt: system + user messages within the token budget, plus the tool definitions */
  buildContext(req: ContextRequest): Promise<DecisionContext>;
  /** one validated decision from the configured provider; journaled to llm_decisions.jsonl and SQLite */
  decide(ctx: DecisionContext): Promise<ProviderDecision>;
  /** the risk gate with the worker's configuration and the exchange limits; the verdict is journaled */
  checkRisk(req: RiskRequest): Promise<Verdict>;
  /** places the order under its client order id (idempotent), with the protective stop on an entry */
  execute(req: ExecuteRequest): Promise<Execution>;
  /** journals one decision of a cycle (SQLite + llm_decisions.jsonl); idempotent per (owner, pair, time) */
  recordDecision(input: RecordDecisionInput): Promise<void>;
}

/** The journal step's input: a cycle's decision event, with the workflow (or backtest run) that owns it. */
export interface RecordDecisionInput {
  owner: string;
  pair: string;
  record: DecisionRecord;
  result: DecisionResult | null;
  verdict: Verdict | null;
  /** what the provider was given; the journal keeps the messages and the token count */
  context: DecisionContext | null;
  clientOrderId: string | null;
}

export interface ReviewActivities {
  /** review, self-reflection, evaluation and reward of a closed trade (pure computations, recorded in history) */
  reviewTrade(trade: ClosedTrade): Promise<TradeReviewResult>;
  /** trade_experience.jsonl, reward_learning.json and SQLite; idempotent by trade id */
  recordTrade(input: { trade: ClosedTrade } & TradeReviewResult): Promise<void>;
}

export type Activities = PairActivities & ReviewActivities;
