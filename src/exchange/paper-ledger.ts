/**
 * The paper exchange's account, in memory: one USDT account shared by all pairs, ISOLATED margin, ONE-WAY mode (one
 * position per pair), market and reduce-only stop-market orders, taker fees, funding, and stops and liquidations
 * triggered by candle highs and lows. Pure: no I/O, no clock, no randomness. Every time is passed in (Unix ms), so the
 * same calls always give the same figures. Fit for the backtester's hot path as it is (no persistence, no per-candle
 * allocation), and persisted in SQLite by the paper exchange (src/exchange/paper-store.ts, paper-exchange.ts).
 *
 * Money (USDT)
 * - `cash`: the wallet balance not locked as margin. Opening or increasing a position moves its margin
 *   (notional / leverage at the fill price) from cash into the position and pays the taker fee from cash.
 * - Reducing or closing releases the margin pro rata and pays the realised PnL minus the taker fee into cash. An
 *   isolated position can never take more than its own margin: if margin + PnL − fee of a reducing fill is negative
 *   (a fill beyond the bankruptcy price, possible only when slippage + fee exceed the maintenance margin), cash gets 0
 *   and the shortfall is recorded as `bankruptcyCover` (the exchange's insurance fund pays it).
 * - Funding is settled against cash. When cash cannot pay a funding payment, the rest is taken from the position's
 *   isolated margin, which moves its liquidation price closer (see {@link LedgerPosition.marginDeficit}).
 * - Liquidation loses the position's whole isolated margin; cash is untouched.
 * So cash never becomes negative, and at every moment
 *   equity = cash + Σ margin + Σ unrealised PnL, and
 *   cash + Σ margin = starting balance − fees − funding + realised PnL − liquidation losses + bankruptcy cover.
 *
 * Prices
 * - Market orders fill at the caller's reference (decision) price moved against the order by `slippage`:
 *   buy at ref × (1 + slippage), sell at ref × (1 − slippage).
 * - Liquidation price: `liquidationPrice` of src/core/position.ts (single maintenance tier on the entry notional),
 *   moved by marginDeficit / quantity when funding has eaten into the margin.
 *
 * Candles ({@link PaperLedger.advance}), per candle in time order:
 * 1. funding events before the candle's open (a gap in the data) are settled at the last known price;
 * 2. triggers: the candle's adverse extreme (LOW for a long, HIGH for a short) is compared with the liquidation price
 *    first and with the open stop orders second. The order of prices inside a candle is unknown, so when one candle
 *    crosses both, the LIQUIDATION wins (pessimistic). A stop fills at its stop price, or at the candle's open when
 *    the candle opened beyond it (a gap: a stop-market order fills at the market), moved by slippage, taker fee;
 *    several stops trigger nearest-first;
 * 3. funding events in (open, close] are settled at the candle's CLOSE. The close of the candle ending at the funding
 *    time is the last price known at that instant (the candle that opens there has not closed yet), so no future price
 *    is used. A position opened by an order at a funding time T is not charged for T: the pair is advanced to T (and
 *    the funding at T settled) before the order is placed, as on an exchange where the order comes seconds later.
 * Stops and liquidations are stamped with the close time of the candle in which they triggered (the moment inside the
 * candle is unknown).
 *
 * Client order ids are unique across the account: repeating a request returns the stored order and changes nothing;
 * a different request under a used id is rejected.
 *
 * Every operation either completes or throws before changing anything. Rejections are {@link LedgerRejection}s whose
 * `type` is the matching `ExchangeError` type; calls that break the ledger's own preconditions (times going backwards,
 * malformed candles) throw a plain `Error`.
 */
import type { Candle, ExchangePosition, ExternalClose, Fill, Side } from '../core/types';
import type { FundingEvent } from '../core/snapshot';
import { fundingPayment, liquidationPrice, marginFor, notional, tradingFee, unrealizedPnl } from '../core/position';
import type { ExchangeErrorType } from './errors';
import { clientOrderIdProblem, type OrderSide, type OrderStatus } from './port';

/** The figures of `PaperConfig` (src/core/config.ts) the ledger uses. All rates are fractions. */
export interface PaperLedgerConfig {
  /** USDT in the account when it is created */
  starting_balance: number;
  /** fee rate of market orders and triggered stops, e.g. 0.0005 */
  taker_fee: number;
  /** adverse slippage of market and stop fills, fraction of the price, e.g. 0.0002 */
  slippage: number;
  /** maintenance margin rate for liquidation prices, e.g. 0.005 */
  maintenance_margin_rate: number;
}

/** The rejections the ledger makes, with the `ExchangeError` type each stands for. */
export type LedgerRejectionType = Extract<
  ExchangeErrorType,
  'ExchangeInsufficientFunds' | 'ExchangeInvalidOrder' | 'ExchangeDuplicateOrderId'
>;

/**
 * An order the exchange refuses. Nothing changed. `type` is the `ExchangeError` type the paper exchange reports
 * (the ledger does not import errors.ts, which loads ccxt).
 */
export class LedgerRejection extends Error {
  readonly type: LedgerRejectionType;

  constructor(type: LedgerRejectionType, message: string) {
    super(message);
    this.name = 'LedgerRejection';
    this.type = type;
  }
}

export interface MarketOrderInput {
  pair: string;
  side: OrderSide;
  /** base units, > 0 */
  quantity: number;
  /** may only reduce the position; a reduce-only order larger than the position is cut to the position size */
  reduceOnly: boolean;
  clientOrderId: string;
  /** decision price, USDT; the fill is this price moved against the order by the slippage */
  referencePrice: number;
  /** leverage (>= 1) of a position this order opens; an increase must use the position's leverage */
  leverage: number;
  /** Unix ms; not before the pair's processed candles ({@link PaperLedger.syncedTo}) */
  time: number;
}

export interface StopOrderInput {
  pair: string;
  /** `sell` protects a long (triggers when the LOW reaches `stopPrice`), `buy` protects a short (the HIGH) */
  side: OrderSide;
  /** base units, > 0; at the trigger at most the position's quantity is closed */
  quantity: number;
  /** trigger price, USDT */
  stopPrice: number;
  clientOrderId: string;
  /** Unix ms; not before the pair's processed candles */
  time: number;
}

/** How a fill changed the position. */
export type FillEffect = 'open' | 'increase' | 'reduce' | 'close';

