import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/core/config';
import type { Activities } from '../../src/activities/types';
import { TemporalUnreachableError } from '../../src/worker/connection';
import { createLogger } from '../../src/worker/logger';
import { startWorker } from '../../src/worker/worker';

describe('worker start-up', () => {
  test('an unreachable server: a one-line error naming the address, and the activities are closed again', async () => {
    const parsed = parseConfig({});
    assert.ok(parsed.ok);
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', stream: { write: (t: string) => lines.push(t) } });
    let closed = 0;
    await assert.rejects(
      startWorker(parsed.config, {
        logger,
        // nothing listens on port 1 of the loopback
        settings: { address: '127.0.0.1:1', namespace: 'default', taskQueue: 'q', tls: false, apiKey: undefined },
        createActivities: () =>
          Promise.resolve({
            activities: {} as Activities,
            close: () => {
              closed += 1;
              return Promise.resolve();
            },
          }),
      }),
      (err: Error) => err instanceof TemporalUnreachableError && /127\.0\.0\.1:1/.test(err.message),
    );
    assert.equal(closed, 1, 'the activity runtime is closed exactly once');
  });
});
