/**
 * Position and PnL maths for ISOLATED-margin, USDT-margined LINEAR perpetuals. Pure: no I/O, no clock; safe to
 * import from workflow code and cheap enough for the backtest hot path.
 *
 * Units
 * - prices in USDT per base unit, quantities in base units, money (margin, notional, fees, funding, PnL) in USDT.
 * - notional = quantity × price; isolated margin = notional / leverage at the entry price.
 *
 * Fractions versus percents (the two are never mixed inside one name)
 * - FRACTIONS: fee and funding rates (0.0005), `leveragedReturn` (-0.15 = a loss of 15 % of the margin; the name is
 *   kept for its callers, the value is a fraction), `risk.emergency_stop_loss` (-0.15), maintenance margin rates.
 * - PERCENTS: the `*Pct` fields of `PositionState` (`mfePct`, `maePct`, `lastPnlPct`: -15 = -15 % of margin) and
 *   `ClosedTrade.pnlPct` (net PnL as % of the largest margin).
 *
 * Sign conventions
 * - PnL: positive = profit.
 * - Funding: positive = paid by the position, negative = received (as `PositionState.funding`).
 */
import { stopOrderId } from './ids';
import type {
  Candle,
  ClosedTrade,
  CloseReason,
  Execution,
  Fill,
  MarketStateSummary,
  OrderIntent,
  PositionState,
  Side,
} from './types';

// ---------------------------------------------------------------------------------------------
// Sizing, fees, funding
// ---------------------------------------------------------------------------------------------

/** Base quantity that `margin` USDT buys at `leverage` and `price`: margin × leverage / price. Needs price > 0. */
export function quantityFor(margin: number, leverage: number, price: number): number {
  return (margin * leverage) / price;
}

/** Notional value in USDT of `qty` base units at `price`. */
export function notional(qty: number, price: number): number {
  return qty * price;
}

/** Isolated margin in USDT that backs `notionalUsdt` at `leverage` (>= 1): notional / leverage. */
export function marginFor(notionalUsdt: number, leverage: number): number {
  return notionalUsdt / leverage;
}

/** Which side of the book a fill took: market orders and triggered stops are takers, resting limit orders makers. */
export type Liquidity = 'taker' | 'maker';

/** The fee rate (fraction) for `liquidity` from the paper config's `taker_fee` / `maker_fee`. */
export function feeRate(liquidity: Liquidity, fees: { taker_fee: number; maker_fee: number }): number {
  return liquidity === 'taker' ? fees.taker_fee : fees.maker_fee;
}

/** Trading fee in USDT for a fill of `qty` at `price` with fee `rate` (fraction, e.g. 0.0005): qty × price × rate. */
export function tradingFee(qty: number, price: number, rate: number): number {
  return qty * price * rate;
}

/**
 * Funding payment in USDT for one funding event: position notional at the mark price × `rate`.
 * Sign: POSITIVE = the position PAYS, negative = it receives. With rate > 0 longs pay and shorts receive;
 * with rate < 0 shorts pay and longs receive.
 * @param rate funding rate of the interval as a fraction (0.0001 = 0.01 %)
 */
export function fundingPayment(side: Side, qty: number, markPrice: number, rate: number): number {
  const amount = qty * markPrice * rate;
  return side === 'long' ? amount : -amount;
}

/** The position with one funding event added to `funding` (see `fundingPayment` for the sign). */
export function applyFunding<P extends PositionState>(position: P, markPrice: number, rate: number): P {
  return { ...position, funding: position.funding + fundingPayment(position.side, position.quantity, markPrice, rate) };
}

/**
 * Round a quantity DOWN to a multiple of the exchange's quantity step (never up: rounding may only shrink an order).
 * A step of 0 (or less) means any quantity is allowed and returns `qty` unchanged. A quantity within float noise of
 * a multiple (1e-9 of a step plus 1e-12 relative) counts as that multiple, so 0.3 / 0.1 = 2.9999999999999996 does not
 * lose a whole step; the result may then exceed `qty` by that much at most. Negative or zero quantities give 0.
 */
export function floorToStep(qty: number, step: number): number {
  if (!(step > 0)) return qty;
  const raw = qty / step;
  const nearest = Math.round(raw);
  const units = Math.abs(raw - nearest) <= 1e-9 + 1e-12 * raw ? nearest : Math.floor(raw);
  if (units <= 0) return 0;
  return Number((units * step).toFixed(stepDecimals(step)));
}

