/**
 * The `Exchange` port: everything the trader asks of an exchange, independent of which one.
 *
 * Two implementations: the ccxt adapter (`CcxtExchange`, live and paper market data) and the paper exchange
 * (simulated orders). Activities depend on this interface only.
 *
 * Conventions (the same as src/core/types.ts)
 * - Pairs are ccxt unified perpetual symbols: `BTC/USDT:USDT`.
 * - Times are Unix milliseconds, UTC. A candle's `time` is its OPEN time; it is closed at `asOf` when
 *   `time + timeframe length <= asOf`.
 * - Quantities are in BASE units (BTC for BTC/USDT:USDT), whatever the exchange's contract size; prices in quote
 *   units (USDT) per base unit; money (fees, margin, equity, PnL) in the settlement currency (USDT).
 * - Every order carries a caller-chosen client order id. Creating, looking up and cancelling are idempotent by that
 *   id, so a retried activity never places a second order.
 * - Failures are thrown as `ExchangeError` (src/exchange/errors.ts) with a stable `type` and a `retryable` flag;
 *   "not found" answers of lookups are `null`, not errors.
 */
import type { Candle, ExchangePosition, Fill, FundingInfo } from '../core/types';

export type OrderSide = 'buy' | 'sell';

/**
 * Client order ids: 1 to 36 characters from `A-Z a-z 0-9 . _ : / -`. This is Binance's rule
 * (`^[.A-Z:/a-z0-9_-]{1,36}$`) and the strictest among the large derivatives exchanges, so an id that passes here
 * is accepted everywhere.
 */
export const CLIENT_ORDER_ID_RE = /^[A-Za-z0-9._:/-]{1,36}$/;

/**
 * Why `clientOrderId` is not usable, or null when it is. Implementations reject such an order before sending it.
 */
export function clientOrderIdProblem(clientOrderId: string): string | null {
  if (CLIENT_ORDER_ID_RE.test(clientOrderId)) return null;
  return (
    `client order id "${clientOrderId}" is invalid: use 1 to 36 characters from A-Z a-z 0-9 . _ : / - ` +
    `(it has ${clientOrderId.length} characters)`
  );
}

/** A market order. */
export interface OrderRequest {
  pair: string;
  side: OrderSide;
  /** base units, > 0; rounded DOWN to the market's `qtyStep` before sending */
  quantity: number;
  /** true: may only reduce the open position (exits and partial reductions) */
  reduceOnly: boolean;
  /** see {@link CLIENT_ORDER_ID_RE}; unique per order */
  clientOrderId: string;
  /**
   * The price the order was sized at (USDT per base unit), e.g. the decision close. Used to check the market's
   * minimum notional before sending; the order itself is a market order and fills at the market.
   */
  referencePrice: number;
  /**
   * true when an earlier attempt of this same request may have reached the exchange (a retried activity): when the
   * look-up by client order id finds nothing, it is repeated after short pauses before the order is sent, because an
   * exchange may not show an order it accepted a moment ago (and Binance accepts a filled order's id again)
   */
  mayExist?: boolean;
}

/** A reduce-only stop-market order that closes (part of) a position when the price crosses `stopPrice`. */
export interface StopOrderRequest {
  pair: string;
  /** `sell` protects a long (triggers when the price falls to `stopPrice`), `buy` protects a short */
  side: OrderSide;
  /** base units, > 0; rounded down to `qtyStep` */
  quantity: number;
  /** trigger price, USDT; rounded to the market's `tickSize` */
  stopPrice: number;
  clientOrderId: string;
  /** as {@link OrderRequest.mayExist} */
  mayExist?: boolean;
}

/** One funding payment of the account on a pair. */
export interface FundingPayment {
  /** when the exchange booked it, Unix ms */
  time: number;
  /** USDT: positive = paid by the account, negative = received (the sign of `PositionState.funding`) */
  amount: number;
}

/**
 * - `open`: accepted, not (fully) filled yet; for a stop order: waiting for its trigger.
 * - `filled`: fully executed; for a stop order: triggered.
 * - `canceled`: cancelled or expired; `filledQuantity` may be > 0 (partial fill before cancellation).
 * - `rejected`: refused by the exchange after submission.
 */
export type OrderStatus = 'open' | 'filled' | 'canceled' | 'rejected';

export interface OrderResult {
  clientOrderId: string;
  /** the exchange's own id */
  exchangeOrderId: string;
  pair: string;
  side: OrderSide;
  status: OrderStatus;
  reduceOnly: boolean;
  /** quantity ordered, base units (after rounding) */
  quantity: number;
  /** quantity executed so far, base units */
  filledQuantity: number;
  /** volume-weighted fill price, USDT; null while nothing is filled */
  averagePrice: number | null;
  /** sum of the fills' fees in the settlement currency (USDT) */
  fee: number;
  /** individual executions, oldest first; empty while nothing is filled */
  fills: Fill[];
  /** trigger price of a stop order; null for market orders */
  stopPrice: number | null;
  /** when the exchange accepted the order, Unix ms; null if it does not say */
  time: number | null;
}

