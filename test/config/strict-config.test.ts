/**
 * Configs that were accepted although they were wrong (issue 15): each is now rejected, naming the key and the value.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load';
import { parseConfig } from '../../src/core/config';
import { parseTimeOption } from '../../src/core/dates';
import { runCli } from '../helpers/cli';

function problems(raw: unknown): string[] {
  const res = parseConfig(raw);
  assert.equal(res.ok, false, `expected ${JSON.stringify(raw)} to be rejected`);
  return res.ok ? [] : res.problems.map((p) => p.message);
}

describe('config: rejected with key and value', () => {
  test('a timeframe exchanges do not serve (7m)', () => {
    assert.deepEqual(problems({ timeframes: { main: '7m' } }), [
      'timeframes.main must be one of the exchange timeframes 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w, got "7m"',
    ]);
    assert.match(
      problems({ timeframes: { informative: ['1h', '90m'] } })[0]!,
      /^timeframes\.informative\[1\] must be one of .*, got "90m"$/,
    );
  });

  test('a repeated informative timeframe', () => {
    assert.deepEqual(problems({ timeframes: { informative: ['1h', '4h', '1h'] } }), [
      'timeframes.informative[2] repeats timeframes.informative[0]: list each informative timeframe once, got "1h"',
    ]);
  });

  test('an informative timeframe finer than (or equal to) the main one', () => {
    assert.deepEqual(problems({ timeframes: { main: '1h', informative: ['15m', '1h', '4h'] } }), [
      'timeframes.informative[0] must be longer than timeframes.main (1h): informative timeframes add a longer view, got "15m"',
      'timeframes.informative[1] must be longer than timeframes.main (1h): informative timeframes add a longer view, got "1h"',
    ]);
  });

  test('an exchange id ccxt does not know', () => {
    assert.deepEqual(problems({ exchange: { name: 'binance-futures' } }), [
      'exchange.name must be an exchange id ccxt knows, e.g. binanceusdm, bybit, okx (see ccxt.exchanges), got "binance-futures"',
    ]);
    assert.equal(parseConfig({ exchange: { name: 'bybit' } }).ok, true);
  });

  test('a replay start on a day that does not exist', () => {
    assert.deepEqual(problems({ replay: { start: '2025-02-30' } }), [
      'replay.start must be an existing UTC date or ISO time like 2025-06-10 or 2025-06-10T00:00:00Z, got "2025-02-30"',
    ]);
    assert.equal(parseConfig({ replay: { start: '2025-06-10T00:00:00Z' } }).ok, true);
  });

  test('a key repeated in the JSON file (JSON.parse would keep the last one)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strict-config-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, '{\n  "risk": {\n    "max_leverage": 10,\n    "max_leverage": 50\n  }\n}\n');
    assert.throws(
      () => loadConfig(file, {}),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.length === 1 &&
        err.problems[0] ===
          'risk.max_leverage appears more than once (lines 3 and 4); JSON keeps only the last one: remove the other',
    );
    const res = runCli(['config', '-c', file]);
    assert.equal(res.status, 2);
    assert.match(res.stderr, /risk\.max_leverage appears more than once \(lines 3 and 4\)/);
  });

  test('dates that do not exist: --from 2025-02-30 is refused, not read as 2025-03-02', () => {
    assert.equal(parseTimeOption('2025-02-30'), null);
    assert.equal(parseTimeOption('2025-06-01T24:00'), null);
    assert.equal(parseTimeOption('2024-02-29'), Date.UTC(2024, 1, 29));
    assert.equal(parseTimeOption('2025-06-01T12:30'), Date.UTC(2025, 5, 1, 12, 30));
    assert.equal(parseTimeOption('2025-06-01T12:30+02:00'), Date.UTC(2025, 5, 1, 10, 30));
    const res = runCli(['backtest', '--data', '../shared/data', '--pairs', 'BTC/USDT:USDT', '--from', '2025-02-30']);
    assert.equal(res.status, 2);
    assert.match(res.stderr, /--from "2025-02-30" is not an existing UTC date/);
  });
});
