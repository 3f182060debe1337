/**
 * The worker's step cache (src/activities/index.ts): what a cycle's steps hand on to the next on this worker stays
 * bounded by the number of pairs and workflows, not by how many cycles the worker has run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STEP_CACHE_PER_GROUP, StepCache } from '../../src/activities';

test('a group keeps its last entries only; other groups keep theirs', () => {
  const cache = new StepCache<number>(100, 2);
  for (let cycle = 0; cycle < 50; cycle++) {
    cache.set(`pair:a|${cycle}`, cycle, 'pair:a');
    cache.set(`pair:b|${cycle}`, 1000 + cycle, 'pair:b');
  }
  assert.equal(cache.size, 4);
  assert.equal(cache.get('pair:a|49'), 49);
  assert.equal(cache.get('pair:a|48'), 48);
  assert.equal(cache.get('pair:a|47'), undefined);
  assert.equal(cache.get('pair:b|49'), 1049);
  assert.equal(cache.get('pair:b|48'), 1048);
});

test('setting a key again keeps one entry for it, as the newest of its group', () => {
  const cache = new StepCache<string>(100, 2);
  cache.set('x', 'first', 'g');
  cache.set('y', 'y', 'g');
  cache.set('x', 'again', 'g');
  cache.set('z', 'z', 'g');
  assert.equal(cache.get('y'), undefined, 'y was the oldest of the group');
  assert.equal(cache.get('x'), 'again');
  assert.equal(cache.get('z'), 'z');
  assert.equal(cache.size, 2);
});

test('the whole cache stays within its capacity, the oldest entry going first', () => {
  const cache = new StepCache<number>(10);
  for (let i = 0; i < 25; i++) cache.set(`k${i}`, i, `workflow-${i}`);
  assert.equal(cache.size, 10);
  assert.equal(cache.get('k14'), undefined);
  assert.equal(cache.get('k15'), 15);
  // an evicted entry's group is forgotten with it: a new entry of that group is kept
  cache.set('k0-again', 0, 'workflow-0');
  assert.equal(cache.get('k0-again'), 0);
  assert.ok(STEP_CACHE_PER_GROUP >= 2, 'a step retried after the next cycle started still finds its entry');
});
