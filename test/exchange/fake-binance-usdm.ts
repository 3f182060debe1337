/**
 * A local fake of the Binance USDⓈ-M futures REST API, for driving the real ccxt `binanceusdm` class offline.
 *
 * ccxt is given `fetchImplementation` = {@link FakeBinanceUsdm.fetchImplementation}, which keeps ccxt's real URL
 * (`https://fapi.binance.com/fapi/v1/order?...`, so ccxt's per-host error tables apply exactly as live) and sends the
 * request to this server on 127.0.0.1 as `/<host>/<path>?<query>`. Nothing leaves the machine: a URL that is not https
 * is refused, and a host or path the fake does not implement is answered 404 and recorded in `unexpected`.
 *
 * The fake keeps a small, consistent account: market orders fill at the symbol's mark price with a 0.05 % taker fee
 * paid from the wallet; positions (one-way mode) carry a weighted entry price; isolated margin is notional / leverage.
 * Response shapes follow Binance's documentation (and the samples quoted in ccxt's binance.js).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';

export const API_KEY = 'fake-api-key-0123456789abcdef';
export const API_SECRET = 'fake-api-secret-fedcba9876543210';

const EXCHANGE_INFO_FILE = new URL('../fixtures/binanceusdm-exchange-info.json', import.meta.url);
export const FAPI_HOSTS = ['fapi.binance.com', 'demo-fapi.binance.com', 'testnet.binancefuture.com'] as const;
export const TAKER_FEE = 0.0005;
/** maintenance margin ratio used for the fake's liquidation prices */
export const MAINT_MARGIN_RATIO = 0.004;
const INTERVAL_MS: Record<string, number> = {
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '30m': 1_800_000,
  '1h': 3_600_000,
  '4h': 14_400_000,
  '1d': 86_400_000,
};
export const FUNDING_INTERVAL_MS = 8 * 3_600_000;

export interface RecordedRequest {
  method: string;
  host: string;
  /** e.g. `/fapi/v1/order` */
  path: string;
  /** query and form-body parameters */
  params: Record<string, string>;
}

/** What the fake does to the next request matching `method` and `path` (consumed once). */
export type Fault =
  | { method: string; path: string; kind: 'error'; status: number; code: number; msg: string }
  /** process the request (state changes), then close the socket without answering: a lost response */
  | { method: string; path: string; kind: 'drop-after' }
  /** process the request, then answer after `delayMs` (longer than the client's timeout) */
  | { method: string; path: string; kind: 'delay-after'; delayMs: number }
  /** answer "Order does not exist" although it exists (a lookup that does not see a fresh order yet) */
  | { method: string; path: string; kind: 'not-found' };

interface FakeOrder {
  orderId: number;
  symbol: string;
  clientOrderId: string;
  side: 'BUY' | 'SELL';
  origQty: string;
  executedQty: string;
  avgPrice: string;
  cumQuote: string;
  status: 'NEW' | 'FILLED' | 'CANCELED';
  reduceOnly: boolean;
  time: number;
  updateTime: number;
}

interface FakeAlgoOrder {
  algoId: number;
  clientAlgoId: string;
  symbol: string;
  side: 'BUY' | 'SELL';
  orderType: string;
  quantity: string;
  triggerPrice: string;
  reduceOnly: boolean;
  algoStatus: 'NEW' | 'CANCELED' | 'TRIGGERED';
  createTime: number;
  updateTime: number;
}

interface FakeTrade {
  id: number;
  orderId: number;
  symbol: string;
  side: 'BUY' | 'SELL';
  price: number;
  qty: number;
  commission: number;
  realizedPnl: number;
  time: number;
}

interface FakePosition {
  /** signed: > 0 long, < 0 short */
  amount: number;
  entryPrice: number;
}

interface Reply {
  status: number;
  body: unknown;
}

/** The candle the fake serves for `openTime` on an interval of `intervalMs` (a simple deterministic zig-zag). */
export function fakeCandle(openTime: number, intervalMs: number): [number, number, number, number, number, number] {
  const k = Math.floor(openTime / intervalMs) % 40;
  const open = 100 + k;
  const close = open + (k % 2 === 0 ? 0.5 : -0.5);
  return [openTime, open, Math.max(open, close) + 1, Math.min(open, close) - 1, close, 10 + k];
}

