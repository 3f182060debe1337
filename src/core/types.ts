/**
 * Domain types shared by every layer. Pure data: no classes, no I/O, safe to import from workflow code.
 *
 * Conventions
 * - Times are Unix milliseconds, UTC. A candle's `time` is its OPEN time (as exchanges report it);
 *   its close time is `time + timeframeMs`.
 * - Prices and quantities are plain numbers (USDT-margined linear perpetuals: quantity in base units,
 *   notional = quantity x price in USDT).
 * - A value that cannot be computed yet (indicator warm-up, missing data) is `null`, never 0.
 */

export interface Candle {
  /** open time, Unix ms */
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export type Side = 'long' | 'short';

/** Latest value of every indicator for one timeframe; `null` while an indicator is still warming up. */
export interface IndicatorValues {
  ema20: number | null;
  ema50: number | null;
  ema100: number | null;
  rsi14: number | null;
  macd: number | null;
  macdSignal: number | null;
  macdHist: number | null;
  bbUpper: number | null;
  bbMiddle: number | null;
  bbLower: number | null;
  atr14: number | null;
  adx14: number | null;
  mfi14: number | null;
  obv: number | null;
}

/** Short recent series (oldest first) used by prompts and by the baseline policy. */
export interface SeriesTails {
  close: number[];
  volume: number[];
  rsi14: (number | null)[];
  macd: (number | null)[];
  macdHist: (number | null)[];
  ema20: (number | null)[];
  ema50: (number | null)[];
  adx14: (number | null)[];
}

export interface TimeframeSnapshot {
  timeframe: string;
  /** open time of the last CLOSED candle of this timeframe at `asOf` */
  lastCandleTime: number;
  close: number;
  /** % change of the last close versus the previous close; null with fewer than 2 candles */
  changePct: number | null;
  indicators: IndicatorValues;
  tails: SeriesTails;
  /** the last few raw candles (oldest first); may be empty for informative timeframes */
  candles: Candle[];
}

export interface FundingInfo {
  /** latest known funding rate (fraction per funding interval, e.g. 0.0001 = 0.01 %) */
  rate: number | null;
  /** time of that funding event */
  time: number | null;
}

/** Everything the decision cycle knows about the market of one pair at `asOf`. Compact by design. */
export interface MarketSnapshot {
  pair: string;
  /** decision time: the close time of the last closed main-timeframe candle */
  asOf: number;
  mainTimeframe: string;
  /** last close of the main timeframe */
  price: number;
  /** keyed by timeframe string ('30m', '1h', '4h', '1d'); the main timeframe is always present */
  timeframes: Record<string, TimeframeSnapshot>;
  funding: FundingInfo;
}

/** A position as the exchange (paper or live) reports it. */
export interface ExchangePosition {
  pair: string;
  side: Side;
  quantity: number;
  entryPrice: number;
  leverage: number;
  margin: number;
  notional: number;
  liquidationPrice: number | null;
  unrealizedPnl: number;
}

/** A position closed by the exchange itself (stop order, liquidation) rather than by a cycle's order. */
export interface ExternalClose {
  pair: string;
  time: number;
  price: number;
  quantity: number;
  fee: number;
  reason: 'stop' | 'liquidation' | 'external';
  clientOrderId: string | null;
}

export interface AccountSnapshot {
  /** cash + margin in use + unrealised PnL, USDT */
  equity: number;
  /** cash available for new margin */
  available: number;
  /** margin locked in open positions */
  usedMargin: number;
  /** every open position of the account, all pairs */
  positions: ExchangePosition[];
  /** closes the exchange performed on this snapshot's pair since the previous cycle */
  externalCloses: ExternalClose[];
}

/** What the market looked like when a position was opened, to tell the model how it changed since. */
export interface MarketStateSummary {
  price: number;
  atr14: number | null;
  rsi14: number | null;
  ema20: number | null;
  ema50: number | null;
  macdHist: number | null;
  adx14: number | null;
}

/** The workflow's mirror of the open position of its pair, with the trade tracker (MFE/MAE, holds). */
export interface PositionState {
  tradeId: string;
  pair: string;
  side: Side;
  entryTime: number;
  /** average entry price */
  entryPrice: number;
  quantity: number;
  leverage: number;
  /** isolated margin currently allocated, USDT */
  margin: number;
  /** largest quantity held during the trade (a reduce lowers `quantity`, not this) */
  maxQuantity: number;
  /** largest isolated margin allocated during the trade, USDT */
  maxMargin: number;
  /** sum of entry and adjustment fees paid so far, USDT */
  fees: number;
  /** funding paid (positive) or received (negative) so far, USDT */
  funding: number;
  /** realised PnL of partial reductions so far (before fees), USDT */
  realizedPnl: number;
  liquidationPrice: number | null;
  entryReason: string;
  entryConfidence: number;
  entryMarket: MarketStateSummary;
  /** number of adjust_position orders executed on this trade */
  adjustments: number;
  /** number of hold decisions while this trade was open */
  holds: number;
  /** best and worst price seen since entry (from candle highs and lows) */
  highestPrice: number;
  lowestPrice: number;
  /** maximum favourable / adverse excursion in leveraged % of margin (MFE >= 0, MAE <= 0) */
  mfePct: number;
  maePct: number;
  /** leveraged PnL % at the last cycle (for drawdown-from-peak and erosion warnings) */
  lastPnlPct: number;
  clientOrderIds: string[];
  /**
   * client order id of the protective stop on the exchange for this position (it is replaced when the position is
   * increased or reduced); null: none. Absent in states recorded before stops were replaced: the entry's stop
   * (`stopOrderId(tradeId)`).
   */
  stopOrderId?: string | null;
}

// ---------------------------------------------------------------------------------------------
// Decisions (the six tools)
// ---------------------------------------------------------------------------------------------

export type ToolName =
  'signal_entry_long' | 'signal_entry_short' | 'signal_exit' | 'adjust_position' | 'signal_hold' | 'signal_wait';

export type TrendStrength = 'strong' | 'medium' | 'weak';

export interface EntryArgs {
  pair: string;
  leverage: number;
  /** margin to commit in USDT; null = let the risk gate size it */
  stake_amount: number | null;
  confidence_score: number;
  key_support: number;
  key_resistance: number;
  rsi_value: number;
  trend_strength: TrendStrength;
  reason: string;
}

export interface ExitArgs {
  pair: string;
  confidence_score: number;
  rsi_value: number;
  trade_score: number;
  reason: string;
}

export interface AdjustArgs {
  pair: string;
  /** + adds, - reduces; percent of the current margin; never 0 */
  adjustment_pct: number;
  confidence_score: number;
  key_support: number;
  key_resistance: number;
  reason: string;
}

export interface HoldArgs {
  pair: string;
  confidence_score: number;
  rsi_value: number;
  reason: string;
}

export type Decision =
  | { tool: 'signal_entry_long'; args: EntryArgs }
  | { tool: 'signal_entry_short'; args: EntryArgs }
  | { tool: 'signal_exit'; args: ExitArgs }
  | { tool: 'adjust_position'; args: AdjustArgs }
  | { tool: 'signal_hold'; args: HoldArgs }
  | { tool: 'signal_wait'; args: HoldArgs };

export type DecisionSource = 'openai' | 'baseline' | 'replay' | 'cache' | 'fallback';

export interface TokenUsage {
  input: number;
  output: number;
  /** of `input`, the prompt tokens the server served from its prompt cache, when it reports them */
  cachedInput?: number;
}

/** The output of the `decide` step. */
export interface DecisionResult {
  decision: Decision;
  source: DecisionSource;
  model: string;
  usage: TokenUsage;
  latencyMs: number;
  /** validation problems met on the way (repair round, fallback); empty when the first answer was valid */
  problems: string[];
}

// ---------------------------------------------------------------------------------------------
// Risk gate and execution
// ---------------------------------------------------------------------------------------------

export type CloseReason =
  'model' | 'emergency_stop' | 'liquidation_buffer' | 'force_exit' | 'stop' | 'liquidation' | 'external';

export type OrderIntent =
  | {
      kind: 'open';
      pair: string;
      side: Side;
      leverage: number;
      margin: number;
      quantity: number;
      /** reference (decision) price used for sizing */
      price: number;
      /** protective stop placed with the entry (emergency stop level); null when disabled */
      stopPrice: number | null;
    }
  | { kind: 'increase'; pair: string; side: Side; leverage: number; margin: number; quantity: number; price: number }
  | { kind: 'reduce'; pair: string; side: Side; quantity: number; price: number }
  | { kind: 'close'; pair: string; side: Side; quantity: number; price: number; reason: CloseReason };

export type Verdict =
  /** nothing to do (hold / wait) */
  | { status: 'none' }
  /** the order may go out; `notes` says what was clamped and why */
  | { status: 'approved'; intent: OrderIntent; notes: string[] }
  | { status: 'rejected'; reasons: string[] };

export interface Fill {
  clientOrderId: string;
  pair: string;
  /** buy increases a long / reduces a short */
  side: 'buy' | 'sell';
  price: number;
  quantity: number;
  fee: number;
  time: number;
  reduceOnly: boolean;
}

export interface Execution {
  clientOrderId: string;
  status: 'filled' | 'rejected';
  fills: Fill[];
  /** the position of the pair on the exchange after the order (null = flat) */
  position: ExchangePosition | null;
  /** exchange's reason when rejected */
  error: string | null;
  /**
   * the protective stop on the exchange for the position after this order: its client order id, null when there is
   * none; absent (executions recorded before): unchanged
   */
  stopOrderId?: string | null;
}

/** One closed trade, as reviewed, journaled and reported. */
export interface ClosedTrade {
  tradeId: string;
  pair: string;
  side: Side;
  entryTime: number;
  exitTime: number;
  entryPrice: number;
  exitPrice: number;
  /** largest quantity held */
  quantity: number;
  leverage: number;
  /** largest margin allocated */
  margin: number;
  notional: number;
  /** net PnL in USDT after fees and funding */
  pnl: number;
  /** net PnL as % of the largest margin (leveraged return) */
  pnlPct: number;
  fees: number;
  funding: number;
  exitReason: CloseReason;
  mfePct: number;
  maePct: number;
  holds: number;
  adjustments: number;
  entryReason: string;
  exitText: string;
  /** the model's self-rating from signal_exit; null when the trade was closed without the model */
  tradeScore: number | null;
  entryConfidence: number;
  clientOrderIds: string[];
}
