/**
 * The paper exchange (modes `paper` and `replay`): the {@link Exchange} port over a simulated account.
 *
 * - Account: a {@link PaperLedger} (one USDT account for all pairs, isolated margin, one-way mode; fees, slippage,
 *   funding, stops and liquidation as documented in paper-ledger.ts) persisted in SQLite by {@link PaperAccountStore}:
 *   every order, fill, funding settlement and liquidation is committed in one transaction with the account and
 *   position rows it changes, and reopening the file continues exactly where it was.
 * - Market data: a {@link PaperMarketData} source — recorded candles in replay ({@link RecordedMarketSource}), the real
 *   exchange's public data in paper mode ({@link LiveMarketSource}).
 * - Time: `clock()` gives the market time (Unix ms): the wall clock in paper mode, the simulated clock in replay.
 *   Orders are stamped with it.
 *
 * Between cycles the account is brought up to date lazily: before an order, a cancellation, a stop lookup, or a
 * balance/position read, every affected pair is advanced over the `triggerTimeframe` candles that closed since it was
 * last processed (funding, liquidations, stops). {@link syncTo} / {@link advancePair} do it explicitly and return the
 * closes the exchange made; {@link externalCloses} reads them back later from the account.
 *
 * A market order fills at once at its `referencePrice` (the decision price) moved against it by `paper.slippage`.
 * Market rules come from `markets` when given (e.g. the real exchange's, in paper mode), else from the config:
 * any quantity (qtyStep 0), `paper.min_notional`, leverage up to 125.
 *
 * Every failure is an {@link ExchangeError}: the ledger's rejections keep their type (insufficient funds, invalid
 * order, duplicate client order id); a market-data failure that is not already classified (e.g. a replay past the
 * end of the recorded data) is `ExchangeRejected`; a database failure is the retryable `ExchangeOperationFailed`
 * (the account is reloaded from the file, so a retry starts from what is committed).
 */
import Database from 'better-sqlite3';
import { PAIR_RE, type PaperConfig } from '../core/config';
import { floorToStep } from '../core/position';
import { candleOpenTime, lastClosedCandleOpen, timeframeMs } from '../core/timeframe';
import type { Candle, ExchangePosition, ExternalClose, Fill, FundingInfo } from '../core/types';
import type { FundingEvent } from '../core/snapshot';
import { ExchangeError } from './errors';
import type { MarketSource } from './market-source';
import { LedgerRejection, type LedgerOrder, type LedgerState, type PaperLedger } from './paper-ledger';
import { PaperAccountStore } from './paper-store';
import {
  clientOrderIdProblem,
  type Balance,
  type Exchange,
  type FundingPayment,
  type FundingRecord,
  type MarketInfo,
  type OrderRequest,
  type OrderResult,
  type StopOrderRequest,
} from './port';

/** The market data the paper exchange needs: the shape of {@link MarketSource}. */
export type PaperMarketData = Pick<MarketSource, 'candles' | 'fundingBetween' | 'funding'>;

export interface PaperExchangeOptions {
  /** the SQLite file of the account; created with `config.starting_balance` when missing */
  file: string;
  config: PaperConfig;
  source: PaperMarketData;
  /** market time, Unix ms */
  clock: () => number;
  /** timeframe whose candle highs/lows trigger stops and liquidations, e.g. the main timeframe `30m` */
  triggerTimeframe: string;
  /** trading rules per pair (e.g. the real exchange's `market`); default: rules from the config */
  markets?: Pick<Exchange, 'market'>;
  /** SQLite `synchronous`; default FULL (see paper-store.ts) */
  synchronous?: 'FULL' | 'NORMAL';
}

/** Largest leverage the paper exchange accepts when `markets` does not say. */
export const PAPER_MAX_LEVERAGE = 125;

const SETTLE_CURRENCY = 'USDT';

