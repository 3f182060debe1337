/**
 * The kill harness: the worker as its own OS process (`node bin/llm-trader.js worker -c <config> --log-format json`,
 * detached in its own process group), SIGKILLed at random points and at exact steps (failpoints, see
 * src/activities/failpoints.ts), restarted each time, with the recovery time of every kill and the checks of what the
 * workers wrote (paper account, journal SQLite, llm_decisions.jsonl, trade_experience.jsonl) at the end.
 *
 * Used by test/integration/kill.test.ts (a few kills, CI) and bench/kill.ts (many kills). Nothing is faked: a real
 * Temporal server, real worker processes with the real activities (replay mode: recorded candles of ../shared/data,
 * the SQLite paper exchange, the journal), a `replay` decision provider over a decision file written here that enters
 * and exits on alternate candles, so that nearly every cycle places an order.
 *
 * Kill points:
 * - `asleep`: a random time while every pair sleeps between cycles: its status query says it waits for its timer, and
 *   describe shows no workflow task pending (a trade review's start or completion wakes a sleeping pair for a task);
 * - `random`: a random time, whatever the workers are doing;
 * - a failpoint name (`decide.beforeProvider`, `execute.afterOrder`, `recordDecision.start`, ...): the worker runs with
 *   LLM_TRADER_FAILPOINTS=<name>=<pause>, and is killed while the first activity that reaches it pauses there. Since
 *   failpoints are fixed for a process's life, the clean worker that recovered from the previous kill is first stopped
 *   gracefully (SIGTERM) and replaced by an armed one: a rotation, not a kill, and not measured.
 * Every replacement after a kill runs without failpoints, so that its recovery is not slowed by a pause.
 *
 * Recovery of a kill at wall time K: every pair has completed a cycle for a candle that closed after K (its status
 * query reports lastCycleAsOf > the market time at K), i.e. it trades on current candles again. Reported from the
 * replacement's "worker started" line and from the kill.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { ConfigSchema, type Config } from '../../src/core/config';
import type { PairState } from '../../src/core/cycle';
import { ReplayClock } from '../../src/core/replay-clock';
import { timeframeMs } from '../../src/core/timeframe';
import { FAILPOINTS, FAILPOINTS_ENV, type FailpointName } from '../../src/activities/failpoints';
import { initialSearchAttributes, pairTraderInput, replaySchedule } from '../../src/worker/starter';
import {
  PAIR_TRADER_WORKFLOW,
  PAIR_WORKFLOW_TASK_TIMEOUT,
  reviewWorkflowId,
  statusQuery,
  stopSignal,
  type PairStatus,
  type PairTraderInput,
} from '../../src/workflows/messages';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(repoRoot, 'bin/llm-trader.js');

// ---------------------------------------------------------------------------------------------
// One worker process
// ---------------------------------------------------------------------------------------------

/** One JSON log record of the worker (stderr), with the time the harness read it. */
export interface LogRecord {
  time?: string;
  level?: string;
  message?: string;
  [key: string]: unknown;
  /** Date.now() when the harness read the line */
  receivedAt: number;
}

export interface WorkerProcessOptions {
  /** a name for messages and the log file, e.g. `w3` */
  name: string;
  configFile: string;
  /** appended to the process environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ...) */
  env: Record<string, string>;
  /** LLM_TRADER_FAILPOINTS for this process; none when absent */
  failpoints?: string;
  /** a prebuilt workflow bundle (`worker --write-bundle`); default: the worker bundles at start */
  bundle?: string;
  /** every stderr and stdout line goes here */
  logFile: string;
}

interface Waiter {
  match: (r: LogRecord) => boolean;
  resolve: (r: LogRecord) => void;
}

/**
 * `llm-trader worker` as a child process in its own process group. Parses its JSON log lines; {@link waitFor} resolves
 * on the first (or next) matching record and rejects, with the tail of the log, when the process exits first.
 */
