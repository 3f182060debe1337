/**
 * The durable path end to end on a real Temporal server (see temporal-server.ts for how one is found): pair workflows
 * in replay mode on ../shared/data, the real activities (recorded market data, SQLite paper exchange, journal) with a
 * scripted decision provider, signals, queries, continue-as-new, an outage (missed candles, fresh decisions), history
 * replay, and the history each decision cycle costs. Workers killed as OS processes: kill.test.ts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import proto from '@temporalio/proto';
import type { temporal } from '@temporalio/proto';
import { STICKY_QUEUE_TIMEOUT } from '../../src/worker/worker';
import { ConfigSchema, type Config } from '../../src/core/config';
import type { Decision, DecisionResult } from '../../src/core/types';
import type { DecisionContext } from '../../src/core/context-types';
import type { PairState } from '../../src/core/cycle';
import type { DecisionProvider } from '../../src/llm/provider';
import { decisionId } from '../../src/core/ids';
import { createActivityRuntime, type ActivityRuntime } from '../../src/activities';
import { pairTraderInput, replaySchedule, initialSearchAttributes } from '../../src/worker/starter';
import {
  PAIR_TRADER_WORKFLOW,
  PAIR_WORKFLOW_TASK_TIMEOUT,
  forceExitSignal,
  pauseSignal,
  resumeSignal,
  reviewWorkflowId,
  statusQuery,
  stopSignal,
  type PairStatus,
  type PairTraderInput,
} from '../../src/workflows/messages';
import { Journal } from '../../src/store/journal';
import { readJsonLines } from '../../src/store/jsonl';
import { historyToFixture } from '../helpers/history-fixtures';
import { acquireServer, requireServerInCi, type IntegrationServer } from './temporal-server';

const DATA = join(process.cwd(), '../shared/data/binanceusdm');
const HALF_HOUR = 30 * 60_000;
const START = '2025-06-01T00:00:00Z';
const RUN = `it${Date.now().toString(36)}`;
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Which script each pair follows. */
const SCRIPTS: Record<string, 'cycle' | 'enter-and-hold'> = {
  'BTC/USDT:USDT': 'cycle',
  'ETH/USDT:USDT': 'cycle',
  'SOL/USDT:USDT': 'enter-and-hold',
  'DOGE/USDT:USDT': 'enter-and-hold',
  'LINK/USDT:USDT': 'enter-and-hold',
  'ADA/USDT:USDT': 'enter-and-hold',
  'BNB/USDT:USDT': 'cycle',
};

/**
 * Scripted decisions, a pure function of the context:
 * - cycle: flat → enter long on every third candle, else wait; in a position → exit after two holds, else hold.
 * - enter-and-hold: flat → enter long; in a position → hold.
 */
class ScriptedProvider implements DecisionProvider {
  readonly name = 'scripted';
  calls = 0;

  decide(ctx: DecisionContext): Promise<DecisionResult> {
    this.calls += 1;
    const pair = ctx.pair;
    const script = SCRIPTS[pair] ?? 'cycle';
    const rsi = 50;
    let decision: Decision;
    if (ctx.position) {
      decision =
        script === 'cycle' && ctx.position.holds >= 2
          ? {
              tool: 'signal_exit',
              args: { pair, confidence_score: 70, rsi_value: rsi, trade_score: 60, reason: 'scripted exit' },
            }
          : { tool: 'signal_hold', args: { pair, confidence_score: 70, rsi_value: rsi, reason: 'scripted hold' } };
    } else if (script === 'enter-and-hold' || Math.floor(ctx.asOf / HALF_HOUR) % 3 === 0) {
      const price = ctx.snapshot.price;
      decision = {
        tool: 'signal_entry_long',
        args: {
          pair,
          leverage: 3,
          stake_amount: 200,
          confidence_score: 80,
          key_support: price * 0.98,
          key_resistance: price * 1.02,
          rsi_value: rsi,
          trend_strength: 'medium',
          reason: 'scripted entry',
        },
      };
    } else {
      decision = { tool: 'signal_wait', args: { pair, confidence_score: 50, rsi_value: rsi, reason: 'scripted wait' } };
    }
    return Promise.resolve({
      decision,
      source: 'replay',
      model: 'scripted',
      usage: { input: 0, output: 0 },
      latencyMs: 0,
      problems: [],
    });
  }
}

