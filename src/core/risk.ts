/**
 * The risk gate and the protective exits. Pure: no I/O, no clock (time comes in as `now`); safe in workflow code.
 *
 * `checkRisk` is enforcement, not advice: an `approved` verdict's intent satisfies every configured limit (see the
 * function's doc for the list). `protectiveExit` runs every cycle BEFORE the model is asked and closes a position
 * on the emergency stop or the liquidation buffer without the model's consent.
 *
 * Units follow src/core/position.ts: USDT, base quantities, FRACTIONS for `emergency_stop_loss`,
 * `liquidation_buffer` and rates; the `*_pct` keys of RiskConfig are PERCENTS (25 = 25 %).
 */
import type { RiskConfig } from './config';
import type {
  AccountSnapshot,
  AdjustArgs,
  Candle,
  Decision,
  EntryArgs,
  MarketSnapshot,
  OrderIntent,
  PositionState,
  Side,
  Verdict,
} from './types';
import { floorToStep, leveragedReturn, liquidationPrice } from './position';
import { timeframeMs } from './timeframe';

/** What the exchange (or the paper exchange's config) imposes on orders of the pair. */
export interface MarketLimits {
  /** minimum order notional, USDT (0 = none) */
  minNotional: number;
  /** quantity increment: quantities are rounded DOWN to a multiple of it (0 = any quantity) */
  qtyStep: number;
  /** minimum order quantity, base units (0 = none; a quantity must still be > 0) */
  minQty: number;
  /** maintenance margin rate (fraction) for the liquidation-distance check */
  maintenanceMarginRate: number;
  /**
   * taker fee rate (fraction). When given, the opening fee (notional × rate) is reserved from `account.available`
   * together with the margin, so an approved order never fails for insufficient funds because of its fee.
   */
  takerFeeRate?: number;
}

export interface RiskInput {
  decision: Decision;
  snapshot: MarketSnapshot;
  account: AccountSnapshot;
  /** the workflow's mirror of this pair's position (null = flat) */
  position: PositionState | null;
  risk: RiskConfig;
  market: MarketLimits;
  /** decision time, Unix ms */
  now: number;
  /** time of the last stop-out (emergency stop, stop, liquidation) on this pair, for the cooldown */
  lastStopOutTime: number | null;
}

/**
 * Check one decision against the limits and turn it into an order intent.
 *
 * - hold / wait → `{status: 'none'}`.
 * - exit → close intent for the whole position (always allowed: closing only removes risk); rejected when flat.
 * - entry (long/short) → open intent, or rejected. Checked: no position on the pair (mirror and exchange),
 *   `min_confidence`, `cooldown_minutes` since the last stop-out, `max_open_trades` (distinct pairs in
 *   `account.positions`), `max_leverage` (`default_leverage` when the model's leverage is not a number >= 1;
 *   fractional leverage is rounded down), margin (`stake_amount`, or `default_stake_pct` % of equity when it is null)
 *   within `max_position_pct` % of equity, within `account.available` (less the opening fee when
 *   `market.takerFeeRate` is given), total notional of all open positions plus the new one within
 *   `max_total_exposure_pct` % of equity, the liquidation price at least `liquidation_atr_multiple` × ATR14 of the
 *   main timeframe away from the price (and on the losing side of it), quantity rounded DOWN to `qtyStep`, then
 *   `minQty` and `minNotional`. The intent carries the protective stop price (`stopPriceFor`).
 * - adjust_position + → increase intent at the position's leverage, added margin = pct % of the current margin;
 *   checked: `max_adjustments_per_trade`, `min_confidence`, position leverage <= `max_leverage`, position margin
 *   after the increase within `max_position_pct`, available balance, total exposure, exchange minimums, and the
 *   liquidation distance of the position after the increase (new average entry).
 * - adjust_position − → reduce intent for pct % of the quantity (rounded down to the step); checked:
 *   `max_adjustments_per_trade` and the exchange minimums of the order. A remainder under the exchange minimums, or
 *   pct <= -100, turns it into a close of the whole position (with a note).
 *
 * `risk.allow_model_freedom` true: leverage and margin limits are CLAMPED (a note per clamp, e.g. "leverage 50x
 * clamped to risk.max_leverage 20x"); false: each broken limit is a rejection reason. Limits that cannot be clamped
 * always reject: confidence, cooldown, open trades, an existing position, no room left under a cap, missing ATR
 * (when `liquidation_atr_multiple` > 0: without ATR the distance cannot be checked, so no new exposure), liquidation
 * too close at the (clamped) leverage, adjustments, and exchange minimums after clamping.
 * Every reason and note is one English sentence naming the limit, the requested and the allowed value.
 */