export class WorkerProcess {
  readonly name: string;
  readonly failpoints: string | null;
  readonly spawnedAt: number;
  /** when the "worker started" line was read; null before */
  startedAt: number | null = null;
  exitStatus: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly records: LogRecord[] = [];
  private readonly tail: string[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly log: WriteStream;

  private constructor(opts: WorkerProcessOptions) {
    this.name = opts.name;
    this.failpoints = opts.failpoints ?? null;
    this.log = createWriteStream(opts.logFile, { flags: 'a' });
    const args = [BIN, 'worker', '-c', opts.configFile, '--log-format', 'json', '--log-level', 'info'];
    if (opts.bundle) args.push('--bundle', opts.bundle);
    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
    delete env[FAILPOINTS_ENV];
    if (opts.failpoints) env[FAILPOINTS_ENV] = opts.failpoints;
    this.spawnedAt = Date.now();
    this.child = spawn(process.execPath, args, {
      cwd: repoRoot,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolveExit) => {
      this.child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        this.log.end(`# ${this.name} exited: code ${code} signal ${signal}\n`);
        resolveExit(this.exitStatus);
      });
    });
    this.child.once('error', (err) => {
      this.log.write(`# ${this.name} spawn error: ${err.message}\n`);
    });
    this.lines(this.child.stderr!);
    this.lines(this.child.stdout!);
  }

  static start(opts: WorkerProcessOptions): WorkerProcess {
    return new WorkerProcess(opts);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitStatus === null;
  }

  private lines(stream: NodeJS.ReadableStream): void {
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const receivedAt = Date.now();
      buffered += chunk;
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.onLine(line, receivedAt);
        nl = buffered.indexOf('\n');
      }
    });
  }

  private onLine(line: string, receivedAt: number): void {
    if (line.trim() === '') return;
    this.log.write(`${line}\n`);
    this.tail.push(line);
    if (this.tail.length > 30) this.tail.shift();
    let record: LogRecord;
    try {
      const parsed = JSON.parse(line) as unknown;
      if (parsed === null || typeof parsed !== 'object') return;
      record = { ...(parsed as Record<string, unknown>), receivedAt };
    } catch {
      return;
    }
    this.records.push(record);
    if (record.message === 'worker started' && this.startedAt === null) this.startedAt = receivedAt;
    for (const w of [...this.waiters]) {
      if (w.match(record)) {
        this.waiters.delete(w);
        w.resolve(record);
      }
    }
  }

  /** The last lines of its output, for error messages. */
  lastLines(n = 12): string {
    return this.tail.slice(-n).join('\n');
  }

  /**
   * The first record (already read, unless `onlyNew`) matching `match`.
   * @throws Error naming `what` when the process exits first or `timeoutMs` passes
   */
  async waitFor(
    match: (r: LogRecord) => boolean,
    what: string,
    timeoutMs: number,
    onlyNew = false,
  ): Promise<LogRecord> {
    if (!onlyNew) {
      const seen = this.records.find(match);
      if (seen) return seen;
    }
    let timer: NodeJS.Timeout | undefined;
    let waiter: Waiter | undefined;
    try {
      return await Promise.race([
        new Promise<LogRecord>((resolveRecord) => {
          waiter = { match, resolve: resolveRecord };
          this.waiters.add(waiter);
        }),
        this.exited.then((s) => {
          throw new Error(
            `worker ${this.name} exited (code ${s.code}, signal ${s.signal}) before ${what}; its last lines:\n` +
              this.lastLines(),
          );
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(
                  `worker ${this.name}: no ${what} within ${timeoutMs / 1000} s; its last lines:\n${this.lastLines()}`,
                ),
              ),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (waiter) this.waiters.delete(waiter);
    }
  }

  /** Waits for the "worker started" line (polling the task queue). */
  async waitStarted(timeoutMs = 120_000): Promise<number> {
    await this.waitFor((r) => r.message === 'worker started', 'the "worker started" line', timeoutMs);
    return this.startedAt!;
  }

  /** SIGKILL to the whole process group; resolves when the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
    await this.exited;
  }

  /** SIGTERM (graceful shutdown), then SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (!this.running) return;
    try {
      process.kill(-this.pid, 'SIGTERM');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
    const t = setTimeout(() => void this.kill(), timeoutMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(t);
    }
  }

  /** Synchronous last resort (process exit handlers): SIGKILL, no waiting. */
  killNow(): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The kill scenario
// ---------------------------------------------------------------------------------------------

export type KillPoint = 'asleep' | 'random' | FailpointName;

export const KILL_POINTS: readonly KillPoint[] = ['asleep', 'random', ...FAILPOINTS];

/**
 * When each decision of a workflow (every run of its continue-as-new chain) was taken: the `decidedAt` of the
 * recordDecision steps in its history, keyed by pair and candle close.
 */
async function decisionTimes(
  client: Client,
  workflowId: string,
): Promise<{ pair: string; time: number; at: number }[]> {
  const out: { pair: string; time: number; at: number }[] = [];
  let runId: string | undefined;
  for (let runs = 0; runs < 100; runs++) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    let previous: string | undefined;
    for (const e of history.events ?? []) {
      previous ??= e.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled?.activityType?.name !== 'recordDecision') continue;
      const data = scheduled.input?.payloads?.[0]?.data;
      if (!data) continue;
      const input = JSON.parse(Buffer.from(data).toString('utf8')) as {
        pair: string;
        decidedAt: number;
        record: { time: number };
      };
      out.push({ pair: input.pair, time: input.record.time, at: input.decidedAt });
    }
    if (!previous) break;
    runId = previous;
  }
  return out;
}

/** A kill must be recovered from within this long of the replacement's "worker started" line (the issue's target). */
export const RECOVERY_LIMIT_MS = 15_000;

/**
 * A decision is stale when it was taken (the workflow's `decidedAt`) more than one candle plus this long (wall time)
 * after its candle closed (plus the configured grace): in replay mode the wall time of every candle close is known
 * from the schedule.
 */
export const STALE_TOLERANCE_MS = 1_000;

/** How long a failpoint pauses: far longer than the harness needs to see the line and kill. */
const FAILPOINT_PAUSE_MS = 20_000;

/** An armed worker that reaches no failpoint within this long (e.g. no pair places orders any more) is not killed. */
const FAILPOINT_WAIT_MS = 90_000;

export interface KillRunOptions {
  /** host:port of the Temporal server (passed to the workers as TEMPORAL_ADDRESS) */
  address: string;
  namespace: string;
  /** a client of the same server (starts, queries, signals the workflows) */
  client: Client;
  /** ccxt symbols with recorded data in `data` */
  pairs: readonly string[];
  /** the kills, in order */
  plan: readonly KillPoint[];
  /** recorded data folder (default ../shared/data/binanceusdm from the repository root) */
  data?: string;
  secondsPerCandle: number;
  /** seed of the random delays (printed, so a run can be repeated) */
  seed: number;
  /** stop starting kills after this long (the checks still run); default no limit */
  maxDurationMs?: number;
  /** give up on a kill's recovery after this long from the replacement's start; default 150 s */
  recoveryTimeoutMs?: number;
  /** build the workflow bundle once and start every worker with `--bundle` (default true: faster restarts) */
  prebuiltBundle?: boolean;
  /** continue-as-new after this many cycles (default: the config's default, so the kills also meet continue-as-new) */
  maxCyclesPerRun?: number;
  /** progress lines */
  log: (line: string) => void;
  /** when aborted, no further kill is started: the run stops its pairs, checks and cleans up */
  signal?: AbortSignal;
}

export interface KillRecord {
  index: number;
  point: KillPoint;
  /** for `asleep`: every pair was seen asleep just before the kill */
  asleepVerified: boolean | null;
  /** pid of the killed worker */
  pid: number;
  killedAt: number;
  /** market (recorded) time at the kill */
  killMarketTime: number;
  /** cycles of each pair last seen before the kill */
  cyclesBefore: Record<string, number>;
  replacementSpawnedAt: number;
  replacementStartedAt: number;
  /** per pair: when it was first seen with a cycle for a candle that closed after the kill; null if never */
  recoveredAt: Record<string, number | null>;
  /** from the replacement's "worker started" line to the last pair recovered; null when a pair did not recover */
  recoveryFromStartMs: number | null;
  /** from the kill to the last pair recovered */
  recoveryFromKillMs: number | null;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface KillRunReport {
  kills: KillRecord[];
  checks: Check[];
  durationMs: number;
  /** recovery from the replacement's start: min, median, max (ms); null without a recovered kill */
  recovery: { min: number; median: number; max: number } | null;
  recoveryFromKill: { min: number; median: number; max: number } | null;
  /** kills whose recovery exceeded {@link RECOVERY_LIMIT_MS} (or never happened) */
  slowKills: KillRecord[];
  /** the printable summary */
  summary: string;
  dataDir: string;
  rotations: number;
  finalStates: Record<string, PairState | null>;
  stopReason: string;
}

/** mulberry32: a small seeded generator for the random delays and kill orders. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function stats(values: readonly number[]): { min: number; median: number; max: number } | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median, max: s.at(-1)! };
}

const secs = (ms: number | null): string => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(1)} s`);

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/**
 * One `llm_decisions.jsonl` line of a decision file: the `replay` provider answers with it. An entry is a long at
 * leverage `leverage` with `stake` USDT and stops far away; an exit closes the position. `model` names the script.
 */
export function scriptLine(
  pair: string,
  time: number,
  entry: boolean,
  opts: { model: string; reason: string; leverage?: number; stake?: number },
): string {
  const common = { pair, confidence_score: 80, rsi_value: 50 };
  const decision = entry
    ? {
        ...common,
        leverage: opts.leverage ?? 3,
        stake_amount: opts.stake ?? 150,
        key_support: 0.0001,
        key_resistance: 10_000_000,
        trend_strength: 'medium',
        reason: `${opts.reason}: enter`,
      }
    : { ...common, trade_score: 50, reason: `${opts.reason}: exit` };
  return JSON.stringify({
    timestamp: new Date(time).toISOString(),
    pair,
    action: entry ? 'signal_entry_long' : 'signal_exit',
    decision,
    model: opts.model,
    source: 'script',
  });
}

interface DecisionRow {
  owner: string;
  pair: string;
  time: number;
  tool: string;
  source: string;
  outcome: string;
  client_order_id: string | null;
  recorded_at: number;
}

/**
 * Runs the scenario: writes the config and decision file, starts a worker process and the pair workflows, performs
 * the kills of `plan` (each followed by a replacement worker and a recovery measurement), stops the pairs, and checks
 * what the workers wrote. Cleans up whatever happens: every worker process is killed, every workflow it started is
 * stopped or terminated. The data folder is removed when every check passed, else kept (its path is in the report).
 */
export async function runKillScenario(opts: KillRunOptions): Promise<KillRunReport> {
  const began = Date.now();
  const random = seededRandom(opts.seed);
  const log = opts.log;
  const recoveryTimeoutMs = opts.recoveryTimeoutMs ?? 150_000;
  const runId = `kill${Date.now().toString(36)}${Math.floor(random() * 1e6).toString(36)}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'llm-trader-kill-'));
  mkdirSync(join(dataDir, 'workers'), { recursive: true });
  const data = resolve(repoRoot, opts.data ?? '../shared/data/binanceusdm');
  const taskQueue = `llm-trader-${runId}`;
  const decisionFile = join(dataDir, 'script-decisions.jsonl');
  const raw = {
    mode: 'replay',
    pairs: [...opts.pairs],
    data_dir: join(dataDir, 'user_data'),
    replay: { data, seconds_per_candle: opts.secondsPerCandle },
    temporal: {
      task_queue: taskQueue,
      namespace: opts.namespace,
      grace_seconds: 0,
      ...(opts.maxCyclesPerRun !== undefined ? { max_cycles_per_run: opts.maxCyclesPerRun } : {}),
    },
    llm: { provider: 'replay', replay_file: decisionFile },
    risk: { max_open_trades: 10, cooldown_minutes: 0 },
  };
  const config: Config = ConfigSchema.parse(raw);
  const configFile = join(dataDir, 'config.json');
  writeFileSync(configFile, JSON.stringify(raw, null, 2));
  const tf = config.timeframes.main;
  const candleWallMs = opts.secondsPerCandle * 1000;
  const graceMs = Math.round(config.temporal.grace_seconds * 1000);

  const workers: WorkerProcess[] = [];
  let current: WorkerProcess | null = null;
  let workerSeq = 0;
  let rotations = 0;
  const onExit = (): void => {
    for (const w of workers) w.killNow();
  };
  process.once('exit', onExit);
  const handles = new Map<string, WorkflowHandle>();
  const reviews: WorkflowHandle[] = [];
  const owners = new Map<string, string>();
  const clocks = new Map<string, ReplayClock>();
  const inputs = new Map<string, PairTraderInput>();
  const kills: KillRecord[] = [];
  const checks: Check[] = [];
  const finalStates: Record<string, PairState | null> = {};
  const lastStatus = new Map<string, PairStatus>();
  let stopReason = 'plan complete';
  const unreached: string[] = [];
  let bundle: string | undefined;

  const startWorker = (failpoints?: string): WorkerProcess => {
    workerSeq += 1;
    const w = WorkerProcess.start({
      name: `w${workerSeq}`,
      configFile,
      env: { TEMPORAL_ADDRESS: opts.address, TEMPORAL_NAMESPACE: opts.namespace },
      ...(failpoints ? { failpoints } : {}),
      ...(bundle ? { bundle } : {}),
      logFile: join(dataDir, 'workers', `w${workerSeq}${failpoints ? '-armed' : ''}.log`),
    });
    workers.push(w);
    return w;
  };

  // One status query per pair at a time: while a workflow task is open (a cycle running, or a dead worker's task
  // waiting for its timeout) the server buffers queries, and only a few per workflow.
  const inFlight = new Map<string, Promise<PairStatus | null>>();
  const query = async (pair: string): Promise<PairStatus | null> => {
    let pending = inFlight.get(pair);
    if (pending === undefined) {
      pending = handles
        .get(pair)!
        .query(statusQuery)
        .then(
          (s) => {
            lastStatus.set(pair, s);
            return s;
          },
          // no worker up yet, the sticky queue of a dead worker, or between runs (continue-as-new): try again
          () => null,
        )
        .finally(() => inFlight.delete(pair));
      inFlight.set(pair, pending);
    }
    try {
      return await withTimeout(pending, 2_000, `status of ${pair}`);
    } catch {
      return null;
    }
  };
  const queryAll = async (): Promise<Map<string, PairStatus | null>> => {
    const out = new Map<string, PairStatus | null>();
    await Promise.all(opts.pairs.map(async (p) => out.set(p, await query(p))));
    return out;
  };

  try {
    // ---- set-up: decision file, bundle, first worker, workflows ----
    const schedules = new Map<string, Awaited<ReturnType<typeof replaySchedule>>>();
    const lines: string[] = [];
    for (const pair of opts.pairs) {
      const schedule = await replaySchedule(config, pair);
      schedules.set(pair, schedule);
      const step = timeframeMs(tf);
      for (let t = schedule.recordedStart; t <= schedule.recordedEnd; t += step) {
        lines.push(
          scriptLine(pair, t, Math.floor(t / step) % 2 === 0, { model: 'kill-script', reason: 'kill harness' }),
        );
      }
    }
    writeFileSync(decisionFile, `${lines.join('\n')}\n`);
    if (opts.prebuiltBundle ?? true) {
      bundle = join(dataDir, 'workflow-bundle.js');
      const t0 = Date.now();
      const res = spawnSync(process.execPath, [BIN, 'worker', '--write-bundle', bundle, '--log-format', 'json'], {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 180_000,
      });
      if (res.status !== 0) {
        throw new Error(`llm-trader worker --write-bundle failed (status ${res.status}): ${res.stderr.slice(-2000)}`);
      }
      log(`# workflow bundle written in ${secs(Date.now() - t0)}`);
    }
    log(
      `# kill run ${runId}: pairs ${opts.pairs.join(' ')}, ${opts.secondsPerCandle} s per candle, seed ${opts.seed}, ` +
        `plan ${opts.plan.join(' ')}; data in ${dataDir}`,
    );
    current = startWorker();
    await current.waitStarted();
    log(
      `# first worker ${current.name} (pid ${current.pid}) started in ${secs(current.startedAt! - current.spawnedAt)}`,
    );

    const wallStart = Date.now() + 1_000;
    for (const pair of opts.pairs) {
      const schedule = { ...schedules.get(pair)!, wallStart };
      const input = pairTraderInput(config, pair, schedule, {});
      const handle = await opts.client.workflow.start(PAIR_TRADER_WORKFLOW, {
        workflowId: `pair:${runId}:${pair}`,
        taskQueue,
        args: [input],
        typedSearchAttributes: initialSearchAttributes(input),
        workflowTaskTimeout: PAIR_WORKFLOW_TASK_TIMEOUT,
      });
      handles.set(pair, handle);
      owners.set(pair, `${handle.workflowId}@${handle.firstExecutionRunId}`);
      inputs.set(pair, input);
      clocks.set(
        pair,
        new ReplayClock({
          recordedStart: schedule.recordedStart,
          wallStart,
          secondsPerCandle: opts.secondsPerCandle,
          timeframe: tf,
        }),
      );
    }
    const clock = clocks.get(opts.pairs[0]!)!;

    // warm-up: every pair trades a few cycles; the workflows' clock is the harness's
    const warmDeadline = Date.now() + 120_000;
    for (;;) {
      const all = await queryAll();
      if ([...all.values()].every((s) => s !== null && s.counters.cycles >= 3)) {
        for (const [pair, s] of all) {
          if (s!.nextWakeTime !== null && s!.nextDecisionAsOf !== null) {
            const expected = clocks.get(pair)!.wallTime(s!.nextDecisionAsOf + graceMs);
            if (Math.abs(expected - s!.nextWakeTime) > 1) {
              throw new Error(
                `${pair}: the workflow wakes at ${s!.nextWakeTime} for ${s!.nextDecisionAsOf}, the harness's replay ` +
                  `clock says ${expected}: the schedule (wallStart ${wallStart}) is not the one the workflow uses`,
              );
            }
          }
        }
        break;
      }
      if (Date.now() > warmDeadline) {
        throw new Error(
          `the pairs did not complete 3 cycles within 120 s of the start: ${JSON.stringify(
            Object.fromEntries([...all].map(([p, s]) => [p, s?.counters.cycles ?? null])),
          )}; worker ${current.name}'s last lines:\n${current.lastLines()}`,
        );
      }
      await sleep(200);
    }
    log(`# warm-up done: every pair has completed 3 cycles`);

    // ---- the kills ----
    for (let k = 0; k < opts.plan.length; k += 1) {
      if (opts.maxDurationMs !== undefined && Date.now() - began > opts.maxDurationMs) {
        stopReason = `time budget of ${secs(opts.maxDurationMs)} reached after ${k} kills`;
        break;
      }
      if (opts.signal?.aborted) {
        stopReason = `interrupted after ${k} kills`;
        break;
      }
      const point = opts.plan[k]!;
      let asleepVerified: boolean | null = null;
      if (point === 'asleep' || point === 'random') {
        await sleep(200 + random() * 2 * candleWallMs);
        if (point === 'asleep') {
          asleepVerified = false;
          const deadline = Date.now() + 30_000;
          while (Date.now() < deadline) {
            // asleep: waiting for its timer (status) with no workflow task scheduled or running (a child review's
            // start or completion wakes a sleeping pair for a task; a kill during it is not a kill "asleep")
            const all = await queryAll();
            const now = Date.now();
            if ([...all.values()].every((s) => s !== null && s.nextWakeTime !== null && s.nextWakeTime - now > 150)) {
              const described = await Promise.all([...handles.values()].map((h) => h.describe().catch(() => null)));
              if (described.every((d) => d !== null && !d.raw.pendingWorkflowTask)) {
                asleepVerified = true;
                break;
              }
            }
            await sleep(50 + random() * 150);
          }
        }
      } else {
        // rotate to a worker armed with the failpoint (graceful stop of the clean one: not a kill)
        await current.stop();
        rotations += 1;
        current = startWorker(`${point}=${FAILPOINT_PAUSE_MS}`);
        await current.waitStarted();
        try {
          await current.waitFor(
            (r) => typeof r.message === 'string' && r.message.startsWith(`failpoint ${point}: pausing`),
            `"failpoint ${point}: pausing" line`,
            FAILPOINT_WAIT_MS,
          );
        } catch (err) {
          if (!current.running) throw err;
          // the armed worker runs on, without a pause: the next kill takes it
          unreached.push(`kill ${k + 1} (${point}): ${(err as Error).message.split('\n')[0]}`);
          log(`# kill ${k + 1}/${opts.plan.length} at ${point}: not reached, skipped`);
          continue;
        }
        await sleep(random() * 300);
      }

      const cyclesBefore: Record<string, number> = {};
      for (const pair of opts.pairs) cyclesBefore[pair] = lastStatus.get(pair)?.counters.cycles ?? 0;
      const killedPid = current.pid;
      const killedAt = Date.now();
      await current.kill();
      const killMarketTime = clock.recordedTime(killedAt);

      // a replacement that fails to start (e.g. node_modules being reinstalled under the run) is retried once; the
      // recovery counts from the start of the one that runs
      let replacement = startWorker();
      current = replacement;
      let startedAt: number;
      try {
        startedAt = await replacement.waitStarted();
      } catch (err) {
        log(
          `# kill ${k + 1}: replacement ${replacement.name} did not start, starting another: ${(err as Error).message}`,
        );
        replacement = startWorker();
        current = replacement;
        startedAt = await replacement.waitStarted();
      }
      const recoveredAt: Record<string, number | null> = Object.fromEntries(opts.pairs.map((p) => [p, null]));
      const deadline = startedAt + recoveryTimeoutMs;
      while (Date.now() < deadline && Object.values(recoveredAt).some((v) => v === null)) {
        const pending = opts.pairs.filter((p) => recoveredAt[p] === null);
        await Promise.all(
          pending.map(async (p) => {
            const s = await query(p);
            if (s !== null && s.lastCycleAsOf !== null && s.lastCycleAsOf > killMarketTime) recoveredAt[p] = Date.now();
          }),
        );
        if (!replacement.running) break;
        await sleep(200);
      }
      const times = Object.values(recoveredAt);
      const last = times.every((v) => v !== null) ? Math.max(...(times as number[])) : null;
      const record: KillRecord = {
        index: k + 1,
        point,
        asleepVerified,
        pid: killedPid,
        killedAt,
        killMarketTime,
        cyclesBefore,
        replacementSpawnedAt: replacement.spawnedAt,
        replacementStartedAt: startedAt,
        recoveredAt,
        recoveryFromStartMs: last === null ? null : last - startedAt,
        recoveryFromKillMs: last === null ? null : last - killedAt,
      };
      kills.push(record);
      log(
        `# kill ${record.index}/${opts.plan.length} at ${point}${asleepVerified === false ? ' (not seen asleep)' : ''}: ` +
          `replacement started ${secs(startedAt - killedAt)} after the kill, every pair on a new candle ` +
          `${secs(record.recoveryFromStartMs)} after its start (${secs(record.recoveryFromKillMs)} after the kill)`,
      );
      if (last === null) {
        const missing = opts.pairs.filter((p) => recoveredAt[p] === null);
        stopReason = `kill ${record.index}: ${missing.join(', ')} did not continue within ${secs(recoveryTimeoutMs)}`;
        log(`# ${stopReason}; worker ${replacement.name}'s last lines:\n${replacement.lastLines()}`);
        break;
      }
    }

    // ---- the end: let every pair run a little, stop it, wait for the trade reviews ----
    const lastKill = kills.at(-1);
    const cyclesAfterLastKill: Record<string, number> = {};
    if (current.running) {
      await sleep(2 * candleWallMs);
      for (const [pair, s] of await queryAll()) cyclesAfterLastKill[pair] = s?.counters.cycles ?? -1;
    }
    for (const [pair, handle] of handles) {
      try {
        await handle.signal(stopSignal);
      } catch (err) {
        log(`# could not signal stop to ${pair}: ${(err as Error).message}`);
      }
    }
    for (const [pair, handle] of handles) {
      try {
        finalStates[pair] = (await withTimeout(handle.result(), 90_000, `the result of ${pair}`)) as PairState;
      } catch (err) {
        finalStates[pair] = null;
        log(`# ${pair} did not complete after the stop signal: ${(err as Error).message}`);
      }
    }

    const paperFile = join(config.data_dir, `paper-${config.mode}.sqlite`);
    const journalFile = join(config.data_dir, 'journal.sqlite');

    // trades closed: every filled entry except a position still open at the end; each has a review workflow
    const paper = new Database(paperFile, { readonly: true, fileMustExist: true });
    let entries: { client_order_id: string; pair: string }[];
    let fillDupes: { client_order_id: string; n: number }[];
    let filledMarket: { client_order_id: string; pair: string; time: number }[];
    let fillCount: number;
    let exchangePositions: { pair: string; side: string; quantity: number }[];
    try {
      entries = paper
        .prepare(
          `SELECT client_order_id, pair FROM orders WHERE kind = 'market' AND reduce_only = 0 AND status = 'filled'`,
        )
        .all() as typeof entries;
      fillDupes = paper
        .prepare(`SELECT client_order_id, COUNT(*) AS n FROM fills GROUP BY client_order_id HAVING COUNT(*) > 1`)
        .all() as typeof fillDupes;
      filledMarket = paper
        .prepare(`SELECT client_order_id, pair, time FROM orders WHERE kind = 'market' AND status = 'filled'`)
        .all() as typeof filledMarket;
      fillCount = (paper.prepare('SELECT COUNT(*) AS n FROM fills').get() as { n: number }).n;
      exchangePositions = paper.prepare('SELECT pair, side, quantity FROM positions').all() as typeof exchangePositions;
    } finally {
      paper.close();
    }
    const openTradeIds = new Set(
      Object.values(finalStates)
        .map((s) => s?.position?.tradeId)
        .filter((id): id is string => id !== undefined),
    );
    const closedTrades = entries.filter((e) => !openTradeIds.has(e.client_order_id));
    const reviewProblems: string[] = [];
    for (const trade of closedTrades) {
      const review = opts.client.workflow.getHandle(reviewWorkflowId(trade.pair, trade.client_order_id));
      reviews.push(review);
      try {
        await withTimeout(review.result(), 90_000, `review ${review.workflowId}`);
      } catch (err) {
        const why =
          err instanceof WorkflowNotFoundError
            ? 'no review workflow was ever started for this trade'
            : (err as Error).message.split('\n')[0];
        reviewProblems.push(`${review.workflowId}: ${why}`);
      }
    }
    const stoppedWorker = current;
    await current.stop();

    // ---- checks over the files ----
    checks.push({
      name: 'every kill point was reached',
      ok: unreached.length === 0,
      detail: unreached.length === 0 ? 'yes' : unreached.join('; '),
    });
    checks.push({
      name: 'every kill was recovered from',
      ok: kills.length > 0 && kills.every((k) => k.recoveryFromStartMs !== null),
      detail:
        kills.length === 0
          ? 'no kill was performed'
          : `${kills.filter((k) => k.recoveryFromStartMs !== null).length}/${kills.length} kills recovered (${stopReason})`,
    });
    const continued = opts.pairs.filter((p) => {
      const before = lastKill?.cyclesBefore[p] ?? 0;
      const fin = finalStates[p]?.counters.cycles ?? -1;
      const lastAsOf = finalStates[p]?.lastCycleAsOf ?? null;
      return (
        fin > before &&
        (cyclesAfterLastKill[p] ?? -1) > before &&
        lastAsOf !== null &&
        lastAsOf > (lastKill?.killMarketTime ?? Infinity)
      );
    });
    checks.push({
      name: 'every pair continued after the last kill',
      ok: lastKill !== undefined && continued.length === opts.pairs.length && stoppedWorker.exitStatus?.code === 0,
      detail:
        opts.pairs
          .map(
            (p) =>
              `${p}: ${lastKill?.cyclesBefore[p] ?? '?'} cycles before the last kill, ` +
              `${finalStates[p]?.counters.cycles ?? 'no result'} at the end`,
          )
          .join('; ') + `; last worker exited with ${JSON.stringify(stoppedWorker.exitStatus)}`,
    });
    // the exchange and the workflows agree on the open positions (an order the workflow lost track of leaves a
    // position on the exchange that no pair manages: never journaled as a trade, and it blocks the pair's entries)
    const positionMismatch = opts.pairs.filter((p) => {
      const onExchange = exchangePositions.find((x) => x.pair === p) ?? null;
      const tracked = finalStates[p]?.position ?? null;
      return (onExchange?.side ?? null) !== (tracked?.side ?? null);
    });
    checks.push({
      name: 'exchange positions = tracked positions',
      ok: positionMismatch.length === 0 && Object.values(finalStates).every((s) => s !== null),
      detail: opts.pairs
        .map((p) => {
          const x = exchangePositions.find((e) => e.pair === p);
          const t = finalStates[p]?.position;
          return `${p}: exchange ${x ? `${x.side} ${x.quantity}` : 'flat'}, workflow ${t ? `${t.side} ${t.quantity}` : 'flat'}`;
        })
        .join('; '),
    });
    checks.push({
      name: '0 duplicate fills',
      ok: fillDupes.length === 0 && fillCount > 0,
      detail:
        fillDupes.length === 0
          ? `${fillCount} fills, each client order id filled once`
          : `client order ids filled more than once: ${fillDupes.map((d) => `${d.client_order_id} x${d.n}`).join(', ')}`,
    });

    const journal = new Database(journalFile, { readonly: true, fileMustExist: true });
    let rows: DecisionRow[];
    let tradeRows: { trade_id: string }[];
    try {
      rows = journal
        .prepare(
          `SELECT owner, pair, time, tool, source, outcome, client_order_id, recorded_at FROM decisions ORDER BY id`,
        )
        .all() as DecisionRow[];
      tradeRows = journal.prepare('SELECT trade_id FROM trades').all() as { trade_id: string }[];
    } finally {
      journal.close();
    }
    const ownerSet = new Set(owners.values());
    rows = rows.filter((r) => ownerSet.has(r.owner));
    const keyOf = (owner: string, pair: string, time: number): string => `${owner}|${pair}|${time}`;
    const rowKeys = new Map<string, number>();
    for (const r of rows)
      rowKeys.set(keyOf(r.owner, r.pair, r.time), (rowKeys.get(keyOf(r.owner, r.pair, r.time)) ?? 0) + 1);
    const lineKeys = new Map<string, number>();
    const decisionsLog = join(config.data_dir, 'logs/llm_decisions.jsonl');
    let corruptLines = 0;
    for (const text of readFileSync(decisionsLog, 'utf8').split('\n')) {
      if (text.trim() === '') continue;
      let line: { owner?: string; pair?: string; timestamp?: string };
      try {
        line = JSON.parse(text) as typeof line;
      } catch {
        corruptLines += 1;
        continue;
      }
      if (!line.owner || !ownerSet.has(line.owner) || !line.pair || !line.timestamp) continue;
      const key = keyOf(line.owner, line.pair, Date.parse(line.timestamp));
      lineKeys.set(key, (lineKeys.get(key) ?? 0) + 1);
    }
    const dupRows = [...rowKeys].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`);
    const dupLines = [...lineKeys].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`);
    const rowsWithoutLine = [...rowKeys.keys()].filter((k) => !lineKeys.has(k));
    const linesWithoutRow = [...lineKeys.keys()].filter((k) => !rowKeys.has(k));
    checks.push({
      name: '0 duplicate journal records',
      ok: dupRows.length === 0 && dupLines.length === 0 && corruptLines === 0,
      detail:
        `${rows.length} SQLite rows, ${[...lineKeys.values()].reduce((a, b) => a + b, 0)} JSONL lines; ` +
        `duplicate rows: ${dupRows.slice(0, 5).join(', ') || 'none'}; duplicate lines: ${dupLines.slice(0, 5).join(', ') || 'none'}` +
        (corruptLines > 0 ? `; ${corruptLines} lines are not JSON` : ''),
    });
    const perPairRows = new Map<string, number>();
    for (const r of rows) perPairRows.set(r.pair, (perPairRows.get(r.pair) ?? 0) + 1);
    const cycleMismatch = opts.pairs.filter((p) => finalStates[p]?.counters.cycles !== (perPairRows.get(p) ?? 0));
    const journaledOrderIds = new Set(rows.map((r) => r.client_order_id).filter((id): id is string => id !== null));
    const ordersWithoutDecision = filledMarket.filter((o) => !journaledOrderIds.has(o.client_order_id));
    const tradeIds = new Set(tradeRows.map((t) => t.trade_id));
    const tradeLineCounts = new Map<string, number>();
    for (const text of readFileSync(join(config.data_dir, 'logs/trade_experience.jsonl'), 'utf8').split('\n')) {
      if (text.trim() === '') continue;
      const id = (JSON.parse(text) as { trade_id: string }).trade_id;
      tradeLineCounts.set(id, (tradeLineCounts.get(id) ?? 0) + 1);
    }
    const lostTrades = closedTrades.filter(
      (t) => !tradeIds.has(t.client_order_id) || !tradeLineCounts.has(t.client_order_id),
    );
    const dupTradeLines = [...tradeLineCounts].filter(([, n]) => n > 1);
    checks.push({
      name: '0 lost journal records',
      ok:
        rowsWithoutLine.length === 0 &&
        linesWithoutRow.length === 0 &&
        cycleMismatch.length === 0 &&
        ordersWithoutDecision.length === 0 &&
        lostTrades.length === 0 &&
        dupTradeLines.length === 0 &&
        reviewProblems.length === 0,
      detail: [
        `rows without a JSONL line: ${rowsWithoutLine.length}, lines without a row: ${linesWithoutRow.length}`,
        `journal rows per pair vs cycles counted by the workflow: ${opts.pairs
          .map((p) => `${p} ${perPairRows.get(p) ?? 0}/${finalStates[p]?.counters.cycles ?? 'no result'}`)
          .join(', ')}`,
        `filled orders without their journaled decision: ${ordersWithoutDecision.length}` +
          (ordersWithoutDecision.length > 0
            ? ` (${ordersWithoutDecision
                .slice(0, 5)
                .map((o) => `${o.pair} ${o.client_order_id}`)
                .join(', ')})`
            : ''),
        `closed trades ${closedTrades.length}: not journaled ${lostTrades.length}, duplicate trade lines ${dupTradeLines.length}, ` +
          `reviews not completed ${reviewProblems.length}${reviewProblems.length > 0 ? ` (${reviewProblems.slice(0, 3).join('; ')})` : ''}`,
      ].join('; '),
    });

    // stale: decided more than one candle + tolerance after its candle closed (in wall time). The decision time is the
    // workflow's (`decidedAt` in the history's recordDecision input): a decision taken on time whose journal write was
    // delayed by a kill (the order step retried, the journal step retried) is not stale; one taken late is.
    const decidedAt = new Map<string, number>();
    for (const handle of handles.values()) {
      for (const d of await decisionTimes(opts.client, handle.workflowId)) decidedAt.set(`${d.pair}|${d.time}`, d.at);
    }
    const stale: { row: DecisionRow; lateMs: number }[] = [];
    let worstLate = 0;
    for (const r of rows) {
      if (/missed|skipped/i.test(`${r.tool} ${r.source} ${r.outcome}`)) continue; // a missed candle recorded as such
      const at = decidedAt.get(`${r.pair}|${r.time}`);
      if (at === undefined) {
        stale.push({ row: r, lateMs: Number.POSITIVE_INFINITY });
        continue;
      }
      const lateMs = at - clocks.get(r.pair)!.wallTime(r.time + graceMs);
      worstLate = Math.max(worstLate, lateMs);
      if (lateMs > candleWallMs + STALE_TOLERANCE_MS) stale.push({ row: r, lateMs });
    }
    checks.push({
      name: 'no stale decision',
      ok: stale.length === 0 && rows.length > 0,
      detail:
        stale.length === 0
          ? `every decision taken within one candle + ${secs(STALE_TOLERANCE_MS)} of its close (worst ${secs(worstLate)})`
          : `${stale.length} decisions taken more than one candle (${secs(candleWallMs)}) + ${secs(STALE_TOLERANCE_MS)} ` +
            `after their candle closed, worst ${secs(worstLate)}: ` +
            stale
              .sort((a, b) => b.lateMs - a.lateMs)
              .slice(0, 5)
              .map(
                (s) =>
                  `${s.row.pair} candle ${new Date(s.row.time).toISOString()} ${s.row.tool} ${secs(s.lateMs)} late`,
              )
              .join(', '),
    });
  } finally {
    process.off('exit', onExit);
    for (const w of workers) if (w.running) await w.kill();
    // whatever is still running of this run: terminate it (a failed run must not leave workflows behind)
    for (const handle of [...handles.values(), ...reviews]) {
      try {
        const d = await handle.describe();
        if (d.status.name === 'RUNNING') await handle.terminate('kill harness cleanup');
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) {
          log(`# cleanup of ${handle.workflowId}: ${(err as Error).message.split('\n')[0]}`);
        }
      }
    }
  }

  const recovered = kills.filter((k) => k.recoveryFromStartMs !== null);
  const recovery = stats(recovered.map((k) => k.recoveryFromStartMs!));
  const recoveryFromKill = stats(recovered.map((k) => k.recoveryFromKillMs!));
  const slowKills = kills.filter((k) => k.recoveryFromStartMs === null || k.recoveryFromStartMs > RECOVERY_LIMIT_MS);
  const durationMs = Date.now() - began;
  const summary = [
    table(
      ['kill', 'point', 'kill → started', 'started → recovered', 'kill → recovered'],
      kills.map((k) => [
        String(k.index),
        k.point + (k.asleepVerified === false ? ' (not seen asleep)' : ''),
        secs(k.replacementStartedAt - k.killedAt),
        secs(k.recoveryFromStartMs),
        secs(k.recoveryFromKillMs),
      ]),
    ),
    '',
    `kills: ${kills.length} (${KILL_POINTS.map((p) => `${p} ${kills.filter((k) => k.point === p).length}`).join(', ')}); ` +
      `rotations to an armed worker: ${rotations}; duration ${secs(durationMs)}; stop: ${stopReason}`,
    `recovery from the replacement's "worker started": ` +
      (recovery ? `min ${secs(recovery.min)}, median ${secs(recovery.median)}, max ${secs(recovery.max)}` : 'n/a') +
      ` (limit ${secs(RECOVERY_LIMIT_MS)}; over it: ${slowKills.length})`,
    `recovery from the kill: ` +
      (recoveryFromKill
        ? `min ${secs(recoveryFromKill.min)}, median ${secs(recoveryFromKill.median)}, max ${secs(recoveryFromKill.max)}`
        : 'n/a'),
    '',
    ...checks.map((c) => `${c.ok ? 'ok    ' : 'FAILED'}  ${c.name}: ${c.detail}`),
  ].join('\n');
  const allOk = checks.length > 0 && checks.every((c) => c.ok);
  if (allOk && slowKills.length === 0) rmSync(dataDir, { recursive: true, force: true });
  return {
    kills,
    checks,
    durationMs,
    recovery,
    recoveryFromKill,
    slowKills,
    summary,
    dataDir,
    rotations,
    finalStates,
    stopReason,
  };
}
