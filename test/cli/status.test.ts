import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initialPairState } from '../../src/core/cycle';
import type { PositionState } from '../../src/core/types';
import type { Client, Connection } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { pairReport, statusTable, type PairReport } from '../../src/cli/commands/status';
import type { PairStatus } from '../../src/workflows/messages';

const NOW = Date.UTC(2025, 5, 10, 12, 0, 0);

function status(overrides: Partial<PairStatus>): PairStatus {
  const state = initialPairState('BTC/USDT:USDT');
  return {
    pair: 'BTC/USDT:USDT',
    mode: 'paper',
    paused: false,
    stopRequested: false,
    forceExitPending: false,
    position: null,
    lastDecision: null,
    nextWakeTime: null,
    nextDecisionAsOf: null,
    lastCycleAsOf: null,
    counters: { ...state.counters, cycles: 12, tokensIn: 1000, tokensOut: 234 },
    missedCandles: 0,
    account: 'paper',
    run: 2,
    cyclesThisRun: 3,
    ...overrides,
  };
}

function report(
  pair: string,
  s: PairStatus | null,
  state: PairReport['state'] = 'running',
  detail: string | null = null,
): PairReport {
  return {
    pair,
    workflowId: `pair:binanceusdm:${pair}`,
    state,
    executionStatus: s ? 'RUNNING' : null,
    closeTime: null,
    status: s,
    detail,
  };
}

/** The cells of a table line (columns are separated by two or more spaces). */
function cells(line: string): string[] {
  return line.trim().split(/\s{2,}/);
}

describe('status table', () => {
  test('one row per pair: position, PnL, last action, next close and wake-up, counters', () => {
    const position = {
      side: 'long',
      quantity: 0.015,
      entryPrice: 65_000.5,
      leverage: 5,
      lastPnlPct: 3.456,
    } as PositionState;
    const table = statusTable(
      [
        report(
          'BTC/USDT:USDT',
          status({
            position,
            paused: true,
            lastDecision: {
              time: NOW - 1_800_000,
              tool: 'signal_hold',
              reason: 'trend intact',
              pnlPct: 3.4,
              confidence: 70,
              source: 'baseline',
              outcome: 'none',
              detail: null,
            },
            nextDecisionAsOf: Date.UTC(2025, 5, 10, 12, 30),
            nextWakeTime: NOW + 4 * 60_000 + 12_000,
          }),
        ),
        report(
          'ETH/USDT:USDT',
          null,
          'not-started',
          'no workflow pair:binanceusdm:ETH/USDT:USDT: start it with `llm-trader start`',
        ),
      ],
      NOW,
    );
    const lines = table.split('\n');
    assert.deepEqual(cells(lines[0]!), [
      'pair',
      'mode',
      'state',
      'position',
      'PnL %',
      'last action',
      'next close',
      'next wake',
      'cycles',
      'refused',
      'missed',
      'tokens',
      'run',
    ]);
    assert.deepEqual(cells(lines[1]!), [
      'BTC/USDT:USDT',
      'paper',
      'paused',
      'long 0.015 @ 65000.5 x5',
      '+3.46',
      'signal_hold',
      '2025-06-10 12:30Z',
      'in 4m 12s',
      '12',
      '0',
      '0',
      '1234', // 1000 in + 234 out
      '2',
    ]);
    assert.deepEqual(cells(lines[2]!).slice(0, 3), ['ETH/USDT:USDT', '-', 'not-started']);
    assert.match(table, /ETH\/USDT:USDT: no workflow pair:binanceusdm:ETH\/USDT:USDT: start it/);
  });

  test('refused orders: those the exchange refused plus entries refused at portfolio admission', () => {
    const s = status({});
    const refusing = status({ counters: { ...s.counters, executionFailures: 2, admissionRefusals: 1 } });
    const lines = statusTable([report('BTC/USDT:USDT', refusing)], NOW).split('\n');
    const at = cells(lines[0]!).indexOf('refused');
    assert.equal(cells(lines[1]!)[at], '3 (1 admission)');
  });

  test('a rejected last action shows its outcome; a wake-up long past shows as overdue', () => {
    const table = statusTable(
      [
        report(
          'BTC/USDT:USDT',
          status({
            lastDecision: {
              time: NOW,
              tool: 'signal_entry_long',
              reason: 'x',
              pnlPct: null,
              confidence: 40,
              source: 'baseline',
              outcome: 'rejected',
              detail: 'confidence below 60',
            },
            nextDecisionAsOf: NOW - 600_000,
            nextWakeTime: NOW - 5 * 60_000,
          }),
        ),
      ],
      NOW,
    );
    const row = cells(table.split('\n')[1]!);
    assert.equal(row[3], 'flat');
    assert.equal(row[4], '-');
    assert.equal(row[5], 'signal_entry_long (rejected)');
    assert.equal(row[7], 'overdue 5m 0s');
  });
});

/** A gRPC service error as the client raises it (code, details, metadata). */
function grpcError(code: number, details: string): Error {
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata: {} });
}

const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;
const TARGET = { address: 'temporal.example:7233', namespace: 'default', taskQueue: 'llm-trader' };

