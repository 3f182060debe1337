/**
 * The structured review of one closed trade: the facts every later step (reflection, evaluation, reward, the
 * journal and the prompt) starts from. Pure.
 *
 * Units: `pnlPct`, `mfePct` and `maePct` are leveraged percentages of the trade's (largest) margin, as in
 * {@link ClosedTrade}; times are Unix milliseconds.
 */
import type { ClosedTrade, CloseReason, Side } from '../types';
import { formatDuration, formatSignedPct, formatUsdt } from './format';

export type TradeOutcome = 'win' | 'loss' | 'breakeven';

const HOUR_MS = 3_600_000;

/**
 * Exits that fired without the model deciding to exit: the bot's emergency stop and liquidation buffer, the
 * exchange-side stop order placed with the entry, and an exchange liquidation. An operator's force exit and a
 * close made outside the bot are not protective.
 */
export const PROTECTIVE_EXIT_REASONS: readonly CloseReason[] = [
  'emergency_stop',
  'liquidation_buffer',
  'stop',
  'liquidation',
];

/** True when the trade was closed by a protective rule rather than by the model (see {@link PROTECTIVE_EXIT_REASONS}). */
export function isProtectiveExit(reason: CloseReason): boolean {
  return PROTECTIVE_EXIT_REASONS.includes(reason);
}

/** True for the exits that mean the position came close to (or reached) its liquidation price. */
export function isLiquidationExit(reason: CloseReason): boolean {
  return reason === 'liquidation' || reason === 'liquidation_buffer';
}

/**
 * Win, loss or breakeven from the sign of the net PnL (after fees and funding). Only an exactly zero net PnL is
 * breakeven: a trade that went nowhere and paid fees is a loss.
 */
export function tradeOutcome(trade: Pick<ClosedTrade, 'pnl'>): TradeOutcome {
  if (trade.pnl > 0) return 'win';
  if (trade.pnl < 0) return 'loss';
  return 'breakeven';
}

/**
 * Share of the peak profit kept at exit: `pnlPct / mfePct` (1 = exited at the peak, 0 = gave it all back,
 * negative = closed in a loss after having been in profit). `null` when the trade was never in profit
 * (`mfePct <= 0`), since there was no peak to keep. Not clamped: net PnL can exceed the price-based MFE slightly
 * when funding was received.
 */
export function peakKept(trade: Pick<ClosedTrade, 'pnlPct' | 'mfePct'>): number | null {
  return trade.mfePct > 0 ? trade.pnlPct / trade.mfePct : null;
}

/** Lower-case English phrase for who or what closed the trade, e.g. `closed by the emergency stop`. */
export function describeExitReason(reason: CloseReason): string {
  switch (reason) {
    case 'model':
      return 'closed by the model';
    case 'emergency_stop':
      return 'closed by the emergency stop';
    case 'liquidation_buffer':
      return 'closed by the liquidation buffer';
    case 'force_exit':
      return 'closed by the operator (force exit)';
    case 'stop':
      return 'closed by the exchange stop order';
    case 'liquidation':
      return 'liquidated by the exchange';
    case 'external':
      return 'closed outside the bot';
  }
}

/**
 * Throws a RangeError naming the trade and the field when a closed trade cannot be reviewed: a non-finite
 * number, a non-positive margin or leverage below 1, an exit before the entry, MFE below 0 or MAE above 0.
 * These only happen with a corrupt journal row or a bug in the position tracker, so they must not be averaged in.
 */
export function assertReviewableTrade(trade: ClosedTrade, where: string): void {
  const fail = (what: string): never => {
    throw new RangeError(
      `${where}: trade ${trade.tradeId} (${trade.pair}) ${what}; fix the trade record (journal row or position tracker) before reviewing it`,
    );
  };
  const numbers: (keyof ClosedTrade)[] = [
    'entryTime',
    'exitTime',
    'pnl',
    'pnlPct',
    'leverage',
    'margin',
    'mfePct',
    'maePct',
    'holds',
  ];
  for (const key of numbers) {
    const value = trade[key];
    if (typeof value !== 'number' || !Number.isFinite(value)) fail(`has a non-finite ${key} (${String(value)})`);
  }
  if (trade.exitTime < trade.entryTime) fail(`exits (${trade.exitTime}) before it enters (${trade.entryTime})`);
  if (trade.leverage < 1) fail(`has leverage ${trade.leverage}; leverage must be >= 1`);
  if (trade.margin <= 0) fail(`has margin ${trade.margin}; margin must be > 0`);
  if (trade.mfePct < 0) fail(`has mfePct ${trade.mfePct}; the maximum favourable excursion is >= 0`);
  if (trade.maePct > 0) fail(`has maePct ${trade.maePct}; the maximum adverse excursion is <= 0`);
  if (trade.tradeScore !== null && !(trade.tradeScore >= 0 && trade.tradeScore <= 100)) {
    fail(`has tradeScore ${trade.tradeScore}; a trade score is 0..100 or null`);
  }
}

