/**
 * Downloads candles and funding-rate history from an exchange into the {@link CandleStore}, resumably.
 *
 * Works with any object shaped like a ccxt exchange instance ({@link MarketDataClient}), so tests can pass a fake.
 * Per series (symbol × timeframe, and symbol × funding):
 * - the wanted window is the last `days` days up to now (the client's clock);
 * - what the store already holds inside the window is not fetched again: a download resumes after the last stored
 *   row, fills the time before the first stored row (a larger `days` than last time) and every gap between stored
 *   candles; rows stored before the window are not looked at, so the last N days never reach back to older data;
 * - candles are fetched page by page (`since`, `limit`), each page starting after the last candle received;
 * - only CLOSED candles are stored: a candle whose close time (open + timeframe) is after the time the request was
 *   sent is the one still forming and is dropped (so the local clock should be in sync with the exchange's);
 * - funding times are rounded down to the minute (exchanges report them a few ms past the hour), as in recorded data.
 * Everything stored before a failure stays stored; running the download again resumes from there.
 */
import { candleOpenTime, timeframeMs } from '../core/timeframe';
import type { FundingEvent } from '../core/snapshot';
import type { Candle } from '../core/types';
import { OperatorError } from '../worker/errors';
import type { CandleStore } from './candle-store';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** how many malformed-row messages a series keeps (the count is always exact) */
const MAX_PROBLEM_MESSAGES = 5;

/** The part of a ccxt exchange instance the downloader uses (a real `new ccxt.binanceusdm()` satisfies it). */
export interface MarketDataClient {
  /** rows `[openTime ms, open, high, low, close, volume]`, oldest first, open time >= `since`, at most `limit` */
  fetchOHLCV(
    symbol: string,
    timeframe?: string,
    since?: number,
    limit?: number,
  ): Promise<readonly (readonly (number | undefined)[])[]>;
  /** funding events with time >= `since`, oldest first, at most `limit` */
  fetchFundingRateHistory(
    symbol?: string,
    since?: number,
    limit?: number,
  ): Promise<readonly { fundingRate: number | undefined; timestamp?: number | undefined }[]>;
  /** the client's clock, Unix ms */
  milliseconds(): number;
}

export interface DownloadRequest {
  /** exchange id the data is filed under in the store, e.g. `binanceusdm` */
  exchange: string;
  /** ccxt symbols, e.g. `BTC/USDT:USDT` */
  pairs: readonly string[];
  /** e.g. `['30m', '1h', '4h', '1d']` */
  timeframes: readonly string[];
  /** window length in days (> 0): candles opening at or after now − days, aligned down to the timeframe */
  days: number;
  /** also download funding-rate history (default true) */
  funding?: boolean;
  /** rows per request (default 1000; Binance USDT-M allows up to 1500 candles and 1000 funding events) */
  limit?: number;
}

/** What happened to one series. */
export interface SeriesDownloadResult {
  symbol: string;
  /** a timeframe such as `30m`, or `funding` */
  series: string;
  /** the ranges fetched as [from, to) in Unix ms; empty when the store was already up to date */
  ranges: { from: number; to: number }[];
  requests: number;
  /** rows received from the exchange */
  received: number;
  /** rows that were new to the store */
  added: number;
  /** candles dropped because they had not closed when requested */
  forming: number;
  /** rows with missing or non-numeric fields, skipped */
  malformed: number;
  /** the first few malformed-row messages */
  problems: string[];
}

/** Reported after every page and when a series is done. */
export interface DownloadProgress {
  symbol: string;
  series: string;
  /** index of this series in the plan (0-based) and the number of series */
  index: number;
  total: number;
  /** rows added to this series so far */
  added: number;
  done: boolean;
}

/**
 * Downloads every (pair × timeframe) candle series and, unless disabled, every pair's funding history, one after
 * the other, into `store`.
 * @returns one result per series, in the order pairs × (timeframes..., funding)
 * @throws Error on an invalid request (names the field), or when the client fails (names the exchange, symbol,
 *   series and `since`; what was stored until then stays stored)
 */
