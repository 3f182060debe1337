/**
 * Starting pair workflows: everything `llm-trader start` and `llm-trader dev` send to Temporal, built from the config.
 *
 * The input, memo, summary and search attributes are built here and nowhere else, and never carry a secret: the
 * workflow input holds the risk limits and timings, the memo a short description of the setup (provider, model,
 * limits), and the keys stay on the worker, read by activities. As a last guard the free-text fields pass through a
 * redactor of the configured secrets.
 */
import { WorkflowExecutionAlreadyStartedError, type SearchAttributePair } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { Config } from '../core/config';
import { parseDateTime } from '../core/dates';
import { candleOpenTime, timeframeMs } from '../core/timeframe';
import type { RecordedMarketSource } from '../exchange/market-source';
import { openRecordedSource } from '../store/recorded-source';
import { safeUrl } from '../llm/errors';
import { DEFAULT_MAX_RETRY_AFTER_MS } from '../llm/openai-provider';
import { Redactor } from '../core/redact';
import type { pairTrader } from '../workflows/pair-trader';
import {
  LastActionKey,
  PAIR_TRADER_WORKFLOW,
  PAIR_WORKFLOW_TASK_TIMEOUT,
  PausedKey,
  PositionSideKey,
  TradingModeKey,
  TradingPairKey,
  pairWorkflowId,
  positionSideLabel,
  type PairTraderInput,
  type ReplaySchedule,
  type TradingMode,
} from '../workflows/messages';
import { OperatorError } from './errors';
import type { TemporalSettings } from './connection';

export { pairWorkflowId };

/** A replay starts this far into the recorded data by default, so that slow indicators have history behind them. */
export const REPLAY_WARMUP_MS = 20 * 24 * 60 * 60 * 1000;

/** Model answers per decision: the first one, plus one repair round when it is invalid (src/llm/openai-provider.ts). */
export const DECIDE_ROUNDS = 2;

/** Added to the decide budget for building the request, validation, journaling and scheduling, ms. */
export const DECIDE_MARGIN_MS = 30_000;

/** Most attempts the workflow gives the decide activity (on top of the provider's own retries). */
export const MAX_DECIDE_ATTEMPTS = 3;

/**
 * Start-to-close timeout of the decide activity, ms: the worst case of one decision, i.e. for each of the
 * {@link DECIDE_ROUNDS} rounds, `retry_times + 1` requests of up to `llm.timeout` seconds each plus `retry_times` waits
 * of at most the provider's Retry-After cap (30 s), then {@link DECIDE_MARGIN_MS}.
 *
 * Defaults (timeout 60 s, retry_times 2): 2 × (3 × 60 s + 2 × 30 s) + 30 s = 510 s.
 */
export function decideTimeoutMs(llm: Pick<Config['llm'], 'timeout' | 'retry_times'>): number {
  const requestMs = Math.max(1, Math.round(llm.timeout * 1000));
  const perRound = (llm.retry_times + 1) * requestMs + llm.retry_times * DEFAULT_MAX_RETRY_AFTER_MS;
  return DECIDE_ROUNDS * perRound + DECIDE_MARGIN_MS;
}

/**
 * Attempts of the decide activity: as many whole timeouts as fit in one main-timeframe candle of wall time (a retry
 * that cannot finish before the next candle closes only delays that candle), between 1 and {@link MAX_DECIDE_ATTEMPTS}.
 * A replay's candle lasts `replay.seconds_per_candle` wall seconds, so a replay gets 1 attempt.
 *
 * Defaults: paper or live 30m → floor(1800 s / 510 s) = 3; replay at 2 s per candle → 1.
 */
export function decideAttempts(
  config: Pick<Config, 'mode' | 'llm' | 'timeframes' | 'replay'>,
  timeoutMs: number = decideTimeoutMs(config.llm),
): number {
  const candleWallMs =
    config.mode === 'replay' ? config.replay.seconds_per_candle * 1000 : timeframeMs(config.timeframes.main);
  return Math.min(MAX_DECIDE_ATTEMPTS, Math.max(1, Math.floor(candleWallMs / timeoutMs)));
}

