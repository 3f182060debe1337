/**
 * `--policy replay:<llm_decisions.jsonl>` checks the log before the run: an empty, corrupt or cut-in-half log is
 * refused with the line numbers or the uncovered decision times (it used to exit 0 with hold/wait in place of the
 * missing decisions); `--allow-missing` replays anyway and result.json `replayLog` counts what happened.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BacktestResultFile } from '../../src/backtest/result';
import { runCli } from '../helpers/cli';

const RANGE = ['--data', '../shared/data', '--pairs', 'BTC/USDT:USDT', '--from', '2025-05-25', '--to', '2025-05-28'];

describe('backtest --policy replay: the decision log is checked first', () => {
  let dir: string;
  let log: string;
  let lines: string[];
  let recorded: BacktestResultFile;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'replay-log-'));
    const res = runCli(['backtest', ...RANGE, '--policy', 'baseline', '--out', join(dir, 'recorded')]);
    assert.equal(res.status, 0, res.stderr);
    log = readFileSync(join(dir, 'recorded', 'llm_decisions.jsonl'), 'utf8');
    lines = log.trimEnd().split('\n');
    recorded = JSON.parse(readFileSync(join(dir, 'recorded', 'result.json'), 'utf8')) as BacktestResultFile;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function replay(name: string, text: string, extra: string[] = []) {
    const file = join(dir, `${name}.jsonl`);
    writeFileSync(file, text);
    return {
      file,
      res: runCli(['backtest', ...RANGE, '--policy', `replay:${file}`, '--out', join(dir, name), ...extra]),
    };
  }

  test('the complete log replays every decision: the same trades, replayLog counts them', () => {
    const { res } = replay('complete', log);
    assert.equal(res.status, 0, res.stderr);
    const result = JSON.parse(readFileSync(join(dir, 'complete', 'result.json'), 'utf8')) as BacktestResultFile;
    assert.deepEqual(result.trades, recorded.trades);
    const asked = recorded.range.candle_steps - 1; // the last decision time closes positions without asking
    assert.deepEqual(result.replayLog, {
      lines: lines.length,
      decisions: lines.length,
      corrupt: 0,
      incomplete_last_line: false,
      asked,
      replayed: asked,
      missing: 0,
      not_replayable: 0,
      allow_missing: false,
    });
  });

  test('an empty log is refused', () => {
    const { file, res } = replay('empty', '');
    assert.equal(res.status, 2, res.stderr);
    assert.match(res.stderr, new RegExp(`the decision log ${file} holds no decisions \\(the file is empty\\)`));
    assert.match(res.stderr, /--allow-missing/);
  });

  test('a corrupt line is refused with its line number', () => {
    const broken = [...lines];
    broken[6] = '{"pair": "BTC/USDT:USDT", "timest';
    broken[9] = JSON.stringify({ pair: 'BTC/USDT:USDT' });
    const { file, res } = replay('corrupt', `${broken.join('\n')}\n`);
    assert.equal(res.status, 2, res.stderr);
    assert.match(
      res.stderr,
      new RegExp(`the decision log ${file} has 2 corrupt line\\(s\\) \\(of ${lines.length}\\):`),
    );
    assert.match(res.stderr, /\n {2}line 7: not valid JSON/);
    assert.match(res.stderr, /\n {2}line 10: timestamp is missing or not an ISO date string/);
  });

  test('a log cut in half is refused with the decision times it does not cover; --allow-missing counts them', () => {
    const half = log.slice(0, Math.floor(log.length / 2)); // ends inside a line, as a killed writer leaves it
    const kept = half.split('\n').length - 1; // complete lines
    const { file, res } = replay('half', half);
    assert.equal(res.status, 2, res.stderr);
    const asked = recorded.range.candle_steps - 1;
    assert.match(
      res.stderr,
      new RegExp(`the decision log ${file} has no decision for ${asked - kept} of the run's ${asked} pair-cycles:`),
    );
    assert.match(res.stderr, /BTC\/USDT:USDT 2025-05-\d\dT\d\d:\d\dZ to 2025-05-27T23:30Z \(\d+ decision times\)/);
    assert.match(res.stderr, new RegExp(`its last line ${kept + 1} is cut off`));

    const allowed = runCli([
      'backtest',
      ...RANGE,
      '--policy',
      `replay:${file}`,
      '--out',
      join(dir, 'half-allowed'),
      '--allow-missing',
    ]);
    assert.equal(allowed.status, 0, allowed.stderr);
    assert.match(
      allowed.stderr,
      new RegExp(`warning: the decision log has no decision for ${asked - kept} of ${asked}`),
    );
    const result = JSON.parse(readFileSync(join(dir, 'half-allowed', 'result.json'), 'utf8')) as BacktestResultFile;
    assert.equal(result.replayLog!.missing, asked - kept);
    assert.equal(result.replayLog!.incomplete_last_line, true);
    assert.equal(result.replayLog!.corrupt, 0);
    assert.equal(result.replayLog!.replayed + result.replayLog!.missing + result.replayLog!.not_replayable, asked);
    assert.equal(result.replayLog!.allow_missing, true);
  });

  test('a complete log with a cut-off extra last line is replayed (the reader tolerates it) and says so', () => {
    const { res } = replay('tail', `${log}{"pair":"BTC/USDT:USDT","timestamp":"2025-05-2`);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /a cut-off last line ignored/);
    const result = JSON.parse(readFileSync(join(dir, 'tail', 'result.json'), 'utf8')) as BacktestResultFile;
    assert.deepEqual(result.trades, recorded.trades);
    assert.equal(result.replayLog!.incomplete_last_line, true);
  });
});
