/**
 * The `llm-trader` command. Each verb lives in its own module and registers itself here; what a verb does is loaded
 * when it runs (dynamic imports), so that `--help` and each verb load only what they use.
 */
import { Command } from 'commander';
import { registerDownloadData } from './commands/download-data-command';
import { registerImportData } from './commands/import-data-command';
import { registerBacktest } from './commands/backtest-command';
import { registerControl } from './commands/control';
import { registerDecisions } from './commands/decisions';
import { registerDev } from './commands/dev';
import { registerSetup } from './commands/setup';
import { registerStart } from './commands/start';
import { registerStatus } from './commands/status';
import { registerTrades } from './commands/trades';
import { registerWorker } from './commands/worker';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('llm-trader')
    .description('A durable LLM trading agent for crypto perpetual futures, orchestrated by Temporal.')
    .showHelpAfterError('(run with --help for usage)')
    .option('--verbose', 'on failure, print the stack trace too (or set DEBUG=1)')
    .exitOverride();

  program
    .command('config')
    .description('validate a config file and print the effective configuration (secrets masked)')
    .option('-c, --config <file>', 'config file (JSON); without it the documented defaults apply')
    .action(async (opts: { config?: string }) => {
      const [{ loadConfig }, { redactConfig }] = await Promise.all([
        import('../config/load'),
        import('../core/config'),
      ]);
      const config = loadConfig(opts.config ?? null);
      console.log(JSON.stringify(redactConfig(config), null, 2));
    });

  registerImportData(program);
  registerDownloadData(program);
  registerDev(program);
  registerSetup(program);
  registerWorker(program);
  registerStart(program);
  registerControl(program);
  registerStatus(program);
  registerDecisions(program);
  registerTrades(program);
  registerBacktest(program);

  return program;
}