function testConfig(dataDir: string, taskQueue: string): Config {
  return ConfigSchema.parse({
    mode: 'replay',
    pairs: Object.keys(SCRIPTS),
    data_dir: dataDir,
    replay: { data: DATA, start: START, seconds_per_candle: 1 },
    temporal: { task_queue: taskQueue, grace_seconds: 0, max_cycles_per_run: 500 },
    llm: { provider: 'baseline' },
    risk: { max_open_trades: 10 },
  });
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * `LLM_TRADER_RECORD_HISTORIES=<dir>` makes the suite write the history of every workflow it ran that has completed
 * into `<dir>` (one JSON file per workflow, named by its workflow id without the run's prefix): the fixtures that
 * test/workflows/history-replay.test.ts replays against the current workflow code. Refresh them with
 *   LLM_TRADER_RECORD_HISTORIES=test/fixtures/histories node scripts/run-tests.mjs test/integration/pair-trader
 */
const RECORD_HISTORIES_ENV = 'LLM_TRADER_RECORD_HISTORIES';

async function recordHistories(client: Client, dir: string, handles: readonly WorkflowHandle[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const write = async (handle: WorkflowHandle, suffix: string): Promise<void> => {
    const name = handle.workflowId
      .replace(`${RUN}-`, '')
      .replace(`${RUN}:`, '')
      .replace(/[^A-Za-z0-9._-]+/g, '_');
    const file = join(dir, `${name}${suffix}.json`);
    writeFileSync(`${file}.tmp`, historyToFixture(await handle.fetchHistory(), handle.workflowId));
    renameSync(`${file}.tmp`, file);
    console.log(`# recorded the history of ${handle.workflowId}${suffix} in ${file}`);
  };
  for (const handle of handles) {
    const { status, runId } = await handle.describe();
    if (status.name !== 'COMPLETED' && status.name !== 'TERMINATED') continue;
    await write(handle, '');
    // a chain of runs (continue-as-new): its first run too, which ends in the continue-as-new event
    const first = (handle as Partial<WorkflowHandleWithFirstExecutionRunId>).firstExecutionRunId;
    if (first && first !== runId) await write(client.workflow.getHandle(handle.workflowId, first), '.run1');
  }
}

/** Poll a query until `until` holds (or fail after `timeoutMs`). */
async function waitForStatus(
  handle: WorkflowHandle,
  until: (s: PairStatus) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<PairStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: PairStatus | null = null;
  while (Date.now() < deadline) {
    try {
      last = await handle.query(statusQuery);
      if (until(last)) return last;
    } catch {
      // the workflow may be between runs (continue-as-new) or not started yet
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(last)}`);
}

describe('pairTrader on a Temporal server (replay mode, ../shared/data)', () => {
  let server: IntegrationServer | null = null;
  let skip: string | null = null;
  let dataDir = '';
  let config: Config;
  let bundle: WorkflowBundleWithSourceMap;
  let provider: ScriptedProvider;
  let runtime: ActivityRuntime;
  let worker: Worker | null = null;
  let workerRun: Promise<void> | null = null;
  const handles: WorkflowHandle[] = [];
  const taskQueue = `llm-trader-${RUN}`;

  async function startPair(
    pair: string,
    patch: (input: PairTraderInput) => PairTraderInput = (i) => i,
  ): Promise<WorkflowHandleWithFirstExecutionRunId> {
    const schedule = await replaySchedule(config, pair);
    const input = patch(pairTraderInput(config, pair, schedule, {}));
    const handle = await server!.env.client.workflow.start(PAIR_TRADER_WORKFLOW, {
      workflowId: `pair:${RUN}:${pair}`,
      taskQueue,
      args: [input],
      typedSearchAttributes: initialSearchAttributes(input),
      workflowTaskTimeout: PAIR_WORKFLOW_TASK_TIMEOUT,
    });
    handles.push(handle);
    return handle;
  }

  before(async () => {
    const acquired = await acquireServer();
    if (typeof acquired === 'string') {
      skip = acquired;
      requireServerInCi(skip);
      console.log(`# Temporal integration suite skipped: ${skip}`);
      return;
    }
    server = acquired;
    console.log(`# Temporal integration suite on ${server.origin}`);
    dataDir = mkdtempSync(join(tmpdir(), 'llm-trader-it-'));
    config = testConfig(dataDir, taskQueue);
    bundle = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('../../src/workflows/index.ts', import.meta.url)),
    });
    provider = new ScriptedProvider();
    runtime = await createActivityRuntime(config, { logger: silent, provider });
    worker = await Worker.create({
      connection: server.env.nativeConnection,
      namespace: server.namespace,
      taskQueue,
      workflowBundle: bundle,
      activities: runtime.activities,
      stickyQueueScheduleToStartTimeout: STICKY_QUEUE_TIMEOUT,
    });
    workerRun = worker.run();
  });

  after(async () => {
    if (!server) return;
    const recordTo = process.env[RECORD_HISTORIES_ENV];
    try {
      if (recordTo) await recordHistories(server.env.client, recordTo, handles);
    } catch (err) {
      console.log(`# could not record the histories: ${String(err)}`);
      process.exitCode = 1;
    }
    // a failed test may leave its workflows running: end every one the suite started
    await Promise.all(
      handles.map(async (h) => {
        try {
          const { status } = await h.describe();
          if (status.name === 'RUNNING') await h.terminate('integration suite finished');
        } catch {
          // already gone
        }
      }),
    );
    worker?.shutdown();
    await workerRun?.catch(() => undefined);
    await runtime.close();
    await server.env.teardown();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('replay of BTC and ETH: >= 20 cycles, trades open and close, one review per closed trade, journal = JSONL', async (t) => {
    if (skip) return t.skip(skip);
    const cycles = 24;
    const patch = (input: PairTraderInput): PairTraderInput => ({
      ...input,
      replay: { ...input.replay!, recordedEnd: input.replay!.recordedStart + cycles * HALF_HOUR },
    });
    const btc = await startPair('BTC/USDT:USDT', patch);
    const eth = await startPair('ETH/USDT:USDT', patch);
    const [btcState, ethState] = (await Promise.all([btc.result(), eth.result()])) as [PairState, PairState];

    const journal = Journal.fromConfig(config, {});
    try {
      for (const [pair, state, handle] of [
        ['BTC/USDT:USDT', btcState, btc],
        ['ETH/USDT:USDT', ethState, eth],
      ] as const) {
        assert.ok(state.counters.cycles >= 20, `${pair}: ${state.counters.cycles} cycles`);
        assert.ok(state.counters.entries >= 1, `${pair}: no entry`);
        assert.ok(state.counters.exits >= 1, `${pair}: no exit`);
        const closed = state.counters.exits + state.counters.externalCloses;

        // every closed trade gets its review, which journals it: wait for the reviews, then count
        const deadline = Date.now() + 60_000;
        let trades = journal.allTrades().filter((tr) => tr.pair === pair);
        while (trades.length < closed && Date.now() < deadline) {
          await sleep(250);
          trades = journal.allTrades().filter((tr) => tr.pair === pair);
        }
        assert.equal(trades.length, closed, `${pair}: one journaled review per closed trade`);
        for (const trade of trades) {
          const review = server!.env.client.workflow.getHandle(reviewWorkflowId(pair, trade.tradeId));
          await review.result();
          handles.push(review);
        }

        // the journal's SQLite rows and its JSONL lines agree
        const lines = readJsonLines<{ pair: string; owner: string }>(join(dataDir, 'logs/llm_decisions.jsonl'));
        // in replay mode the owner is `<workflow id>@<first run id>`
        const owner = `${handle.workflowId}@${handle.firstExecutionRunId}`;
        const mine = lines.records.filter((l) => l.pair === pair && l.owner === owner);
        const rows = journal.decisionsSince(pair, 0, { limit: 100_000 }).filter((d) => d.owner === owner);
        assert.equal(mine.length, rows.length, `${pair}: JSONL lines = SQLite rows`);
        assert.equal(rows.length, state.counters.cycles, `${pair}: one journaled decision per cycle`);
        const tradeLines = readJsonLines<{ pair: string }>(join(dataDir, 'logs/trade_experience.jsonl'));
        assert.equal(tradeLines.records.filter((l) => l.pair === pair).length, trades.length);
      }
    } finally {
      journal.close();
    }

    // history events and bytes per decision cycle, from the real history
    const history = await btc.fetchHistory();
    const events = history.events?.length ?? 0;
    const bytes = proto.temporal.api.history.v1.History.encode(history).finish().length;
    const perCycle = events / btcState.counters.cycles;
    console.log(
      `# BTC history: ${perCycle.toFixed(1)} events and ${(bytes / btcState.counters.cycles / 1024).toFixed(2)} KB ` +
        `per decision cycle (${events} events, ${bytes} bytes, ${btcState.counters.cycles} cycles)`,
    );
    // a hold is ~16 events; an order adds its activity (3) and the task that reads its result (3); an entry also asks
    // portfolio admission (its activity 3, the answer signal and its task 4, a timer started and cancelled 2) and a
    // closed trade settles its slot (3): BTC trades every third candle
    assert.ok(perCycle <= 26, `events per decision cycle ${perCycle.toFixed(1)} > 26`);
  });

  test('pause stops decisions, resume restarts them, forceExit closes without the model, stop completes', async (t) => {
    if (skip) return t.skip(skip);
    const sol = await startPair('SOL/USDT:USDT');
    await waitForStatus(sol, (s) => s.position !== null && s.counters.cycles >= 2, 'SOL to open a position');

    await sol.signal(pauseSignal);
    const paused = await waitForStatus(sol, (s) => s.paused, 'the pause to take effect');
    const decisionsWhenPaused = paused.counters.decisions;
    const cyclesWhenPaused = paused.counters.cycles;
    const afterPause = await waitForStatus(sol, (s) => s.counters.cycles >= cyclesWhenPaused + 3, '3 paused cycles');
    assert.equal(afterPause.counters.decisions, decisionsWhenPaused, 'decide was called while paused');
    assert.ok(afterPause.position !== null, 'the position is kept while paused');

    await sol.signal(resumeSignal);
    await waitForStatus(sol, (s) => !s.paused && s.counters.decisions > decisionsWhenPaused, 'decisions after resume');

    await sol.signal(forceExitSignal);
    const exited = await waitForStatus(sol, (s) => s.position === null, 'the forced exit');
    assert.equal(exited.lastDecision?.source, 'operator');
    assert.equal(exited.lastDecision?.tool, 'signal_exit');

    await sol.signal(stopSignal);
    await sol.result();
  });

  test('continue-as-new (cap of 3 cycles per run) keeps position, tracker and counters', async (t) => {
    if (skip) return t.skip(skip);
    const doge = await startPair('DOGE/USDT:USDT', (input) => ({ ...input, maxCyclesPerRun: 3 }));
    const first = await waitForStatus(doge, (s) => s.position !== null, 'DOGE to open a position');
    const tradeId = first.position!.tradeId;
    // run 3 has finished a cycle of its own: its counters are the carried ones plus its own
    const later = await waitForStatus(doge, (s) => s.run >= 3 && s.cyclesThisRun >= 1, 'two continue-as-new');
    assert.equal(later.position?.tradeId, tradeId, 'the position survived continue-as-new');
    assert.ok(later.position!.holds >= first.position!.holds, 'the tracker carried over');
    assert.ok(later.position!.highestPrice >= first.position!.highestPrice);
    assert.ok(later.counters.cycles >= 7, `counters carried over: ${later.counters.cycles} cycles in run ${later.run}`);
    assert.ok(later.cyclesThisRun <= 3);
    await doge.signal(stopSignal);
    await doge.result();
  });

  test('a hold cycle costs <= 8 KB of history, and each decision is a named recordDecision step with the decision in its input', async (t) => {
    if (skip) return t.skip(skip);
    const cycles = 12;
    const ada = await startPair('ADA/USDT:USDT', (input) => ({
      ...input,
      replay: { ...input.replay!, recordedEnd: input.replay!.recordedStart + cycles * HALF_HOUR },
    }));
    const state = (await ada.result()) as PairState;
    assert.ok(state.counters.holds >= cycles - 3, `${state.counters.holds} holds`);
    const history = await ada.fetchHistory();
    const events = history.events ?? [];
    const encode = (e: temporal.api.history.v1.IHistoryEvent): number =>
      proto.temporal.api.history.v1.HistoryEvent.encode(e).finish().length;
    // one segment per cycle: from one timer to the next
    const segments: { bytes: number; tool: string | null }[] = [];
    let current = { bytes: 0, tool: null as string | null };
    for (const e of events) {
      if (e.timerStartedEventAttributes) {
        segments.push(current);
        current = { bytes: 0, tool: null };
      }
      // the workflow's result (its final state) is not part of a cycle
      if (!e.workflowExecutionCompletedEventAttributes) current.bytes += encode(e);
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled?.activityType?.name === 'recordDecision') {
        const payload = scheduled.input?.payloads?.[0];
        const input = JSON.parse(Buffer.from(payload!.data!).toString('utf8')) as {
          decisionId: string;
          price: number | null;
          record: { tool: string; reason: string };
          result: { decision: { tool: string; args: Record<string, unknown> } } | null;
        };
        // what the Web UI shows when the step is opened: tool, arguments, reason, price, and the prompt's id
        assert.ok(input.record.tool.startsWith('signal_'));
        assert.equal(typeof input.record.reason, 'string');
        assert.ok(input.price !== null && input.price > 0, 'the decision price is in the step input');
        assert.match(input.decisionId, /^d[0-9a-f]{12}[0-9a-z]+$/);
        if (input.result) assert.equal(input.result.decision.args.pair, 'ADA/USDT:USDT');
        current.tool = input.record.tool;
      }
    }
    segments.push(current);
    const holds = segments.filter((c) => c.tool === 'signal_hold').map((c) => c.bytes);
    assert.ok(holds.length >= cycles - 3, `${holds.length} hold cycles found in the history`);
    const worst = Math.max(...holds);
    console.log(
      `# a hold cycle's history: median ${holds.sort((x, y) => x - y)[holds.length >> 1]} bytes, max ${worst} bytes ` +
        `(${holds.length} hold cycles)`,
    );
    assert.ok(worst <= 8 * 1024, `a hold cycle costs ${worst} bytes of history`);

    // the prompt is not in the history; it is in the journal under the decision id the history names
    const text = JSON.stringify(history.events);
    assert.ok(!text.includes('You are'), 'the system prompt is in the history');
    const journal = Journal.fromConfig(config, {});
    try {
      const last = state.recentDecisions.at(-1)!;
      const owner = `${ada.workflowId}@${ada.firstExecutionRunId}`;
      const prompt = journal.prompt(decisionId(owner, 'ADA/USDT:USDT', last.time));
      assert.ok(prompt && prompt.messages.length === 2, 'the prompt of the last decision is in the journal');
    } finally {
      journal.close();
    }
  });

  test('after an outage the pair decides on the latest closed candle only; the candles it missed are journaled', async (t) => {
    if (skip) return t.skip(skip);
    const queue = `${taskQueue}-outage`;
    const startWorker = async () => {
      const w = await Worker.create({
        connection: server!.env.nativeConnection,
        namespace: server!.namespace,
        taskQueue: queue,
        workflowBundle: bundle,
        activities: runtime.activities,
        stickyQueueScheduleToStartTimeout: STICKY_QUEUE_TIMEOUT,
      });
      return { w, running: w.run() };
    };
    let current = await startWorker();
    const schedule = await replaySchedule(config, 'BNB/USDT:USDT');
    const input = pairTraderInput(config, 'BNB/USDT:USDT', schedule, {});
    const bnb = await server!.env.client.workflow.start(PAIR_TRADER_WORKFLOW, {
      workflowId: `pair:${RUN}-outage:BNB/USDT:USDT`,
      taskQueue: queue,
      args: [input],
      typedSearchAttributes: initialSearchAttributes(input),
      workflowTaskTimeout: PAIR_WORKFLOW_TASK_TIMEOUT,
    });
    handles.push(bnb);
    try {
      const before = await waitForStatus(bnb, (s) => s.counters.cycles >= 2, 'BNB to run two cycles');
      current.w.shutdown();
      await current.running;
      const downSeconds = 7;
      await sleep(downSeconds * 1000);
      current = await startWorker();
      const after = await waitForStatus(
        bnb,
        // asleep between cycles: counters and missed candles are those of the same finished cycle
        (s) => s.counters.cycles >= before.counters.cycles + 2 && s.nextWakeTime !== null,
        'BNB to decide again after the outage',
      );
      // at one candle per second, the outage spanned about downSeconds candles; none of them was decided late
      assert.ok(after.missedCandles >= downSeconds - 3, `missed ${after.missedCandles} candles`);
      assert.equal(
        after.counters.cycles + after.counters.failedCycles + after.missedCandles,
        (after.lastCycleAsOf! - input.replay!.recordedStart) / HALF_HOUR,
        'every candle since the start was decided or counted as missed',
      );
      const journal = Journal.fromConfig(config, {});
      try {
        const owner = `${bnb.workflowId}@${bnb.firstExecutionRunId}`;
        const decided = journal
          .decisionsSince('BNB/USDT:USDT', 0, { limit: 1000 })
          .filter((d) => d.owner === owner)
          .map((d) => d.time);
        const missed = journal.missedCandles({ pair: 'BNB/USDT:USDT' }).filter((m) => m.owner === owner);
        const missedCount = missed.reduce((n, m) => n + m.count, 0);
        assert.equal(missedCount, after.missedCandles, 'the journal counts the missed candles the workflow counted');
        for (const m of missed) {
          for (let tClose = m.firstClose; tClose <= m.lastClose; tClose += HALF_HOUR) {
            assert.ok(!decided.includes(tClose), `the missed candle ${new Date(tClose).toISOString()} was decided`);
          }
        }
      } finally {
        journal.close();
      }
    } finally {
      await bnb.terminate('test finished').catch(() => undefined);
      current.w.shutdown();
      await current.running.catch(() => undefined);
    }
  });

  test('every history recorded by the suite replays without non-determinism', async (t) => {
    if (skip) return t.skip(skip);
    assert.ok(handles.length >= 5, 'the suite recorded histories');
    const histories = await Promise.all(
      handles.map(async (h) => ({ workflowId: h.workflowId, history: await h.fetchHistory() })),
    );
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: bundle }, histories)) {
      assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
      replayed += 1;
    }
    assert.equal(replayed, histories.length);
  });
});
