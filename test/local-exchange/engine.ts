/**
 * The local exchange's books and matching engine: one USDT account (one API key), one-way position mode, market orders
 * and reduce-only STOP_MARKET conditional (algo) orders, over a {@link RecordedMarket}. All times are market times
 * (recorded Unix ms); the HTTP layer (server.ts) shifts them for the wire.
 *
 * Rules (Binance USDⓈ-M as documented, simplified where noted)
 * - A market order fills at once at the last price ({@link RecordedMarket.lastPrice}) moved against it by `slippage`
 *   and rounded to the tick size, as one trade, or as several trades at successive ticks (`split`), or partly and then
 *   expires (`fillFraction` < 1; status EXPIRED, like a market order that ran out of liquidity).
 * - Taker fee on every fill (`takerFee`, 0.05 % as Binance's default tier), rounded to 8 decimals like Binance's books;
 *   realised PnL against the average entry price on reducing fills. Both are booked to the wallet and to the income
 *   history (COMMISSION, REALIZED_PNL), as is funding (FUNDING_FEE).
 * - Margin: the leverage and margin type are per symbol (default 20x, cross). A position's margin is its entry notional
 *   / leverage, released pro rata on reductions. Opening or increasing needs margin + fee <= available balance
 *   (wallet − margins), else -2019 "Margin is insufficient.". Unrealised PnL is not counted as available.
 * - Client order ids are unique among OPEN orders (Binance's documented rule: a filled market order's id may be used
 *   again; `clientOrderIdScope: 'all'` makes them unique among all orders).
 * - Stops trigger on the 30m candles that close after they were placed: when the candle's low (sell stop) or high (buy
 *   stop) reaches the trigger price. They fill at the trigger price, or at the candle's open when it opened beyond it,
 *   moved by `slippage`, at the instant the price path open → nearer extreme → farther extreme → close first crosses
 *   the trigger (the moment inside a 30m candle is not recorded; this is the usual OHLC path assumption). A triggered
 *   stop spawns a market order (`actualOrderId`); a reduce-only stop with no position left expires.
 * - Funding: at each recorded funding time, a position pays (long, rate > 0) or receives notional × rate at the
 *   recorded mark price; settled after the stops of the candle that closes at (or after) the funding time.
 * Not modelled: liquidations, limit orders, hedge mode, cross-margin maintenance, order book depth.
 */
import type { Candle } from '../../src/core/types';
import { BASE_MS, type RecordedMarket } from './recorded-market';

export type OrderSide = 'BUY' | 'SELL';

/** A refusal the exchange answers with `{ code, msg }` and an HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    msg: string,
  ) {
    super(msg);
    this.name = 'ApiError';
  }
}

export interface EngineConfig {
  /** USDT in the wallet at the start */
  startingBalance: number;
  /** fraction, e.g. 0.0005 */
  takerFee: number;
  /** adverse slippage of every fill, fraction of the price (0: fills at the last price) */
  slippage: number;
  clientOrderIdScope: 'open' | 'all';
  defaultLeverage: number;
}

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  startingBalance: 10_000,
  takerFee: 0.0005,
  slippage: 0,
  clientOrderIdScope: 'open',
  defaultLeverage: 20,
};

export interface SymbolRules {
  symbol: string;
  tickSize: string;
  /** MARKET_LOT_SIZE */
  stepSize: string;
  minQty: number;
  maxQty: number;
  minNotional: number;
}

export interface Order {
  orderId: number;
  symbol: string;
  clientOrderId: string;
  side: OrderSide;
  origQty: number;
  executedQty: number;
  cumQuote: number;
  avgPrice: number;
  status: 'NEW' | 'FILLED' | 'EXPIRED' | 'CANCELED';
  reduceOnly: boolean;
  time: number;
  updateTime: number;
  /** the algo order that spawned it, if any */
  algoId: number | null;
}

export interface AlgoOrder {
  algoId: number;
  clientAlgoId: string;
  symbol: string;
  side: OrderSide;
  orderType: 'STOP_MARKET';
  quantity: number;
  triggerPrice: number;
  reduceOnly: boolean;
  algoStatus: 'NEW' | 'CANCELED' | 'FINISHED' | 'EXPIRED';
  createTime: number;
  updateTime: number;
  triggerTime: number;
  actualOrderId: number | null;
  actualPrice: number | null;
}