export function checkRisk(input: RiskInput): Verdict {
  const { decision, snapshot, position } = input;
  if (decision.tool === 'signal_hold' || decision.tool === 'signal_wait') return { status: 'none' };
  if (decision.args.pair !== snapshot.pair) {
    return reject(
      `${decision.tool} is for ${decision.args.pair} but this cycle trades ${snapshot.pair}; no order placed.`,
    );
  }
  if (position && position.pair !== snapshot.pair) {
    return reject(
      `the position mirror is for ${position.pair} but this cycle trades ${snapshot.pair}; no order placed.`,
    );
  }
  if (!(snapshot.price > 0) || !Number.isFinite(snapshot.price)) {
    return reject(
      `the market price of ${snapshot.pair} is ${snapshot.price}; no order is sized or placed without a positive price.`,
    );
  }
  switch (decision.tool) {
    case 'signal_exit':
      if (!position) return reject(`signal_exit while flat on ${snapshot.pair}: there is no position to close.`);
      return approve(closeIntent(position, snapshot.price), []);
    case 'signal_entry_long':
      return checkEntry(input, 'long', decision.args);
    case 'signal_entry_short':
      return checkEntry(input, 'short', decision.args);
    case 'adjust_position':
      return checkAdjust(input, decision.args);
  }
}

function checkEntry(input: RiskInput, side: Side, args: EntryArgs): Verdict {
  const { snapshot, account, position, risk, market, now, lastStopOutTime } = input;
  const { pair, price } = snapshot;
  const freedom = risk.allow_model_freedom;
  const tool = side === 'long' ? 'signal_entry_long' : 'signal_entry_short';
  if (position) {
    return reject(
      `${tool} while a ${position.side} position is open on ${pair}: use adjust_position or signal_exit instead.`,
    );
  }
  if (account.positions.some((p) => p.pair === pair)) {
    return reject(
      `${tool} on ${pair}, but the exchange reports an open position there that this trader does not track; reconcile before entering.`,
    );
  }
  const equity = account.equity;
  if (!(equity > 0) || !Number.isFinite(equity)) {
    return reject(`account equity is ${equity} USDT; no position is sized without positive equity.`);
  }
  const reasons: string[] = [];
  const notes: string[] = [];

  if (!(args.confidence_score >= risk.min_confidence)) {
    reasons.push(`confidence_score ${args.confidence_score} is below risk.min_confidence ${risk.min_confidence}.`);
  }
  const cooldown = cooldownProblem(now, lastStopOutTime, risk);
  if (cooldown) reasons.push(cooldown);
  const openPairs = new Set(account.positions.map((p) => p.pair)).size;
  if (!(openPairs < risk.max_open_trades)) {
    reasons.push(
      `${openPairs} trades are already open, at risk.max_open_trades ${risk.max_open_trades}; no new entry.`,
    );
  }

  // Leverage: model's value, or the default when it gave none usable; whole numbers only; then the cap.
  let leverage = args.leverage;
  if (!Number.isFinite(leverage) || !(leverage >= 1)) {
    notes.push(
      `leverage ${String(args.leverage)} is not a usable leverage; using risk.default_leverage ${risk.default_leverage}x.`,
    );
    leverage = risk.default_leverage;
  } else if (!Number.isInteger(leverage)) {
    const whole = Math.floor(leverage);
    notes.push(`leverage ${leverage}x rounded down to ${whole}x (leverage is set in whole steps).`);
    leverage = whole;
  }
  if (!(leverage <= risk.max_leverage)) {
    if (freedom) {
      notes.push(`leverage ${leverage}x clamped to risk.max_leverage ${risk.max_leverage}x.`);
      leverage = risk.max_leverage;
    } else {
      reasons.push(`leverage ${leverage}x is above risk.max_leverage ${risk.max_leverage}x.`);
    }
  }

  // Margin: stake or default, then the caps.
  let margin: number;
  const stake = args.stake_amount;
  if (stake === null || stake === undefined) {
    margin = (risk.default_stake_pct / 100) * equity;
    notes.push(
      `stake_amount not given; using risk.default_stake_pct ${num(risk.default_stake_pct)}% of equity = ${usdt(margin)}.`,
    );
  } else if (!Number.isFinite(stake) || !(stake > 0)) {
    margin = (risk.default_stake_pct / 100) * equity;
    notes.push(
      `stake_amount ${String(stake)} is not a positive amount; using risk.default_stake_pct ${num(risk.default_stake_pct)}% of equity = ${usdt(margin)}.`,
    );
  } else {
    margin = stake;
  }
  margin = limitMargin({
    margin,
    leverage,
    currentMargin: 0,
    existingNotional: totalNotional(account, null),
    account,
    risk,
    market,
    reasons,
    notes,
  });

  const liquidation = liquidationProblem({
    side,
    entryPrice: price,
    price,
    leverage,
    atr: mainAtr(snapshot),
    snapshot,
    risk,
    market,
    increase: false,
  });
  if (liquidation) reasons.push(liquidation);
  if (reasons.length > 0) return { status: 'rejected', reasons };

  const quantity = roundedQuantity(margin, leverage, price, market.qtyStep);
  const minimums = minimumProblems(quantity, price, market, 'entry');
  if (minimums.length > 0) return { status: 'rejected', reasons: minimums };
  return approve(
    {
      kind: 'open',
      pair,
      side,
      leverage,
      margin: (quantity * price) / leverage,
      quantity,
      price,
      stopPrice: stopPriceFor(side, price, leverage, risk.emergency_stop_loss),
    },
    notes,
  );
}

