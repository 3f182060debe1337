/**
 * The data quality summary (src/core/data-quality.ts) of what the candle store holds: per pair and traded-price
 * timeframe, the first and last candle, the gaps, and the rows the last import or download skipped.
 */
import { seriesQuality, type SeriesQuality } from '../core/data-quality';
import { timeframeMs } from '../core/timeframe';
import type { CandleStore } from './candle-store';

/**
 * The summary of the trade-price candle series of `exchange` in `store`, sorted by pair and timeframe length;
 * `pairs` / `timeframes` restrict it (default: every stored one).
 */
export function storeQuality(
  store: CandleStore,
  exchange: string,
  filter: { pairs?: readonly string[]; timeframes?: readonly string[] } = {},
): SeriesQuality[] {
  const series = store
    .summary()
    .candles.filter(
      (s) =>
        s.exchange === exchange &&
        s.priceType === 'trade' &&
        (filter.pairs === undefined || filter.pairs.includes(s.symbol)) &&
        (filter.timeframes === undefined || filter.timeframes.includes(s.timeframe)),
    )
    .sort((a, b) =>
      a.symbol === b.symbol ? timeframeMs(a.timeframe) - timeframeMs(b.timeframe) : a.symbol < b.symbol ? -1 : 1,
    );
  return series.map((s) =>
    seriesQuality({
      pair: s.symbol,
      timeframe: s.timeframe,
      times: store.candleTimes(exchange, s.symbol, s.timeframe),
      skippedRows: store.skippedRows(exchange, s.symbol, s.timeframe),
    }),
  );
}
