import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadConfig, ConfigError } from '../../src/config/load';
import { parseConfig, redactConfig } from '../../src/core/config';
import { runCli, repoRoot } from '../helpers/cli';

function tempConfig(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'llm-trader-config-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, content);
  return file;
}

describe('configuration', () => {
  test('every example config in config/ is valid', () => {
    const files = readdirSync(join(repoRoot, 'config')).filter((f) => f.endsWith('.json'));
    assert.ok(files.includes('paper.json') && files.includes('live.json') && files.includes('replay.json'));
    for (const f of files) {
      const config = loadConfig(join(repoRoot, 'config', f), {});
      assert.equal(config.mode, f.replace('.json', ''), `${f} declares its own mode`);
    }
  });

  test('an out-of-range value names the key path, the rule and the value', () => {
    const res = parseConfig({ risk: { max_leverage: 500 } });
    assert.equal(res.ok, false);
    if (res.ok) return;
    assert.deepEqual(
      res.problems.map((p) => p.message),
      ['risk.max_leverage must be an integer in 1..125, got 500'],
    );
  });

  test('cross-field rule: default_leverage may not exceed max_leverage', () => {
    const res = parseConfig({ risk: { max_leverage: 10, default_leverage: 20 } });
    assert.equal(res.ok, false);
    if (res.ok) return;
    assert.match(res.problems[0]!.message, /^risk\.default_leverage must be <= risk\.max_leverage \(10\), got 20$/);
  });

  test('unknown keys are reported so typos do not pass silently', () => {
    const res = parseConfig({ risk: { max_levrage: 5 } });
    assert.equal(res.ok, false);
    if (res.ok) return;
    assert.match(res.problems[0]!.message, /risk has unknown key\(s\) max_levrage/);
  });

  test('array entries are named by index', () => {
    const res = parseConfig({ pairs: ['BTC/USDT:USDT', 'ethusdt'] });
    assert.equal(res.ok, false);
    if (res.ok) return;
    assert.match(res.problems[0]!.message, /^pairs\[1\] must be a ccxt perpetual symbol .*got "ethusdt"$/);
  });

  test('secrets from the environment override the file', () => {
    const file = tempConfig(JSON.stringify({ llm: { api_key: 'from-file' } }));
    const config = loadConfig(file, {
      OPENAI_API_KEY: 'env-llm-key',
      EXCHANGE_API_KEY: 'env-ex-key',
      EXCHANGE_API_SECRET: 'env-ex-secret',
    });
    assert.equal(config.llm.api_key, 'env-llm-key');
    assert.equal(config.exchange.api_key, 'env-ex-key');
    assert.equal(config.exchange.api_secret, 'env-ex-secret');
    const redacted = JSON.stringify(redactConfig(config));
    for (const secret of ['env-llm-key', 'env-ex-key', 'env-ex-secret']) assert.ok(!redacted.includes(secret));
  });

  test('invalid JSON is reported with line and column', () => {
    const file = tempConfig('{\n  "mode": "paper",\n  "pairs": [,]\n}');
    assert.throws(
      () => loadConfig(file, {}),
      (err: unknown) => err instanceof ConfigError && /line 3, column \d+/.test(err.message),
    );
  });
});

describe('llm-trader config (CLI)', () => {
  test('a bad config exits with status 2 and names the key path', () => {
    const file = tempConfig(JSON.stringify({ risk: { max_leverage: 500 }, mode: 'yolo' }));
    const res = runCli(['config', '--config', file]);
    assert.equal(res.status, 2);
    assert.match(res.stderr, /risk\.max_leverage must be an integer in 1\.\.125, got 500/);
    assert.match(res.stderr, /mode must be one of live, paper, replay, got "yolo"/);
    assert.equal(res.stdout, '');
  });

  test('a missing config file exits with status 2 and says how to fix it', () => {
    const res = runCli(['config', '--config', '/nonexistent/llm-trader.json']);
    assert.equal(res.status, 2);
    assert.match(res.stderr, /file not found .*Pass --config/);
  });

  test('a good config prints the effective config with secrets masked', () => {
    const res = runCli(['config', '--config', join(repoRoot, 'config/paper.json')], {
      OPENAI_API_KEY: 'sk-test-visible-marker',
    });
    assert.equal(res.status, 0, res.stderr);
    const printed = JSON.parse(res.stdout) as { llm: { api_key: string }; risk: { max_leverage: number } };
    assert.equal(printed.llm.api_key, '***');
    assert.equal(printed.risk.max_leverage, 20);
    assert.ok(!res.stdout.includes('sk-test-visible-marker'));
  });
});