function checkAdjust(input: RiskInput, args: AdjustArgs): Verdict {
  const { snapshot, position, risk, market } = input;
  const { pair, price } = snapshot;
  if (!position) return reject(`adjust_position while flat on ${pair}: there is no position to adjust.`);
  const pct = args.adjustment_pct;
  if (!Number.isFinite(pct) || pct === 0) {
    return reject(
      `adjustment_pct ${String(pct)} is not a usable adjustment; give a non-zero percentage of the position.`,
    );
  }
  if (!(position.adjustments < risk.max_adjustments_per_trade)) {
    return reject(
      `this trade already had ${position.adjustments} adjustments, at risk.max_adjustments_per_trade ${risk.max_adjustments_per_trade}; use signal_exit to close it.`,
    );
  }
  if (pct > 0) return checkIncrease(input, position, pct, args.confidence_score);

  if (pct <= -100) {
    return approve(closeIntent(position, price), [
      `adjustment_pct ${num(pct)}% removes the whole position; closing all ${num(position.quantity)}.`,
    ]);
  }
  const requested = (-pct / 100) * position.quantity;
  const quantity = floorToStep(requested, market.qtyStep);
  const minimums = minimumProblems(quantity, price, market, 'reduce');
  if (minimums.length > 0) {
    return {
      status: 'rejected',
      reasons: [
        ...minimums,
        `reducing by ${num(-pct)}% (${num(requested)}) is too small to place; reduce by more or use signal_exit.`,
      ],
    };
  }
  const remainder = position.quantity - quantity;
  if (!(remainder > 0) || remainder < market.minQty || remainder * price < market.minNotional) {
    return approve(closeIntent(position, price), [
      `reducing by ${num(-pct)}% would leave ${num(remainder)} (${usdt(remainder * price)}), under the exchange minimums ` +
        `(quantity ${num(market.minQty)}, notional ${usdt(market.minNotional)}); closing the whole position instead.`,
    ]);
  }
  return approve({ kind: 'reduce', pair, side: position.side, quantity, price }, []);
}

