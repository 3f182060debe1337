/**
 * Data quality of recorded candle series: where a series starts and ends, and the gaps inside it (candles missing
 * between the first and the last one). Printed by import-data, download-data and backtest, and stored in a backtest's
 * result.json (`dataQuality`), so a gap is never hidden. Pure.
 *
 * Times are candle OPEN times, Unix ms. A gap `{ from, to, missing }` is the run of missing candles opening at
 * `from`, `from + timeframe`, ..., `to` (both inclusive): `missing` candles.
 */
import { timeframeMs } from './timeframe';

export interface CandleGap {
  /** open time of the first missing candle */
  from: number;
  /** open time of the last missing candle */
  to: number;
  /** candles missing */
  missing: number;
}

/** The quality of one candle series (pair × timeframe). */
export interface SeriesQuality {
  pair: string;
  timeframe: string;
  /** `recorded`: stored or in a file; `aggregated`: built from a finer recorded timeframe */
  origin: 'recorded' | 'aggregated';
  candles: number;
  /** open time of the first and last candle; null without candles */
  first: number | null;
  last: number | null;
  /** candles missing between the first and the last one */
  missing: number;
  /** the gaps, oldest first (at most {@link MAX_LISTED_GAPS}; `missing` counts them all) */
  gaps: CandleGap[];
  /** gaps beyond those listed */
  more_gaps: number;
  /** rows skipped when the series was imported or downloaded (malformed); null when unknown */
  skipped_rows: number | null;
}

/** Gaps listed per series; the rest are counted in `more_gaps`. */
export const MAX_LISTED_GAPS = 20;

/**
 * The gaps of a series of candle open times (ascending, aligned to the timeframe). Candles opening off the grid or out
 * of order are not gaps and are ignored here (the readers refuse them).
 */
export function candleGaps(times: ArrayLike<number>, timeframe: string): CandleGap[] {
  const ms = timeframeMs(timeframe);
  const gaps: CandleGap[] = [];
  for (let i = 1; i < times.length; i++) {
    const step = times[i]! - times[i - 1]!;
    if (step > ms) {
      const missing = Math.floor(step / ms) - (step % ms === 0 ? 1 : 0);
      if (missing > 0) gaps.push({ from: times[i - 1]! + ms, to: times[i - 1]! + missing * ms, missing });
    }
  }
  return gaps;
}

/** The {@link SeriesQuality} of one series. */
export function seriesQuality(input: {
  pair: string;
  timeframe: string;
  times: ArrayLike<number>;
  origin?: SeriesQuality['origin'];
  skippedRows?: number | null;
}): SeriesQuality {
  const gaps = candleGaps(input.times, input.timeframe);
  const n = input.times.length;
  return {
    pair: input.pair,
    timeframe: input.timeframe,
    origin: input.origin ?? 'recorded',
    candles: n,
    first: n > 0 ? input.times[0]! : null,
    last: n > 0 ? input.times[n - 1]! : null,
    missing: gaps.reduce((s, g) => s + g.missing, 0),
    gaps: gaps.slice(0, MAX_LISTED_GAPS),
    more_gaps: Math.max(0, gaps.length - MAX_LISTED_GAPS),
    skipped_rows: input.skippedRows ?? null,
  };
}

/** `1 candle`, `6 candles`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function iso(t: number): string {
  return new Date(t).toISOString().slice(0, 16).replace('T', ' ') + 'Z';
}

/** `2025-06-01 10:00Z` or `2025-06-01 10:00Z..12:30Z (6 candles)`. */
export function formatGap(g: CandleGap): string {
  if (g.missing === 1) return `${iso(g.from)} (1 candle)`;
  const to = iso(g.to);
  const sameDay = iso(g.from).slice(0, 10) === to.slice(0, 10);
  return `${iso(g.from)}..${sameDay ? to.slice(11) : to} (${g.missing} candles)`;
}

/**
 * The summary as text lines: one per series (`BTC/USDT:USDT 30m  2,917 candles  2025-05-22 00:00Z → 2025-07-21 17:30Z
 * no gaps`), then one indented line per listed gap.
 */
export function formatQuality(series: readonly SeriesQuality[]): string[] {
  const lines: string[] = [];
  const width = Math.max(0, ...series.map((s) => `${s.pair} ${s.timeframe}`.length));
  for (const s of series) {
    const name = `${s.pair} ${s.timeframe}`.padEnd(width);
    const span = s.first === null || s.last === null ? 'no candles' : `${iso(s.first)} → ${iso(s.last)}`;
    const gaps =
      s.missing === 0
        ? 'no gaps'
        : `${plural(s.gaps.length + s.more_gaps, 'gap')}, ${plural(s.missing, 'candle')} missing`;
    const skipped = s.skipped_rows ? `, ${plural(s.skipped_rows, 'row')} skipped` : '';
    const origin = s.origin === 'aggregated' ? ' (aggregated)' : '';
    lines.push(`${name}  ${String(s.candles).padStart(6)} candles  ${span}  ${gaps}${skipped}${origin}`);
    for (const g of s.gaps) lines.push(`    gap ${formatGap(g)}`);
    if (s.more_gaps > 0) lines.push(`    ... and ${s.more_gaps} more gaps`);
  }
  return lines;
}