/** The funding rate the fake reports for the funding event at `time`. */
export function fakeFundingRate(time: number): number {
  const k = Math.floor(time / FUNDING_INTERVAL_MS) % 7;
  return (k - 3) * 0.00005;
}

function error(status: number, code: number, msg: string): Reply {
  return { status, body: { code, msg } };
}

function decimals(step: string): number {
  const dot = step.indexOf('.');
  return dot < 0 ? 0 : step.length - dot - 1;
}

/** `value` is a whole multiple of `step` (both decimal strings), checked on integers to avoid float error */
function isMultipleOf(value: string, step: string): boolean {
  const d = Math.max(decimals(value), decimals(step));
  const scaled = (s: string) => BigInt(Math.round(Number(s) * 10 ** d));
  const v = scaled(value);
  const st = scaled(step);
  return st > 0n && v % st === 0n && Number(value) > 0;
}

export class FakeBinanceUsdm {
  readonly requests: RecordedRequest[] = [];
  /** requests the fake does not implement; a test should assert it stays empty */
  readonly unexpected: string[] = [];
  readonly orders = new Map<string, FakeOrder>();
  readonly algoOrders = new Map<string, FakeAlgoOrder>();
  readonly trades: FakeTrade[] = [];
  readonly positions = new Map<string, FakePosition>();
  readonly marginType = new Map<string, 'ISOLATED' | 'CROSSED'>();
  readonly leverage = new Map<string, number>();
  markPrice: Record<string, number> = { BTCUSDT: 60_000, ETHUSDT: 2_500, SOLUSDT: 150 };
  walletBalance = 10_000;
  /** the fake exchange clock for candles and funding, Unix ms */
  now = Date.UTC(2025, 6, 21, 12, 10);
  /** first funding event the fake knows */
  fundingStart = Date.UTC(2024, 0, 1);

  readonly #exchangeInfo: { symbols: Array<{ symbol: string; filters: Array<Record<string, string>> }> };
  readonly #faults: Fault[] = [];
  #server: Server | null = null;
  #port = 0;
  #nextId = 1000;

  constructor() {
    this.#exchangeInfo = JSON.parse(readFileSync(EXCHANGE_INFO_FILE, 'utf8')) as FakeBinanceUsdm['exchangeInfo'];
  }

  get exchangeInfo(): { symbols: Array<{ symbol: string; filters: Array<Record<string, string>> }> } {
    return this.#exchangeInfo;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.#onRequest(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.#server = null;
  }

  /** Give to ccxt: routes every request to this server, keeping the real URL in the path. */
  readonly fetchImplementation = (input: string, init?: RequestInit): Promise<Response> => {
    const url = new URL(input);
    if (url.protocol !== 'https:') throw new Error(`fake exchange: refusing non-https URL ${input}`);
    return fetch(`http://127.0.0.1:${this.#port}/${url.host}${url.pathname}${url.search}`, init);
  };

  fault(f: Fault): void {
    this.#faults.push(f);
  }

  /** Faults not yet triggered; a test should end with none. */
  get pendingFaults(): readonly Fault[] {
    return this.#faults;
  }

