/**
 * Replay determinism across versions: histories recorded on a real Temporal server by the integration suite
 * (test/fixtures/histories, written with LLM_TRADER_RECORD_HISTORIES) are replayed against the current workflow code.
 * A change that would break running workflows (a step added, removed or reordered without `patched()`) fails here,
 * before it reaches a worker with live workflows. No server is needed.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { historyFromFixture } from '../helpers/history-fixtures';

const FIXTURES = fileURLToPath(new URL('../fixtures/histories', import.meta.url));
const workflowsPath = fileURLToPath(new URL('../../src/workflows/index.ts', import.meta.url));
const quiet = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

describe('recorded histories replay on the current workflow code', () => {
  test('every fixture replays without a non-determinism error, and the fixtures cover the workflow paths', async () => {
    // one folder per recording (the workflow code of that day): every folder must keep replaying
    const files = readdirSync(FIXTURES, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.json'))
      .sort();
    const histories = files.map((f) => {
      const fixture = historyFromFixture(readFileSync(join(FIXTURES, f), 'utf8'));
      // the id it was recorded under (order ids derive from it); older recordings did not keep it
      return { workflowId: fixture.workflowId ?? f.replace(/\.json$/, ''), history: fixture.history };
    });
    // what the fixtures exercise: decisions, orders, reviews, signals, continue-as-new, missed candles
    const text = files.map((f) => readFileSync(join(FIXTURES, f), 'utf8')).join('\n');
    for (const [what, needle] of [
      ['a journaled decision', '"name":"recordDecision"'],
      ['a trade review child workflow', 'startChildWorkflowExecutionInitiatedEventAttributes'],
      ['a signal', 'workflowExecutionSignaledEventAttributes'],
      ['continue-as-new', 'workflowExecutionContinuedAsNewEventAttributes'],
      ['missed candles', '"name":"recordMissedCandles"'],
      ['a review workflow', '"name":"recordTrade"'],
    ] as const) {
      assert.ok(text.includes(needle), `no fixture has ${what} (${needle}): record them again (see the suite)`);
    }

    const { code } = await bundleWorkflowCode({ workflowsPath, logger: quiet });
    let replayed = 0;
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: { code } }, histories)) {
      replayed += 1;
      if (result.error) failures.push(`${files[replayed - 1]} (${result.workflowId}): ${String(result.error)}`);
    }
    assert.deepEqual(failures, [], 'recorded histories no longer replay: use patched() for an intended change');
    assert.equal(replayed, histories.length);
    assert.ok(replayed >= 5, `only ${replayed} fixtures`);
  });
});
