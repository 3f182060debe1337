import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isLocalEndpoint } from '../../src/llm/endpoint';
import { DEFAULT_PRICING, costUsd, priceOf } from '../../src/llm/pricing';

describe('model prices', () => {
  test('the configured price first, then the built-in table; a dated snapshot is priced as its model', () => {
    assert.deepEqual(priceOf('gpt-4.1-mini'), {
      model: 'gpt-4.1-mini',
      price: DEFAULT_PRICING['gpt-4.1-mini'],
      source: 'built-in',
    });
    assert.equal(priceOf('gpt-4.1-mini-2025-04-14')?.model, 'gpt-4.1-mini');
    const own = { input: 0.3, cached_input: null, output: 1.2 };
    assert.deepEqual(priceOf('gpt-4.1-mini', { 'gpt-4.1-mini': own }), {
      model: 'gpt-4.1-mini',
      price: own,
      source: 'config',
    });
    assert.deepEqual(priceOf('qwen3-30b-a3b', { 'qwen3-30b-a3b': own })?.source, 'config');
    assert.equal(priceOf('qwen3-30b-a3b'), null, 'an unknown model has no price, not a guessed one');
  });

  test('cost: cached prompt tokens at the cached price, the others at the input price, output at its own', () => {
    const price = { input: 2, cached_input: 0.5, output: 8 };
    assert.equal(costUsd({ input: 1_000_000, output: 0 }, price), 2);
    assert.equal(costUsd({ input: 1_000_000, cachedInput: 400_000, output: 100_000 }, price), 1.2 + 0.2 + 0.8);
    // without a cached price, cached tokens cost as much as the others
    assert.equal(costUsd({ input: 1_000_000, cachedInput: 400_000, output: 0 }, { ...price, cached_input: null }), 2);
  });
});

describe('local endpoints (usable without an API key)', () => {
  test('loopback, private and link-local addresses, single-label and local names are local; the rest is not', () => {
    for (const url of [
      'http://localhost:8000/v1',
      'http://127.0.0.1:11434/v1',
      'http://[::1]:8080/v1',
      'http://10.1.2.3/v1',
      'http://172.20.0.5:8000/v1',
      'http://192.168.1.20:1234/v1',
      'http://169.254.10.1/v1',
      'http://vllm:8000/v1',
      'http://gpu-box.local:8000/v1',
      'http://llm.internal/v1',
      'http://[fd12::1]/v1',
    ]) {
      assert.equal(isLocalEndpoint(url), true, url);
    }
    for (const url of [
      'https://api.openai.com/v1',
      'https://openrouter.ai/api/v1',
      'http://172.32.0.1/v1',
      'http://8.8.8.8/v1',
      'https://localhost.example.com/v1',
      'not a url',
    ]) {
      assert.equal(isLocalEndpoint(url), false, url);
    }
  });
});
