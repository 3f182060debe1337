/**
 * The protective stop kept on the exchange for an open position: a reduce-only stop-market order for the WHOLE
 * position at the emergency-stop level, so the loss limit holds even when no worker runs. Pure: the order step
 * (activities, backtests) computes the plan here and carries it out with its exchange.
 *
 * After a filled order that leaves the position `after` (the exchange's):
 * - flat: the current stop is cancelled (it must not fire on a later position);
 * - open: the entry's stop is placed, at the intent's stop price, for the filled quantity;
 * - increased or reduced (or a close that filled in part): a NEW stop replaces the current one, for the new quantity,
 *   at the emergency-stop level of the new average entry price (`stopPriceFor`). Its client order id is the order's
 *   own plus `s` (`stopOrderId(clientOrderId)`), so every order that changes the position names the stop it leaves,
 *   and a retried order step finds the stop it placed. The new stop is placed BEFORE the old one is cancelled: the
 *   position is never without one (both are reduce-only, so the second to trigger finds nothing to close).
 */
import type { ExecuteRequest } from './cycle';
import { stopOrderId } from './ids';
import { stopPriceFor } from './risk';
import type { ExchangePosition } from './types';

export interface StopPlan {
  /** the stop to place; null: none */
  place: { clientOrderId: string; side: 'buy' | 'sell'; quantity: number; stopPrice: number } | null;
  /** the stop to cancel (after placing the new one); null: none */
  cancel: string | null;
  /** the stop protecting the position when the plan is carried out */
  result: string | null;
}

/** The stop the position had before the order of `req` (requests recorded before carry none: the entry's). */
export function currentStopOf(req: Pick<ExecuteRequest, 'intent' | 'tradeId' | 'stopOrderId'>): string | null {
  if (req.stopOrderId !== undefined) return req.stopOrderId;
  return req.intent.kind === 'open' ? null : stopOrderId(req.tradeId);
}

/**
 * The stop to keep after the order of `req` filled (in full or in part) and left `after` on the exchange.
 * @param emergencyStopLoss `risk.emergency_stop_loss` (a negative fraction of margin)
 */
export function protectiveStopPlan(
  req: Pick<ExecuteRequest, 'intent' | 'tradeId' | 'stopOrderId' | 'clientOrderId'>,
  after: Pick<ExchangePosition, 'side' | 'quantity' | 'entryPrice' | 'leverage'> | null,
  emergencyStopLoss: number,
): StopPlan {
  const current = currentStopOf(req);
  if (after === null || after.quantity <= 0) return { place: null, cancel: current, result: null };
  const { intent } = req;
  const stopPrice =
    intent.kind === 'open'
      ? intent.stopPrice
      : stopPriceFor(after.side, after.entryPrice, after.leverage, emergencyStopLoss);
  if (stopPrice === null) return { place: null, cancel: null, result: current };
  const clientOrderId = stopOrderId(req.clientOrderId);
  return {
    place: { clientOrderId, side: after.side === 'long' ? 'sell' : 'buy', quantity: after.quantity, stopPrice },
    cancel: current !== null && current !== clientOrderId ? current : null,
    result: clientOrderId,
  };
}
