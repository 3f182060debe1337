/**
 * Rule-based self-reflection on a closed trade, after the original's SelfReflectionEngine: a profit bucket,
 * entry quality (MAE against MFE), exit quality (share of the peak profit kept), holding behaviour and protective
 * exits. The lessons are short English sentences with numbers; they go into later prompts. Pure.
 *
 * Units: `pnlPct`, `mfePct`, `maePct` are leveraged percentages of margin. "Adverse" below means `-maePct` (>= 0).
 */
import type { ClosedTrade } from '../types';
import { formatDuration, formatSignedPct } from './format';
import { assertReviewableTrade, describeExitReason, isLiquidationExit, isProtectiveExit, peakKept } from './review';

/**
 * Profit buckets at ±2 % and ±5 % of margin (the original's thresholds), on the leveraged net `pnlPct`:
 *
 * | bucket       | rule                 |
 * |--------------|----------------------|
 * | `big_win`    | pnlPct >= 5          |
 * | `win`        | 2 <= pnlPct < 5      |
 * | `small_win`  | 0 < pnlPct < 2       |
 * | `small_loss` | -2 < pnlPct <= 0     |
 * | `loss`       | -5 < pnlPct <= -2    |
 * | `big_loss`   | pnlPct <= -5         |
 *
 * A net PnL of exactly 0 falls in `small_loss`: the trade took risk and earned nothing.
 */
export type ProfitBucket = 'big_win' | 'win' | 'small_win' | 'small_loss' | 'loss' | 'big_loss';

/** The bucket edges, in leveraged % of margin. */
export const PROFIT_BUCKET_PCT = { big: 5, normal: 2 } as const;

export type Quality = 'good' | 'fair' | 'poor';

/**
 * Entry quality thresholds. With adverse = -maePct and favourable = mfePct (both >= 0, % of margin):
 * - poor: (adverse >= `poorMinAdversePct` and adverse >= `poorAdverseToFavourable` x favourable)
 *         or (adverse >= `deepAdversePct` and adverse > favourable) — the trade went against the entry first and
 *         further than it ever went in favour, or went deep against it;
 * - good: favourable > 0 and adverse <= `goodAdverseToFavourable` x favourable and adverse < `deepAdversePct`;
 * - fair: everything else.
 */
export const ENTRY_QUALITY_RULES = {
  goodAdverseToFavourable: 0.5,
  poorAdverseToFavourable: 2,
  poorMinAdversePct: 2,
  deepAdversePct: 5,
} as const;

/**
 * Exit quality thresholds.
 * - When the trade was meaningfully in profit (mfePct >= `minPeakPct`), on kept = pnlPct / mfePct:
 *   good when kept >= `goodKept`, poor when kept < `poorKept`, fair in between.
 * - Otherwise (never more than `minPeakPct` in profit), on the loss the exit accepted:
 *   good when pnlPct > `goodLossPct` (the loss was cut early), poor when pnlPct <= `poorLossPct`, fair in between.
 */
export const EXIT_QUALITY_RULES = {
  minPeakPct: 1,
  goodKept: 0.7,
  poorKept: 0.3,
  goodLossPct: -2,
  poorLossPct: -5,
} as const;

/** Holding behaviour: a trade with at least this many hold decisions gets a holding lesson. */
export const LONG_HOLD_COUNT = 10;

/** A big loss at this leverage or more gets a leverage lesson (the price move behind it was small). */
export const HIGH_LEVERAGE = 10;

export interface Reflection {
  bucket: ProfitBucket;
  entryQuality: Quality;
  exitQuality: Quality;
  /** short, specific English sentences with numbers, most important first (risk, then entry, exit, holding) */
  lessons: string[];
  /** one sentence: bucket, result, entry and exit quality, who closed the trade */
  summary: string;
}

/** The profit bucket of a leveraged net PnL % (see {@link ProfitBucket} for the exact rules). */
export function profitBucket(pnlPct: number): ProfitBucket {
  if (pnlPct >= PROFIT_BUCKET_PCT.big) return 'big_win';
  if (pnlPct >= PROFIT_BUCKET_PCT.normal) return 'win';
  if (pnlPct > 0) return 'small_win';
  if (pnlPct > -PROFIT_BUCKET_PCT.normal) return 'small_loss';
  if (pnlPct > -PROFIT_BUCKET_PCT.big) return 'loss';
  return 'big_loss';
}

