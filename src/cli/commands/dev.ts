/**
 * `llm-trader dev`: the one-command local start. Uses the Temporal server at temporal.address when one answers;
 * otherwise starts a dev server there (Web UI, persistence in `<data_dir>/temporal.sqlite`, search attributes
 * registered). Then runs the worker in this process, starts the configured pairs (idempotent: pairs already running
 * carry on), prints the Web UI URL, and on Ctrl-C stops the worker and the server it started. Workflow state persists:
 * the next `llm-trader dev` resumes the pairs.
 *
 * Without a config file it trades on paper with live public market data and the baseline policy, or with the model
 * when OPENAI_API_KEY is set; `--mode replay --data <dir>` runs fully offline on recorded candles.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { Client, Connection } from '@temporalio/client';
import type { Config } from '../../core/config';
import { safeUrl } from '../../llm/errors';
import type { DevServer } from '../../worker/dev-server';
import type { TradingMode } from '../../workflows/messages';
import { startReport } from './start';
import {
  MODES,
  addConfigOption,
  addLogOptions,
  checkPairs,
  makeLogger,
  positiveInt,
  preferSmallHeap,
  readConfig,
  type ConfigOptions,
  type LogOptions,
} from './shared';

/** How long to wait for an existing server to answer before starting one, ms. */
export const REACHABILITY_TIMEOUT_MS = 2_000;

type Provider = Config['llm']['provider'];

interface DevOptions extends ConfigOptions, LogOptions {
  mode?: TradingMode;
  pairs?: string[];
  data?: string;
  provider?: Provider;
  uiPort?: string;
}

/** Adds the `dev` command to `program`. */
export function registerDev(program: Command): void {
  const command = program
    .command('dev')
    .description(
      'one-command local start: a Temporal dev server (if none is running) with the Web UI, the worker, and the ' +
        'configured pairs; Ctrl-C stops it all',
    )
    .addOption(new Option('--mode <mode>', 'trading mode (default: config mode, paper)').choices([...MODES]))
    .option('--pairs <pairs...>', 'ccxt symbols, e.g. BTC/USDT:USDT ETH/USDT:USDT (default: config pairs)')
    .option(
      '--data <dir>',
      'a CSV folder of recorded candles for --mode replay, e.g. ../shared/data/binanceusdm (default: config ' +
        'replay.data, else the candle database <data_dir>/candles.sqlite)',
    )
    .addOption(
      new Option(
        '--provider <name>',
        'decision provider (default: config llm.provider; without --config: openai when OPENAI_API_KEY is set, else baseline)',
      ).choices(['baseline', 'openai', 'replay']),
    )
    .option('--ui-port <port>', 'Web UI port of a dev server started here (default: server port + 1000, i.e. 8233)');
  addConfigOption(command);
  addLogOptions(command);
  command.addHelpText(
    'after',
    '\nRaw equivalent:\n' +
      '  temporal server start-dev --db-filename user_data/temporal.sqlite --ui-port 8233 \\\n' +
      '    --search-attribute TradingPair=Keyword --search-attribute TradingMode=Keyword \\\n' +
      '    --search-attribute Paused=Bool --search-attribute PositionSide=Keyword --search-attribute LastAction=Keyword\n' +
      '  llm-trader worker            # in a second terminal\n' +
      '  llm-trader start             # in a third one\n' +
      '\nThe Temporal CLI comes from TEMPORAL_CLI_PATH, else `temporal` on the PATH, else a one-time download.',
  );
  command.action(async (opts: DevOptions, cmd: Command) => {
    await dev(opts, cmd);
  });
}

/** The provider `dev` uses: --provider, else the config's; without a config file the key in OPENAI_API_KEY picks openai. */
export function devProvider(
  opts: { provider?: Provider; config?: string },
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
): Provider {
  if (opts.provider !== undefined) return opts.provider;
  if (opts.config === undefined && (env.OPENAI_API_KEY ?? '') !== '') return 'openai';
  return config.llm.provider;
}

