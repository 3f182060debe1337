/**
 * `llm-trader setup`: registers the five search attributes of the pair workflows (TradingPair, TradingMode, Paused,
 * PositionSide, LastAction) on the configured namespace. Idempotent. `--wait <s>` keeps trying to reach the server for
 * that long first (for containers that start together with the server). The raw equivalent:
 *   temporal operator search-attribute create --name TradingPair --type Keyword   (and so on for each)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { addConfigOption, readConfig, type ConfigOptions } from './shared';

/**
 * The attributes as the Temporal CLI spells them, for the help text (kept here so that `--help` does not load the
 * SDK; test/cli/help.test.ts checks them against SEARCH_ATTRIBUTES in src/workflows/messages.ts).
 */
export const SETUP_SEARCH_ATTRIBUTES: Readonly<Record<string, string>> = {
  TradingPair: 'Keyword',
  TradingMode: 'Keyword',
  Paused: 'Bool',
  PositionSide: 'Keyword',
  LastAction: 'Keyword',
};

interface SetupOptions extends ConfigOptions {
  wait: string;
}

/** Adds the `setup` command to `program`. */
export function registerSetup(program: Command): void {
  const command = program
    .command('setup')
    .description(
      `register the pair workflows' search attributes (${Object.keys(SETUP_SEARCH_ATTRIBUTES).join(', ')}) ` +
        'on the namespace; idempotent',
    )
    .option('--wait <seconds>', 'keep trying to reach the server for this long before giving up', '0');
  addConfigOption(command);
  command.addHelpText(
    'after',
    `\nRaw equivalent:\n${Object.entries(SETUP_SEARCH_ATTRIBUTES)
      .map(([name, type]) => `  temporal operator search-attribute create --name ${name} --type ${type}`)
      .join('\n')}`,
  );
  command.action(async (opts: SetupOptions, cmd: Command) => {
    const waitSeconds = Number(opts.wait);
    if (!Number.isFinite(waitSeconds) || waitSeconds < 0) {
      cmd.error(`setup: --wait must be a number of seconds >= 0, got "${opts.wait}"`, {
        exitCode: 2,
        code: 'llm-trader.bad-option',
      });
    }
    const config = await readConfig(opts);
    const [
      { TemporalUnreachableError, connectClient, temporalSettings },
      { NamespaceNotFoundError, ensureSearchAttributes },
    ] = await Promise.all([import('../../worker/connection'), import('../../worker/search-attributes')]);
    const settings = temporalSettings(config);
    const deadline = Date.now() + waitSeconds * 1000;
    let connected: Awaited<ReturnType<typeof connectClient>> | null = null;
    try {
      for (;;) {
        try {
          connected ??= await connectClient(settings);
          const { added, existing } = await ensureSearchAttributes(connected.connection, settings.namespace);
          if (added.length > 0) console.log(`registered on namespace ${settings.namespace}: ${added.join(', ')}`);
          if (existing.length > 0) {
            console.log(`already registered on namespace ${settings.namespace}: ${existing.join(', ')}`);
          }
          return;
        } catch (err) {
          // a server that is still starting: not listening yet, or its namespace not created yet
          const starting = err instanceof TemporalUnreachableError || err instanceof NamespaceNotFoundError;
          if (!starting || Date.now() >= deadline) throw err;
          console.error(
            `waiting for the Temporal server at ${settings.address} (${(err as Error).message.split(';')[0]})`,
          );
          await sleep(2_000);
        }
      }
    } finally {
      await connected?.connection.close();
    }
  });
}