function checkIncrease(input: RiskInput, position: PositionState, pct: number, confidence: number): Verdict {
  const { snapshot, account, risk, market } = input;
  const { pair, price } = snapshot;
  const equity = account.equity;
  if (!(equity > 0) || !Number.isFinite(equity)) {
    return reject(`account equity is ${equity} USDT; no position is increased without positive equity.`);
  }
  const reasons: string[] = [];
  const notes: string[] = [];
  if (!(confidence >= risk.min_confidence)) {
    reasons.push(`confidence_score ${confidence} is below risk.min_confidence ${risk.min_confidence}; no increase.`);
  }
  const leverage = position.leverage;
  if (!(leverage <= risk.max_leverage)) {
    reasons.push(
      `the position's leverage ${leverage}x is above risk.max_leverage ${risk.max_leverage}x; it cannot be increased.`,
    );
  }
  const onExchange = account.positions.find((p) => p.pair === pair);
  const currentMargin = Math.max(position.margin, onExchange ? onExchange.margin : 0);
  const requested = (pct / 100) * position.margin;
  const margin = limitMargin({
    margin: requested,
    leverage,
    currentMargin,
    existingNotional: totalNotional(account, { pair, notional: position.quantity * price }),
    account,
    risk,
    market,
    reasons,
    notes,
  });
  if (reasons.length > 0) return { status: 'rejected', reasons };

  const quantity = roundedQuantity(margin, leverage, price, market.qtyStep);
  const minimums = minimumProblems(quantity, price, market, 'increase');
  if (minimums.length > 0) return { status: 'rejected', reasons: minimums };
  const entryAfter = (position.quantity * position.entryPrice + quantity * price) / (position.quantity + quantity);
  const liquidation = liquidationProblem({
    side: position.side,
    entryPrice: entryAfter,
    price,
    leverage,
    atr: mainAtr(snapshot),
    snapshot,
    risk,
    market,
    increase: true,
  });
  if (liquidation) return reject(liquidation);
  return approve(
    { kind: 'increase', pair, side: position.side, leverage, margin: (quantity * price) / leverage, quantity, price },
    notes,
  );
}

/**
 * Apply the sizing caps to `margin` (USDT) at `leverage`: clamp (freedom) or add a reason (strict) for each.
 * `currentMargin` is the margin already in this pair's position (0 for an entry); `existingNotional` the notional
 * of every open position. Returns the margin after clamps (unchanged in strict mode).
 */