async function dev(opts: DevOptions, cmd: Command): Promise<void> {
  preferSmallHeap();
  const usage = (message: string): never =>
    cmd.error(`dev: ${message}`, { exitCode: 2, code: 'llm-trader.bad-option' });
  const pairs = opts.pairs !== undefined ? checkPairs(cmd, opts.pairs) : undefined;
  const uiPort = opts.uiPort !== undefined ? positiveInt(cmd, '--ui-port', opts.uiPort) : undefined;
  if (opts.data !== undefined) {
    const dir = resolve(opts.data);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      usage(`--data ${dir} is not a directory; pass the folder of recorded candles, e.g. ../shared/data/binanceusdm`);
    }
  }
  const [
    { connectClient, isReachable, temporalSettings },
    { devServerExecutable, startDevServer },
    { ensureSearchAttributes },
    { startPairs, withStartOverrides },
    { installRuntimeLogger, onShutdownSignals, startWorker },
    { candleDbPath },
  ] = await Promise.all([
    import('../../worker/connection'),
    import('../../worker/dev-server'),
    import('../../worker/search-attributes'),
    import('../../worker/starter'),
    import('../../worker/worker'),
    import('../../store/candle-store'),
  ]);
  const base = await readConfig(opts);
  const overridden = withStartOverrides(base, {
    ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
    ...(pairs !== undefined ? { pairs } : {}),
    ...(opts.data !== undefined ? { replayData: resolve(opts.data) } : {}),
  });
  const config: Config = { ...overridden, llm: { ...overridden.llm, provider: devProvider(opts, base) } };

  const logger = makeLogger(config, opts);
  installRuntimeLogger(logger);
  const settings = temporalSettings(config);

  if (config.mode === 'live') {
    logger.warn(`live mode: the worker places orders on ${liveVenue(config.exchange)} with the configured keys`, {
      exchange: config.exchange.name,
      pairs: config.pairs,
    });
  }

  let server: DevServer | null = null;
  let clientConnection: Connection | null = null;
  try {
    let client: Client;
    if (await isReachable(settings, REACHABILITY_TIMEOUT_MS)) {
      logger.info('using the Temporal server that is already running', { address: settings.address });
      const connected = await connectClient(settings);
      client = connected.client;
      clientConnection = connected.connection;
      const registered = await ensureSearchAttributes(connected.connection, settings.namespace);
      if (registered.added.length > 0) logger.info('registered search attributes', { names: registered.added });
    } else {
      const executable = devServerExecutable();
      logger.info('starting a Temporal dev server', {
        address: settings.address,
        cli: executable.type === 'existing-path' ? executable.path : 'downloading the Temporal CLI (first run only)',
      });
      server = await startDevServer(config, settings, uiPort !== undefined ? { uiPort } : {});
      client = server.env.client;
    }

    const worker = await startWorker(config, {
      logger,
      settings,
      ...(server ? { connection: server.env.nativeConnection } : {}),
    });
    let stopped = false;
    const stopRequested = new Promise<void>((resolveStop) => {
      const dispose = onShutdownSignals(logger, () => {
        stopped = true;
        dispose();
        resolveStop();
      });
      worker.done.then(dispose, dispose);
    });
    try {
      const results = await startPairs(client, settings, config);
      console.log(startReport(results));
      console.log(summary(config, settings.address, server, candleDbPath(config.data_dir)));
      await Promise.race([stopRequested, worker.done]);
    } finally {
      await worker.shutdown();
    }
    if (!stopped) logger.warn('the worker stopped on its own');
  } finally {
    if (clientConnection) await clientConnection.close();
    if (server) {
      logger.info('stopping the Temporal dev server', { dbFile: server.dbFile });
      await server.env.teardown();
    }
  }
}

/** Where live orders go: the exchange's API at `api_url`, its demo trading or testnet, or the real exchange. */
export function liveVenue(exchange: Config['exchange']): string {
  if (exchange.api_url !== null) return `the ${exchange.name} API at ${safeUrl(exchange.api_url)} (exchange.api_url)`;
  if (exchange.demo_trading) return `${exchange.name} demo trading (exchange.demo_trading)`;
  if (exchange.sandbox) return `the ${exchange.name} testnet (exchange.sandbox)`;
  return `${exchange.name}: REAL orders with real money`;
}

function summary(config: Config, address: string, server: DevServer | null, candleDb: string): string {
  const lines = [
    '',
    `mode ${config.mode}, provider ${config.llm.provider}${config.llm.provider === 'openai' ? ` (${config.llm.model})` : ''}, ` +
      (config.mode === 'replay'
        ? `recorded candles from ${config.replay.data !== null ? resolve(config.replay.data) : `the candle database ${candleDb}`}, ${config.replay.seconds_per_candle} s per candle`
        : config.mode === 'paper'
          ? `paper orders on live public market data from ${config.exchange.name}`
          : `orders on ${liveVenue(config.exchange)}`),
  ];
  if (server) {
    lines.push(`Temporal Web UI: ${server.webUiUrl}`);
    lines.push(`Temporal server: ${address} (started here; history persists in ${server.dbFile})`);
  } else {
    lines.push(`Temporal server: ${address} (already running; its Web UI is usually http://localhost:8233)`);
  }
  lines.push(
    'Follow with `llm-trader status` and `llm-trader decisions --follow`; Ctrl-C stops the worker and the server.',
  );
  return lines.join('\n');
}