/** Number of decimals needed to write `step` exactly (0.001 → 3, 0.0025 → 4, 1e-9 → 9, 5 → 0), at most 20. */
function stepDecimals(step: number): number {
  let decimals = 0;
  let scaled = step;
  while (decimals < 20 && Math.abs(scaled - Math.round(scaled)) > 1e-9 * scaled) {
    decimals += 1;
    scaled = step * 10 ** decimals;
  }
  return decimals;
}

// ---------------------------------------------------------------------------------------------
// PnL and liquidation
// ---------------------------------------------------------------------------------------------

/** Unrealised PnL in USDT of `qty` opened at `entryPrice`, valued at `price`. Long: (price − entry) × qty; short: the opposite. */
export function unrealizedPnl(side: Side, entryPrice: number, qty: number, price: number): number {
  return side === 'long' ? (price - entryPrice) * qty : (entryPrice - price) * qty;
}

/**
 * Leveraged return on margin at `price`, as a FRACTION of the margin (-0.15 = lost 15 % of the margin), before fees
 * and funding: ±(price − entry) / entry × leverage. Multiply by 100 for the percent fields of `PositionState`.
 */
export function leveragedReturn(side: Side, entryPrice: number, price: number, leverage: number): number {
  const move = (price - entryPrice) / entryPrice;
  return (side === 'long' ? move : -move) * leverage;
}

/**
 * Liquidation price of an isolated position, simplified to a single maintenance tier:
 * - long:  entry × (1 − 1/leverage + mmr)
 * - short: entry × (1 + 1/leverage − mmr)
 * i.e. the price at which the loss equals the margin minus a maintenance margin of `mmr` × the ENTRY notional.
 *
 * Simplification versus Binance: Binance computes the maintenance margin on the MARK notional at liquidation, uses a
 * tiered rate with a maintenance amount per bracket, and counts the wallet balance of the isolated position (fees and
 * funding move it). The exact single-tier solution is entry × (1 − 1/lev) / (1 − mmr) for a long and
 * entry × (1 + 1/lev) / (1 + mmr) for a short; this formula is higher than both by about entry × mmr × (1/lev − mmr)
 * (47 USDT at 100,000, 10x, 0.5 %): EARLIER for a long (conservative), LATER for a short. Prefer the exchange's
 * reported price when it has one.
 *
 * If mmr ≥ 1/leverage the result is at or beyond the entry price on the losing side: such a position would be
 * liquidated at once, and the risk gate rejects it.
 * @param maintenanceMarginRate fraction, e.g. 0.005
 */
export function liquidationPrice(
  side: Side,
  entryPrice: number,
  leverage: number,
  maintenanceMarginRate: number,
): number {
  return side === 'long'
    ? entryPrice * (1 - 1 / leverage + maintenanceMarginRate)
    : entryPrice * (1 + 1 / leverage - maintenanceMarginRate);
}

/** Milliseconds the position has been open at `now` (0 if `now` is before the entry). */
export function timeHeldMs(position: Pick<PositionState, 'entryTime'>, now: number): number {
  return Math.max(0, now - position.entryTime);
}

// ---------------------------------------------------------------------------------------------
// The trade tracker
// ---------------------------------------------------------------------------------------------

/**
 * Update the tracker with candles: highest/lowest price from candle HIGHS and LOWS (not closes), and MFE/MAE in
 * leveraged PERCENT of margin against the current average entry price (MFE ≥ 0, MAE ≤ 0; previous values are kept
 * when they were larger, so an increase that moves the average entry does not rewrite history).
 *
 * Only candles after the entry count: by default a candle counts when it OPENED at or after `entryTime` (the trade's
 * decision time, which is the open time of the first candle held in full). Pass `candleMs` (the candles' timeframe
 * length) to also count a candle that was still open at `entryTime` (close time `time + candleMs` after it); its
 * high/low may then include a few pre-entry prices. Candles may come in any order and may repeat (max/min only).
 * Returns the same object when no candle counts.
 */
export function updateExcursions<P extends PositionState>(
  position: P,
  candles: readonly Candle[],
  candleMs?: number,
): P {
  const copy = { ...position };
  return trackExcursions(copy, candles, candleMs) ? copy : position;
}

