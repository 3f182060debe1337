/**
 * A local Binance USDⓈ-M futures REST API for tests and rehearsals: a real HTTP server on 127.0.0.1 that the real ccxt
 * `binanceusdm` class talks to when its API URLs point here (`exchange.api_url` in the configuration, which rewrites
 * ccxt's `urls.api`). No part of ccxt is replaced: it builds, signs, sends and parses every request as it does live.
 *
 * What it implements: the subset of the API this project's ccxt adapter uses (exchange info, klines, premium index,
 * funding-rate history, leverage brackets, leverage, margin type, position mode, account, position risk, orders and
 * conditional (algo) orders by client id, open orders, user trades, income history), with
 * - signed-request checking as Binance does it: `X-MBX-APIKEY` must be the key, `signature` the hex HMAC-SHA256 of the
 *   query string followed by the body (without the signature) under the secret, and `timestamp` within `recvWindow`
 *   (default 5000 ms) of the server's wall clock and at most 1000 ms ahead of it;
 * - request weights per IP and minute (Binance's table, simplified) with 429 + `Retry-After` above the limit, and a 418
 *   ban (with `Retry-After`) for a client that keeps sending before the `Retry-After` of a 429 has passed;
 * - the books and matching engine of engine.ts over recorded candles (recorded-market.ts);
 * - fault injection ({@link Fault}): errors with any status and code (429 with Retry-After, 418, 5xx), errors answered
 *   after the request was executed (Binance's 503 "execution status unknown"), responses dropped or delayed after the
 *   request was executed, order look-ups that do not see orders younger than a lag, partial fills, fills in several
 *   trades, and a hook run before a request (another client changing the account).
 *
 * Times. The engine runs on the market clock (`clock()`, recorded Unix ms); every time on the wire is shifted by
 * `shiftMs` (a whole number of days, so candles, days and funding times stay aligned), so that a recorded market can be
 * served as if it were happening now. Signature timestamps are checked against the wall clock.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { timeframeMs } from '../../src/core/timeframe';
import { upperBoundByTime } from '../../src/core/snapshot';
import {
  ApiError,
  DEFAULT_ENGINE_CONFIG,
  MatchingEngine,
  money,
  type AlgoOrder,
  type EngineConfig,
  type FillShape,
  type Order,
  type SymbolRules,
} from './engine';
import { MarketClosedError, RecordedMarket, SERVED_INTERVALS, type RecordedSymbol } from './recorded-market';

/** The exchange info the server lists by default: a real Binance answer (BTCUSDT, ETHUSDT, SOLUSDT). */
export const DEFAULT_EXCHANGE_INFO = new URL('../fixtures/binanceusdm-exchange-info.json', import.meta.url);
export const DEFAULT_DATA_DIR = new URL('../../../shared/data/binanceusdm', import.meta.url);

const DAY_MS = 86_400_000;
/** A request arriving this soon after a 429 was already on its way (wall ms): not a failure to back off. */
export const IN_FLIGHT_MS = 1_000;
const WEEK_MS = 7 * DAY_MS;

export interface RecordedRequest {
  method: string;
  /** e.g. `/fapi/v1/order` */
  path: string;
  /** query and form-body parameters (the signature included) */
  params: Record<string, string>;
  /** wall time the request arrived, Unix ms */
  at: number;
  /** the HTTP status answered; 0 when the response was dropped */
  status: number;
  /** Binance error code when the answer was an error */
  code: number | null;
  /** the Retry-After answered, s; null when none */
  retryAfter: number | null;
}

/** What happens to the next request(s) matching `method` and `path` (and `match`, when given). */
export type Fault = {
  method: string;
  path: string;
  /** only requests whose parameters satisfy this */
  match?: (params: Record<string, string>) => boolean;
  /** how many matching requests it applies to; default 1 */
  times?: number;
} & (
  | /** answered instead of executing the request */
    { kind: 'error'; status: number; code: number; msg: string; retryAfterSec?: number }
    /** executed, then answered with this error (Binance's 503 "Unknown error ... execution status unknown") */
  | { kind: 'error-after'; status: number; code: number; msg: string }
  /** executed, then the connection is closed without an answer: a lost response */
  | { kind: 'drop-after' }
  /** executed, then answered after `ms` */
  | { kind: 'delay-after'; ms: number }
  /** the order placed by this request fills like this (partial fill, several trades) */
  | ({ kind: 'fill' } & FillShape)
  /** `run` is called, then the request is executed (e.g. another client of the account moves funds first) */
  | { kind: 'before'; run: (exchange: LocalExchange) => void }
);

export interface LocalExchangeOptions {
  apiKey: string;
  apiSecret: string;
  /** market time, recorded Unix ms */
  clock: () => number;
  /** added to every time on the wire; a whole number of days; default 0 */
  shiftMs?: number;
  /** folder of recorded data (../shared/data/binanceusdm layout); default that folder */
  dataDir?: string;
  /** Binance exchange info JSON; default the committed fixture. Only symbols with recorded data are listed. */
  exchangeInfoFile?: string | URL;
  engine?: Partial<EngineConfig>;
  /** request weight per IP per window; default 2400 (Binance) */
  weightLimit?: number;
  /** length of the weight window, ms; default 60 000 (Binance: one minute) */
  weightWindowMs?: number;
  /** length of the IP ban after a client ignored a Retry-After, s; default 120 */
  banSeconds?: number;
  /** GET /fapi/v1/order, /algoOrder and open orders do not see orders younger than this (wall ms); default 0 */
  lookupLagMs?: number;
  /** port on 127.0.0.1; default 0 (any free port) */
  port?: number;
}