export interface Trade {
  id: number;
  orderId: number;
  symbol: string;
  side: OrderSide;
  price: number;
  qty: number;
  quoteQty: number;
  commission: number;
  realizedPnl: number;
  time: number;
}

export type IncomeType = 'TRANSFER' | 'COMMISSION' | 'REALIZED_PNL' | 'FUNDING_FEE';

export interface Income {
  tranId: number;
  symbol: string;
  incomeType: IncomeType;
  /** USDT, signed: + received, − paid */
  income: number;
  time: number;
  /** the trade it belongs to ('' for funding and transfers) */
  tradeId: string;
}

export interface Position {
  /** signed quantity: > 0 long, < 0 short */
  amount: number;
  entryPrice: number;
  /** isolated margin allocated, USDT */
  margin: number;
}

/** How the next market order fills (fault injection: partial fills, fills in several trades). */
export interface FillShape {
  /** fraction of the quantity that fills (rounded down to the step); the rest expires; default 1 */
  fillFraction?: number;
  /** number of trades the filled quantity is split into, at successive ticks against the order; default 1 */
  split?: number;
}

/** Money is booked to 8 decimals, like Binance's. */
export function money(x: number): number {
  return Math.round(x * 1e8) / 1e8;
}

function decimals(step: string): number {
  const dot = step.indexOf('.');
  return dot < 0 ? 0 : step.replace(/0+$/, '').length - dot - 1;
}

/** `value` rounded to a multiple of `step` (a decimal string), without float noise. */
export function roundToStep(value: number, step: string, mode: 'down' | 'nearest'): number {
  const s = Number(step);
  const units = mode === 'down' ? Math.floor(value / s + 1e-9) : Math.round(value / s);
  return Number((units * s).toFixed(decimals(step)));
}

/** True when the decimal string `value` is a positive whole multiple of `step`. */
function isMultiple(value: string, step: string): boolean {
  const d = Math.max(decimals(value.includes('.') ? value : `${value}.`), decimals(step));
  const scaled = (x: string): bigint => BigInt(Math.round(Number(x) * 10 ** d));
  const st = scaled(step);
  return Number(value) > 0 && st > 0n && scaled(value) % st === 0n;
}

const CLIENT_ID_RE = /^[.A-Z:/a-z0-9_-]{1,36}$/;

export class MatchingEngine {
  readonly orders: Order[] = [];
  readonly algoOrders: AlgoOrder[] = [];
  readonly trades: Trade[] = [];
  readonly income: Income[] = [];
  readonly positions = new Map<string, Position>();
  readonly leverage = new Map<string, number>();
  readonly marginType = new Map<string, 'ISOLATED' | 'CROSSED'>();
  wallet: number;
  /** per symbol: the market time up to which stops and funding are processed */
  private readonly processedTo = new Map<string, number>();
  private nextId = 1_000;

  constructor(
    readonly market: RecordedMarket,
    readonly rules: ReadonlyMap<string, SymbolRules>,
    readonly config: EngineConfig,
    startTime: number,
  ) {
    this.wallet = config.startingBalance;
    this.income.push({
      tranId: this.id(),
      symbol: '',
      incomeType: 'TRANSFER',
      income: config.startingBalance,
      time: startTime,
      tradeId: '',
    });
  }

  private id(): number {
    return this.nextId++;
  }

  rulesOf(symbol: string | undefined): SymbolRules {
    const r = symbol === undefined ? undefined : this.rules.get(symbol);
    if (!r || !this.market.has(r.symbol)) throw new ApiError(400, -1121, 'Invalid symbol.');
    return r;
  }

  leverageOf(symbol: string): number {
    return this.leverage.get(symbol) ?? this.config.defaultLeverage;
  }

  position(symbol: string): Position | undefined {
    const p = this.positions.get(symbol);
    return p && p.amount !== 0 ? p : undefined;
  }

  // ------------------------------------------------------------------------------------------------------------
  // The clock: stops and funding of the candles that closed since the last request
  // ------------------------------------------------------------------------------------------------------------

