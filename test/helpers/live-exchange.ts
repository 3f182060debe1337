/**
 * Live mode against the local exchange (test/local-exchange), in process: the worker's real activities
 * (`createActivityRuntime` with a live configuration whose `exchange.api_url` is the local exchange), the real ccxt
 * `binanceusdm` over HTTP, and decision cycles (`runCycle`) wired to the activities the way pairTrader wires them. The
 * exchange runs on a market clock the test sets: each cycle at `asOf` runs at market time `asOf + grace`.
 *
 * Decisions come from the `replay` provider over a script written here (one llm_decisions.jsonl line per decision).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure, type Logger } from '@temporalio/common';
import { ConfigSchema, type Config } from '../../src/core/config';
import { createActivityRuntime, type ActivityRuntime, type ActivityRuntimeOptions } from '../../src/activities';
import { NON_RETRYABLE_EXCHANGE_ERROR_TYPES } from '../../src/core/error-types';
import type { Activities, BuildContextRequest, ExecuteActivityRequest, PromptRef } from '../../src/activities/types';
import { initialPairState, runCycle, type CycleResult, type CycleSteps, type PairState } from '../../src/core/cycle';
import { decisionId } from '../../src/core/ids';
import { admit, emptyBook } from '../../src/core/admission';
import type { Execution, ToolName } from '../../src/core/types';
import { LocalExchange, type LocalExchangeOptions } from '../local-exchange/server';

export const LOCAL_API_KEY = 'local-exchange-test-key-0123456789';
export const LOCAL_API_SECRET = 'local-exchange-test-secret-9876543210-abcdef';
export const DATA_DIR = join(process.cwd(), '../shared/data/binanceusdm');
export const HALF_HOUR = 30 * 60_000;
/** market seconds between a candle close and the cycle that decides on it (temporal.grace_seconds) */
export const GRACE_MS = 5_000;

export const silentLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A settable market clock and a local exchange running on it. */
export async function startLocalExchange(
  start: number,
  opts: Partial<LocalExchangeOptions> = {},
): Promise<{ exchange: LocalExchange; clock: { now: number } }> {
  const clock = { now: start };
  const exchange = await LocalExchange.start({
    apiKey: LOCAL_API_KEY,
    apiSecret: LOCAL_API_SECRET,
    clock: () => clock.now,
    dataDir: DATA_DIR,
    // cycles run far faster than the market clock here (20 half-hours in a few seconds): Binance's 2400 weight per
    // minute would throttle them; tests of the limit set their own
    weightLimit: 1_000_000,
    ...opts,
  });
  return { exchange, clock };
}

/** One decision of the script: the tool and its arguments (`pair` is added). */
export interface ScriptedDecision {
  time: number;
  tool: ToolName;
  args: Record<string, unknown>;
}

/** Writes the script as llm_decisions.jsonl lines for the `replay` provider. */
export function writeScript(file: string, pair: string, decisions: readonly ScriptedDecision[]): void {
  const lines = decisions.map((d) =>
    JSON.stringify({
      timestamp: new Date(d.time).toISOString(),
      pair,
      action: d.tool,
      decision: { pair, ...d.args },
      model: 'script',
      source: 'script',
    }),
  );
  writeFileSync(file, `${lines.join('\n')}\n`);
}

/** Arguments of the tools, with the fields a script does not care about filled in. */
export const tools = {
  entry(leverage: number, stake: number, reason = 'scripted entry'): Record<string, unknown> {
    return {
      leverage,
      stake_amount: stake,
      confidence_score: 80,
      key_support: 1,
      key_resistance: 10_000_000,
      rsi_value: 50,
      trend_strength: 'medium',
      reason,
    };
  },
  adjust(pct: number, reason = 'scripted adjustment'): Record<string, unknown> {
    return { adjustment_pct: pct, confidence_score: 80, key_support: 1, key_resistance: 10_000_000, reason };
  },
  exit(reason = 'scripted exit'): Record<string, unknown> {
    return { confidence_score: 80, rsi_value: 50, trade_score: 60, reason };
  },
  hold(reason = 'scripted hold'): Record<string, unknown> {
    return { confidence_score: 70, rsi_value: 50, reason };
  },
};