/**
 * {@link updateExcursions} in place, on a position object the caller owns (e.g. a cycle's working copy).
 * @returns true when a candle counted (the tracker may have changed)
 */
export function trackExcursions(position: PositionState, candles: readonly Candle[], candleMs?: number): boolean {
  const { entryTime } = position;
  let high = -Infinity;
  let low = Infinity;
  for (const c of candles) {
    const counts = candleMs === undefined ? c.time >= entryTime : c.time + candleMs > entryTime;
    if (!counts) continue;
    if (c.high > high) high = c.high;
    if (c.low < low) low = c.low;
  }
  if (high === -Infinity) return false;
  applyExtremes(position, high, low);
  return true;
}

/** The tracker of `position` (in place) updated with a price range [low, high] seen after entry. */
function applyExtremes(position: PositionState, high: number, low: number): void {
  const { side, entryPrice, leverage } = position;
  const favourable = side === 'long' ? high : low;
  const adverse = side === 'long' ? low : high;
  const mfe = leveragedReturn(side, entryPrice, favourable, leverage) * 100;
  const mae = leveragedReturn(side, entryPrice, adverse, leverage) * 100;
  position.highestPrice = Math.max(position.highestPrice, high);
  position.lowestPrice = Math.min(position.lowestPrice, low);
  position.mfePct = Math.max(position.mfePct, mfe, 0);
  position.maePct = Math.min(position.maePct, mae, 0);
}

/**
 * The client order id of the protective stop on the exchange for `position`: its `stopOrderId`, or, in a state
 * recorded before stops were replaced, the entry's (`stopOrderId(tradeId)`). Null: none.
 */
export function protectiveStopOf(position: Pick<PositionState, 'tradeId' | 'stopOrderId'>): string | null {
  return position.stopOrderId === undefined ? stopOrderId(position.tradeId) : position.stopOrderId;
}

/**
 * A copy of `p`, field by field: one object shape for every position state, so copying stays on V8's fast path
 * (an object spread of positions of mixed shapes was 3 % of a backtest). Every field of {@link PositionState} must
 * be listed: the type checker rejects a missing one.
 */
export function copyPosition(p: PositionState): PositionState {
  return {
    tradeId: p.tradeId,
    pair: p.pair,
    side: p.side,
    entryTime: p.entryTime,
    entryPrice: p.entryPrice,
    quantity: p.quantity,
    leverage: p.leverage,
    margin: p.margin,
    maxQuantity: p.maxQuantity,
    maxMargin: p.maxMargin,
    fees: p.fees,
    funding: p.funding,
    realizedPnl: p.realizedPnl,
    liquidationPrice: p.liquidationPrice,
    entryReason: p.entryReason,
    entryConfidence: p.entryConfidence,
    entryMarket: p.entryMarket,
    adjustments: p.adjustments,
    holds: p.holds,
    highestPrice: p.highestPrice,
    lowestPrice: p.lowestPrice,
    mfePct: p.mfePct,
    maePct: p.maePct,
    lastPnlPct: p.lastPnlPct,
    clientOrderIds: p.clientOrderIds,
    stopOrderId: p.stopOrderId,
  };
}

// ---------------------------------------------------------------------------------------------
// Fills
// ---------------------------------------------------------------------------------------------

/** What a fill that OPENS a trade needs beyond the fill itself. */
export interface OpenContext {
  tradeId: string;
  /** whole leverage of the isolated position, >= 1 */
  leverage: number;
  entryReason: string;
  entryConfidence: number;
  entryMarket: MarketStateSummary;
}

/** How the trade is recorded if a fill CLOSES it. */
export interface ExitContext {
  reason: CloseReason;
  exitText: string;
  /** the model's self-rating from signal_exit; null when closed without the model */
  tradeScore: number | null;
}

export interface FillContext {
  /**
   * Decision time of the order (the cycle's `asOf`). A trade opened by the fill gets it as `entryTime`, a trade closed
   * by it as `exitTime`. Defaults to the fill's own time.
   */
  time?: number;
  /**
   * maintenance margin rate (fraction) for the liquidation price of opened/increased positions. Without it an opened
   * position gets `liquidationPrice: null` and an increase scales the known price with the average entry price.
   */
  maintenanceMarginRate?: number;
  /** required when the fill opens a position */
  open?: OpenContext;
  /** required when the fill closes the position */
  exit?: ExitContext;
  /** true when the fill belongs to an adjust_position order: `adjustments` goes up once per new clientOrderId */
  adjustment?: boolean;
}

