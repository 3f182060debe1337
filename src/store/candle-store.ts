/**
 * SQLite store of recorded market data (better-sqlite3, WAL): candles per exchange × symbol × timeframe × price
 * type, and funding-rate events per exchange × symbol.
 *
 * Schema
 * - `candles(exchange, symbol, timeframe, price_type, time, open, high, low, close, volume)`, primary key
 *   `(exchange, symbol, timeframe, price_type, time)`, WITHOUT ROWID (rows are stored in key order, so a range of one
 *   series is one contiguous read). `time` is the candle OPEN time in Unix ms. `price_type` is `trade` for the
 *   ordinary (last-traded-price) candles and `mark` for mark-price candles, which exchanges use for liquidation and
 *   funding; a mark series has its own timeframe (the recorded data has `mark` at `8h`).
 * - `funding(exchange, symbol, time, rate)`, primary key `(exchange, symbol, time)`. `time` in Unix ms rounded down
 *   to the minute (exchanges report funding a few ms past the hour); `rate` is a fraction per funding interval.
 *
 * - `skipped_rows(exchange, symbol, series, count, example, source)`: how many rows the last import or download of a
 *   series skipped as malformed (`series` is the timeframe of trade candles, `mark-<tf>` or `funding`), with one
 *   example problem and where the rows came from; read by the data quality summaries. (Added in a later release:
 *   a database without it reads as "unknown".)
 *
 * Writes are insert-or-ignore (`ON CONFLICT DO NOTHING`): a row that is already stored is kept as it is, so importing
 * or downloading the same data twice adds nothing. Every batch is one transaction.
 * Every error names the database file.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { FundingEvent } from '../core/snapshot';
import type { Candle } from '../core/types';

/** `trade`: candles of the last traded price (what exchanges serve by default); `mark`: mark-price candles. */
export type PriceType = 'trade' | 'mark';

export const PRICE_TYPES: readonly PriceType[] = ['trade', 'mark'];

/** File name of the candle database inside the configured `data_dir`. */
export const CANDLE_DB_FILE = 'candles.sqlite';

/** The candle database path for a config `data_dir`: `<data_dir>/candles.sqlite`, resolved against the cwd. */
export function candleDbPath(dataDir: string): string {
  return resolve(join(dataDir, CANDLE_DB_FILE));
}

/** One stored candle series and its extent. Times are candle OPEN times, Unix ms. */
export interface CandleSeriesSummary {
  exchange: string;
  symbol: string;
  timeframe: string;
  priceType: PriceType;
  count: number;
  first: number;
  last: number;
}

/** One stored funding series and its extent (Unix ms). */
export interface FundingSeriesSummary {
  exchange: string;
  symbol: string;
  count: number;
  first: number;
  last: number;
}