/** A live configuration for the local exchange at `apiUrl` (keys in the config, as EXCHANGE_API_KEY would set). */
export function liveConfig(
  dataDir: string,
  apiUrl: string,
  pairs: readonly string[],
  extra: Record<string, unknown> = {},
): Config {
  return ConfigSchema.parse({
    mode: 'live',
    pairs: [...pairs],
    data_dir: dataDir,
    exchange: {
      name: 'binanceusdm',
      api_key: LOCAL_API_KEY,
      api_secret: LOCAL_API_SECRET,
      api_url: apiUrl,
      // ccxt's limiter stays on; 1 ms per weight unit instead of Binance's 50 keeps the suite fast
      ccxt_options: { rateLimit: 1, timeout: 3_000 },
    },
    llm: { provider: 'replay', replay_file: join(dataDir, 'script.jsonl') },
    risk: { max_leverage: 20, cooldown_minutes: 0, max_open_trades: 10 },
    temporal: { grace_seconds: GRACE_MS / 1000 },
    ...extra,
  });
}

/** What the workflow's context step hands to decide (as in src/workflows/pair-trader.ts). */
export interface StepContext {
  ref: PromptRef;
  request: BuildContextRequest;
}

/** The activity context's logger: failures are the tests' to report. */
const QUIET: Logger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** A retry policy as the workflow gives its activities (src/workflows/pair-trader.ts). */
export interface RetryPolicy {
  maxAttempts: number;
  initialMs: number;
  coefficient: number;
  maxMs: number;
}

/** The order step's policy: 6 attempts, 1 s then doubling up to 30 s. */
export const ORDER_RETRY: RetryPolicy = { maxAttempts: 6, initialMs: 1_000, coefficient: 2, maxMs: 30_000 };
/** The market step's policy: 8 attempts, 1 s then doubling up to 30 s. */
export const MARKET_RETRY: RetryPolicy = { maxAttempts: 8, initialMs: 1_000, coefficient: 2, maxMs: 30_000 };

export interface Retried<T> {
  result: T;
  attempts: number;
  /** the failures of the attempts before the one that succeeded */
  failures: ApplicationFailure[];
}

/**
 * Runs an activity as Temporal does: in an activity context carrying its attempt number, again with the same input
 * after the policy's delay while the failure is retryable. A non-retryable failure, or the last attempt's, is thrown.
 */
