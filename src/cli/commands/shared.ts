/**
 * Helpers shared by the Temporal verbs (worker, start, pause/resume/exit/stop, status, decisions, trades, setup, dev):
 * the common options, pair validation, the client connection, the logger, and plain-text tables.
 *
 * The verbs load the config schema, the Temporal SDK, SQLite and the exchange and model clients inside their actions
 * (dynamic imports), so `llm-trader --help` loads commander and the commands' options only, and each verb what it
 * uses (test/cli/lazy-loading.test.ts checks it).
 */
import { setFlagsFromString } from 'node:v8';
import { Option, type Command } from 'commander';
import type { Client, Connection } from '@temporalio/client';
import type { Config } from '../../core/config';
import { PAIR_RE } from '../../core/pair-symbol';
import { secretsOf } from '../../core/redact';
import type { RunSummary } from '../../store/journal';
import type { TemporalSettings } from '../../worker/connection';
import type { TradingMode } from '../../workflows/messages';
import {
  LOG_FORMATS,
  LOG_LEVELS,
  createLogger,
  parseLogLevel,
  type LogFormat,
  type StructuredLogger,
} from '../../worker/logger';

export const MODES = ['paper', 'live', 'replay'] as const satisfies readonly TradingMode[];

export interface ConfigOptions {
  config?: string;
}

export interface LogOptions {
  logLevel: string;
  logFormat: LogFormat;
}

/** Adds `-c, --config <file>`. */
export function addConfigOption(command: Command): Command {
  return command.option('-c, --config <file>', 'config file (JSON); without it the documented defaults apply');
}

/** Adds `--log-level` and `--log-format`. */
export function addLogOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--log-level <level>', 'least severe level logged (stderr)')
        .choices(LOG_LEVELS.map((l) => l.toLowerCase()))
        .default('info'),
    )
    .addOption(
      new Option('--log-format <format>', 'log records as JSON lines, or pretty lines (auto: pretty on a terminal)')
        .choices([...LOG_FORMATS])
        .default('auto'),
    );
}

/**
 * Tells V8 to favour memory over speed (`--optimize-for-size`: smaller heap growth steps and young generation, for
 * this isolate and the workflow thread the Temporal worker starts later), for the long-running verbs (worker, dev):
 * their work comes in small bursts at candle closes, and V8's default sizing let a 20-pair worker's heap hold
 * ~2.5 times its live data in garbage. Call it before the verb allocates much; the batch verbs (backtest) keep V8's
 * defaults, which run them faster.
 */
export function preferSmallHeap(): void {
  setFlagsFromString('--optimize-for-size');
}

/**
 * Tells V8 to collect the old generation again once it has doubled since the last full collection
 * (`--heap-growing-percent=100`), for the batch verb (backtest). V8's own factor for these small heaps is about 4, so
 * the database backtest's last full collection came while its candles were loading (`--trace-gc`) and the old
 * generation then filled with garbage through the cycles. The 17-pair baseline backtest, whole command, 4-6 alternating
 * runs each with `/usr/bin/time` (2026-12-06), over the database / the CSV files: 138-144 / 127-134 MB at 1.62-1.76 /
 * 1.65-1.84 s with it; 155-163 / 144-154 MB at 1.53-1.66 / 1.62-1.77 s without; 143-188 / 129-142 MB with 150. Set
 * when the verb starts, not on Node's command line: the worker with it held 289-302 MB steady instead of 238-241 MB
 * (bench/scale.ts, 20 replay pairs, alternating), and V8 does not take the flag from NODE_OPTIONS.
 */
export function collectOldGenerationAtDouble(): void {
  setFlagsFromString('--heap-growing-percent=100');
}

/**
 * The config of `--config` (defaults without it). Throws ConfigError (exit 2 in main.ts) when it is invalid. The
 * schema and the JSONC parser are loaded here, not at the top: `--help` needs neither.
 */
export async function readConfig(opts: ConfigOptions): Promise<Config> {
  const { loadConfig } = await import('../../config/load');
  return loadConfig(opts.config ?? null);
}

/** Every secret the process knows (config keys and the secret environment variables), for the logger to hide. */
export function knownSecrets(config: Config, env: NodeJS.ProcessEnv = process.env): string[] {
  return secretsOf(config, env);
}

/** The process logger for a long-running verb (worker, dev): stderr, the chosen level and format, secrets hidden. */
export function makeLogger(config: Config, opts: LogOptions): StructuredLogger {
  return createLogger({
    level: parseLogLevel(opts.logLevel) ?? 'INFO',
    format: opts.logFormat,
    secrets: knownSecrets(config),
  });
}

