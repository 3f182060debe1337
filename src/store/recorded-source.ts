/**
 * Where backtests, replays and the look-ahead check read recorded market data: the SQLite candle store by default
 * (`<data_dir>/candles.sqlite`, filled by `import-data` and `download-data`), or a folder of CSV files in the
 * ../shared/data layout when one is named (`--data <dir>`, or `replay.data` in the config), read directly.
 *
 * Either way the data is served by a {@link RecordedMarketSource}, which aggregates a timeframe that is not recorded
 * from the largest recorded one that divides it (4h from 1h or 30m; 30m from 15m, 5m or 1m), keeping only complete
 * candles.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../core/config';
import { RecordedMarketSource, csvRecordedData, storeRecordedData } from '../exchange/market-source';
import { InputError } from '../worker/errors';
import { CandleStore, candleDbPath } from './candle-store';
import { DATA_FILE_PATTERNS, listDataFiles } from './data-files';

export interface RecordedSourceOptions {
  /** a CSV folder to read instead of the store (a folder holding `<exchange>/` with the files is accepted too) */
  data?: string | null;
  /** the candle database (default `<data_dir>/candles.sqlite`) */
  db?: string | null;
}

/** An open recorded source: the market, what it reads (for messages), and how to release it. */
export interface RecordedSource {
  market: RecordedMarketSource;
  kind: 'store' | 'csv';
  /** the CSV folder or the database file, absolute */
  location: string;
  /** e.g. `candle database /x/user_data/candles.sqlite (exchange binanceusdm)` */
  description: string;
  /**
   * Rows skipped when a series was imported or downloaded (the store records them; a CSV folder is read strictly, so
   * none): null when unknown
   */
  skippedRows(pair: string, timeframe: string): number | null;
  close(): void;
}

/** The folder holding the data files: `dir`, or `dir/<exchange>` when only that one has them (e.g. ../shared/data). */
export async function csvDataFolder(dir: string, exchange: string): Promise<string> {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    throw new InputError(
      `the data folder ${abs} does not exist or is not a folder; pass the folder of the candle files, e.g. ` +
        '../shared/data/binanceusdm, or leave --data out to read the candle database',
    );
  }
  if ((await listDataFiles(abs)).files.length > 0) return abs;
  const nested = join(abs, exchange);
  if (existsSync(nested) && (await listDataFiles(nested)).files.length > 0) return nested;
  throw new InputError(
    `no candle files in ${abs}; pass the folder that holds files named like\n` +
      DATA_FILE_PATTERNS.map((p) => `  ${p}`).join('\n'),
  );
}

/**
 * Opens the recorded data of `config` (see the module comment): `options.data`, else `config.replay.data` when set,
 * as a CSV folder; otherwise the candle store, read-only.
 * @throws InputError when the folder has no data files, or the candle database does not exist or holds no candles of
 *   `config.exchange.name` (saying how to fill it)
 */
export async function openRecordedSource(
  config: Pick<Config, 'data_dir' | 'exchange' | 'replay'>,
  options: RecordedSourceOptions = {},
): Promise<RecordedSource> {
  const exchange = config.exchange.name;
  const folder = options.data ?? config.replay.data;
  if (folder !== null && folder !== undefined) {
    const dir = await csvDataFolder(folder, exchange);
    const data = csvRecordedData(dir);
    return {
      market: new RecordedMarketSource(data),
      kind: 'csv',
      location: dir,
      description: data.description,
      skippedRows: () => 0,
      close: () => undefined,
    };
  }
  const file = options.db ? resolve(options.db) : candleDbPath(config.data_dir);
  const fill =
    `fill it with \`llm-trader import-data <csv folder>\` (e.g. ../shared/data/binanceusdm) or ` +
    '`llm-trader download-data`, or read a CSV folder directly with --data <dir>';
  if (!existsSync(file)) throw new InputError(`no candle database at ${file}: ${fill}`);
  const store = new CandleStore(file, { readonly: true });
  if (!store.summary().candles.some((s) => s.exchange === exchange)) {
    store.close();
    throw new InputError(`the candle database ${file} holds no candles of exchange ${exchange}: ${fill}`);
  }
  const data = storeRecordedData(store, exchange);
  return {
    market: new RecordedMarketSource(data),
    kind: 'store',
    location: file,
    description: data.description,
    skippedRows: (pair, timeframe) => store.skippedRows(exchange, pair, timeframe),
    close: () => store.close(),
  };
}
