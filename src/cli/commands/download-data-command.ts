/**
 * The options of `llm-trader download-data`. What it does is in ./download-data.ts, loaded when the command runs
 * (with SQLite and, for the exchange, ccxt), so that `llm-trader --help` and the other verbs do not load them.
 */
import type { Command } from 'commander';

export interface DownloadDataOptions {
  exchange?: string;
  pairs?: string[];
  timeframes?: string[];
  days: string;
  funding: boolean;
  limit: string;
  db?: string;
  config?: string;
}

/** Adds the `download-data` command to `program`. */
export function registerDownloadData(program: Command): void {
  program
    .command('download-data')
    .description('download closed candles and funding history from the exchange into the candle database (resumable)')
    .option('--exchange <id>', 'ccxt exchange id (default: config exchange.name, binanceusdm)')
    .option('--pairs <pairs...>', 'ccxt symbols, e.g. BTC/USDT:USDT ETH/USDT:USDT (default: config pairs)')
    .option('--timeframes <tfs...>', 'e.g. 30m 1h 4h 1d (default: config timeframes.main and .informative)')
    .option('--days <n>', 'the last N days up to now (older stored data is kept, not extended)', '90')
    .option('--no-funding', 'skip the funding-rate history')
    .option('--limit <n>', 'rows per request', '1000')
    .option('--db <file>', 'candle database (default: <config data_dir>/candles.sqlite)')
    .option('-c, --config <file>', 'config file (JSON) for defaults')
    .action(async (opts: DownloadDataOptions, command: Command) => {
      const { downloadData } = await import('./download-data');
      await downloadData(opts, command);
    });
}