export interface TradeReview {
  tradeId: string;
  pair: string;
  side: Side;
  leverage: number;
  outcome: TradeOutcome;
  /** net PnL after fees and funding, USDT */
  pnl: number;
  /** net PnL, leveraged % of margin */
  pnlPct: number;
  durationMs: number;
  durationHours: number;
  /** maximum favourable excursion, leveraged % of margin (>= 0) */
  mfePct: number;
  /** maximum adverse excursion, leveraged % of margin (<= 0) */
  maePct: number;
  /** pnlPct / mfePct when mfePct > 0, else null (see {@link peakKept}) */
  peakKept: number | null;
  /** percentage points of margin given back from the peak: mfePct - pnlPct (>= 0 unless funding lifted the PnL) */
  givenBackPct: number;
  exitReason: CloseReason;
  protectiveExit: boolean;
  holds: number;
  adjustments: number;
  /** the model's self-rating (0..100) from signal_exit; null when the model did not close the trade */
  tradeScore: number | null;
  /** one English paragraph with the numbers above, for the journal and for prompts */
  summary: string;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Reviews a closed trade. Throws (see {@link assertReviewableTrade}) when the trade record is inconsistent.
 *
 * Example summary: "BTC/USDT:USDT long 10x: a win of +12.40 USDT (+6.2% of margin) over 5h 30m. Best +9.1%,
 * worst -2.3%; kept 68% of the +9.1% peak. Closed by the model (self-score 78) after 9 holds and 1 adjustment."
 * A trade never in profit says "never in profit" instead of the kept share, one that closed below zero after a peak
 * says "gave back all of the +3.0% peak and more"; a trade closed without the model has no self-score.
 */
export function reviewTrade(trade: ClosedTrade): TradeReview {
  assertReviewableTrade(trade, 'reviewTrade');
  const outcome = tradeOutcome(trade);
  const durationMs = trade.exitTime - trade.entryTime;
  const kept = peakKept(trade);

  const result =
    outcome === 'breakeven'
      ? `breakeven (${formatUsdt(trade.pnl)})`
      : `a ${outcome} of ${formatUsdt(trade.pnl)} (${formatSignedPct(trade.pnlPct)} of margin)`;
  const peak =
    kept === null
      ? 'never in profit'
      : kept < 0
        ? `gave back all of the ${formatSignedPct(trade.mfePct)} peak and more`
        : `kept ${Math.round(kept * 100)}% of the ${formatSignedPct(trade.mfePct)} peak`;
  const exit = describeExitReason(trade.exitReason);
  const score = trade.tradeScore === null ? '' : ` (self-score ${trade.tradeScore})`;
  const summary =
    `${trade.pair} ${trade.side} ${trade.leverage}x: ${result} over ${formatDuration(durationMs)}. ` +
    `Best ${formatSignedPct(trade.mfePct)}, worst ${formatSignedPct(trade.maePct)}; ${peak}. ` +
    `${exit.charAt(0).toUpperCase()}${exit.slice(1)}${score} after ${plural(trade.holds, 'hold')} and ` +
    `${plural(trade.adjustments, 'adjustment')}.`;

  return {
    tradeId: trade.tradeId,
    pair: trade.pair,
    side: trade.side,
    leverage: trade.leverage,
    outcome,
    pnl: trade.pnl,
    pnlPct: trade.pnlPct,
    durationMs,
    durationHours: durationMs / HOUR_MS,
    mfePct: trade.mfePct,
    maePct: trade.maePct,
    peakKept: kept,
    givenBackPct: trade.mfePct - trade.pnlPct,
    exitReason: trade.exitReason,
    protectiveExit: isProtectiveExit(trade.exitReason),
    holds: trade.holds,
    adjustments: trade.adjustments,
    tradeScore: trade.tradeScore,
    summary,
  };
}
