/**
 * The account workflow (portfolio admission, src/workflows/account.ts) across continue-as-new, on a real Temporal
 * server: what it granted before a new run keeps its slots after it, the limits still hold, a release still frees a
 * slot, and the counters carry over. It continues as new at ~1,000 events, so a long-lived account replays little
 * when a worker takes it over; this drives one past that with settle signals (at least 2 events each, fewer WFTs when they come in quick succession).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import type { AdmissionDecision, AdmissionRequest } from '../../src/core/admission';
import {
  accountStatusQuery,
  accountWorkflowId,
  admissionRequestSignal,
  settleSlotSignal,
  type AccountWorkflowInput,
} from '../../src/workflows/messages';
import { acquireServer, requireServerInCi, type IntegrationServer } from './temporal-server';
import { answersQuery, stopSignal } from './workflows/account-requester';

const workflowsPath = fileURLToPath(new URL('./workflows/account-requester.ts', import.meta.url));

function request(pair: string, holder: string, requestId: string): AdmissionRequest {
  return {
    requestId,
    pair,
    holder,
    kind: 'open',
    quantity: 1,
    price: 100,
    equity: 10_000,
    positions: [],
    limits: { maxOpenTrades: 2, maxTotalExposurePct: 300, clampToRoom: false },
    market: { qtyStep: 0.001, minQty: 0.001, minNotional: 5 },
    at: Date.parse('2026-01-01T00:00:00Z'),
  };
}

async function waitFor<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: T = await read();
  while (!ok(last)) {
    if (Date.now() > end) assert.fail(`${what}: still ${JSON.stringify(last)} after ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
    last = await read();
  }
  return last;
}

describe('the account workflow across continue-as-new (real Temporal server)', () => {
  let server: IntegrationServer | null = null;
  let skip: string | null = null;
  const cleanup: (() => Promise<unknown>)[] = [];

  before(async () => {
    const acquired = await acquireServer();
    if (typeof acquired === 'string') {
      skip = acquired;
      requireServerInCi(skip);
      return;
    }
    server = acquired;
  });

  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    await server?.env.teardown();
  });

  test('grants made before a new run keep their slots after it; max_open_trades still holds; a release frees a slot', async (t) => {
    if (skip) return t.skip(skip);
    const client: Client = server!.env.client;
    const runId = `acct${Date.now().toString(36)}`;
    const taskQueue = `llm-trader-${runId}`;
    const worker = await Worker.create({
      connection: server!.env.nativeConnection,
      namespace: server!.namespace,
      taskQueue,
      workflowsPath,
    });
    const running = worker.run();
    cleanup.push(async () => {
      worker.shutdown();
      await running;
    });

    const holders = ['A', 'B', 'C'].map((p) => `pair:${runId}:${p}`);
    const requesters = await Promise.all(
      holders.map((id) => client.workflow.start('requester', { taskQueue, workflowId: id, args: [] })),
    );
    for (const h of requesters) cleanup.push(() => h.terminate('test cleanup'));
    const accountId = accountWorkflowId(runId, taskQueue);
    const input: AccountWorkflowInput = { account: runId, idleMs: 10 * 60_000 };
    const ask = (i: number, requestId: string) =>
      client.workflow.signalWithStart('account', {
        taskQueue,
        workflowId: accountId,
        args: [input],
        signal: admissionRequestSignal,
        signalArgs: [{ request: request(`P${i}/USDT:USDT`, holders[i]!, requestId), replyTo: holders[i]! }],
      });
    const answers = (i: number) => requesters[i]!.query(answersQuery);
    const last = async (i: number, n: number): Promise<AdmissionDecision> =>
      (
        await waitFor(
          `answer ${n} to ${holders[i]}`,
          () => answers(i),
          (a) => a.length >= n,
        )
      )[n - 1]!;

    const accountHandle = await ask(0, 'a-1');
    cleanup.push(() => client.workflow.getHandle(accountId).terminate('test cleanup'));
    assert.equal((await last(0, 1)).status, 'granted');
    await ask(1, 'b-1');
    assert.equal((await last(1, 1)).status, 'granted');
    await ask(2, 'c-1');
    const refusedBefore = await last(2, 1);
    assert.equal(refusedBefore.status, 'refused', 'a third entry with max_open_trades 2');

    // A's slot grows to 150 USDT, then unchanged settles push the run past its continue-as-new threshold
    const settle = (i: number, requestId: string, notional: number) =>
      client.workflow.getHandle(accountId).signal(settleSlotSignal, {
        pair: `P${i}/USDT:USDT`,
        holder: holders[i]!,
        requestId,
        notional,
      });
    await settle(0, 'a-1', 150);
    const status = () => client.workflow.getHandle(accountId).query(accountStatusQuery);
    for (let k = 0; k < 2_000; k += 1) {
      await settle(1, 'b-1', 100);
      if (k % 50 === 49 && (await status()).runs > 1) break;
    }
    const after = await waitFor('a new run of the account workflow', status, (s) => s.runs > 1, 60_000);
    const current = await client.workflow.getHandle(accountId).describe();
    assert.notEqual(current.runId, accountHandle.signaledRunId, 'the account is in a new run');
    assert.ok(current.historyLength < 300, `the new run starts small (${current.historyLength} events)`);

    // the book came along: both slots, A at its settled notional; the counts too
    assert.deepEqual(
      after.slots.map((s) => [s.holder, s.requestId, s.notional]),
      [
        [holders[0], 'a-1', 150],
        [holders[1], 'b-1', 100],
      ],
    );
    assert.equal(after.granted, 2);
    assert.equal(after.refused, 1);

    // the limit holds in the new run, and a release frees a slot for the refused pair
    await ask(2, 'c-2');
    assert.equal((await last(2, 2)).status, 'refused');
    await settle(0, 'a-1', 0);
    await ask(2, 'c-3');
    const granted = await last(2, 3);
    assert.equal(granted.status, 'granted', JSON.stringify(granted));
    const final = await status();
    assert.deepEqual(
      final.slots.map((s) => s.holder),
      [holders[1], holders[2]],
    );
    for (const h of requesters) await h.signal(stopSignal);
  });
});
