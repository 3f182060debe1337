import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli';

// The exchange cannot be reached from the test machine: these cover what happens before any request.
// The download itself is tested offline in test/store/download.test.ts with a fake exchange.
describe('llm-trader download-data: bad options exit 2 before any request', () => {
  test('an unknown exchange id, a bad pair, a bad timeframe or a bad --days', () => {
    const db = ['--db', '/nonexistent-dir-for-test/never-created.sqlite'];
    const unknown = runCli(['download-data', '--exchange', 'nosuchexchange', ...db]);
    assert.equal(unknown.status, 2);
    assert.match(
      unknown.stderr,
      /unknown ccxt exchange id "nosuchexchange"; use one with perpetual swaps, e\.g\. binanceusdm/,
    );

    const pair = runCli(['download-data', '--pairs', 'BTCUSDT', ...db]);
    assert.equal(pair.status, 2);
    assert.match(pair.stderr, /invalid pair\(s\) BTCUSDT: use ccxt perpetual symbols like BTC\/USDT:USDT/);

    const tf = runCli(['download-data', '--timeframes', '30m', '90', ...db]);
    assert.equal(tf.status, 2);
    assert.match(tf.stderr, /invalid timeframe "90"/);

    const days = runCli(['download-data', '--days', '-3', ...db]);
    assert.equal(days.status, 2);
    assert.match(days.stderr, /--days must be a number > 0, got "-3"/);
  });
});
