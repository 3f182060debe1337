/**
 * bin/llm-trader.js runs the build in dist/app (scripts/build.mjs), and refuses a build that is not that of the current
 * sources, saying what to run. Checked on a copy of the package (bin/, dist/, src/, node_modules linked) in a temporary
 * folder, so that the repository's own sources are never touched.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
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

describe('the llm-trader command (bin/llm-trader, the script package.json "bin" names)', () => {
  let dir: string;
  /** a `node` first in PATH that writes its pid, MALLOC_ARENA_MAX and arguments, then runs the real Node */
  let seen: string;
  let link: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'llm-trader-command-'));
    seen = join(dir, 'seen.txt');
    mkdirSync(join(dir, 'path'));
    writeFileSync(
      join(dir, 'path/node'),
      `#!/bin/sh\necho "$$ \${MALLOC_ARENA_MAX-unset} $*" >> '${seen}'\nexec '${process.execPath}' "$@"\n`,
      { mode: 0o755 },
    );
    // as npm links it: node_modules/.bin/llm-trader -> ../../bin/llm-trader
    mkdirSync(join(dir, '.bin'));
    link = join(dir, '.bin/llm-trader');
    symlinkSync(join(repoRoot, 'bin/llm-trader'), link);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    rmSync(seen, { force: true });
    const { MALLOC_ARENA_MAX: _arenas, NODE_OPTIONS: _options, ...rest } = process.env;
    const res = spawnSync(link, args, {
      cwd: dir,
      encoding: 'utf8',
      env: { ...rest, ...env, PATH: `${join(dir, 'path')}:${process.env.PATH ?? ''}` },
    });
    const [pid, arenas, ...argv] = readFileSync(seen, 'utf8').trim().split(' ');
    return { res, pid: Number(pid), arenas, argv };
  };

  test('runs bin/llm-trader.js in its own process (exec), through the link, with every argument and 4 MB semi-spaces', () => {
    const { res, pid, argv } = run(['config', '--help']);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /Usage: llm-trader config/);
    assert.equal(pid, res.pid, 'Node runs as the process that was started, not as a child of a shell');
    assert.deepEqual(argv, ['--max-semi-space-size=4', join(repoRoot, 'bin/llm-trader.js'), 'config', '--help']);
  });

  test('a NODE_OPTIONS that sets the young generation size keeps it', () => {
    const { res, argv } = run(['--help'], { NODE_OPTIONS: '--max-semi-space-size=16' });
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(argv, [join(repoRoot, 'bin/llm-trader.js'), '--help']);
  });

  test("limits glibc malloc arenas to 2 unless the environment says otherwise; the exit code is the command's", () => {
    assert.equal(run(['--help']).arenas, '2');
    const own = run(['--no-such-option'], { MALLOC_ARENA_MAX: '8' });
    assert.equal(own.arenas, '8');
    assert.equal(own.res.status, 2, 'a usage error (src/cli/errors.ts: exit 2)');
    assert.match(own.res.stderr, /unknown option '--no-such-option'/);
  });
});
