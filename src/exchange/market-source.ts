/**
 * Market data as the decision cycle asks for it: "the last N candles closed at `asOf`" and "funding known at `asOf`".
 *
 * - {@link RecordedMarketSource}: recorded data (CSV files in the ../shared/data layout, or the SQLite candle store),
 *   for backtests and replay. Loads each pair × timeframe once and keeps it in memory.
 * - {@link LiveMarketSource}: over the {@link Exchange} port, for live and paper trading.
 *
 * HARD RULE, for every source: a candle is returned only when it has CLOSED at `asOf`, i.e. its close time
 * (`time + timeframe length`) is <= `asOf`. The candle still forming at `asOf` is never returned.
 *
 * Times are Unix milliseconds, UTC; a candle's `time` is its open time.
 */
import {
  buildPairSeriesCache,
  fundingAt,
  upperBoundByTime,
  type FundingEvent,
  type PairSeriesCache,
} from '../core/snapshot';
import { aggregateCandles, closedCount, lastClosedCandleOpen, timeframeMs } from '../core/timeframe';
import type { Candle, FundingInfo } from '../core/types';
import type { CandleStore } from '../store/candle-store';
import { readCandleCsv, readFundingCsv } from '../store/csv-candles';
import { DATA_FILE_PATTERNS, listDataFiles, type DataFile } from '../store/data-files';
import type { Exchange } from './port';

const MINUTE_MS = 60_000;

export interface MarketSource {
  /**
   * The last `count` candles of `pair` and `timeframe` closed at `asOf` (close time <= `asOf`), oldest first.
   * Fewer when less history exists before `asOf`; none when `count` is 0.
   * @throws Error when `count` is not an integer >= 0 or `timeframe` is not a timeframe such as `30m`.
   */
  candles(pair: string, timeframe: string, asOf: number, count: number): Promise<Candle[]>;

  /** The funding rate known at `asOf` and the time of its funding event; fields null when unknown. */
  funding(pair: string, asOf: number): Promise<FundingInfo>;

  /**
   * Funding events of `pair` with `from < time <= to` (Unix ms, times rounded down to the minute), oldest first:
   * the payments a position held over (from, to] is charged or credited.
   */
  fundingBetween(pair: string, from: number, to: number): Promise<FundingEvent[]>;
}

/** Where recorded data comes from. Candles sorted by open time, unique, aligned; funding sorted by time. */
export interface RecordedData {
  /** for error messages, e.g. `CSV folder /data/binanceusdm` */
  readonly description: string;
  /** the traded-price timeframes recorded for `pair` (e.g. `['1d', '1h', '30m']`); empty when the pair is unknown */
  timeframes(pair: string): Promise<string[]>;
  /**
   * every recorded candle of `pair` at `timeframe` (one of {@link timeframes}), oldest first: new objects with the
   * {@link Candle} fields only, which the caller takes over ({@link RecordedMarketSource} freezes them in place)
   */
  loadCandles(pair: string, timeframe: string): Promise<Candle[]>;
  /** every recorded funding event of `pair`, oldest first; empty when none is recorded */
  loadFunding(pair: string): Promise<FundingEvent[]>;
}

/**
 * Recorded data read from a folder of CSV files in the ../shared/data layout (`BTC_USDT_USDT-30m.csv.gz`, ...; see
 * src/store/data-files.ts). The folder is listed once, on first use. Files are read strictly: a malformed row
 * throws with file and line (use `llm-trader import-data` to find and skip such rows).
 */
export function csvRecordedData(dir: string): RecordedData {
  let listing: Promise<DataFile[]> | null = null;
  const files = (): Promise<DataFile[]> => {
    listing ??= listDataFiles(dir).then(
      (l) => l.files,
      (err: unknown) => {
        listing = null;
        throw new Error(`cannot list recorded data in ${dir}: ${String(err)}; check replay.data / the data folder`, {
          cause: err,
        });
      },
    );
    return listing;
  };
  // With both `x.csv` and `x.csv.gz` present, the listing is sorted by name and the last one (`.csv.gz`) wins.
  const find = async (pair: string, match: (f: DataFile) => boolean): Promise<DataFile | undefined> =>
    (await files()).filter((f) => f.symbol === pair && match(f)).at(-1);
  return {
    description: `CSV folder ${dir}`,
    async timeframes(pair) {
      const tfs = (await files()).flatMap((f) =>
        f.symbol === pair && f.content.kind === 'candles' && f.content.priceType === 'trade'
          ? [f.content.timeframe]
          : [],
      );
      return [...new Set(tfs)];
    },
    async loadCandles(pair, timeframe) {
      const file = await find(
        pair,
        (f) => f.content.kind === 'candles' && f.content.priceType === 'trade' && f.content.timeframe === timeframe,
      );
      if (!file) throw new Error(`no ${timeframe} candle file for ${pair} in ${dir}`);
      return readCandleCsv(file.path);
    },
    async loadFunding(pair) {
      const file = await find(pair, (f) => f.content.kind === 'funding');
      return file ? readFundingCsv(file.path) : [];
    },
  };
}

