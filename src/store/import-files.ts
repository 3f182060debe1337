/**
 * Imports recorded data files (the ../shared/data layout, see data-files.ts) into the {@link CandleStore}.
 * Idempotent: rows already stored are left as they are and not counted as added.
 */
import type { CandleStore } from './candle-store';
import { readCandleCsvLenient, readFundingCsvLenient } from './csv-candles';
import type { DataFile } from './data-files';

/** A row (or a whole file) that was not imported. `line` is 1-based (the header is line 1); null for the whole file. */
export interface ImportProblem {
  file: string;
  line: number | null;
  message: string;
}

export interface FileImportResult {
  file: DataFile;
  /** data rows parsed from the file, good or malformed (blank lines are not rows) */
  rowsRead: number;
  /** rows that were not stored before */
  rowsAdded: number;
  /** malformed rows, each skipped; or, when `failed`, the one problem that stopped the file */
  problems: ImportProblem[];
  /** true when nothing of the file was stored (missing or unreadable file, wrong header) */
  failed: boolean;
}

/**
 * Reads one data file and stores its rows under `exchange` and the file's symbol, in one transaction.
 * - Candle files (traded and mark price) and funding files are read leniently: each malformed row is reported and
 *   skipped, the rest is stored.
 * - A file that cannot be read at all (missing, not gzip, wrong header) gives one problem and stores nothing.
 * Never throws for bad file contents; a database failure does throw (it names the database file).
 */
export async function importDataFile(store: CandleStore, exchange: string, file: DataFile): Promise<FileImportResult> {
  const content = file.content;
  if (content.kind === 'candles') {
    let read: Awaited<ReturnType<typeof readCandleCsvLenient>>;
    try {
      read = await readCandleCsvLenient(file.path);
    } catch (err) {
      return unreadable(file, err);
    }
    const rowsAdded = store.insertCandles(exchange, file.symbol, content.timeframe, read.candles, content.priceType);
    return {
      file,
      rowsRead: read.candles.length + read.problems.length,
      rowsAdded,
      problems: read.problems.map((p) => ({ file: p.file, line: p.line, message: p.message })),
      failed: false,
    };
  }
  let funding: Awaited<ReturnType<typeof readFundingCsvLenient>>;
  try {
    funding = await readFundingCsvLenient(file.path);
  } catch (err) {
    return unreadable(file, err);
  }
  const rowsAdded = store.insertFunding(exchange, file.symbol, funding.events);
  return {
    file,
    rowsRead: funding.events.length + funding.problems.length,
    rowsAdded,
    problems: funding.problems.map((p) => ({ file: p.file, line: p.line, message: p.message })),
    failed: false,
  };
}

/** The readers' messages start with `<file>:<line>: ` or `<file>: `; keep the line, drop the repeated file name. */
function unreadable(file: DataFile, err: unknown): FileImportResult {
  const text = err instanceof Error ? err.message : String(err);
  const prefix = `${file.path}:`;
  let line: number | null = null;
  let message = text;
  if (text.startsWith(prefix)) {
    const rest = text.slice(prefix.length);
    const m = /^(\d+): ([\s\S]*)$/.exec(rest);
    if (m) {
      line = Number(m[1]);
      message = m[2]!;
    } else {
      message = rest.trimStart();
    }
  }
  return { file, rowsRead: 0, rowsAdded: 0, problems: [{ file: file.path, line, message }], failed: true };
}