export interface CandleStoreOptions {
  /** open an existing database for reading only (no schema changes); default false */
  readonly?: boolean;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS candles (
  exchange   TEXT    NOT NULL,
  symbol     TEXT    NOT NULL,
  timeframe  TEXT    NOT NULL,
  price_type TEXT    NOT NULL CHECK (price_type IN ('trade', 'mark')),
  time       INTEGER NOT NULL,
  open       REAL    NOT NULL,
  high       REAL    NOT NULL,
  low        REAL    NOT NULL,
  close      REAL    NOT NULL,
  volume     REAL    NOT NULL,
  PRIMARY KEY (exchange, symbol, timeframe, price_type, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS funding (
  exchange TEXT    NOT NULL,
  symbol   TEXT    NOT NULL,
  time     INTEGER NOT NULL,
  rate     REAL    NOT NULL,
  PRIMARY KEY (exchange, symbol, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS skipped_rows (
  exchange TEXT    NOT NULL,
  symbol   TEXT    NOT NULL,
  series   TEXT    NOT NULL,
  count    INTEGER NOT NULL,
  example  TEXT,
  source   TEXT    NOT NULL,
  PRIMARY KEY (exchange, symbol, series)
) WITHOUT ROWID;
`;

/** a candle row as better-sqlite3's raw mode returns it: time, open, high, low, close, volume */
type CandleTuple = [number, number, number, number, number, number];

interface CandleRow {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/**
 * The candle store. Open with `new CandleStore(file)`; close with {@link CandleStore.close}. Methods are synchronous
 * (better-sqlite3). Not shared between threads.
 */
export class CandleStore {
  /** absolute path of the database file */
  readonly file: string;
  private readonly db: Database.Database;
  private readonly stmt: {
    insertCandle: Database.Statement<[string, string, string, string, number, number, number, number, number, number]>;
    insertFunding: Database.Statement<[string, string, number, number]>;
    candles: Database.Statement<[string, string, string, string, number, number], CandleTuple>;
    lastCandles: Database.Statement<[string, string, string, string, number, number], CandleRow>;
    candleExtent: Database.Statement<
      [string, string, string, string],
      { count: number; first: number | null; last: number | null }
    >;
    funding: Database.Statement<[string, string, number, number], FundingEvent>;
    fundingExtent: Database.Statement<[string, string], { count: number; first: number | null; last: number | null }>;
    seriesOf: Database.Statement<[string, string], { timeframe: string; priceType: PriceType }>;
    candleSummary: Database.Statement<[], CandleSeriesSummary>;
    fundingSummary: Database.Statement<[], FundingSeriesSummary>;
  };
  private readonly insertCandleBatch: (
    exchange: string,
    symbol: string,
    timeframe: string,
    priceType: PriceType,
    candles: readonly Candle[],
  ) => number;
  private readonly insertFundingBatch: (exchange: string, symbol: string, events: readonly FundingEvent[]) => number;

  /**
   * Opens (and, unless read-only, creates) the database at `file`, creating its directory when needed.
   * @throws Error naming the file when it cannot be opened or is not a candle database.
   */
  constructor(file: string, options: CandleStoreOptions = {}) {
    this.file = resolve(file);
    const readonly = options.readonly === true;
    try {
      if (!readonly) mkdirSync(dirname(this.file), { recursive: true });
      this.db = new Database(this.file, { readonly, fileMustExist: readonly });
      if (!readonly) {
        this.db.pragma('journal_mode = WAL');
        this.db.pragma('synchronous = NORMAL');
        this.db.exec(SCHEMA);
      }
    } catch (err) {
      throw this.failure(
        readonly ? 'cannot open the candle database for reading (import or download data first)' : 'cannot open',
        err,
      );
    }
    try {
      this.stmt = {
        insertCandle: this.db.prepare(
          `INSERT INTO candles (exchange, symbol, timeframe, price_type, time, open, high, low, close, volume)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
        ),
        insertFunding: this.db.prepare(
          'INSERT INTO funding (exchange, symbol, time, rate) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
        ),
        // raw rows (arrays): better-sqlite3 makes them faster than objects, which it gives out-of-object properties
        candles: this.db
          .prepare<[string, string, string, string, number, number], CandleTuple>(
            `SELECT time, open, high, low, close, volume FROM candles
             WHERE exchange = ? AND symbol = ? AND timeframe = ? AND price_type = ? AND time >= ? AND time <= ?
             ORDER BY time`,
          )
          .raw(true),
        lastCandles: this.db.prepare(
          `SELECT time, open, high, low, close, volume FROM candles
           WHERE exchange = ? AND symbol = ? AND timeframe = ? AND price_type = ? AND time <= ?
           ORDER BY time DESC LIMIT ?`,
        ),
        candleExtent: this.db.prepare(
          `SELECT count(*) AS count, min(time) AS first, max(time) AS last FROM candles
           WHERE exchange = ? AND symbol = ? AND timeframe = ? AND price_type = ?`,
        ),
        funding: this.db.prepare(
          `SELECT time, rate FROM funding WHERE exchange = ? AND symbol = ? AND time >= ? AND time <= ? ORDER BY time`,
        ),
        fundingExtent: this.db.prepare(
          'SELECT count(*) AS count, min(time) AS first, max(time) AS last FROM funding WHERE exchange = ? AND symbol = ?',
        ),
        seriesOf: this.db.prepare(
          `SELECT DISTINCT timeframe, price_type AS priceType FROM candles WHERE exchange = ? AND symbol = ?
           ORDER BY timeframe, price_type`,
        ),
        candleSummary: this.db.prepare(
          `SELECT exchange, symbol, timeframe, price_type AS priceType, count(*) AS count, min(time) AS first,
                  max(time) AS last
           FROM candles GROUP BY exchange, symbol, timeframe, price_type ORDER BY exchange, symbol, timeframe, price_type`,
        ),
        fundingSummary: this.db.prepare(
          `SELECT exchange, symbol, count(*) AS count, min(time) AS first, max(time) AS last
           FROM funding GROUP BY exchange, symbol ORDER BY exchange, symbol`,
        ),
      };
    } catch (err) {
      this.db.close();
      throw this.failure('is not a candle database of this version (missing or different tables)', err);
    }
    this.insertCandleBatch = this.db.transaction(
      (exchange: string, symbol: string, timeframe: string, priceType: PriceType, candles: readonly Candle[]) => {
        let added = 0;
        for (const c of candles) {
          added += this.stmt.insertCandle.run(
            exchange,
            symbol,
            timeframe,
            priceType,
            c.time,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
          ).changes;
        }
        return added;
      },
    );
    this.insertFundingBatch = this.db.transaction(
      (exchange: string, symbol: string, events: readonly FundingEvent[]) => {
        let added = 0;
        for (const e of events) added += this.stmt.insertFunding.run(exchange, symbol, e.time, e.rate).changes;
        return added;
      },
    );
  }