/**
 * Recorded data read from the SQLite {@link CandleStore}, filed under `exchange` (e.g. `binanceusdm`). A pair's
 * series are listed once, on first use (as a CSV folder is; the candles are loaded once too, by the market source):
 * the listing is a scan of the pair's rows, and a backtest asks for it once per timeframe and pair.
 */
export function storeRecordedData(store: CandleStore, exchange: string): RecordedData {
  const listed = new Map<string, string[]>();
  return {
    description: `candle database ${store.file} (exchange ${exchange})`,
    timeframes: (pair) => {
      let tfs = listed.get(pair);
      if (tfs === undefined) {
        tfs = store
          .seriesOf(exchange, pair)
          .filter((s) => s.priceType === 'trade')
          .map((s) => s.timeframe);
        listed.set(pair, tfs);
      }
      return Promise.resolve([...tfs]);
    },
    loadCandles: (pair, timeframe) => Promise.resolve(store.allCandles(exchange, pair, timeframe)),
    loadFunding: (pair) => Promise.resolve(store.allFunding(exchange, pair)),
  };
}

/**
 * Serves recorded candles and funding as they were known at any `asOf`.
 * - Each pair × timeframe is loaded once and kept in memory (frozen candles, shared between callers).
 * - A timeframe that is not recorded is aggregated from the largest recorded timeframe that divides it (4h from 1h
 *   in the ../shared/data set), keeping only complete candles.
 * - At an `asOf` beyond the recorded data, where the candle that should have closed last is not recorded, it throws
 *   rather than serve stale candles as current.
 * Lookups are binary searches: O(log n + count).
 */
export class RecordedMarketSource implements MarketSource {
  private readonly series = new Map<string, Promise<readonly Candle[]>>();
  private readonly fundingEvents = new Map<string, Promise<readonly FundingEvent[]>>();
  private readonly caches = new Map<string, Promise<PairSeriesCache>>();

  constructor(readonly data: RecordedData) {}

  /**
   * {@inheritDoc MarketSource.candles}
   * @throws Error when the pair has no data for `timeframe` (nor a finer timeframe to aggregate from), or when
   *   `asOf` is past the end of the recorded data (the latest candle closed at `asOf` is not recorded).
   */
  async candles(pair: string, timeframe: string, asOf: number, count: number): Promise<Candle[]> {
    checkCount(count);
    const ms = timeframeMs(timeframe);
    const all = await this.history(pair, timeframe);
    const n = closedCount(all, ms, asOf);
    const last = all.at(-1);
    if (last !== undefined && lastClosedCandleOpen(asOf, timeframe) > last.time) {
      throw new Error(
        `${pair} ${timeframe}: no recorded candle for ${iso(asOf)}: the ${this.data.description} ends with the ` +
          `candle closing at ${iso(last.time + ms)}. Keep backtests and replays inside the recorded range, or ` +
          'import/download more data.',
      );
    }
    return all.slice(Math.max(0, n - count), n);
  }

  /** The latest recorded funding event at or before `asOf`; `{ rate: null, time: null }` before the first one. */
  async funding(pair: string, asOf: number): Promise<FundingInfo> {
    return fundingAt(await this.fundingHistory(pair), asOf);
  }

  /** {@inheritDoc MarketSource.fundingBetween} */
  async fundingBetween(pair: string, from: number, to: number): Promise<FundingEvent[]> {
    const events = await this.fundingHistory(pair);
    return events.slice(upperBoundByTime(events, from), upperBoundByTime(events, to));
  }

  /**
   * Every recorded (or aggregated) candle of `pair` at `timeframe`, oldest first, frozen. Loaded on first use.
   * For iterating a backtest over the recorded range; candles after an `asOf` are the caller's to ignore.
   */
  history(pair: string, timeframe: string): Promise<readonly Candle[]> {
    return memo(this.series, `${pair} ${timeframe}`, () => this.loadSeries(pair, timeframe));
  }

  /** Every recorded funding event of `pair`, oldest first, frozen. Loaded on first use. */
  fundingHistory(pair: string): Promise<readonly FundingEvent[]> {
    return memo(this.fundingEvents, pair, async () =>
      Object.freeze((await this.data.loadFunding(pair)).map((e) => Object.freeze({ time: e.time, rate: e.rate }))),
    );
  }

