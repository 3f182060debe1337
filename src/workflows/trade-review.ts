/**
 * tradeReview: one child workflow per closed trade (id `review:<pair>:<trade id>`, parent close policy ABANDON).
 * Reviews the trade (review summary, self-reflection, evaluation, reward), then journals it: trade_experience.jsonl,
 * reward_learning.json and SQLite. Idempotent: the journal writes are keyed by trade id, so a second run writes nothing.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { ReviewActivities, TradeReviewResult } from '../activities/types';
import { CONFIGURATION_ERROR } from '../core/error-types';
import type { TradeReviewInput } from './messages';

// pure computations and one journal write: a worker that dies meanwhile hands the review on after 10 s, not a minute
const reviewer = proxyActivities<ReviewActivities>({
  startToCloseTimeout: '10s',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '5m',
    nonRetryableErrorTypes: [CONFIGURATION_ERROR],
  },
});

export async function tradeReview(input: TradeReviewInput): Promise<TradeReviewResult> {
  const result = await reviewer.reviewTrade(input.trade);
  await reviewer.recordTrade({ trade: input.trade, ...(input.account ? { run: input.account } : {}), ...result });
  return result;
}