  /**
   * Stores candles of one series in one transaction; rows already stored (same open time) are left unchanged.
   * @param candles any order; each with an integer open `time` (Unix ms) and finite prices and volume
   * @returns how many rows were new
   * @throws Error naming the file, the series and the offending candle when a value is not a finite number;
   *   nothing of the batch is stored then.
   */
  insertCandles(
    exchange: string,
    symbol: string,
    timeframe: string,
    candles: readonly Candle[],
    priceType: PriceType = 'trade',
  ): number {
    const series = `${exchange} ${symbol} ${timeframe} ${priceType}`;
    for (let i = 0; i < candles.length; i++) {
      const c = candles[i]!;
      if (
        !Number.isSafeInteger(c.time) ||
        ![c.open, c.high, c.low, c.close, c.volume].every((v) => typeof v === 'number' && Number.isFinite(v))
      ) {
        throw new Error(
          `${this.file}: cannot store ${series} candle ${i} ${JSON.stringify(c)}: time must be integer Unix ms and ` +
            'open, high, low, close, volume finite numbers',
        );
      }
    }
    return this.guard(`storing ${series} candles`, () =>
      this.insertCandleBatch(exchange, symbol, timeframe, priceType, candles),
    );
  }

  /**
   * Stores funding events of one symbol in one transaction; events already stored (same time) are left unchanged.
   * @param events `time` integer Unix ms (callers round it down to the minute), `rate` a finite fraction
   * @returns how many rows were new
   */
  insertFunding(exchange: string, symbol: string, events: readonly FundingEvent[]): number {
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      if (!Number.isSafeInteger(e.time) || typeof e.rate !== 'number' || !Number.isFinite(e.rate)) {
        throw new Error(
          `${this.file}: cannot store ${exchange} ${symbol} funding event ${i} ${JSON.stringify(e)}: time must be ` +
            'integer Unix ms and rate a finite number',
        );
      }
    }
    return this.guard(`storing ${exchange} ${symbol} funding`, () => this.insertFundingBatch(exchange, symbol, events));
  }

  /**
   * Candles of one series whose OPEN time is in [`from`, `to`] (Unix ms, both inclusive), oldest first.
   * Note that a candle opening at `to` closes after `to`: callers that need closed candles pass
   * `to = asOf - timeframeMs`.
   */
  candles(
    exchange: string,
    symbol: string,
    timeframe: string,
    from: number,
    to: number,
    priceType: PriceType = 'trade',
  ): Candle[] {
    return this.guard(`reading ${exchange} ${symbol} ${timeframe} ${priceType} candles`, () => {
      const rows = this.stmt.candles.all(exchange, symbol, timeframe, priceType, from, to);
      const out = new Array<Candle>(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        out[i] = { time: r[0], open: r[1], high: r[2], low: r[3], close: r[4], volume: r[5] };
      }
      return out;
    });
  }

  /** Every stored candle of one series, oldest first. */
  allCandles(exchange: string, symbol: string, timeframe: string, priceType: PriceType = 'trade'): Candle[] {
    return this.candles(exchange, symbol, timeframe, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, priceType);
  }

  /**
   * The last `count` candles of one series whose OPEN time is <= `maxOpenTime` (Unix ms), oldest first.
   * For the candles closed at `asOf`, pass `maxOpenTime = asOf - timeframeMs`.
   */
  lastCandles(
    exchange: string,
    symbol: string,
    timeframe: string,
    maxOpenTime: number,
    count: number,
    priceType: PriceType = 'trade',
  ): Candle[] {
    const rows = this.guard(`reading ${exchange} ${symbol} ${timeframe} ${priceType} candles`, () =>
      this.stmt.lastCandles.all(exchange, symbol, timeframe, priceType, maxOpenTime, count),
    );
    return rows.reverse();
  }

  /** Open time (Unix ms) of the latest stored candle of the series, or null when it has none: where a download resumes. */
  lastCandleTime(exchange: string, symbol: string, timeframe: string, priceType: PriceType = 'trade'): number | null {
    return this.candleExtent(exchange, symbol, timeframe, priceType)?.last ?? null;
  }

  /** Count and first/last open time (Unix ms) of a stored candle series, or null when it has no rows. */
  candleExtent(
    exchange: string,
    symbol: string,
    timeframe: string,
    priceType: PriceType = 'trade',
  ): { count: number; first: number; last: number } | null {
    const row = this.guard(`reading ${exchange} ${symbol} ${timeframe} ${priceType} extent`, () =>
      this.stmt.candleExtent.get(exchange, symbol, timeframe, priceType),
    );
    return row && row.count > 0 && row.first !== null && row.last !== null
      ? { count: row.count, first: row.first, last: row.last }
      : null;
  }

  /** The candle series stored for one symbol (timeframe and price type). */
  seriesOf(exchange: string, symbol: string): { timeframe: string; priceType: PriceType }[] {
    return this.guard(`listing ${exchange} ${symbol} series`, () => this.stmt.seriesOf.all(exchange, symbol));
  }

  /** Funding events of one symbol with time in [`from`, `to`] (Unix ms, both inclusive), oldest first. */
  funding(exchange: string, symbol: string, from: number, to: number): FundingEvent[] {
    return this.guard(`reading ${exchange} ${symbol} funding`, () => this.stmt.funding.all(exchange, symbol, from, to));
  }

  /** Every stored funding event of one symbol, oldest first. */
  allFunding(exchange: string, symbol: string): FundingEvent[] {
    return this.funding(exchange, symbol, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  }

  /** Time (Unix ms) of the latest stored funding event of one symbol, or null when there is none. */
  lastFundingTime(exchange: string, symbol: string): number | null {
    return this.fundingExtent(exchange, symbol)?.last ?? null;
  }

  /** Count and first/last time (Unix ms) of the stored funding events of one symbol, or null when there are none. */
  fundingExtent(exchange: string, symbol: string): { count: number; first: number; last: number } | null {
    const row = this.guard(`reading ${exchange} ${symbol} funding extent`, () =>
      this.stmt.fundingExtent.get(exchange, symbol),
    );
    return row && row.count > 0 && row.first !== null && row.last !== null
      ? { count: row.count, first: row.first, last: row.last }
      : null;
  }

  /** Every stored series with its row count and first/last time, sorted by exchange, symbol, timeframe. */
  summary(): { candles: CandleSeriesSummary[]; funding: FundingSeriesSummary[] } {
    return this.guard('summarising', () => ({
      candles: this.stmt.candleSummary.all(),
      funding: this.stmt.fundingSummary.all(),
    }));
  }

  /** Open times (Unix ms) of every stored candle of one series, oldest first: for gap reports. */
  candleTimes(exchange: string, symbol: string, timeframe: string, priceType: PriceType = 'trade'): number[] {
    return this.guard(`reading ${exchange} ${symbol} ${timeframe} ${priceType} candle times`, () =>
      this.db
        .prepare<[string, string, string, string], number>(
          `SELECT time FROM candles WHERE exchange = ? AND symbol = ? AND timeframe = ? AND price_type = ? ORDER BY time`,
        )
        .pluck()
        .all(exchange, symbol, timeframe, priceType),
    );
  }

  /**
   * Records how many rows the latest import or download of a series skipped (replacing what an earlier one recorded).
   * @param series the timeframe of trade candles, `mark-<tf>`, or `funding`
   * @param example one of the problems, e.g. `BTC_USDT_USDT-30m.csv:7: high 1 is below open, close or low`
   * @param source where the rows came from, e.g. the file or `download binanceusdm`
   */
  setSkippedRows(
    exchange: string,
    symbol: string,
    series: string,
    count: number,
    example: string | null,
    source: string,
  ): void {
    this.guard(`recording skipped rows of ${exchange} ${symbol} ${series}`, () =>
      this.db
        .prepare(
          `INSERT INTO skipped_rows (exchange, symbol, series, count, example, source) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (exchange, symbol, series) DO UPDATE SET count = excluded.count, example = excluded.example,
           source = excluded.source`,
        )
        .run(exchange, symbol, series, count, example, source),
    );
  }

  /**
   * Rows the latest import or download of a series skipped; 0 when it skipped none, null when the database does not
   * know (never imported or downloaded by this release).
   */
  skippedRows(exchange: string, symbol: string, series: string): number | null {
    const hasTable = this.db
      .prepare<[], number>("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'skipped_rows'")
      .pluck()
      .get();
    if (!hasTable) return null;
    const count = this.guard(`reading skipped rows of ${exchange} ${symbol} ${series}`, () =>
      this.db
        .prepare<[string, string, string], number>(
          'SELECT count FROM skipped_rows WHERE exchange = ? AND symbol = ? AND series = ?',
        )
        .pluck()
        .get(exchange, symbol, series),
    );
    return count ?? null;
  }

  /** Closes the database. The store cannot be used afterwards. */
  close(): void {
    this.db.close();
  }

  private guard<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw this.failure(`${what} failed`, err);
    }
  }

  private failure(what: string, err: unknown): Error {
    const message = err instanceof Error ? err.message : String(err);
    return new Error(`candle database ${this.file}: ${what}: ${message}`, { cause: err });
  }
}