function limitMargin(a: {
  margin: number;
  leverage: number;
  currentMargin: number;
  existingNotional: number;
  account: AccountSnapshot;
  risk: RiskConfig;
  market: MarketLimits;
  reasons: string[];
  notes: string[];
}): number {
  const { leverage, currentMargin, account, risk, reasons, notes } = a;
  const freedom = risk.allow_model_freedom;
  const adding = currentMargin > 0;
  const what = adding ? 'added margin' : 'margin';
  let margin = a.margin;

  // max_position_pct: margin of this position (after an increase) as % of equity.
  const positionCap = (risk.max_position_pct / 100) * account.equity;
  const positionRoom = positionCap - currentMargin;
  const positionLimit = `risk.max_position_pct ${num(risk.max_position_pct)}% of equity (${usdt(positionCap)})`;
  if (!(positionRoom > 0)) {
    reasons.push(`the position's margin ${usdt(currentMargin)} is already at ${positionLimit}; nothing can be added.`);
  } else if (!(margin <= positionRoom)) {
    if (freedom) {
      notes.push(`${what} ${usdt(margin)} clamped to ${usdt(positionRoom)} by ${positionLimit}.`);
      margin = positionRoom;
    } else {
      reasons.push(
        adding
          ? `added margin ${usdt(margin)} would take the position to ${usdt(currentMargin + margin)}, above ${positionLimit}.`
          : `margin ${usdt(margin)} is above ${positionLimit}.`,
      );
    }
  }

  // Available balance, with the opening fee reserved when the rate is known.
  const feeRate = a.market.takerFeeRate ?? 0;
  const available = account.available;
  const availableMargin = available / (1 + leverage * feeRate);
  const feeNote = feeRate > 0 ? ` (${usdt(available)} less the opening fee)` : '';
  if (!(availableMargin > 0)) {
    reasons.push(`the available balance ${usdt(available)} leaves no room for ${what}.`);
  } else if (!(margin <= availableMargin)) {
    if (freedom) {
      notes.push(`${what} ${usdt(margin)} clamped to the available balance ${usdt(availableMargin)}${feeNote}.`);
      margin = availableMargin;
    } else {
      reasons.push(`${what} ${usdt(margin)} is above the available balance ${usdt(availableMargin)}${feeNote}.`);
    }
  }

  // max_total_exposure_pct: notional of every open position plus the new notional.
  const exposureCap = (risk.max_total_exposure_pct / 100) * account.equity;
  const exposureRoom = exposureCap - a.existingNotional;
  const exposureLimit = `risk.max_total_exposure_pct ${num(risk.max_total_exposure_pct)}% of equity (${usdt(exposureCap)})`;
  if (!Number.isFinite(a.existingNotional)) {
    reasons.push(`the account reports a non-numeric notional for an open position; total exposure cannot be checked.`);
  } else if (!(exposureRoom > 0)) {
    reasons.push(
      `open positions already hold ${usdt(a.existingNotional)} of notional, at ${exposureLimit}; no room for more.`,
    );
  } else if (!(margin * leverage <= exposureRoom)) {
    if (freedom) {
      const clamped = exposureRoom / leverage;
      notes.push(
        `${what} ${usdt(margin)} clamped to ${usdt(clamped)} so total notional stays within ${exposureLimit} ` +
          `(${usdt(a.existingNotional)} already open).`,
      );
      margin = clamped;
    } else {
      reasons.push(
        `new notional ${usdt(margin * leverage)} would take total exposure to ${usdt(a.existingNotional + margin * leverage)}, above ${exposureLimit}.`,
      );
    }
  }
  return margin;
}

/**
 * Quantity for `margin` at `leverage` and `price`, rounded DOWN to `step`; never worth more margin than `margin`
 * (the rounding tolerance of `floorToStep` may not push it over).
 */
function roundedQuantity(margin: number, leverage: number, price: number, step: number): number {
  let quantity = floorToStep((margin * leverage) / price, step);
  if (step > 0 && quantity > 0 && (quantity * price) / leverage > margin) quantity = floorToStep(quantity - step, step);
  return quantity;
}

function minimumProblems(quantity: number, price: number, market: MarketLimits, order: string): string[] {
  const problems: string[] = [];
  if (!(quantity > 0)) {
    problems.push(`the ${order} quantity rounds down to 0 at the exchange quantity step ${num(market.qtyStep)}.`);
    return problems;
  }
  if (quantity < market.minQty) {
    problems.push(
      `the ${order} quantity ${num(quantity)} is below the exchange minimum quantity ${num(market.minQty)}.`,
    );
  }
  if (quantity * price < market.minNotional) {
    problems.push(
      `the ${order} notional ${usdt(quantity * price)} is below the exchange minimum notional ${usdt(market.minNotional)}.`,
    );
  }
  return problems;
}

function cooldownProblem(now: number, lastStopOutTime: number | null, risk: RiskConfig): string | null {
  if (lastStopOutTime === null) return null;
  const cooldownMs = risk.cooldown_minutes * 60_000;
  const elapsed = now - lastStopOutTime;
  if (elapsed >= cooldownMs) return null;
  return (
    `the pair is cooling down after a stop-out: ${num(Math.max(0, elapsed) / 60_000)} of risk.cooldown_minutes ` +
    `${num(risk.cooldown_minutes)} minutes have passed; entries resume in ${num((cooldownMs - elapsed) / 60_000)} minutes.`
  );
}

/** ATR14 of the main timeframe, or null when missing or not a finite number. */
function mainAtr(snapshot: MarketSnapshot): number | null {
  const atr = snapshot.timeframes[snapshot.mainTimeframe]?.indicators.atr14 ?? null;
  return atr !== null && Number.isFinite(atr) ? atr : null;
}

/**
 * The liquidation-distance rule: the liquidation price (at `entryPrice`, `leverage`, the market's rate) must be on
 * the losing side of `price` and at least `liquidation_atr_multiple` × ATR14 away from it. Null when satisfied.
 */
