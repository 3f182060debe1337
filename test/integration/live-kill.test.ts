/**
 * A live-mode worker killed between the exchange's acceptance of an order and the order step's report, on a real
 * Temporal server (see temporal-server.ts): the worker is its own OS process (`llm-trader worker`, live configuration
 * whose `exchange.api_url` is the local exchange of test/local-exchange, keys from EXCHANGE_API_KEY /
 * EXCHANGE_API_SECRET), armed with the `execute.afterOrder` failpoint and SIGKILLed while it pauses there. A clean
 * worker takes over; Temporal retries the order step (its heartbeat stopped), which must find the order the dead worker
 * placed instead of placing another, then place the protective stop the dead worker never got to.
 *
 * Clock: the pair workflow runs on a replay schedule (2 s of wall time per 30m candle, the recorded BTC/USDT:USDT of
 * 2025-06-22), and the local exchange runs on the same recorded clock, so cycles come every 2 seconds; everything else
 * is the live code path: the live activities, the ccxt adapter, the exchange's HTTP API.
 *
 *   TEMPORAL_CLI_PATH=../shared/tools/temporal-dev/temporal node scripts/run-tests.mjs test/integration/live-kill
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { ConfigSchema } from '../../src/core/config';
import { ReplayClock } from '../../src/core/replay-clock';
import { clientOrderId } from '../../src/core/ids';
import { initialSearchAttributes, pairTraderInput } from '../../src/worker/starter';
import {
  PAIR_TRADER_WORKFLOW,
  PAIR_WORKFLOW_TASK_TIMEOUT,
  statusQuery,
  stopSignal,
  type PairStatus,
  type PairTraderInput,
} from '../../src/workflows/messages';
import { acquireServer, requireServerInCi, type IntegrationServer } from './temporal-server';
import { WorkerProcess, repoRoot } from '../helpers/worker-process';
import {
  DATA_DIR,
  HALF_HOUR,
  LOCAL_API_KEY,
  LOCAL_API_SECRET,
  tools,
  writeScript,
  type ScriptedDecision,
} from '../helpers/live-exchange';
import { LocalExchange } from '../local-exchange/server';

const PAIR = 'BTC/USDT:USDT';
const SYMBOL = 'BTCUSDT';
const RECORDED_START = Date.parse('2025-06-22T06:30:00Z');
const SECONDS_PER_CANDLE = 2;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

describe('a live worker killed after the exchange accepted its order (real Temporal server, local exchange)', () => {
  let server: IntegrationServer | null = null;
  let skip: string | null = null;

  before(async () => {
    const acquired = await acquireServer();
    if (typeof acquired === 'string') {
      skip = acquired;
      requireServerInCi(skip);
      console.log(`# live kill test skipped: ${skip}`);
      return;
    }
    server = acquired;
  });

  after(async () => {
    await server?.env.teardown();
  });

  test('exactly one order (and one stop) on the exchange after recovery; the workflow tracks it; the exit closes it once', async (t) => {
    if (skip) return t.skip(skip);
    const dir = mkdtempSync(join(tmpdir(), 'llm-trader-live-kill-'));
    const runId = `livekill${Date.now().toString(36)}`;
    const taskQueue = `llm-trader-${runId}`;
    const wallStart = Date.now() + 30_000; // after the bundle and the first worker are up (reset below)
    const clockOf = (start: number) =>
      new ReplayClock({
        recordedStart: RECORDED_START,
        wallStart: start,
        secondsPerCandle: SECONDS_PER_CANDLE,
        timeframe: '30m',
      });
    let replayClock = clockOf(wallStart);
    const exchange = await LocalExchange.start({
      apiKey: LOCAL_API_KEY,
      apiSecret: LOCAL_API_SECRET,
      dataDir: DATA_DIR,
      clock: () => Math.floor(replayClock.recordedTime(Date.now())),
    });
    const workers: WorkerProcess[] = [];
    let handle: WorkflowHandle | null = null;
    try {
      // the entry on the first candles (the first cycle takes it), the exit from the 12th candle on
      const decisions: ScriptedDecision[] = [];
      for (let k = 1; k <= 40; k++) {
        const time = RECORDED_START + k * HALF_HOUR;
        decisions.push(
          k <= 3
            ? { time, tool: 'signal_entry_long', args: tools.entry(3, 200) }
            : k >= 12
              ? { time, tool: 'signal_exit', args: tools.exit() }
              : { time, tool: 'signal_hold', args: tools.hold() },
        );
      }
      const scriptFile = join(dir, 'script.jsonl');
      writeScript(scriptFile, PAIR, decisions);
      const raw = {
        mode: 'live',
        pairs: [PAIR],
        data_dir: join(dir, 'user_data'),
        exchange: { name: 'binanceusdm', api_url: exchange.url, ccxt_options: { rateLimit: 5 } },
        llm: { provider: 'replay', replay_file: scriptFile },
        risk: { cooldown_minutes: 0 },
        temporal: { task_queue: taskQueue, namespace: server!.namespace, grace_seconds: 0 },
      };
      const config = ConfigSchema.parse(raw);
      const configFile = join(dir, 'config.json');
      writeFileSync(configFile, JSON.stringify(raw, null, 2));
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
      assert.equal(built.status, 0, `worker --write-bundle: ${built.stderr.slice(-1500)}`);
      const env = {
        TEMPORAL_ADDRESS: server!.address,
        TEMPORAL_NAMESPACE: server!.namespace,
        EXCHANGE_API_KEY: LOCAL_API_KEY,
        EXCHANGE_API_SECRET: LOCAL_API_SECRET,
      };
      const startWorker = (name: string, failpoints?: string): WorkerProcess => {
        const w = WorkerProcess.start({
          name,
          configFile,
          env,
          bundle,
          ...(failpoints ? { failpoints } : {}),
          logFile: join(dir, `${name}.log`),
        });
        workers.push(w);
        return w;
      };

      const armed = startWorker('w1-armed', 'execute.afterOrder=20000');
      await armed.waitStarted();
      const start = Date.now() + 1_000;
      replayClock = clockOf(start);
      const input: PairTraderInput = {
        ...pairTraderInput(config, PAIR, null, {}, 'live'),
        replay: {
          recordedStart: RECORDED_START,
          wallStart: start,
          secondsPerCandle: SECONDS_PER_CANDLE,
          recordedEnd: RECORDED_START + 40 * HALF_HOUR,
        },
      };
      const workflowId = `pair:${runId}:${PAIR}`;
      handle = await server!.env.client.workflow.start(PAIR_TRADER_WORKFLOW, {
        workflowId,
        taskQueue,
        args: [input],
        typedSearchAttributes: initialSearchAttributes(input),
        workflowTaskTimeout: PAIR_WORKFLOW_TASK_TIMEOUT,
      });

      await armed.waitFor(
        (r) => typeof r.message === 'string' && r.message.startsWith('failpoint execute.afterOrder: pausing'),
        'the failpoint',
        60_000,
      );
      const orders = exchange.engine.orders.filter((o) => o.symbol === SYMBOL);
      assert.equal(orders.length, 1, 'the exchange accepted the entry');
      const entryId = orders[0]!.clientOrderId;
      const entryCandles = [1, 2, 3].map((k) => clientOrderId(workflowId, RECORDED_START + k * HALF_HOUR, 0));
      assert.ok(entryCandles.includes(entryId), `an entry of the first candles: ${entryId}`);
      assert.equal(exchange.engine.algoOrders.length, 0, 'killed before the stop was placed');
      await armed.kill();

      const replacement = startWorker('w2');
      await replacement.waitStarted();
      const h = handle;
      const tracked = await until('the entry recorded by the workflow', 90_000, async () => {
        const s = await h.query(statusQuery).catch(() => null);
        return s?.position ? s : null;
      });
      const sameOrder = exchange.engine.ordersWithClientId(entryId);
      assert.equal(sameOrder.length, 1, 'exactly one order with the entry id after recovery');
      assert.equal(exchange.engine.orders.filter((o) => o.symbol === SYMBOL && o.algoId === null).length, 1);
      assert.equal(tracked.position!.tradeId, entryId);
      assert.equal(tracked.position!.quantity, exchange.engine.position(SYMBOL)?.amount, 'the mirror is the exchange');
      const stops = exchange.engine.algoOrders.filter((a) => a.clientAlgoId === `${entryId}s`);
      assert.deepEqual(
        stops.map((a) => [a.algoStatus, a.quantity]),
        [['NEW', tracked.position!.quantity]],
        'the stop placed once, by the retried order step',
      );

      const closed = await until('the exit', 90_000, async () => {
        const s: PairStatus | null = await h.query(statusQuery).catch(() => null);
        return s && s.counters.exits >= 1 ? s : null;
      });
      assert.equal(closed.position, null);
      assert.equal(exchange.engine.position(SYMBOL), undefined);
      const market = exchange.engine.orders.filter((o) => o.algoId === null);
      assert.equal(market.length, 2, `one entry, one exit: ${market.map((o) => o.clientOrderId).join(', ')}`);
      assert.equal(new Set(market.map((o) => o.clientOrderId)).size, 2);
      assert.equal(stops[0]!.algoStatus, 'CANCELED', 'the exit cancelled the stop');
      await h.signal(stopSignal);
      await h.result();

      const journal = new Database(join(config.data_dir, 'journal.sqlite'), { readonly: true });
      try {
        const rows = journal.prepare('SELECT client_order_id FROM decisions WHERE client_order_id = ?').all(entryId);
        assert.equal(rows.length, 1, 'the entry decision journaled once');
      } finally {
        journal.close();
      }
      assert.ok(readFileSync(join(config.data_dir, 'logs/llm_decisions.jsonl'), 'utf8').includes(entryId));
      assert.deepEqual(exchange.unexpected, []);
      rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      console.log(`# the workers' logs and files are kept in ${dir}`);
      throw err;
    } finally {
      for (const w of workers) if (w.running) await w.stop();
      if (handle) {
        try {
          const d = await handle.describe();
          if (d.status.name === 'RUNNING') await handle.terminate('live kill test cleanup');
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) console.log(`# cleanup of ${handle.workflowId}: ${String(err)}`);
        }
      }
      await exchange.close();
    }
  });
});