export class PaperExchange implements Exchange {
  readonly id = 'paper';
  private readonly store: PaperAccountStore;
  private readonly source: PaperMarketData;
  private readonly clock: () => number;
  private readonly config: PaperConfig;
  private readonly markets: Pick<Exchange, 'market'> | null;
  private readonly triggerTimeframe: string;
  private readonly triggerMs: number;

  /**
   * Opens (or creates) the account in `options.file`.
   * @throws Error when the file cannot be opened, holds an account created with other fee / slippage / maintenance
   *   figures, or `triggerTimeframe` is not a timeframe.
   */
  constructor(options: PaperExchangeOptions) {
    this.triggerMs = timeframeMs(options.triggerTimeframe);
    this.triggerTimeframe = options.triggerTimeframe;
    this.config = options.config;
    this.source = options.source;
    this.clock = options.clock;
    this.markets = options.markets ?? null;
    this.store = new PaperAccountStore(
      options.file,
      options.config,
      options.synchronous ? { synchronous: options.synchronous } : {},
    );
  }

  /** Absolute path of the account database. */
  get file(): string {
    return this.store.file;
  }

  /** The account's ledger, for reading figures (fills, funding, totals). Do not call its mutating methods. */
  get ledger(): PaperLedger {
    return this.store.ledger;
  }

  /** A deep copy of the whole account state (see {@link LedgerState}). */
  ledgerState(): LedgerState {
    return this.store.ledger.state();
  }

  /** Closes the database; the exchange cannot be used afterwards. */
  close(): void {
    this.store.close();
  }

  // ------------------------------------------------------------------------------------------------------------
  // Between cycles
  // ------------------------------------------------------------------------------------------------------------

  /**
   * Advances every pair with an open position or open stops to `asOf` (default: the clock) and returns the closes
   * the exchange made on the way (stops, liquidations), oldest first per pair.
   */
  async syncTo(asOf: number = this.now()): Promise<ExternalClose[]> {
    const closes: ExternalClose[] = [];
    for (const pair of this.store.ledger.exposedPairs()) closes.push(...(await this.advancePair(pair, asOf)));
    return closes;
  }

  /**
   * Processes the `triggerTimeframe` candles of `pair` that closed after the pair's last processed candle and by
   * `asOf` (default: the clock): funding, liquidation, stops. A pair without a position or stops only fetches the
   * last closed candle (for its price). Returns the closes made, oldest first.
   */
  async advancePair(pair: string, asOf: number = this.now()): Promise<ExternalClose[]> {
    const operation = `advance ${pair} to ${iso(asOf)}`;
    const ms = this.triggerMs;
    const lastClose = lastClosedCandleOpen(asOf, this.triggerTimeframe) + ms;
    // another worker process sharing the account file may advance the pair while the candles are read: then read
    // again from where it left the pair
    for (let attempt = 1; ; attempt++) {
      const ledger = this.store.ledger;
      const synced = ledger.syncedTo(pair);
      if (synced !== null && lastClose <= synced) return [];
      const exposed = ledger.hasExposure(pair);
      const count = exposed && synced !== null ? Math.round((lastClose - synced) / ms) : 1;
      let candles: Candle[];
      let funding: FundingEvent[] = [];
      try {
        candles = await this.source.candles(pair, this.triggerTimeframe, asOf, count);
        const first = candles[0];
        const last = candles[candles.length - 1];
        if (exposed && first !== undefined && last !== undefined) {
          funding = await this.source.fundingBetween(pair, synced ?? first.time, last.time + ms);
        }
      } catch (err) {
        throw sourceError(err, operation);
      }
      if (candles.length === 0) return [];
      const closes = this.mutate(operation, (l) =>
        l.syncedTo(pair) === synced && l.hasExposure(pair) === exposed
          ? [...l.advance(pair, candles, funding, ms)]
          : null,
      );
      if (closes !== null) return closes;
      if (attempt >= 5) {
        throw new Error(`paper account: ${operation}: the pair kept changing under another process; try again`);
      }
    }
  }

