import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ExecutionOrder } from '../../src/backtest/execution-order';

const PAIRS = ['A', 'B', 'C', 'D'];

describe('ExecutionOrder', () => {
  test("a pair's step runs when every pair before it has finished, whatever order the steps are asked in", async () => {
    const order = new ExecutionOrder(PAIRS);
    const ran: string[] = [];
    order.begin([true, true, false, true]);
    // D and B ask first; A is still waiting for its model
    const d = order.at('D', () => ran.push('D'));
    const b = order.at('B', () => ran.push('B'));
    assert.ok(d instanceof Promise && b instanceof Promise);
    assert.deepEqual(ran, []);
    // A's turn has come: its step runs at once and returns its value, not a promise
    assert.equal(
      order.at('A', () => 'filled'),
      'filled',
    );
    order.finish(0);
    await b;
    assert.deepEqual(ran, ['B']);
    order.finish(1); // C has no cycle: D is next
    await d;
    assert.deepEqual(ran, ['B', 'D']);
    order.finish(3);
    order.end();
    assert.equal(
      order.at('C', () => 'at once'),
      'at once',
    );
  });

  test('a pair that finished before its turn does not hold the others; abort rejects every waiting step', async () => {
    const order = new ExecutionOrder(PAIRS);
    const turns: number[] = [];
    const passed: number[] = [];
    order.onTurn = (i) => turns.push(i);
    order.onPassed = (i) => passed.push(i);
    order.begin([true, true, true, true]);
    order.finish(2); // C held: no step
    const d = order.at('D', () => 'D');
    order.finish(0);
    const b = order.at('B', () => 'B');
    assert.equal(b, 'B');
    order.finish(1);
    assert.equal(await d, 'D');
    assert.deepEqual(turns, [0, 1, 2, 3]);
    // in pair order, each before the next pair's step: C, done early, is passed only after B
    assert.deepEqual(passed, [0, 1, 2]);
    order.onPassed = null;

    order.begin([true, true, true, true]);
    const later = order.at('C', () => 'C');
    order.abort(new Error('the model server is down'));
    await assert.rejects(later as Promise<string>, /the model server is down/);
    await assert.rejects(order.at('D', () => 'D') as Promise<string>, /the model server is down/);
  });
});
