/**
 * A backtest's outputs are never half-written and never destroy earlier ones: a rerun into a folder in use is refused
 * (or, with --force, replaces it only after success), a run that fails part-way or fills the disk leaves the earlier
 * result.json, report and decision log exactly as they were, and errors are one line saying what to do.
 *
 * The disk-full and read-only cases mount small tmpfs file systems (root only; otherwise they are skipped with the
 * reason, and the injected-ENOSPC test of writeFileAtomic below still runs).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/store/atomic-file';
import { runCli } from '../helpers/cli';

const BTC = 'BTC/USDT:USDT';
const ETH = 'ETH/USDT:USDT';
const SMALL = ['--data', '../shared/data', '--pairs', BTC, '--from', '2025-05-25', '--to', '2025-05-26'];
// more than 1 MB of outputs (the full-disk test's tmpfs): about 2 MB of decision log
const LARGE = ['--data', '../shared/data', '--pairs', BTC, ETH, '--from', '2025-05-25', '--to', '2025-07-15'];

/** Every file under `dir` with its bytes. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir)) out.set(name, readFileSync(join(dir, name), 'latin1'));
  return out;
}

/** Mounts a tmpfs at `dir` (created); false when this process may not (not root, no mount). */
function mountTmpfs(dir: string, options: string): boolean {
  mkdirSync(dir, { recursive: true });
  if (process.getuid?.() !== 0) return false;
  return spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]).status === 0;
}

function unmount(dir: string): void {
  spawnSync('umount', [dir]);
}

describe('backtest outputs', () => {
  let dir: string;
  const mounts: string[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'backtest-outputs-'));
  });
  after(() => {
    for (const m of mounts) unmount(m);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a rerun into the same folder is refused; with --force a rerun that fails keeps the earlier outputs', () => {
    const out = join(dir, 'rerun');
    const first = runCli(['backtest', ...SMALL, '--out', out]);
    assert.equal(first.status, 0, first.stderr);
    const before = snapshot(out);
    assert.deepEqual([...before.keys()].sort(), ['llm_decisions.jsonl', 'report.html', 'result.json']);

    // the same folder again: refused before anything is written
    const again = runCli(['backtest', ...SMALL, '--out', out]);
    assert.equal(again.status, 2, again.stderr);
    assert.match(
      again.stderr,
      /already holds the results of a run .*pass --force to replace them once this run has succeeded/,
    );
    assert.deepEqual(snapshot(out), before);

    // --force, and a run that fails at its first decision (no model server answers)
    const config = join(dir, 'no-retries.json');
    writeFileSync(config, JSON.stringify({ llm: { retry_times: 0, timeout: 5 } }));
    const failed = runCli(
      ['backtest', ...SMALL, '--out', out, '--force', '-c', config, '--policy', 'openai', '--no-cache'].concat([
        '--llm-base-url',
        'http://127.0.0.1:9/v1',
      ]),
    );
    assert.equal(failed.status, 1, failed.stderr);
    assert.deepEqual(snapshot(out), before, 'the failed rerun changed the earlier outputs');
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.includes('.partial-') || n.includes('.replaced-')),
      [],
      'staging folders were left behind',
    );

    // --force and a run that succeeds: replaced whole
    const replaced = runCli([
      'backtest',
      ...LARGE.slice(0, 4),
      '--from',
      '2025-05-25',
      '--to',
      '2025-05-27',
      '--out',
      out,
      '--force',
    ]);
    assert.equal(replaced.status, 0, replaced.stderr);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as { range: { to: number } };
    assert.equal(result.range.to, Date.UTC(2025, 4, 27));
  });

  test('a full disk leaves the earlier result.json valid and whole (a 1 MB tmpfs)', (t) => {
    const disk = join(dir, 'full-disk');
    if (!mountTmpfs(disk, 'size=1m')) {
      t.skip('cannot mount a tmpfs here (needs root); the injected ENOSPC test below covers the writer');
      return;
    }
    mounts.push(disk);
    const out = join(disk, 'run');
    const first = runCli(['backtest', ...SMALL, '--out', out]);
    assert.equal(first.status, 0, first.stderr);
    const before = snapshot(out);

    const full = runCli(['backtest', ...LARGE, '--out', out, '--force']);
    assert.equal(full.status, 1, full.stderr);
    const lines = full.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `not one line:\n${full.stderr}`);
    assert.match(lines[0]!, /^llm-trader: .*ENOSPC.*: the disk is full: free some space or write elsewhere/);
    assert.deepEqual(snapshot(out), before, 'the earlier outputs changed');
    JSON.parse(before.get('result.json')!);
    assert.deepEqual(readdirSync(disk), ['run'], 'temporary or staging files were left on the full disk');
  });

  test('a read-only file system: one line naming the folder, exit 1; the stack only with --verbose', (t) => {
    const ro = join(dir, 'read-only');
    if (!mountTmpfs(ro, 'size=64k,ro')) {
      t.skip('cannot mount a tmpfs here (needs root)');
      return;
    }
    mounts.push(ro);
    const res = runCli(['backtest', ...SMALL, '--out', join(ro, 'run')]);
    assert.equal(res.status, 1, res.stderr);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(
      res.stderr,
      new RegExp(`${ro}.*: the file system is read-only: write elsewhere \\(--out, data_dir\\)`),
    );
    const verbose = runCli(['backtest', ...SMALL, '--out', join(ro, 'run')], { DEBUG: '1' });
    assert.match(verbose.stderr, /\n\s+at /, 'DEBUG=1 shows the stack');
  });

  test('writeFileAtomic: an ENOSPC part-way leaves the target as it was and no temporary file', () => {
    const target = join(dir, 'atomic.json');
    writeFileSync(target, '{"old":true}\n');
    let written = 0;
    const fs = {
      ...nodeFs,
      writeSync: ((fd: number, buffer: Uint8Array, offset: number, length: number) => {
        if (written > 0) {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
            code: 'ENOSPC',
            syscall: 'write',
          });
        }
        written = nodeFs.writeSync(fd, buffer, offset, Math.min(length, 10));
        return written;
      }) as typeof nodeFs.writeSync,
    };
    assert.throws(
      () => writeFileAtomic(target, JSON.stringify({ big: 'x'.repeat(10_000) }), { fs }),
      (err: Error) =>
        err.message.startsWith(`cannot write ${target}: ENOSPC`) && (err.cause as { code?: string }).code === 'ENOSPC',
    );
    assert.equal(readFileSync(target, 'utf8'), '{"old":true}\n');
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith('.atomic.json')),
      [],
    );
    assert.ok(existsSync(target));
  });
});
