/**
 * Scale bench: N `pairTrader` workflows on ONE worker against a real Temporal server, in replay mode.
 *
 *   npx tsx bench/scale.ts --pairs 100            # one size
 *   npx tsx bench/scale.ts --pairs 100,500        # both sizes, one table (a fresh server per size)
 *   options: --candles N (cycles per workflow, default 24), --spc S (replay.seconds_per_candle, default 2),
 *            --lead S (seconds between the first start and the common first candle, default: from N)
 *
 * What runs, per size:
 * - the real server: `../shared/tools/temporal-dev/temporal server start-dev` (a real Temporal server 1.19.1, SQLite
 *   in memory, the five search attributes) on a free port, or the server at TEMPORAL_ADDRESS when it is set;
 * - the worker as its own OS process, as an operator runs it: `bin/llm-trader worker -c <config>` (the `llm-trader`
 *   command) with TEMPORAL_ADDRESS in its environment (mode replay, the baseline policy, grace 0, a temporary
 *   data_dir, a unique task queue), so that its RSS (/proc/<pid>/status VmRSS, sampled every second) is the worker's
 *   alone;
 * - N workflows: the 17 recorded pairs repeated in groups of 17, group k trading in its own paper account
 *   `replay-bench-g<k>` (workflow id `pair:bench<k>:<symbol>`), so no two workflows of a symbol share an account.
 *   Every workflow gets the same replay schedule (wallStart and recordedStart shared): all N wake at the same wall
 *   time at every candle close, as N live pairs do at a 30m close: the burst is the load. Each runs `--candles`
 *   cycles (replay.recordedEnd = recordedStart + candles x 30 min); workflows started before the common first
 *   candle also decide the few candles before it (counted as cycles like the others).
 *
 * Figures, from each workflow's history (fetched after it completed):
 * - cycle overhead excluding the model: per cycle, TimerFired to the recordDecision ActivityTaskCompleted (the
 *   journal write, the last step of a cycle) minus the decide step's own latency (`latencyMs` in the decide
 *   marker's result; the baseline policy answers in ~0 ms). p50/p99 over all cycles of all workflows. It includes
 *   the queueing of N simultaneous workflow tasks on one worker.
 * - timer lateness: TimerFired minus the wake time the workflow asked for (the workflow time of the task that started
 *   the timer, i.e. its WorkflowTaskStarted time, plus the timer's duration);
 * - history: History.encode(history) bytes and events per cycle, x 48 cycles per day of 30m candles;
 * - failed cycles (the result's counters.failedCycles) and missed candles (the candles the recordMissedCandles
 *   activity journaled, from its inputs in the history).
 * Bounded: a size is abandoned (its workflows terminated) at 3 x the expected replay time + 120 s. Everything it
 * starts (server, worker, temporary folder) is stopped and removed before it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { google, temporal } from '@temporalio/proto';
import { ConfigSchema, type Config } from '../src/core/config';
import type { PairState } from '../src/core/cycle';
import { RecordedMarketSource, csvRecordedData } from '../src/exchange/market-source';
import { initialSearchAttributes, pairTraderInput, replaySchedule } from '../src/worker/starter';
import { devServerSearchAttributeArgs, ensureSearchAttributes } from '../src/worker/search-attributes';
import { PAIR_TRADER_WORKFLOW, PAIR_WORKFLOW_TASK_TIMEOUT, type ReplaySchedule } from '../src/workflows/messages';
import type { pairTrader } from '../src/workflows/pair-trader';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TEMPORAL_CLI = path.resolve(ROOT, '../shared/tools/temporal-dev/temporal');
const DATA = path.resolve(ROOT, '../shared/data/binanceusdm');
const HALF_HOUR = 30 * 60_000;
const CYCLES_PER_DAY = 48;
/** recorded time of the first candle decided (inside every pair's data, after the 20-day warm-up) */
const REPLAY_START = '2025-06-01T00:00:00Z';

const EventType = proto.temporal.api.enums.v1.EventType;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

interface Options {
  sizes: number[];
  candles: number;
  secondsPerCandle: number;
  lead: number | null;
}

