/**
 * The options of `llm-trader import-data`. What it does is in ./import-data.ts, loaded when the command runs (with
 * SQLite and the file readers), so that `llm-trader --help` and the other verbs do not load them.
 */
import type { Command } from 'commander';

export interface ImportDataOptions {
  exchange?: string;
  skipBadRows?: boolean;
  db?: string;
  config?: string;
}

/** Adds the `import-data` command to `program`. */
export function registerImportData(program: Command): void {
  program
    .command('import-data')
    .description('import recorded candle, mark-price and funding CSV files into the candle database (idempotent)')
    .argument('<dir>', 'folder of <BASE>_<QUOTE>_<SETTLE>-<tf>.csv[.gz] files, e.g. ../shared/data/binanceusdm')
    .option('--exchange <id>', 'exchange id to file the data under (default: config exchange.name, binanceusdm)')
    .option('--db <file>', 'candle database (default: <config data_dir>/candles.sqlite)')
    .option('-c, --config <file>', 'config file (JSON) for data_dir and exchange.name')
    .option('--skip-bad-rows', 'accept malformed rows and unreadable files: skip them (still reported) and exit 0')
    .action(async (dir: string, opts: ImportDataOptions, command: Command) => {
      const { importData } = await import('./import-data');
      await importData(dir, opts, command);
    });
}
