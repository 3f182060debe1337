/**
 * `llm-trader worker`: runs the Temporal worker (workflows and activities) until SIGINT or SIGTERM, then shuts down
 * gracefully. Logs go to stderr as JSON lines (pretty on a terminal). With `--write-bundle <file>` it only writes the
 * workflow bundle (for container images) and exits.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { createLogger, parseLogLevel } from '../../worker/logger';
import {
  addConfigOption,
  addLogOptions,
  makeLogger,
  preferSmallHeap,
  readConfig,
  type ConfigOptions,
  type LogOptions,
} from './shared';

interface WorkerOptions extends ConfigOptions, LogOptions {
  bundle?: string;
  writeBundle?: string;
}

/** Adds the `worker` command to `program`. */
export function registerWorker(program: Command): void {
  const command = program
    .command('worker')
    .description(
      'run the Temporal worker: pair workflows, trade reviews and their activities (exchange, market data, model, ' +
        'journal); Ctrl-C or SIGTERM stops it gracefully',
    )
    .option('--bundle <file>', 'use a prebuilt workflow bundle (see --write-bundle) instead of bundling at start')
    .option('--write-bundle <file>', 'write the workflow bundle to <file> and exit (for container images)');
  addConfigOption(command);
  addLogOptions(command);
  command.addHelpText(
    'after',
    '\nConnection: temporal.address / namespace / task_queue / tls from the config; the environment variables\n' +
      'TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY and TEMPORAL_TLS_CERT / _KEY / _CA override or add to them.',
  );
  command.action(async (opts: WorkerOptions, cmd: Command) => {
    preferSmallHeap();
    const { runWorker, writeWorkflowBundle } = await import('../../worker/worker');
    if (opts.writeBundle !== undefined) {
      const file = resolve(opts.writeBundle);
      const logger = createLogger({ level: parseLogLevel(opts.logLevel) ?? 'INFO', format: opts.logFormat });
      const bytes = await writeWorkflowBundle(file, logger);
      console.log(`wrote the workflow bundle to ${file} (${(bytes / 1024).toFixed(0)} KiB)`);
      return;
    }
    if (opts.bundle !== undefined && !existsSync(resolve(opts.bundle))) {
      cmd.error(
        `worker: --bundle ${resolve(opts.bundle)} does not exist; build it with \`llm-trader worker --write-bundle ` +
          `<file>\`, or leave --bundle out to bundle at start`,
        { exitCode: 2, code: 'llm-trader.no-bundle' },
      );
    }
    const config = await readConfig(opts);
    const logger = makeLogger(config, opts);
    await runWorker(config, {
      logger,
      ...(opts.bundle !== undefined ? { workflowBundlePath: resolve(opts.bundle) } : {}),
    });
  });
}
