import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CCXT_EXCHANGE_IDS } from '../../src/core/exchange-ids';

test('the exchange ids the config accepts are exactly those of the installed ccxt', async () => {
  const ccxt = await import('ccxt');
  assert.deepEqual([...CCXT_EXCHANGE_IDS].sort(), [...ccxt.default.exchanges].sort());
});
