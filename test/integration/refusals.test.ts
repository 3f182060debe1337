/**
 * An order the exchange refuses never kills a pair, on a real Temporal server (see temporal-server.ts): a worker
 * process whose exchange refuses orders in turn — insufficient margin, an invalid order (below the minimum notional),
 * a rejected reduce-only exit, a bad request — through the `execute.beforeOrder=error(...)` failpoint (the refusal is
 * the classified exchange error the activity raises for each case), and lets some through. The pair records each
 * refusal (journal outcome `refused` with the exchange's reason, the executionFailures counter), releases the
 * admission slot of a refused entry, keeps trading (a later entry fills, the refused exit is retried at the next
 * candle and fills) and never fails a cycle or the workflow.
 *
 * Script (the `replay` decision provider): enter long at even candles, exit at odd ones.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import type { WorkflowHandle } from '@temporalio/client';
import { ConfigSchema } from '../../src/core/config';
import type { PairState } from '../../src/core/cycle';
import { timeframeMs } from '../../src/core/timeframe';
import { initialSearchAttributes, pairTraderInput, replaySchedule } from '../../src/worker/starter';
import {
  PAIR_TRADER_WORKFLOW,
  PAIR_WORKFLOW_TASK_TIMEOUT,
  accountStatusQuery,
  accountWorkflowId,
  statusQuery,
  stopSignal,
  type PairStatus,
} from '../../src/workflows/messages';
import { WorkerProcess, repoRoot, scriptLine } from '../helpers/worker-process';
import { acquireServer, requireServerInCi, type IntegrationServer } from './temporal-server';

const PAIR = 'BTC/USDT:USDT';
const CANDLES = 12;
/** the exchange's answers to the orders, in turn (`none` = filled) */
const REFUSALS = [
  'ExchangeInsufficientFunds',
  'ExchangeInvalidOrder',
  'none',
  'ExchangeRejected',
  'none',
  'ExchangeBadRequest',
];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('refused orders never kill a pair (real Temporal server, worker process)', () => {
  let server: IntegrationServer | null = null;
  let skip: string | null = null;
  let dir = '';
  const workers: WorkerProcess[] = [];
  const handles: WorkflowHandle[] = [];

  before(async () => {
    const acquired = await acquireServer();
    if (typeof acquired === 'string') {
      skip = acquired;
      requireServerInCi(skip);
      return;
    }
    server = acquired;
    dir = mkdtempSync(join(tmpdir(), 'llm-trader-refusals-'));
    mkdirSync(join(dir, 'workers'), { recursive: true });
  });

  after(async () => {
    for (const h of handles) await h.terminate('refusal test cleanup').catch(() => undefined);
    for (const w of workers) await w.kill();
    await server?.env.teardown();
    if (dir && process.exitCode === undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** One pair in replay mode on a worker process armed with `failpoints`; the script enters at even candles, exits at odd. */
  async function scenario(failpoints: string) {
    const client = server!.env.client;
    const runId = `ref${Date.now().toString(36)}`;
    const taskQueue = `llm-trader-${runId}`;
    const decisionFile = join(dir, `${runId}-script.jsonl`);
    const raw = {
      mode: 'replay',
      pairs: [PAIR],
      data_dir: join(dir, runId),
      replay: { data: resolve(repoRoot, '../shared/data/binanceusdm'), seconds_per_candle: 2 },
      temporal: { task_queue: taskQueue, namespace: server!.namespace, grace_seconds: 0, max_cycles_per_run: 200 },
      llm: { provider: 'replay', replay_file: decisionFile },
      risk: { cooldown_minutes: 0 },
    };
    const config = ConfigSchema.parse(raw);
    const configFile = join(dir, `${runId}-config.json`);
    writeFileSync(configFile, JSON.stringify(raw, null, 2));
    const step = timeframeMs(config.timeframes.main);
    const schedule0 = await replaySchedule(config, PAIR);
    const candle = (k: number): number => schedule0.recordedStart + (k + 1) * step;
    const lines: string[] = [];
    for (let k = 0; k <= CANDLES; k++) {
      lines.push(
        scriptLine(PAIR, candle(k), k % 2 === 0, {
          model: 'refusal-script',
          reason: 'refusal test',
          leverage: 2,
          stake: 100,
        }),
      );
    }
    writeFileSync(decisionFile, `${lines.join('\n')}\n`);
    const worker = WorkerProcess.start({
      name: runId,
      configFile,
      env: { TEMPORAL_ADDRESS: server!.address, TEMPORAL_NAMESPACE: server!.namespace },
      failpoints,
      logFile: join(dir, 'workers', `${runId}.log`),
    });
    workers.push(worker);
    await worker.waitStarted();
    const account = `replay-${runId}`;
    const schedule = { ...schedule0, wallStart: Date.now() + 1_000, recordedEnd: candle(CANDLES) };
    const input = pairTraderInput(config, PAIR, schedule, {}, account);
    const handle = await client.workflow.start(PAIR_TRADER_WORKFLOW, {
      workflowId: `pair:${runId}:${PAIR}`,
      taskQueue,
      args: [input],
      typedSearchAttributes: initialSearchAttributes(input),
      workflowTaskTimeout: PAIR_WORKFLOW_TASK_TIMEOUT,
    });
    handles.push(handle);
    const journal = (): { time: number; tool: string; outcome: string; detail: string | null }[] => {
      const db = new Database(join(config.data_dir, 'journal.sqlite'), { readonly: true, fileMustExist: true });
      try {
        return db.prepare('SELECT time, tool, outcome, detail FROM decisions ORDER BY time').all() as ReturnType<
          typeof journal
        >;
      } finally {
        db.close();
      }
    };
    const status = async (): Promise<PairStatus | null> => {
      try {
        return await handle.query(statusQuery);
      } catch {
        return null;
      }
    };
    return { client, handle, candle, journal, status, account, taskQueue };
  }

  test('insufficient margin, invalid order, a refused reduce-only exit and a bad request: each recorded, the pair trades on', async (t) => {
    if (skip) return t.skip(skip);
    const {
      client,
      handle,
      candle,
      journal,
      status: query,
      account,
      taskQueue,
    } = await scenario(`execute.beforeOrder=error(${REFUSALS.join('|')})`);

    // every order the script produces until the exchange has answered each way
    const deadline = Date.now() + 90_000;
    let status: PairStatus | null = null;
    let refused: ReturnType<typeof journal> = [];
    for (;;) {
      status = await query();
      refused = status ? journal().filter((r) => r.outcome === 'refused') : [];
      if (
        refused.length >= 4 &&
        status !== null &&
        status.lastCycleAsOf !== null &&
        status.lastCycleAsOf >= candle(9)
      ) {
        break;
      }
      assert.ok(
        Date.now() < deadline,
        `the exchange's refusals were not all recorded in 90 s: ${JSON.stringify(refused)}`,
      );
      await sleep(300);
    }
    const types = REFUSALS.filter((r) => r !== 'none').slice(0, 3);
    for (const type of types) {
      assert.ok(
        refused.some((r) => r.detail?.includes(`refused by the exchange: ${type}`)),
        `a ${type} refusal is journaled with its reason: ${JSON.stringify(refused.map((r) => r.detail))}`,
      );
    }
    // the refused exit (reduce-only rejected) left the position open; the exit at the next odd candle closed it
    const exitRefused = refused.find((r) => r.tool === 'signal_exit');
    assert.ok(exitRefused, 'an exit was refused');
    const executedExit = journal().find(
      (r) => r.tool === 'signal_exit' && r.outcome === 'executed' && r.time > exitRefused.time,
    );
    assert.ok(executedExit, 'the pair exits at a later candle after its exit was refused');
    assert.ok(status!.counters.executionFailures >= 4, `executionFailures ${status!.counters.executionFailures}`);
    assert.equal(status!.counters.failedCycles, 0, 'no cycle failed');
    assert.equal((await handle.describe()).status.name, 'RUNNING');
    // a refused entry holds no admission slot
    const book = await client.workflow.getHandle(accountWorkflowId(account, taskQueue)).query(accountStatusQuery);
    assert.equal(book.slots.length, status!.position === null ? 0 : 1, `slots ${JSON.stringify(book.slots)}`);

    await handle.signal(stopSignal);
    const final = (await handle.result()) as PairState;
    assert.ok(final.counters.entries >= 1, 'an entry filled between the refusals');
  });

  test('a model call that fails for good skips its candle: the pair counts it and decides at the next one', async (t) => {
    if (skip) return t.skip(skip);
    // LlmBadRequest is not retried: every second decision fails at once (a local activity's final failure)
    const {
      handle,
      candle,
      journal,
      status: query,
    } = await scenario('decide.beforeProvider=error(LlmBadRequest|none)');
    const deadline = Date.now() + 90_000;
    let status: PairStatus | null = null;
    for (;;) {
      status = await query();
      if (status !== null && status.lastCycleAsOf !== null && status.lastCycleAsOf >= candle(7)) break;
      assert.ok(Date.now() < deadline, `the pair did not reach candle 7 in 90 s: ${JSON.stringify(status)}`);
      await sleep(300);
    }
    assert.ok(status.counters.failedCycles >= 3, `failed cycles ${status.counters.failedCycles}`);
    assert.ok(journal().length >= 3, 'the other candles were decided and journaled');
    assert.equal((await handle.describe()).status.name, 'RUNNING');
    await handle.signal(stopSignal);
    await handle.result();
  });
});
