/**
 * A closed trade as a flat snake_case row: the form the backtest's result.json and the journal's trades table share.
 * Pure. Times are Unix ms, money USDT, `*_pct` percents.
 */
import type { ClosedTrade, CloseReason, Side } from './types';

export interface TradeRow {
  /** the client order id of the entry */
  trade_id: string;
  pair: string;
  side: Side;
  /** decision time of the entry */
  entry_time: number;
  /** decision time of the exit, or the close time of the candle in which a stop or liquidation triggered */
  exit_time: number;
  /** average entry price (fills, after slippage) */
  entry_price: number;
  exit_price: number;
  /** largest quantity held, base units */
  quantity: number;
  leverage: number;
  /** largest isolated margin allocated */
  margin: number;
  /** largest quantity × average entry price */
  notional: number;
  /** net PnL after fees and funding */
  pnl: number;
  /** pnl as a percent of `margin` */
  pnl_pct: number;
  fees: number;
  /** funding paid (+) or received (−) */
  funding: number;
  /** model, emergency_stop, liquidation_buffer, force_exit, stop, liquidation, external */
  exit_reason: CloseReason;
  /** maximum favourable / adverse excursion, leveraged percent of margin */
  mfe_pct: number;
  mae_pct: number;
  holds: number;
  adjustments: number;
  entry_confidence: number;
  /** the model's reason for the entry */
  entry_reason: string;
  /** why it closed (the model's exit reason, or what the protective rule or exchange did) */
  exit_text: string;
  /** the model's self-rating from signal_exit; null when closed without the model */
  trade_score: number | null;
  /** every order of the trade (entry first) */
  client_order_ids: string[];
}

export function tradeRow(t: ClosedTrade): TradeRow {
  return {
    trade_id: t.tradeId,
    pair: t.pair,
    side: t.side,
    entry_time: t.entryTime,
    exit_time: t.exitTime,
    entry_price: t.entryPrice,
    exit_price: t.exitPrice,
    quantity: t.quantity,
    leverage: t.leverage,
    margin: t.margin,
    notional: t.notional,
    pnl: t.pnl,
    pnl_pct: t.pnlPct,
    fees: t.fees,
    funding: t.funding,
    exit_reason: t.exitReason,
    mfe_pct: t.mfePct,
    mae_pct: t.maePct,
    holds: t.holds,
    adjustments: t.adjustments,
    entry_confidence: t.entryConfidence,
    entry_reason: t.entryReason,
    exit_text: t.exitText,
    trade_score: t.tradeScore,
    client_order_ids: t.clientOrderIds.slice(),
  };
}