/**
 * A client and connection that answer like a server would: `describe` and `query` of the pair's workflow, and
 * `describeTaskQueue` (its pollers); each is a value to return or an error to throw.
 */
function fakeServer(answers: { describe?: unknown; query?: unknown; pollers?: unknown }): {
  client: Client;
  connection: Connection;
  calls: string[];
} {
  const calls: string[] = [];
  const answer = async (name: string, value: unknown) => {
    calls.push(name);
    if (value instanceof Error) throw value;
    return value;
  };
  const client = {
    workflow: {
      getHandle: (id: string) => ({
        describe: () =>
          answer('describe', answers.describe ?? { status: { name: 'RUNNING' }, closeTime: undefined, id }),
        query: () => answer('query', answers.query),
      }),
    },
    workflowService: {
      describeTaskQueue: (req: { taskQueue: { name: string } }) =>
        answer(
          `describeTaskQueue ${req.taskQueue.name}`,
          answers.pollers instanceof Error ? answers.pollers : { pollers: answers.pollers ?? [] },
        ),
    },
  } as unknown as Client;
  const connection = { withDeadline: (_d: number, fn: () => Promise<unknown>) => fn() } as unknown as Connection;
  return { client, connection, calls };
}

describe('status names the real fault', () => {
  const report = (answers: Parameters<typeof fakeServer>[0]) => {
    const server = fakeServer(answers);
    return pairReport(server.client, server.connection, 'binanceusdm', 'BTC/USDT:USDT', TARGET).then((r) => ({
      r,
      calls: server.calls,
    }));
  };

  test('a running workflow answers: its status', async () => {
    const { r } = await report({ query: status({}) });
    assert.equal(r.state, 'running');
    assert.equal(r.status?.counters.cycles, 12);
    assert.equal(r.detail, null);
  });

  test('the server stops answering: names the address and how to start a server, not the worker', async () => {
    for (const answers of [
      { describe: grpcError(UNAVAILABLE, 'No connection established') },
      { query: grpcError(UNAVAILABLE, 'Connection dropped') },
      { query: grpcError(DEADLINE_EXCEEDED, 'Deadline exceeded'), pollers: grpcError(UNAVAILABLE, 'No connection') },
    ]) {
      const { r } = await report(answers);
      assert.equal(r.state, 'unanswered');
      assert.match(r.detail ?? '', /^the Temporal server at temporal\.example:7233 did not answer/);
      assert.match(r.detail ?? '', /llm-trader dev/);
      assert.ok(!/llm-trader worker/.test(r.detail ?? ''), r.detail ?? '');
    }
  });

  test('no workflow: how to start the pair', async () => {
    const { r } = await report({ describe: new WorkflowNotFoundError('not found', 'x', undefined) });
    assert.equal(r.state, 'not-started');
    assert.match(r.detail ?? '', /start the pair with `llm-trader start --pairs BTC\/USDT:USDT`/);
  });

  test('the query times out and nobody polls the task queue: how to start a worker', async () => {
    const { r, calls } = await report({ query: grpcError(DEADLINE_EXCEEDED, 'Deadline exceeded'), pollers: [] });
    assert.ok(calls.includes('describeTaskQueue llm-trader'), calls.join());
    assert.match(r.detail ?? '', /^no worker is polling task queue llm-trader \(the query timed out after 10 s\)/);
    assert.match(r.detail ?? '', /start one with `llm-trader worker`/);
  });

  test('the query times out while a worker polls: the worker is named as busy or stuck, not missing', async () => {
    const { r } = await report({
      query: grpcError(DEADLINE_EXCEEDED, 'Deadline exceeded'),
      pollers: [{ identity: 'worker-1' }, { identity: 'worker-2' }],
    });
    assert.match(r.detail ?? '', /^2 workers poll task queue llm-trader but none answered the query within 10 s/);
    assert.ok(!/start one/.test(r.detail ?? ''), r.detail ?? '');
  });

  test('a closed workflow: its status and how to start it again', async () => {
    const { r } = await report({
      describe: { status: { name: 'TERMINATED' }, closeTime: new Date(Date.UTC(2025, 5, 1)) },
    });
    assert.equal(r.state, 'closed');
    assert.match(
      r.detail ?? '',
      /^terminated at 2025-06-01T00:00:00\.000Z; start it again with `llm-trader start --pairs/,
    );
  });
});

describe('status table: missed candles', () => {
  test('a missed column appears when the workflows count skipped candles', () => {
    const withMissed = status({ missedCandles: 30 });
    // a workflow of an older version reports none
    const without = status({});
    delete (without as unknown as Record<string, number>).missedCandles;
    const table = statusTable([report('BTC/USDT:USDT', withMissed), report('ETH/USDT:USDT', without)], NOW);
    const lines = table.split('\n');
    assert.deepEqual(cells(lines[0]!).slice(8, 11), ['cycles', 'refused', 'missed']);
    assert.deepEqual(cells(lines[1]!).slice(8, 11), ['12', '0', '30']);
    assert.deepEqual(cells(lines[2]!).slice(8, 11), ['12', '0', '-']);
    assert.ok(!statusTable([report('ETH/USDT:USDT', without)], NOW).includes('missed'), 'no column without counts');
  });
});
