/**
 * The `Exchange` port over ccxt: any ccxt exchange with perpetual swap markets; `binanceusdm` by default.
 *
 * - Markets are loaded once per instance. With `marketsCacheFile`, the raw `fetchMarkets()` result is kept on disk
 *   (written to a temp file, then renamed) and later instances call `setMarkets` from it without a request, until it
 *   is older than `marketsCacheMaxAgeMs`. A pair missing from a cached set triggers one refetch (new listing).
 * - ccxt's rate limiter is always on. Sandbox (testnet) and demo trading are switches; they cannot be combined.
 * - Orders are market orders with a client order id; creation, lookup, cancellation and stop orders are idempotent by
 *   that id (see the port). Amounts are rounded with ccxt's `amountToPrecision`; minimum quantity and notional are
 *   checked before anything is sent.
 * - Every failure is thrown as a classified `ExchangeError` (errors.ts) with the API key and secret redacted.
 * - The keys live in a private field of the ccxt client: `JSON.stringify`, `String()` and `util.inspect` of the adapter
 *   show only the exchange id and the environment.
 *
 * Units: quantities in base units (converted from/to contracts with the market's contract size), prices in USDT.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  DuplicateOrderId,
  exchanges as ccxtExchanges,
  functions as ccxtFunctions,
  MarginModeAlreadySet,
  NoChange,
  OrderNotFound,
} from 'ccxt';
import type { Exchange as CcxtClient, Market, MarketInterface, Order, Position, Trade } from 'ccxt';
import type { Config } from '../core/config';
import { timeframeMs } from '../core/timeframe';
import type { Candle, ExchangePosition, Fill, FundingInfo } from '../core/types';
import { classifyError, ExchangeError, redactSecrets } from './errors';
import { BackOffGate } from './back-off';
import { clientOrderIdProblem } from './port';
import type {
  Balance,
  Exchange,
  FundingPayment,
  FundingRecord,
  MarketInfo,
  OrderRequest,
  OrderResult,
  OrderSide,
  OrderStatus,
  StopOrderRequest,
} from './port';

export interface CcxtExchangeOptions {
  /** ccxt exchange id, e.g. `binanceusdm`, `bybit`, `okx` */
  exchangeId: string;
  /** empty or absent: public endpoints only (market data) */
  apiKey?: string;
  secret?: string;
  /** use the exchange's testnet URLs (ccxt `setSandboxMode`) */
  sandbox?: boolean;
  /** use the exchange's demo-trading URLs (ccxt `enableDemoTrading`; Binance, Bybit, Bitget) */
  demoTrading?: boolean;
  /** extra ccxt constructor options (`timeout`, `options`, `urls`...); keys and `enableRateLimit: false` are refused */
  ccxtOptions?: Record<string, unknown>;
  /** JSON file for the markets cache; null or absent: no disk cache */
  marketsCacheFile?: string | null;
  /** a cache older than this is refetched, ms; default 24 h */
  marketsCacheMaxAgeMs?: number;
  /** settlement currency of the traded perpetuals; default `USDT` */
  settleCurrency?: string;
  /** replaces ccxt's HTTP client (same contract as the global `fetch`); for proxies and offline tests */
  fetchImplementation?: (input: string, init?: RequestInit) => Promise<Response>;
  /**
   * base URL every ccxt API URL is rewritten to, keeping its path (`https://fapi.binance.com/fapi/v1` becomes
   * `<apiUrl>/fapi/v1`): a local exchange (test/local-exchange) or a gateway. `http:` only on a loopback host (the API
   * key travels in a header). Not with `sandbox` or `demoTrading`.
   */
  apiUrl?: string | null;
  /** longest wait for an exchange's Retry-After inside one call before failing it as retryable, ms; default 10 s */
  maxBackOffWaitMs?: number;
  /**
   * pauses before the second and later look-ups of an order that an earlier attempt may have placed (see
   * `OrderRequest.mayExist`), ms; default 1000, 2000
   */
  lookupRetryDelaysMs?: readonly number[];
  /** clock for the cache age, Unix ms; default `Date.now` */
  now?: () => number;
}

/** What the markets cache file holds. */
interface MarketsCacheFile {
  format: typeof CACHE_FORMAT;
  exchangeId: string;
  environment: Environment;
  savedAt: number;
  markets: Market[];
}

/** `custom`: the API URLs are rewritten to `apiUrl` (a local exchange or a gateway) */
type Environment = 'live' | 'sandbox' | 'demo' | 'custom';
type OrderKind = 'market' | 'stop';

const CACHE_FORMAT = 'llm-trader/ccxt-markets@1';
/** See {@link CcxtExchangeOptions.maxBackOffWaitMs}. */
export const DEFAULT_MAX_BACK_OFF_WAIT_MS = 10_000;
/** See {@link CcxtExchangeOptions.lookupRetryDelaysMs}. */
export const DEFAULT_LOOKUP_RETRY_DELAYS_MS: readonly number[] = [1_000, 2_000];
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
const DAY_MS = 24 * 60 * 60 * 1000;
/** candles asked per request; exchanges with a lower cap return fewer and the loop continues */
const CANDLES_PER_REQUEST = 1000;
const FUNDING_PER_REQUEST = 1000;
/** the longest time range asked of a history endpoint at once (Binance: 7 days) */
const FUNDING_WINDOW_MS = 7 * DAY_MS;
/** quantities and prices are cleaned to this many significant digits after float arithmetic */
const SIGNIFICANT = 12;

function clean(x: number): number {
  return Number(x.toPrecision(SIGNIFICANT));
}