/**
 * Checks a pair argument; on a bad one prints the expected form and exits 2 (through commander).
 * Returns the pair unchanged.
 */
export function checkPair(command: Command, pair: string): string {
  if (PAIR_RE.test(pair)) return pair;
  const short = /^([A-Za-z0-9]+)\/?(USDT|USDC)$/i.exec(pair);
  const hint = short
    ? ` (did you mean ${short[1]!.toUpperCase()}/${short[2]!.toUpperCase()}:${short[2]!.toUpperCase()}?)`
    : '';
  return command.error(
    `${command.name()}: invalid pair "${pair}": expected a ccxt perpetual symbol BASE/QUOTE:SETTLE, e.g. BTC/USDT:USDT${hint}`,
    { exitCode: 2, code: 'llm-trader.bad-pair' },
  );
}

/** Checks every pair of `--pairs`; see {@link checkPair}. */
export function checkPairs(command: Command, pairs: readonly string[]): string[] {
  return pairs.map((p) => checkPair(command, p));
}

/**
 * Runs `fn` with a client connected to the configured server, and closes the connection afterwards.
 * @throws TemporalUnreachableError (a one-line message naming the address and how to start a server) when the
 *   server does not answer within 5 s
 */
export async function withClient<T>(
  config: Config,
  fn: (client: Client, settings: TemporalSettings, connection: Connection) => Promise<T>,
): Promise<T> {
  const { connectClient, temporalSettings } = await import('../../worker/connection');
  const settings = temporalSettings(config);
  const { client, connection } = await connectClient(settings);
  try {
    return await fn(client, settings, connection);
  } finally {
    await connection.close();
  }
}

/** A plain-text table: columns padded to their widest cell; `right` lists the right-aligned column indexes. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: readonly number[] = [],
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (right.includes(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** `2025-06-10 00:30Z` (UTC, minutes); `-` for null. */
export function formatTime(ms: number | null): string {
  if (ms === null) return '-';
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

/** `3s`, `4m 12s`, `2h 5m`, `3d 4h`: a duration in ms, rounded down to its two largest units. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** A number with `digits` decimals and an explicit sign (`+1.25`, `-0.40`); `-` for null. */
export function formatSigned(value: number | null, digits = 2): string {
  if (value === null || !Number.isFinite(value)) return '-';
  return `${value > 0 ? '+' : ''}${value.toFixed(digits)}`;
}

/** A price or quantity with up to `significant` significant digits, without exponent notation. */
export function formatNumber(value: number, significant = 6): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const decimals = Math.min(12, Math.max(0, significant - 1 - magnitude));
  return value
    .toFixed(decimals)
    .replace(/(\.\d*?)0+$/, '$1')
    .replace(/\.$/, '');
}

/** Parses a positive integer option, or exits 2 saying what was expected. */
export function positiveInt(command: Command, name: string, text: string): number {
  const n = Number(text);
  if (Number.isInteger(n) && n > 0) return n;
  return command.error(`${command.name()}: ${name} must be a positive integer, got "${text}"`, {
    exitCode: 2,
    code: 'llm-trader.bad-option',
  });
}

/** A run as the CLI names it: `""` is the run of rows journaled before runs were recorded. */
export function runName(run: string): string {
  return run === '' ? '"" (journaled before runs were recorded)' : run;
}

/**
 * The line above the table: the run shown, and how to see the others, e.g.
 * `run paper (the current run; also in the journal: replay-3 (40 decisions); --run <run> shows one, --run all every run)`.
 */
export function runHeader(run: string | null, current: string | null, runs: readonly RunSummary[]): string {
  const count = (r: RunSummary): string => `${r.decisions} decisions, ${r.trades} trades`;
  if (run === null) {
    const list = runs.map((r) => `${runName(r.run)} (${count(r)})`).join(', ');
    return `all runs${list ? `: ${list}` : ''}; --run <run> shows one`;
  }
  const others = runs.filter((r) => r.run !== run);
  const what =
    run === current ? 'the current run' : current === null ? 'no runs yet' : `the current run is ${runName(current)}`;
  const also =
    others.length === 0
      ? 'the only run in the journal'
      : `also in the journal: ${others.map((r) => `${runName(r.run)} (${count(r)})`).join(', ')}; ` +
        '--run <run> shows one, --run all every run';
  return `run ${runName(run)} (${what}; ${also})`;
}
