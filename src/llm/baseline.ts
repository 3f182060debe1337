/**
 * The baseline policy: a deterministic, rule-based trend follower that answers with the same six tool calls as the
 * model. It is the offline default provider, and the reference every LLM result is compared with.
 *
 * Rules (main timeframe unless said otherwise; a `null` indicator never passes a rule):
 * - Enter long when EMA20 > EMA50, close > EMA50, ADX14 >= 20 (a trend exists), 50 < RSI14 < 70 (momentum without
 *   being overbought), MACD histogram > 0, and the higher timeframe (4h, else 1h) agrees (EMA20 > EMA50 there).
 *   Short is the mirror image (RSI between 30 and 50).
 * - Leverage is volatility-scaled: a 2 x ATR move against the entry costs about 10 % of margin
 *   (leverage = floor(0.10 / (2 x ATR / price)), between 1 and 10). The stake is left to the risk gate.
 * - Confidence = 60 + 2 x (ADX - 20), capped at 90.
 * - In a position: exit when EMA20 crosses against the position, or on a chandelier stop (close beyond the best price
 *   since entry by 3 x ATR); take half off once when the leveraged PnL reaches +30 %; otherwise hold.
 */
import type {
  Decision,
  DecisionResult,
  IndicatorValues,
  MarketSnapshot,
  PositionState,
  TimeframeSnapshot,
} from '../core/types';
import type { DecisionContext } from '../core/context-types';
import type { DecisionProvider } from './provider';

export const BASELINE_MODEL = 'baseline-trend-v1';

const ADX_MIN = 20;
const TARGET_LOSS_AT_2ATR = 0.1;
const MAX_BASELINE_LEVERAGE = 10;
const CHANDELIER_ATR = 3;
const PARTIAL_TAKE_PROFIT_PCT = 30;