  /**
   * The precomputed indicator series of `pair` over the whole recorded history (for `snapshotAt`), built once per
   * (pair, main timeframe, informative timeframes).
   */
  seriesCache(pair: string, mainTimeframe: string, informative: readonly string[]): Promise<PairSeriesCache> {
    const timeframes = [mainTimeframe, ...informative.filter((tf) => tf !== mainTimeframe)];
    return memo(this.caches, `${pair} ${timeframes.join(',')}`, async () => {
      const candles: Record<string, readonly Candle[]> = {};
      for (const tf of timeframes) candles[tf] = await this.history(pair, tf);
      return buildPairSeriesCache({ pair, mainTimeframe, candles, funding: await this.fundingHistory(pair) });
    });
  }

  private async loadSeries(pair: string, timeframe: string): Promise<readonly Candle[]> {
    const ms = timeframeMs(timeframe);
    const recorded = await this.data.timeframes(pair);
    if (recorded.includes(timeframe)) return freezeAll(await this.data.loadCandles(pair, timeframe));
    const source = recorded
      .filter((tf) => timeframeMs(tf) < ms && ms % timeframeMs(tf) === 0)
      .sort((a, b) => timeframeMs(b) - timeframeMs(a))[0];
    if (source === undefined) {
      throw new Error(
        `${pair}: no ${timeframe} candles in the ${this.data.description}` +
          (recorded.length > 0
            ? ` and no finer recorded timeframe to aggregate them from (recorded: ${recorded.join(', ')})`
            : `: the pair has no candle data there. Expected file names:\n${DATA_FILE_PATTERNS.map((p) => `  ${p}`).join('\n')}`),
      );
    }
    return freezeAll(aggregateCandles(await this.history(pair, source), source, timeframe));
  }
}

/**
 * Market data from an exchange (live and paper modes), through the {@link Exchange} port.
 * Candles: fetched per call (the port pages through the exchange's limit) and filtered again so that nothing
 * closing after `asOf` gets through even if the exchange returns it. When the exchange has not yet published the
 * candle that closed at `asOf`, the result ends one candle earlier; compare the last `time` when that matters.
 * Funding: the exchange's current rate (on Binance: the predicted rate of the NEXT funding event, with its time),
 * which is what a live trader can know; recorded sources give the last settled event instead.
 */
export class LiveMarketSource implements MarketSource {
  constructor(
    private readonly exchange: Pick<Exchange, 'fetchClosedCandles' | 'fetchFundingRate' | 'fetchFundingRateHistory'>,
  ) {}

  /** {@inheritDoc MarketSource.candles} */
  async candles(pair: string, timeframe: string, asOf: number, count: number): Promise<Candle[]> {
    checkCount(count);
    const ms = timeframeMs(timeframe);
    if (count === 0) return [];
    const since = lastClosedCandleOpen(asOf, timeframe) - (count - 1) * ms;
    const fetched = await this.exchange.fetchClosedCandles(pair, timeframe, since, asOf);
    const closed = fetched.filter((c) => c.time >= since && c.time + ms <= asOf).sort((a, b) => a.time - b.time);
    return closed.slice(Math.max(0, closed.length - count));
  }

  /** The exchange's current funding rate; `asOf` is not used (the live rate is the one known now). */
  async funding(pair: string, _asOf: number): Promise<FundingInfo> {
    return this.exchange.fetchFundingRate(pair);
  }

  /** {@inheritDoc MarketSource.fundingBetween} Event times are rounded down to the minute, as in recorded data. */
  async fundingBetween(pair: string, from: number, to: number): Promise<FundingEvent[]> {
    const records = await this.exchange.fetchFundingRateHistory(pair, from + 1);
    return records
      .map((r) => ({ time: Math.floor(r.time / MINUTE_MS) * MINUTE_MS, rate: r.rate }))
      .filter((e) => e.time > from && e.time <= to)
      .sort((a, b) => a.time - b.time);
  }
}

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 0) {
    throw new Error(`candle count must be an integer >= 0, got ${count}`);
  }
}

/** Freezes the candles in place (they are the source's own: see {@link RecordedData.loadCandles}) and the array. */
function freezeAll(candles: Candle[]): readonly Candle[] {
  for (const c of candles) Object.freeze(c);
  return Object.freeze(candles);
}

/** Memoises a promise by key; a rejected load is forgotten so the next call tries again. */
function memo<T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  let p = map.get(key);
  if (!p) {
    p = load();
    map.set(key, p);
    p.catch(() => map.delete(key));
  }
  return p;
}

function iso(t: number): string {
  return Number.isFinite(t) && Math.abs(t) <= 8.64e15 ? new Date(t).toISOString() : String(t);
}
