import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExchangeError } from '../../src/exchange/errors';
import { createFailpoints, parseFailpoints, FAILPOINTS_ENV } from '../../src/activities/failpoints';

test('failpoints are off unless the environment names them', async () => {
  assert.equal(parseFailpoints(undefined), null);
  assert.equal(parseFailpoints('  '), null);
  const warned: string[] = [];
  const fp = createFailpoints({ warn: (m) => warned.push(m) }, {});
  await fp('execute.afterOrder');
  assert.deepEqual(warned, []);
});

test('a named failpoint logs one line and pauses for its time; others do nothing', async () => {
  const warned: { message: string; meta?: Record<string, unknown> }[] = [];
  const fp = createFailpoints(
    { warn: (message, meta) => warned.push({ message, ...(meta ? { meta } : {}) }) },
    { [FAILPOINTS_ENV]: 'execute.afterOrder=60' },
  );
  const started = Date.now();
  await fp('execute.afterOrder');
  assert.ok(Date.now() - started >= 55, 'paused');
  await fp('decide.beforeProvider');
  assert.deepEqual(warned, [
    {
      message: 'failpoint execute.afterOrder: pausing 60 ms',
      meta: { failpoint: 'execute.afterOrder', pauseMs: 60 },
    },
  ]);
});

test('a probability pauses only on that share of passes', async () => {
  let calls = 0;
  const draws = [0.1, 0.9, 0.2, 0.5];
  const fp = createFailpoints({ warn: () => (calls += 1) }, { [FAILPOINTS_ENV]: 'decide.beforeProvider=0@0.25' }, () =>
    draws.shift()!,
  );
  for (let i = 0; i < 4; i++) await fp('decide.beforeProvider');
  assert.equal(calls, 2);
});

test('malformed entries and unknown names are refused with the accepted form', () => {
  assert.throws(() => parseFailpoints('execute.afterOrder'), /is not <name>=<pause ms>/);
  assert.throws(() => parseFailpoints('execute.afterOrder=abc'), /is not <name>=<pause ms>/);
  assert.throws(() => parseFailpoints('execute.afterOrder=10@1.5'), /is not <name>=<pause ms>/);
  assert.throws(() => parseFailpoints('nowhere=10'), /unknown failpoint "nowhere"; known: fetchMarket.start/);
  assert.deepEqual(
    [...parseFailpoints('execute.afterOrder=10, decide.beforeProvider=20@0.5')!.entries()],
    [
      ['execute.afterOrder', { pauseMs: 10, probability: 1, errors: [] }],
      ['decide.beforeProvider', { pauseMs: 20, probability: 0.5, errors: [] }],
    ],
  );
  assert.throws(
    () => parseFailpoints('execute.beforeOrder=error(ExchangeOops)'),
    /"ExchangeOops" is not an exchange or LLM error type; known: ExchangeNetworkError.*LlmTimeout/,
  );
});

test('an error failpoint fails the step with each exchange error type in turn, `none` letting a pass through', async () => {
  const lines: string[] = [];
  const fp = createFailpoints(
    { warn: (m) => lines.push(m) },
    { [FAILPOINTS_ENV]: 'execute.beforeOrder=error(ExchangeInsufficientFunds|none|ExchangeInvalidOrder)' },
  );
  const outcome = async (): Promise<string> => {
    try {
      await fp('execute.beforeOrder');
      return 'through';
    } catch (err) {
      assert.ok(err instanceof ExchangeError);
      assert.equal(err.retryable, false);
      return err.type;
    }
  };
  const seen = [await outcome(), await outcome(), await outcome(), await outcome()];
  assert.deepEqual(seen, ['ExchangeInsufficientFunds', 'through', 'ExchangeInvalidOrder', 'ExchangeInsufficientFunds']);
  assert.equal(await fp('execute.afterOrder').then(() => 'through'), 'through', 'other failpoints are off');
  assert.match(lines[0]!, /failpoint execute.beforeOrder: failing with ExchangeInsufficientFunds/);
});