function liquidationProblem(a: {
  side: Side;
  entryPrice: number;
  price: number;
  leverage: number;
  atr: number | null;
  snapshot: MarketSnapshot;
  risk: RiskConfig;
  market: MarketLimits;
  increase: boolean;
}): string | null {
  const { side, price, leverage, atr, risk } = a;
  const k = risk.liquidation_atr_multiple;
  const mmr = a.market.maintenanceMarginRate;
  const rule = `risk.liquidation_atr_multiple ${num(k)} x ATR14`;
  if (k > 0 && atr === null) {
    return (
      `ATR14 on ${a.snapshot.mainTimeframe} is not available yet, so the ${rule} liquidation distance cannot be ` +
      `checked; no new exposure until it is.`
    );
  }
  const liq = liquidationPrice(side, a.entryPrice, leverage, mmr);
  const distance = side === 'long' ? price - liq : liq - price;
  const required = k * (atr ?? 0);
  if (distance > 0 && distance >= required) return null;
  const where = a.increase ? 'after the increase the position' : `at ${leverage}x the entry`;
  const base =
    `${where} would be liquidated at ${num(liq)}, ${num(distance)} from the price ${num(price)}, ` +
    (required > 0 ? `closer than ${rule} ${num(atr ?? 0)} = ${num(required)}` : `not on the losing side of the price`);
  if (a.increase) return `${base}.`;
  // For an entry, distance / price = 1/leverage - mmr: the highest whole leverage that keeps the distance.
  const bound = 1 / (required / price + mmr);
  const highest = Math.floor(bound) === bound && required === 0 ? bound - 1 : Math.floor(bound);
  return highest >= 1
    ? `${base}; at most ${highest}x keeps that distance.`
    : `${base}; even 1x does not keep that distance.`;
}

/** Sum of |notional| of every open position; `self` replaces the account's figure for its pair when larger. */
function totalNotional(account: AccountSnapshot, self: { pair: string; notional: number } | null): number {
  let total = 0;
  let selfSeen = 0;
  for (const p of account.positions) {
    if (self && p.pair === self.pair) selfSeen += Math.abs(p.notional);
    else total += Math.abs(p.notional);
  }
  return self ? total + Math.max(selfSeen, Math.abs(self.notional)) : total;
}

function closeIntent(position: PositionState, price: number): OrderIntent {
  return {
    kind: 'close',
    pair: position.pair,
    side: position.side,
    quantity: position.quantity,
    price,
    reason: 'model',
  };
}

function approve(intent: OrderIntent, notes: string[]): Verdict {
  return { status: 'approved', intent, notes };
}

function reject(reason: string): Verdict {
  return { status: 'rejected', reasons: [reason] };
}

// ---------------------------------------------------------------------------------------------
// Protective exits
// ---------------------------------------------------------------------------------------------

/**
 * Price at which the leveraged loss reaches `emergencyStopLoss` (a FRACTION of margin, e.g. -0.15): the protective
 * stop placed with an entry. Long: entry × (1 + esl/leverage); short: entry × (1 − esl/leverage).
 * E.g. long at 100,000, 10x, -0.15 → 98,500.
 */
export function stopPriceFor(side: Side, entryPrice: number, leverage: number, emergencyStopLoss: number): number {
  const move = emergencyStopLoss / leverage;
  return side === 'long' ? entryPrice * (1 + move) : entryPrice * (1 - move);
}

export interface ProtectiveExitInput {
  position: PositionState;
  snapshot: MarketSnapshot;
  risk: RiskConfig;
  /** closed main-timeframe candles since the previous cycle; the snapshot's last closed main candle is always used too */
  candles?: readonly Candle[];
  /**
   * maintenance margin rate (fraction), used only when `position.liquidationPrice` is null. Without either, the
   * bankruptcy price (rate 0: the latest possible liquidation) is used, which makes the buffer act later; pass it.
   */
  maintenanceMarginRate?: number;
}

export interface ProtectiveExit {
  reason: 'emergency_stop' | 'liquidation_buffer';
  intent: Extract<OrderIntent, { kind: 'close' }>;
  /** one sentence for the journal and the decision record */
  detail: string;
}