  /**
   * Closes the exchange made on `pair` (stop fills, liquidations) with `from < time <= to` (Unix ms), from the
   * account: what a cycle at `to` reports as happened since the cycle at `from`. Call {@link advancePair} first to
   * include the latest candles.
   */
  externalCloses(pair: string, from: number, to: number): ExternalClose[] {
    return this.store.ledger.externalCloses(pair, from, to);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Market data
  // ------------------------------------------------------------------------------------------------------------

  async fetchClosedCandles(pair: string, timeframe: string, since: number, asOf: number): Promise<Candle[]> {
    const operation = `fetchClosedCandles ${pair} ${timeframe}`;
    let ms: number;
    try {
      ms = timeframeMs(timeframe);
    } catch (err) {
      throw new ExchangeError('ExchangeBadRequest', `paper ${operation}: ${errorMessage(err)}`);
    }
    const lastOpen = lastClosedCandleOpen(asOf, timeframe);
    let firstOpen = candleOpenTime(since, timeframe);
    if (firstOpen < since) firstOpen += ms;
    if (lastOpen < firstOpen) return [];
    const count = Math.floor((lastOpen - firstOpen) / ms) + 1;
    try {
      const candles = await this.source.candles(pair, timeframe, asOf, count);
      return candles.filter((c) => c.time >= since);
    } catch (err) {
      throw sourceError(err, operation);
    }
  }

  /** The funding rate known at the clock's time (from the source). */
  async fetchFundingRate(pair: string): Promise<FundingInfo> {
    try {
      return await this.source.funding(pair, this.now());
    } catch (err) {
      throw sourceError(err, `fetchFundingRate ${pair}`);
    }
  }

  async fetchFundingRateHistory(pair: string, since: number): Promise<FundingRecord[]> {
    try {
      const events = await this.source.fundingBetween(pair, since - 1, this.now());
      return events.map((e) => ({ time: e.time, rate: e.rate }));
    } catch (err) {
      throw sourceError(err, `fetchFundingRateHistory ${pair}`);
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Account
  // ------------------------------------------------------------------------------------------------------------

  /** The account's funding charges on `pair` at or after `since` (after advancing the pair to the clock). */
  async fetchFundingPayments(pair: string, since: number): Promise<FundingPayment[]> {
    await this.advancePair(pair);
    return this.store.ledger
      .fundingCharges()
      .filter((f) => f.pair === pair && f.time >= since)
      .map((f) => ({ time: f.time, amount: f.amount }));
  }

  /**
   * Account totals after advancing every exposed pair to the clock: equity = cash + margin + unrealised PnL at each
   * pair's last candle close; available = cash; usedMargin = Σ isolated margin.
   */
  async fetchBalance(): Promise<Balance> {
    await this.syncTo();
    const ledger = this.store.ledger;
    const { cash, usedMargin } = ledger.balance();
    return { currency: SETTLE_CURRENCY, equity: ledger.equity(), available: cash, usedMargin };
  }

  /** Open positions after advancing every exposed pair to the clock, valued at each pair's last candle close. */
  async fetchPositions(): Promise<ExchangePosition[]> {
    await this.syncTo();
    return this.store.ledger.positions();
  }

  /**
   * The pair's trading rules: from `markets` when given, else qtyStep 0 (any quantity), minQty 0, minNotional
   * `paper.min_notional`, tickSize 0 (any price), maxLeverage 125.
   * @throws ExchangeError `ExchangeBadSymbol` for a pair that is not a ccxt perpetual symbol like BTC/USDT:USDT
   */
  async market(pair: string): Promise<MarketInfo> {
    if (this.markets) return this.markets.market(pair);
    if (!PAIR_RE.test(pair)) {
      throw new ExchangeError(
        'ExchangeBadSymbol',
        `paper market ${pair}: not a perpetual symbol; use BASE/QUOTE:SETTLE like BTC/USDT:USDT`,
      );
    }
    const [base = '', rest = ''] = pair.split('/');
    return {
      pair,
      exchangeSymbol: `${base}${rest.split(':')[0] ?? ''}`,
      active: true,
      qtyStep: 0,
      minQty: 0,
      maxQty: null,
      minNotional: this.config.min_notional,
      tickSize: 0,
      maxLeverage: PAPER_MAX_LEVERAGE,
      contractSize: 1,
    };
  }

  /**
   * Sets the leverage for the pair's next entries (an integer in 1..the market's maximum). Idempotent.
   * @throws ExchangeError `ExchangeBadRequest` for a leverage out of range, `ExchangeRejected` when a position is
   *   open on the pair at another leverage (the paper exchange does not re-margin open positions).
   */
  async setLeverage(pair: string, leverage: number): Promise<void> {
    const info = await this.market(pair);
    const max = info.maxLeverage ?? PAPER_MAX_LEVERAGE;
    if (!Number.isInteger(leverage) || leverage < 1 || leverage > max) {
      throw new ExchangeError(
        'ExchangeBadRequest',
        `paper setLeverage ${pair}: leverage must be an integer in 1..${max}, got ${leverage}`,
      );
    }
    const position = this.store.ledger.position(pair);
    if (position && position.leverage !== leverage) {
      throw new ExchangeError(
        'ExchangeRejected',
        `paper setLeverage ${pair}: a ${position.side} position is open at ${position.leverage}x; the paper exchange ` +
          `cannot change it to ${leverage}x while it is open: close it first or keep ${position.leverage}x`,
      );
    }
    try {
      this.store.setLeverage(pair, leverage);
    } catch (err) {
      throw storeError(err, `setLeverage ${pair}`);
    }
  }

  /** Paper positions are always isolated: only checks the pair. */
  async setIsolatedMargin(pair: string): Promise<void> {
    await this.market(pair);
  }

  async prepareEntry(pair: string, leverage: number): Promise<void> {
    await this.setIsolatedMargin(pair);
    await this.setLeverage(pair, leverage);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Orders
  // ------------------------------------------------------------------------------------------------------------

  /**
   * Places a market order at the clock's time, filled at once at `referencePrice` ± slippage. Idempotent by client
   * order id: a repeated request returns the stored order without filling again (and without touching market data).
   * Before a new order the pair is advanced to the clock, so stops and liquidations due earlier happen first.
   * @throws ExchangeError `ExchangeInvalidOrder` (id format, quantity below minQty after rounding, notional below
   *   minNotional, leverage not set for an entry, reduce-only without a position, ...), `ExchangeInsufficientFunds`,
   *   `ExchangeDuplicateOrderId` (the id belongs to a different request)
   */
  async createOrder(req: OrderRequest): Promise<OrderResult> {
    const operation = `createOrder ${req.pair} ${req.side} ${req.clientOrderId}`;
    checkClientOrderId(req.clientOrderId, operation);
    if (!(req.referencePrice > 0) || !Number.isFinite(req.referencePrice)) {
      throw new ExchangeError(
        'ExchangeInvalidOrder',
        `paper ${operation}: referencePrice must be a price > 0, got ${req.referencePrice}`,
      );
    }
    const market = await this.market(req.pair);
    const quantity = this.roundQuantity(market, req.quantity, operation);
    const request = { ...req, quantity };
    // a repeat returns the stored order (or a duplicate-id rejection) without touching market data
    if (this.store.ledger.order(req.clientOrderId) !== null) return this.placeMarket(request, operation, this.now());
    const notional = quantity * req.referencePrice;
    if (!req.reduceOnly && market.minNotional !== null && notional < market.minNotional) {
      throw new ExchangeError(
        'ExchangeInvalidOrder',
        `paper ${operation}: notional ${quantity} x ${req.referencePrice} = ${notional} USDT is below the minimum ` +
          `${market.minNotional} USDT of ${req.pair}; increase the size`,
      );
    }
    const time = this.now();
    await this.advancePair(req.pair, time);
    const position = this.store.ledger.position(req.pair);
    const adds = position === null || (req.side === 'buy') === (position.side === 'long');
    const leverage = position?.leverage ?? this.store.leverage(req.pair);
    if (adds && !req.reduceOnly && leverage === null) {
      throw new ExchangeError(
        'ExchangeInvalidOrder',
        `paper ${operation}: no leverage is set for ${req.pair}; call prepareEntry(pair, leverage) before an entry`,
      );
    }
    return this.placeMarket(request, operation, time, leverage ?? 1);
  }

  /**
   * Places a reduce-only stop-market order protecting the pair's open position; it triggers when a later
   * `triggerTimeframe` candle's low (long) or high (short) reaches `stopPrice`. Idempotent by client order id.
   * Never returns null: the paper exchange has stop orders.
   * @throws ExchangeError `ExchangeInvalidOrder` (no position, wrong side, stop already crossed at the last price,
   *   id format, quantity), `ExchangeDuplicateOrderId`
   */
  async placeStopOrder(req: StopOrderRequest): Promise<OrderResult> {
    const operation = `placeStopOrder ${req.pair} ${req.side} ${req.clientOrderId}`;
    checkClientOrderId(req.clientOrderId, operation);
    if (!(req.stopPrice > 0) || !Number.isFinite(req.stopPrice)) {
      throw new ExchangeError(
        'ExchangeInvalidOrder',
        `paper ${operation}: stopPrice must be a price > 0, got ${req.stopPrice}`,
      );
    }
    const market = await this.market(req.pair);
    const quantity = this.roundQuantity(market, req.quantity, operation);
    const stopPrice = roundToTick(req.stopPrice, market.tickSize);
    const time = this.now();
    if (this.store.ledger.order(req.clientOrderId) === null) await this.advancePair(req.pair, time);
    const order = this.mutate(operation, (l) =>
      l.placeStopOrder({ pair: req.pair, side: req.side, quantity, stopPrice, clientOrderId: req.clientOrderId, time }),
    );
    return toOrderResult(order);
  }

  /** The order with this id on `pair`, or null. An open stop's pair is advanced first, so a trigger shows. */
  async fetchOrderByClientId(pair: string, clientOrderId: string): Promise<OrderResult | null> {
    const order = this.store.ledger.order(clientOrderId);
    if (order === null || order.pair !== pair) return null;
    if (order.status !== 'open') return toOrderResult(order);
    await this.advancePair(pair);
    return toOrderResult(this.store.ledger.order(clientOrderId)!);
  }

  /**
   * Cancels an open stop order (after advancing its pair, so a stop that has already triggered is reported filled,
   * not cancelled). A final order is returned as it is; null when `pair` has no order with this id.
   */
  async cancelOrder(pair: string, clientOrderId: string): Promise<OrderResult | null> {
    const order = this.store.ledger.order(clientOrderId);
    if (order === null || order.pair !== pair) return null;
    if (order.status !== 'open') return toOrderResult(order);
    const time = this.now();
    await this.advancePair(pair, time);
    const after = this.mutate(`cancelOrder ${pair} ${clientOrderId}`, (l) => l.cancelOrder(clientOrderId, time));
    return after === null ? null : toOrderResult(after);
  }

  // ------------------------------------------------------------------------------------------------------------

  private placeMarket(req: OrderRequest, operation: string, time: number, leverage = 1): OrderResult {
    const order = this.mutate(operation, (l) =>
      l.placeMarketOrder({
        pair: req.pair,
        side: req.side,
        quantity: req.quantity,
        reduceOnly: req.reduceOnly,
        clientOrderId: req.clientOrderId,
        referencePrice: req.referencePrice,
        leverage,
        time,
      }),
    );
    return toOrderResult(order);
  }

  private roundQuantity(market: MarketInfo, requested: number, operation: string): number {
    if (!(requested > 0) || !Number.isFinite(requested)) {
      throw new ExchangeError('ExchangeInvalidOrder', `paper ${operation}: quantity must be > 0, got ${requested}`);
    }
    const quantity = floorToStep(requested, market.qtyStep);
    if (!(quantity > 0) || quantity < market.minQty) {
      throw new ExchangeError(
        'ExchangeInvalidOrder',
        `paper ${operation}: quantity ${requested} rounds down to ${quantity}, below the minimum ${market.minQty} ` +
          `(step ${market.qtyStep}) of ${market.pair}; increase the size`,
      );
    }
    if (market.maxQty !== null && quantity > market.maxQty) {
      throw new ExchangeError(
        'ExchangeInvalidOrder',
        `paper ${operation}: quantity ${quantity} is above the maximum ${market.maxQty} of ${market.pair}; split the order`,
      );
    }
    return quantity;
  }

  private mutate<T>(operation: string, fn: (ledger: PaperLedger) => T): T {
    try {
      return this.store.mutate(fn);
    } catch (err) {
      throw storeError(err, operation);
    }
  }

  private now(): number {
    return Math.floor(this.clock());
  }
}

/** The port's view of a ledger order. */
export function toOrderResult(order: LedgerOrder): OrderResult {
  return {
    clientOrderId: order.clientOrderId,
    exchangeOrderId: order.exchangeOrderId,
    pair: order.pair,
    side: order.side,
    status: order.status,
    reduceOnly: order.reduceOnly,
    quantity: order.quantity,
    filledQuantity: order.filledQuantity,
    averagePrice: order.averagePrice,
    fee: order.fee,
    fills: order.fills.map((f): Fill => ({
      clientOrderId: f.clientOrderId,
      pair: f.pair,
      side: f.side,
      price: f.price,
      quantity: f.quantity,
      fee: f.fee,
      time: f.time,
      reduceOnly: f.reduceOnly,
    })),
    stopPrice: order.stopPrice,
    time: order.time,
  };
}

function checkClientOrderId(clientOrderId: string, operation: string): void {
  const problem = clientOrderIdProblem(clientOrderId);
  if (problem !== null) throw new ExchangeError('ExchangeInvalidOrder', `paper ${operation}: ${problem}`);
}

/** `price` rounded to the nearest multiple of `tick` (unchanged when tick <= 0), written without float noise. */
function roundToTick(price: number, tick: number): number {
  if (!(tick > 0)) return price;
  const decimals = Math.max(0, Math.min(20, Math.ceil(-Math.log10(tick) + 1e-9)));
  return Number((Math.round(price / tick) * tick).toFixed(decimals));
}

/** A ledger rejection keeps its type; a database failure is retryable; anything else is a rejected request. */
function storeError(err: unknown, operation: string): ExchangeError {
  if (err instanceof ExchangeError) return err;
  if (err instanceof LedgerRejection) return new ExchangeError(err.type, `paper ${operation}: ${err.message}`);
  if (err instanceof Database.SqliteError) {
    return new ExchangeError(
      'ExchangeOperationFailed',
      `paper ${operation}: the paper account database failed (${err.code}: ${err.message}); nothing was committed`,
    );
  }
  return new ExchangeError('ExchangeRejected', `paper ${operation}: ${errorMessage(err)}`);
}

/** Market-data failures: classified ones pass through, others (recorded data missing) are rejections. */
function sourceError(err: unknown, operation: string): ExchangeError {
  if (err instanceof ExchangeError) return err;
  return new ExchangeError('ExchangeRejected', `paper ${operation}: market data unavailable: ${errorMessage(err)}`);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function iso(t: number): string {
  return Number.isFinite(t) && Math.abs(t) <= 8.64e15 ? new Date(t).toISOString() : String(t);
}