  /** Requests to `path` (any host), optionally only with `method`. */
  requestsTo(path: string, method?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path && (method === undefined || r.method === method));
  }

  #takeFault(method: string, path: string): Fault | undefined {
    const i = this.#faults.findIndex((f) => f.method === method && f.path === path);
    if (i < 0) return undefined;
    return this.#faults.splice(i, 1)[0];
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const local = new URL(req.url ?? '/', 'http://127.0.0.1');
      const [, host = '', ...rest] = local.pathname.split('/');
      const path = `/${rest.join('/')}`;
      const params: Record<string, string> = {};
      for (const [k, v] of local.searchParams) params[k] = v;
      for (const [k, v] of new URLSearchParams(body)) params[k] = v;
      const method = req.method ?? 'GET';
      this.requests.push({ method, host, path, params });
      const fault = this.#takeFault(method, path);
      if (fault?.kind === 'error') {
        this.#send(res, error(fault.status, fault.code, fault.msg));
        return;
      }
      let reply: Reply;
      if (fault?.kind === 'not-found') {
        reply = error(400, -2013, 'Order does not exist.');
      } else if (!(FAPI_HOSTS as readonly string[]).includes(host)) {
        this.unexpected.push(`${method} ${host}${path}`);
        reply = error(404, -1, `fake exchange: unknown host ${host}`);
      } else {
        reply = this.#route(method, path, params, req.headers['x-mbx-apikey']);
      }
      if (fault?.kind === 'drop-after') {
        res.socket?.destroy();
        return;
      }
      if (fault?.kind === 'delay-after') {
        setTimeout(() => this.#send(res, reply), fault.delayMs);
        return;
      }
      this.#send(res, reply);
    });
  }

  #send(res: ServerResponse, reply: Reply): void {
    if (res.destroyed) return;
    res.writeHead(reply.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(reply.body));
  }

  #route(method: string, path: string, p: Record<string, string>, apiKey: string | string[] | undefined): Reply {
    const publicRoutes: Record<string, () => Reply> = {
      'GET /fapi/v1/exchangeInfo': () => ({ status: 200, body: this.#exchangeInfo }),
      'GET /fapi/v1/klines': () => this.#klines(p),
      'GET /fapi/v1/premiumIndex': () => this.#premiumIndex(p),
      'GET /fapi/v1/fundingRate': () => this.#fundingRate(p),
    };
    const privateRoutes: Record<string, () => Reply> = {
      'POST /fapi/v1/marginType': () => this.#setMarginType(p),
      'POST /fapi/v1/leverage': () => this.#setLeverage(p),
      'GET /fapi/v1/order': () => this.#getOrder(p),
      'POST /fapi/v1/order': () => this.#createOrder(p),
      'DELETE /fapi/v1/order': () => this.#cancelOrder(p),
      'GET /fapi/v1/algoOrder': () => this.#getAlgoOrder(p),
      'POST /fapi/v1/algoOrder': () => this.#createAlgoOrder(p),
      'DELETE /fapi/v1/algoOrder': () => this.#cancelAlgoOrder(p),
      'GET /fapi/v1/userTrades': () => this.#userTrades(p),
      'GET /fapi/v1/leverageBracket': () => this.#leverageBracket(),
      'GET /fapi/v3/positionRisk': () => ({ status: 200, body: this.#positionRisk() }),
      'GET /fapi/v3/account': () => this.#account(),
    };
    const key = `${method} ${path}`;
    const publicRoute = publicRoutes[key];
    if (publicRoute) return publicRoute();
    const privateRoute = privateRoutes[key];
    if (privateRoute) {
      if (apiKey !== API_KEY || p.signature === undefined || p.timestamp === undefined) {
        return error(401, -2015, 'Invalid API-key, IP, or permissions for action.');
      }
      return privateRoute();
    }
    this.unexpected.push(key);
    return error(404, -1, `fake exchange: unknown endpoint ${key}`);
  }

  #symbolInfo(symbol: string | undefined) {
    return this.#exchangeInfo.symbols.find((s) => s.symbol === symbol);
  }

  #filter(symbol: string, type: string): Record<string, string> {
    const f = this.#symbolInfo(symbol)?.filters.find((x) => x.filterType === type);
    if (!f) throw new Error(`fixture has no ${type} for ${symbol}`);
    return f;
  }

  #lev(symbol: string): number {
    return this.leverage.get(symbol) ?? 20;
  }

  // --- market data -------------------------------------------------------------------------------------------

  #klines(p: Record<string, string>): Reply {
    if (!this.#symbolInfo(p.symbol)) return error(400, -1121, 'Invalid symbol.');
    const intervalMs = INTERVAL_MS[p.interval ?? ''];
    if (intervalMs === undefined) return error(400, -1120, 'Invalid interval.');
    const limit = Math.min(Number(p.limit ?? 500), 1500);
    const start = Math.ceil(Number(p.startTime ?? this.now - limit * intervalMs) / intervalMs) * intervalMs;
    const rows: unknown[] = [];
    // like Binance: up to and including the candle still forming at `now`
    for (let t = start; t <= this.now && rows.length < limit; t += intervalMs) {
      const [, o, h, l, c, v] = fakeCandle(t, intervalMs);
      rows.push([t, String(o), String(h), String(l), String(c), String(v), t + intervalMs - 1, '0', 1, '0', '0', '0']);
    }
    return { status: 200, body: rows };
  }

  #premiumIndex(p: Record<string, string>): Reply {
    const symbol = p.symbol ?? '';
    if (!this.#symbolInfo(symbol)) return error(400, -1121, 'Invalid symbol.');
    const next = (Math.floor(this.now / FUNDING_INTERVAL_MS) + 1) * FUNDING_INTERVAL_MS;
    return {
      status: 200,
      body: {
        symbol,
        markPrice: String(this.markPrice[symbol]),
        indexPrice: String(this.markPrice[symbol]),
        estimatedSettlePrice: String(this.markPrice[symbol]),
        lastFundingRate: String(fakeFundingRate(next)),
        interestRate: '0.00010000',
        nextFundingTime: next,
        time: this.now,
      },
    };
  }

  #fundingRate(p: Record<string, string>): Reply {
    const symbol = p.symbol ?? '';
    if (!this.#symbolInfo(symbol)) return error(400, -1121, 'Invalid symbol.');
    const limit = Math.min(Number(p.limit ?? 100), 1000);
    const from = Math.max(Number(p.startTime ?? this.fundingStart), this.fundingStart);
    const rows: unknown[] = [];
    const first = Math.ceil(from / FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS;
    for (let t = first; t <= this.now && rows.length < limit; t += FUNDING_INTERVAL_MS) {
      rows.push({ symbol, fundingTime: t, fundingRate: String(fakeFundingRate(t)), markPrice: '100.0' });
    }
    return { status: 200, body: rows };
  }

  // --- settings ----------------------------------------------------------------------------------------------

  #setMarginType(p: Record<string, string>): Reply {
    const symbol = p.symbol ?? '';
    if (!this.#symbolInfo(symbol)) return error(400, -1121, 'Invalid symbol.');
    const wanted = p.marginType === 'ISOLATED' ? 'ISOLATED' : 'CROSSED';
    if ((this.marginType.get(symbol) ?? 'CROSSED') === wanted)
      return error(400, -4046, 'No need to change margin type.');
    if ((this.positions.get(symbol)?.amount ?? 0) !== 0) {
      return error(400, -4048, 'Margin type cannot be changed if there exists position.');
    }
    this.marginType.set(symbol, wanted);
    return { status: 200, body: { code: 200, msg: 'success' } };
  }

  #setLeverage(p: Record<string, string>): Reply {
    const symbol = p.symbol ?? '';
    if (!this.#symbolInfo(symbol)) return error(400, -1121, 'Invalid symbol.');
    const leverage = Number(p.leverage);
    if (!Number.isInteger(leverage) || leverage < 1 || leverage > 125)
      return error(400, -4028, `Leverage ${p.leverage} is not valid`);
    this.leverage.set(symbol, leverage);
    return { status: 200, body: { leverage, maxNotionalValue: '1000000', symbol } };
  }

  // --- orders ------------------------------------------------------------------------------------------------

  #orderJson(o: FakeOrder) {
    return {
      orderId: o.orderId,
      symbol: o.symbol,
      status: o.status,
      clientOrderId: o.clientOrderId,
      price: '0',
      avgPrice: o.avgPrice,
      origQty: o.origQty,
      executedQty: o.executedQty,
      cumQty: o.executedQty,
      cumQuote: o.cumQuote,
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
      time: o.time,
      updateTime: o.updateTime,
    };
  }

  #getOrder(p: Record<string, string>): Reply {
    const o = this.orders.get(`${p.symbol}|${p.origClientOrderId}`);
    if (!o) return error(400, -2013, 'Order does not exist.');
    return { status: 200, body: this.#orderJson(o) };
  }

  #availableBalance(): number {
    const { marginBalance, initialMargin } = this.#totals();
    return marginBalance - initialMargin;
  }

  #createOrder(p: Record<string, string>): Reply {
    const symbol = p.symbol ?? '';
    if (!this.#symbolInfo(symbol)) return error(400, -1121, 'Invalid symbol.');
    const clientOrderId = p.newClientOrderId ?? '';
    if (!/^[.A-Z:/a-z0-9_-]{1,36}$/.test(clientOrderId)) return error(400, -4015, 'Client order id is not valid.');
    if (this.orders.has(`${symbol}|${clientOrderId}`)) return error(400, -4116, 'ClientOrderId is duplicated.');
    if (p.type !== 'MARKET') return error(400, -1116, 'Invalid orderType.');
    const side = p.side === 'SELL' ? 'SELL' : 'BUY';
    const quantity = p.quantity ?? '';
    const lot = this.#filter(symbol, 'MARKET_LOT_SIZE');
    if (!isMultipleOf(quantity, lot.stepSize ?? '1'))
      return error(400, -1111, 'Precision is over the maximum defined for this asset.');
    const qty = Number(quantity);
    if (qty < Number(lot.minQty) || qty > Number(lot.maxQty))
      return error(400, -4005, 'Quantity greater than max quantity.');
    const reduceOnly = p.reduceOnly === 'true';
    const mark = this.markPrice[symbol] ?? 0;
    const position = this.positions.get(symbol) ?? { amount: 0, entryPrice: 0 };
    const signed = side === 'BUY' ? qty : -qty;
    if (
      reduceOnly &&
      (position.amount === 0 ||
        Math.sign(position.amount) === Math.sign(signed) ||
        qty > Math.abs(position.amount) + 1e-12)
    ) {
      return error(400, -2022, 'ReduceOnly Order is rejected.');
    }
    if (!reduceOnly) {
      const minNotional = Number(this.#filter(symbol, 'MIN_NOTIONAL').notional);
      if (qty * mark < minNotional) {
        return error(
          400,
          -4164,
          `Order's notional must be no smaller than ${minNotional} (unless you choose reduce only).`,
        );
      }
      if ((qty * mark) / this.#lev(symbol) + qty * mark * TAKER_FEE > this.#availableBalance()) {
        return error(400, -2019, 'Margin is insufficient.');
      }
    }
    const time = Date.now();
    const orderId = this.#nextId++;
    const commission = qty * mark * TAKER_FEE;
    let realizedPnl = 0;
    if (position.amount === 0 || Math.sign(position.amount) === Math.sign(signed)) {
      const total = Math.abs(position.amount) + qty;
      position.entryPrice = (position.entryPrice * Math.abs(position.amount) + mark * qty) / total;
      position.amount += signed;
    } else {
      const closed = Math.min(qty, Math.abs(position.amount));
      realizedPnl = (mark - position.entryPrice) * closed * Math.sign(position.amount);
      position.amount += signed;
      if (Math.abs(position.amount) < 1e-12) position.amount = 0;
      if (position.amount !== 0 && Math.sign(position.amount) === Math.sign(signed)) position.entryPrice = mark;
      if (position.amount === 0) position.entryPrice = 0;
    }
    this.positions.set(symbol, position);
    this.walletBalance += realizedPnl - commission;
    this.trades.push({ id: this.#nextId++, orderId, symbol, side, price: mark, qty, commission, realizedPnl, time });
    const order: FakeOrder = {
      orderId,
      symbol,
      clientOrderId,
      side,
      origQty: quantity,
      executedQty: quantity,
      avgPrice: String(mark),
      cumQuote: String(qty * mark),
      status: 'FILLED',
      reduceOnly,
      time,
      updateTime: time,
    };
    this.orders.set(`${symbol}|${clientOrderId}`, order);
    return { status: 200, body: this.#orderJson(order) };
  }

  #cancelOrder(p: Record<string, string>): Reply {
    const o = this.orders.get(`${p.symbol}|${p.origClientOrderId}`);
    if (!o || o.status !== 'NEW') return error(400, -2011, 'Unknown order sent.');
    o.status = 'CANCELED';
    o.updateTime = Date.now();
    return { status: 200, body: this.#orderJson(o) };
  }

  #algoJson(a: FakeAlgoOrder) {
    return {
      algoId: a.algoId,
      clientAlgoId: a.clientAlgoId,
      algoType: 'CONDITIONAL',
      orderType: a.orderType,
      symbol: a.symbol,
      side: a.side,
      positionSide: 'BOTH',
      timeInForce: 'GTC',
      quantity: a.quantity,
      algoStatus: a.algoStatus,
      triggerPrice: a.triggerPrice,
      price: '0',
      icebergQuantity: null,
      selfTradePreventionMode: 'EXPIRE_MAKER',
      workingType: 'CONTRACT_PRICE',
      priceMatch: 'NONE',
      closePosition: false,
      priceProtect: false,
      reduceOnly: a.reduceOnly,
      createTime: a.createTime,
      updateTime: a.updateTime,
      triggerTime: 0,
      goodTillDate: 0,
    };
  }

  #createAlgoOrder(p: Record<string, string>): Reply {
    const symbol = p.symbol ?? '';
    if (!this.#symbolInfo(symbol)) return error(400, -1121, 'Invalid symbol.');
    const clientAlgoId = p.clientAlgoId ?? '';
    if (this.algoOrders.has(`${symbol}|${clientAlgoId}`)) return error(400, -4116, 'ClientOrderId is duplicated.');
    if (p.algoType !== 'CONDITIONAL') return error(400, -1102, 'Mandatory parameter algoType was not sent.');
    const tick = this.#filter(symbol, 'PRICE_FILTER').tickSize ?? '1';
    if (!isMultipleOf(p.triggerPrice ?? '', tick))
      return error(400, -1111, 'Precision is over the maximum defined for this asset.');
    if (!isMultipleOf(p.quantity ?? '', this.#filter(symbol, 'LOT_SIZE').stepSize ?? '1')) {
      return error(400, -1111, 'Precision is over the maximum defined for this asset.');
    }
    const time = Date.now();
    const algo: FakeAlgoOrder = {
      algoId: this.#nextId++,
      clientAlgoId,
      symbol,
      side: p.side === 'SELL' ? 'SELL' : 'BUY',
      orderType: p.type ?? '',
      quantity: p.quantity ?? '',
      triggerPrice: p.triggerPrice ?? '',
      reduceOnly: p.reduceOnly === 'true',
      algoStatus: 'NEW',
      createTime: time,
      updateTime: time,
    };
    this.algoOrders.set(`${symbol}|${clientAlgoId}`, algo);
    return { status: 200, body: this.#algoJson(algo) };
  }

  #getAlgoOrder(p: Record<string, string>): Reply {
    const a = this.algoOrders.get(`${p.symbol}|${p.clientAlgoId}`);
    if (!a) return error(400, -2013, 'Order does not exist.');
    return { status: 200, body: this.#algoJson(a) };
  }

  #cancelAlgoOrder(p: Record<string, string>): Reply {
    const a = this.algoOrders.get(`${p.symbol}|${p.clientAlgoId}`);
    if (!a || a.algoStatus !== 'NEW') return error(400, -2011, 'Unknown order sent.');
    a.algoStatus = 'CANCELED';
    a.updateTime = Date.now();
    return { status: 200, body: { algoId: a.algoId, clientAlgoId: a.clientAlgoId, code: '200', msg: 'success' } };
  }

  #userTrades(p: Record<string, string>): Reply {
    const from = Number(p.startTime ?? 0);
    const rows = this.trades
      .filter(
        (t) => t.symbol === p.symbol && t.time >= from && (p.orderId === undefined || String(t.orderId) === p.orderId),
      )
      .map((t) => ({
        buyer: t.side === 'BUY',
        commission: String(t.commission),
        commissionAsset: 'USDT',
        id: t.id,
        maker: false,
        orderId: t.orderId,
        price: String(t.price),
        qty: String(t.qty),
        quoteQty: String(t.price * t.qty),
        realizedPnl: String(t.realizedPnl),
        side: t.side,
        positionSide: 'BOTH',
        symbol: t.symbol,
        time: t.time,
      }));
    return { status: 200, body: rows };
  }

  // --- account -----------------------------------------------------------------------------------------------

  #leverageBracket(): Reply {
    return {
      status: 200,
      body: this.#exchangeInfo.symbols.map((s) => ({
        symbol: s.symbol,
        notionalCoef: 1,
        brackets: [
          {
            bracket: 1,
            initialLeverage: 125,
            notionalCap: 50_000,
            notionalFloor: 0,
            maintMarginRatio: MAINT_MARGIN_RATIO,
            cum: 0,
          },
          {
            bracket: 2,
            initialLeverage: 100,
            notionalCap: 600_000,
            notionalFloor: 50_000,
            maintMarginRatio: 0.005,
            cum: 50,
          },
        ],
      })),
    };
  }

  /** The fake's liquidation price of an isolated position (simplified: maintenance ratio on the entry notional). */
  static liquidationPrice(amount: number, entryPrice: number, leverage: number): number {
    return amount > 0
      ? (entryPrice * (1 - 1 / leverage)) / (1 - MAINT_MARGIN_RATIO)
      : (entryPrice * (1 + 1 / leverage)) / (1 + MAINT_MARGIN_RATIO);
  }

  #positionRisk() {
    const rows = [];
    for (const [symbol, pos] of this.positions) {
      if (pos.amount === 0) continue;
      const mark = this.markPrice[symbol] ?? 0;
      const lev = this.#lev(symbol);
      const notional = pos.amount * mark;
      const unrealized = (mark - pos.entryPrice) * pos.amount;
      const initialMargin = Math.abs(notional) / lev;
      const isolated = (this.marginType.get(symbol) ?? 'CROSSED') === 'ISOLATED';
      const isolatedWallet = isolated ? (Math.abs(pos.amount) * pos.entryPrice) / lev : 0;
      rows.push({
        symbol,
        positionSide: 'BOTH',
        positionAmt: String(pos.amount),
        entryPrice: String(pos.entryPrice),
        breakEvenPrice: String(pos.entryPrice),
        markPrice: String(mark),
        unRealizedProfit: String(unrealized),
        liquidationPrice: String(FakeBinanceUsdm.liquidationPrice(pos.amount, pos.entryPrice, lev)),
        isolatedMargin: String(isolated ? isolatedWallet + unrealized : 0),
        notional: String(notional),
        marginAsset: 'USDT',
        isolatedWallet: String(isolatedWallet),
        initialMargin: String(initialMargin),
        maintMargin: String(Math.abs(notional) * MAINT_MARGIN_RATIO),
        positionInitialMargin: String(initialMargin),
        openOrderInitialMargin: '0',
        adl: 1,
        bidNotional: '0',
        askNotional: '0',
        updateTime: Date.now(),
      });
    }
    return rows;
  }

  #totals(): { unrealized: number; initialMargin: number; marginBalance: number; maintMargin: number } {
    let unrealized = 0;
    let initialMargin = 0;
    let maintMargin = 0;
    for (const [symbol, pos] of this.positions) {
      const mark = this.markPrice[symbol] ?? 0;
      unrealized += (mark - pos.entryPrice) * pos.amount;
      initialMargin += Math.abs(pos.amount * mark) / this.#lev(symbol);
      maintMargin += Math.abs(pos.amount * mark) * MAINT_MARGIN_RATIO;
    }
    return { unrealized, initialMargin, maintMargin, marginBalance: this.walletBalance + unrealized };
  }

  #account(): Reply {
    const { unrealized, initialMargin, maintMargin, marginBalance } = this.#totals();
    const available = marginBalance - initialMargin;
    const usdt = {
      asset: 'USDT',
      walletBalance: String(this.walletBalance),
      unrealizedProfit: String(unrealized),
      marginBalance: String(marginBalance),
      maintMargin: String(maintMargin),
      initialMargin: String(initialMargin),
      positionInitialMargin: String(initialMargin),
      openOrderInitialMargin: '0',
      crossWalletBalance: String(this.walletBalance),
      crossUnPnl: '0',
      availableBalance: String(available),
      maxWithdrawAmount: String(available),
      updateTime: Date.now(),
    };
    return {
      status: 200,
      body: {
        totalInitialMargin: String(initialMargin),
        totalMaintMargin: String(maintMargin),
        totalWalletBalance: String(this.walletBalance),
        totalUnrealizedProfit: String(unrealized),
        totalMarginBalance: String(marginBalance),
        totalPositionInitialMargin: String(initialMargin),
        totalOpenOrderInitialMargin: '0',
        totalCrossWalletBalance: String(this.walletBalance),
        totalCrossUnPnl: '0',
        availableBalance: String(available),
        maxWithdrawAmount: String(available),
        assets: [usdt],
        positions: this.#positionRisk().map((r) => ({
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
}