/** A fill with what it did to the account. */
export interface LedgerFill extends Fill {
  /** account-wide sequence number of the event (orders, fills, funding, liquidations share one counter) */
  seq: number;
  orderKind: 'market' | 'stop';
  effect: FillEffect;
  /** PnL of the reduced quantity against the average entry price, before fees (0 for open/increase), USDT */
  realizedPnl: number;
  /** margin moved into (+) or released from (−) the position, USDT */
  marginChange: number;
  /** shortfall paid by the insurance fund when the fill was beyond the bankruptcy price (normally 0), USDT */
  bankruptcyCover: number;
}

export interface LedgerOrder {
  seq: number;
  clientOrderId: string;
  /** `paper-<seq>` */
  exchangeOrderId: string;
  pair: string;
  kind: 'market' | 'stop';
  side: OrderSide;
  reduceOnly: boolean;
  /** quantity asked for (what a repeated request must match) */
  requestedQuantity: number;
  /** quantity of the order: the requested one, or for a reduce-only market order larger than the position, the
   * position's quantity (the exchange cuts the order) */
  quantity: number;
  /** market orders: the reference price; null for stops */
  referencePrice: number | null;
  /** stops: the trigger price; null for market orders */
  stopPrice: number | null;
  status: OrderStatus;
  /** placement time, Unix ms */
  time: number;
  /** time of the last status change (fill, trigger, cancellation), Unix ms */
  updatedAt: number;
  filledQuantity: number;
  fee: number;
  /** volume-weighted fill price; null while nothing is filled */
  averagePrice: number | null;
  /** why a stop was cancelled (`canceled by request`, `position closed`, `position liquidated`); null otherwise */
  cancelReason: string | null;
  fills: LedgerFill[];
}

export interface LedgerPosition {
  pair: string;
  side: Side;
  quantity: number;
  /** average entry price, USDT */
  entryPrice: number;
  leverage: number;
  /** isolated margin, USDT */
  margin: number;
  /**
   * Funding taken from the margin because cash could not pay it, USDT (normally 0), reduced pro rata with the
   * quantity. The liquidation price moves by marginDeficit / quantity towards the price.
   */
  marginDeficit: number;
  /** time of the opening fill, Unix ms */
  openedAt: number;
  /** trading fees paid by this position so far, USDT */
  fees: number;
  /** funding paid (+) or received (−) by this position so far, USDT */
  funding: number;
  /** realised PnL of reductions so far, before fees, USDT */
  realizedPnl: number;
  /** derived: the price at which the position is liquidated */
  liquidationPrice: number;
}

export interface FundingCharge {
  seq: number;
  pair: string;
  /** funding time, Unix ms */
  time: number;
  /** fraction per interval */
  rate: number;
  /** price the notional was valued at (see the file comment) */
  markPrice: number;
  side: Side;
  quantity: number;
  /** paid (+) or received (−), USDT: `fundingPayment(side, quantity, markPrice, rate)` */
  amount: number;
  /** part of a payment taken from the isolated margin because cash was short (normally 0), USDT */
  fromMargin: number;
}

export interface LiquidationRecord {
  seq: number;
  pair: string;
  /** close time of the candle that crossed the liquidation price, Unix ms */
  time: number;
  side: Side;
  quantity: number;
  entryPrice: number;
  /** the liquidation price, or the candle's open when the candle opened beyond it */
  price: number;
  /** the isolated margin lost, USDT */
  marginLost: number;
}

/** Where a pair's candle processing stands. */
export interface PairCursor {
  pair: string;
  /** close time of the last processed candle (Unix ms); null before the first */
  syncedTo: number | null;
  /** last known price: the latest processed candle close or market-order reference price; null before either */
  lastPrice: number | null;
  lastPriceTime: number | null;
}

export interface LedgerTotals {
  /** trading fees paid, USDT */
  fees: number;
  /** funding paid (+) / received (−), USDT */
  funding: number;
  /** realised PnL of reducing fills, before fees, USDT */
  realizedPnl: number;
  /** isolated margin lost to liquidations, USDT */
  liquidationLosses: number;
  /** losses beyond isolated margins paid by the insurance fund, USDT */
  bankruptcyCover: number;
}

/** Everything the ledger holds; {@link PaperLedger.restore} of it gives a ledger that behaves identically. */
export interface LedgerState {
  cash: number;
  totals: LedgerTotals;
  /** the next event sequence number */
  nextSeq: number;
  /** by pair name */
  positions: LedgerPosition[];
  /** by pair name */
  pairs: PairCursor[];
  /** by seq, each with its fills */
  orders: LedgerOrder[];
  /** by seq */
  funding: FundingCharge[];
  /** by seq */
  liquidations: LiquidationRecord[];
}

/** What changed since the last {@link PaperLedger.takeChanges} (only when created with `recordChanges`). */
export interface LedgerChanges {
  /** pairs whose cursor, position or stops changed */
  pairs: string[];
  /** orders created or changed (current values) */
  orders: LedgerOrder[];
  fills: LedgerFill[];
  funding: FundingCharge[];
  liquidations: LiquidationRecord[];
  /** true when cash, totals or the sequence counter may have changed */
  account: boolean;
}

export interface PaperLedgerOptions {
  /** collect changes for {@link PaperLedger.takeChanges} (persistence); off in backtests */
  recordChanges?: boolean;
}

/** Relative tolerance under which a reducing quantity counts as the whole position (float noise). */
const CLOSE_TOLERANCE = 1e-9;

const NO_CLOSES: readonly ExternalClose[] = Object.freeze([]);

interface Book {
  pair: string;
  position: LedgerPosition | null;
  /** open stop orders, in placement order */
  stops: LedgerOrder[];
  syncedTo: number | null;
  lastPrice: number | null;
  lastPriceTime: number | null;
  /** the position as {@link PaperLedger.positions} last reported it, and the price it was marked at */
  reported: ExchangePosition | null;
  reportedPrice: number;
}

interface ChangeSet {
  pairs: Set<string>;
  orders: Set<LedgerOrder>;
  fills: LedgerFill[];
  funding: FundingCharge[];
  liquidations: LiquidationRecord[];
  account: boolean;
}