export interface ScaleFigures {
  pairs: number;
  secondsPerCandle: number;
  candles: number;
  completed: number;
  terminated: number;
  cycles: number;
  /** cycles measured (they started at a fired timer) */
  timedCycles: number;
  startSeconds: number;
  wallSeconds: number;
  overheadP50Ms: number;
  overheadP99Ms: number;
  overheadMaxMs: number;
  latenessP50Ms: number;
  latenessP99Ms: number;
  decideP99Ms: number;
  decideMarkers: number;
  /** p50 / p99 of the parts of a cycle, ms (see HistoryFigures) */
  phases: Record<'taskWait' | 'localSteps' | 'journalWait' | 'journalRun', [number, number]>;
  rssPeakMb: number;
  rssSteadyMb: number;
  serverRssPeakMb: number | null;
  eventsPerCycle: number;
  kbPerCycle: number;
  kbPerPairDay: number;
  failedCycles: number;
  missedCandles: number;
  taskTimeouts: number;
  taskFailures: number;
  workerWarnings: number;
  workerErrors: number;
}

function parseArgs(argv: string[]): Options {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const sizes = (value('--pairs') ?? '100')
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
  if (sizes.length === 0) throw new Error('--pairs: a positive integer, or a comma-separated list (100,500)');
  const candles = Number(value('--candles') ?? 24);
  const secondsPerCandle = Number(value('--spc') ?? 2);
  const lead = value('--lead');
  if (!Number.isInteger(candles) || candles < 1) throw new Error('--candles: a positive integer');
  if (!(secondsPerCandle > 0)) throw new Error('--spc: seconds per candle > 0');
  return { sizes, candles, secondsPerCandle, lead: lead === undefined ? null : Number(lead) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** VmRSS of `pid` in MB, or null when the process is gone. */
function rssMb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

function median(values: number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

type LongLike = number | { toNumber(): number } | null | undefined;
const num = (v: LongLike): number => (v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber());
const ms = (t: google.protobuf.ITimestamp | null | undefined): number =>
  t ? num(t.seconds as LongLike) * 1000 + (t.nanos ?? 0) / 1e6 : Number.NaN;
const durationMs = (d: google.protobuf.IDuration | null | undefined): number =>
  d ? num(d.seconds as LongLike) * 1000 + (d.nanos ?? 0) / 1e6 : Number.NaN;

function decodePayload(p: temporal.api.common.v1.IPayload | null | undefined): unknown {
  if (!p?.data) return undefined;
  try {
    return JSON.parse(Buffer.from(p.data).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The decide step's latency (ms) when `event` is the decide marker, else null. */
function decideLatency(event: HistoryEvent): number | null {
  const attrs = event.markerRecordedEventAttributes;
  if (!attrs?.details) return null;
  const data = decodePayload(attrs.details.data?.payloads?.[0]) as { activity_type?: string } | undefined;
  if (data?.activity_type !== 'decide') return null;
  const result = decodePayload(attrs.details.result?.payloads?.[0]) as { latencyMs?: number } | undefined;
  return typeof result?.latencyMs === 'number' ? result.latencyMs : 0;
}

export interface HistoryFigures {
  events: number;
  bytes: number;
  /** per cycle that started at a fired timer: ms from TimerFired to the journal write's completion, minus decide */
  overheads: number[];
  latenesses: number[];
  decideLatencies: number[];
  /** per timed cycle, ms: TimerFired to the workflow task that runs the cycle */
  taskWaits: number[];
  /** per timed cycle, ms: that task's start to the journal activity's scheduling (the local-activity steps) */
  localSteps: number[];
  /** per timed cycle, ms: the journal activity's scheduling to its start (the activity task queue) */
  journalWaits: number[];
  /** per timed cycle, ms: the journal activity's start to its completion */
  journalRuns: number[];
  missed: number;
  /** workflow tasks that timed out or failed (a task that outlived PAIR_WORKFLOW_TASK_TIMEOUT, a worker error) */
  taskTimeouts: number;
  taskFailures: number;
}

/** The figures of one workflow's history (see the module comment). */
export function historyFigures(history: temporal.api.history.v1.IHistory): HistoryFigures {
  const events = history.events ?? [];
  const bytes = proto.temporal.api.history.v1.History.encode(history).finish().length;
  const scheduledType = new Map<number, string>();
  const overheads: number[] = [];
  const latenesses: number[] = [];
  const decideLatencies: number[] = [];
  let missed = 0;
  let taskTimeouts = 0;
  let taskFailures = 0;
  let lastWftStarted = Number.NaN;
  const intendedFire = new Map<number, number>();
  const taskWaits: number[] = [];
  const localSteps: number[] = [];
  const journalWaits: number[] = [];
  const journalRuns: number[] = [];
  let cycleStart: number | null = null;
  let cycleDecide = 0;
  let cycleTask: number | null = null;
  let journalScheduled: number | null = null;
  let journalStarted: number | null = null;
  for (const e of events) {
    const id = num(e.eventId as LongLike);
    const t = ms(e.eventTime);
    switch (e.eventType) {
      case EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
        lastWftStarted = t;
        if (cycleStart !== null && cycleTask === null) cycleTask = t;
        break;
      case EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
        taskTimeouts += 1;
        break;
      case EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
        taskFailures += 1;
        break;
      case EventType.EVENT_TYPE_TIMER_STARTED: {
        if (cycleStart !== null) {
          // a cycle without a journal write (it failed): it ends when the next sleep starts
          overheads.push(t - cycleStart - cycleDecide);
          cycleStart = null;
        }
        intendedFire.set(id, lastWftStarted + durationMs(e.timerStartedEventAttributes?.startToFireTimeout));
        break;
      }
      case EventType.EVENT_TYPE_TIMER_FIRED: {
        const started = num(e.timerFiredEventAttributes?.startedEventId as LongLike);
        const intended = intendedFire.get(started);
        if (intended !== undefined && Number.isFinite(intended)) latenesses.push(t - intended);
        cycleStart = t;
        cycleDecide = 0;
        cycleTask = null;
        journalScheduled = null;
        journalStarted = null;
        break;
      }
      case EventType.EVENT_TYPE_MARKER_RECORDED: {
        const latency = decideLatency(e);
        if (latency !== null) {
          decideLatencies.push(latency);
          cycleDecide = latency;
        }
        break;
      }
      case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: {
        const attrs = e.activityTaskScheduledEventAttributes;
        const type = attrs?.activityType?.name ?? '';
        scheduledType.set(id, type);
        if (type === 'recordDecision' && cycleStart !== null) journalScheduled = t;
        if (type === 'recordMissedCandles') {
          const input = decodePayload(attrs?.input?.payloads?.[0]) as { count?: number } | undefined;
          missed += input?.count ?? 0;
        }
        break;
      }
      case EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: {
        const type = scheduledType.get(num(e.activityTaskStartedEventAttributes?.scheduledEventId as LongLike));
        if (type === 'recordDecision' && cycleStart !== null) journalStarted = t;
        break;
      }
      case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
      case EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
      case EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: {
        const attrs =
          e.activityTaskCompletedEventAttributes ??
          e.activityTaskFailedEventAttributes ??
          e.activityTaskTimedOutEventAttributes;
        const type = scheduledType.get(num(attrs?.scheduledEventId as LongLike));
        if (type === 'recordDecision' && cycleStart !== null) {
          overheads.push(t - cycleStart - cycleDecide);
          if (cycleTask !== null && journalScheduled !== null && journalStarted !== null) {
            taskWaits.push(cycleTask - cycleStart);
            localSteps.push(journalScheduled - cycleTask - cycleDecide);
            journalWaits.push(journalStarted - journalScheduled);
            journalRuns.push(t - journalStarted);
          }
          cycleStart = null;
        }
        break;
      }
      default:
        break;
    }
  }
  return {
    events: events.length,
    bytes,
    overheads,
    latenesses,
    decideLatencies,
    taskWaits,
    localSteps,
    journalWaits,
    journalRuns,
    missed,
    taskTimeouts,
    taskFailures,
  };
}

/** The symbols recorded in ../shared/data (those with 30m, 1h and 1d candles), e.g. `BTC/USDT:USDT`. */
function recordedPairs(): string[] {
  const files = new Set(readdirSync(DATA));
  return [...files]
    .map((f) => /^([A-Z0-9]+)_USDT_USDT-30m\.csv\.gz$/.exec(f)?.[1])
    .filter((base): base is string => base !== undefined)
    .filter((base) => ['1h', '1d'].every((tf) => files.has(`${base}_USDT_USDT-${tf}.csv.gz`)))
    .map((base) => `${base}/USDT:USDT`)
    .sort();
}

class Child {
  exited: Promise<number | null>;
  constructor(readonly proc: ChildProcess) {
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

async function connect(address: string, timeoutMs: number): Promise<Connection> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2000 });
      await connection.workflowService.describeNamespace({ namespace: 'default' });
      return connection;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`no Temporal server at ${address}: ${String(err)}`);
      await sleep(500);
    }
  }
}

async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= items.length) return;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/** One size: server (unless TEMPORAL_ADDRESS), worker process, N workflows, figures; everything stopped after. */
export async function runScale(pairs: number, opts: Omit<Options, 'sizes'>): Promise<ScaleFigures> {
  const tag = `${Date.now().toString(36)}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'llm-trader-scale-'));
  let server: Child | null = null;
  let worker: Child | null = null;
  let connection: Connection | null = null;
  try {
    let address = process.env.TEMPORAL_ADDRESS ?? '';
    if (!address) {
      const port = await freePort();
      address = `127.0.0.1:${port}`;
      const serverLog = openSync(path.join(dir, 'server.log'), 'w');
      server = new Child(
        spawn(
          TEMPORAL_CLI,
          [
            'server',
            'start-dev',
            '--ip',
            '127.0.0.1',
            '--port',
            String(port),
            '--ui-port',
            String(await freePort()),
            '--headless',
            '--log-level',
            'error',
            ...devServerSearchAttributeArgs(),
          ],
          { cwd: dir, stdio: ['ignore', serverLog, serverLog] },
        ),
      );
      closeSync(serverLog);
    }
    connection = await connect(address, 60_000);
    if (!server) await ensureSearchAttributes(connection, 'default');
    const client = new Client({ connection, namespace: 'default' });

    const taskQueue = `llm-trader-scale-${tag}`;
    const rawConfig = {
      mode: 'replay',
      pairs: ['BTC/USDT:USDT'],
      data_dir: path.join(dir, 'data'),
      replay: { data: DATA, start: REPLAY_START, seconds_per_candle: opts.secondsPerCandle },
      temporal: { address, task_queue: taskQueue, grace_seconds: 0, max_cycles_per_run: 500 },
      llm: { provider: 'baseline' },
    };
    const configFile = path.join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(rawConfig, null, 2));
    const config: Config = ConfigSchema.parse(rawConfig);

    const workerLogFile = path.join(dir, 'worker.log');
    const workerLog = openSync(workerLogFile, 'w');
    worker = new Child(
      spawn(path.join(ROOT, 'bin/llm-trader'), ['worker', '-c', configFile, '--log-format', 'json'], {
        cwd: ROOT,
        env: { ...process.env, TEMPORAL_ADDRESS: address },
        stdio: ['ignore', 'ignore', workerLog],
      }),
    );
    closeSync(workerLog);
    const workerPid = worker.proc.pid;
    const readyBy = Date.now() + 120_000;
    while (!readFileSync(workerLogFile, 'utf8').includes('worker started')) {
      if (worker.proc.exitCode !== null) throw new Error(`worker exited: ${readFileSync(workerLogFile, 'utf8')}`);
      if (Date.now() > readyBy) throw new Error('the worker did not start within 120 s');
      await sleep(200);
    }

    // schedules: one per symbol, shared by every group; all workflows on one wall clock
    const symbols = recordedPairs();
    const source = new RecordedMarketSource(csvRecordedData(DATA));
    const schedules = new Map<string, ReplaySchedule>();
    for (const symbol of symbols) schedules.set(symbol, await replaySchedule(config, symbol, source));
    const leadSeconds = opts.lead ?? Math.max(5, Math.ceil(pairs * 0.02));
    const wallStart = Date.now() + leadSeconds * 1000;
    const jobs = Array.from({ length: pairs }, (_, i) => ({
      group: Math.floor(i / symbols.length),
      symbol: symbols[i % symbols.length]!,
    }));

    const samples: { t: number; worker: number | null; server: number | null }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push({ t: Date.now(), worker: rssMb(workerPid), server: rssMb(server?.proc.pid) });
        await sleep(1000);
      }
    })();

    const t0 = Date.now();
    const handles: WorkflowHandle<typeof pairTrader>[] = await mapLimit(jobs, 25, async ({ group, symbol }) => {
      const base = schedules.get(symbol)!;
      const schedule: ReplaySchedule = {
        ...base,
        wallStart,
        recordedEnd: base.recordedStart + opts.candles * HALF_HOUR,
      };
      const input = pairTraderInput(config, symbol, schedule, {}, `replay-bench-g${group}`);
      return client.workflow.start<typeof pairTrader>(PAIR_TRADER_WORKFLOW, {
        workflowId: `pair:bench${group}:${symbol}`,
        taskQueue,
        args: [input],
        typedSearchAttributes: initialSearchAttributes(input),
        workflowTaskTimeout: PAIR_WORKFLOW_TASK_TIMEOUT,
      });
    });
    const startSeconds = (Date.now() - t0) / 1000;
    if (Date.now() > wallStart) {
      console.warn(`# starting ${pairs} workflows took ${startSeconds.toFixed(1)} s, past the common first candle`);
    }

    const expectedMs = wallStart - t0 + opts.candles * opts.secondsPerCandle * 1000;
    const deadline = t0 + 3 * expectedMs + 120_000;
    const results = await Promise.all(
      handles.map(async (h) => {
        const timeout = sleep(Math.max(0, deadline - Date.now())).then(() => 'timeout' as const);
        const outcome = await Promise.race([h.result().catch((err: unknown) => err as Error), timeout]);
        return outcome;
      }),
    );
    const wallSeconds = (Date.now() - wallStart) / 1000;
    sampling = false;
    await sampler;
    let terminated = 0;
    for (const [i, outcome] of results.entries()) {
      if (outcome === 'timeout') {
        terminated += 1;
        await handles[i]!.terminate('scale bench deadline').catch(() => undefined);
      }
    }

    let cycles = 0;
    let failedCycles = 0;
    let completed = 0;
    for (const outcome of results) {
      if (outcome === 'timeout' || outcome instanceof Error) continue;
      const state = outcome as PairState;
      completed += 1;
      cycles += state.counters.cycles;
      failedCycles += state.counters.failedCycles;
    }
    const figures = await mapLimit(handles, 8, async (h) => historyFigures(await h.fetchHistory()));
    const overheads = figures.flatMap((f) => f.overheads).sort((a, b) => a - b);
    const latenesses = figures.flatMap((f) => f.latenesses).sort((a, b) => a - b);
    const decides = figures.flatMap((f) => f.decideLatencies).sort((a, b) => a - b);
    const p50p99 = (pick: (f: HistoryFigures) => number[]): [number, number] => {
      const all = figures.flatMap(pick).sort((a, b) => a - b);
      return [quantile(all, 0.5), quantile(all, 0.99)];
    };
    const events = figures.reduce((s, f) => s + f.events, 0);
    const bytes = figures.reduce((s, f) => s + f.bytes, 0);
    const missedCandles = figures.reduce((s, f) => s + f.missed, 0);

    // RSS while the workflows ran: peak, and the median of the second half of the samples
    const running = samples.filter((s) => s.t >= wallStart);
    const workerRss = running.map((s) => s.worker).filter((v): v is number => v !== null);
    const serverRss = samples.map((s) => s.server).filter((v): v is number => v !== null);
    const log = readFileSync(workerLogFile, 'utf8').split('\n');
    const level = (name: string): number => log.filter((l) => l.includes(`"level":"${name}"`)).length;

    const perCycle = cycles > 0 ? bytes / cycles : Number.NaN;
    return {
      pairs,
      secondsPerCandle: opts.secondsPerCandle,
      candles: opts.candles,
      completed,
      terminated,
      cycles,
      timedCycles: overheads.length,
      startSeconds,
      wallSeconds,
      overheadP50Ms: quantile(overheads, 0.5),
      overheadP99Ms: quantile(overheads, 0.99),
      overheadMaxMs: overheads.at(-1) ?? Number.NaN,
      latenessP50Ms: quantile(latenesses, 0.5),
      latenessP99Ms: quantile(latenesses, 0.99),
      decideP99Ms: quantile(decides, 0.99),
      decideMarkers: decides.length,
      phases: {
        taskWait: p50p99((f) => f.taskWaits),
        localSteps: p50p99((f) => f.localSteps),
        journalWait: p50p99((f) => f.journalWaits),
        journalRun: p50p99((f) => f.journalRuns),
      },
      rssPeakMb: Math.max(...workerRss),
      rssSteadyMb: median(workerRss.slice(Math.floor(workerRss.length / 2))),
      serverRssPeakMb: serverRss.length > 0 ? Math.max(...serverRss) : null,
      eventsPerCycle: cycles > 0 ? events / cycles : Number.NaN,
      kbPerCycle: perCycle / 1024,
      kbPerPairDay: (perCycle * CYCLES_PER_DAY) / 1024,
      failedCycles,
      missedCandles,
      taskTimeouts: figures.reduce((s, f) => s + f.taskTimeouts, 0),
      taskFailures: figures.reduce((s, f) => s + f.taskFailures, 0),
      workerWarnings: level('WARN'),
      workerErrors: level('ERROR'),
    };
  } finally {
    await worker?.stop(30_000);
    await connection?.close().catch(() => undefined);
    await server?.stop(15_000);
    rmSync(dir, { recursive: true, force: true });
  }
}