export type FillKind = 'open' | 'increase' | 'reduce' | 'close';

export interface FillOutcome {
  kind: FillKind;
  /** the position after the fill; null once closed */
  position: PositionState | null;
  /** the closed trade when `kind` is 'close' */
  closed: ClosedTrade | null;
}

/** Relative tolerance under which a reducing fill counts as closing the whole position (float noise). */
const CLOSE_TOLERANCE = 1e-9;

/**
 * Apply one exchange fill to the position mirror (isolated margin, one-way mode: a pair holds one side at a time).
 * - flat + fill → OPEN: buy opens a long, sell a short; margin = notional / leverage; fee goes to `fees`.
 * - same direction → INCREASE: quantity-weighted average entry price, margin += fill notional / position leverage.
 * - opposite direction, smaller than the position → REDUCE: realised PnL of the reduced quantity at the average entry
 *   goes to `realizedPnl`, margin is released pro rata (margin × fillQty / qty); the entry price does not change.
 * - opposite direction, equal (within 1e-9 relative) → CLOSE: returns `closed` from `closeTrade` and a null position.
 * Fees of every fill accumulate in `fees`. The input position is not mutated.
 * @throws Error for a fill of another pair, a non-positive price or quantity, a reduce-only fill that would open or
 *   add, a fill larger than the position (flips are not supported: close, then open), or a missing `ctx.open` /
 *   `ctx.exit` when the fill opens / closes.
 */