function higherTimeframe(snapshot: MarketSnapshot): TimeframeSnapshot | null {
  return snapshot.timeframes['4h'] ?? snapshot.timeframes['1h'] ?? null;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Price decimals that keep ~6 significant digits for this price scale. */
function priceDigits(price: number): number {
  return Math.max(0, Math.min(8, 5 - Math.floor(Math.log10(Math.abs(price) || 1))));
}

function levels(main: TimeframeSnapshot, price: number): { support: number; resistance: number } {
  const candles = main.candles;
  const digits = priceDigits(price);
  if (candles.length === 0) return { support: round(price, digits), resistance: round(price, digits) };
  let low = Infinity;
  let high = -Infinity;
  for (const c of candles) {
    if (c.low < low) low = c.low;
    if (c.high > high) high = c.high;
  }
  return { support: round(low, digits), resistance: round(high, digits) };
}

function fmt(v: number | null, digits = 1): string {
  return v === null ? 'n/a' : v.toFixed(digits);
}

function trendDirection(ind: IndicatorValues, close: number): 'up' | 'down' | null {
  const { ema20, ema50 } = ind;
  if (ema20 === null || ema50 === null) return null;
  if (ema20 > ema50 && close > ema50) return 'up';
  if (ema20 < ema50 && close < ema50) return 'down';
  return null;
}

function wait(pair: string, rsi: number | null, reason: string): Decision {
  return { tool: 'signal_wait', args: { pair, confidence_score: 50, rsi_value: round(rsi ?? 50, 1), reason } };
}

function exit(pair: string, rsi: number, pnl: number, reason: string): Decision {
  return {
    tool: 'signal_exit',
    args: {
      pair,
      confidence_score: 75,
      rsi_value: rsi,
      // self-rating follows the outcome: 50 at break-even, +/-1 per leveraged % (clamped)
      trade_score: Math.max(0, Math.min(100, Math.round(50 + pnl))),
      reason,
    },
  };
}

function entryDecision(snapshot: MarketSnapshot, main: TimeframeSnapshot): Decision {
  const ind = main.indicators;
  const price = snapshot.price;
  const rsi = ind.rsi14;

  const direction = trendDirection(ind, main.close);
  const { adx14: adx, macdHist, atr14: atr } = ind;
  if (direction === null || adx === null || rsi === null || macdHist === null || atr === null) {
    return wait(
      snapshot.pair,
      rsi,
      `No clear trend: EMA20 ${fmt(ind.ema20, 2)} vs EMA50 ${fmt(ind.ema50, 2)}, close ${main.close}, ADX ${fmt(adx)}.`,
    );
  }
  if (adx < ADX_MIN) return wait(snapshot.pair, rsi, `Trend too weak: ADX ${fmt(adx)} < ${ADX_MIN}.`);
  const htf = higherTimeframe(snapshot);
  const htfDirection = htf ? trendDirection(htf.indicators, htf.close) : null;
  if (htf && htfDirection !== direction) {
    return wait(
      snapshot.pair,
      rsi,
      `${htf.timeframe} trend (${htfDirection ?? 'none'}) does not confirm the ${main.timeframe} ${direction}trend.`,
    );
  }
  const momentumOk = direction === 'up' ? rsi > 50 && rsi < 70 && macdHist > 0 : rsi > 30 && rsi < 50 && macdHist < 0;
  if (!momentumOk) {
    return wait(
      snapshot.pair,
      rsi,
      `Momentum does not confirm the ${direction}trend: RSI ${fmt(rsi)}, MACD histogram ${fmt(macdHist, 4)}.`,
    );
  }
  const { support, resistance } = levels(main, price);
  const leverage = Math.max(1, Math.min(MAX_BASELINE_LEVERAGE, Math.floor(TARGET_LOSS_AT_2ATR / ((2 * atr) / price))));
  const confidence = Math.min(90, Math.round(60 + 2 * (adx - ADX_MIN)));
  const strength = adx >= 35 ? 'strong' : adx >= 25 ? 'medium' : 'weak';
  const args = {
    pair: snapshot.pair,
    leverage,
    stake_amount: null,
    confidence_score: confidence,
    key_support: support,
    key_resistance: resistance,
    rsi_value: round(rsi, 1),
    trend_strength: strength,
    reason:
      `${direction === 'up' ? 'Uptrend' : 'Downtrend'} on ${main.timeframe}: EMA20 ${fmt(ind.ema20, 2)} ${direction === 'up' ? '>' : '<'} EMA50 ${fmt(ind.ema50, 2)}, ` +
      `ADX ${fmt(adx)}, RSI ${fmt(rsi)}, MACD histogram ${fmt(macdHist, 4)}` +
      `${htf ? `, confirmed by ${htf.timeframe}` : ''}. Leverage ${leverage}x so 2 ATR costs about ${TARGET_LOSS_AT_2ATR * 100}% of margin.`,
  } as const;
  return direction === 'up' ? { tool: 'signal_entry_long', args } : { tool: 'signal_entry_short', args };
}

function positionDecision(snapshot: MarketSnapshot, main: TimeframeSnapshot, position: PositionState): Decision {
  const ind = main.indicators;
  const price = snapshot.price;
  const rsi = round(ind.rsi14 ?? 50, 1);
  const pnl = position.lastPnlPct;
  const long = position.side === 'long';
  const { ema20, ema50, atr14: atr } = ind;
  if (ema20 !== null && ema50 !== null && (long ? ema20 < ema50 : ema20 > ema50)) {
    return exit(
      snapshot.pair,
      rsi,
      pnl,
      `Trend turned against the ${position.side}: EMA20 ${ema20.toFixed(2)} crossed EMA50 ${ema50.toFixed(2)}. PnL ${pnl.toFixed(1)}%.`,
    );
  }
  if (atr !== null) {
    const stop = long ? position.highestPrice - CHANDELIER_ATR * atr : position.lowestPrice + CHANDELIER_ATR * atr;
    if (long ? price < stop : price > stop) {
      return exit(
        snapshot.pair,
        rsi,
        pnl,
        `Chandelier stop: price ${price} beyond ${stop.toFixed(priceDigits(price))} (${CHANDELIER_ATR} ATR from the best price). PnL ${pnl.toFixed(1)}%.`,
      );
    }
  }
  const { support, resistance } = levels(main, price);
  if (pnl >= PARTIAL_TAKE_PROFIT_PCT && position.adjustments === 0) {
    return {
      tool: 'adjust_position',
      args: {
        pair: snapshot.pair,
        adjustment_pct: -50,
        confidence_score: 70,
        key_support: support,
        key_resistance: resistance,
        reason: `Take half off at +${pnl.toFixed(1)}% leveraged PnL; let the rest run with the trend.`,
      },
    };
  }
  return {
    tool: 'signal_hold',
    args: {
      pair: snapshot.pair,
      confidence_score: 65,
      rsi_value: rsi,
      reason: `Trend intact (EMA20 ${fmt(ema20, 2)} vs EMA50 ${fmt(ema50, 2)}), PnL ${pnl.toFixed(1)}%; holding.`,
    },
  };
}

/** The baseline decision for a context. Pure and deterministic. */
export function baselineDecision(ctx: Pick<DecisionContext, 'snapshot' | 'position'>): Decision {
  const { snapshot, position } = ctx;
  const main = snapshot.timeframes[snapshot.mainTimeframe];
  if (!main) throw new Error(`baseline: snapshot of ${snapshot.pair} has no main timeframe ${snapshot.mainTimeframe}`);
  return position ? positionDecision(snapshot, main, position) : entryDecision(snapshot, main);
}

/** Shared by every baseline result (results are read-only): the baseline uses no model tokens and has no problems. */
const NO_USAGE: DecisionResult['usage'] = Object.freeze({ input: 0, output: 0 });
const NO_PROBLEMS = Object.freeze([]) as unknown as string[];

export class BaselineProvider implements DecisionProvider {
  readonly name = 'baseline';

  /** Synchronous: a backtest's cycle then runs through without suspending (see `Step` in src/core/cycle.ts). */
  decide(ctx: DecisionContext): DecisionResult {
    return {
      decision: baselineDecision(ctx),
      source: 'baseline',
      model: BASELINE_MODEL,
      usage: NO_USAGE,
      latencyMs: 0,
      problems: NO_PROBLEMS,
    };
  }
}