/** The weight of a request (Binance USDⓈ-M's table, the entries this server implements). */
function weightOf(method: string, path: string, params: Record<string, string>): number {
  if (path === '/fapi/v1/klines') {
    const limit = Number(params.limit ?? 500);
    return limit < 100 ? 1 : limit < 500 ? 2 : limit <= 1000 ? 5 : 10;
  }
  const table: Record<string, number> = {
    'GET /fapi/v1/income': 30,
    'GET /fapi/v1/userTrades': 5,
    'GET /fapi/v1/allOrders': 5,
    'GET /fapi/v3/account': 5,
    'GET /fapi/v3/positionRisk': 5,
    'GET /fapi/v1/positionSide/dual': 30,
    'GET /fapi/v1/premiumIndex': params.symbol === undefined ? 10 : 1,
    'GET /fapi/v1/openOrders': params.symbol === undefined ? 40 : 1,
    'GET /fapi/v1/openAlgoOrders': params.symbol === undefined ? 40 : 1,
  };
  return table[`${method} ${path}`] ?? 1;
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

function errorReply(status: number, code: number, msg: string, headers?: Record<string, string>): Reply {
  return { status, body: { code, msg }, ...(headers ? { headers } : {}) };
}

/** A number as Binance writes it: a decimal string, at most 8 decimals (no float noise such as 108903.19999999998). */
const str = (x: number): string => String(Number(x.toFixed(8)));

/**
 * The local exchange. `start()` listens on 127.0.0.1; `url` is the base to give ccxt (`exchange.api_url`).
 * `engine` holds the books (orders, trades, income, positions) for assertions.
 */
export class LocalExchange {
  readonly requests: RecordedRequest[] = [];
  /** requests for endpoints this server does not implement; a test should assert none */
  readonly unexpected: string[] = [];
  readonly engine: MatchingEngine;
  readonly market: RecordedMarket;
  lookupLagMs: number;
  clock: () => number;
  private readonly opts: LocalExchangeOptions;
  private readonly shift: number;
  private readonly exchangeInfo: { symbols: Array<Record<string, unknown>> } & Record<string, unknown>;
  private readonly faults: Fault[] = [];
  private readonly remaining = new Map<Fault, number>();
  private server: Server | null = null;
  private port = 0;
  /** wall ms at which each order / algo order was created, for the look-up lag */
  private readonly createdAt = new Map<number, number>();
  private weightWindowStart = 0;
  private weightUsed = 0;
  /** the Retry-After of the last 429 runs until this wall time */
  private backOffUntil = 0;
  /** when the last 429 was answered (wall ms) */
  private limitedAt = 0;
  /** requests sent before the Retry-After had passed */
  private violations = 0;
  private bannedUntil = 0;

  private constructor(opts: LocalExchangeOptions, market: RecordedMarket, info: LocalExchange['exchangeInfo']) {
    this.opts = opts;
    this.clock = opts.clock;
    this.shift = opts.shiftMs ?? 0;
    if (this.shift % DAY_MS !== 0) throw new Error(`local exchange: shiftMs must be whole days, got ${this.shift}`);
    this.lookupLagMs = opts.lookupLagMs ?? 0;
    this.market = market;
    this.exchangeInfo = info;
    const rules = new Map<string, SymbolRules>();
    for (const s of info.symbols) {
      const filters = s.filters as Array<Record<string, string>>;
      const f = (type: string): Record<string, string> => filters.find((x) => x.filterType === type) ?? {};
      const lot = f('MARKET_LOT_SIZE');
      rules.set(String(s.symbol), {
        symbol: String(s.symbol),
        tickSize: f('PRICE_FILTER').tickSize ?? '0.01',
        stepSize: lot.stepSize ?? '0.001',
        minQty: Number(lot.minQty ?? 0),
        maxQty: Number(lot.maxQty ?? Infinity),
        minNotional: Number(f('MIN_NOTIONAL').notional ?? 0),
      });
    }
    this.engine = new MatchingEngine(market, rules, { ...DEFAULT_ENGINE_CONFIG, ...opts.engine }, this.clock());
  }

  /** Loads the exchange info and the recorded data, then listens on 127.0.0.1. */
  static async start(opts: LocalExchangeOptions): Promise<LocalExchange> {
    const info = JSON.parse(
      readFileSync(opts.exchangeInfoFile ?? DEFAULT_EXCHANGE_INFO, 'utf8'),
    ) as LocalExchange['exchangeInfo'];
    const dir = opts.dataDir ?? decodeURIComponent(DEFAULT_DATA_DIR.pathname);
    const wanted: RecordedSymbol[] = info.symbols.map((s) => ({
      symbol: String(s.symbol),
      pair: `${String(s.baseAsset)}/${String(s.quoteAsset)}:${String(s.marginAsset)}`,
    }));
    const market = await RecordedMarket.load(dir, wanted);
    info.symbols = info.symbols.filter((s) => market.has(String(s.symbol)));
    const exchange = new LocalExchange(opts, market, info);
    await exchange.listen(opts.port ?? 0);
    return exchange;
  }

  /** `http://127.0.0.1:<port>`: the value of `exchange.api_url`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private listen(port: number): Promise<void> {
    const server = createServer((req, res) => this.onRequest(req, res));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        this.port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Arms a fault (see {@link Fault}). */
  fault(f: Fault): void {
    this.faults.push(f);
    this.remaining.set(f, f.times ?? 1);
  }

  /** Faults not triggered (as many times as asked); a test should end with none. */
  get pendingFaults(): Fault[] {
    return this.faults.filter((f) => (this.remaining.get(f) ?? 0) > 0);
  }

  /** Requests to `path`, optionally only with `method`. */
  requestsTo(path: string, method?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path && (method === undefined || r.method === method));
  }

  private toWire(t: number): number {
    return t + this.shift;
  }

  private fromWire(t: string | undefined): number | undefined {
    return t === undefined ? undefined : Number(t) - this.shift;
  }

  private takeFault(method: string, path: string, params: Record<string, string>): Fault | undefined {
    const f = this.faults.find(
      (x) =>
        (this.remaining.get(x) ?? 0) > 0 &&
        x.method === method &&
        x.path === path &&
        (x.match === undefined || x.match(params)),
    );
    if (f) this.remaining.set(f, this.remaining.get(f)! - 1);
    return f;
  }

  // ------------------------------------------------------------------------------------------------------------
  // HTTP
  // ------------------------------------------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const at = Date.now();
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const rawQuery = url.search.startsWith('?') ? url.search.slice(1) : url.search;
      const params: Record<string, string> = {};
      for (const [k, v] of url.searchParams) params[k] = v;
      for (const [k, v] of new URLSearchParams(body)) params[k] = v;
      const method = req.method ?? 'GET';
      const path = url.pathname;
      const record: RecordedRequest = { method, path, params, at, status: 0, code: null, retryAfter: null };
      this.requests.push(record);
      const send = (reply: Reply): void => {
        record.status = reply.status;
        const code = (reply.body as { code?: unknown } | null)?.code;
        record.code = reply.status >= 400 && typeof code === 'number' ? code : null;
        const retryAfter = reply.headers?.['retry-after'];
        record.retryAfter = retryAfter === undefined ? null : Number(retryAfter);
        if (res.destroyed) return;
        res.writeHead(reply.status, {
          'content-type': 'application/json',
          'x-mbx-used-weight-1m': String(this.weightUsed),
          ...reply.headers,
        });
        res.end(JSON.stringify(reply.body));
      };

      const limited = this.rateLimit(method, path, params, at);
      if (limited) return send(limited);
      const fault = this.takeFault(method, path, params);
      if (fault?.kind === 'error') {
        if (fault.retryAfterSec !== undefined) {
          if (fault.status === 418) this.bannedUntil = at + fault.retryAfterSec * 1000;
          else {
            this.backOffUntil = at + fault.retryAfterSec * 1000;
            this.limitedAt = at;
            this.violations = 0;
          }
        }
        return send(
          errorReply(
            fault.status,
            fault.code,
            fault.msg,
            fault.retryAfterSec !== undefined ? { 'retry-after': String(fault.retryAfterSec) } : undefined,
          ),
        );
      }
      if (fault?.kind === 'before') fault.run(this);
      const reply = this.handle(method, path, params, rawQuery, body, req.headers['x-mbx-apikey'], fault);
      if (fault?.kind === 'error-after') return send(errorReply(fault.status, fault.code, fault.msg));
      if (fault?.kind === 'drop-after') {
        res.socket?.destroy();
        return;
      }
      if (fault?.kind === 'delay-after') {
        setTimeout(() => send(reply), fault.ms);
        return;
      }
      send(reply);
    });
  }

  /**
   * Request weight accounting per fixed window, Retry-After and bans; a reply when the request is refused. A request
   * that arrives while the Retry-After of a 429 is still running is refused again (429); unless it arrives within
   * {@link IN_FLIGHT_MS} of that 429 (it was on its way before the client could read it), it counts as a failure to
   * back off, and the third one bans the client (418) for `banSeconds`.
   */
  private rateLimit(method: string, path: string, params: Record<string, string>, at: number): Reply | null {
    if (path.startsWith('/local/')) return null;
    if (at < this.bannedUntil) return this.banned(at);
    if (at < this.backOffUntil) {
      if (at - this.limitedAt <= IN_FLIGHT_MS) return this.tooMany(Math.ceil((this.backOffUntil - at) / 1000));
      this.violations += 1;
      if (this.violations >= 3) {
        this.bannedUntil = at + (this.opts.banSeconds ?? 120) * 1000;
        this.backOffUntil = 0;
        this.violations = 0;
        return this.banned(at);
      }
      return this.tooMany(Math.ceil((this.backOffUntil - at) / 1000));
    }
    const windowMs = this.opts.weightWindowMs ?? 60_000;
    const windowStart = Math.floor(at / windowMs) * windowMs;
    if (windowStart !== this.weightWindowStart) {
      this.weightWindowStart = windowStart;
      this.weightUsed = 0;
    }
    const weight = weightOf(method, path, params);
    if (this.weightUsed + weight > (this.opts.weightLimit ?? 2400)) {
      const seconds = Math.max(1, Math.ceil((windowStart + windowMs - at) / 1000));
      this.backOffUntil = at + seconds * 1000;
      this.limitedAt = at;
      this.violations = 0;
      return this.tooMany(seconds);
    }
    this.weightUsed += weight;
    return null;
  }

  private tooMany(seconds: number): Reply {
    return errorReply(
      429,
      -1003,
      `Too many requests; current limit of IP(127.0.0.1) is ${this.opts.weightLimit ?? 2400} requests per minute. ` +
        'Please use the websocket for live updates to avoid polling the API.',
      { 'retry-after': String(seconds) },
    );
  }

  private banned(at: number): Reply {
    return errorReply(
      418,
      -1003,
      `Way too many requests; IP(127.0.0.1) banned until ${this.toWire(this.bannedUntil)}. ` +
        'Please use the websocket for live updates to avoid bans.',
      { 'retry-after': String(Math.ceil((this.bannedUntil - at) / 1000)) },
    );
  }

  private handle(
    method: string,
    path: string,
    p: Record<string, string>,
    rawQuery: string,
    rawBody: string,
    apiKey: string | string[] | undefined,
    fault: Fault | undefined,
  ): Reply {
    const key = `${method} ${path}`;
    const publicRoutes: Record<string, () => Reply> = {
      'GET /fapi/v1/time': () => ({ status: 200, body: { serverTime: Date.now() } }),
      'GET /fapi/v1/exchangeInfo': () => ({ status: 200, body: { ...this.exchangeInfo, serverTime: Date.now() } }),
      'GET /fapi/v1/klines': () => this.klines(p),
      'GET /fapi/v1/premiumIndex': () => this.premiumIndex(p),
      'GET /fapi/v1/fundingRate': () => this.fundingRate(p),
      // not Binance: the books, for a person watching a rehearsal
      'GET /local/books': () => ({ status: 200, body: this.books() }),
    };
    const signedRoutes: Record<string, () => Reply> = {
      'GET /fapi/v1/leverageBracket': () => this.leverageBracket(p),
      'POST /fapi/v1/leverage': () => this.setLeverage(p),
      'POST /fapi/v1/marginType': () => this.setMarginType(p),
      'GET /fapi/v1/positionSide/dual': () => ({ status: 200, body: { dualSidePosition: false } }),
      'GET /fapi/v3/account': () => this.account(),
      'GET /fapi/v3/positionRisk': () => ({ status: 200, body: this.positionRisk(p.symbol) }),
      'POST /fapi/v1/order': () => this.createOrder(p, fault),
      'GET /fapi/v1/order': () => this.getOrder(p),
      'DELETE /fapi/v1/order': () => this.cancelOrder(p),
      'GET /fapi/v1/openOrders': () => this.openOrders(p),
      'POST /fapi/v1/algoOrder': () => this.createAlgoOrder(p),
      'GET /fapi/v1/algoOrder': () => this.getAlgoOrder(p),
      'DELETE /fapi/v1/algoOrder': () => this.cancelAlgoOrder(p),
      'GET /fapi/v1/openAlgoOrders': () => this.openAlgoOrders(p),
      'GET /fapi/v1/userTrades': () => this.userTrades(p),
      'GET /fapi/v1/income': () => this.incomeHistory(p),
    };
    const route = publicRoutes[key] ?? signedRoutes[key];
    if (!route) {
      this.unexpected.push(key);
      return errorReply(404, -1, `local exchange: ${key} is not implemented`);
    }
    if (signedRoutes[key]) {
      const refused = this.checkSignature(p, rawQuery, rawBody, apiKey);
      if (refused) return refused;
    }
    try {
      this.engine.advance(this.clock());
      return route();
    } catch (err) {
      if (err instanceof ApiError) return errorReply(err.status, err.code, err.message);
      if (err instanceof MarketClosedError) return errorReply(503, -1001, err.message);
      throw err;
    }
  }

  private checkSignature(
    p: Record<string, string>,
    rawQuery: string,
    rawBody: string,
    apiKey: string | string[] | undefined,
  ): Reply | null {
    if (apiKey === undefined) return errorReply(401, -2014, 'API-key format invalid.');
    if (apiKey !== this.opts.apiKey) return errorReply(401, -2015, 'Invalid API-key, IP, or permissions for action.');
    if (p.timestamp === undefined) {
      return errorReply(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.");
    }
    if (p.signature === undefined) {
      return errorReply(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.");
    }
    const unsigned = (raw: string): string => raw.replace(/(^|&)signature=[^&]*/, '');
    const total = unsigned(rawQuery) + unsigned(rawBody);
    const expected = createHmac('sha256', this.opts.apiSecret).update(total).digest('hex');
    const given = Buffer.from(p.signature, 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected, 'utf8'))) {
      return errorReply(400, -1022, 'Signature for this request is not valid.');
    }
    const recvWindow = Number(p.recvWindow ?? 5000);
    if (!(recvWindow > 0 && recvWindow <= 60_000)) return errorReply(400, -1131, 'recvWindow must be less than 60000');
    const now = Date.now();
    const timestamp = Number(p.timestamp);
    if (timestamp > now + 1000) {
      return errorReply(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.");
    }
    if (now - timestamp > recvWindow) {
      return errorReply(400, -1021, 'Timestamp for this request is outside of the recvWindow.');
    }
    return null;
  }

  /** A summary of the account: wallet, positions, open stops, the last trades and the income totals. */
  books(): Record<string, unknown> {
    const e = this.engine;
    const iso = (t: number): string => new Date(this.toWire(t)).toISOString();
    return {
      marketTime: iso(this.clock()),
      wallet: e.wallet,
      available: e.availableBalance(),
      positions: [...e.positions]
        .filter(([, p]) => p.amount !== 0)
        .map(([symbol, p]) => ({ symbol, amount: p.amount, entryPrice: Number(str(p.entryPrice)), margin: p.margin })),
      openStops: e.algoOrders
        .filter((a) => a.algoStatus === 'NEW')
        .map((a) => ({
          symbol: a.symbol,
          clientAlgoId: a.clientAlgoId,
          side: a.side,
          quantity: a.quantity,
          triggerPrice: a.triggerPrice,
        })),
      orders: e.orders.length,
      lastTrades: e.trades.slice(-10).map((t) => ({
        time: iso(t.time),
        symbol: t.symbol,
        side: t.side,
        price: t.price,
        qty: t.qty,
        commission: t.commission,
        realizedPnl: t.realizedPnl,
      })),
      income: Object.fromEntries(
        (['COMMISSION', 'REALIZED_PNL', 'FUNDING_FEE'] as const).map((type) => [type, e.incomeTotal(type)]),
      ),
    };
  }

  // ------------------------------------------------------------------------------------------------------------
  // Market data
  // ------------------------------------------------------------------------------------------------------------

  private klines(p: Record<string, string>): Reply {
    const rules = this.engine.rulesOf(p.symbol);
    const interval = p.interval ?? '';
    const all = (SERVED_INTERVALS as readonly string[]).includes(interval)
      ? this.market.candles(rules.symbol, interval)
      : undefined;
    if (!all) return errorReply(400, -1120, 'Invalid interval.');
    const ms = timeframeMs(interval);
    const now = this.clock();
    const limit = Math.min(Math.max(Number(p.limit ?? 500), 1), 1500);
    const end = Math.min(this.fromWire(p.endTime) ?? now, now);
    const start = this.fromWire(p.startTime);
    let from = start === undefined ? 0 : upperBoundByTime(all, start - 1);
    // newest `limit` candles up to `end` when no start is given, as Binance does
    const upto = upperBoundByTime(all, end);
    if (start === undefined) from = Math.max(0, upto - limit);
    const rows: unknown[] = [];
    for (let i = from; i < upto && rows.length < limit; i++) {
      const recorded = all[i]!;
      const c =
        recorded.time + ms <= now ? recorded : this.market.formingCandle(rules.symbol, interval, recorded.time, now);
      if (c === null) break;
      const t = this.toWire(c.time);
      rows.push([
        t,
        str(c.open),
        str(c.high),
        str(c.low),
        str(c.close),
        str(c.volume),
        t + ms - 1,
        '0',
        0,
        '0',
        '0',
        '0',
      ]);
    }
    return { status: 200, body: rows };
  }

  private premiumIndex(p: Record<string, string>): Reply {
    const rules = this.engine.rulesOf(p.symbol);
    const now = this.clock();
    const price = this.market.lastPrice(rules.symbol, now);
    const last = this.market.fundingAt(rules.symbol, now);
    const next = (Math.floor(now / (8 * 3_600_000)) + 1) * 8 * 3_600_000;
    return {
      status: 200,
      body: {
        symbol: rules.symbol,
        markPrice: str(price),
        indexPrice: str(price),
        estimatedSettlePrice: str(price),
        // the last settled rate: the recorded data has no prediction of the next one
        lastFundingRate: str(last?.rate ?? 0),
        interestRate: '0.00010000',
        nextFundingTime: this.toWire(next),
        time: this.toWire(now),
      },
    };
  }

  private fundingRate(p: Record<string, string>): Reply {
    const rules = this.engine.rulesOf(p.symbol);
    const now = this.clock();
    const limit = Math.min(Math.max(Number(p.limit ?? 100), 1), 1000);
    const start = this.fromWire(p.startTime);
    const end = Math.min(this.fromWire(p.endTime) ?? now, now);
    let events = this.market.fundingBetween(rules.symbol, (start ?? -Infinity) - 1, end);
    events = start === undefined ? events.slice(-limit) : events.slice(0, limit);
    return {
      status: 200,
      body: events.map((e) => ({
        symbol: rules.symbol,
        fundingTime: this.toWire(e.time),
        fundingRate: str(e.rate),
        markPrice: str(this.market.markAt(rules.symbol, e.time)),
      })),
    };
  }

  // ------------------------------------------------------------------------------------------------------------
  // Settings and account
  // ------------------------------------------------------------------------------------------------------------

  private leverageBracket(p: Record<string, string>): Reply {
    const symbols = p.symbol === undefined ? this.market.symbols : [this.engine.rulesOf(p.symbol).symbol];
    const brackets = symbols.map((symbol) => ({
      symbol,
      notionalCoef: 1,
      brackets: [
        { bracket: 1, initialLeverage: 125, notionalCap: 50_000, notionalFloor: 0, maintMarginRatio: 0.004, cum: 0 },
        {
          bracket: 2,
          initialLeverage: 100,
          notionalCap: 600_000,
          notionalFloor: 50_000,
          maintMarginRatio: 0.005,
          cum: 50,
        },
      ],
    }));
    return { status: 200, body: p.symbol === undefined ? brackets : brackets[0] };
  }

  private setLeverage(p: Record<string, string>): Reply {
    const { symbol } = this.engine.rulesOf(p.symbol);
    const leverage = Number(p.leverage);
    this.engine.setLeverage(symbol, leverage);
    return { status: 200, body: { leverage, maxNotionalValue: '50000', symbol } };
  }

  private setMarginType(p: Record<string, string>): Reply {
    const { symbol } = this.engine.rulesOf(p.symbol);
    const wanted = p.marginType === 'ISOLATED' ? 'ISOLATED' : p.marginType === 'CROSSED' ? 'CROSSED' : null;
    if (wanted === null) return errorReply(400, -1116, 'Invalid marginType.');
    this.engine.setMarginType(symbol, wanted);
    return { status: 200, body: { code: 200, msg: 'success' } };
  }

  private positionRisk(symbol?: string) {
    const rows = [];
    const now = this.clock();
    for (const [s, pos] of this.engine.positions) {
      if (pos.amount === 0 || (symbol !== undefined && s !== symbol)) continue;
      const mark = this.market.lastPrice(s, now);
      const notional = pos.amount * mark;
      const unrealized = (mark - pos.entryPrice) * pos.amount;
      const leverage = this.engine.leverageOf(s);
      const isolated = (this.engine.marginType.get(s) ?? 'CROSSED') === 'ISOLATED';
      rows.push({
        symbol: s,
        positionSide: 'BOTH',
        positionAmt: str(pos.amount),
        entryPrice: str(pos.entryPrice),
        breakEvenPrice: str(pos.entryPrice),
        markPrice: str(mark),
        unRealizedProfit: str(money(unrealized)),
        liquidationPrice: str(liquidationPrice(pos.amount, pos.entryPrice, leverage)),
        isolatedMargin: str(isolated ? money(pos.margin + unrealized) : 0),
        notional: str(money(notional)),
        marginAsset: 'USDT',
        isolatedWallet: str(isolated ? pos.margin : 0),
        initialMargin: str(money(Math.abs(notional) / leverage)),
        maintMargin: str(money(Math.abs(notional) * 0.004)),
        positionInitialMargin: str(money(Math.abs(notional) / leverage)),
        openOrderInitialMargin: '0',
        adl: 1,
        bidNotional: '0',
        askNotional: '0',
        updateTime: this.toWire(now),
      });
    }
    return rows;
  }

  private account(): Reply {
    const positions = this.positionRisk();
    let unrealized = 0;
    let initialMargin = 0;
    let maintMargin = 0;
    for (const r of positions) {
      unrealized += Number(r.unRealizedProfit);
      initialMargin += Number(r.initialMargin);
      maintMargin += Number(r.maintMargin);
    }
    const wallet = this.engine.wallet;
    const marginBalance = money(wallet + unrealized);
    const available = this.engine.availableBalance();
    const updateTime = this.toWire(this.clock());
    return {
      status: 200,
      body: {
        totalInitialMargin: str(money(initialMargin)),
        totalMaintMargin: str(money(maintMargin)),
        totalWalletBalance: str(wallet),
        totalUnrealizedProfit: str(money(unrealized)),
        totalMarginBalance: str(marginBalance),
        totalPositionInitialMargin: str(money(initialMargin)),
        totalOpenOrderInitialMargin: '0',
        totalCrossWalletBalance: str(available),
        totalCrossUnPnl: '0',
        availableBalance: str(available),
        maxWithdrawAmount: str(available),
        assets: [
          {
            asset: 'USDT',
            walletBalance: str(wallet),
            unrealizedProfit: str(money(unrealized)),
            marginBalance: str(marginBalance),
            maintMargin: str(money(maintMargin)),
            initialMargin: str(money(initialMargin)),
            positionInitialMargin: str(money(initialMargin)),
            openOrderInitialMargin: '0',
            crossWalletBalance: str(available),
            crossUnPnl: '0',
            availableBalance: str(available),
            maxWithdrawAmount: str(available),
            updateTime,
          },
        ],
        positions: positions.map((r) => ({
          symbol: r.symbol,
          positionSide: 'BOTH',
          positionAmt: r.positionAmt,
          unrealizedProfit: r.unRealizedProfit,
          isolatedMargin: r.isolatedMargin,
          notional: r.notional,
          isolatedWallet: r.isolatedWallet,
          initialMargin: r.initialMargin,
          maintMargin: r.maintMargin,
          updateTime: r.updateTime,
        })),
      },
    };
  }

  // ------------------------------------------------------------------------------------------------------------
  // Orders
  // ------------------------------------------------------------------------------------------------------------

  private orderJson(o: Order) {
    return {
      orderId: o.orderId,
      symbol: o.symbol,
      status: o.status,
      clientOrderId: o.clientOrderId,
      price: '0',
      avgPrice: str(o.avgPrice),
      origQty: str(o.origQty),
      executedQty: str(o.executedQty),
      cumQty: str(o.executedQty),
      cumQuote: str(o.cumQuote),
      timeInForce: 'GTC',
      type: 'MARKET',
      reduceOnly: o.reduceOnly,
      closePosition: false,
      side: o.side,
      positionSide: 'BOTH',
      stopPrice: '0',
      workingType: 'CONTRACT_PRICE',
      priceProtect: false,
      origType: 'MARKET',
      priceMatch: 'NONE',
      selfTradePreventionMode: 'EXPIRE_MAKER',
      goodTillDate: 0,
      time: this.toWire(o.time),
      updateTime: this.toWire(o.updateTime),
    };
  }

  private algoJson(a: AlgoOrder) {
    return {
      algoId: a.algoId,
      clientAlgoId: a.clientAlgoId,
      algoType: 'CONDITIONAL',
      orderType: a.orderType,
      symbol: a.symbol,
      side: a.side,
      positionSide: 'BOTH',
      timeInForce: 'GTC',
      quantity: str(a.quantity),
      algoStatus: a.algoStatus,
      actualOrderId: a.actualOrderId === null ? '' : str(a.actualOrderId),
      actualPrice: a.actualPrice === null ? '' : str(a.actualPrice),
      triggerPrice: str(a.triggerPrice),
      price: '0',
      icebergQuantity: null,
      selfTradePreventionMode: 'EXPIRE_MAKER',
      workingType: 'CONTRACT_PRICE',
      priceMatch: 'NONE',
      closePosition: false,
      priceProtect: false,
      reduceOnly: a.reduceOnly,
      createTime: this.toWire(a.createTime),
      updateTime: this.toWire(a.updateTime),
      triggerTime: a.triggerTime === 0 ? 0 : this.toWire(a.triggerTime),
      goodTillDate: 0,
    };
  }

  /** Visible to look-ups: created at least `lookupLagMs` ago (wall time). */
  private visible(id: number): boolean {
    return Date.now() - (this.createdAt.get(id) ?? 0) >= this.lookupLagMs;
  }

  private createOrder(p: Record<string, string>, fault: Fault | undefined): Reply {
    const shape = fault?.kind === 'fill' ? fault : {};
    const order = this.engine.placeMarketOrder(p, this.clock(), shape);
    this.createdAt.set(order.orderId, Date.now());
    return { status: 200, body: this.orderJson(order) };
  }

  private getOrder(p: Record<string, string>): Reply {
    const { symbol } = this.engine.rulesOf(p.symbol);
    if (p.orderId === undefined && p.origClientOrderId === undefined) {
      return errorReply(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!");
    }
    const order = this.engine.findOrder(symbol, {
      ...(p.orderId !== undefined ? { orderId: p.orderId } : {}),
      ...(p.origClientOrderId !== undefined ? { clientOrderId: p.origClientOrderId } : {}),
    });
    if (!order || !this.visible(order.orderId)) return errorReply(400, -2013, 'Order does not exist.');
    return { status: 200, body: this.orderJson(order) };
  }

  private cancelOrder(p: Record<string, string>): Reply {
    const { symbol } = this.engine.rulesOf(p.symbol);
    const order = this.engine.findOrder(symbol, {
      ...(p.orderId !== undefined ? { orderId: p.orderId } : {}),
      ...(p.origClientOrderId !== undefined ? { clientOrderId: p.origClientOrderId } : {}),
    });
    if (!order || order.status !== 'NEW') return errorReply(400, -2011, 'Unknown order sent.');
    order.status = 'CANCELED';
    order.updateTime = this.clock();
    return { status: 200, body: this.orderJson(order) };
  }

  private openOrders(p: Record<string, string>): Reply {
    const symbol = p.symbol === undefined ? undefined : this.engine.rulesOf(p.symbol).symbol;
    const rows = this.engine.orders.filter(
      (o) => o.status === 'NEW' && (symbol === undefined || o.symbol === symbol) && this.visible(o.orderId),
    );
    return { status: 200, body: rows.map((o) => this.orderJson(o)) };
  }

  private createAlgoOrder(p: Record<string, string>): Reply {
    const algo = this.engine.placeAlgoOrder(p, this.clock());
    this.createdAt.set(algo.algoId, Date.now());
    return { status: 200, body: this.algoJson(algo) };
  }

  private findAlgo(p: Record<string, string>): AlgoOrder | undefined {
    const { symbol } = this.engine.rulesOf(p.symbol);
    if (p.algoId === undefined && p.clientAlgoId === undefined) return undefined;
    return this.engine.findAlgo(symbol, {
      ...(p.algoId !== undefined ? { algoId: p.algoId } : {}),
      ...(p.clientAlgoId !== undefined ? { clientAlgoId: p.clientAlgoId } : {}),
    });
  }

  private getAlgoOrder(p: Record<string, string>): Reply {
    const algo = this.findAlgo(p);
    if (!algo || !this.visible(algo.algoId)) return errorReply(400, -2013, 'Order does not exist.');
    return { status: 200, body: this.algoJson(algo) };
  }

  private cancelAlgoOrder(p: Record<string, string>): Reply {
    const algo = this.findAlgo(p);
    if (!algo) return errorReply(400, -2011, 'Unknown order sent.');
    this.engine.cancelAlgo(algo, this.clock());
    return { status: 200, body: { algoId: algo.algoId, clientAlgoId: algo.clientAlgoId, code: '200', msg: 'success' } };
  }

  private openAlgoOrders(p: Record<string, string>): Reply {
    const symbol = p.symbol === undefined ? undefined : this.engine.rulesOf(p.symbol).symbol;
    const rows = this.engine.algoOrders.filter(
      (a) => a.algoStatus === 'NEW' && (symbol === undefined || a.symbol === symbol) && this.visible(a.algoId),
    );
    return { status: 200, body: rows.map((a) => this.algoJson(a)) };
  }

  /** Time window of history endpoints: [startTime, endTime], at most 7 days, default the last 7 days. */
  private window(p: Record<string, string>): { from: number; to: number } | Reply {
    const now = this.clock();
    const start = this.fromWire(p.startTime);
    const end = this.fromWire(p.endTime);
    const to = end ?? (start !== undefined ? Math.min(now, start + WEEK_MS) : now);
    const from = start ?? to - WEEK_MS;
    if (from > to) return errorReply(400, -1023, 'Start time is greater than end time.');
    if (to - from > WEEK_MS) return errorReply(400, -1127, 'More than 7 days between startTime and endTime.');
    return { from, to };
  }

  private userTrades(p: Record<string, string>): Reply {
    const { symbol } = this.engine.rulesOf(p.symbol);
    const limit = Math.min(Math.max(Number(p.limit ?? 500), 1), 1000);
    let rows = this.engine.trades.filter((t) => t.symbol === symbol);
    if (p.orderId !== undefined) {
      rows = rows.filter((t) => String(t.orderId) === p.orderId);
    } else if (p.fromId !== undefined) {
      rows = rows.filter((t) => t.id >= Number(p.fromId));
    } else {
      const w = this.window(p);
      if ('status' in w) return w;
      rows = rows.filter((t) => t.time >= w.from && t.time <= w.to);
    }
    return {
      status: 200,
      body: rows.slice(0, limit).map((t) => ({
        buyer: t.side === 'BUY',
        commission: str(t.commission),
        commissionAsset: 'USDT',
        id: t.id,
        maker: false,
        orderId: t.orderId,
        price: str(t.price),
        qty: str(t.qty),
        quoteQty: str(t.quoteQty),
        realizedPnl: str(t.realizedPnl),
        side: t.side,
        positionSide: 'BOTH',
        symbol: t.symbol,
        time: this.toWire(t.time),
      })),
    };
  }

  private incomeHistory(p: Record<string, string>): Reply {
    const symbol = p.symbol === undefined ? undefined : this.engine.rulesOf(p.symbol).symbol;
    const limit = Math.min(Math.max(Number(p.limit ?? 100), 1), 1000);
    const now = this.clock();
    const start = this.fromWire(p.startTime);
    const end = this.fromWire(p.endTime);
    // Binance: without startTime and endTime, the last 7 days; the range itself is not limited to 7 days here
    const from = start ?? (end ?? now) - WEEK_MS;
    const to = end ?? now;
    const rows = this.engine.income.filter(
      (r) =>
        (symbol === undefined || r.symbol === symbol) &&
        (p.incomeType === undefined || r.incomeType === p.incomeType) &&
        r.time >= from &&
        r.time <= to,
    );
    const page = Math.max(1, Number(p.page ?? 1));
    return {
      status: 200,
      body: rows.slice((page - 1) * limit, page * limit).map((r) => ({
        symbol: r.symbol,
        incomeType: r.incomeType,
        income: str(r.income),
        asset: 'USDT',
        info: r.incomeType === 'FUNDING_FEE' ? 'FUNDING_FEE' : r.tradeId,
        time: this.toWire(r.time),
        tranId: r.tranId,
        tradeId: r.tradeId,
      })),
    };
  }
}

/** A simplified isolated liquidation price (maintenance ratio 0.4 % on the entry notional), for position risk. */
function liquidationPrice(amount: number, entryPrice: number, leverage: number): number {
  const mmr = 0.004;
  const price =
    amount > 0 ? (entryPrice * (1 - 1 / leverage)) / (1 - mmr) : (entryPrice * (1 + 1 / leverage)) / (1 + mmr);
  return Math.round(price * 100) / 100;
}