/** Entry quality from the excursions (see {@link ENTRY_QUALITY_RULES}). */
export function entryQuality(mfePct: number, maePct: number): Quality {
  const favourable = mfePct;
  const adverse = -maePct;
  const r = ENTRY_QUALITY_RULES;
  const againstFirst = adverse >= r.poorMinAdversePct && adverse >= r.poorAdverseToFavourable * favourable;
  const deep = adverse >= r.deepAdversePct && adverse > favourable;
  if (againstFirst || deep) return 'poor';
  if (favourable > 0 && adverse <= r.goodAdverseToFavourable * favourable && adverse < r.deepAdversePct) return 'good';
  return 'fair';
}

/** Exit quality from the PnL and the peak (see {@link EXIT_QUALITY_RULES}). */
export function exitQuality(pnlPct: number, mfePct: number): Quality {
  const r = EXIT_QUALITY_RULES;
  if (mfePct >= r.minPeakPct) {
    const kept = pnlPct / mfePct;
    if (kept >= r.goodKept) return 'good';
    if (kept < r.poorKept) return 'poor';
    return 'fair';
  }
  if (pnlPct > r.goodLossPct) return 'good';
  if (pnlPct <= r.poorLossPct) return 'poor';
  return 'fair';
}

const BUCKET_LABEL: Record<ProfitBucket, string> = {
  big_win: 'Big win',
  win: 'Win',
  small_win: 'Small win',
  small_loss: 'Small loss',
  loss: 'Loss',
  big_loss: 'Big loss',
};

function pct(value: number): string {
  return formatSignedPct(value);
}

function riskLessons(trade: ClosedTrade, bucket: ProfitBucket): string[] {
  const lessons: string[] = [];
  const lev = `${trade.leverage}x`;
  switch (trade.exitReason) {
    case 'liquidation':
      lessons.push(
        `The position was liquidated at ${lev} leverage (${pct(trade.pnlPct)} of margin): ` +
          'leverage was far too high for the volatility; use lower leverage and exit at the invalidation level.',
      );
      break;
    case 'liquidation_buffer':
      lessons.push(
        `The liquidation buffer closed the trade at ${lev} leverage (${pct(trade.pnlPct)} of margin): ` +
          'the price came within reach of the liquidation price; use lower leverage.',
      );
      break;
    case 'emergency_stop':
    case 'stop':
      lessons.push(
        `The ${trade.exitReason === 'stop' ? 'exchange stop order' : 'emergency stop'} closed the trade at ` +
          `${pct(trade.pnlPct)} of margin (worst ${pct(trade.maePct)}) before the model exited; ` +
          'decide the invalidation level at entry and exit when it breaks.',
      );
      break;
    default:
      break;
  }
  if (bucket === 'big_loss' && trade.leverage >= HIGH_LEVERAGE && !isLiquidationExit(trade.exitReason)) {
    const priceMove = trade.pnlPct / trade.leverage;
    lessons.push(
      `At ${lev} leverage a ${formatSignedPct(priceMove, 2)} price move cost ${pct(trade.pnlPct)} of margin; ` +
        'size leverage to the distance of the stop.',
    );
  }
  return lessons;
}

function entryLesson(trade: ClosedTrade, quality: Quality): string | null {
  const excursions = `MAE ${pct(trade.maePct)}, MFE ${pct(trade.mfePct)}`;
  if (quality === 'good') {
    return `Good entry timing on the ${trade.side}: it went at most ${pct(trade.maePct)} against and up to ${pct(trade.mfePct)} in favour.`;
  }
  if (quality === 'poor') {
    const wait =
      trade.side === 'long'
        ? 'wait for a pullback to support or a confirmed breakout before going long'
        : 'wait for a bounce to resistance or a confirmed breakdown before going short';
    return `Poor entry timing on the ${trade.side} (${excursions}): the price moved further against the entry than in its favour; ${wait}.`;
  }
  return null;
}