export function applyFill(position: PositionState | null, fill: Fill, ctx: FillContext): FillOutcome {
  if (!(fill.price > 0) || !Number.isFinite(fill.price)) {
    throw new Error(
      `applyFill: fill ${fill.clientOrderId} has price ${fill.price}; a fill price must be a positive number`,
    );
  }
  if (!(fill.quantity > 0) || !Number.isFinite(fill.quantity)) {
    throw new Error(
      `applyFill: fill ${fill.clientOrderId} has quantity ${fill.quantity}; a fill quantity must be positive`,
    );
  }
  if (!Number.isFinite(fill.fee)) {
    throw new Error(`applyFill: fill ${fill.clientOrderId} has fee ${fill.fee}; pass the fee in USDT (0 when none)`);
  }
  const time = ctx.time ?? fill.time;

  if (position === null) {
    if (fill.reduceOnly) {
      throw new Error(
        `applyFill: reduce-only fill ${fill.clientOrderId} on ${fill.pair} but no position is open to reduce`,
      );
    }
    const open = ctx.open;
    if (!open) {
      throw new Error(
        `applyFill: fill ${fill.clientOrderId} opens a position on ${fill.pair} but ctx.open is missing: ` +
          'pass {tradeId, leverage, entryReason, entryConfidence, entryMarket}',
      );
    }
    if (!(open.leverage >= 1) || !Number.isFinite(open.leverage)) {
      throw new Error(`applyFill: ctx.open.leverage must be a number >= 1, got ${open.leverage}`);
    }
    const side: Side = fill.side === 'buy' ? 'long' : 'short';
    const margin = marginFor(fill.quantity * fill.price, open.leverage);
    const opened: PositionState = {
      tradeId: open.tradeId,
      pair: fill.pair,
      side,
      entryTime: time,
      entryPrice: fill.price,
      quantity: fill.quantity,
      leverage: open.leverage,
      margin,
      fees: fill.fee,
      funding: 0,
      realizedPnl: 0,
      liquidationPrice:
        ctx.maintenanceMarginRate === undefined
          ? null
          : liquidationPrice(side, fill.price, open.leverage, ctx.maintenanceMarginRate),
      entryReason: open.entryReason,
      entryConfidence: open.entryConfidence,
      entryMarket: open.entryMarket,
      adjustments: 0,
      holds: 0,
      highestPrice: fill.price,
      lowestPrice: fill.price,
      mfePct: 0,
      maePct: 0,
      lastPnlPct: 0,
      clientOrderIds: [fill.clientOrderId],
      maxQuantity: fill.quantity,
      maxMargin: margin,
    };
    return { kind: 'open', position: opened, closed: null };
  }

  if (fill.pair !== position.pair) {
    throw new Error(
      `applyFill: fill ${fill.clientOrderId} is for ${fill.pair} but the position is on ${position.pair}`,
    );
  }
  const newOrder = !position.clientOrderIds.includes(fill.clientOrderId);
  const clientOrderIds = newOrder ? [...position.clientOrderIds, fill.clientOrderId] : position.clientOrderIds;
  const adjustments = position.adjustments + (ctx.adjustment === true && newOrder ? 1 : 0);
  const adds = (fill.side === 'buy') === (position.side === 'long');

  if (adds) {
    if (fill.reduceOnly) {
      throw new Error(
        `applyFill: reduce-only ${fill.side} fill ${fill.clientOrderId} would add to the ${position.side} position on ${position.pair}`,
      );
    }
    const quantity = position.quantity + fill.quantity;
    const entryPrice = (position.quantity * position.entryPrice + fill.quantity * fill.price) / quantity;
    const margin = position.margin + marginFor(fill.quantity * fill.price, position.leverage);
    const increased: PositionState = {
      ...position,
      entryPrice,
      quantity,
      margin,
      fees: position.fees + fill.fee,
      liquidationPrice:
        ctx.maintenanceMarginRate !== undefined
          ? liquidationPrice(position.side, entryPrice, position.leverage, ctx.maintenanceMarginRate)
          : position.liquidationPrice === null
            ? null
            : // at a fixed leverage and rate the liquidation price is proportional to the entry price
              (position.liquidationPrice * entryPrice) / position.entryPrice,
      highestPrice: Math.max(position.highestPrice, fill.price),
      lowestPrice: Math.min(position.lowestPrice, fill.price),
      adjustments,
      clientOrderIds,
      maxQuantity: Math.max(position.maxQuantity, quantity),
      maxMargin: Math.max(position.maxMargin, margin),
    };
    return { kind: 'increase', position: increased, closed: null };
  }

  if (fill.quantity > position.quantity * (1 + CLOSE_TOLERANCE)) {
    throw new Error(
      `applyFill: ${fill.side} fill ${fill.clientOrderId} of ${fill.quantity} exceeds the open ${position.side} quantity ` +
        `${position.quantity} on ${position.pair}; flipping sides in one order is not supported: close, then open`,
    );
  }
  if (fill.quantity >= position.quantity * (1 - CLOSE_TOLERANCE)) {
    const exit = ctx.exit;
    if (!exit) {
      throw new Error(
        `applyFill: fill ${fill.clientOrderId} closes the position on ${position.pair} but ctx.exit is missing: ` +
          'pass {reason, exitText, tradeScore}',
      );
    }
    const last = { ...position, clientOrderIds, adjustments };
    const closed = closeTrade(last, { time, price: fill.price, fee: fill.fee, ...exit });
    return { kind: 'close', position: null, closed };
  }

  const share = fill.quantity / position.quantity;
  const reduced: PositionState = {
    ...position,
    quantity: position.quantity - fill.quantity,
    margin: position.margin * (1 - share),
    fees: position.fees + fill.fee,
    realizedPnl: position.realizedPnl + unrealizedPnl(position.side, position.entryPrice, fill.quantity, fill.price),
    highestPrice: Math.max(position.highestPrice, fill.price),
    lowestPrice: Math.min(position.lowestPrice, fill.price),
    adjustments,
    clientOrderIds,
  };
  return { kind: 'reduce', position: reduced, closed: null };
}

/** Exit of the remaining quantity, for `closeTrade`. */
export interface TradeExit {
  /** exit time, Unix ms */
  time: number;
  /** price at which the remaining quantity left */
  price: number;
  /** fee of the closing fill(s), USDT */
  fee: number;
  reason: CloseReason;
  exitText: string;
  tradeScore: number | null;
}

/**
 * Close the whole remaining quantity at `exit.price` and produce the trade record.
 * - pnl (USDT, NET) = realised PnL of earlier reductions + PnL of the remaining quantity at the exit price
 *   − all fees (entry, adjustments, exit) − funding paid (+ funding received).
 * - pnlPct = pnl / largest margin × 100 (PERCENT of the largest margin allocated during the trade).
 * - quantity / margin = the largest held (`maxQuantity`, `maxMargin`), notional =
 *   largest quantity × average entry price.
 * - MFE/MAE include the exit price (the trade did trade there).
 */