export async function withRetries<T>(
  run: (env: MockActivityEnvironment) => Promise<T>,
  policy: RetryPolicy,
): Promise<Retried<T>> {
  const failures: ApplicationFailure[] = [];
  for (let attempt = 1; ; attempt++) {
    const env = new MockActivityEnvironment({ attempt }, { logger: QUIET });
    try {
      return { result: await run(env), attempts: attempt, failures };
    } catch (err) {
      if (!(err instanceof ApplicationFailure) || err.nonRetryable || attempt >= policy.maxAttempts) throw err;
      failures.push(err);
      const delay = Math.min(policy.maxMs, policy.initialMs * policy.coefficient ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** `execute` with the order step's retry policy. */
export function executeWithRetries(
  activities: Activities,
  req: ExecuteActivityRequest,
  policy: RetryPolicy = ORDER_RETRY,
): Promise<Retried<Execution>> {
  return withRetries((env) => env.run(activities.execute, req), policy);
}

/**
 * What pairTrader does with an order step that failed for good with a non-retryable exchange type: the cycle records
 * a rejected order and goes on.
 */
async function orderStep(activities: Activities, req: ExecuteActivityRequest): Promise<Execution> {
  try {
    return (await executeWithRetries(activities, req)).result;
  } catch (err) {
    const type = err instanceof ApplicationFailure ? (err.type ?? '') : '';
    if (!(NON_RETRYABLE_EXCHANGE_ERROR_TYPES as readonly string[]).includes(type)) throw err;
    return {
      clientOrderId: req.clientOrderId,
      status: 'rejected',
      fills: [],
      position: null,
      error: `${type}: ${(err as Error).message}`,
    };
  }
}

/** Decision cycles of one pair over a set of activities, wired as pairTrader wires them. */
export interface PairCycles {
  /** every event of every cycle, in order */
  events: CycleResult<StepContext>['events'];
  state: PairState;
  /** runs the cycle of the candle closing at `asOf` */
  cycle(asOf: number): Promise<CycleResult<StepContext>>;
}

/**
 * Cycles of `pair` over `activities`: decisions and closed trades are journaled as the workflow does, orders are
 * executed as Temporal runs them (see {@link orderStep}). `mode` and `account` go into every request when given.
 */
export function pairCycles(
  a: Activities,
  opts: { pair: string; owner: string; config: Config; account: string; mode?: 'live' | 'paper' | 'replay' },
): PairCycles {
  let id = '';
  const scope = { account: opts.account, ...(opts.mode ? { mode: opts.mode } : {}) };
  // portfolio admission on an in-process book (the account workflow is exercised on a real server: test/integration)
  const book = emptyBook();
  const steps: CycleSteps<StepContext> = {
    fetchMarket: (req) => a.fetchMarket({ ...req, ...scope }),
    buildContext: async (req) => {
      const request: BuildContextRequest = { ...req, decisionId: id, owner: opts.owner, run: opts.account };
      return { ref: await a.buildContext(request), request };
    },
    decide: (ctx) => a.decide(ctx),
    checkRisk: (req) => a.checkRisk(req),
    admit: (req) => admit(book, req),
    execute: (req) => orderStep(a, { ...req, account: opts.account }),
  };
  const { config, pair, owner } = opts;
  const cycles: PairCycles = {
    events: [],
    state: initialPairState(pair),
    async cycle(asOf) {
      id = decisionId(owner, pair, asOf);
      const out = await runCycle(
        steps,
        cycles.state,
        { asOf, orderOwner: owner, forceExit: false, paused: false },
        { risk: config.risk, maxRecentDecisions: 5, maintenanceMarginRate: config.paper.maintenance_margin_rate },
      );
      for (const e of out.events) {
        if (e.type === 'decision') {
          await a.recordDecision({
            decisionId: id,
            pair,
            price: e.context?.ref.price ?? null,
            decidedAt: asOf,
            record: e.record,
            result: e.result,
            verdict: e.verdict,
            clientOrderId: e.clientOrderId,
            owner,
            run: opts.account,
          });
        } else if (e.type === 'tradeClosed') {
          await a.recordTrade({ trade: e.trade, run: opts.account, ...(await a.reviewTrade(e.trade)) });
        }
      }
      cycles.state = out.state;
      cycles.events.push(...out.events);
      return out;
    },
  };
  return cycles;
}

export interface LiveHarness extends PairCycles {
  dir: string;
  config: Config;
  runtime: ActivityRuntime;
  close(): Promise<void>;
}

/**
 * The worker's live activities on the local exchange for `pair`, with `decisions` scripted; a temporary data dir.
 * Each cycle at `asOf` runs at market time asOf + grace.
 */
export async function liveHarness(opts: {
  exchange: LocalExchange;
  clock: { now: number };
  pair: string;
  decisions: readonly ScriptedDecision[];
  config?: Record<string, unknown>;
  owner?: string;
  exchangeTimings?: ActivityRuntimeOptions['exchangeTimings'];
}): Promise<LiveHarness> {
  const dir = mkdtempSync(join(tmpdir(), 'llm-trader-live-'));
  const config = liveConfig(dir, opts.exchange.url, [opts.pair], opts.config);
  writeScript(join(dir, 'script.jsonl'), opts.pair, opts.decisions);
  const runtime = await createActivityRuntime(config, {
    logger: silentLogger,
    ...(opts.exchangeTimings ? { exchangeTimings: opts.exchangeTimings } : {}),
  });
  const cycles = pairCycles(runtime.activities, {
    pair: opts.pair,
    owner: opts.owner ?? `pair:binanceusdm:${opts.pair}`,
    config,
    account: 'live',
    mode: 'live',
  });
  return {
    dir,
    config,
    runtime,
    get events() {
      return cycles.events;
    },
    get state() {
      return cycles.state;
    },
    cycle(asOf) {
      opts.clock.now = asOf + GRACE_MS;
      return cycles.cycle(asOf);
    },
    async close() {
      await runtime.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