function exitLesson(trade: ClosedTrade, quality: Quality, protective: boolean): string | null {
  const kept = peakKept(trade);
  if (trade.mfePct >= EXIT_QUALITY_RULES.minPeakPct && kept !== null) {
    const keptText = `${Math.round(kept * 100)}%`;
    if (quality === 'good') {
      return `Good exit: kept ${keptText} of the ${pct(trade.mfePct)} peak (closed at ${pct(trade.pnlPct)}).`;
    }
    if (quality === 'fair') {
      return `Kept ${keptText} of the ${pct(trade.mfePct)} peak (closed at ${pct(trade.pnlPct)}); trail the stop or take partial profit to keep more.`;
    }
    if (trade.pnlPct < 0) {
      return (
        `A winner turned into a loser: peak ${pct(trade.mfePct)}, closed at ${pct(trade.pnlPct)}; ` +
        `move the stop to breakeven once the trade is up ${formatSignedPct(PROFIT_BUCKET_PCT.normal, 0)} or more.`
      );
    }
    return (
      `Gave back most of the profit: peak ${pct(trade.mfePct)}, closed at ${pct(trade.pnlPct)} (kept ${keptText}); ` +
      'take partial profit or trail a stop once the trade is well in profit.'
    );
  }
  // Never meaningfully in profit. A protective exit already has its own lesson.
  if (protective) return null;
  const never = `The trade never got above ${pct(trade.mfePct)}`;
  if (quality === 'good') {
    return trade.pnlPct >= 0
      ? `${never} and was closed at ${pct(trade.pnlPct)} before it could turn into a loss.`
      : `${never} and the loss was cut early at ${pct(trade.pnlPct)}.`;
  }
  if (quality === 'fair')
    return `${never} and closed at ${pct(trade.pnlPct)}; exit sooner when the entry thesis fails.`;
  return `${never} and closed at ${pct(trade.pnlPct)}: the loss ran too far; exit at the invalidation level.`;
}

function holdingLesson(trade: ClosedTrade): string | null {
  if (trade.holds < LONG_HOLD_COUNT) return null;
  const held = `${trade.holds} holds over ${formatDuration(trade.exitTime - trade.entryTime)}`;
  if (trade.pnlPct <= -PROFIT_BUCKET_PCT.normal) {
    return `Held a losing trade through ${held} (closed at ${pct(trade.pnlPct)}); holding did not help, exit when the reason for the trade is gone.`;
  }
  if (trade.pnlPct < PROFIT_BUCKET_PCT.normal) {
    return `${held} for only ${pct(trade.pnlPct)}: the capital was tied up without progress; exit stalled trades sooner.`;
  }
  return `Patience paid: ${held} for ${pct(trade.pnlPct)}.`;
}

/**
 * Reflects on a closed trade. Throws (see `assertReviewableTrade`) when the trade record is inconsistent.
 * Lessons are ordered: protective-exit and leverage lessons, then entry, exit and holding lessons; a lesson is only
 * emitted when there is something specific to say (a fair entry has none).
 */
export function reflectOnTrade(trade: ClosedTrade): Reflection {
  assertReviewableTrade(trade, 'reflectOnTrade');
  const bucket = profitBucket(trade.pnlPct);
  const entry = entryQuality(trade.mfePct, trade.maePct);
  const exit = exitQuality(trade.pnlPct, trade.mfePct);
  const protective = isProtectiveExit(trade.exitReason);

  const lessons = [
    ...riskLessons(trade, bucket),
    entryLesson(trade, entry),
    exitLesson(trade, exit, protective),
    holdingLesson(trade),
  ].filter((lesson): lesson is string => lesson !== null);

  const summary =
    `${BUCKET_LABEL[bucket]} (${pct(trade.pnlPct)} of margin) on a ${trade.side} at ${trade.leverage}x over ` +
    `${formatDuration(trade.exitTime - trade.entryTime)}: ${entry} entry, ${exit} exit; ${describeExitReason(trade.exitReason)}.`;

  return { bucket, entryQuality: entry, exitQuality: exit, lessons, summary };
}