/**
 * A short, secret-free description of the setup for the workflow memo and the Web UI: mode, exchange, timeframes,
 * decision provider (model and endpoint host for `openai`), the main risk limits, and the mode's own settings.
 * Keys and secrets are never read; free-text values pass through a redactor of the configured secrets anyway.
 */
export function configSummary(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string | number | boolean> {
  const summary: Record<string, string | number | boolean> = {
    mode: config.mode,
    exchange: config.exchange.name,
    timeframe: config.timeframes.main,
    informative: config.timeframes.informative.join(','),
    provider: config.llm.provider,
  };
  if (config.llm.provider === 'openai') {
    summary.model = config.llm.model;
    summary.endpoint = safeUrl(config.llm.api_base);
    summary.temperature = config.llm.temperature;
  }
  summary.maxContextTokens = config.context.max_context_tokens;
  summary.maxLeverage = config.risk.max_leverage;
  summary.maxPositionPct = config.risk.max_position_pct;
  summary.maxOpenTrades = config.risk.max_open_trades;
  summary.minConfidence = config.risk.min_confidence;
  summary.emergencyStopLoss = config.risk.emergency_stop_loss;
  summary.allowModelFreedom = config.risk.allow_model_freedom;
  if (config.mode === 'live') {
    summary.sandbox = config.exchange.sandbox;
    summary.demoTrading = config.exchange.demo_trading;
  } else {
    summary.startingBalance = config.paper.starting_balance;
  }
  if (config.mode === 'replay') summary.secondsPerCandle = config.replay.seconds_per_candle;
  return Redactor.fromConfig(config, env).redactDeep(summary);
}

function iso(t: number): string {
  return new Date(t).toISOString();
}

/** The first grid point of `tf` at or after `t`. */
function alignUp(t: number, tf: string): number {
  const open = candleOpenTime(t, tf);
  return open === t ? t : open + timeframeMs(tf);
}

/**
 * The replay schedule of `pair` from the recorded data (the candle database, or the CSV folder `config.replay.data`;
 * see src/store/recorded-source.ts):
 * - `recordedEnd`: the last main-timeframe close at which every configured timeframe (main and informative) can still
 *   be served, i.e. the candle that has closed there is recorded for each of them;
 * - `recordedStart`: `replay.start` (ISO date) when set, else the first recorded candle + 20 days
 *   ({@link REPLAY_WARMUP_MS}) rounded up to the main timeframe;
 * - `wallStart` null (the workflow sets it on its first run), `secondsPerCandle` from `replay.seconds_per_candle`.
 * @param source recorded data to read (default: that of the config, opened and closed here); pass one to share its
 *   cache between pairs
 * @throws OperatorError when the pair has no recorded data, `replay.start` is not a date or lies outside the data,
 *   or the data is too short for the warm-up
 */
export async function replaySchedule(
  config: Pick<Config, 'timeframes' | 'replay' | 'data_dir' | 'exchange'>,
  pair: string,
  source?: RecordedMarketSource,
): Promise<ReplaySchedule> {
  if (source === undefined) {
    const opened = await openRecordedSource(config);
    try {
      return await replaySchedule(config, pair, opened.market);
    } finally {
      opened.close();
    }
  }
  const main = config.timeframes.main;
  const dir = source.data.description;
  const load = async (tf: string) => {
    try {
      return await source.history(pair, tf);
    } catch (err) {
      throw new OperatorError(
        `replay of ${pair}: ${(err as Error).message} (recorded data: ${dir}; import or download the pair, set ` +
          'replay.data, or pass `llm-trader dev --data <dir>`)',
        { cause: err },
      );
    }
  };
  const candles = await load(main);
  const first = candles[0];
  const last = candles.at(-1);
  if (first === undefined || last === undefined) {
    throw new OperatorError(`replay of ${pair}: no ${main} candles recorded in ${dir}`);
  }
  let recordedEnd = last.time + timeframeMs(main);
  for (const tf of config.timeframes.informative) {
    if (tf === main) continue;
    const informative = await load(tf);
    const lastInformative = informative.at(-1);
    if (lastInformative === undefined) throw new OperatorError(`replay of ${pair}: no ${tf} candles in ${dir}`);
    // served while the candle that closed last at asOf is recorded: asOf < last open + 2 x timeframe
    const servedUntil = lastInformative.time + 2 * timeframeMs(tf) - 1;
    recordedEnd = Math.min(recordedEnd, candleOpenTime(servedUntil, main));
  }

  let recordedStart: number;
  if (config.replay.start !== null) {
    recordedStart = parseDateTime(config.replay.start) ?? Number.NaN;
    if (!Number.isFinite(recordedStart)) {
      throw new OperatorError(
        `replay.start must be an ISO date like 2025-06-10T00:00:00Z, got ${JSON.stringify(config.replay.start)}`,
      );
    }
    if (recordedStart < first.time || recordedStart >= recordedEnd) {
      throw new OperatorError(
        `replay.start ${config.replay.start} is outside the recorded data of ${pair} in ${dir} ` +
          `(${iso(first.time)} to ${iso(recordedEnd)}); choose a start inside it, or leave replay.start null for ` +
          `20 days after the first candle`,
      );
    }
  } else {
    recordedStart = alignUp(first.time + REPLAY_WARMUP_MS, main);
    if (recordedStart >= recordedEnd) {
      throw new OperatorError(
        `replay of ${pair}: the data in ${dir} spans ${iso(first.time)} to ${iso(recordedEnd)}, too short for the ` +
          `20-day warm-up; record more data or set replay.start`,
      );
    }
  }
  return { recordedStart, wallStart: null, secondsPerCandle: config.replay.seconds_per_candle, recordedEnd };
}

/**
 * The input of `pairTrader` for `pair` under `config` (config.mode decides the mode). Pure.
 * @param replay the schedule from {@link replaySchedule}; required in replay mode, ignored otherwise
 * @throws Error in replay mode without a schedule
 */
export function pairTraderInput(
  config: Config,
  pair: string,
  replay: ReplaySchedule | null,
  env: NodeJS.ProcessEnv = process.env,
  account?: string,
): PairTraderInput {
  if (config.mode === 'replay' && replay === null) {
    throw new Error(`pairTraderInput(${pair}): replay mode needs a replay schedule (see replaySchedule)`);
  }
  const timeoutMs = decideTimeoutMs(config.llm);
  return {
    pair,
    exchange: config.exchange.name,
    mode: config.mode,
    timeframe: config.timeframes.main,
    graceMs: Math.round(config.temporal.grace_seconds * 1000),
    maxCyclesPerRun: config.temporal.max_cycles_per_run,
    risk: config.risk,
    maintenanceMarginRate: config.paper.maintenance_margin_rate,
    // at least one: the status query shows the last decision
    maxRecentDecisions: Math.max(1, config.experience.max_recent_decisions_context),
    decideTimeoutMs: timeoutMs,
    decideAttempts: decideAttempts(config, timeoutMs),
    replay: config.mode === 'replay' ? replay : null,
    ...(account !== undefined ? { account } : {}),
    configSummary: configSummary(config, env),
  };
}

/**
 * The account of a replay execution started at `now`: `replay-<UTC time>`, e.g. `replay-20250610T000000Z`. Each
 * `start` of a replay gets its own paper account (`paper-replay-<...>.sqlite`) and journal run, so a rerun starts from
 * the starting balance instead of an account an earlier replay already advanced to the end of the data.
 */
export function replayAccountId(now: number = Date.now()): string {
  return `replay-${new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '')}`;
}

/** The account of the pairs `start` starts under `config`: a new replay account, else `paper` or `live`. */
export function accountFor(config: Pick<Config, 'mode'>, now: number = Date.now()): string {
  return config.mode === 'replay' ? replayAccountId(now) : config.mode;
}

/** The workflow memo (shown in the Web UI, carried across continue-as-new): the summary and the replay window. */
export function pairMemo(input: PairTraderInput): Record<string, unknown> {
  const memo: Record<string, unknown> = { pair: input.pair, config: input.configSummary };
  if (input.account !== undefined) memo.account = input.account;
  if (input.replay) {
    memo.replay = {
      from: iso(input.replay.recordedStart),
      to: iso(input.replay.recordedEnd),
      secondsPerCandle: input.replay.secondsPerCandle,
    };
  }
  return memo;
}

/** The search attributes a pair workflow starts with (the workflow keeps Paused, PositionSide and LastAction current). */
export function initialSearchAttributes(input: Pick<PairTraderInput, 'pair' | 'mode'>): SearchAttributePair[] {
  return [
    { key: TradingPairKey, value: input.pair },
    { key: TradingModeKey, value: input.mode },
    { key: PausedKey, value: false },
    { key: PositionSideKey, value: positionSideLabel(null) },
    { key: LastActionKey, value: 'none' },
  ];
}

/** One line for the Web UI's workflow list, e.g. `BTC/USDT:USDT · paper · baseline`. */
export function pairSummaryLine(input: PairTraderInput): string {
  const provider = input.configSummary.provider;
  const model = input.configSummary.model;
  return `${input.pair} · ${input.mode} · ${String(provider)}${model !== undefined ? ` ${String(model)}` : ''}`;
}

export interface PairStartResult {
  pair: string;
  workflowId: string;
  /** `started`: a new run; `already-running`: left alone (start is idempotent) */
  outcome: 'started' | 'already-running';
  /** the run id of the new run; null when it was already running */
  runId: string | null;
}

/**
 * Starts a `pairTrader` workflow for each pair (config.mode, config.pairs unless `pairs` is given). A pair whose
 * workflow is already running is left alone. Replay schedules read the recorded data once for all pairs.
 * @throws OperatorError when the server refuses the search attributes (not registered: run `llm-trader setup`) or a
 *   replay schedule cannot be built; other client errors as they are
 */
export async function startPairs(
  client: Client,
  settings: Pick<TemporalSettings, 'taskQueue' | 'namespace'>,
  config: Config,
  pairs: readonly string[] = config.pairs,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PairStartResult[]> {
  const opened = config.mode === 'replay' ? await openRecordedSource(config) : null;
  try {
    return await startEach(client, settings, config, pairs, env, opened?.market ?? null);
  } finally {
    opened?.close();
  }
}

async function startEach(
  client: Client,
  settings: Pick<TemporalSettings, 'taskQueue' | 'namespace'>,
  config: Config,
  pairs: readonly string[],
  env: NodeJS.ProcessEnv,
  source: RecordedMarketSource | null,
): Promise<PairStartResult[]> {
  const results: PairStartResult[] = [];
  const account = accountFor(config);
  for (const pair of pairs) {
    const replay = source ? await replaySchedule(config, pair, source) : null;
    const input = pairTraderInput(config, pair, replay, env, account);
    const workflowId = pairWorkflowId(input.exchange, pair);
    try {
      const handle = await client.workflow.start<typeof pairTrader>(PAIR_TRADER_WORKFLOW, {
        workflowId,
        taskQueue: settings.taskQueue,
        args: [input],
        memo: pairMemo(input),
        typedSearchAttributes: initialSearchAttributes(input),
        staticSummary: pairSummaryLine(input),
        workflowTaskTimeout: PAIR_WORKFLOW_TASK_TIMEOUT,
      });
      results.push({ pair, workflowId, outcome: 'started', runId: handle.firstExecutionRunId });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        results.push({ pair, workflowId, outcome: 'already-running', runId: null });
        continue;
      }
      if (err instanceof Error && /search attribute/i.test(err.message)) {
        throw new OperatorError(
          `the server refused the search attributes of ${workflowId} (${err.message.split('\n')[0]}): register them ` +
            `on namespace ${settings.namespace} with \`llm-trader setup\` (\`llm-trader dev\` registers them itself)`,
          { cause: err },
        );
      }
      throw err;
    }
  }
  return results;
}

/** `config` with the `start` / `dev` command-line overrides applied (mode, pairs, replay data folder). */
export function withStartOverrides(
  config: Config,
  overrides: { mode?: TradingMode; pairs?: readonly string[]; replayData?: string },
): Config {
  return {
    ...config,
    mode: overrides.mode ?? config.mode,
    pairs: overrides.pairs !== undefined ? [...overrides.pairs] : config.pairs,
    replay: overrides.replayData !== undefined ? { ...config.replay, data: overrides.replayData } : config.replay,
  };
}