/** Trading rules of one market, in base units and USDT. */
export interface MarketInfo {
  pair: string;
  /** the exchange's own id of the market, e.g. `BTCUSDT` */
  exchangeSymbol: string;
  /** false when the market is not trading (delisted, settling) */
  active: boolean;
  /** quantity increment, base units */
  qtyStep: number;
  /** smallest market-order quantity, base units */
  minQty: number;
  /** largest market-order quantity, base units; null when the exchange does not say */
  maxQty: number | null;
  /** smallest order value (quantity x price) for orders that are not reduce-only, USDT; null when not given */
  minNotional: number | null;
  /** price increment, USDT */
  tickSize: number;
  /** highest leverage the market allows; null when the exchange's market data does not say (Binance: it does not) */
  maxLeverage: number | null;
  /** base units per contract (1 on Binance USDT-M); quantities in this port are always base units */
  contractSize: number;
}

/** Account totals in the settlement currency (USDT). */
export interface Balance {
  /** settlement currency, e.g. `USDT` */
  currency: string;
  /** wallet balance + unrealised PnL */
  equity: number;
  /** what can be committed as new margin */
  available: number;
  /** initial margin of open positions and open orders */
  usedMargin: number;
}

/** One past funding event. */
export interface FundingRecord {
  /** funding time, Unix ms */
  time: number;
  /** fraction of notional paid by longs to shorts (negative: shorts pay longs), e.g. 0.0001 = 0.01 % */
  rate: number;
}

export interface Exchange {
  /** exchange id, e.g. `binanceusdm` or `paper` */
  readonly id: string;

  /**
   * Candles of `pair` and `timeframe` whose open time is >= `since` and that have CLOSED at `asOf`
   * (open time + timeframe length <= `asOf`), oldest first, as the exchange has them (a gap in the exchange's data
   * stays a gap). The candle still forming at `asOf` is never returned. Pages through the exchange's per-request
   * limit, so a long range costs several requests: ask for what the caller needs.
   * @param timeframe `<n>m`, `<n>h`, `<n>d` or `<n>w`, e.g. `30m`
   */
  fetchClosedCandles(pair: string, timeframe: string, since: number, asOf: number): Promise<Candle[]>;

  /**
   * The current funding rate of `pair` (`rate`, fraction per funding interval) and the time of the funding event it
   * applies to (`time`: the next funding time on Binance). Fields are null when the exchange does not report them.
   */
  fetchFundingRate(pair: string): Promise<FundingInfo>;

  /** Funding events of `pair` with time >= `since`, oldest first, up to now. Pages through the per-request limit. */
  fetchFundingRateHistory(pair: string, since: number): Promise<FundingRecord[]>;

  /**
   * The funding payments of the account on `pair` booked at or after `since` (Unix ms), oldest first, up to now: what
   * the positions held paid or received. Pages through the exchange's per-request limit.
   */
  fetchFundingPayments(pair: string, since: number): Promise<FundingPayment[]>;

  /** Account totals. */
  fetchBalance(): Promise<Balance>;

  /** Every open (non-zero) position of the account, all pairs. */
  fetchPositions(): Promise<ExchangePosition[]>;

  /**
   * Trading rules of `pair`. Markets are loaded once per process (the ccxt adapter also caches them on disk).
   * @throws ExchangeError `ExchangeBadSymbol` when the exchange has no such market
   */
  market(pair: string): Promise<MarketInfo>;

  /**
   * Place a market order, idempotently: when an order with `req.clientOrderId` already exists on `req.pair`, it is
   * returned instead of placing another (so retrying after a timeout is safe). Checks before sending, without a
   * request: client order id format, quantity after rounding >= `minQty`, and, unless reduce-only,
   * quantity x `referencePrice` >= `minNotional` (each failure is a non-retryable `ExchangeInvalidOrder`).
   * An existing order with the same id but another side is an `ExchangeDuplicateOrderId`. An exchange answer that
   * the id is already in use (an earlier attempt placed the order) returns that order; while the exchange does not
   * show it yet, the failure is retryable, never a rejection.
   * Returns the order as the exchange reports it right after placement: a market order is normally `filled`; one
   * that filled only in part and expired is `canceled` with its `filledQuantity` and fills.
   */
  createOrder(req: OrderRequest): Promise<OrderResult>;

  /**
   * The order (market or stop) with `clientOrderId` on `pair`, with its fills, or null when there is none.
   * A triggered stop is `filled` with the fills of the execution it caused (price, fee and time as the exchange
   * booked them). Read-only.
   */
  fetchOrderByClientId(pair: string, clientOrderId: string): Promise<OrderResult | null>;

  /**
   * Cancel the order (market or stop) with `clientOrderId` on `pair`. Idempotent: an order that is already filled
   * or cancelled is returned in that final state; null when no such order exists.
   */
  cancelOrder(pair: string, clientOrderId: string): Promise<OrderResult | null>;

  /**
   * Set the leverage of `pair` (an integer >= 1). Idempotent. On Binance, leverage is per pair and applies to the
   * next orders; lowering it on an isolated position with open margin may be refused.
   */
  setLeverage(pair: string, leverage: number): Promise<void>;

  /**
   * Put `pair` in isolated margin mode. Idempotent: "already isolated" is success. Fails (non-retryable) when a
   * cross-margin position or open order on `pair` prevents the change.
   */
  setIsolatedMargin(pair: string): Promise<void>;

  /**
   * Make `pair` ready for an entry: isolated margin first, then `leverage`. Call before every `createOrder` that
   * opens or increases a position. Idempotent.
   */
  prepareEntry(pair: string, leverage: number): Promise<void>;

  /**
   * Place a reduce-only stop-market order, idempotently by `clientOrderId` (as `createOrder`). Returns null, without
   * a request, when the exchange has no stop orders; the caller then relies on its own protective checks.
   */
  placeStopOrder(req: StopOrderRequest): Promise<OrderResult | null>;
}