/**
 * The exits that act without the model, checked every cycle before it is asked. Both judge the WORST price since the
 * previous cycle: the current price and the adverse extreme (low for a long, high for a short) of every given
 * candle that was still open after `entryTime` (plus the snapshot's last closed main candle). Pessimistic on purpose:
 * a stop that was touched inside a candle counts even if the close recovered, as an exchange stop order would have.
 * - emergency_stop: leveraged PnL (fraction of margin, `leveragedReturn`) at the worst price <= `risk.emergency_stop_loss`.
 * - liquidation_buffer: the worst price is within `risk.liquidation_buffer` × that price of the liquidation price
 *   (or beyond it). Liquidation price: `position.liquidationPrice`, else computed (see `maintenanceMarginRate`).
 * The emergency stop wins when both hold. The exit is a close of the whole quantity at the current price.
 */
export function protectiveExit(input: ProtectiveExitInput): ProtectiveExit | null {
  const { position, snapshot, risk } = input;
  const { side, entryPrice, leverage } = position;
  const price = snapshot.price;
  const tf = snapshot.mainTimeframe;
  const candleMs = timeframeMs(tf);
  const lastMain = snapshot.timeframes[tf]?.candles.at(-1);
  const candles = lastMain ? [...(input.candles ?? []), lastMain] : (input.candles ?? []);

  // A broken current price (NaN) still lets the candles decide.
  let worst = Number.isFinite(price) ? price : NaN;
  let worstWhere = 'the current price';
  for (const c of candles) {
    if (c.time + candleMs <= position.entryTime) continue;
    const extreme = side === 'long' ? c.low : c.high;
    if (!Number.isFinite(extreme)) continue;
    if (Number.isNaN(worst) || (side === 'long' ? extreme < worst : extreme > worst)) {
      worst = extreme;
      worstWhere = `the ${side === 'long' ? 'low' : 'high'} of the ${tf} candle opened ${new Date(c.time).toISOString()}`;
    }
  }
  if (Number.isNaN(worst)) return null;

  const intent: ProtectiveExit['intent'] = {
    kind: 'close',
    pair: position.pair,
    side,
    quantity: position.quantity,
    price,
    reason: 'emergency_stop',
  };
  const pnl = leveragedReturn(side, entryPrice, worst, leverage);
  if (pnl <= risk.emergency_stop_loss) {
    return {
      reason: 'emergency_stop',
      intent,
      detail:
        `emergency stop: leveraged PnL ${pct(pnl)} at ${worstWhere} (${num(worst)}) reached risk.emergency_stop_loss ` +
        `${pct(risk.emergency_stop_loss)} (stop price ${num(stopPriceFor(side, entryPrice, leverage, risk.emergency_stop_loss))}); closing at ${num(price)}.`,
    };
  }

  const liq =
    position.liquidationPrice ?? liquidationPrice(side, entryPrice, leverage, input.maintenanceMarginRate ?? 0);
  const distance = side === 'long' ? worst - liq : liq - worst;
  if (distance <= risk.liquidation_buffer * worst) {
    return {
      reason: 'liquidation_buffer',
      intent: { ...intent, reason: 'liquidation_buffer' },
      detail:
        `liquidation buffer: ${worstWhere} (${num(worst)}) is ${num(distance)} from the liquidation price ${num(liq)}, ` +
        `within risk.liquidation_buffer ${pct(risk.liquidation_buffer)} of the price (${num(risk.liquidation_buffer * worst)}); closing at ${num(price)}.`,
    };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Formatting for reasons
// ---------------------------------------------------------------------------------------------

/** A number with at most 6 significant digits, no trailing zeros (98500, 0.00004, 1.5e-7). */
function num(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return String(Number(x.toPrecision(6)));
}

function usdt(x: number): string {
  return Math.abs(x) >= 1 || x === 0 ? `${x.toFixed(2)} USDT` : `${num(x)} USDT`;
}

/** A fraction as a percent: -0.15 → "-15%". */
function pct(fraction: number): string {
  return `${num(fraction * 100)}%`;
}