export async function downloadMarketData(
  client: MarketDataClient,
  store: CandleStore,
  request: DownloadRequest,
  onProgress: (p: DownloadProgress) => void = () => {},
): Promise<SeriesDownloadResult[]> {
  const limit = request.limit ?? 1000;
  if (!(request.days > 0) || !Number.isFinite(request.days)) {
    throw new Error(`download days must be a number > 0, got ${request.days}`);
  }
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`download limit must be an integer >= 1, got ${limit}`);
  if (request.pairs.length === 0) throw new Error('download needs at least one pair, e.g. BTC/USDT:USDT');
  for (const tf of request.timeframes) timeframeMs(tf);

  const withFunding = request.funding ?? true;
  const plan = request.pairs.flatMap((symbol) => [
    ...request.timeframes.map((tf) => ({ symbol, series: tf })),
    ...(withFunding ? [{ symbol, series: 'funding' }] : []),
  ]);
  const results: SeriesDownloadResult[] = [];
  for (let index = 0; index < plan.length; index++) {
    const { symbol, series } = plan[index]!;
    const report = (added: number, done: boolean): void =>
      onProgress({ symbol, series, index, total: plan.length, added, done });
    const result =
      series === 'funding'
        ? await downloadFunding(client, store, request.exchange, symbol, request.days, limit, report)
        : await downloadCandles(client, store, request.exchange, symbol, series, request.days, limit, report);
    if (result.requests > 0) {
      store.setSkippedRows(
        request.exchange,
        symbol,
        series,
        result.malformed,
        result.problems[0] ?? null,
        `download ${request.exchange}`,
      );
    }
    results.push(result);
    report(result.added, true);
  }
  return results;
}

/**
 * The [from, to) ranges of the window [windowStart, now) that the store does not cover yet, from the open times of
 * the rows stored inside the window (`stored`, ascending; candles or funding events): before the first one, every gap
 * between two of them longer than `step`, and after the last one. Rows stored before the window are not looked at, so
 * a window of the last N days never reaches back to older stored data.
 */
export function missingRanges(
  windowStart: number,
  now: number,
  stored: readonly number[],
  step: number,
): { from: number; to: number }[] {
  if (windowStart >= now) return [];
  if (stored.length === 0) return [{ from: windowStart, to: now }];
  const ranges: { from: number; to: number }[] = [];
  if (windowStart < stored[0]!) ranges.push({ from: windowStart, to: stored[0]! });
  for (let i = 1; i < stored.length; i++) {
    if (stored[i]! - stored[i - 1]! > step) ranges.push({ from: stored[i - 1]! + step, to: stored[i]! });
  }
  const last = stored[stored.length - 1]!;
  if (last + step < now) ranges.push({ from: last + step, to: now });
  return ranges;
}

function emptyResult(symbol: string, series: string, ranges: { from: number; to: number }[]): SeriesDownloadResult {
  return { symbol, series, ranges, requests: 0, received: 0, added: 0, forming: 0, malformed: 0, problems: [] };
}

function noteProblem(result: SeriesDownloadResult, message: string): void {
  result.malformed++;
  if (result.problems.length < MAX_PROBLEM_MESSAGES) result.problems.push(message);
}

async function downloadCandles(
  client: MarketDataClient,
  store: CandleStore,
  exchange: string,
  symbol: string,
  timeframe: string,
  days: number,
  limit: number,
  report: (added: number, done: boolean) => void,
): Promise<SeriesDownloadResult> {
  const ms = timeframeMs(timeframe);
  const now = client.milliseconds();
  const windowStart = candleOpenTime(now - days * DAY_MS, timeframe);
  // a range in which no candle can have closed yet (from + ms > now) is not worth a request
  const inWindow = store.candleTimes(exchange, symbol, timeframe).filter((t) => t >= windowStart);
  const ranges = missingRanges(windowStart, now, inWindow, ms).filter((r) => r.from + ms <= now);
  const result = emptyResult(symbol, timeframe, ranges);
  for (const range of ranges) {
    let since = range.from;
    for (;;) {
      const requestedAt = client.milliseconds();
      // No candle opening at or after `since` can have closed yet: nothing more to ask for.
      if (since + ms > requestedAt) break;
      let rows: Awaited<ReturnType<MarketDataClient['fetchOHLCV']>>;
      try {
        rows = await client.fetchOHLCV(symbol, timeframe, since, limit);
      } catch (err) {
        throw clientFailure(exchange, symbol, timeframe, since, err);
      }
      result.requests++;
      result.received += rows.length;
      const candles: Candle[] = [];
      let newest = Number.NEGATIVE_INFINITY;
      let sawForming = false;
      for (const row of rows) {
        const candle = toCandle(row);
        if (typeof candle === 'string') {
          noteProblem(result, `${symbol} ${timeframe}: ${candle}`);
          continue;
        }
        if (candle.time < since || candle.time >= range.to) continue;
        if (candle.time + ms > requestedAt) {
          result.forming++;
          sawForming = true;
          continue;
        }
        candles.push(candle);
        if (candle.time > newest) newest = candle.time;
      }
      result.added += store.insertCandles(exchange, symbol, timeframe, candles);
      report(result.added, false);
      // Stop at the end of the range, at the forming candle, or when a page brings nothing new (end of history).
      if (candles.length === 0 || sawForming || newest + ms >= range.to) break;
      since = newest + ms;
    }
  }
  return result;
}

