/**
 * The reward of a closed trade and the running reward history. Pure.
 *
 * Formula (inputs: pnlPct = net PnL in leveraged % of margin, leverage >= 1, tradeScore = the model's 0..100
 * self-rating from signal_exit or null when a protective exit closed the trade):
 *
 * ```
 * m      = pnlPct / leverage                       the price move behind the result, % (net of fees and funding)
 * q      = clamp(m / 2, 0, 1)                      outcome quality: 0 for a loss or a flat trade, 1 for a 2 % move or more
 * c      = 1 - |tradeScore / 100 - q|              calibration of the self-rating; c = 0.5 (neutral) when tradeScore is null
 * reward = tanh( m / 2 + 0.25 * (c - 0.5) - 0.05 * ln(leverage) )
 * ```
 *
 * Properties (checked by the tests):
 * - bounded: -1 <= reward <= 1 (strictly inside except where floating point saturates tanh, |argument| > ~19);
 * - increasing in profit: at a fixed leverage and score, d(argument)/dm >= 1/2 - 0.25 * 1/2 > 0;
 * - no reward for over-rating a loser: when pnlPct <= 0, q = 0 and c = 1 - tradeScore/100, so a higher score
 *   lowers the reward; on a winner the best score is the one that matches q;
 * - leverage is risk: for the same price move m, a higher leverage lowers the reward by 0.05 * ln(leverage)
 *   (5x costs as much as a 0.16 % price move, 20x 0.30 %, 100x 0.46 %);
 * - a trade closed without the model (null score) gets no calibration credit or penalty.
 *
 * The original computed `profit_pct/100 * (1 + 0.5*(score/50 - 1))`, which pays the model for rating every winner
 * 100 and ignores leverage.
 */
import type { ClosedTrade } from '../types';
import { assertReviewableTrade } from './review';

/** The constants of the reward formula (see the module comment). */
export const REWARD_FORMULA = {
  /** price move (%) that counts as one unit of profit, and as a perfect outcome (q = 1) */
  priceMoveScalePct: 2,
  calibrationWeight: 0.25,
  leveragePenaltyPerLn: 0.05,
} as const;

export interface RewardInput {
  /** net PnL, leveraged % of margin */
  pnlPct: number;
  /** leverage of the trade, >= 1 */
  leverage: number;
  /** the model's self-rating 0..100, or null when the model did not close the trade */
  tradeScore: number | null;
}

export interface RewardBreakdown {
  /** tanh(profitTerm + calibrationTerm - riskPenalty), in [-1, 1] */
  reward: number;
  /** m = pnlPct / leverage, % */
  priceMovePct: number;
  /** q in 0..1 */
  outcomeQuality: number;
  /** c in 0..1, null when the trade has no score */
  calibration: number | null;
  /** m / 2 */
  profitTerm: number;
  /** 0.25 x (c - 0.5), 0 when the trade has no score */
  calibrationTerm: number;
  /** 0.05 x ln(leverage) */
  riskPenalty: number;
}

/**
 * Computes the reward (formula in the module comment). Throws a RangeError when pnlPct is not finite, leverage
 * is below 1 or not finite, or tradeScore is outside 0..100.
 */
export function computeReward(input: RewardInput): RewardBreakdown {
  const { pnlPct, leverage, tradeScore } = input;
  if (!Number.isFinite(pnlPct)) throw new RangeError(`computeReward: pnlPct must be a finite number, got ${pnlPct}`);
  if (!Number.isFinite(leverage) || leverage < 1) {
    throw new RangeError(`computeReward: leverage must be a finite number >= 1, got ${leverage}`);
  }
  if (tradeScore !== null && !(tradeScore >= 0 && tradeScore <= 100)) {
    throw new RangeError(`computeReward: tradeScore must be in 0..100 or null (no model exit), got ${tradeScore}`);
  }
  const f = REWARD_FORMULA;
  const priceMovePct = pnlPct / leverage;
  const outcomeQuality = Math.min(1, Math.max(0, priceMovePct / f.priceMoveScalePct));
  const calibration = tradeScore === null ? null : 1 - Math.abs(tradeScore / 100 - outcomeQuality);
  const profitTerm = priceMovePct / f.priceMoveScalePct;
  const calibrationTerm = calibration === null ? 0 : f.calibrationWeight * (calibration - 0.5);
  const riskPenalty = f.leveragePenaltyPerLn * Math.log(leverage);
  const reward = Math.tanh(profitTerm + calibrationTerm - riskPenalty);
  return { reward, priceMovePct, outcomeQuality, calibration, profitTerm, calibrationTerm, riskPenalty };
}

