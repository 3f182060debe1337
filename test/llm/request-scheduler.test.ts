import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestScheduler, type RateLimitTest } from '../../src/llm/request-scheduler';

class RateLimited extends Error {
  constructor(readonly retryAfterMs: number | null) {
    super('429');
  }
}
const isRateLimit: RateLimitTest = (err) => (err instanceof RateLimited ? { retryAfterMs: err.retryAfterMs } : null);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A task that records when it ran and how many ran at once, and settles after `ms`. */
function tracker() {
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const task = (id: number, ms: number, fail?: () => Error | null) => async () => {
    started.push(id);
    running++;
    most = Math.max(most, running);
    try {
      await sleep(ms);
      const err = fail?.() ?? null;
      if (err) throw err;
      return id;
    } finally {
      running--;
    }
  };
  return { task, started, most: () => most };
}

describe('RequestScheduler', () => {
  test('runs at most `concurrency` tasks at once, started in the order submitted', async () => {
    const s = new RequestScheduler({ concurrency: 3 });
    const t = tracker();
    const results = await Promise.all(
      [0, 1, 2, 3, 4, 5, 6].map((i) => s.run(t.task(i, 10 + ((i * 7) % 5)), isRateLimit)),
    );
    assert.deepEqual(results, [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(t.most(), 3);
    assert.deepEqual(t.started, [0, 1, 2, 3, 4, 5, 6]);
  });

  test('a spare request (a prefetch) only takes a place no waiting request wants', async () => {
    const s = new RequestScheduler({ concurrency: 2 });
    const t = tracker();
    const all = [
      s.run(t.task(0, 20), isRateLimit),
      s.run(t.task(100, 5), isRateLimit, 'spare'),
      s.run(t.task(1, 20), isRateLimit),
      s.run(t.task(2, 5), isRateLimit),
      s.run(t.task(101, 5), isRateLimit, 'spare'),
    ];
    await Promise.all(all);
    // 100 took the free second place at once; when it was done, the waiting 1 and 2 went before the spare 101
    assert.deepEqual(t.started, [0, 100, 1, 2, 101]);
    assert.equal(t.most(), 2);
  });

  test('a 429 is asked again after the Retry-After, first in line, with the limit halved; it recovers after successes', async () => {
    const s = new RequestScheduler({ concurrency: 4 });
    const t = tracker();
    let limited = 0;
    // the first answer of task 0 is a 429 with Retry-After 80 ms
    const failOnce = () => (limited++ === 0 ? new RateLimited(80) : null);
    const began = Date.now();
    const first = s.run(t.task(0, 5, failOnce), isRateLimit);
    await sleep(1);
    const rest = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => s.run(t.task(i, 5), isRateLimit));
    assert.equal(await first, 0);
    const elapsed = Date.now() - began;
    assert.ok(elapsed >= 75, `the retry came ${elapsed} ms after the first attempt, before the Retry-After of 80 ms`);
    await Promise.all(rest);
    const stats = s.stats();
    assert.equal(stats.rateLimited, 1);
    // tasks 1-3 started with the first attempt; after the 429, task 0 went first, before 4..8
    assert.deepEqual(t.started.slice(0, 5), [0, 1, 2, 3, 0]);
    // halved to 2, then +1 after 2 successes, +1 after 3 more: back at 4 within the 8 successes that followed
    assert.equal(stats.limit, 4);
    assert.equal(stats.waitingUntil, null);
  });

  test('without Retry-After it backs off 1 s; a rate limit never fails the task, other errors do', async () => {
    const s = new RequestScheduler({ concurrency: 2 });
    let calls = 0;
    const began = Date.now();
    const value = await s.run(async () => {
      calls++;
      if (calls <= 2) throw new RateLimited(null);
      return 'ok';
    }, isRateLimit);
    assert.equal(value, 'ok');
    assert.equal(calls, 3);
    // 1 s, then 2 s
    assert.ok(Date.now() - began >= 2_900, `backed off only ${Date.now() - began} ms`);
    await assert.rejects(
      s.run(async () => {
        throw new Error('HTTP 500');
      }, isRateLimit),
      /HTTP 500/,
    );
  });
});
