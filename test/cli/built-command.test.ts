/**
 * bin/llm-trader.js runs the build in dist/app (scripts/build.mjs), and refuses a build that is not that of the current
 * sources, saying what to run. Checked on a copy of the package (bin/, dist/, src/, node_modules linked) in a temporary
 * folder, so that the repository's own sources are never touched.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/cli';

describe('the built command', () => {
  let pkg: string;
  const run = (args: string[]) =>
    spawnSync(process.execPath, [join(pkg, 'bin/llm-trader.js'), ...args], { cwd: pkg, encoding: 'utf8' });

  before(() => {
    pkg = mkdtempSync(join(tmpdir(), 'built-command-'));
    for (const part of ['package.json', 'bin', 'src', 'dist/app']) {
      cpSync(join(repoRoot, part), join(pkg, part), { recursive: true, preserveTimestamps: true });
    }
    symlinkSync(join(repoRoot, 'node_modules'), join(pkg, 'node_modules'));
  });
  after(() => rmSync(pkg, { recursive: true, force: true }));

  test('runs the build of the current sources', () => {
    const res = run(['--help']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /Usage: llm-trader/);
  });

  test('a source file touched but unchanged (a checkout, a copy) is still the built one', () => {
    const file = join(pkg, 'src/core/ids.ts');
    utimesSync(file, new Date(), new Date(Date.now() + 60_000));
    const res = run(['--help']);
    assert.equal(res.status, 0, res.stderr);
  });

  test('a changed source file: exit 1, naming the file and `npm run build`', () => {
    appendFileSync(join(pkg, 'src/core/timeframe.ts'), '\n// changed after the build\n');
    const res = run(['--help']);
    assert.equal(res.status, 1);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /src\/core\/timeframe\.ts changed since the last build: run `npm run build`/);
  });

  test('no build at all: exit 1, saying to build', () => {
    rmSync(join(pkg, 'dist'), { recursive: true });
    const res = run(['--help']);
    assert.equal(res.status, 1);
    assert.match(res.stderr, /the command is not built \(no dist\/app\): run `npm run build`/);
  });
});
