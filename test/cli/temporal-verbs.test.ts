import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Journal } from '../../src/store/journal';
import { Redactor } from '../../src/core/redact';
import { repoRoot } from '../helpers/cli';

const bin = fileURLToPath(new URL('../../bin/llm-trader.js', import.meta.url));

function run(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: repoRoot, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

// nothing listens on port 1 of the loopback
const NO_SERVER = { TEMPORAL_ADDRESS: '127.0.0.1:1' };

describe('Temporal verbs without a server', () => {
  test('status, start, pause and setup: exit 1 with one line naming the address and how to start a server', async () => {
    const verbs = [['status'], ['start'], ['pause', 'BTC/USDT:USDT'], ['setup']];
    const results = await Promise.all(verbs.map((args) => run(args, NO_SERVER)));
    results.forEach((r, i) => {
      const verb = verbs[i]!.join(' ');
      assert.equal(r.status, 1, `${verb}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${verb} printed more than one line (a stack trace?): ${r.stderr}`);
      assert.match(lines[0]!, /cannot reach the Temporal server at 127\.0\.0\.1:1/, verb);
      assert.match(lines[0]!, /llm-trader dev/, verb);
      assert.match(lines[0]!, /temporal server start-dev/, verb);
    });
  });

  test('a malformed pair: exit 2, saying the expected form (before any connection)', async () => {
    const results = await Promise.all([
      run(['pause', 'BTCUSDT'], NO_SERVER),
      run(['status', 'btc-usdt'], NO_SERVER),
      run(['start', '--pairs', 'BTC/USDT:USDT', 'ETH'], NO_SERVER),
    ]);
    for (const r of results) {
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /expected a ccxt perpetual symbol BASE\/QUOTE:SETTLE, e\.g\. BTC\/USDT:USDT/);
      assert.ok(!r.stderr.includes('cannot reach'), 'the pair is checked first');
    }
    assert.match(results[0]!.stderr, /did you mean BTC\/USDT:USDT\?/);
  });

  test('an unknown mode: exit 2 listing the modes', async () => {
    const r = await run(['start', '--mode', 'paper-trading'], NO_SERVER);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /paper, live, replay/);
  });
});

describe('decisions and trades read the journal', () => {
  let dir: string;
  let configFile: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'llm-trader-verbs-'));
    configFile = path.join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ data_dir: path.join(dir, 'data') }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('without a journal yet: say so, exit 0', async () => {
    const [decisions, trades] = await Promise.all([
      run(['decisions', '-c', configFile]),
      run(['trades', '-c', configFile]),
    ]);
    assert.equal(decisions.status, 0, decisions.stderr);
    assert.match(decisions.stdout, /no decisions yet/);
    assert.equal(trades.status, 0, trades.stderr);
    assert.match(trades.stdout, /no trades yet/);
  });

  test('shows recorded decisions, newest last, filtered by pair; --json gives the records', async () => {
    const journal = Journal.open({ dataDir: path.join(dir, 'data'), redactor: new Redactor([]) });
    const t0 = Date.UTC(2025, 5, 10, 0, 30);
    const record = (pair: string, time: number, tool: 'signal_wait' | 'signal_entry_long', reason: string) =>
      journal.recordDecision({
        owner: `pair:binanceusdm:${pair}`,
        pair,
        record: { time, tool, reason, pnlPct: null, confidence: 72, source: 'baseline', outcome: 'none', detail: null },
        result: null,
        verdict: null,
        context: null,
        clientOrderId: null,
      });
    record('BTC/USDT:USDT', t0, 'signal_wait', 'no clear trend yet');
    record('ETH/USDT:USDT', t0, 'signal_wait', 'eth is ranging');
    record('BTC/USDT:USDT', t0 + 30 * 60_000, 'signal_entry_long', 'breakout above resistance');
    journal.close();

    const all = await run(['decisions', '-c', configFile]);
    assert.equal(all.status, 0, all.stderr);
    const lines = all.stdout.trim().split('\n');
    // rows recorded without a run are in the run "" (the journal's current run here)
    assert.match(lines[0]!, /^run "" \(journaled before runs were recorded\) \(the current run; the only run/);
    assert.match(lines[1]!, /^time\s+pair\s+tool/);
    assert.equal(lines.length, 5);
    assert.match(
      lines[4]!,
      /^2025-06-10 01:00Z\s+BTC\/USDT:USDT\s+signal_entry_long\s+72\s+none\s+baseline\s+0\s+breakout above resistance$/,
    );

    const btc = await run(['decisions', 'BTC/USDT:USDT', '-n', '1', '--json', '-c', configFile]);
    assert.equal(btc.status, 0, btc.stderr);
    const records = btc.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { pair: string; tool: string; time: number });
    assert.deepEqual(
      records.map((r) => [r.pair, r.tool, r.time]),
      [['BTC/USDT:USDT', 'signal_entry_long', t0 + 30 * 60_000]],
    );
  });
});
