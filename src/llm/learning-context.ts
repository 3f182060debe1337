/**
 * The learning context of a decision: what the journal knows that helps the next decision on a pair (recent trades
 * with their lessons, the 30-day summary, pattern statistics, decision-quality warnings). The context builder
 * (./context-builder.ts) renders it into the prompt; the journal and the backtester build it. No tokenizer here, so
 * that a rule-based backtest does not load one.
 */
import type { ExperienceConfig } from '../core/config';
import {
  analyzePatterns,
  decisionWarnings,
  evaluateTrade,
  reflectOnTrade,
  summarizeLast30Days,
  type DecisionRecord as WarningDecisionRecord,
} from '../core/learning';
import type { ClosedTrade } from '../core/types';
import type { LearnedTrade } from './render';

/** What the journal knows that helps the next decision on a pair. Supplied by the caller; see {@link buildLearningContext}. */
export interface LearningContext {
  /** recent closed trades with their lessons, newest last (the builder shows the last `max_recent_trades_context`) */
  recentTrades: LearnedTrade[];
  /** one paragraph, e.g. the 30-day summary; null when there is none */
  summary: string | null;
  /** pattern statistics lines (best/worst patterns, keywords); empty below the pattern minimum */
  patterns: string[];
  /** decision-quality warnings about the open position (loop, no progress, profit erosion) */
  warnings: string[];
}

/** A learning context with nothing in it (a new pair, or learning disabled). */
export const NO_LEARNING: LearningContext = Object.freeze({
  recentTrades: [],
  summary: null,
  patterns: [],
  warnings: [],
}) as LearningContext;

/**
 * The learning context of `pair` at `asOf` from closed trades and the pair's recent decisions, with the learning
 * functions of src/core/learning:
 * - only trades that exited at or before `asOf` count (a backtest must not learn from the future); of the pair only
 *   when `experience.include_pair_specific_trades`, else of all pairs;
 * - recentTrades: the last `experience.max_recent_trades_context` of them, each with its reflection lessons and
 *   evaluation grade;
 * - summary: the 30-day summary ending at `asOf` (null when there is no eligible trade at all);
 * - patterns: `analyzePatterns` highlights over every eligible trade (empty below its minimum of trades);
 * - warnings: `decisionWarnings` over `decisions` (empty when flat).
 * Cost O(trades); throws (from the learning functions) on an inconsistent trade record.
 */
export function buildLearningContext(input: {
  pair: string;
  asOf: number;
  trades: readonly ClosedTrade[];
  decisions: readonly WarningDecisionRecord[];
  experience: Pick<ExperienceConfig, 'max_recent_trades_context' | 'include_pair_specific_trades'>;
}): LearningContext {
  const { pair, asOf, experience } = input;
  const eligible = input.trades
    .filter((t) => t.exitTime <= asOf && (!experience.include_pair_specific_trades || t.pair === pair))
    .sort((a, b) => a.exitTime - b.exitTime);
  const keep = experience.max_recent_trades_context;
  const recentTrades: LearnedTrade[] = (keep > 0 ? eligible.slice(-keep) : []).map((t) => ({
    pair: t.pair,
    side: t.side,
    leverage: t.leverage,
    exitTime: t.exitTime,
    durationMs: t.exitTime - t.entryTime,
    pnlPct: t.pnlPct,
    exitReason: t.exitReason,
    grade: evaluateTrade(t).grade,
    lessons: reflectOnTrade(t).lessons,
  }));
  const report = analyzePatterns(eligible);
  return {
    recentTrades,
    summary: eligible.length > 0 ? summarizeLast30Days(eligible, asOf).text : null,
    patterns: report.enough ? report.highlights : [],
    warnings: decisionWarnings(input.decisions).map((w) => w.message),
  };
}
