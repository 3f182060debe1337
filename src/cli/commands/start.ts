/**
 * `llm-trader start [--pairs ...] [--mode paper|live|replay]`: starts one `pairTrader` workflow per pair. Idempotent:
 * a pair whose workflow is already running is left alone and reported as such. Prints the workflow ids.
 */
import { Option, type Command } from 'commander';
import type { TradingMode } from '../../workflows/messages';
import type { PairStartResult } from '../../worker/starter';
import { MODES, addConfigOption, checkPairs, formatTable, readConfig, withClient, type ConfigOptions } from './shared';

interface StartOptions extends ConfigOptions {
  pairs?: string[];
  mode?: TradingMode;
}

/** Adds the `start` command to `program`. */
export function registerStart(program: Command): void {
  const command = program
    .command('start')
    .description('start the pair workflows (idempotent: a pair already running is left alone)')
    .option('--pairs <pairs...>', 'ccxt symbols, e.g. BTC/USDT:USDT ETH/USDT:USDT (default: config pairs)')
    .addOption(
      new Option(
        '--mode <mode>',
        'trading mode of the started workflows (default: config mode); the worker must run with the same mode, ' +
          'because its config decides the exchange and the market data',
      ).choices([...MODES]),
    );
  addConfigOption(command);
  command.action(async (opts: StartOptions, cmd: Command) => {
    const pairs = opts.pairs !== undefined ? checkPairs(cmd, opts.pairs) : undefined;
    const { startPairs, withStartOverrides } = await import('../../worker/starter');
    const config = withStartOverrides(await readConfig(opts), {
      ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
      ...(pairs !== undefined ? { pairs } : {}),
    });
    const results = await withClient(config, (client, settings) => startPairs(client, settings, config));
    console.log(startReport(results));
    console.log(
      `mode ${config.mode}; the workflows run on task queue ${config.temporal.task_queue}: keep \`llm-trader worker\` ` +
        'running (with the same config), and follow them with `llm-trader status` or in the Web UI',
    );
  });
}

/** The table `start` prints: pair, what happened, workflow id. */
export function startReport(results: readonly PairStartResult[]): string {
  return formatTable(
    ['pair', 'result', 'workflow id'],
    results.map((r) => [r.pair, r.outcome === 'started' ? 'started' : 'already running', r.workflowId]),
  );
}
