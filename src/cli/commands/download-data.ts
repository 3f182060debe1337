/**
 * `llm-trader download-data`: downloads closed candles and funding-rate history from an exchange (ccxt, public
 * endpoints, no API keys) into the SQLite candle store. Resumable and idempotent: a second run fetches only what is
 * new since the last stored candle. See src/store/download.ts for the rules.
 */
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { DownloadDataOptions } from './download-data-command';
import { loadConfig } from '../../config/load';
import { PAIR_RE } from '../../core/config';
import { formatQuality, type SeriesQuality } from '../../core/data-quality';
import { timeframeMs } from '../../core/timeframe';
import { storeQuality } from '../../store/store-quality';
import { CandleStore, candleDbPath } from '../../store/candle-store';
import { downloadMarketData, type MarketDataClient, type SeriesDownloadResult } from '../../store/download';

/** `llm-trader download-data` (options: ./download-data-command.ts). */
export async function downloadData(opts: DownloadDataOptions, command: Command): Promise<void> {
  const config = loadConfig(opts.config ?? null);
  const exchangeId = opts.exchange ?? config.exchange.name;
  const pairs = opts.pairs ?? config.pairs;
  const timeframes = opts.timeframes ?? [
    config.timeframes.main,
    ...config.timeframes.informative.filter((tf) => tf !== config.timeframes.main),
  ];
  const days = Number(opts.days);
  const limit = Number(opts.limit);
  const usage = (message: string): never =>
    command.error(`download-data: ${message}`, { exitCode: 2, code: 'llm-trader.bad-download-option' });

  const badPairs = pairs.filter((p) => !PAIR_RE.test(p));
  if (badPairs.length > 0)
    usage(`invalid pair(s) ${badPairs.join(', ')}: use ccxt perpetual symbols like BTC/USDT:USDT`);
  for (const tf of timeframes) {
    try {
      timeframeMs(tf);
    } catch (err) {
      usage((err as Error).message);
    }
  }
  if (!(days > 0) || !Number.isFinite(days)) usage(`--days must be a number > 0, got "${opts.days}"`);
  if (!Number.isInteger(limit) || limit < 1) usage(`--limit must be an integer >= 1, got "${opts.limit}"`);

  // ccxt is large: load it only for this command.
  const { exchanges } = await import('ccxt');
  const classes = exchanges as unknown as Record<string, new (options: Record<string, unknown>) => MarketDataClient>;
  const ExchangeClass = Object.hasOwn(classes, exchangeId) ? classes[exchangeId] : undefined;
  if (ExchangeClass === undefined) {
    return usage(
      `unknown ccxt exchange id "${exchangeId}"; use one with perpetual swaps, e.g. binanceusdm, bybit, okx`,
    );
  }
  const client = new ExchangeClass({ ...config.exchange.ccxt_options, enableRateLimit: true });

  const dbFile = opts.db !== undefined ? resolve(opts.db) : candleDbPath(config.data_dir);
  const store = new CandleStore(dbFile);
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        {
          format: 'downloading [{bar}] {value}/{total} series  {series}: {added} new rows',
          stream: process.stderr,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  const started = performance.now();
  let results: SeriesDownloadResult[];
  let quality: SeriesQuality[] = [];
  try {
    bar?.start(pairs.length * (timeframes.length + (opts.funding ? 1 : 0)), 0, { series: '', added: 0 });
    results = await downloadMarketData(
      client,
      store,
      { exchange: exchangeId, pairs, timeframes, days, funding: opts.funding, limit },
      (p) => bar?.update(p.done ? p.index + 1 : p.index, { series: `${p.symbol} ${p.series}`, added: p.added }),
    );
    quality = storeQuality(store, exchangeId, { pairs, timeframes });
  } finally {
    bar?.stop();
    store.close();
  }
  const seconds = (performance.now() - started) / 1000;

  for (const r of results) {
    for (const problem of r.problems) console.error(`warning: ${problem}`);
    if (r.malformed > r.problems.length) {
      console.error(`warning: ${r.symbol} ${r.series}: ${r.malformed - r.problems.length} more malformed rows skipped`);
    }
  }
  console.log(resultTable(results));
  const added = results.reduce((s, r) => s + r.added, 0);
  console.log(
    `downloaded ${results.length} series from ${exchangeId} into ${dbFile} in ${seconds.toFixed(1)} s: ${added} rows added`,
  );
  console.log(`\ndata quality (candles stored for exchange ${exchangeId}):`);
  for (const line of formatQuality(quality)) console.log(`  ${line}`);
}

function resultTable(results: readonly SeriesDownloadResult[]): string {
  const header = ['symbol', 'series', 'from', 'requests', 'added', 'forming dropped', 'malformed'];
  const rows = results.map((r) => [
    r.symbol,
    r.series,
    r.ranges.length > 0 ? new Date(Math.min(...r.ranges.map((x) => x.from))).toISOString() : 'up to date',
    String(r.requests),
    String(r.added),
    String(r.forming),
    String(r.malformed),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const format = (row: readonly string[]): string =>
    row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [format(header), ...rows.map(format)].join('\n');
}
