/**
 * Each command loads only what it uses: the real `llm-trader` process (the built code that bin/llm-trader.js runs),
 * spawned with a module-load tracer (test/helpers/module-trace.mjs: every ES module resolved and every CommonJS module
 * loaded), and the packages it loaded compared with what the command needs. A baseline backtest over CSV files or
 * the candle database loads no exchange client (ccxt), no Temporal worker or client, no tokenizer and no model client;
 * `config` loads the schema only; `--help` loads commander only; a replay worker loads no ccxt (a paper worker does:
 * the check that the tracer sees it).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/cli';

const BIN = join(repoRoot, 'bin/llm-trader.js');
const TRACER = join(repoRoot, 'test/helpers/module-trace.mjs');
const DATA = join(repoRoot, '../shared/data/binanceusdm');

/** Packages a command that works on recorded data never needs. */
const HEAVY = ['ccxt', '@temporalio/worker', '@temporalio/client', '@temporalio/testing', 'gpt-tokenizer', 'openai'];

interface Traced {
  status: number | null;
  stdout: string;
  stderr: string;
  /** the npm packages the process loaded, e.g. `zod`, `@temporalio/worker` */
  packages: Set<string>;
  /** every module URL or path it loaded */
  modules: string[];
}

/** Runs the real command with the tracer; resolves when it has exited. */
function traced(dir: string, args: string[], timeoutMs = 120_000): Promise<Traced> {
  const traceFile = join(dir, `trace-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(traceFile, '');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TRACER, BIN, ...args], {
      cwd: repoRoot,
      env: { ...process.env, LLM_TRADER_MODULE_TRACE: traceFile, OPENAI_API_KEY: '' },
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      const modules = readFileSync(traceFile, 'utf8').split('\n').filter(Boolean);
      const packages = new Set<string>();
      for (const m of modules) {
        const hit = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(m);
        if (hit) packages.add(hit[1]!);
      }
      resolve({ status, stdout, stderr, packages, modules });
    });
  });
}

function assertNone(run: Traced, forbidden: readonly string[], what: string): void {
  const loaded = forbidden.filter((p) => run.packages.has(p));
  assert.deepEqual(loaded, [], `${what} loaded ${loaded.join(', ')} (all packages: ${[...run.packages].join(', ')})`);
}

/** The process ran the built JavaScript, without a TypeScript compiler. */
function assertBuilt(run: Traced): void {
  assert.ok(
    run.modules.some((m) => m.includes('/dist/app/')),
    'the command did not run the build in dist/app',
  );
  const sources = run.modules.filter((m) => m.includes('/src/') && m.endsWith('.ts'));
  assert.deepEqual(sources, [], 'TypeScript sources were loaded');
  assertNone(run, ['tsx', 'typescript', 'esbuild'], 'the command');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

describe('each command loads only what it uses (module load tracing)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'lazy-loading-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('--help loads commander and no other package', async () => {
    const run = await traced(dir, ['--help']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /backtest/);
    assertBuilt(run);
    assert.deepEqual([...run.packages], ['commander']);
  });

  test('config loads the schema, not the exchange, Temporal, the tokenizer or SQLite', async () => {
    const run = await traced(dir, ['config']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as { mode: string }).mode, 'paper');
    assertBuilt(run);
    assertNone(run, [...HEAVY, 'better-sqlite3', 'technicalindicators'], 'config');
    assert.ok(run.packages.has('zod'));
  });

  test('a baseline backtest over CSV files loads no ccxt, Temporal, tokenizer or model client', async () => {
    const out = join(dir, 'csv-backtest');
    const run = await traced(dir, [
      'backtest',
      '--data',
      DATA,
      '--pairs',
      'BTC/USDT:USDT',
      'ETH/USDT:USDT',
      '--from',
      '2025-06-01',
      '--to',
      '2025-06-02',
      '--policy',
      'baseline',
      '--out',
      out,
    ]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /policy baseline: \d+ trades/);
    assertBuilt(run);
    assertNone(run, HEAVY, 'backtest --data');
    // the tracer sees what the backtest does use
    assert.ok(run.packages.has('technicalindicators'), [...run.packages].join(', '));
  });

  test('import-data, then a baseline backtest over the candle database: no ccxt, Temporal, tokenizer or model client', async () => {
    const files = join(dir, 'files');
    mkdirSync(files);
    for (const tf of ['30m', '1h', '1d', 'funding-8h', 'mark-8h']) {
      const name = `BTC_USDT_USDT-${tf}.csv.gz`;
      copyFileSync(join(DATA, name), join(files, name));
    }
    const db = join(dir, 'candles.sqlite');
    const imported = await traced(dir, ['import-data', files, '--db', db]);
    assert.equal(imported.status, 0, imported.stderr);
    assertBuilt(imported);
    assertNone(imported, HEAVY, 'import-data');

    const run = await traced(dir, [
      'backtest',
      '--db',
      db,
      '--pairs',
      'BTC/USDT:USDT',
      '--from',
      '2025-06-01',
      '--to',
      '2025-06-02',
      '--policy',
      'baseline',
      '--out',
      join(dir, 'db-backtest'),
    ]);
    assert.equal(run.status, 0, run.stderr);
    assertNone(run, HEAVY, 'backtest --db');
    assert.ok(run.packages.has('better-sqlite3'));
  });

  test('a replay worker loads no ccxt; a paper worker does (market data from the exchange)', async () => {
    // no server listens on this port: the worker builds its activities, then stops at the connection
    const address = `127.0.0.1:${await freePort()}`;
    const runWorker = async (mode: 'replay' | 'paper'): Promise<Traced> => {
      const configFile = join(dir, `worker-${mode}.json`);
      writeFileSync(
        configFile,
        JSON.stringify({
          mode,
          pairs: ['BTC/USDT:USDT'],
          data_dir: join(dir, `worker-${mode}-data`),
          replay: { data: DATA },
          llm: { provider: 'baseline' },
          temporal: { address },
        }),
      );
      return traced(dir, ['worker', '-c', configFile, '--log-format', 'json']);
    };
    const [replay, paper] = await Promise.all([runWorker('replay'), runWorker('paper')]);
    for (const run of [replay, paper]) {
      assert.notEqual(run.status, 0, 'the worker should stop: no server answers');
      assert.match(run.stderr, /activities ready/);
      assert.match(run.stderr, new RegExp(address.replace(/\./g, '\\.')));
      assertBuilt(run);
    }
    assertNone(replay, ['ccxt', 'openai'], 'a replay worker');
    assert.ok(replay.packages.has('@temporalio/worker'));
    assert.ok(paper.packages.has('ccxt'), `a paper worker should load ccxt: ${[...paper.packages].join(', ')}`);
  });
});
