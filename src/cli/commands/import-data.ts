/**
 * `llm-trader import-data <dir>`: imports recorded candle, mark-price and funding files (the ../shared/data layout)
 * into the SQLite candle store. Idempotent: a second run adds nothing.
 *
 * Output: a progress bar on stderr (only when stderr is a terminal), every malformed row as a warning on stderr with
 * file and line, then a summary table and the data quality of the stored series (first and last candle, gaps,
 * skipped rows) on stdout. Exit 0 when every row was imported; exit 2 when a row or a file was skipped (the good rows
 * are stored all the same; `--skip-bad-rows` accepts that and exits 0, still reporting them), or when `<dir>` does
 * not exist or holds no data file.
 */
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { ImportDataOptions } from './import-data-command';
import { loadConfig } from '../../config/load';
import { CandleStore, candleDbPath } from '../../store/candle-store';
import { formatQuality, type SeriesQuality } from '../../core/data-quality';
import { DATA_FILE_PATTERNS, listDataFiles, type DataFile } from '../../store/data-files';
import { storeQuality } from '../../store/store-quality';
import { InputError } from '../../worker/errors';
import { importDataFile, type FileImportResult, type ImportProblem } from '../../store/import-files';

/** `llm-trader import-data` (options: ./import-data-command.ts). */
export async function importData(dir: string, opts: ImportDataOptions, command: Command): Promise<void> {
  const config = loadConfig(opts.config ?? null);
  const exchange = opts.exchange ?? config.exchange.name;
  const dbFile = opts.db !== undefined ? resolve(opts.db) : candleDbPath(config.data_dir);
  const absDir = resolve(dir);

  const dirStat = await stat(absDir).catch(() => null);
  if (!dirStat?.isDirectory()) {
    command.error(
      `import-data: ${absDir} ${dirStat ? 'is not a directory' : 'does not exist'}; pass the folder that holds the data files, e.g. ../shared/data/binanceusdm`,
      { exitCode: 2, code: 'llm-trader.no-data-dir' },
    );
  }
  const { files, ignored } = await listDataFiles(absDir);
  if (files.length === 0) {
    command.error(
      `import-data: no data files in ${absDir}${ignored.length ? ` (found ${ignored.length} other entries, e.g. ${ignored.slice(0, 3).join(', ')})` : ''}.\n` +
        `Expected file names:\n${DATA_FILE_PATTERNS.map((p) => `  ${p}`).join('\n')}`,
      { exitCode: 2, code: 'llm-trader.no-data-files' },
    );
  }

  const started = performance.now();
  const store = new CandleStore(dbFile);
  const results: FileImportResult[] = [];
  let quality: SeriesQuality[] = [];
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        { format: 'importing [{bar}] {value}/{total} files  {file}', stream: process.stderr, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  try {
    bar?.start(files.length, 0, { file: '' });
    for (const file of files) {
      bar?.update({ file: file.name });
      const result = await importDataFile(store, exchange, file);
      results.push(result);
      if (!result.failed) {
        const first = result.problems[0];
        store.setSkippedRows(
          exchange,
          file.symbol,
          seriesName(file),
          result.problems.length,
          first ? formatProblem(first) : null,
          file.path,
        );
      }
      bar?.increment();
    }
    quality = storeQuality(store, exchange, { pairs: [...new Set(files.map((f) => f.symbol))] });
  } finally {
    bar?.stop();
    store.close();
  }
  const seconds = (performance.now() - started) / 1000;

  const problems = results.flatMap((r) => r.problems);
  for (const p of problems) console.error(`warning: ${formatProblem(p)}`);
  console.log(summaryTable(results));
  const imported = results.filter((r) => !r.failed);
  const failed = results.length - imported.length;
  const read = sum(results, (r) => r.rowsRead);
  const added = sum(results, (r) => r.rowsAdded);
  const malformed = sum(imported, (r) => r.problems.length);
  console.log(
    `imported ${imported.length} of ${files.length} files into ${dbFile} (exchange ${exchange}) in ` +
      `${seconds.toFixed(1)} s: ${read} rows read, ${added} added, ${read - malformed - added} already stored`,
  );
  if (ignored.length > 0) {
    console.log(`ignored ${ignored.length} entries whose names are not data files: ${ignored.join(', ')}`);
  }
  console.log(`\ndata quality (candles stored for exchange ${exchange}):`);
  for (const line of formatQuality(quality)) console.log(`  ${line}`);
  if (problems.length > 0) {
    const what = `${malformed} malformed rows skipped, ${failed} files not imported (see the warnings above)`;
    if (opts.skipBadRows) {
      console.error(`warning: ${what}; accepted with --skip-bad-rows`);
    } else {
      throw new InputError(
        `import-data: ${what}; the good rows are stored. Fix the files and run import-data again (rows already ` +
          'stored are kept), or pass --skip-bad-rows to accept the skipped rows',
      );
    }
  }
}

/** The series a data file fills, as the candle store's skipped-row records name it. */
function seriesName(file: DataFile): string {
  const c = file.content;
  if (c.kind === 'funding') return 'funding';
  return c.priceType === 'mark' ? `mark-${c.timeframe}` : c.timeframe;
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += value(item);
  return total;
}

function formatProblem(p: ImportProblem): string {
  return p.line === null ? `${p.file}: ${p.message}` : `${p.file}:${p.line}: ${p.message}`;
}

/** Fixed-width table: file, rows read, rows added, problems; then a total line. */
function summaryTable(results: readonly FileImportResult[]): string {
  const header = ['file', 'rows read', 'rows added', 'problems'];
  const rows = results.map((r) => [
    r.failed ? `${basename(r.file.path)} (not imported)` : basename(r.file.path),
    String(r.rowsRead),
    String(r.rowsAdded),
    String(r.problems.length),
  ]);
  rows.push([
    `total (${results.length} files)`,
    String(sum(results, (r) => r.rowsRead)),
    String(sum(results, (r) => r.rowsAdded)),
    String(sum(results, (r) => r.problems.length)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const format = (row: readonly string[]): string =>
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [format(header), ...rows.map(format)].join('\n');
}