  /** Processes, for every symbol with a position or an open stop, the 30m candles that closed in (processed, t]. */
  advance(t: number): void {
    for (const symbol of this.market.symbols) {
      const from = this.processedTo.get(symbol);
      const exposed = this.position(symbol) !== undefined || this.openAlgo(symbol).length > 0;
      if (from === undefined || !exposed) {
        this.processedTo.set(symbol, t);
        continue;
      }
      if (t <= from) continue;
      let cursor = from;
      for (const candle of this.market.closedBetween(symbol, from, t)) {
        this.triggerStops(symbol, candle);
        const close = candle.time + BASE_MS;
        for (const f of this.market.fundingBetween(symbol, cursor, close)) this.settleFunding(symbol, f.time, f.rate);
        cursor = close;
      }
      this.processedTo.set(symbol, t);
    }
  }

  private openAlgo(symbol: string): AlgoOrder[] {
    return this.algoOrders.filter((a) => a.symbol === symbol && a.algoStatus === 'NEW');
  }

  private triggerStops(symbol: string, candle: Candle): void {
    const stops = this.openAlgo(symbol)
      .filter((a) => (a.side === 'SELL' ? candle.low <= a.triggerPrice : candle.high >= a.triggerPrice))
      .sort((a, b) => Math.abs(candle.open - a.triggerPrice) - Math.abs(candle.open - b.triggerPrice));
    for (const stop of stops) {
      const at = Math.max(stop.createTime, crossingTime(candle, stop.triggerPrice));
      const position = this.position(symbol);
      stop.updateTime = at;
      stop.triggerTime = at;
      const closes = position !== undefined && position.amount > 0 === (stop.side === 'SELL');
      if (!closes && stop.reduceOnly) {
        stop.algoStatus = 'EXPIRED'; // reduce-only with nothing to reduce
        continue;
      }
      const gapped = stop.side === 'SELL' ? candle.open < stop.triggerPrice : candle.open > stop.triggerPrice;
      const reference = gapped ? candle.open : stop.triggerPrice;
      const quantity = stop.reduceOnly ? Math.min(stop.quantity, Math.abs(position!.amount)) : stop.quantity;
      const order = this.newOrder(symbol, `algo-${stop.algoId}`, stop.side, quantity, stop.reduceOnly, at, stop.algoId);
      this.fill(order, reference, {}, at);
      stop.algoStatus = 'FINISHED';
      stop.actualOrderId = order.orderId;
      stop.actualPrice = order.avgPrice;
    }
  }

