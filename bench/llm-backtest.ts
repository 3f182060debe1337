/**
 * LLM backtest bench (`npm run bench:llm`, about 12 minutes): `llm-trader backtest --policy openai` over all 17 pairs
 * of ../shared/data for 3 days (30m decisions), against a local OpenAI-compatible test server that answers every
 * request in 1 s (test/helpers/model-server.ts: answers from the prompt, so every run sees the same answers).
 *
 * Each run is the real command in a child process under /usr/bin/time (wall time and peak RSS of the whole command:
 * loading the data, the model run, the baseline beside it, result.json, the report), with a fresh decision cache:
 * 1. the baseline policy over the same range: its wall time is the part of a model run that is not the model;
 * 2. `--policy openai --concurrency 16`;
 * 3. the same with `--prefetch`;
 * 4. run 2 again on its cache: no request, the same result.json.
 * The goal (issue 14): the wall time of run 2 within 1.3 x (decisions x 1 s / 16) plus the baseline run's time.
 *
 * Options: --days <n> (3), --concurrency <n> (16), --delay-ms <n> (1000), --skip-plain (no run 2), --skip-prefetch
 * (no run 3).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BacktestResultFile } from '../src/backtest/result';
import { ALL_PAIRS } from '../test/helpers/backtest';
import { startModelServer } from '../test/helpers/model-server';

const DATA = path.resolve(process.cwd(), '../shared/data/binanceusdm');
const PAIRS = ALL_PAIRS;
/** 2025-06-01: ten days into the data, indicators warm */
const FROM = Date.UTC(2025, 5, 1);

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

interface CommandRun {
  seconds: number;
  peakRssMb: number;
  status: number;
  stdout: string;
  stderr: string;
}

/** The CLI under /usr/bin/time: its wall time and peak RSS as /usr/bin/time measures them. */
function command(args: string[]): Promise<CommandRun> {
  const bin = path.resolve(process.cwd(), 'bin/llm-trader.js');
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '@@time %e %M', process.execPath, bin, ...args], {
      cwd: process.cwd(),
      env: { ...process.env, OPENAI_API_KEY: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /@@time ([\d.]+) (\d+)/.exec(stderr);
      if (!m) return reject(new Error(`llm bench: no /usr/bin/time figures in:\n${stderr}`));
      resolve({
        seconds: Number(m[1]),
        peakRssMb: Number(m[2]) / 1024,
        status: code ?? -1,
        stdout,
        stderr: stderr.replace(/@@time .*\n?/, ''),
      });
    });
  });
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const row = (label: string, value: string) => `${label.padEnd(46)} ${value}`;

async function main(): Promise<void> {
  const days = option('--days', 3);
  const concurrency = option('--concurrency', 16);
  const delayMs = option('--delay-ms', 1000);
  const to = FROM + days * 86_400_000;
  const dir = mkdtempSync(path.join(tmpdir(), 'llm-bench-'));
  const server = await startModelServer({
    delayMs,
    usage: { promptTokens: 2450, completionTokens: 120, cachedTokens: 1024 },
  });
  const lines: string[] = [];
  try {
    // one data folder (it is part of the result's config): the decision cache in it is removed for a fresh run
    const dataDir = path.join(dir, 'user_data');
    const configFile = path.join(dir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({ data_dir: dataDir, llm: { model: 'gpt-4.1-mini', timeout: 60, retry_times: 2 } }),
    );
    const freshCache = () => {
      for (const suffix of ['', '-wal', '-shm'])
        rmSync(path.join(dataDir, `decision-cache.sqlite${suffix}`), { force: true });
    };
    const args = (name: string, policy: string, extra: string[] = [], out = name) => [
      'backtest',
      '--config',
      configFile,
      '--data',
      DATA,
      '--pairs',
      ...PAIRS,
      '--from',
      String(FROM),
      '--to',
      String(to),
      '--policy',
      policy,
      '--llm-base-url',
      server.url,
      '--out',
      path.join(dir, `out-${out}`),
      ...extra,
    ];
    const read = (out: string) => {
      const text = readFileSync(path.join(dir, `out-${out}`, 'result.json'), 'utf8');
      return { text, result: JSON.parse(text) as BacktestResultFile };
    };
    const check = (name: string, r: CommandRun) => {
      if (r.status !== 0) throw new Error(`llm bench: the ${name} run failed (exit ${r.status}):\n${r.stderr}`);
    };

    const baseline = await command(args('baseline', 'baseline'));
    check('baseline', baseline);
    lines.push(
      row('pairs x days, answer time, concurrency', `${PAIRS.length} x ${days}, ${delayMs} ms, ${concurrency}`),
    );
    lines.push(
      row(
        'baseline run (whole command)',
        `${baseline.seconds.toFixed(2)} s, peak RSS ${baseline.peakRssMb.toFixed(0)} MB`,
      ),
    );

    const runs: { name: string; extra: string[] }[] = [
      ...(process.argv.includes('--skip-plain') ? [] : [{ name: 'model', extra: [] }]),
      ...(process.argv.includes('--skip-prefetch') ? [] : [{ name: 'prefetch', extra: ['--prefetch'] }]),
    ];
    let first: { name: string; text: string } | null = null;
    for (const { name, extra } of runs) {
      server.resetStats();
      freshCache();
      const r = await command(args(name, 'openai', ['--concurrency', String(concurrency), ...extra]));
      check(name, r);
      const { text, result } = read(name);
      const decisions = result.llm!.decisions;
      const stats = server.stats();
      const ideal = (decisions * delayMs) / 1000 / concurrency;
      const bound = 1.3 * ideal + baseline.seconds;
      const ratio = (r.seconds - baseline.seconds) / ideal;
      const label = extra.length > 0 ? `openai ${extra.join(' ')}` : 'openai';
      lines.push(row(`${label}: decisions, requests to the server`, `${int(decisions)}, ${int(stats.answered)}`));
      lines.push(
        row(
          `${label}: wall time (whole command)`,
          `${r.seconds.toFixed(1)} s; decisions x ${delayMs / 1000} s / ${concurrency} = ${ideal.toFixed(1)} s; ` +
            `goal <= 1.3 x that + baseline = ${bound.toFixed(1)} s: ${r.seconds <= bound ? 'met' : 'NOT met'} ` +
            `(${ratio.toFixed(2)} x without the baseline's time)`,
        ),
      );
      lines.push(row(`${label}: peak RSS (whole command)`, `${r.peakRssMb.toFixed(0)} MB`));
      const last = r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('backtest: '))
        .at(-1);
      if (last) lines.push(row(`${label}: last progress line`, last));
      const summary = r.stdout.split('\n').find((l) => l.startsWith('this run: '));
      if (summary) lines.push(row(`${label}: summary`, summary));
      if (first && text !== first.text) throw new Error(`llm bench: ${name} and ${first.name} gave different results`);
      first ??= { name, text };
    }

    // a rerun on the cache of the last run
    server.resetStats();
    const name = runs[0]!.name;
    const rerun = await command(
      args(name, 'openai', ['--concurrency', String(concurrency), ...runs[0]!.extra], `${name}-rerun`),
    );
    check('rerun', rerun);
    const same = read(`${name}-rerun`).text === first!.text;
    lines.push(
      row(
        'cached rerun (whole command)',
        `${rerun.seconds.toFixed(2)} s, ${server.stats().requests} requests, result.json ${same ? 'identical' : 'DIFFERENT'}, ` +
          `peak RSS ${rerun.peakRssMb.toFixed(0)} MB`,
      ),
    );
    console.log(lines.join('\n'));
  } finally {
    await server.close();
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
