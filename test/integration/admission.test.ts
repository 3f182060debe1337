/**
 * Portfolio admission across pairs and workers on a real Temporal server (see temporal-server.ts for how one is
 * found): 10 pair workflows in replay mode on TWO worker processes (`llm-trader worker`, the real activities), every
 * pair scripted to enter at the same candle close, `risk.max_open_trades` 3. The `account` workflow serialises the
 * requests: exactly 3 positions open, the other 7 entries refused with a journaled reason. A worker SIGKILLed while it
 * hands admission requests to the account workflow (failpoint `requestAdmission.afterSignal`) leaves at most 3 open,
 * and no slot leaks: after the open trades exit, 3 new entries open again. A rerun of the 10 pairs (new executions,
 * a new paper account) admits 3 again and keeps every workflow running.
 *
 * Script (the `replay` decision provider over a decision file): candle k of the run enters long at k = 0, 8, 16 and
 * exits at k = 4, 12; other candles have no line (the provider holds or waits).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { ConfigSchema, type Config } from '../../src/core/config';
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
  type AccountStatus,
  type PairStatus,
} from '../../src/workflows/messages';
import { WorkerProcess, repoRoot, scriptLine } from '../helpers/worker-process';
import { acquireServer, requireServerInCi, type IntegrationServer } from './temporal-server';

const PAIRS = [
  'BTC/USDT:USDT',
  'ETH/USDT:USDT',
  'SOL/USDT:USDT',
  'DOGE/USDT:USDT',
  'XRP/USDT:USDT',
  'ADA/USDT:USDT',
  'LINK/USDT:USDT',
  'BNB/USDT:USDT',
  'AVAX/USDT:USDT',
  'DOT/USDT:USDT',
];
const MAX_OPEN = 3;
const SECONDS_PER_CANDLE = 3;
const ENTRY_CANDLES = [0, 8, 16];
const EXIT_CANDLES = [4, 12];
const CANDLES = 40;
const SCRIPT = { model: 'admission-script', reason: 'admission test', leverage: 2, stake: 100 };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface JournalRow {
  pair: string;
  time: number;
  tool: string;
  outcome: string;
  detail: string | null;
  owner: string;
}

describe('portfolio admission: 10 pairs on two workers, max_open_trades 3 (real Temporal server)', () => {
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
    dir = mkdtempSync(join(tmpdir(), 'llm-trader-admission-'));
  });

  after(async () => {
    for (const h of handles) await h.terminate('admission test cleanup').catch(() => undefined);
    for (const w of workers) await w.kill();
    await server?.env.teardown();
    if (dir && process.exitCode === undefined) rmSync(dir, { recursive: true, force: true });
  });

  test('exactly 3 open, 7 refused with a journaled reason; a worker killed in admission leaves <= 3 and leaks no slot; a rerun admits 3', async (t) => {
    if (skip) return t.skip(skip);
    const client: Client = server!.env.client;
    const runId = `adm${Date.now().toString(36)}`;
    const taskQueue = `llm-trader-${runId}`;
    const decisionFile = join(dir, 'script.jsonl');
    const raw = {
      mode: 'replay',
      pairs: PAIRS,
      data_dir: join(dir, 'user_data'),
      replay: { data: resolve(repoRoot, '../shared/data/binanceusdm'), seconds_per_candle: SECONDS_PER_CANDLE },
      temporal: { task_queue: taskQueue, namespace: server!.namespace, grace_seconds: 0, max_cycles_per_run: 200 },
      llm: { provider: 'replay', replay_file: decisionFile },
      risk: { max_open_trades: MAX_OPEN, cooldown_minutes: 0 },
    };
    const config: Config = ConfigSchema.parse(raw);
    const configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(raw, null, 2));
    mkdirSync(join(dir, 'workers'), { recursive: true });
    const step = timeframeMs(config.timeframes.main);

    // every pair shares one schedule: the same first candle, so all 10 decide at the same close
    const schedules = await Promise.all(PAIRS.map((p) => replaySchedule(config, p)));
    const recordedStart = Math.max(...schedules.map((s) => s.recordedStart));
    const candle = (k: number): number => recordedStart + (k + 1) * step;
    const lines: string[] = [];
    for (const pair of PAIRS) {
      for (const k of ENTRY_CANDLES) lines.push(scriptLine(pair, candle(k), true, SCRIPT));
      for (const k of EXIT_CANDLES) lines.push(scriptLine(pair, candle(k), false, SCRIPT));
    }
    writeFileSync(decisionFile, `${lines.join('\n')}\n`);

    const bundle = join(dir, 'workflow-bundle.js');
    const built = spawnSync(
      process.execPath,
      [join(repoRoot, 'bin/llm-trader.js'), 'worker', '--write-bundle', bundle],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 180_000,
      },
    );
    assert.equal(built.status, 0, `worker --write-bundle failed: ${built.stderr}`);
    let seq = 0;
    const startWorker = (failpoints?: string): WorkerProcess => {
      seq += 1;
      const w = WorkerProcess.start({
        name: `w${seq}`,
        configFile,
        env: { TEMPORAL_ADDRESS: server!.address, TEMPORAL_NAMESPACE: server!.namespace },
        bundle,
        ...(failpoints ? { failpoints } : {}),
        logFile: join(dir, 'workers', `w${seq}.log`),
      });
      workers.push(w);
      return w;
    };

    const status = async (h: WorkflowHandle): Promise<PairStatus | null> => {
      try {
        return await h.query(statusQuery);
      } catch {
        return null;
      }
    };
    /** waits until every pair of `hs` has completed its cycle at candle k (or a later one) */
    const untilDecided = async (hs: WorkflowHandle[], k: number, what: string): Promise<PairStatus[]> => {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const all = await Promise.all(hs.map(status));
        if (all.every((s) => s !== null && s.lastCycleAsOf !== null && s.lastCycleAsOf >= candle(k))) {
          return all as PairStatus[];
        }
        if (Date.now() > deadline) {
          const where = all.map((s, i) => `${PAIRS[i]}: ${s ? s.lastCycleAsOf : 'no answer'}`).join(', ');
          throw new Error(`${what}: not every pair decided at candle ${k} within 120 s (${where})`);
        }
        await sleep(250);
      }
    };
    const accountStatus = async (account: string): Promise<AccountStatus> =>
      client.workflow.getHandle(accountWorkflowId(account, taskQueue)).query(accountStatusQuery);
    const journalRows = (): JournalRow[] => {
      const db = new Database(join(config.data_dir, 'journal.sqlite'), { readonly: true, fileMustExist: true });
      try {
        return db.prepare('SELECT pair, time, tool, outcome, detail, owner FROM decisions').all() as JournalRow[];
      } finally {
        db.close();
      }
    };
    const openPairs = (all: PairStatus[]): string[] => all.filter((s) => s.position !== null).map((s) => s.pair);

    const startPairs = async (prefix: string, account: string): Promise<WorkflowHandle[]> => {
      const wallStart = Date.now() + 2_000;
      const hs: WorkflowHandle[] = [];
      for (const pair of PAIRS) {
        const schedule = {
          recordedStart,
          wallStart,
          secondsPerCandle: SECONDS_PER_CANDLE,
          recordedEnd: candle(CANDLES),
        };
        const input = pairTraderInput(config, pair, schedule, {}, account);
        const h = await client.workflow.start(PAIR_TRADER_WORKFLOW, {
          workflowId: `pair:${prefix}:${pair}`,
          taskQueue,
          args: [input],
          typedSearchAttributes: initialSearchAttributes(input),
          workflowTaskTimeout: PAIR_WORKFLOW_TASK_TIMEOUT,
        });
        hs.push(h);
        handles.push(h);
      }
      return hs;
    };

    let w1 = startWorker();
    let w2 = startWorker();
    await Promise.all([w1.waitStarted(), w2.waitStarted()]);
    const account = `replay-${runId}a`;
    const hs = await startPairs(runId, account);

    // ---- round 1: all 10 enter at the same close ----
    let all = await untilDecided(hs, 0, 'round 1');
    const opened1 = openPairs(all);
    assert.equal(opened1.length, MAX_OPEN, `round 1: open positions ${opened1.join(', ')}`);
    /** the entry decisions journaled at candle k (the journal step follows the cycle: waits for its rows) */
    const entriesAt = async (k: number, owners: ReadonlySet<string> | null = null): Promise<JournalRow[]> => {
      let rows: JournalRow[] = [];
      for (let i = 0; i < 40; i++) {
        rows = journalRows().filter(
          (r) => r.time === candle(k) && r.tool === 'signal_entry_long' && (owners === null || owners.has(r.owner)),
        );
        if (rows.length >= PAIRS.length) break;
        await sleep(250);
      }
      return rows;
    };
    const round1 = await entriesAt(0);
    assert.equal(round1.length, PAIRS.length, 'every pair journaled its entry decision');
    const executed = round1.filter((r) => r.outcome === 'executed');
    const notOpened = round1.filter((r) => r.outcome !== 'executed');
    assert.deepEqual(executed.map((r) => r.pair).sort(), [...opened1].sort());
    const atAdmission = notOpened.filter((r) => r.outcome === 'refused' && /portfolio admission/.test(r.detail ?? ''));
    const byGate = notOpened.filter((r) => r.outcome === 'rejected' && /max_open_trades/.test(r.detail ?? ''));
    console.log(
      `# round 1: open ${opened1.join(', ')}; refused at admission ${atAdmission.length}, rejected by the gate ` +
        `(its account read came after the grants filled) ${byGate.length}; e.g. "${atAdmission[0]?.detail ?? byGate[0]?.detail}"`,
    );
    assert.equal(atAdmission.length + byGate.length, PAIRS.length - MAX_OPEN, 'the 7 others are refused with a reason');
    assert.ok(atAdmission.length > 0, 'concurrent entries reach the admission step and are refused there');
    const book1 = await accountStatus(account);
    assert.deepEqual(
      book1.slots.map((s) => s.pair),
      [...opened1].sort(),
      'the account workflow holds exactly the slots of the open positions',
    );

    // ---- round 2: both workers replaced by armed ones (they warm up on the candles before it); the first to hand a
    // request to the account workflow is SIGKILLed there ----
    const armed = [startWorker('requestAdmission.afterSignal=3000'), startWorker('requestAdmission.afterSignal=3000')];
    await Promise.all(armed.map((w) => w.waitStarted()));
    await Promise.all([w1.stop(), w2.stop()]);
    await untilDecided(hs, EXIT_CANDLES[0]!, 'the exits');
    const victim = await Promise.race(
      armed.map((w) =>
        w
          .waitFor((r) => r.failpoint === 'requestAdmission.afterSignal', 'the admission failpoint', 90_000)
          .then(() => w),
      ),
    );
    await victim.kill();
    console.log(`# round 2: ${victim.name} SIGKILLed after handing an admission request to the account workflow`);
    w1 = startWorker();
    await w1.waitStarted();
    all = await untilDecided(hs, ENTRY_CANDLES[1]!, 'round 2');
    const opened2 = openPairs(all);
    assert.ok(opened2.length <= MAX_OPEN, `round 2 (a worker killed in admission): open ${opened2.join(', ')}`);
    const book2 = await accountStatus(account);
    assert.ok(book2.slots.length <= MAX_OPEN, `account slots ${book2.slots.map((s) => s.pair).join(', ')}`);

    // ---- round 3: after the exits, 3 new entries open again: no slot leaked ----
    all = await untilDecided(hs, ENTRY_CANDLES[2]!, 'round 3');
    const opened3 = openPairs(all);
    console.log(`# round 2 open: ${opened2.join(', ')}; round 3 open: ${opened3.join(', ')}`);
    assert.equal(opened3.length, MAX_OPEN, `round 3: open ${opened3.join(', ')}`);
    // new trades, entered at this close: the slots of round 2's trades were released when they exited
    for (const s of all.filter((x) => x.position !== null)) {
      assert.equal(s.position!.entryTime, candle(ENTRY_CANDLES[2]!), `${s.pair} entered at round 3's close`);
    }
    const executed3 = (await entriesAt(ENTRY_CANDLES[2]!)).filter((r) => r.outcome === 'executed');
    assert.equal(executed3.length, MAX_OPEN, 'exactly 3 entries executed at round 3');
    assert.equal(all.filter((s) => !s.stopRequested).length, PAIRS.length);
    for (const h of hs) {
      const d = await h.describe();
      assert.equal(d.status.name, 'RUNNING', `${h.workflowId} is still running`);
    }
    // refused entries never failed a cycle
    for (const s of all) assert.equal(s.counters.failedCycles, 0, `${s.pair} failed cycles`);
    await Promise.all(hs.map((h) => h.signal(stopSignal)));
    const results = (await Promise.all(hs.map((h) => h.result()))) as PairState[];
    const refusals = results.reduce((n, s) => n + s.counters.admissionRefusals, 0);
    assert.ok(refusals >= atAdmission.length, `admission refusals counted: ${refusals}`);

    // ---- the rerun: the same workflow ids, new executions, a new paper account ----
    w2 = startWorker();
    await w2.waitStarted();
    const rerun = await startPairs(runId, `replay-${runId}b`);
    all = await untilDecided(rerun, 1, 'the rerun');
    const openedRerun = openPairs(all);
    assert.ok(openedRerun.length <= MAX_OPEN, `rerun: open ${openedRerun.join(', ')}`);
    assert.equal(openedRerun.length, MAX_OPEN);
    for (const h of rerun) assert.equal((await h.describe()).status.name, 'RUNNING', `${h.workflowId} is running`);
    await Promise.all(rerun.map((h) => h.signal(stopSignal)));
    await Promise.all(rerun.map((h) => h.result()));
  });
});