/** A finite number or null. */
function num(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

/**
 * Binance answers a second order with a used client order id with -4116 "ClientOrderId is duplicated." (ccxt maps
 * it to InvalidOrder, not DuplicateOrderId); other exchanges use DuplicateOrderId or a similar message.
 */
function isDuplicateClientOrderId(err: unknown): boolean {
  if (err instanceof DuplicateOrderId) return true;
  const message = err instanceof Error ? err.message : '';
  return /"code":\s*-4116\b|duplicate/i.test(message);
}

function isMarginModeUnchanged(err: unknown): boolean {
  if (err instanceof MarginModeAlreadySet || err instanceof NoChange) return true;
  const message = err instanceof Error ? err.message : '';
  return /no need to change margin type/i.test(message);
}

/**
 * ccxt's binance classes choose the error table of a request by its URL's host (fapi.binance.com: the USDⓈ-M table);
 * with rewritten URLs no host matches and USDⓈ-M codes such as -2019 "Margin is insufficient" would map to a plain
 * ExchangeError. For binanceusdm every request is a USDⓈ-M one, so its table is made the default (for the real hosts
 * this changes nothing: their own table is consulted first).
 */
function useLinearErrorTable(client: CcxtClient): void {
  if (client.id !== 'binanceusdm') return;
  type Table = { exact?: Record<string, unknown>; broad?: Record<string, unknown> };
  const exceptions = client.exceptions as Table & { linear?: Table };
  const linear = exceptions.linear;
  if (!linear) return;
  client.exceptions = {
    ...exceptions,
    exact: { ...exceptions.exact, ...linear.exact },
    broad: { ...exceptions.broad, ...linear.broad },
  };
}

function mapStatus(status: string | undefined): OrderStatus {
  switch (status) {
    case 'closed':
      return 'filled';
    case 'canceled':
    case 'expired':
      return 'canceled';
    case 'rejected':
      return 'rejected';
    default:
      // 'open', 'canceling', or a status ccxt could not parse: not final, so report it as open
      return 'open';
  }
}

type CcxtClass = new (config: Record<string, unknown>) => CcxtClient;

/**
 * `Base` with every HTTP request passing `gate` first, and every 429/418 answer closing it for its Retry-After. All of
 * ccxt's own behaviour (signing, throttling, parsing, error mapping) is kept: the subclass only adds the gate.
 */
function withBackOffGate(Base: CcxtClass, gate: BackOffGate): CcxtClass {
  return class extends Base {
    override async fetch(url: string, method?: string, headers?: unknown, body?: unknown): Promise<unknown> {
      await gate.pass(`${method ?? 'GET'} ${pathOf(url)}`);
      return super.fetch(url, method, headers, body);
    }

    override handleErrors(
      code: number,
      reason: string,
      url: string,
      method: string,
      headers: Record<string, unknown>,
      body: string,
      response: unknown,
      requestHeaders: unknown,
      requestBody: unknown,
    ): undefined {
      gate.observe(code, headers);
      return super.handleErrors(code, reason, url, method, headers, body, response, requestHeaders, requestBody);
    }
  };
}

/** The path of a URL, without its query (which carries the signature). */
function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url.split('?')[0] ?? url;
  }
}

/**
 * `api` (ccxt's `urls.api`: URLs, possibly nested in objects) with every URL's origin replaced by `base`.
 * @throws Error when `base` is not an absolute http(s) URL, or is http on a host that is not loopback
 */
