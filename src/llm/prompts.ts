/**
 * The two system prompts: one when the pair is flat (entries), one while a position is open (management).
 *
 * They state the limits the risk gate (src/core/risk.ts) enforces, with the CONFIGURED values, so the model is not
 * surprised by a clamp or a rejection; they say that every tool call is final, that "n/a" is a missing value, and how
 * the context's tables read. Short on purpose: they are sent with every decision.
 */
import type { RiskConfig } from '../core/config';

/** A config number as written in a prompt: at most 6 significant digits, no trailing zeros (25, 0.5, 300). */
function num(x: number): string {
  return String(Number(x.toPrecision(6)));
}

/** A fraction as a percent without sign: 0.15 -> "15", 0.005 -> "0.5". */
function pctOf(fraction: number): string {
  return num(Math.abs(fraction) * 100);
}

function opening(mainTimeframe: string): string {
  return (
    `You trade one USDT-margined perpetual futures pair. At each close of a ${mainTimeframe} candle, read the context ` +
    "and call exactly one tool. Every tool call is final: the first call is this candle's decision; text without a " +
    'tool call does nothing.'
  );
}

const READING =
  'Reading: sections start with "## "; tables are CSV with a header line; series and candles are oldest first, ' +
  'last row = last closed candle. Prices and amounts in USDT, times UTC; PnL, MFE and MAE in leveraged % of margin. ' +
  '"n/a" = not available (e.g. indicator warm-up), never 0. "Omitted to fit the token budget" lists data left out.';

/** What happens to an order beyond a leverage or size limit, per `allow_model_freedom`; `subject` starts the sentence. */
function sizeLimitRule(risk: RiskConfig, subject: string): string {
  return risk.allow_model_freedom
    ? `${subject} beyond a leverage or size limit is reduced to fit (with a note).`
    : `${subject} beyond a leverage or size limit is rejected, not reduced.`;
}

/** The exits that act without the model, while a position is open. */
function protectiveRule(risk: RiskConfig): string {
  const buffer =
    risk.liquidation_buffer > 0
      ? `; a position is closed when the price is within ${pctOf(risk.liquidation_buffer)}% of its liquidation price`
      : '';
  return (
    `- Without asking you: the emergency stop closes a position at a leveraged loss of ` +
    `${pctOf(risk.emergency_stop_loss)}% of margin (a stop order is placed with the entry)${buffer}.`
  );
}

function liquidationDistanceRule(risk: RiskConfig, mainTimeframe: string, subject: string): string | null {
  if (risk.liquidation_atr_multiple <= 0) return null;
  return `${subject} within ${num(risk.liquidation_atr_multiple)} x ATR14 (${mainTimeframe}) of the price`;
}

/**
 * The system prompt when the pair is flat: the allowed tools (signal_entry_long, signal_entry_short, signal_wait),
 * the entry limits of `risk` (leverage, margin and exposure caps, open trades, minimum confidence, cooldown,
 * liquidation distance, clamp-or-reject per `allow_model_freedom`), the protective exits that will apply to the
 * position, and how to read the context. Deterministic for a given `risk` and `mainTimeframe`.
 */
export function entrySystemPrompt(risk: RiskConfig, mainTimeframe: string): string {
  const rejected = [`confidence_score < ${num(risk.min_confidence)}`];
  if (risk.cooldown_minutes > 0) {
    rejected.push(`an entry within ${num(risk.cooldown_minutes)} min after a stop-out on this pair`);
  }
  const distance = liquidationDistanceRule(risk, mainTimeframe, 'a liquidation price');
  if (distance) rejected.push(distance);
  return [
    opening(mainTimeframe),
    'You are flat: call signal_entry_long or signal_entry_short to open a position, or signal_wait to stay flat ' +
      '(the right call without a clear edge).',
    'Risk gate limits:',
    `- Leverage <= ${num(risk.max_leverage)}x; margin <= ${num(risk.max_position_pct)}% of equity (stake_amount ` +
      `null: ${num(risk.default_stake_pct)}%); total notional of open positions <= ` +
      `${num(risk.max_total_exposure_pct)}% of equity; at most ${num(risk.max_open_trades)} open positions. ` +
      sizeLimitRule(risk, 'An entry'),
    `- Rejected: ${rejected.join('; ')}.`,
    protectiveRule(risk),
    READING,
  ].join('\n');
}

/**
 * The system prompt while a position is open: the allowed tools (signal_hold, adjust_position, signal_exit), what
 * adjust_position and signal_exit mean, the limits of `risk` on additions (adjustments per trade, minimum
 * confidence, margin and exposure caps, liquidation distance, clamp-or-reject per `allow_model_freedom`), the
 * protective exits, the decision-quality warnings, and how to read the context. Deterministic for a given `risk`
 * and `mainTimeframe`.
 */
export function positionSystemPrompt(risk: RiskConfig, mainTimeframe: string): string {
  const additions = [
    `confidence_score >= ${num(risk.min_confidence)}`,
    `position margin <= ${num(risk.max_position_pct)}% of equity`,
    `total notional of open positions <= ${num(risk.max_total_exposure_pct)}% of equity`,
  ];
  const distance = liquidationDistanceRule(risk, mainTimeframe, 'no liquidation price');
  if (distance) additions.push(distance);
  return [
    opening(mainTimeframe),
    'You have an open position: call signal_hold to keep it, adjust_position to add to or reduce it, or signal_exit ' +
      'to close it. Judge it on the evidence now, not on hope; when the reason for the trade is gone, exit.',
    `- adjust_position: adjustment_pct > 0 adds that % of the current margin (same side and leverage); < 0 closes ` +
      `that % of the position. At most ${num(risk.max_adjustments_per_trade)} ` +
      `adjustment${risk.max_adjustments_per_trade === 1 ? '' : 's'} per trade.`,
    '- signal_exit: rate the whole trade in trade_score; put a short self-review and the lesson in reason.',
    'Risk gate limits:',
    `- An addition needs ${additions.join('; ')}. ${sizeLimitRule(risk, 'An addition')}`,
    protectiveRule(risk),
    '- "Decision-quality warnings" come from your own recent decisions: address them in your reason.',
    READING,
  ].join('\n');
}
