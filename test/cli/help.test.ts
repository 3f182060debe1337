import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program';
import {
  SEARCH_ATTRIBUTES,
  forceExitSignal,
  pauseSignal,
  resumeSignal,
  stopSignal,
} from '../../src/workflows/messages';
import { repoRoot } from '../helpers/cli';

const bin = fileURLToPath(new URL('../../bin/llm-trader.js', import.meta.url));

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real command (asynchronously, so several can run at once). */
function run(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: repoRoot, env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Runs `jobs` with at most `limit` at a time; results in order. */
async function pool<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array<T>(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

const commands: readonly Command[] = buildProgram().commands;

describe('--help', () => {
  test('the Temporal verbs are all registered', () => {
    const names = commands.map((c) => c.name());
    for (const verb of [
      'worker',
      'start',
      'pause',
      'resume',
      'exit',
      'stop',
      'status',
      'decisions',
      'trades',
      'setup',
      'dev',
    ]) {
      assert.ok(names.includes(verb), `${verb} is not a command`);
    }
  });

  test('top level: exit 0 and every verb listed', async () => {
    const r = await run(['--help']);
    assert.equal(r.status, 0, r.stderr);
    for (const c of commands) assert.match(r.stdout, new RegExp(`^  ${c.name()} `, 'm'), `${c.name()} missing`);
  });

  test('every verb: exit 0, its usage and every option, including -c, --config', async () => {
    const results = await pool(
      commands.map((c) => () => run([c.name(), '--help'])),
      4,
    );
    commands.forEach((c, i) => {
      const r = results[i]!;
      assert.equal(r.status, 0, `${c.name()} --help exited ${r.status}: ${r.stderr}`);
      assert.ok(
        r.stdout.startsWith(`Usage: llm-trader ${c.name()} ${c.usage()}`),
        `${c.name()}: ${r.stdout.slice(0, 200)}`,
      );
      assert.ok(
        c.options.some((o) => o.flags === '-c, --config <file>'),
        `${c.name()} has no -c, --config`,
      );
      for (const option of c.options) {
        assert.ok(r.stdout.includes(option.flags), `${c.name()} --help does not show ${option.flags}`);
      }
    });
  });

  test("setup shows the raw command for exactly the workflows' search attributes", async () => {
    const r = await run(['setup', '--help']);
    const shown = [...r.stdout.matchAll(/search-attribute create --name (\w+) --type (\w+)/g)].map((m) => [m[1], m[2]]);
    assert.deepEqual(Object.fromEntries(shown), SEARCH_ATTRIBUTES);
  });

  test('pause, resume, exit and stop name the signals the workflow handles', async () => {
    const expected: [string, string][] = [
      ['pause', pauseSignal.name],
      ['resume', resumeSignal.name],
      ['exit', forceExitSignal.name],
      ['stop', stopSignal.name],
    ];
    const results = await Promise.all(expected.map(([verb]) => run([verb, '--help'])));
    expected.forEach(([verb, signal], i) => {
      assert.match(results[i]!.stdout, new RegExp(`temporal workflow signal .* --name ${signal}\\b`), verb);
    });
  });
});