export function closeTrade(position: PositionState, exit: TradeExit): ClosedTrade {
  const { maxQuantity, maxMargin } = position;
  const final = unrealizedPnl(position.side, position.entryPrice, position.quantity, exit.price);
  const fees = position.fees + exit.fee;
  const pnl = position.realizedPnl + final - fees - position.funding;
  const tracked = copyPosition(position);
  applyExtremes(tracked, exit.price, exit.price);
  return {
    tradeId: position.tradeId,
    pair: position.pair,
    side: position.side,
    entryTime: position.entryTime,
    exitTime: exit.time,
    entryPrice: position.entryPrice,
    exitPrice: exit.price,
    quantity: maxQuantity,
    leverage: position.leverage,
    margin: maxMargin,
    notional: maxQuantity * position.entryPrice,
    pnl,
    pnlPct: maxMargin > 0 ? (pnl / maxMargin) * 100 : 0,
    fees,
    funding: position.funding,
    exitReason: exit.reason,
    mfePct: tracked.mfePct,
    maePct: tracked.maePct,
    holds: position.holds,
    adjustments: position.adjustments,
    entryReason: position.entryReason,
    exitText: exit.exitText,
    tradeScore: exit.tradeScore,
    entryConfidence: position.entryConfidence,
    clientOrderIds: position.clientOrderIds,
  };
}

/** What `applyExecution` needs besides the intent and the execution. */
export interface ExecutionContext {
  /** the cycle's decision time (asOf): entry time of an opened trade, exit time of a closed one */
  time: number;
  /** how a trade closed by this execution is recorded */
  exitReason: CloseReason;
  exitText: string;
  tradeScore: number | null;
  /** required for an `open` intent */
  entry: { tradeId: string; reason: string; confidence: number; market: MarketStateSummary } | null;
  /** for computing liquidation prices when the exchange does not report one */
  maintenanceMarginRate?: number;
}

/**
 * Apply every fill of an executed order to the position mirror (see `applyFill`), in order. The trade closes when the
 * fills cover the whole quantity; a partly filled order counts with what filled (a partly filled close leaves a reduced
 * position). An `increase`/`reduce` intent counts one adjustment. When the exchange reports the position after the
 * order with a liquidation price, that price replaces the computed one (the exchange's figure is authoritative), and
 * the execution's protective stop (`stopOrderId`) becomes the position's. A non-filled execution changes nothing.
 * @throws Error when an `open` intent comes without `ctx.entry`, or when `applyFill` rejects a fill.
 */
export function applyExecution(
  position: PositionState | null,
  intent: OrderIntent,
  execution: Execution,
  ctx: ExecutionContext,
): { position: PositionState | null; closed: ClosedTrade | null } {
  if (execution.status !== 'filled') return { position, closed: null };
  if (intent.kind === 'open' && ctx.entry === null) {
    throw new Error(
      `applyExecution: open intent on ${intent.pair} (order ${execution.clientOrderId}) needs ctx.entry {tradeId, reason, confidence, market}`,
    );
  }
  const fillCtx: FillContext = {
    time: ctx.time,
    exit: { reason: ctx.exitReason, exitText: ctx.exitText, tradeScore: ctx.tradeScore },
    adjustment: intent.kind === 'increase' || intent.kind === 'reduce',
    ...(ctx.maintenanceMarginRate === undefined ? {} : { maintenanceMarginRate: ctx.maintenanceMarginRate }),
    ...(intent.kind === 'open' && ctx.entry
      ? {
          open: {
            tradeId: ctx.entry.tradeId,
            leverage: intent.leverage,
            entryReason: ctx.entry.reason,
            entryConfidence: ctx.entry.confidence,
            entryMarket: ctx.entry.market,
          },
        }
      : {}),
  };
  let current: PositionState | null = position;
  let closed: ClosedTrade | null = null;
  for (const fill of execution.fills) {
    const outcome = applyFill(current, fill, fillCtx);
    current = outcome.position;
    if (outcome.closed) closed = outcome.closed;
  }
  const reported = execution.position;
  if (current && reported && reported.pair === current.pair && reported.liquidationPrice !== null) {
    current = { ...current, liquidationPrice: reported.liquidationPrice };
  }
  if (current && execution.stopOrderId !== undefined) current = { ...current, stopOrderId: execution.stopOrderId };
  return { position: current, closed };
}
