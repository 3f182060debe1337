/**
 * A local HTTP server that answers the public Binance USDⓈ-M market-data endpoints ccxt's `binanceusdm` uses for a
 * download (`exchangeInfo`, `klines`, `fundingRate`) from the RECORDED data in ../shared/data, so that
 * `llm-trader download-data` runs offline against real prices. Point ccxt at it with the config's
 * `exchange.ccxt_options` ({@link ccxtOptionsFor}).
 *
 * The recorded data ends in 2025; a download asks for "the last N days before now". So the server shifts every
 * recorded time forward by `shiftMs` (whole days, so candles stay on their grid): the recorded data then ends
 * `endsAgoMs` before now. Rows are served like Binance: `startTime` inclusive, at most `limit` rows, oldest first.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

const EXCHANGE_INFO_FILE = new URL('../fixtures/binanceusdm-exchange-info.json', import.meta.url);
const DAY_MS = 86_400_000;
const INTERVALS: Record<string, number> = { '30m': 1_800_000, '1h': 3_600_000, '1d': DAY_MS };

function csvRows(file: string): number[][] {
  return gunzipSync(readFileSync(file))
    .toString('utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(',').map(Number));
}

export class RecordedBinanceServer {
  /** every request, as `<path>?<query>` */
  readonly requests: URL[] = [];
  readonly shiftMs: number;
  #server: Server | null = null;
  #port = 0;
  readonly #exchangeInfo = readFileSync(EXCHANGE_INFO_FILE, 'utf8');
  readonly #cache = new Map<string, number[][]>();

  /**
   * @param dataDir the recorded data, e.g. ../shared/data/binanceusdm
   * @param now the time the download will run at (Date.now())
   * @param endsAgoMs how long before `now` the shifted data ends (its last 30m candle closes), rounded to whole days
   * @param symbols Binance ids served, e.g. `['BTCUSDT']` (others answer "Invalid symbol")
   * @param dropCandles shifted open times of 30m candles to leave out (a gap in the exchange's history)
   */
  constructor(
    readonly dataDir: string,
    now: number,
    endsAgoMs: number,
    readonly symbols: readonly string[],
    readonly dropCandles: ReadonlySet<number> = new Set(),
  ) {
    const last = csvRows(this.#file('BTCUSDT', '30m')).at(-1)![0]! + INTERVALS['30m']!;
    this.shiftMs = Math.floor((now - endsAgoMs - last) / DAY_MS) * DAY_MS;
  }

  #file(symbol: string, series: string): string {
    return join(this.dataDir, `${symbol.replace(/USDT$/, '')}_USDT_USDT-${series}.csv.gz`);
  }

  #rows(symbol: string, series: string): number[][] {
    const key = `${symbol} ${series}`;
    let rows = this.#cache.get(key);
    if (!rows) {
      rows = csvRows(this.#file(symbol, series)).map(([t, ...rest]) => [t! + this.shiftMs, ...rest]);
      this.#cache.set(key, rows);
    }
    return rows;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      this.requests.push(url);
      const reply = this.#route(url);
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.#server = null;
  }

  /** `exchange.ccxt_options` that send ccxt's public futures requests here. */
  ccxtOptions(): Record<string, unknown> {
    const base = `http://127.0.0.1:${this.#port}`;
    return {
      urls: {
        api: {
          fapiPublic: `${base}/fapi/v1`,
          fapiPublicV2: `${base}/fapi/v2`,
          fapiPublicV3: `${base}/fapi/v3`,
          fapiData: `${base}/futures/data`,
        },
      },
    };
  }

  /** Requests to one path, e.g. `/fapi/v1/klines`. */
  requestsTo(path: string): URL[] {
    return this.requests.filter((u) => u.pathname === path);
  }

  #route(url: URL): { status: number; body: unknown } {
    const q = url.searchParams;
    const symbol = q.get('symbol') ?? '';
    if (url.pathname === '/fapi/v1/exchangeInfo') return { status: 200, body: this.#exchangeInfo };
    if (url.pathname !== '/fapi/v1/klines' && url.pathname !== '/fapi/v1/fundingRate') {
      return { status: 404, body: { code: -1, msg: `not served: ${url.pathname}` } };
    }
    if (!this.symbols.includes(symbol)) return { status: 400, body: { code: -1121, msg: 'Invalid symbol.' } };
    const limit = Math.min(Number(q.get('limit') ?? 500), 1500);
    const start = Number(q.get('startTime') ?? 0);
    if (url.pathname === '/fapi/v1/klines') {
      const interval = q.get('interval') ?? '';
      const ms = INTERVALS[interval];
      if (ms === undefined) return { status: 400, body: { code: -1120, msg: 'Invalid interval.' } };
      const rows = this.#rows(symbol, interval)
        .filter(([t]) => t! >= start && !(interval === '30m' && this.dropCandles.has(t!)))
        .slice(0, limit);
      return {
        status: 200,
        body: rows.map(([t, o, h, l, c, v]) => [t, String(o), String(h), String(l), String(c), String(v), t! + ms - 1]),
      };
    }
    const rows = this.#rows(symbol, 'funding-8h')
      .filter(([t]) => t! >= start)
      .slice(0, limit);
    return {
      status: 200,
      body: rows.map(([t, rate]) => ({ symbol, fundingTime: t, fundingRate: String(rate), markPrice: '0' })),
    };
  }
}