/** The paper account. See the file comment for the rules. */
export class PaperLedger {
  readonly config: Readonly<PaperLedgerConfig>;
  private cashBalance: number;
  private readonly sums: LedgerTotals;
  private seq = 1;
  private readonly books = new Map<string, Book>();
  /** the same books sorted by pair: sums over pairs always run in this order, so a restored ledger adds up alike */
  private readonly bookList: Book[] = [];
  private readonly orderById = new Map<string, LedgerOrder>();
  private readonly fillLog: LedgerFill[] = [];
  private readonly fundingLog: FundingCharge[] = [];
  private readonly liquidationLog: LiquidationRecord[] = [];
  private changes: ChangeSet | null;

  /**
   * A new account holding `config.starting_balance` USDT.
   * @throws Error when a config figure is out of range (balance <= 0, a negative fee or slippage, a maintenance margin
   *   rate outside (0, 1)).
   */
  constructor(config: PaperLedgerConfig, options: PaperLedgerOptions = {}) {
    checkConfig(config);
    this.config = Object.freeze({
      starting_balance: config.starting_balance,
      taker_fee: config.taker_fee,
      slippage: config.slippage,
      maintenance_margin_rate: config.maintenance_margin_rate,
    });
    this.cashBalance = config.starting_balance;
    this.sums = { fees: 0, funding: 0, realizedPnl: 0, liquidationLosses: 0, bankruptcyCover: 0 };
    this.changes = options.recordChanges === true ? emptyChanges() : null;
  }