  private settleFunding(symbol: string, time: number, rate: number): void {
    const position = this.position(symbol);
    if (!position) return;
    const mark = this.market.markAt(symbol, time);
    const income = money(-position.amount * mark * rate);
    if (income === 0) return;
    this.wallet = money(this.wallet + income);
    this.income.push({ tranId: this.id(), symbol, incomeType: 'FUNDING_FEE', income, time, tradeId: '' });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Orders
  // ------------------------------------------------------------------------------------------------------------

  private newOrder(
    symbol: string,
    clientOrderId: string,
    side: OrderSide,
    quantity: number,
    reduceOnly: boolean,
    time: number,
    algoId: number | null,
  ): Order {
    const order: Order = {
      orderId: this.id(),
      symbol,
      clientOrderId,
      side,
      origQty: quantity,
      executedQty: 0,
      cumQuote: 0,
      avgPrice: 0,
      status: 'NEW',
      reduceOnly,
      time,
      updateTime: time,
      algoId,
    };
    this.orders.push(order);
    return order;
  }

  availableBalance(): number {
    let margins = 0;
    for (const p of this.positions.values()) if (p.amount !== 0) margins += p.margin;
    return money(this.wallet - margins);
  }

  private clientIdTaken(symbol: string, clientOrderId: string): boolean {
    const open = this.config.clientOrderIdScope === 'open';
    return (
      this.orders.some(
        (o) => o.symbol === symbol && o.clientOrderId === clientOrderId && (!open || o.status === 'NEW'),
      ) ||
      this.algoOrders.some(
        (a) => a.symbol === symbol && a.clientAlgoId === clientOrderId && (!open || a.algoStatus === 'NEW'),
      )
    );
  }

  /** POST /fapi/v1/order, MARKET only. */
  placeMarketOrder(p: Record<string, string>, t: number, shape: FillShape = {}): Order {
    const rules = this.rulesOf(p.symbol);
    const symbol = rules.symbol;
    if (p.type !== 'MARKET') {
      throw new ApiError(
        400,
        -1116,
        `Invalid orderType: the local exchange accepts MARKET orders only, got ${p.type}.`,
      );
    }
    if (p.positionSide !== undefined && p.positionSide !== 'BOTH') {
      throw new ApiError(400, -4061, "Order's position side does not match user's setting.");
    }
    const side = sideOf(p.side);
    const clientOrderId = p.newClientOrderId ?? `local-${this.nextId}`;
    if (!CLIENT_ID_RE.test(clientOrderId)) {
      throw new ApiError(400, -4015, 'Client order id is not valid.');
    }
    if (this.clientIdTaken(symbol, clientOrderId)) throw new ApiError(400, -4116, 'ClientOrderId is duplicated.');
    const quantityText = p.quantity ?? '';
    if (!isMultiple(quantityText, rules.stepSize)) {
      throw new ApiError(400, -1111, 'Precision is over the maximum defined for this asset.');
    }
    const quantity = Number(quantityText);
    if (quantity < rules.minQty) throw new ApiError(400, -4003, 'Quantity less than or equal to zero.');
    if (quantity > rules.maxQty) throw new ApiError(400, -4005, 'Quantity greater than max quantity.');
    const reduceOnly = p.reduceOnly === 'true';
    const price = this.market.lastPrice(symbol, t);
    const position = this.position(symbol);
    const signed = side === 'BUY' ? quantity : -quantity;
    if (reduceOnly && (!position || Math.sign(position.amount) === Math.sign(signed))) {
      throw new ApiError(400, -2022, 'ReduceOnly Order is rejected.');
    }
    const adds = !position || Math.sign(position.amount) === Math.sign(signed);
    if (!reduceOnly && adds) {
      if (quantity * price < rules.minNotional) {
        throw new ApiError(
          400,
          -4164,
          `Order's notional must be no smaller than ${rules.minNotional} (unless you choose reduce only).`,
        );
      }
      const needed = (quantity * price) / this.leverageOf(symbol) + quantity * price * this.config.takerFee;
      if (needed > this.availableBalance()) throw new ApiError(400, -2019, 'Margin is insufficient.');
    }
    if (!reduceOnly && !adds && quantity > Math.abs(position!.amount)) {
      throw new ApiError(400, -1014, 'Unsupported order combination (the local exchange does not flip positions).');
    }
    // a reduce-only order larger than the position is cut to it (Binance does the same)
    const effective = reduceOnly ? Math.min(quantity, Math.abs(position!.amount)) : quantity;
    const order = this.newOrder(symbol, clientOrderId, side, quantity, reduceOnly, t, null);
    this.fill(order, price, shape, t, effective);
    return order;
  }

  /**
   * Fills `order` at `reference` ± slippage: `quantity` (default the order's) × `fillFraction`, in `split` trades.
   * A partly filled market order expires.
   */
  private fill(order: Order, reference: number, shape: FillShape, t: number, quantity = order.origQty): void {
    const rules = this.rulesOf(order.symbol);
    const filled = roundToStep(quantity * (shape.fillFraction ?? 1), rules.stepSize, 'down');
    const parts = Math.max(1, Math.min(shape.split ?? 1, Math.round(filled / Number(rules.stepSize))));
    const adverse = order.side === 'BUY' ? 1 : -1;
    const base = roundToStep(reference * (1 + adverse * this.config.slippage), rules.tickSize, 'nearest');
    let left = filled;
    for (let i = 0; i < parts && left > 0; i++) {
      const qty = i === parts - 1 ? left : roundToStep(filled / parts, rules.stepSize, 'down');
      const price = Number((base + adverse * i * Number(rules.tickSize)).toFixed(decimals(rules.tickSize)));
      this.trade(order, price, qty, t);
      left = Number((left - qty).toFixed(decimals(rules.stepSize)));
    }
    order.status = filled >= order.origQty || (quantity < order.origQty && filled >= quantity) ? 'FILLED' : 'EXPIRED';
    order.updateTime = t;
  }

  private trade(order: Order, price: number, qty: number, t: number): void {
    const symbol = order.symbol;
    const position = this.positions.get(symbol) ?? { amount: 0, entryPrice: 0, margin: 0 };
    const signed = order.side === 'BUY' ? qty : -qty;
    const commission = money(qty * price * this.config.takerFee);
    let realizedPnl = 0;
    if (position.amount === 0 || Math.sign(position.amount) === Math.sign(signed)) {
      const total = Math.abs(position.amount) + qty;
      position.entryPrice = (position.entryPrice * Math.abs(position.amount) + price * qty) / total;
      position.amount = Number((position.amount + signed).toFixed(8));
      position.margin = money(position.margin + (qty * price) / this.leverageOf(symbol));
    } else {
      const closed = Math.min(qty, Math.abs(position.amount));
      realizedPnl = money((price - position.entryPrice) * closed * Math.sign(position.amount));
      position.margin = money(position.margin * (1 - closed / Math.abs(position.amount)));
      position.amount = Number((position.amount + signed).toFixed(8));
      if (position.amount === 0) {
        position.entryPrice = 0;
        position.margin = 0;
      }
    }
    this.positions.set(symbol, position);
    this.wallet = money(this.wallet + realizedPnl - commission);
    const id = this.id();
    this.trades.push({
      id,
      orderId: order.orderId,
      symbol,
      side: order.side,
      price,
      qty,
      quoteQty: money(price * qty),
      commission,
      realizedPnl,
      time: t,
    });
    if (realizedPnl !== 0) {
      this.income.push({
        tranId: this.id(),
        symbol,
        incomeType: 'REALIZED_PNL',
        income: realizedPnl,
        time: t,
        tradeId: String(id),
      });
    }
    this.income.push({
      tranId: this.id(),
      symbol,
      incomeType: 'COMMISSION',
      income: -commission,
      time: t,
      tradeId: String(id),
    });
    const executed = order.executedQty + qty;
    order.avgPrice = (order.avgPrice * order.executedQty + price * qty) / executed;
    order.executedQty = Number(executed.toFixed(8));
    order.cumQuote = money(order.cumQuote + price * qty);
  }

  /** POST /fapi/v1/algoOrder: a CONDITIONAL STOP_MARKET order. */
  placeAlgoOrder(p: Record<string, string>, t: number): AlgoOrder {
    const rules = this.rulesOf(p.symbol);
    if (p.algoType !== 'CONDITIONAL') throw new ApiError(400, -1102, 'Mandatory parameter algoType was not sent.');
    if (p.type !== 'STOP_MARKET') {
      throw new ApiError(
        400,
        -1116,
        `Invalid orderType: the local exchange accepts STOP_MARKET algo orders only, got ${p.type}.`,
      );
    }
    const clientAlgoId = p.clientAlgoId ?? `local-${this.nextId}`;
    if (!CLIENT_ID_RE.test(clientAlgoId)) throw new ApiError(400, -4015, 'Client order id is not valid.');
    if (this.clientIdTaken(rules.symbol, clientAlgoId)) throw new ApiError(400, -4116, 'ClientOrderId is duplicated.');
    if (!isMultiple(p.triggerPrice ?? '', rules.tickSize)) {
      throw new ApiError(400, -1111, 'Precision is over the maximum defined for this asset.');
    }
    if (!isMultiple(p.quantity ?? '', rules.stepSize)) {
      throw new ApiError(400, -1111, 'Precision is over the maximum defined for this asset.');
    }
    const side = sideOf(p.side);
    const triggerPrice = Number(p.triggerPrice);
    const last = this.market.lastPrice(rules.symbol, t);
    if (side === 'SELL' ? triggerPrice >= last : triggerPrice <= last) {
      throw new ApiError(400, -2021, 'Order would immediately trigger.');
    }
    const algo: AlgoOrder = {
      algoId: this.id(),
      clientAlgoId,
      symbol: rules.symbol,
      side,
      orderType: 'STOP_MARKET',
      quantity: Number(p.quantity),
      triggerPrice,
      reduceOnly: p.reduceOnly === 'true',
      algoStatus: 'NEW',
      createTime: t,
      updateTime: t,
      triggerTime: 0,
      actualOrderId: null,
      actualPrice: null,
    };
    this.algoOrders.push(algo);
    return algo;
  }

  /** The latest order of `symbol` with this client id (or exchange id). */
  findOrder(symbol: string, by: { clientOrderId?: string; orderId?: string }): Order | undefined {
    for (let i = this.orders.length - 1; i >= 0; i--) {
      const o = this.orders[i]!;
      if (o.symbol !== symbol) continue;
      if (by.orderId !== undefined ? String(o.orderId) === by.orderId : o.clientOrderId === by.clientOrderId) return o;
    }
    return undefined;
  }

  findAlgo(symbol: string, by: { clientAlgoId?: string; algoId?: string }): AlgoOrder | undefined {
    for (let i = this.algoOrders.length - 1; i >= 0; i--) {
      const a = this.algoOrders[i]!;
      if (a.symbol !== symbol) continue;
      if (by.algoId !== undefined ? String(a.algoId) === by.algoId : a.clientAlgoId === by.clientAlgoId) return a;
    }
    return undefined;
  }

  cancelAlgo(a: AlgoOrder, t: number): void {
    if (a.algoStatus !== 'NEW') throw new ApiError(400, -2011, 'Unknown order sent.');
    a.algoStatus = 'CANCELED';
    a.updateTime = t;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Settings
  // ------------------------------------------------------------------------------------------------------------

  setLeverage(symbol: string, leverage: number): void {
    if (!Number.isInteger(leverage) || leverage < 1 || leverage > 125) {
      throw new ApiError(400, -4028, `Leverage ${leverage} is not valid`);
    }
    const position = this.position(symbol);
    if (position && leverage < this.leverageOf(symbol)) {
      throw new ApiError(
        400,
        -4161,
        'Leverage reduction is not supported in Isolated Margin Mode with open positions.',
      );
    }
    this.leverage.set(symbol, leverage);
  }

  setMarginType(symbol: string, marginType: 'ISOLATED' | 'CROSSED'): void {
    if ((this.marginType.get(symbol) ?? 'CROSSED') === marginType) {
      throw new ApiError(400, -4046, 'No need to change margin type.');
    }
    if (this.position(symbol) || this.orders.some((o) => o.symbol === symbol && o.status === 'NEW')) {
      throw new ApiError(400, -4048, 'Margin type cannot be changed if there exists position.');
    }
    this.marginType.set(symbol, marginType);
  }

  // ------------------------------------------------------------------------------------------------------------
  // The books, for tests
  // ------------------------------------------------------------------------------------------------------------

  /** Sum of the income rows of `type` (optionally of one symbol) with `from <= time <= to`. */
  incomeTotal(type: IncomeType, filter: { symbol?: string; from?: number; to?: number } = {}): number {
    let sum = 0;
    for (const row of this.income) {
      if (row.incomeType !== type) continue;
      if (filter.symbol !== undefined && row.symbol !== filter.symbol) continue;
      if (row.time < (filter.from ?? -Infinity) || row.time > (filter.to ?? Infinity)) continue;
      sum += row.income;
    }
    return money(sum);
  }

  /** Orders placed with `clientOrderId` (any symbol): more than one is a duplicate. */
  ordersWithClientId(clientOrderId: string): Order[] {
    return this.orders.filter((o) => o.clientOrderId === clientOrderId);
  }

  tradesOf(orderId: number): Trade[] {
    return this.trades.filter((t) => t.orderId === orderId);
  }
}

function sideOf(side: string | undefined): OrderSide {
  if (side === 'BUY' || side === 'SELL') return side;
  throw new ApiError(400, -1117, 'Invalid side.');
}

/**
 * When the price path of `candle` first reaches `price`: open → the nearer extreme → the farther extreme → close,
 * at constant speed along the path. A candle that opens beyond the price crosses it at its open.
 */
export function crossingTime(candle: Candle, price: number): number {
  const { open, high, low, close } = candle;
  const path = open - low <= high - open ? [open, low, high, close] : [open, high, low, close];
  let length = 0;
  for (let i = 1; i < path.length; i++) length += Math.abs(path[i]! - path[i - 1]!);
  if (length === 0) return candle.time;
  let travelled = 0;
  for (let i = 1; i < path.length; i++) {
    const a = path[i - 1]!;
    const b = path[i]!;
    if ((a - price) * (b - price) <= 0) {
      travelled += Math.abs(price - a);
      break;
    }
    travelled += Math.abs(b - a);
  }
  return candle.time + Math.min(BASE_MS - 1, Math.floor((travelled / length) * BASE_MS));
}
