/**
 * Names of recorded market-data files in the ../shared/data layout (see csv-candles.ts for their contents):
 * - `<BASE>_<QUOTE>_<SETTLE>-<tf>.csv[.gz]`          candles of the traded price, e.g. `BTC_USDT_USDT-30m.csv.gz`
 * - `<BASE>_<QUOTE>_<SETTLE>-mark-<tf>.csv[.gz]`     mark-price candles, e.g. `BTC_USDT_USDT-mark-8h.csv.gz`
 * - `<BASE>_<QUOTE>_<SETTLE>-funding-<tf>.csv[.gz]`  funding-rate events, e.g. `BTC_USDT_USDT-funding-8h.csv.gz`
 * `<tf>` is `<n>m`, `<n>h`, `<n>d` or `<n>w`. The symbol is the ccxt perpetual symbol `BASE/QUOTE:SETTLE`.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { PriceType } from './candle-store';

export type DataFileContent =
  | { kind: 'candles'; timeframe: string; priceType: PriceType }
  /** `interval` is the funding interval named in the file (`8h`); it is informational only */
  | { kind: 'funding'; interval: string };

export interface DataFile {
  /** full path */
  path: string;
  /** file name without the directory */
  name: string;
  /** ccxt symbol, e.g. `BTC/USDT:USDT` */
  symbol: string;
  content: DataFileContent;
}

/** What the file names must look like, for error messages. */
export const DATA_FILE_PATTERNS = [
  '<BASE>_<QUOTE>_<SETTLE>-<tf>.csv[.gz]        e.g. BTC_USDT_USDT-30m.csv.gz (candles)',
  '<BASE>_<QUOTE>_<SETTLE>-mark-<tf>.csv[.gz]   e.g. BTC_USDT_USDT-mark-8h.csv.gz (mark-price candles)',
  '<BASE>_<QUOTE>_<SETTLE>-funding-<tf>.csv[.gz] e.g. BTC_USDT_USDT-funding-8h.csv.gz (funding rates)',
] as const;

const NAME_RE = /^([A-Z0-9]+)_([A-Z0-9]+)_([A-Z0-9]+)-(?:(mark|funding)-)?([1-9][0-9]*[mhdw])\.csv(?:\.gz)?$/;

/**
 * What a data file holds, from its name alone; null when the name does not follow the layout (see the module doc).
 * @param name a file name without directory, e.g. `ETH_USDT_USDT-1h.csv.gz`
 */
export function parseDataFileName(name: string): Omit<DataFile, 'path'> | null {
  const m = NAME_RE.exec(name);
  if (!m) return null;
  const [, base, quote, settle, prefix, tf] = m as unknown as [
    string,
    string,
    string,
    string,
    string | undefined,
    string,
  ];
  const symbol = `${base}/${quote}:${settle}`;
  const content: DataFileContent =
    prefix === 'funding'
      ? { kind: 'funding', interval: tf }
      : { kind: 'candles', timeframe: tf, priceType: prefix === 'mark' ? 'mark' : 'trade' };
  return { name, symbol, content };
}

/**
 * The data files in `dir` (not recursive), sorted by name, and the names of the other entries that were ignored.
 * @throws Error (from the file system) when `dir` cannot be read; the caller says what to do about it.
 */
export async function listDataFiles(dir: string): Promise<{ files: DataFile[]; ignored: string[] }> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files: DataFile[] = [];
  const ignored: string[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const parsed = entry.isFile() ? parseDataFileName(entry.name) : null;
    if (parsed) files.push({ path: join(dir, entry.name), ...parsed });
    else ignored.push(entry.name);
  }
  return { files, ignored };
}