async function downloadFunding(
  client: MarketDataClient,
  store: CandleStore,
  exchange: string,
  symbol: string,
  days: number,
  limit: number,
  report: (added: number, done: boolean) => void,
): Promise<SeriesDownloadResult> {
  const now = client.milliseconds();
  const windowStart = now - days * DAY_MS;
  // Funding events are hours apart and the window's start falls between two of them: what is stored before the
  // window counts for its start (no request for the few hours before the first event in it), and the download goes
  // on after the last stored event, or from the window's start when that is later (older data is never extended).
  const stored = store.fundingExtent(exchange, symbol);
  const ranges: { from: number; to: number }[] = [];
  if (stored === null) {
    if (windowStart < now) ranges.push({ from: windowStart, to: now });
  } else {
    if (windowStart < stored.first) ranges.push({ from: windowStart, to: stored.first });
    const from = Math.max(windowStart, stored.last + MINUTE_MS);
    if (from < now) ranges.push({ from, to: now });
  }
  const result = emptyResult(symbol, 'funding', ranges);
  for (const range of ranges) {
    let since = range.from;
    for (;;) {
      let rows: Awaited<ReturnType<MarketDataClient['fetchFundingRateHistory']>>;
      try {
        rows = await client.fetchFundingRateHistory(symbol, since, limit);
      } catch (err) {
        throw clientFailure(exchange, symbol, 'funding', since, err);
      }
      result.requests++;
      result.received += rows.length;
      const events: FundingEvent[] = [];
      let newestRaw = Number.NEGATIVE_INFINITY;
      for (const row of rows) {
        const { timestamp, fundingRate } = row;
        if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || !Number.isFinite(fundingRate)) {
          noteProblem(
            result,
            `${symbol} funding: event ${JSON.stringify({ timestamp, fundingRate })} has no integer timestamp or no finite rate`,
          );
          continue;
        }
        if (timestamp < since || timestamp >= range.to) continue;
        events.push({ time: Math.floor(timestamp / MINUTE_MS) * MINUTE_MS, rate: fundingRate! });
        if (timestamp > newestRaw) newestRaw = timestamp;
      }
      result.added += store.insertFunding(exchange, symbol, events);
      report(result.added, false);
      if (events.length === 0 || newestRaw + 1 >= range.to) break;
      since = newestRaw + 1;
    }
  }
  return result;
}

/** A ccxt OHLCV row as a candle, or what is wrong with it. */
function toCandle(row: readonly (number | undefined)[]): Candle | string {
  const [time, open, high, low, close, volume] = row;
  if (
    row.length < 6 ||
    typeof time !== 'number' ||
    !Number.isSafeInteger(time) ||
    ![open, high, low, close, volume].every((v) => typeof v === 'number' && Number.isFinite(v))
  ) {
    return `row ${JSON.stringify(row)} is not [openTime ms, open, high, low, close, volume] with finite numbers`;
  }
  return { time, open: open!, high: high!, low: low!, close: close!, volume: volume! };
}

function clientFailure(exchange: string, symbol: string, series: string, since: number, err: unknown): Error {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new OperatorError(
    `${exchange} ${symbol} ${series}: request since ${new Date(since).toISOString()} failed: ${message}. ` +
      'What was downloaded so far is stored; run the same command again to resume.',
    { cause: err },
  );
}
