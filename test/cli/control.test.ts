import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client, Connection } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { controlPair } from '../../src/cli/commands/control';
import type { PositionState } from '../../src/core/types';

const PAIR = 'BTC/USDT:USDT';
const ID = `pair:binanceusdm:${PAIR}`;

/** A workflow handle that answers the status query with `query` (a value, or an error to throw) and records signals. */
function fakeWorkflow(query: unknown, signalError?: Error) {
  const signals: string[] = [];
  const queries: string[] = [];
  const client = {
    workflow: {
      getHandle: (id: string) => {
        assert.equal(id, ID);
        return {
          query: async (def: { name: string }) => {
            queries.push(def.name);
            if (query instanceof Error) throw query;
            return query;
          },
          signal: async (def: { name: string }) => {
            if (signalError) throw signalError;
            signals.push(def.name);
          },
        };
      },
    },
  } as unknown as Client;
  const connection = { withDeadline: (_d: number, fn: () => Promise<unknown>) => fn() } as unknown as Connection;
  return { client, connection, signals, queries };
}

const LONG = { side: 'long', quantity: 0.01, entryPrice: 65_000, leverage: 5, lastPnlPct: 1 } as PositionState;

describe('exit', () => {
  test('a flat pair: says there is nothing to exit and sends no signal', async () => {
    const w = fakeWorkflow({ pair: PAIR, position: null });
    const line = await controlPair(w.client, w.connection, ID, PAIR, 'exit');
    assert.equal(line, `${PAIR} has no open position: nothing to exit`);
    assert.deepEqual(w.queries, ['status']);
    assert.deepEqual(w.signals, []);
  });

  test('an open position: sends forceExit; it closes at the next candle close', async () => {
    const w = fakeWorkflow({ pair: PAIR, position: LONG });
    const line = await controlPair(w.client, w.connection, ID, PAIR, 'exit');
    assert.deepEqual(w.signals, ['forceExit']);
    assert.equal(line, `${PAIR}: sent forceExit to ${ID}: its position closes at the next candle close`);
  });

  test('the status cannot be read (no worker): sends the signal anyway and says why', async () => {
    const timeout = Object.assign(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded'), {
      code: 4,
      details: 'Deadline exceeded',
      metadata: {},
    });
    const w = fakeWorkflow(timeout);
    const line = await controlPair(w.client, w.connection, ID, PAIR, 'exit');
    assert.deepEqual(w.signals, ['forceExit']);
    assert.match(line, /its status could not be read \(4 DEADLINE_EXCEEDED: Deadline exceeded\)/);
    assert.match(line, /the position, if any, closes at the next candle close$/);
  });

  test('no workflow: an operator error saying how to start the pair, and no signal', async () => {
    const w = fakeWorkflow(new WorkflowNotFoundError('workflow not found', ID, undefined));
    await assert.rejects(controlPair(w.client, w.connection, ID, PAIR, 'exit'), (err: Error) => {
      assert.equal(err.name, 'OperatorError');
      assert.match(err.message, /is not running .* start it with `llm-trader start --pairs BTC\/USDT:USDT`/);
      return true;
    });
    assert.deepEqual(w.signals, []);
  });
});

describe('pause, resume, stop', () => {
  test('send their signal without asking the status first', async () => {
    for (const [verb, signal] of [
      ['pause', 'pause'],
      ['resume', 'resume'],
      ['stop', 'stop'],
    ] as const) {
      const w = fakeWorkflow(new Error('the status must not be asked'));
      const line = await controlPair(w.client, w.connection, ID, PAIR, verb);
      assert.deepEqual(w.queries, []);
      assert.deepEqual(w.signals, [signal]);
      assert.match(line, new RegExp(`^${PAIR.replace(/\//g, '\\/')}: sent ${signal} to `));
    }
  });

  test('a signal to a pair without a workflow: an operator error', async () => {
    const w = fakeWorkflow(null, new WorkflowNotFoundError('workflow not found', ID, undefined));
    await assert.rejects(controlPair(w.client, w.connection, ID, PAIR, 'pause'), /is not running/);
  });
});