  /**
   * A ledger in exactly the state `state` (from {@link PaperLedger.state}, possibly through a database). Derived
   * figures (liquidation prices, the fill list, open stops) are rebuilt from it.
   * @throws Error when the state is inconsistent (a position without its pair, an open stop without a position).
   */
  static restore(config: PaperLedgerConfig, state: LedgerState, options: PaperLedgerOptions = {}): PaperLedger {
    const ledger = new PaperLedger(config, options);
    ledger.load(state);
    return ledger;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Orders
  // ------------------------------------------------------------------------------------------------------------

  /**
   * Place a market order. A repeated client order id returns the stored order and changes nothing.
   * - Opening (flat) or increasing (same direction): margin = fill notional / leverage moves from cash into the
   *   position, the fee is paid from cash; needs cash >= margin + fee. An increase averages the entry price.
   * - Reducing (opposite direction): releases margin × q / quantity, realises the PnL at the average entry price.
   *   Within 1e-9 relative of the whole quantity it closes the position, which cancels the pair's open stops.
   * @throws LedgerRejection `ExchangeDuplicateOrderId` (id used by a different request), `ExchangeInsufficientFunds`,
   *   `ExchangeInvalidOrder` (malformed id or numbers, reduce-only that would open or add, a non-reduce-only order
   *   larger than the position (flips are not supported), an increase at another leverage, a position already
   *   beyond its liquidation price at the reference price, a new position that would be liquidated at once).
   * @throws Error when `time` is before the pair's processed candles.
   */
  placeMarketOrder(input: MarketOrderInput): LedgerOrder {
    const existing = this.orderById.get(input.clientOrderId);
    if (existing) {
      checkSameRequest(existing, 'market', input.pair, input.side, input.quantity, input.reduceOnly, null);
      return copyOrder(existing);
    }
    const where = `market ${input.side} order ${input.clientOrderId} on ${input.pair}`;
    checkOrderBasics(where, input.clientOrderId, input.pair, input.quantity, input.time);
    checkPrice(where, 'referencePrice', input.referencePrice);
    const book = this.books.get(input.pair);
    checkNotBefore(where, input.time, book);
    const position = book?.position ?? null;
    const buy = input.side === 'buy';
    const fillPrice = input.referencePrice * (buy ? 1 + this.config.slippage : 1 - this.config.slippage);
    const taker = this.config.taker_fee;

    if (position && crossesLiquidation(position, input.referencePrice)) {
      throw new LedgerRejection(
        'ExchangeInvalidOrder',
        `${where}: the ${position.side} position is at or beyond its liquidation price ${position.liquidationPrice} ` +
          `at the reference price ${input.referencePrice}; it is being liquidated. Advance the pair's candles first.`,
      );
    }
    const adds = position === null || buy === (position.side === 'long');
    if (adds) {
      if (input.reduceOnly) {
        throw new LedgerRejection(
          'ExchangeInvalidOrder',
          position === null
            ? `${where}: reduce-only, but no position is open on ${input.pair}`
            : `${where}: reduce-only, but a ${input.side} would add to the ${position.side} position`,
        );
      }
      if (!(input.leverage >= 1) || !Number.isFinite(input.leverage)) {
        throw new LedgerRejection('ExchangeInvalidOrder', `${where}: leverage must be >= 1, got ${input.leverage}`);
      }
      if (position && input.leverage !== position.leverage) {
        throw new LedgerRejection(
          'ExchangeInvalidOrder',
          `${where}: the open position has leverage ${position.leverage}x; an increase must use it, got ${input.leverage}x`,
        );
      }
      const side: Side = buy ? 'long' : 'short';
      if (!position) {
        const liq = liquidationPrice(side, fillPrice, input.leverage, this.config.maintenance_margin_rate);
        if (buy ? liq >= input.referencePrice : liq <= input.referencePrice) {
          throw new LedgerRejection(
            'ExchangeInvalidOrder',
            `${where}: at ${input.leverage}x with maintenance margin rate ${this.config.maintenance_margin_rate} and ` +
              `slippage ${this.config.slippage} the position would be liquidated at once (liquidation price ${liq}); ` +
              'lower the leverage',
          );
        }
      }
      const fillNotional = notional(input.quantity, fillPrice);
      const margin = marginFor(fillNotional, input.leverage);
      const fee = tradingFee(input.quantity, fillPrice, taker);
      if (this.cashBalance < margin + fee) {
        throw new LedgerRejection(
          'ExchangeInsufficientFunds',
          `${where}: needs ${margin + fee} USDT (margin ${margin} + fee ${fee}) but only ${this.cashBalance} USDT ` +
            'is available; reduce the quantity or the leverage',
        );
      }
      const bookFor = book ?? this.book(input.pair);
      const order = this.newMarketOrder(input, input.quantity);
      this.cashBalance -= margin + fee;
      this.sums.fees += fee;
      let effect: FillEffect;
      if (position) {
        const quantity = position.quantity + input.quantity;
        position.entryPrice = (position.quantity * position.entryPrice + input.quantity * fillPrice) / quantity;
        position.quantity = quantity;
        position.margin += margin;
        position.fees += fee;
        this.refreshLiquidationPrice(position);
        effect = 'increase';
      } else {
        bookFor.position = {
          pair: input.pair,
          side,
          quantity: input.quantity,
          entryPrice: fillPrice,
          leverage: input.leverage,
          margin,
          marginDeficit: 0,
          openedAt: input.time,
          fees: fee,
          funding: 0,
          realizedPnl: 0,
          liquidationPrice: 0,
        };
        this.refreshLiquidationPrice(bookFor.position);
        effect = 'open';
      }
      this.recordFill(order, fillPrice, input.quantity, fee, input.time, effect, 0, margin, 0);
      this.notePrice(bookFor, input.referencePrice, input.time);
      return copyOrder(order);
    }

    // Reducing an open position (position !== null here).
    const open = position!;
    let quantity = input.quantity;
    if (quantity > open.quantity * (1 + CLOSE_TOLERANCE)) {
      if (!input.reduceOnly) {
        throw new LedgerRejection(
          'ExchangeInvalidOrder',
          `${where}: ${quantity} is more than the open ${open.side} quantity ${open.quantity}; flipping sides in one ` +
            'order is not supported: close the position, then open the other side',
        );
      }
      quantity = open.quantity;
    }
    const closes = quantity >= open.quantity * (1 - CLOSE_TOLERANCE);
    if (closes) quantity = open.quantity;
    const order = this.newMarketOrder(input, quantity);
    this.reduce(book!, order, quantity, fillPrice, input.time, 'position closed');
    this.notePrice(book!, input.referencePrice, input.time);
    return copyOrder(order);
  }

  /**
   * Place a reduce-only stop-market order protecting the open position of `pair`. A repeated client order id returns
   * the stored order and changes nothing. The stop stays open until it triggers (see {@link advance}), is cancelled,
   * or the position closes (then it is cancelled with reason `position closed` / `position liquidated`).
   * @throws LedgerRejection `ExchangeDuplicateOrderId`, or `ExchangeInvalidOrder` when no position is open, the side
   *   does not protect it (sell for a long, buy for a short), or the stop is already crossed at the last known price
   *   (it would trigger at once).
   * @throws Error when `time` is before the pair's processed candles.
   */
  placeStopOrder(input: StopOrderInput): LedgerOrder {
    const existing = this.orderById.get(input.clientOrderId);
    if (existing) {
      checkSameRequest(existing, 'stop', input.pair, input.side, input.quantity, true, input.stopPrice);
      return copyOrder(existing);
    }
    const where = `stop ${input.side} order ${input.clientOrderId} on ${input.pair}`;
    checkOrderBasics(where, input.clientOrderId, input.pair, input.quantity, input.time);
    checkPrice(where, 'stopPrice', input.stopPrice);
    const book = this.books.get(input.pair);
    checkNotBefore(where, input.time, book);
    const position = book?.position ?? null;
    if (position === null || book === undefined) {
      throw new LedgerRejection('ExchangeInvalidOrder', `${where}: no position is open on ${input.pair} to protect`);
    }
    const protects = (input.side === 'sell') === (position.side === 'long');
    if (!protects) {
      throw new LedgerRejection(
        'ExchangeInvalidOrder',
        `${where}: a ${input.side} stop cannot protect a ${position.side} position; use ` +
          `${position.side === 'long' ? 'sell' : 'buy'}`,
      );
    }
    const last = book.lastPrice;
    if (last !== null && (position.side === 'long' ? input.stopPrice >= last : input.stopPrice <= last)) {
      throw new LedgerRejection(
        'ExchangeInvalidOrder',
        `${where}: the stop price ${input.stopPrice} is already crossed at the last price ${last}; the order would ` +
          'trigger immediately. Close with a market order instead.',
      );
    }
    const seq = this.nextSeq();
    const order: LedgerOrder = {
      seq,
      clientOrderId: input.clientOrderId,
      exchangeOrderId: `paper-${seq}`,
      pair: input.pair,
      kind: 'stop',
      side: input.side,
      reduceOnly: true,
      requestedQuantity: input.quantity,
      quantity: input.quantity,
      referencePrice: null,
      stopPrice: input.stopPrice,
      status: 'open',
      time: input.time,
      updatedAt: input.time,
      filledQuantity: 0,
      fee: 0,
      averagePrice: null,
      cancelReason: null,
      fills: [],
    };
    this.orderById.set(order.clientOrderId, order);
    book.stops.push(order);
    this.touchOrder(order);
    this.touchPair(book.pair);
    return copyOrder(order);
  }

  /**
   * Cancel an open stop order. An order that is already final (filled, cancelled) is returned unchanged; null when
   * no order has this id.
   */
  cancelOrder(clientOrderId: string, time: number): LedgerOrder | null {
    const order = this.orderById.get(clientOrderId);
    if (!order) return null;
    if (order.status === 'open') {
      if (!Number.isSafeInteger(time))
        throw new Error(`cancelOrder ${clientOrderId}: time must be Unix ms, got ${time}`);
      this.cancelStop(order, time, 'canceled by request');
    }
    return copyOrder(order);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Candles and funding
  // ------------------------------------------------------------------------------------------------------------

  /**
   * Process closed candles of `pair` (funding, liquidation, stops; see the file comment) and return the closes the
   * exchange made. Candles that open before the pair's processed time ({@link syncedTo}) are skipped, so overlapping
   * calls are harmless; funding events at or before that time are skipped too, and events after the last candle's
   * close are left for a later call. A flat pair without stops only moves its cursor and last price.
   * @param candles sorted by open time, each `candleMs` long (gaps allowed)
   * @param funding the pair's funding events covering the candles (extra events are ignored), sorted by time
   * @param candleMs the candles' timeframe length in ms
   * @throws Error on unsorted or malformed candles or a non-positive `candleMs` (before anything changes)
   */
  advance(
    pair: string,
    candles: readonly Candle[],
    funding: readonly FundingEvent[],
    candleMs: number,
  ): readonly ExternalClose[] {
    if (!(candleMs > 0) || !Number.isSafeInteger(candleMs)) {
      throw new Error(`advance ${pair}: candleMs must be a positive integer of milliseconds, got ${candleMs}`);
    }
    checkCandles(pair, candles);
    let book = this.books.get(pair);
    const from = book?.syncedTo ?? -Infinity;
    let i = 0;
    while (i < candles.length && candles[i]!.time < from) i++;
    if (i === candles.length) return NO_CLOSES;
    book ??= this.book(pair);
    this.touchPair(pair);
    const last = candles[candles.length - 1]!;
    if (book.position === null && book.stops.length === 0) {
      book.syncedTo = last.time + candleMs;
      book.lastPrice = last.close;
      book.lastPriceTime = book.syncedTo;
      return NO_CLOSES;
    }
    let closes: ExternalClose[] | null = null;
    let f = 0;
    while (f < funding.length && funding[f]!.time <= from) f++;
    for (; i < candles.length; i++) {
      const c = candles[i]!;
      const close = c.time + candleMs;
      // 1. funding in a gap before this candle, at the last known price
      while (f < funding.length && funding[f]!.time <= c.time) {
        this.settleFunding(book, funding[f]!, book.lastPrice ?? c.open);
        f++;
      }
      // 2. triggers
      if (book.position !== null) {
        const closed = this.trigger(book, c, close);
        if (closed !== null) (closes ??= []).push(...closed);
      }
      book.syncedTo = close;
      book.lastPrice = c.close;
      book.lastPriceTime = close;
      // 3. funding inside the candle, at its close
      while (f < funding.length && funding[f]!.time <= close) {
        this.settleFunding(book, funding[f]!, c.close);
        f++;
      }
    }
    return closes ?? NO_CLOSES;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Queries
  // ------------------------------------------------------------------------------------------------------------

  /** Wallet balance not locked as margin, USDT. Never negative. */
  get cash(): number {
    return this.cashBalance;
  }

  /** The sequence number the next order, fill, funding settlement or liquidation will get. */
  get nextSequence(): number {
    return this.seq;
  }

  /** Cumulative fees, funding, realised PnL, liquidation losses and bankruptcy cover (a copy). */
  totals(): LedgerTotals {
    return { ...this.sums };
  }

  /** `cash` (available for new margin) and the margin locked in positions, USDT. */
  balance(): { cash: number; usedMargin: number } {
    let usedMargin = 0;
    for (const book of this.bookList) if (book.position) usedMargin += book.position.margin;
    return { cash: this.cashBalance, usedMargin };
  }

  /**
   * cash + Σ margin + Σ unrealised PnL, USDT, valuing each position at `prices[pair]`, or at the pair's last known
   * price when `prices` has none.
   */
  equity(prices: Readonly<Record<string, number>> = {}): number {
    let total = this.cashBalance;
    for (const book of this.bookList) {
      const p = book.position;
      if (p === null) continue;
      total += p.margin + unrealizedPnl(p.side, p.entryPrice, p.quantity, priceOf(book, prices));
    }
    return total;
  }

  /**
   * Every open position as the port reports it, sorted by pair; prices as in {@link equity}. A position that has not
   * changed (same fields, same mark price) since the last call is the same object as then: the reported positions are
   * shared, do not modify them. (A backtest asks for the account at every pair-cycle; rebuilding every open position
   * each time was a tenth of its allocations.)
   */
  positions(prices: Readonly<Record<string, number>> = {}): ExchangePosition[] {
    const out: ExchangePosition[] = [];
    for (const book of this.bookList) {
      const p = book.position;
      if (p === null) continue;
      const price = priceOf(book, prices);
      let r = book.reported;
      if (
        r === null ||
        book.reportedPrice !== price ||
        r.pair !== p.pair ||
        r.side !== p.side ||
        r.quantity !== p.quantity ||
        r.entryPrice !== p.entryPrice ||
        r.leverage !== p.leverage ||
        r.margin !== p.margin ||
        r.liquidationPrice !== p.liquidationPrice
      ) {
        r = {
          pair: p.pair,
          side: p.side,
          quantity: p.quantity,
          entryPrice: p.entryPrice,
          leverage: p.leverage,
          margin: p.margin,
          notional: notional(p.quantity, price),
          liquidationPrice: p.liquidationPrice,
          unrealizedPnl: unrealizedPnl(p.side, p.entryPrice, p.quantity, price),
        };
        book.reported = r;
        book.reportedPrice = price;
      }
      out.push(r);
    }
    return out;
  }

  /** The open position of `pair` (a copy), or null. */
  position(pair: string): LedgerPosition | null {
    const p = this.books.get(pair)?.position;
    return p ? { ...p } : null;
  }

  /** True when `pair` has an open position or open stop orders (so its candles matter). */
  hasExposure(pair: string): boolean {
    const book = this.books.get(pair);
    return book !== undefined && (book.position !== null || book.stops.length > 0);
  }

  /** Pairs with an open position or open stops, sorted. */
  exposedPairs(): string[] {
    return this.bookList.filter((b) => b.position !== null || b.stops.length > 0).map((b) => b.pair);
  }

  /** Close time (Unix ms) of the last candle processed for `pair`; null before the first. */
  syncedTo(pair: string): number | null {
    return this.books.get(pair)?.syncedTo ?? null;
  }

  /** Where `pair`'s candle processing stands (a copy), or null for a pair the ledger has not seen. */
  cursor(pair: string): PairCursor | null {
    const b = this.books.get(pair);
    return b ? { pair, syncedTo: b.syncedTo, lastPrice: b.lastPrice, lastPriceTime: b.lastPriceTime } : null;
  }

  /** The last known price of `pair` (candle close or order reference price); null before either. */
  lastPrice(pair: string): number | null {
    return this.books.get(pair)?.lastPrice ?? null;
  }

  /** The order with this client order id (a copy), or null. */
  order(clientOrderId: string): LedgerOrder | null {
    const order = this.orderById.get(clientOrderId);
    return order ? copyOrder(order) : null;
  }

  /** Every fill, oldest first (the ledger's own records: do not modify). */
  fills(): readonly LedgerFill[] {
    return this.fillLog;
  }

  /** Every funding settlement, oldest first (do not modify). */
  fundingCharges(): readonly FundingCharge[] {
    return this.fundingLog;
  }

  /** Every liquidation, oldest first (do not modify). */
  liquidations(): readonly LiquidationRecord[] {
    return this.liquidationLog;
  }

  /**
   * Closes the exchange made on `pair` (stop fills and liquidations) with `from < time <= to`, oldest first: what a
   * cycle at `to` reports as happened since the cycle at `from`.
   */
  externalCloses(pair: string, from: number, to: number): ExternalClose[] {
    const out: { seq: number; close: ExternalClose }[] = [];
    for (const f of this.fillLog) {
      if (f.pair === pair && f.orderKind === 'stop' && f.time > from && f.time <= to) {
        out.push({ seq: f.seq, close: stopClose(f) });
      }
    }
    for (const l of this.liquidationLog) {
      if (l.pair === pair && l.time > from && l.time <= to) out.push({ seq: l.seq, close: liquidationClose(l) });
    }
    return out.sort((a, b) => a.seq - b.seq).map((x) => x.close);
  }

  /** A deep copy of the whole state, in a canonical order (see {@link LedgerState}). */
  state(): LedgerState {
    const books = this.bookList;
    return {
      cash: this.cashBalance,
      totals: { ...this.sums },
      nextSeq: this.seq,
      positions: books.flatMap((b) => (b.position ? [{ ...b.position }] : [])),
      pairs: books.map((b) => ({
        pair: b.pair,
        syncedTo: b.syncedTo,
        lastPrice: b.lastPrice,
        lastPriceTime: b.lastPriceTime,
      })),
      orders: [...this.orderById.values()].sort((a, b) => a.seq - b.seq).map(copyOrder),
      funding: this.fundingLog.map((x) => ({ ...x })),
      liquidations: this.liquidationLog.map((x) => ({ ...x })),
    };
  }

  /** The changes since the previous call, then forgets them. Empty unless created with `recordChanges`. */
  takeChanges(): LedgerChanges {
    const c = this.changes;
    if (c === null) return { pairs: [], orders: [], fills: [], funding: [], liquidations: [], account: false };
    this.changes = emptyChanges();
    return {
      pairs: [...c.pairs].sort(),
      orders: [...c.orders].sort((a, b) => a.seq - b.seq).map(copyOrder),
      fills: c.fills,
      funding: c.funding,
      liquidations: c.liquidations,
      account: c.account,
    };
  }

  /** True when changes are waiting for {@link takeChanges}. */
  hasChanges(): boolean {
    const c = this.changes;
    return (
      c !== null &&
      (c.account ||
        c.pairs.size > 0 ||
        c.orders.size > 0 ||
        c.fills.length > 0 ||
        c.funding.length > 0 ||
        c.liquidations.length > 0)
    );
  }

  // ------------------------------------------------------------------------------------------------------------
  // Internals
  // ------------------------------------------------------------------------------------------------------------

  private book(pair: string): Book {
    let book = this.books.get(pair);
    if (!book) {
      book = {
        pair,
        position: null,
        stops: [],
        syncedTo: null,
        lastPrice: null,
        lastPriceTime: null,
        reported: null,
        reportedPrice: NaN,
      };
      this.addBook(book);
      this.touchPair(pair);
    }
    return book;
  }

  private addBook(book: Book): void {
    this.books.set(book.pair, book);
    let at = this.bookList.length;
    while (at > 0 && this.bookList[at - 1]!.pair > book.pair) at--;
    this.bookList.splice(at, 0, book);
  }

  private nextSeq(): number {
    const s = this.seq;
    this.seq += 1;
    if (this.changes) this.changes.account = true;
    return s;
  }

  private newMarketOrder(input: MarketOrderInput, quantity: number): LedgerOrder {
    const seq = this.nextSeq();
    const order: LedgerOrder = {
      seq,
      clientOrderId: input.clientOrderId,
      exchangeOrderId: `paper-${seq}`,
      pair: input.pair,
      kind: 'market',
      side: input.side,
      reduceOnly: input.reduceOnly,
      requestedQuantity: input.quantity,
      quantity,
      referencePrice: input.referencePrice,
      stopPrice: null,
      status: 'filled',
      time: input.time,
      updatedAt: input.time,
      filledQuantity: 0,
      fee: 0,
      averagePrice: null,
      cancelReason: null,
      fills: [],
    };
    this.orderById.set(order.clientOrderId, order);
    this.touchOrder(order);
    return order;
  }

  /** A reducing fill of `quantity` (<= the position's; equal closes it) for `order` at `price`. */
  private reduce(book: Book, order: LedgerOrder, quantity: number, price: number, time: number, why: string): void {
    const p = book.position!;
    const closes = quantity === p.quantity;
    const fee = tradingFee(quantity, price, this.config.taker_fee);
    const pnl = unrealizedPnl(p.side, p.entryPrice, quantity, price);
    const released = closes ? p.margin : p.margin * (quantity / p.quantity);
    const net = released + pnl - fee;
    const cover = net < 0 ? -net : 0;
    this.cashBalance += net + cover;
    this.sums.fees += fee;
    this.sums.realizedPnl += pnl;
    this.sums.bankruptcyCover += cover;
    if (closes) {
      book.position = null;
      this.cancelAllStops(book, time, why);
    } else {
      const keep = 1 - quantity / p.quantity;
      p.quantity -= quantity;
      p.margin -= released;
      p.marginDeficit *= keep;
      p.fees += fee;
      p.realizedPnl += pnl;
      this.refreshLiquidationPrice(p);
    }
    this.touchPair(book.pair);
    this.recordFill(order, price, quantity, fee, time, closes ? 'close' : 'reduce', pnl, -released, cover);
  }

  private recordFill(
    order: LedgerOrder,
    price: number,
    quantity: number,
    fee: number,
    time: number,
    effect: FillEffect,
    realizedPnl: number,
    marginChange: number,
    bankruptcyCover: number,
  ): void {
    const fill: LedgerFill = {
      seq: this.nextSeq(),
      clientOrderId: order.clientOrderId,
      pair: order.pair,
      side: order.side,
      price,
      quantity,
      fee,
      time,
      reduceOnly: order.reduceOnly,
      orderKind: order.kind,
      effect,
      realizedPnl,
      marginChange,
      bankruptcyCover,
    };
    const before = order.filledQuantity;
    order.filledQuantity = before + quantity;
    order.averagePrice =
      order.averagePrice === null ? price : (order.averagePrice * before + price * quantity) / order.filledQuantity;
    order.fee += fee;
    order.updatedAt = time;
    order.fills.push(fill);
    this.fillLog.push(fill);
    this.touchOrder(order);
    if (this.changes) this.changes.fills.push(fill);
  }

  /** Liquidation first, then stops; returns the closes made, or null. */
  private trigger(book: Book, c: Candle, time: number): ExternalClose[] | null {
    const p = book.position!;
    const long = p.side === 'long';
    const adverse = long ? c.low : c.high;
    if (long ? adverse <= p.liquidationPrice : adverse >= p.liquidationPrice) {
      const gapped = long ? c.open <= p.liquidationPrice : c.open >= p.liquidationPrice;
      return [this.liquidate(book, gapped ? c.open : p.liquidationPrice, time)];
    }
    const stops = book.stops;
    let any = false;
    for (let k = 0; k < stops.length && !any; k++) {
      const sp = stops[k]!.stopPrice!;
      any = long ? adverse <= sp : adverse >= sp;
    }
    if (!any) return null;
    let out: ExternalClose[] | null = null;
    // nearest stop first: highest for a long (the price falls through it first), lowest for a short
    const triggered = stops
      .filter((s) => (long ? adverse <= s.stopPrice! : adverse >= s.stopPrice!))
      .sort((a, b) => (long ? b.stopPrice! - a.stopPrice! : a.stopPrice! - b.stopPrice!) || a.seq - b.seq);
    for (const stop of triggered) {
      const position = book.position;
      if (position === null) break;
      const gapped = long ? c.open <= stop.stopPrice! : c.open >= stop.stopPrice!;
      const base = gapped ? c.open : stop.stopPrice!;
      const price = base * (stop.side === 'buy' ? 1 + this.config.slippage : 1 - this.config.slippage);
      const quantity = Math.min(stop.quantity, position.quantity);
      stop.status = 'filled';
      book.stops.splice(book.stops.indexOf(stop), 1);
      this.reduce(
        book,
        stop,
        quantity >= position.quantity * (1 - CLOSE_TOLERANCE) ? position.quantity : quantity,
        price,
        time,
        'position closed',
      );
      (out ??= []).push(stopClose(stop.fills[stop.fills.length - 1]!));
    }
    return out;
  }

  private liquidate(book: Book, price: number, time: number): ExternalClose {
    const p = book.position!;
    const record: LiquidationRecord = {
      seq: this.nextSeq(),
      pair: p.pair,
      time,
      side: p.side,
      quantity: p.quantity,
      entryPrice: p.entryPrice,
      price,
      marginLost: p.margin,
    };
    this.sums.liquidationLosses += p.margin;
    book.position = null;
    this.cancelAllStops(book, time, 'position liquidated');
    this.liquidationLog.push(record);
    this.touchPair(book.pair);
    if (this.changes) this.changes.liquidations.push(record);
    return liquidationClose(record);
  }

  private settleFunding(book: Book, event: FundingEvent, markPrice: number): void {
    const p = book.position;
    if (p === null) return;
    // `+ 0` turns a -0 (a zero rate on a short) into 0, so the figure survives storage unchanged
    const amount = fundingPayment(p.side, p.quantity, markPrice, event.rate) + 0;
    let fromMargin = 0;
    if (amount > this.cashBalance) {
      fromMargin = amount - this.cashBalance;
      this.cashBalance = 0;
      p.margin -= fromMargin;
      p.marginDeficit += fromMargin;
      this.refreshLiquidationPrice(p);
    } else {
      this.cashBalance -= amount;
    }
    p.funding += amount;
    this.sums.funding += amount;
    const charge: FundingCharge = {
      seq: this.nextSeq(),
      pair: p.pair,
      time: event.time,
      rate: event.rate,
      markPrice,
      side: p.side,
      quantity: p.quantity,
      amount,
      fromMargin,
    };
    this.fundingLog.push(charge);
    this.touchPair(book.pair);
    if (this.changes) this.changes.funding.push(charge);
  }

  private refreshLiquidationPrice(p: LedgerPosition): void {
    const base = liquidationPrice(p.side, p.entryPrice, p.leverage, this.config.maintenance_margin_rate);
    const shift = p.marginDeficit === 0 ? 0 : p.marginDeficit / p.quantity;
    p.liquidationPrice = p.side === 'long' ? base + shift : base - shift;
  }

  private cancelAllStops(book: Book, time: number, reason: string): void {
    while (book.stops.length > 0) this.cancelStop(book.stops[0]!, time, reason);
  }

  private cancelStop(order: LedgerOrder, time: number, reason: string): void {
    const book = this.books.get(order.pair)!;
    const at = book.stops.indexOf(order);
    if (at >= 0) book.stops.splice(at, 1);
    order.status = 'canceled';
    order.cancelReason = reason;
    order.updatedAt = time;
    this.touchOrder(order);
    this.touchPair(order.pair);
  }

  private notePrice(book: Book, price: number, time: number): void {
    if (book.lastPriceTime === null || time >= book.lastPriceTime) {
      book.lastPrice = price;
      book.lastPriceTime = time;
      this.touchPair(book.pair);
    }
  }

  private touchPair(pair: string): void {
    if (this.changes) {
      this.changes.pairs.add(pair);
      this.changes.account = true;
    }
  }

  private touchOrder(order: LedgerOrder): void {
    if (this.changes) {
      this.changes.orders.add(order);
      this.changes.account = true;
    }
  }

  private load(state: LedgerState): void {
    this.cashBalance = state.cash;
    Object.assign(this.sums, state.totals);
    this.seq = state.nextSeq;
    for (const c of state.pairs) {
      this.addBook({
        pair: c.pair,
        position: null,
        stops: [],
        syncedTo: c.syncedTo,
        lastPrice: c.lastPrice,
        lastPriceTime: c.lastPriceTime,
        reported: null,
        reportedPrice: NaN,
      });
    }
    for (const p of state.positions) {
      const book = this.books.get(p.pair);
      if (!book) throw new Error(`restore: position on ${p.pair} but the pair has no cursor row`);
      book.position = { ...p };
      this.refreshLiquidationPrice(book.position);
    }
    const orders = [...state.orders].sort((a, b) => a.seq - b.seq);
    for (const o of orders) {
      const order = copyOrder(o);
      this.orderById.set(order.clientOrderId, order);
      if (order.kind === 'stop' && order.status === 'open') {
        const book = this.books.get(order.pair);
        if (!book?.position) {
          throw new Error(`restore: open stop ${order.clientOrderId} on ${order.pair} without an open position`);
        }
        book.stops.push(order);
      }
      this.fillLog.push(...order.fills);
    }
    this.fillLog.sort((a, b) => a.seq - b.seq);
    this.fundingLog.push(...state.funding.map((x) => ({ ...x })).sort((a, b) => a.seq - b.seq));
    this.liquidationLog.push(...state.liquidations.map((x) => ({ ...x })).sort((a, b) => a.seq - b.seq));
    if (this.changes) this.changes = emptyChanges();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

function emptyChanges(): ChangeSet {
  return { pairs: new Set(), orders: new Set(), fills: [], funding: [], liquidations: [], account: false };
}

function copyOrder(order: LedgerOrder): LedgerOrder {
  return { ...order, fills: order.fills.map((f) => ({ ...f })) };
}

function stopClose(fill: LedgerFill): ExternalClose {
  return {
    pair: fill.pair,
    time: fill.time,
    price: fill.price,
    quantity: fill.quantity,
    fee: fill.fee,
    reason: 'stop',
    clientOrderId: fill.clientOrderId,
  };
}

function liquidationClose(l: LiquidationRecord): ExternalClose {
  return {
    pair: l.pair,
    time: l.time,
    price: l.price,
    quantity: l.quantity,
    fee: 0,
    reason: 'liquidation',
    clientOrderId: null,
  };
}

function priceOf(book: Book, prices: Readonly<Record<string, number>>): number {
  const given = prices[book.pair];
  if (given !== undefined) return given;
  // A position always has a last price: the order that opened it set one.
  return book.lastPrice ?? book.position!.entryPrice;
}

function crossesLiquidation(p: LedgerPosition, price: number): boolean {
  return p.side === 'long' ? price <= p.liquidationPrice : price >= p.liquidationPrice;
}

function checkConfig(c: PaperLedgerConfig): void {
  const problems: string[] = [];
  if (!(c.starting_balance > 0) || !Number.isFinite(c.starting_balance)) {
    problems.push(`starting_balance must be > 0, got ${c.starting_balance}`);
  }
  if (!(c.taker_fee >= 0) || !(c.taker_fee < 1)) problems.push(`taker_fee must be in [0, 1), got ${c.taker_fee}`);
  if (!(c.slippage >= 0) || !(c.slippage < 1)) problems.push(`slippage must be in [0, 1), got ${c.slippage}`);
  if (!(c.maintenance_margin_rate > 0) || !(c.maintenance_margin_rate < 1)) {
    problems.push(`maintenance_margin_rate must be in (0, 1), got ${c.maintenance_margin_rate}`);
  }
  if (problems.length > 0) throw new Error(`paper ledger config: ${problems.join('; ')}`);
}

function checkOrderBasics(where: string, clientOrderId: string, pair: string, quantity: number, time: number): void {
  const idProblem = clientOrderIdProblem(clientOrderId);
  if (idProblem !== null) throw new LedgerRejection('ExchangeInvalidOrder', `${where}: ${idProblem}`);
  if (pair.length === 0) throw new LedgerRejection('ExchangeInvalidOrder', `${where}: the pair is empty`);
  if (!(quantity > 0) || !Number.isFinite(quantity)) {
    throw new LedgerRejection('ExchangeInvalidOrder', `${where}: quantity must be > 0, got ${quantity}`);
  }
  if (!Number.isSafeInteger(time)) throw new Error(`${where}: time must be Unix ms (an integer), got ${time}`);
}

function checkPrice(where: string, name: string, price: number): void {
  if (!(price > 0) || !Number.isFinite(price)) {
    throw new LedgerRejection('ExchangeInvalidOrder', `${where}: ${name} must be a price > 0, got ${price}`);
  }
}

function checkNotBefore(where: string, time: number, book: Book | undefined): void {
  const synced = book?.syncedTo ?? null;
  if (synced !== null && time < synced) {
    throw new Error(
      `${where}: time ${time} is before ${synced}, the close of the last candle already processed for the pair; ` +
        'orders must come in time order with the candles',
    );
  }
}

function checkSameRequest(
  existing: LedgerOrder,
  kind: 'market' | 'stop',
  pair: string,
  side: OrderSide,
  quantity: number,
  reduceOnly: boolean,
  stopPrice: number | null,
): void {
  const same =
    existing.kind === kind &&
    existing.pair === pair &&
    existing.side === side &&
    existing.requestedQuantity === quantity &&
    existing.reduceOnly === reduceOnly &&
    existing.stopPrice === stopPrice;
  if (same) return;
  const describe = (k: string, p: string, s: string, q: number, r: boolean, sp: number | null): string =>
    `${k} ${s} ${q} on ${p}${r ? ' reduce-only' : ''}${sp !== null ? ` stop ${sp}` : ''}`;
  throw new LedgerRejection(
    'ExchangeDuplicateOrderId',
    `client order id ${existing.clientOrderId} is already used by the ${describe(existing.kind, existing.pair, existing.side, existing.requestedQuantity, existing.reduceOnly, existing.stopPrice)} order; ` +
      `this request is a ${describe(kind, pair, side, quantity, reduceOnly, stopPrice)} order: use a new client order id`,
  );
}

function checkCandles(pair: string, candles: readonly Candle[]): void {
  let prev = -Infinity;
  for (let i = 0; i < candles.length; i++) {
    const c = candles[i]!;
    if (!Number.isSafeInteger(c.time) || c.time <= prev) {
      throw new Error(
        `advance ${pair}: candle ${i} has open time ${c.time}, not after the previous ${prev}; pass closed candles ` +
          'sorted by open time without duplicates',
      );
    }
    if (!(c.low > 0) || !(c.low <= c.open && c.low <= c.close && c.high >= c.open && c.high >= c.close)) {
      throw new Error(
        `advance ${pair}: candle at ${c.time} has inconsistent prices (open ${c.open}, high ${c.high}, low ${c.low}, ` +
          `close ${c.close}); the low must be > 0 and below open and close, the high above them`,
      );
    }
    prev = c.time;
  }
}
