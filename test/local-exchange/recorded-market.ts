/**
 * The market the local exchange trades on: recorded Binance USDⓈ-M candles, funding rates and mark prices (the
 * ../shared/data layout), read once through the project's own {@link RecordedMarketSource}.
 *
 * What the exchange knows at market time `t` (Unix ms, recorded time):
 * - the candles that have CLOSED at `t`, and of the candle still forming, only what is known at `t`: its open, and for
 *   timeframes above 30m the 30m candles inside it that have closed (see {@link RecordedMarket.formingCandle});
 * - the last traded price: the close of the last 30m candle closed at `t` ({@link RecordedMarket.lastPrice}), which is
 *   also the decision price a cycle at that close sees, so a market order sent right after a close fills where the
 *   paper exchange fills it;
 * - the funding events up to `t`, each settled at the recorded mark price at its time (the open of the 8h mark
 *   candle starting there; the last price when no mark candle starts there).
 * Nothing after `t` is ever served: the 30m data is the finest recorded, and the path of prices inside a candle is
 * unknown.
 */
import { listDataFiles } from '../../src/store/data-files';
import { readCandleCsv } from '../../src/store/csv-candles';
import { RecordedMarketSource, csvRecordedData } from '../../src/exchange/market-source';
import { closedCount, timeframeMs } from '../../src/core/timeframe';
import { upperBoundByTime, type FundingEvent } from '../../src/core/snapshot';
import type { Candle } from '../../src/core/types';

/** The timeframe whose candles drive the matching engine (stops, funding, the last price). */
export const BASE_TIMEFRAME = '30m';
export const BASE_MS = timeframeMs(BASE_TIMEFRAME);

/** Kline intervals the local exchange serves: the recorded ones, and 4h aggregated from 1h. */
export const SERVED_INTERVALS = ['30m', '1h', '4h', '1d'] as const;

export interface RecordedSymbol {
  /** exchange id, e.g. `BTCUSDT` */
  symbol: string;
  /** ccxt symbol, e.g. `BTC/USDT:USDT` */
  pair: string;
}

interface SymbolData {
  candles: Map<string, readonly Candle[]>;
  funding: readonly FundingEvent[];
  /** open price of the mark-price candle starting at each time */
  markOpens: Map<number, number>;
}

export class RecordedMarket {
  private constructor(
    readonly dir: string,
    private readonly data: Map<string, SymbolData>,
  ) {}

  /**
   * Loads every served interval, the funding events and the mark prices of `symbols` from `dir`.
   * @throws Error naming the file or pair when a symbol has no 30m candles in `dir`
   */
  static async load(dir: string, symbols: readonly RecordedSymbol[]): Promise<RecordedMarket> {
    const source = new RecordedMarketSource(csvRecordedData(dir));
    const { files } = await listDataFiles(dir);
    const data = new Map<string, SymbolData>();
    for (const { symbol, pair } of symbols) {
      const candles = new Map<string, readonly Candle[]>();
      for (const interval of SERVED_INTERVALS) {
        try {
          candles.set(interval, await source.history(pair, interval));
        } catch (err) {
          if (interval === BASE_TIMEFRAME) {
            throw new Error(`local exchange: ${symbol} (${pair}) has no ${BASE_TIMEFRAME} candles in ${dir}`, {
              cause: err,
            });
          }
        }
      }
      const markOpens = new Map<number, number>();
      const markFile = files.find(
        (f) => f.symbol === pair && f.content.kind === 'candles' && f.content.priceType === 'mark',
      );
      if (markFile) for (const c of await readCandleCsv(markFile.path)) markOpens.set(c.time, c.open);
      data.set(symbol, { candles, funding: await source.fundingHistory(pair), markOpens });
    }
    return new RecordedMarket(dir, data);
  }

  get symbols(): string[] {
    return [...this.data.keys()];
  }

  has(symbol: string): boolean {
    return this.data.has(symbol);
  }

