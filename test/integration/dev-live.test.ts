/**
 * `llm-trader dev --mode live` with the shipped config/live.json against the local exchange (test/local-exchange), on
 * the real Temporal server of the integration suite: the command as a user runs it, in its own process. The local
 * exchange serves the recorded market of 2025-06-12 as today (every wire time shifted by whole days), with the wall
 * clock, as the standalone `test/local-exchange/main.ts` does. Live mode is on the wall clock: the first decision
 * comes at the next 30-minute close, so this test checks everything up to it (the signed account check, the pairs
 * started in live mode, their first wake-up, a clean Ctrl-C); test/integration/live-kill.test.ts runs live workers
 * through whole cycles on a replayed clock, and the README shows a `dev --mode live` session through real cycles.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/common';
import { nextCloseAfter } from '../../src/core/timeframe';
import { statusQuery, pairWorkflowId } from '../../src/workflows/messages';
import { acquireServer, requireServerInCi, type IntegrationServer } from './temporal-server';
import { repoRoot } from '../helpers/cli';
import { DATA_DIR, HALF_HOUR, LOCAL_API_KEY, LOCAL_API_SECRET } from '../helpers/live-exchange';
import { LocalExchange } from '../local-exchange/server';

const DAY_MS = 86_400_000;

describe('llm-trader dev --mode live -c config/live.json on the local exchange (real Temporal server)', () => {
  let server: IntegrationServer | null = null;
  let skip: string | null = null;

  before(async () => {
    const acquired = await acquireServer();
    if (typeof acquired === 'string') {
      skip = acquired;
      requireServerInCi(skip);
      console.log(`# dev --mode live test skipped: ${skip}`);
      return;
    }
    server = acquired;
  });

  after(async () => {
    await server?.env.teardown();
  });

  test('checks the account with signed requests, starts the pairs in live mode, waits for the next close, stops on Ctrl-C', async (t) => {
    if (skip) return t.skip(skip);
    const shiftMs = Math.floor(Date.now() / DAY_MS) * DAY_MS - Date.parse('2025-06-12T00:00:00Z');
    const exchange = await LocalExchange.start({
      apiKey: LOCAL_API_KEY,
      apiSecret: LOCAL_API_SECRET,
      dataDir: DATA_DIR,
      clock: () => Date.now() - shiftMs,
      shiftMs,
    });
    const dir = mkdtempSync(join(tmpdir(), 'llm-trader-dev-live-'));
    const taskQueue = `llm-trader-devlive-${Date.now().toString(36)}`;
    // the shipped rehearsal config, with this run's exchange port, data folder and task queue
    interface Shipped {
      mode: string;
      pairs: string[];
      exchange: Record<string, unknown>;
      temporal: Record<string, unknown>;
    }
    const shipped = JSON.parse(readFileSync(join(repoRoot, 'config/live.json'), 'utf8')) as Shipped;
    assert.equal(shipped.mode, 'live');
    assert.equal(shipped.exchange.api_url, 'http://127.0.0.1:8900', 'config/live.json targets the local exchange');
    const config = {
      ...shipped,
      data_dir: join(dir, 'user_data'),
      exchange: { ...shipped.exchange, api_url: exchange.url },
      temporal: { ...shipped.temporal, task_queue: taskQueue },
    };
    const configFile = join(dir, 'live.json');
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'bin/llm-trader.js'), 'dev', '--mode', 'live', '-c', configFile],
      {
        cwd: repoRoot,
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: server!.address,
          TEMPORAL_NAMESPACE: server!.namespace,
          EXCHANGE_API_KEY: LOCAL_API_KEY,
          EXCHANGE_API_SECRET: LOCAL_API_SECRET,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const client = server!.env.client;
    try {
      const deadline = Date.now() + 120_000;
      while (!/Follow with `llm-trader status`/.test(stdout)) {
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`dev did not start: stdout:\n${stdout}\nstderr:\n${stderr.slice(-3000)}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.match(
        stdout,
        new RegExp(`mode live, provider baseline, orders on the binanceusdm API at ${exchange.url}`),
      );
      assert.match(stdout, /BTC\/USDT:USDT\s+started/);
      const checked = stderr.split('\n').find((l) => l.includes('"live exchange account checked"'));
      assert.ok(checked, `the worker checked the account: ${stderr.slice(-2000)}`);
      assert.equal(JSON.parse(checked).equity, 10_000);
      for (const path of ['/fapi/v3/account', '/fapi/v1/positionSide/dual']) {
        assert.deepEqual(
          exchange.requestsTo(path, 'GET').map((r) => r.status),
          [200],
          `${path}: one signed request, accepted`,
        );
      }
      const started = Date.now();
      for (const pair of shipped.pairs) {
        const handle = client.workflow.getHandle(pairWorkflowId('binanceusdm', pair));
        // the workflow knows its next close once its first clock reading (a local activity) has answered: until then
        // its status says null (status prints '-')
        let status = await handle.query(statusQuery);
        const queryDeadline = Date.now() + 30_000;
        while (status.nextDecisionAsOf === null && Date.now() < queryDeadline) {
          await new Promise((r) => setTimeout(r, 100));
          status = await handle.query(statusQuery);
        }
        assert.equal(status.mode, 'live');
        assert.equal(status.account, 'live');
        const next = status.nextDecisionAsOf;
        assert.ok(next !== null, `${pair} knows its next close within 30 s of its start`);
        assert.ok(
          next % HALF_HOUR === 0 && next > started - HALF_HOUR && next <= nextCloseAfter(Date.now(), '30m'),
          `${pair} decides at the next close: ${new Date(next).toISOString()}`,
        );
      }
      child.kill('SIGINT');
      assert.equal(await exited, 0, `dev exits cleanly on Ctrl-C: ${stderr.slice(-1500)}`);
      assert.deepEqual(exchange.unexpected, []);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      for (const pair of shipped.pairs) {
        try {
          await client.workflow
            .getHandle(pairWorkflowId('binanceusdm', pair))
            .terminate('dev --mode live test cleanup');
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) console.log(`# cleanup of ${pair}: ${String(err)}`);
        }
      }
      await exchange.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