function printTable(rows: ScaleFigures[]): void {
  const f = (n: number | null, d = 0): string => (n === null || !Number.isFinite(n) ? 'n/a' : n.toFixed(d));
  const table: [string, (r: ScaleFigures) => string][] = [
    ['pairs (workflows)', (r) => String(r.pairs)],
    ['replay s/candle', (r) => f(r.secondsPerCandle, 1)],
    ['completed / terminated', (r) => `${r.completed} / ${r.terminated}`],
    ['cycles (timed)', (r) => `${r.cycles} (${r.timedCycles})`],
    ['start of all workflows, s', (r) => f(r.startSeconds, 1)],
    ['wall time from first candle, s', (r) => f(r.wallSeconds, 1)],
    ['cycle overhead p50, ms', (r) => f(r.overheadP50Ms)],
    ['cycle overhead p99, ms', (r) => f(r.overheadP99Ms)],
    ['cycle overhead max, ms', (r) => f(r.overheadMaxMs)],
    ['timer lateness p50 / p99, ms', (r) => `${f(r.latenessP50Ms)} / ${f(r.latenessP99Ms)}`],
    ['  timer fired -> workflow task p50/p99', (r) => r.phases.taskWait.map((v) => f(v)).join(' / ')],
    ['  local steps (market..execute)', (r) => r.phases.localSteps.map((v) => f(v)).join(' / ')],
    ['  journal activity queued', (r) => r.phases.journalWait.map((v) => f(v)).join(' / ')],
    ['  journal activity ran', (r) => r.phases.journalRun.map((v) => f(v)).join(' / ')],
    ['decide latency p99 (excluded), ms', (r) => `${f(r.decideP99Ms)} (${r.decideMarkers} markers)`],
    ['worker RSS peak, MB', (r) => f(r.rssPeakMb)],
    ['worker RSS steady, MB', (r) => f(r.rssSteadyMb)],
    ['server RSS peak, MB', (r) => f(r.serverRssPeakMb)],
    ['history events / cycle', (r) => f(r.eventsPerCycle, 1)],
    ['history KB / cycle', (r) => f(r.kbPerCycle, 2)],
    ['history KB / pair-day (48 cycles)', (r) => f(r.kbPerPairDay, 0)],
    ['failed cycles', (r) => String(r.failedCycles)],
    ['missed candles', (r) => String(r.missedCandles)],
    ['workflow tasks timed out / failed', (r) => `${r.taskTimeouts} / ${r.taskFailures}`],
    ['worker log warn / error lines', (r) => `${r.workerWarnings} / ${r.workerErrors}`],
  ];
  const width = Math.max(...table.map(([label]) => label.length));
  const cols = rows.map((r) => table.map(([, get]) => get(r)));
  const colWidth = cols.map((c) => Math.max(...c.map((s) => s.length)));
  for (const [i, [label]] of table.entries()) {
    console.log(`${label.padEnd(width)}  ${cols.map((c, j) => c[i]!.padStart(colWidth[j]!)).join('  ')}`);
  }
}

/** `npm run bench:scale`: every size of `--pairs`, then one table. */
export async function runScaleBench(argv: string[] = process.argv.slice(2)): Promise<ScaleFigures[]> {
  const opts = parseArgs(argv);
  const rows: ScaleFigures[] = [];
  for (const pairs of opts.sizes) {
    console.log(`# ${pairs} pairs, ${opts.candles} candles each, ${opts.secondsPerCandle} s per candle ...`);
    const row = await runScale(pairs, opts);
    rows.push(row);
    console.log(`# done: ${row.cycles} cycles in ${row.wallSeconds.toFixed(1)} s`);
  }
  console.log(
    `\nscale: pairTrader workflows on one worker process, real Temporal server, replay mode, baseline policy ` +
      `(node ${process.version})`,
  );
  printTable(rows);
  return rows;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runScaleBench();
  process.exit(0);
}