  /** First and last instant at which a 30m price is known for every symbol (recorded time). */
  span(): { start: number; end: number } {
    let start = Number.NEGATIVE_INFINITY;
    let end = Number.POSITIVE_INFINITY;
    for (const d of this.data.values()) {
      const base = d.candles.get(BASE_TIMEFRAME)!;
      start = Math.max(start, base[0]!.time + BASE_MS);
      end = Math.min(end, base.at(-1)!.time + BASE_MS);
    }
    return { start, end };
  }

  private symbolData(symbol: string): SymbolData {
    const d = this.data.get(symbol);
    if (!d) throw new Error(`local exchange: no recorded data for ${symbol}`);
    return d;
  }

  /** Every recorded candle of `interval` (oldest first), or undefined when the interval is not served. */
  candles(symbol: string, interval: string): readonly Candle[] | undefined {
    return this.symbolData(symbol).candles.get(interval);
  }

  /**
   * The candle of `interval` opened at `open` and still forming at `t`, as known at `t`: open = its recorded open,
   * high/low/close/volume from the 30m candles inside it that have closed at `t` (and the open), or null when no such
   * candle is recorded.
   */
  formingCandle(symbol: string, interval: string, open: number, t: number): Candle | null {
    const all = this.candles(symbol, interval);
    const index = all ? upperBoundByTime(all, open) - 1 : -1;
    const candle = all?.[index];
    if (!candle || candle.time !== open) return null;
    const base = this.symbolData(symbol).candles.get(BASE_TIMEFRAME)!;
    let high = candle.open;
    let low = candle.open;
    let close = candle.open;
    let volume = 0;
    for (let i = upperBoundByTime(base, open - 1); i < base.length && base[i]!.time + BASE_MS <= t; i++) {
      const c = base[i]!;
      high = Math.max(high, c.high);
      low = Math.min(low, c.low);
      close = c.close;
      volume += c.volume;
    }
    return { time: open, open: candle.open, high, low, close, volume };
  }

  /** 30m candles of `symbol` whose close time is in (`from`, `to`], oldest first. */
  closedBetween(symbol: string, from: number, to: number): readonly Candle[] {
    const base = this.symbolData(symbol).candles.get(BASE_TIMEFRAME)!;
    return base.slice(closedCount(base, BASE_MS, from), closedCount(base, BASE_MS, to));
  }

  /**
   * The last traded price at `t`: the close of the last 30m candle closed at `t`.
   * @throws Error when `t` is before the first or after the last recorded candle (the market is closed there)
   */
  lastPrice(symbol: string, t: number): number {
    const base = this.symbolData(symbol).candles.get(BASE_TIMEFRAME)!;
    const n = closedCount(base, BASE_MS, t);
    const last = base[n - 1];
    if (last === undefined || t - (last.time + BASE_MS) >= BASE_MS) {
      throw new MarketClosedError(symbol, t, this.span());
    }
    return last.close;
  }

  /** Funding events of `symbol` with `from < time <= to`. */
  fundingBetween(symbol: string, from: number, to: number): readonly FundingEvent[] {
    const events = this.symbolData(symbol).funding;
    return events.slice(upperBoundByTime(events, from), upperBoundByTime(events, to));
  }

  /** The funding event in force at `t` (the last one at or before it), or undefined. */
  fundingAt(symbol: string, t: number): FundingEvent | undefined {
    const events = this.symbolData(symbol).funding;
    return events[upperBoundByTime(events, t) - 1];
  }

  /** The mark price at funding time `t`: the recorded mark candle opening there, else the last price. */
  markAt(symbol: string, t: number): number {
    return this.symbolData(symbol).markOpens.get(t) ?? this.lastPrice(symbol, t);
  }
}

/** The market clock is outside the recorded data: nothing can be priced. */
export class MarketClosedError extends Error {
  constructor(symbol: string, t: number, span: { start: number; end: number }) {
    super(
      `local exchange: no recorded price of ${symbol} at ${new Date(t).toISOString()}; the recorded market spans ` +
        `${new Date(span.start).toISOString()} to ${new Date(span.end).toISOString()}`,
    );
    this.name = 'MarketClosedError';
  }
}
