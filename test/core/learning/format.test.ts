import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, formatSignedPct, formatUsdt } from '../../../src/core/learning/format';

describe('formatSignedPct', () => {
  test('signs, rounds and never prints -0.0%', () => {
    assert.equal(formatSignedPct(6.24), '+6.2%');
    assert.equal(formatSignedPct(-0.81), '-0.8%');
    assert.equal(formatSignedPct(-0.04), '0.0%');
    assert.equal(formatSignedPct(0), '0.0%');
    assert.equal(formatSignedPct(-0.4, 2), '-0.40%');
    assert.equal(formatSignedPct(Number.NaN), 'n/a');
  });
});

describe('formatUsdt', () => {
  test('two decimals with a sign', () => {
    assert.equal(formatUsdt(12.4), '+12.40 USDT');
    assert.equal(formatUsdt(-3.071), '-3.07 USDT');
    assert.equal(formatUsdt(-0.001), '0.00 USDT');
  });
});

describe('formatDuration', () => {
  test('two largest units, rounded down to minutes', () => {
    const MIN = 60_000;
    assert.equal(formatDuration(0), '0m');
    assert.equal(formatDuration(59_999), '0m');
    assert.equal(formatDuration(45 * MIN), '45m');
    assert.equal(formatDuration(60 * MIN), '1h');
    assert.equal(formatDuration(330 * MIN), '5h 30m');
    assert.equal(formatDuration(24 * 60 * MIN), '1d');
    // 2 days 4 hours 59 minutes: minutes are dropped once days are shown
    assert.equal(formatDuration((52 * 60 + 59) * MIN), '2d 4h');
    assert.equal(formatDuration(-1), 'n/a');
  });
});