/** The reward of a closed trade. Throws when the trade record is inconsistent. */
export function rewardForTrade(trade: ClosedTrade): RewardBreakdown {
  assertReviewableTrade(trade, 'rewardForTrade');
  return computeReward({ pnlPct: trade.pnlPct, leverage: trade.leverage, tradeScore: trade.tradeScore });
}

// ---------------------------------------------------------------------------------------------
// Reward history
// ---------------------------------------------------------------------------------------------

export interface RewardEntry {
  tradeId: string;
  pair: string;
  /** exit time of the trade, Unix ms */
  time: number;
  reward: number;
  pnlPct: number;
  leverage: number;
  tradeScore: number | null;
}

export interface RewardHistory {
  /** the most recent entries, oldest first, at most the cap given to {@link appendReward} */
  entries: RewardEntry[];
  /** all-time number of entries, including those dropped from `entries` by the cap */
  count: number;
  /** all-time sum of rewards, including those dropped from `entries` by the cap */
  total: number;
}

/** How many entries the history keeps (the original kept a deque of 1000). */
export const REWARD_HISTORY_CAP = 1000;

/** Size of the "recent" window for `last10Mean` and for each half of the trend comparison. */
export const REWARD_RECENT_WINDOW = 10;

/** A trend needs the recent mean to differ from the previous window's mean by more than this. */
export const REWARD_TREND_THRESHOLD = 0.05;

export function emptyRewardHistory(): RewardHistory {
  return { entries: [], count: 0, total: 0 };
}

/**
 * Returns a new history with `entry` appended (the input is not modified) and the oldest entries dropped beyond
 * `cap`. Idempotent per trade: when an entry with the same tradeId is already kept, the history is returned
 * unchanged, so a retried review cannot count a trade twice. Throws a RangeError for a non-finite reward or a cap
 * that is not a positive integer.
 */
export function appendReward(history: RewardHistory, entry: RewardEntry, cap = REWARD_HISTORY_CAP): RewardHistory {
  if (!Number.isInteger(cap) || cap < 1)
    throw new RangeError(`appendReward: cap must be a positive integer, got ${cap}`);
  if (!Number.isFinite(entry.reward)) {
    throw new RangeError(`appendReward: reward of trade ${entry.tradeId} must be a finite number, got ${entry.reward}`);
  }
  if (history.entries.some((e) => e.tradeId === entry.tradeId)) return history;
  const entries = [...history.entries, entry];
  return {
    entries: entries.length > cap ? entries.slice(entries.length - cap) : entries,
    count: history.count + 1,
    total: history.total + entry.reward,
  };
}

export type RewardTrend = 'improving' | 'declining' | 'flat' | 'insufficient_data';

export interface RewardStats {
  /** all-time */
  count: number;
  /** all-time sum */
  total: number;
  /** all-time mean; null when empty */
  mean: number | null;
  /** mean of the last min(10, kept) entries; null when empty */
  last10Mean: number | null;
  /**
   * With w = min(10, floor(kept / 2)): mean of the last w entries minus the mean of the w before them;
   * null when w < 2.
   */
  trendDelta: number | null;
  /** improving when trendDelta > 0.05, declining when < -0.05, flat otherwise; insufficient_data when w < 2 */
  trend: RewardTrend;
}

function mean(values: number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Summary statistics of a reward history (definitions on {@link RewardStats}). */
export function rewardStats(history: RewardHistory): RewardStats {
  const rewards = history.entries.map((e) => e.reward);
  const n = rewards.length;
  const last10Mean = n === 0 ? null : mean(rewards.slice(Math.max(0, n - REWARD_RECENT_WINDOW)));
  const w = Math.min(REWARD_RECENT_WINDOW, Math.floor(n / 2));
  let trendDelta: number | null = null;
  let trend: RewardTrend = 'insufficient_data';
  if (w >= 2) {
    trendDelta = mean(rewards.slice(n - w)) - mean(rewards.slice(n - 2 * w, n - w));
    trend =
      trendDelta > REWARD_TREND_THRESHOLD ? 'improving' : trendDelta < -REWARD_TREND_THRESHOLD ? 'declining' : 'flat';
  }
  return {
    count: history.count,
    total: history.total,
    mean: history.count === 0 ? null : history.total / history.count,
    last10Mean,
    trendDelta,
    trend,
  };
}
