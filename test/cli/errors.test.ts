/**
 * The top-level error handler: file-system, network, SQLite and Temporal connection errors become one line naming the
 * file, host or setting and the fix, with exit 2 for bad input or configuration and 1 for runtime failures.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describeError, wantsStack } from '../../src/cli/errors';
import { DecisionCache } from '../../src/llm/decision-cache';
import { InputError, OperatorError } from '../../src/worker/errors';
import { runCli } from '../helpers/cli';

function sysError(code: string, message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code, ...extra });
}

describe('describeError', () => {
  test('file-system errors, also when wrapped: the file and the fix', () => {
    const cases: [Error, RegExp, number][] = [
      [
        sysError('EACCES', "permission denied, open '/srv/out/result.json'", {
          path: '/srv/out/result.json',
          syscall: 'open',
        }),
        /^EACCES: permission denied, open '\/srv\/out\/result\.json': permission denied: give this user access/,
        1,
      ],
      [
        new Error('cannot write /data/x/result.json: ENOSPC: no space left on device, write', {
          cause: sysError('ENOSPC', 'no space left on device, write', { syscall: 'write' }),
        }),
        /^cannot write \/data\/x\/result\.json: ENOSPC.*: the disk is full: free some space or write elsewhere/,
        1,
      ],
      [
        sysError('ENOENT', "no such file or directory, open 'missing.jsonl'", {
          path: 'missing.jsonl',
          syscall: 'open',
        }),
        /missing\.jsonl'?: no such file or folder: check the path$/,
        2,
      ],
      [
        sysError('EROFS', "read-only file system, mkdtemp '/mnt/ro/.run.partial-XXXXXX'", {
          path: '/mnt/ro/.run.partial-XXXXXX',
        }),
        /\/mnt\/ro\/\.run\.partial-XXXXXX'?: the file system is read-only: write elsewhere \(--out, data_dir\)/,
        1,
      ],
    ];
    for (const [err, message, exitCode] of cases) {
      const d = describeError(err);
      assert.match(d.message, message);
      assert.equal(d.exitCode, exitCode, d.message);
      assert.ok(!d.message.includes('\n'), 'one line');
    }
  });

  test('network errors name the host', () => {
    const d = describeError(
      new Error('request failed', {
        cause: sysError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:7233', { address: '127.0.0.1', port: 7233 }),
      }),
    );
    assert.match(
      d.message,
      /^request failed \(127\.0\.0\.1:7233\): the network connection failed \(ECONNREFUSED\): check the address/,
    );
    assert.equal(d.exitCode, 1);
  });

  test('SQLite errors: a read-only decision cache names its file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'errors-'));
    const file = join(dir, 'decision-cache.sqlite');
    DecisionCache.open(file).close();
    // a database file that is not one: SQLITE_NOTADB, with the file named by the cache
    const bad = join(dir, 'not-a-db.sqlite');
    writeFileSync(bad, 'this is not a database, just text that is long enough to have a header'.repeat(10));
    let caught: unknown;
    try {
      DecisionCache.open(bad);
    } catch (err) {
      caught = err;
    }
    const d = describeError(caught);
    assert.match(d.message, new RegExp(`^decision cache ${bad}: cannot open: .*not a SQLite database or is damaged`));
    assert.equal(d.exitCode, 1);
    // read-only: opened read-only by SQLite, a write fails with SQLITE_READONLY
    const ro = new Database(file, { readonly: true });
    try {
      ro.prepare("INSERT INTO decision_cache VALUES ('k', 'm', 1, '{}')").run();
    } catch (err) {
      assert.match(
        describeError(new Error(`decision cache ${file}: cannot store a decision`, { cause: err })).message,
        /is read-only: make the file and its folder writable/,
      );
    } finally {
      ro.close();
    }
  });

  test('Temporal connection errors say where and how to start a server', () => {
    const err = Object.assign(new Error('14 UNAVAILABLE: Connection refused'), { name: 'ServiceError', code: 14 });
    const d = describeError(err);
    assert.match(
      d.message,
      /the Temporal server does not answer: check temporal\.address .*`llm-trader dev` starts one/,
    );
    assert.equal(d.exitCode, 1);
  });

  test('our own errors: bad input exits 2, runtime failures 1; anything else points at --verbose', () => {
    assert.deepEqual(describeError(new InputError('bad log')), { message: 'bad log', exitCode: 2 });
    assert.deepEqual(describeError(new OperatorError('server down')), { message: 'server down', exitCode: 1 });
    const other = describeError(new TypeError('x is undefined\n  at somewhere'));
    assert.equal(other.exitCode, 1);
    assert.match(
      other.message,
      /^x is undefined \(an unexpected error: run with --verbose or DEBUG=1 for the stack trace\)$/,
    );
    assert.equal(wantsStack(['backtest', '--verbose'], {}), true);
    assert.equal(wantsStack([], { DEBUG: '1' }), true);
    assert.equal(wantsStack([], { DEBUG: '0' }), false);
  });

  test('the CLI: a missing replay log is one line and exit 2; --verbose adds the stack', () => {
    const args = [
      'backtest',
      '--data',
      '../shared/data',
      '--pairs',
      'BTC/USDT:USDT',
      '--policy',
      'replay:/no/such/log.jsonl',
    ];
    const res = runCli(args);
    assert.equal(res.status, 2, res.stderr);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(res.stderr, /decision log \/no\/such\/log\.jsonl does not exist/);
    const verbose = runCli([...args, '--verbose']);
    assert.match(verbose.stderr, /\n\s+at /);
  });
});