export function rewriteApiUrls(api: unknown, base: string): unknown {
  let parsed: URL;
  try {
    parsed = new URL(base);
  } catch {
    throw new Error('exchange.api_url is not a URL: use e.g. http://127.0.0.1:8900');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new Error(`exchange.api_url must be an http(s) URL, got ${parsed.protocol}//${parsed.host}`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new Error(
      'exchange.api_url must not carry a user name or password: the exchange authenticates with the API key and secret',
    );
  }
  if (parsed.protocol === 'http:' && !LOOPBACK_HOSTS.has(parsed.hostname)) {
    throw new Error(
      `exchange.api_url ${base} is plain http on ${parsed.hostname}: the API key would travel unencrypted; use https, ` +
        'or http only on 127.0.0.1 / localhost',
    );
  }
  const prefix = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  const rewrite = (value: unknown): unknown => {
    if (typeof value === 'string') {
      try {
        const u = new URL(value);
        return `${prefix}${u.pathname.replace(/\/+$/, '')}`;
      } catch {
        return value;
      }
    }
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, rewrite(v)]));
    }
    return value;
  };
  return rewrite(api);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class CcxtExchange implements Exchange {
  readonly id: string;
  readonly environment: Environment;
  readonly settleCurrency: string;

  readonly #client: CcxtClient;
  readonly #secrets: string[];
  readonly #cacheFile: string | null;
  readonly #cacheMaxAgeMs: number;
  readonly #now: () => number;
  readonly #gate: BackOffGate;
  readonly #lookupRetryDelaysMs: readonly number[];
  #marketsReady: Promise<void> | null = null;
  #marketsFromCache = false;
  #refreshAfterMiss: Promise<void> | null = null;

  /**
   * @throws Error (not an ExchangeError: a configuration problem, raised at startup) when the exchange id is unknown
   *   to ccxt, both sandbox and demo trading are requested, the exchange lacks the requested environment, or
   *   `ccxtOptions` tries to carry keys, turn rate limiting off or enable verbose logging with keys set.
   */
  constructor(options: CcxtExchangeOptions) {
    const { exchangeId } = options;
    const classes = ccxtExchanges as unknown as Record<string, CcxtClass>;
    const ExchangeClass = Object.hasOwn(classes, exchangeId) ? classes[exchangeId] : undefined;
    if (!ExchangeClass) {
      throw new Error(
        `exchange.name "${exchangeId}" is not a ccxt exchange id: use one with perpetual swap markets, e.g. binanceusdm, bybit, okx`,
      );
    }
    const sandbox = options.sandbox === true;
    const demoTrading = options.demoTrading === true;
    if (sandbox && demoTrading) {
      throw new Error('exchange.sandbox and exchange.demo_trading cannot both be true: choose one environment');
    }
    const apiKey = options.apiKey ?? '';
    const secret = options.secret ?? '';
    const extra = options.ccxtOptions ?? {};
    for (const key of ['apiKey', 'secret', 'password', 'privateKey', 'uid']) {
      if (key in extra) {
        throw new Error(
          `exchange.ccxt_options.${key} is not allowed: credentials go in exchange.api_key / exchange.api_secret ` +
            '(better: the EXCHANGE_API_KEY / EXCHANGE_API_SECRET environment variables) so they are never logged',
        );
      }
    }
    if (extra.enableRateLimit === false) {
      throw new Error(
        'exchange.ccxt_options.enableRateLimit cannot be false: exchanges ban clients that exceed their rate limits',
      );
    }
    if (extra.verbose === true && (apiKey !== '' || secret !== '')) {
      throw new Error(
        'exchange.ccxt_options.verbose logs request headers, which carry the API key: remove it when keys are set',
      );
    }
    const apiUrl = options.apiUrl ?? null;
    if (apiUrl !== null && (sandbox || demoTrading)) {
      throw new Error(
        'exchange.api_url cannot be combined with exchange.sandbox or exchange.demo_trading: it replaces every API URL',
      );
    }
    const userOptions = (extra.options ?? {}) as Record<string, unknown>;
    this.#gate = new BackOffGate({
      exchange: exchangeId,
      maxWaitMs: options.maxBackOffWaitMs ?? DEFAULT_MAX_BACK_OFF_WAIT_MS,
    });
    this.#lookupRetryDelaysMs = options.lookupRetryDelaysMs ?? DEFAULT_LOOKUP_RETRY_DELAYS_MS;
    this.#client = new (withBackOffGate(ExchangeClass, this.#gate))({
      ...extra,
      apiKey,
      secret,
      enableRateLimit: true,
      options: { defaultType: 'swap', ...userOptions },
    });
    if (options.fetchImplementation) this.#client.fetchImplementation = options.fetchImplementation;
    if (apiUrl !== null) {
      const urls = this.#client.urls as Record<string, unknown>;
      urls.api = rewriteApiUrls(urls.api, apiUrl);
      useLinearErrorTable(this.#client);
    }
    if (sandbox) {
      if (!this.#client.urls.test) {
        throw new Error(
          `exchange.sandbox: ccxt has no testnet URLs for ${exchangeId}; use exchange.demo_trading or paper mode`,
        );
      }
      this.#client.setSandboxMode(true);
    }
    if (demoTrading) {
      if (!(this.#client.urls as Record<string, unknown>).demo) {
        throw new Error(
          `exchange.demo_trading: ccxt has no demo-trading URLs for ${exchangeId}; use exchange.sandbox or paper mode`,
        );
      }
      this.#client.enableDemoTrading(true);
    }
    this.id = exchangeId;
    this.environment = apiUrl !== null ? 'custom' : sandbox ? 'sandbox' : demoTrading ? 'demo' : 'live';
    this.settleCurrency = options.settleCurrency ?? 'USDT';
    this.#secrets = [apiKey, secret].filter((s) => s !== '');
    this.#cacheFile = options.marketsCacheFile ?? null;
    this.#cacheMaxAgeMs = options.marketsCacheMaxAgeMs ?? DAY_MS;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The adapter for the `exchange` section of the configuration (keys already merged from the environment).
   * @param marketsCacheFile e.g. `<data_dir>/markets-binanceusdm.json`; null: no disk cache
   */
  static fromConfig(
    config: Config['exchange'],
    extra: Pick<
      CcxtExchangeOptions,
      'marketsCacheFile' | 'fetchImplementation' | 'settleCurrency' | 'maxBackOffWaitMs' | 'lookupRetryDelaysMs'
    > = {},
  ): CcxtExchange {
    return new CcxtExchange({
      exchangeId: config.name,
      apiKey: config.api_key,
      secret: config.api_secret,
      sandbox: config.sandbox,
      demoTrading: config.demo_trading,
      apiUrl: config.api_url,
      ccxtOptions: config.ccxt_options,
      ...extra,
    });
  }

  toString(): string {
    return `CcxtExchange(${this.id}, ${this.environment}, keys ${this.#secrets.length > 0 ? 'set' : 'not set'})`;
  }

  toJSON(): { exchangeId: string; environment: Environment; keys: boolean } {
    return { exchangeId: this.id, environment: this.environment, keys: this.#secrets.length > 0 };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  // ------------------------------------------------------------------------------------------------------------
  // Markets
  // ------------------------------------------------------------------------------------------------------------

  #classify(err: unknown, operation: string): ExchangeError {
    return classifyError(err, { operation: `${this.id} ${operation}`, secrets: this.#secrets });
  }

  #readMarketsCache(): Market[] | null {
    const file = this.#cacheFile;
    if (file === null || !existsSync(file)) return null;
    let parsed: Partial<MarketsCacheFile>;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<MarketsCacheFile>;
    } catch {
      return null; // unreadable or truncated by hand: refetch and overwrite
    }
    if (
      parsed.format !== CACHE_FORMAT ||
      parsed.exchangeId !== this.id ||
      parsed.environment !== this.environment ||
      typeof parsed.savedAt !== 'number' ||
      !Array.isArray(parsed.markets) ||
      parsed.markets.length === 0
    ) {
      return null;
    }
    if (this.#now() - parsed.savedAt > this.#cacheMaxAgeMs) return null;
    return parsed.markets;
  }

  #writeMarketsCache(markets: Market[]): void {
    const file = this.#cacheFile;
    if (file === null) return;
    const content: MarketsCacheFile = {
      format: CACHE_FORMAT,
      exchangeId: this.id,
      environment: this.environment,
      savedAt: this.#now(),
      markets,
    };
    const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(temp, JSON.stringify(content));
      renameSync(temp, file);
    } catch (err) {
      rmSync(temp, { force: true });
      throw new ExchangeError(
        'ExchangeMisconfigured',
        `${this.id} markets cache: cannot write ${file}: ${err instanceof Error ? err.message : String(err)}; ` +
          'make its folder writable or set another data_dir',
      );
    }
  }

  async #fetchAndCacheMarkets(): Promise<void> {
    let markets: Market[];
    try {
      markets = await this.#client.fetchMarkets();
    } catch (err) {
      throw this.#classify(err, 'loading markets');
    }
    this.#client.setMarkets(markets);
    this.#marketsFromCache = false;
    this.#writeMarketsCache(markets);
  }

  #ensureMarkets(): Promise<void> {
    if (this.#marketsReady === null) {
      const cached = this.#readMarketsCache();
      if (cached !== null) {
        this.#client.setMarkets(cached);
        this.#marketsFromCache = true;
        this.#marketsReady = Promise.resolve();
      } else {
        this.#marketsReady = this.#fetchAndCacheMarkets().catch((err: unknown) => {
          this.#marketsReady = null; // let the next call try again
          throw err;
        });
      }
    }
    return this.#marketsReady;
  }

  async #ccxtMarket(pair: string): Promise<MarketInterface> {
    await this.#ensureMarkets();
    let market = this.#client.markets?.[pair] as MarketInterface | undefined;
    if (market === undefined && this.#marketsFromCache) {
      // listed after the cache was written: refetch once per instance
      this.#refreshAfterMiss ??= this.#fetchAndCacheMarkets().catch((err: unknown) => {
        this.#refreshAfterMiss = null;
        throw err;
      });
      await this.#refreshAfterMiss;
      market = this.#client.markets?.[pair] as MarketInterface | undefined;
    }
    if (market === undefined) {
      throw new ExchangeError(
        'ExchangeBadSymbol',
        `${this.id} has no market "${pair}": use a ccxt perpetual symbol like BTC/USDT:USDT (base/quote:settle) ` +
          'that the exchange lists',
      );
    }
    if (market.swap !== true) {
      throw new ExchangeError(
        'ExchangeBadSymbol',
        `${this.id} market "${pair}" is a ${String(market.type)} market, not a perpetual swap: use a symbol like BTC/USDT:USDT`,
      );
    }
    return market;
  }

  /** ccxt precision value -> increment, according to the exchange's precision mode. */
  #step(precision: number | undefined, what: string, pair: string): number {
    if (precision === undefined || !Number.isFinite(precision)) {
      throw new ExchangeError('ExchangeBadResponse', `${this.id} market ${pair} has no ${what} precision`);
    }
    switch (this.#client.precisionMode) {
      case ccxtFunctions.TICK_SIZE:
        return precision;
      case ccxtFunctions.DECIMAL_PLACES:
        return clean(10 ** -precision);
      default:
        throw new ExchangeError(
          'ExchangeNotSupported',
          `${this.id} uses significant-digit precision, which this adapter does not support`,
        );
    }
  }

  #marketInfo(market: MarketInterface): MarketInfo {
    const pair = market.symbol;
    const contractSize = num(market.contractSize) ?? 1;
    const stepContracts = this.#step(num(market.precision.amount) ?? undefined, 'amount', pair);
    const limits = market.limits as Record<string, { min?: number; max?: number } | undefined>;
    const minContracts = Math.max(num(limits.market?.min) ?? 0, num(limits.amount?.min) ?? 0, stepContracts);
    const maxContracts = num(limits.market?.max) ?? num(limits.amount?.max);
    return {
      pair,
      exchangeSymbol: String(market.id),
      active: market.active !== false,
      qtyStep: clean(stepContracts * contractSize),
      minQty: clean(minContracts * contractSize),
      maxQty: maxContracts === null ? null : clean(maxContracts * contractSize),
      minNotional: num(limits.cost?.min),
      tickSize: this.#step(num(market.precision.price) ?? undefined, 'price', pair),
      maxLeverage: num(limits.leverage?.max),
      contractSize,
    };
  }

  async market(pair: string): Promise<MarketInfo> {
    return this.#marketInfo(await this.#ccxtMarket(pair));
  }

  // ------------------------------------------------------------------------------------------------------------
  // Market data
  // ------------------------------------------------------------------------------------------------------------

  async fetchClosedCandles(pair: string, timeframe: string, since: number, asOf: number): Promise<Candle[]> {
    const operation = `fetchClosedCandles ${pair} ${timeframe}`;
    let tfMs: number;
    try {
      tfMs = timeframeMs(timeframe);
    } catch (err) {
      throw new ExchangeError('ExchangeBadRequest', `${this.id} ${operation}: ${(err as Error).message}`);
    }
    if (!Object.hasOwn(this.#client.timeframes, timeframe)) {
      throw new ExchangeError(
        'ExchangeBadRequest',
        `${this.id} ${operation}: the exchange has no ${timeframe} candles; it offers ${Object.keys(this.#client.timeframes).join(', ')}`,
      );
    }
    const market = await this.#ccxtMarket(pair);
    const candles: Candle[] = [];
    let cursor = since;
    while (cursor + tfMs <= asOf) {
      let rows;
      try {
        rows = await this.#client.fetchOHLCV(market.symbol, timeframe, cursor, CANDLES_PER_REQUEST);
      } catch (err) {
        throw this.#classify(err, operation);
      }
      let lastTime = Number.NEGATIVE_INFINITY;
      let reachedAsOf = false;
      for (const row of rows) {
        const [time, open, high, low, close, volume] = row;
        if (
          num(time) === null ||
          num(open) === null ||
          num(high) === null ||
          num(low) === null ||
          num(close) === null ||
          num(volume) === null
        ) {
          throw new ExchangeError(
            'ExchangeBadResponse',
            `${this.id} ${operation}: incomplete candle ${JSON.stringify(row)}`,
          );
        }
        const t = time as number;
        if (t < cursor || t <= lastTime) continue;
        if (t + tfMs > asOf) {
          reachedAsOf = true; // still forming at asOf (or later): never returned
          break;
        }
        candles.push({
          time: t,
          open: open as number,
          high: high as number,
          low: low as number,
          close: close as number,
          volume: volume as number,
        });
        lastTime = t;
      }
      if (reachedAsOf || lastTime === Number.NEGATIVE_INFINITY) break;
      cursor = lastTime + tfMs;
    }
    return candles;
  }

  async fetchFundingRate(pair: string): Promise<FundingInfo> {
    const market = await this.#ccxtMarket(pair);
    try {
      const funding = await this.#client.fetchFundingRate(market.symbol);
      return { rate: num(funding.fundingRate), time: num(funding.fundingTimestamp) };
    } catch (err) {
      throw this.#classify(err, `fetchFundingRate ${pair}`);
    }
  }

  async fetchFundingRateHistory(pair: string, since: number): Promise<FundingRecord[]> {
    const operation = `fetchFundingRateHistory ${pair}`;
    const market = await this.#ccxtMarket(pair);
    const records: FundingRecord[] = [];
    let cursor = since;
    for (;;) {
      let rows;
      try {
        rows = await this.#client.fetchFundingRateHistory(market.symbol, cursor, FUNDING_PER_REQUEST);
      } catch (err) {
        throw this.#classify(err, operation);
      }
      let lastTime = Number.NEGATIVE_INFINITY;
      for (const row of rows) {
        const time = num(row.timestamp);
        const rate = num(row.fundingRate);
        if (time === null || rate === null) {
          throw new ExchangeError(
            'ExchangeBadResponse',
            `${this.id} ${operation}: funding record without time or rate ${JSON.stringify(row.info)}`,
          );
        }
        if (time < cursor || time <= lastTime) continue;
        records.push({ time, rate });
        lastTime = time;
      }
      if (lastTime === Number.NEGATIVE_INFINITY) break;
      cursor = lastTime + 1;
    }
    return records;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Account
  // ------------------------------------------------------------------------------------------------------------

  /**
   * Binance: the FUNDING_FEE rows of the income history (income > 0 received, < 0 paid; returned with the port's
   * sign: paid > 0), asked for in windows of at most 7 days (history endpoints limit their range) and paged within a
   * window. An open position pays or receives funding every few hours, so the first window without a payment is past
   * the last one: the reading stops there (or at the clock).
   */
  async fetchFundingPayments(pair: string, since: number): Promise<FundingPayment[]> {
    const operation = `fetchFundingPayments ${pair}`;
    const market = await this.#ccxtMarket(pair);
    if (!this.#client.has.fetchFundingHistory) {
      throw new ExchangeError(
        'ExchangeNotSupported',
        `${this.id} ${operation}: the exchange does not list funding payments, so live funding cannot be tracked`,
      );
    }
    const payments: FundingPayment[] = [];
    const seen = new Set<string>();
    for (let windowStart = since; windowStart <= this.#now(); windowStart += FUNDING_WINDOW_MS) {
      const windowEnd = windowStart + FUNDING_WINDOW_MS - 1;
      let cursor = windowStart;
      let inWindow = 0;
      for (;;) {
        let rows;
        try {
          rows = await this.#client.fetchFundingHistory(market.symbol, cursor, FUNDING_PER_REQUEST, {
            until: windowEnd,
          });
        } catch (err) {
          throw this.#classify(err, operation);
        }
        let lastTime = cursor;
        let added = 0;
        for (const row of rows) {
          const time = num(row.timestamp);
          const amount = num(row.amount);
          if (time === null || amount === null) {
            throw new ExchangeError(
              'ExchangeBadResponse',
              `${this.id} ${operation}: funding payment without time or amount ${JSON.stringify(row.info)}`,
            );
          }
          if (time < since || time > windowEnd) continue;
          lastTime = Math.max(lastTime, time);
          const key = String(row.id ?? `${time}|${amount}`);
          if (seen.has(key)) continue;
          seen.add(key);
          payments.push({ time, amount: clean(-amount) });
          added += 1;
        }
        inWindow += added;
        // a full page may have more behind it (same window, from its last time: repeats are dropped by id)
        if (rows.length < FUNDING_PER_REQUEST || added === 0) break;
        cursor = lastTime;
      }
      if (inWindow === 0) break;
    }
    return payments.sort((a, b) => a.time - b.time);
  }

  /**
   * Checks that the account can be traded by this adapter before any order: the keys work (a signed balance read) and,
   * where the exchange can say, positions are in one-way mode (hedge mode would make reduce-only exits and the
   * position mirror wrong). Returns the balance.
   * @throws ExchangeError `ExchangeAuthenticationFailed` for bad keys, `ExchangeMisconfigured` in hedge mode, others
   *   as classified
   */
  async checkAccount(pair: string): Promise<Balance> {
    const balance = await this.fetchBalance();
    if (this.#client.has.fetchPositionMode) {
      const market = await this.#ccxtMarket(pair);
      let mode: { hedged?: unknown };
      try {
        mode = (await this.#client.fetchPositionMode(market.symbol)) as { hedged?: unknown };
      } catch (err) {
        throw this.#classify(err, 'fetchPositionMode');
      }
      if (mode.hedged === true) {
        throw new ExchangeError(
          'ExchangeMisconfigured',
          `${this.id}: the account is in hedge (dual-side) position mode; this trader needs one-way mode: switch it in ` +
            'the futures preferences (Binance: Position Mode → One-way Mode) with no position open',
        );
      }
    }
    return balance;
  }

  /** Zero totals when the account holds none of the settlement currency. */
  async fetchBalance(): Promise<Balance> {
    // markets first: otherwise ccxt loads them itself, with currencies from Binance's spot (sapi) API
    await this.#ensureMarkets();
    let balances;
    try {
      balances = await this.#client.fetchBalance();
    } catch (err) {
      throw this.#classify(err, 'fetchBalance');
    }
    const account = balances[this.settleCurrency] as { free?: unknown; used?: unknown; total?: unknown } | undefined;
    return {
      currency: this.settleCurrency,
      equity: num(account?.total) ?? 0,
      available: num(account?.free) ?? 0,
      usedMargin: num(account?.used) ?? 0,
    };
  }

  /**
   * `margin` is the position's initial margin at the mark price (notional / leverage); `leverage` is the exchange's
   * setting, or notional / initial margin where the exchange reports no leverage (Binance position risk v3).
   */
  async fetchPositions(): Promise<ExchangePosition[]> {
    await this.#ensureMarkets();
    let positions: Position[];
    try {
      positions = await this.#client.fetchPositions();
    } catch (err) {
      throw this.#classify(err, 'fetchPositions');
    }
    const out: ExchangePosition[] = [];
    for (const p of positions) {
      const contracts = num(p.contracts) ?? 0;
      if (contracts === 0 || (p.side !== 'long' && p.side !== 'short')) continue;
      const pair = String(p.symbol);
      const contractSize = num(p.contractSize) ?? 1;
      const notional = Math.abs(num(p.notional) ?? 0);
      const initialMargin = num(p.initialMargin);
      const leverage =
        num(p.leverage) ??
        (initialMargin !== null && initialMargin > 0 ? Math.round((notional / initialMargin) * 100) / 100 : null);
      const entryPrice = num(p.entryPrice);
      if (leverage === null || entryPrice === null) {
        throw new ExchangeError(
          'ExchangeBadResponse',
          `${this.id} fetchPositions: position on ${pair} without leverage/initial margin or entry price`,
        );
      }
      out.push({
        pair,
        side: p.side,
        quantity: clean(contracts * contractSize),
        entryPrice,
        leverage,
        margin: initialMargin ?? num(p.collateral) ?? notional / leverage,
        notional,
        liquidationPrice: num(p.liquidationPrice),
        unrealizedPnl: num(p.unrealizedPnl) ?? 0,
      });
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Leverage and margin mode
  // ------------------------------------------------------------------------------------------------------------

  async setLeverage(pair: string, leverage: number): Promise<void> {
    const market = await this.#ccxtMarket(pair);
    const info = this.#marketInfo(market);
    if (!Number.isInteger(leverage) || leverage < 1 || (info.maxLeverage !== null && leverage > info.maxLeverage)) {
      throw new ExchangeError(
        'ExchangeBadRequest',
        `${this.id} setLeverage ${pair}: leverage must be an integer in 1..${info.maxLeverage ?? 'the market maximum'}, got ${leverage}`,
      );
    }
    try {
      await this.#client.setLeverage(leverage, market.symbol);
    } catch (err) {
      throw this.#classify(err, `setLeverage ${pair} ${leverage}x`);
    }
  }

  async setIsolatedMargin(pair: string): Promise<void> {
    const market = await this.#ccxtMarket(pair);
    if (!this.#client.has.setMarginMode) {
      throw new ExchangeError(
        'ExchangeNotSupported',
        `${this.id} cannot set the margin mode through ccxt, so isolated margin cannot be guaranteed for ${pair}`,
      );
    }
    try {
      await this.#client.setMarginMode('isolated', market.symbol);
    } catch (err) {
      if (isMarginModeUnchanged(err)) return;
      throw this.#classify(err, `setIsolatedMargin ${pair}`);
    }
  }

  async prepareEntry(pair: string, leverage: number): Promise<void> {
    await this.setIsolatedMargin(pair);
    await this.setLeverage(pair, leverage);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Orders
  // ------------------------------------------------------------------------------------------------------------

  get #supportsStops(): boolean {
    const has = this.#client.has;
    return Boolean(has.createStopMarketOrder) || Boolean(has.createTriggerOrder);
  }

  #orderKinds(): OrderKind[] {
    return this.#supportsStops ? ['market', 'stop'] : ['market'];
  }

  /** ccxt params that select stop (trigger) orders in lookups and cancellations */
  #kindParams(kind: OrderKind): Record<string, unknown> {
    return kind === 'stop' ? { trigger: true } : {};
  }

  /** Validates and rounds a base quantity; returns the ccxt amount (contracts) and the rounded base quantity. */
  #roundQuantity(market: MarketInterface, quantity: number, operation: string): { amount: number; quantity: number } {
    if (!Number.isFinite(quantity) || quantity <= 0) {
      throw new ExchangeError('ExchangeInvalidOrder', `${this.id} ${operation}: quantity must be > 0, got ${quantity}`);
    }
    const info = this.#marketInfo(market);
    const contracts = clean(quantity / info.contractSize);
    let amountText: string | undefined;
    try {
      amountText = this.#client.amountToPrecision(market.symbol, contracts);
    } catch {
      amountText = '0';
    }
    const amount = Number(amountText);
    const rounded = clean(amount * info.contractSize);
    if (!(rounded >= info.minQty)) {
      throw new ExchangeError(
        'ExchangeInvalidOrder',
        `${this.id} ${operation}: quantity ${quantity} rounds down to ${rounded} (step ${info.qtyStep}), below the ` +
          `minimum order quantity ${info.minQty} of ${info.pair}; order at least ${info.minQty}`,
      );
    }
    if (info.maxQty !== null && rounded > info.maxQty) {
      throw new ExchangeError(
        'ExchangeInvalidOrder',
        `${this.id} ${operation}: quantity ${rounded} is above the market-order maximum ${info.maxQty} of ${info.pair}; ` +
          'split the order or reduce the size',
      );
    }
    return { amount, quantity: rounded };
  }

  #checkRequest(clientOrderId: string, operation: string): void {
    const problem = clientOrderIdProblem(clientOrderId);
    if (problem !== null) throw new ExchangeError('ExchangeInvalidOrder', `${this.id} ${operation}: ${problem}`);
  }

  /** The order (or stop order) with this client order id, or null when the exchange has none. */
  async #lookup(market: MarketInterface, clientOrderId: string, kind: OrderKind): Promise<OrderResult | null> {
    const operation = `fetch ${kind} order ${market.symbol} ${clientOrderId}`;
    if (!this.#client.has.fetchOrder) {
      throw new ExchangeError(
        'ExchangeNotSupported',
        `${this.id} ${operation}: the exchange cannot fetch orders, so orders cannot be placed idempotently`,
      );
    }
    let order: Order | undefined;
    try {
      order = await this.#client.fetchOrderWithClientOrderId(clientOrderId, market.symbol, this.#kindParams(kind));
    } catch (err) {
      if (err instanceof OrderNotFound) return null;
      throw this.#classify(err, operation);
    }
    if (order === undefined || order === null || order.id === undefined) return null;
    return this.#toOrderResult(market, order, clientOrderId, kind);
  }

  /**
   * {@link #lookup}, and when it finds nothing and `settle` is set, again after each of the look-up retry delays: an
   * order placed moments ago by an attempt whose answer was lost may not show in look-ups yet.
   */
  async #lookupSettled(
    market: MarketInterface,
    clientOrderId: string,
    kind: OrderKind,
    settle: boolean,
  ): Promise<OrderResult | null> {
    const found = await this.#lookup(market, clientOrderId, kind);
    if (found !== null || !settle) return found;
    for (const delay of this.#lookupRetryDelaysMs) {
      await sleep(delay);
      const again = await this.#lookup(market, clientOrderId, kind);
      if (again !== null) return again;
    }
    return null;
  }

  /** An order found under the id of a new request must be that request's order, not another one. */
  #sameOrder(existing: OrderResult, side: OrderSide, operation: string): OrderResult {
    if (existing.side !== side) {
      throw new ExchangeError(
        'ExchangeDuplicateOrderId',
        `${this.id} ${operation}: client order id ${existing.clientOrderId} already names a ${existing.side} order ` +
          `(${existing.exchangeOrderId}) on ${existing.pair}, but this request is a ${side}; client order ids must be unique per order`,
      );
    }
    return existing;
  }

  /**
   * Sends a new order (market or stop) with its client order id, idempotently:
   * 1. look the id up first (with the retry delays when an earlier attempt may have placed it): found, it is returned;
   * 2. send it;
   * 3. "duplicate client order id" (Binance -4116: an OPEN order has the id, i.e. an earlier attempt placed it and its
   *    answer was lost) is "already placed": the order is looked up (with the retry delays) and returned; when the
   *    exchange still shows no such order, the failure is a retryable ExchangeOperationFailed, never a rejection, so
   *    the next attempt finds it by step 1.
   * Binance keeps client order ids unique among open orders only: a filled market order's id can be used again, so
   * step 1 is what keeps a retry from placing a second order.
   */
  async #placeIdempotently(
    market: MarketInterface,
    kind: OrderKind,
    req: { side: OrderSide; clientOrderId: string; mayExist?: boolean },
    operation: string,
    send: () => Promise<Order>,
  ): Promise<OrderResult> {
    const settle = req.mayExist === true;
    const existing = await this.#lookupSettled(market, req.clientOrderId, kind, settle);
    if (existing !== null) return this.#sameOrder(existing, req.side, operation);
    let order: Order;
    try {
      order = await send();
    } catch (err) {
      if (!isDuplicateClientOrderId(err)) throw this.#classify(err, operation);
      const placed = await this.#lookupSettled(market, req.clientOrderId, kind, true);
      if (placed !== null) return this.#sameOrder(placed, req.side, operation);
      throw new ExchangeError(
        'ExchangeOperationFailed',
        `${this.id} ${operation}: the exchange answers that client order id ${req.clientOrderId} is already in use ` +
          `(${redactSecrets(err instanceof Error ? err.message : String(err), this.#secrets)}) but does not show that ` +
          'order yet; retried: the next attempt looks it up before sending anything',
      );
    }
    return this.#toOrderResult(market, order, req.clientOrderId, kind);
  }

  /** The executions of `orderId`: the order's own trades, else the account's trades since `since` of that order. */
  async #tradesOf(
    market: MarketInterface,
    order: Order,
    orderId: string,
    since: number | null,
    what: string,
  ): Promise<Trade[]> {
    const own = Array.isArray(order.trades) ? order.trades.filter((t) => num(t.price) !== null) : [];
    if (own.length > 0 || !this.#client.has.fetchMyTrades) return own;
    try {
      const mine = await this.#client.fetchMyTrades(market.symbol, since ?? undefined);
      return mine.filter((t) => String(t.order) === orderId);
    } catch (err) {
      throw this.#classify(err, `fetch fills of ${market.symbol} ${what}`);
    }
  }

  async #fills(
    market: MarketInterface,
    order: Order,
    clientOrderId: string,
    filled: number,
    kind: OrderKind,
  ): Promise<Fill[]> {
    const contractSize = num(market.contractSize) ?? 1;
    const side = order.side as OrderSide;
    const reduceOnly = order.reduceOnly === true || kind === 'stop';
    const toFill = (t: Trade): Fill => ({
      clientOrderId,
      pair: market.symbol,
      side,
      price: num(t.price) ?? 0,
      quantity: clean((num(t.amount) ?? 0) * contractSize),
      // fees charged in another asset (Binance BNB discount) cannot be converted here and count as 0
      fee: t.fee?.currency === this.settleCurrency ? (num(t.fee.cost) ?? 0) : 0,
      time: num(t.timestamp) ?? 0,
      reduceOnly,
    });
    if (kind === 'stop') {
      // a triggered Binance conditional order spawns a market order (`actualOrderId`) that holds the executions
      const info = (order.info ?? {}) as Record<string, unknown>;
      const actual =
        typeof info.actualOrderId === 'string' || typeof info.actualOrderId === 'number'
          ? String(info.actualOrderId)
          : '';
      if (mapStatus(order.status) !== 'filled' || actual === '' || actual === '0') return [];
      const since = Number(info.triggerTime) > 0 ? Number(info.triggerTime) : num(order.lastUpdateTimestamp);
      const trades = await this.#tradesOf(
        market,
        { ...order, trades: [] },
        actual,
        since,
        `${clientOrderId} (order ${actual})`,
      );
      return trades.map(toFill).sort((a, b) => a.time - b.time);
    }
    if (filled <= 0) return [];
    const trades = await this.#tradesOf(market, order, String(order.id), num(order.timestamp), clientOrderId);
    if (trades.length === 0) {
      // The exchange does not list the executions (yet): one fill with the order's totals.
      const average = num(order.average);
      if (average === null) return [];
      return [
        {
          clientOrderId,
          pair: market.symbol,
          side,
          price: average,
          quantity: filled,
          fee: order.fee?.currency === this.settleCurrency ? (num(order.fee.cost) ?? 0) : 0,
          time: num(order.lastTradeTimestamp) ?? num(order.timestamp) ?? 0,
          reduceOnly,
        },
      ];
    }
    return trades.map(toFill).sort((a, b) => a.time - b.time);
  }

  async #toOrderResult(
    market: MarketInterface,
    order: Order,
    clientOrderId: string,
    kind: OrderKind,
  ): Promise<OrderResult> {
    const contractSize = num(market.contractSize) ?? 1;
    const side = order.side;
    if (side !== 'buy' && side !== 'sell') {
      throw new ExchangeError(
        'ExchangeBadResponse',
        `${this.id} order ${clientOrderId} on ${market.symbol} came back without a side: ${JSON.stringify(order.info)}`,
      );
    }
    const reported = clean((num(order.filled) ?? 0) * contractSize);
    const fills = await this.#fills(market, order, clientOrderId, reported, kind);
    const fromFills = clean(fills.reduce((sum, f) => sum + f.quantity, 0));
    // a triggered stop reports no quantities of its own: its spawned order's fills are its executions
    const filled = kind === 'stop' ? fromFills : reported;
    const average =
      kind === 'stop'
        ? fromFills > 0
          ? clean(fills.reduce((sum, f) => sum + f.price * f.quantity, 0) / fromFills)
          : null
        : num(order.average);
    return {
      clientOrderId,
      exchangeOrderId: String(order.id),
      pair: market.symbol,
      side,
      status: mapStatus(order.status),
      reduceOnly: order.reduceOnly === true,
      quantity: clean((num(order.amount) ?? 0) * contractSize),
      filledQuantity: filled,
      averagePrice: filled > 0 && average !== null && average > 0 ? average : null,
      fee: clean(fills.reduce((sum, f) => sum + f.fee, 0)),
      fills,
      stopPrice: kind === 'stop' ? (num(order.triggerPrice) ?? num(order.stopPrice)) : null,
      time: num(order.timestamp),
    };
  }

  async createOrder(req: OrderRequest): Promise<OrderResult> {
    const operation = `createOrder ${req.pair} ${req.side} ${req.clientOrderId}`;
    this.#checkRequest(req.clientOrderId, operation);
    if (!Number.isFinite(req.referencePrice) || req.referencePrice <= 0) {
      throw new ExchangeError(
        'ExchangeInvalidOrder',
        `${this.id} ${operation}: referencePrice must be a price > 0, got ${req.referencePrice}`,
      );
    }
    const market = await this.#ccxtMarket(req.pair);
    const { amount, quantity } = this.#roundQuantity(market, req.quantity, operation);
    const info = this.#marketInfo(market);
    const notional = clean(quantity * req.referencePrice);
    if (!req.reduceOnly && info.minNotional !== null && notional < info.minNotional) {
      throw new ExchangeError(
        'ExchangeInvalidOrder',
        `${this.id} ${operation}: notional ${quantity} x ${req.referencePrice} = ${notional} ${this.settleCurrency} is ` +
          `below the minimum ${info.minNotional} ${this.settleCurrency} of ${req.pair}; increase the size`,
      );
    }
    const params: Record<string, unknown> = { clientOrderId: req.clientOrderId };
    if (req.reduceOnly) params.reduceOnly = true;
    return this.#placeIdempotently(market, 'market', req, operation, () =>
      this.#client.createOrder(market.symbol, 'market', req.side, amount, undefined, params),
    );
  }

  /**
   * On Binance the stop is a conditional (algo) order. Once triggered its status is `filled` and its fills are those of
   * the market order it spawned (their real prices, fees and times); before that it is `open` with no fills.
   */
  async placeStopOrder(req: StopOrderRequest): Promise<OrderResult | null> {
    if (!this.#supportsStops) return null;
    const operation = `placeStopOrder ${req.pair} ${req.side} ${req.clientOrderId}`;
    this.#checkRequest(req.clientOrderId, operation);
    if (!Number.isFinite(req.stopPrice) || req.stopPrice <= 0) {
      throw new ExchangeError(
        'ExchangeInvalidOrder',
        `${this.id} ${operation}: stopPrice must be a price > 0, got ${req.stopPrice}`,
      );
    }
    const market = await this.#ccxtMarket(req.pair);
    const { amount } = this.#roundQuantity(market, req.quantity, operation);
    let triggerPrice: number;
    try {
      triggerPrice = Number(this.#client.priceToPrecision(market.symbol, req.stopPrice));
    } catch (err) {
      throw this.#classify(err, operation);
    }
    const params = { triggerPrice, reduceOnly: true, clientOrderId: req.clientOrderId };
    return this.#placeIdempotently(market, 'stop', req, operation, () =>
      this.#client.createOrder(market.symbol, 'market', req.side, amount, undefined, params),
    );
  }

  async fetchOrderByClientId(pair: string, clientOrderId: string): Promise<OrderResult | null> {
    const market = await this.#ccxtMarket(pair);
    for (const kind of this.#orderKinds()) {
      const found = await this.#lookup(market, clientOrderId, kind);
      if (found !== null) return found;
    }
    return null;
  }

  async cancelOrder(pair: string, clientOrderId: string): Promise<OrderResult | null> {
    const market = await this.#ccxtMarket(pair);
    for (const kind of this.#orderKinds()) {
      const operation = `cancel ${kind} order ${pair} ${clientOrderId}`;
      try {
        await this.#client.cancelOrderWithClientOrderId(clientOrderId, market.symbol, this.#kindParams(kind));
      } catch (err) {
        if (err instanceof OrderNotFound) continue; // not open as this kind: already final, another kind, or unknown
        throw this.#classify(err, operation);
      }
      // Cancel answers differ between exchanges and order kinds (Binance's algo cancel has no status): read it back.
      const after = await this.#lookup(market, clientOrderId, kind);
      if (after === null) {
        throw new ExchangeError(
          'ExchangeBadResponse',
          `${this.id} ${operation}: the exchange accepted the cancellation but no longer finds the order`,
        );
      }
      return after;
    }
    return this.fetchOrderByClientId(pair, clientOrderId);
  }
}
