/**
 * The options of `llm-trader backtest`. What it does is in ./backtest.ts, loaded when the command runs (with the
 * engine, the market data and the report), so that `llm-trader --help` and the other verbs do not load them.
 */
import type { Command } from 'commander';
import { addConfigOption } from './shared';

export interface BacktestCliOptions {
  config?: string;
  data?: string;
  db?: string;
  force?: boolean;
  allowMissing?: boolean;
  pairs?: string[];
  from?: string;
  to?: string;
  policy?: string;
  out?: string;
  report?: string;
  llmBaseUrl?: string;
  cache: boolean;
  concurrency?: string;
  maxCost?: string;
  dryRun?: boolean;
  allowFallbacks?: boolean;
  prefetch?: boolean;
  checkLookahead?: boolean;
  lookaheadSamples: string;
}

/** Pair-cycles rerun by `--check-lookahead` unless `--lookahead-samples` says otherwise. */
export const DEFAULT_LOOKAHEAD_SAMPLES = 50;

/** Adds the `backtest` command to `program`. */
export function registerBacktest(program: Command): void {
  addConfigOption(
    program
      .command('backtest')
      .description(
        'run the live decision cycle over recorded candles: result.json, an HTML report, and the policy beside ' +
          'buy-and-hold and the baseline',
      ),
  )
    .option(
      '--data <dir>',
      'read a CSV folder of recorded candles directly (default: config replay.data, else the database)',
    )
    .option('--db <file>', 'candle database to read (default: <config data_dir>/candles.sqlite)')
    .option('--pairs <pairs...>', 'pairs to trade, e.g. BTC/USDT:USDT ETH/USDT:USDT (default: config pairs)')
    .option('--from <time>', 'first decision time, UTC: 2025-06-01, 2025-06-01T12:00 or Unix ms (default: data start)')
    .option('--to <time>', 'last decision time, UTC (default: data end)')
    .option('--policy <policy>', 'baseline, openai or replay:<llm_decisions.jsonl> (default: config llm.provider)')
    .option('--out <dir>', 'output folder (default: <data_dir>/backtests/<run id>)')
    .option('--report <file>', 'HTML report (default: <out>/report.html)')
    .option('--force', 'replace the results already in --out (and --report), once this run has succeeded')
    .option('--allow-missing', 'replay a decision log that does not cover every decision time (hold/wait instead)')
    .option('--llm-base-url <url>', 'OpenAI-compatible endpoint for --policy openai (overrides llm.api_base)')
    .option('--no-cache', 'ask the model for every decision again (the new answers replace the cached ones)')
    .option('--concurrency <n>', 'model requests in flight at once (default: config backtest.concurrency, 8)')
    .option('--max-cost <usd>', 'stop before the model spend of this run would pass this (default: llm.max_cost_usd)')
    .option('--dry-run', 'print the preview (decisions, tokens, cost, wall time) and stop before the first request')
    .option('--allow-fallbacks', 'do not stop when many model answers are invalid (the fallback alarm)')
    .option(
      '--prefetch',
      "ask the next decision time's questions while the last answers are out (default: backtest.prefetch)",
    )
    .option('--check-lookahead', 'rerun sampled decisions with the future corrupted; exit 1 if any changes')
    .option('--lookahead-samples <n>', 'pair-cycles the look-ahead check reruns', String(DEFAULT_LOOKAHEAD_SAMPLES))
    .action(async (opts: BacktestCliOptions, command: Command) => {
      const { backtest } = await import('./backtest');
      await backtest(opts, command);
    });
}
