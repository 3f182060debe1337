/**
 * Backtest bench: throughput and peak memory of `runBacktest` with the baseline policy over all 17 pairs of
 * ../shared/data (30m decisions, 1h/4h/1d informative, the documented default config), repeated until at least
 * 1,000,000 candle-steps (pair-cycles) have run.
 *
 * Child processes, so that the figures are the backtest's own and not the other benches':
 * - one full backtest as the CLI runs it: load (reading the CSV files, aggregating 4h, computing every indicator
 *   series) and one `runBacktest`; its peak RSS (`process.resourceUsage().maxRSS`) is the memory a backtest takes.
 *   Run twice: as V8 sizes its heap by default, and with the old generation capped at {@link HEAP_CAP_MB} MB
 *   (`--max-old-space-size`, which a user can set with NODE_OPTIONS). Uncapped, V8 grows the heap with the rate of
 *   allocation, and the indicator library allocates ~540 MB of short-lived objects during the load; the peak then
 *   varies between runs (178-212 MB measured). Capped, V8 collects sooner, the load takes ~0.3 s longer, and the
 *   peak is what the backtest needs (a backtest whose live data did not fit would fail with an out-of-memory error);
 * - throughput (steady state): one load and one warm-up run (not counted: the JIT compiles the hot path during it;
 *   the single run above shows the cold figure), then `runBacktest` end to end (cycles, the result with every
 *   decision, metrics, buy-and-hold rows) repeated until at least 1,000,000 candle-steps; candle-steps/s =
 *   candle-steps of the counted runs / their wall time (the load is reused, as the market source keeps its series).
 *   It runs with the same cap: uncapped, V8 lets the garbage of finished runs pile up (the process then peaked at
 *   290-390 MB), which says nothing about what a backtest needs. Its peak RSS is printed: the throughput is reached
 *   within it (capped or not, the throughput measured the same).
 * For scale, the issue's reference: Freqtrade does about 7,900 candle-steps/s on this data (6.3 s for 17 pairs) at
 * 156 MB; the goal is >= 200,000 candle-steps/s under 200 MB.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigSchema } from '../src/core/config';
import { planBacktest, runBacktest } from '../src/backtest/engine';
import { baselinePolicy } from '../src/backtest/policy';
import { RecordedMarketSource, csvRecordedData } from '../src/exchange/market-source';
import { listDataFiles } from '../src/store/data-files';

const CHILD_FLAG = '--backtest-bench-child';
const TARGET_STEPS = 1_000_000;
const FREQTRADE_STEPS_PER_S = 7_900;
const FREQTRADE_MB = 156;
const GOAL_STEPS_PER_S = 200_000;
const GOAL_MB = 200;
/** Old-generation cap of the capped processes, MB (see the module comment). */
const HEAP_CAP_MB = 128;
const HEAP_CAP = [`--max-old-space-size=${HEAP_CAP_MB}`];

/** One full backtest in a fresh process. */
export interface SingleRunFigures {
  pairs: number;
  decisionTimes: number;
  candleSteps: number;
  trades: number;
  loadSeconds: number;
  runSeconds: number;
  peakRssMb: number;
}

/** Repeated runs over one load, after one warm-up run. */
export interface ThroughputFigures {
  runs: number;
  totalSteps: number;
  runSeconds: number;
  stepsPerSecond: number;
  /** fastest single run, candle-steps/s */
  bestRunStepsPerSecond: number;
  peakRssMb: number;
}

export interface BacktestBenchFigures {
  single: SingleRunFigures;
  /** the same with the old generation capped at {@link HEAP_CAP_MB} MB */
  capped: SingleRunFigures;
  throughput: ThroughputFigures;
}

async function setup() {
  const dir = path.resolve(process.cwd(), '../shared/data/binanceusdm');
  const files = (await listDataFiles(dir)).files;
  const pairs = [
    ...new Set(files.filter((f) => f.content.kind === 'candles' && f.content.timeframe === '30m').map((f) => f.symbol)),
  ].sort();
  const config = ConfigSchema.parse({ pairs });
  const market = new RecordedMarketSource(csvRecordedData(dir));
  const options = { config, market, pairs, policy: baselinePolicy() };
  const loadStart = performance.now();
  const plan = await planBacktest(options);
  return { pairs, options, plan, loadSeconds: (performance.now() - loadStart) / 1000 };
}

async function measureSingle(): Promise<SingleRunFigures> {
  const { pairs, options, plan, loadSeconds } = await setup();
  const t0 = performance.now();
  const { result } = await runBacktest(options, plan);
  return {
    pairs: pairs.length,
    decisionTimes: plan.times.length,
    candleSteps: result.range.candle_steps,
    trades: result.metrics.trades,
    loadSeconds,
    runSeconds: (performance.now() - t0) / 1000,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

async function measureThroughput(): Promise<ThroughputFigures> {
  const { options, plan } = await setup();
  await runBacktest(options, plan); // warm-up, not counted
  let totalSteps = 0;
  let runs = 0;
  let best = 0;
  const start = performance.now();
  while (totalSteps < TARGET_STEPS) {
    const t0 = performance.now();
    const { result } = await runBacktest(options, plan);
    const steps = result.range.candle_steps;
    best = Math.max(best, steps / ((performance.now() - t0) / 1000));
    totalSteps += steps;
    runs++;
  }
  const runSeconds = (performance.now() - start) / 1000;
  return {
    runs,
    totalSteps,
    runSeconds,
    stepsPerSecond: totalSteps / runSeconds,
    bestRunStepsPerSecond: best,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

/** Runs this file in a child process with `mode` (and `nodeFlags`) and returns what it printed (one JSON line). */
function child<T>(mode: string, nodeFlags: readonly string[] = []): T {
  const self = fileURLToPath(import.meta.url);
  const res = spawnSync(process.execPath, [...nodeFlags, '--import', 'tsx', self, CHILD_FLAG, mode], {
    cwd: process.cwd(),
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (res.status !== 0) {
    throw new Error(`backtest bench: the ${mode} process failed (exit ${res.status}):\n${res.stderr}`);
  }
  return JSON.parse(res.stdout.trim().split('\n').at(-1) ?? '') as T;
}

function row(label: string, value: string): string {
  return `${label.padEnd(42)} ${value}`;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');

/**
 * Runs the two measurements in child processes and prints the figures as a table. Reads ../shared/data relative to
 * the working directory (run from the repository root: `npm run bench`).
 * @throws Error when a child fails
 */
export async function runBacktestBench(): Promise<BacktestBenchFigures> {
  const single = child<SingleRunFigures>('single');
  const capped = child<SingleRunFigures>('single', HEAP_CAP);
  const throughput = child<ThroughputFigures>('throughput', HEAP_CAP);
  const oneRun = single.loadSeconds + single.runSeconds;
  const lines = [
    row(
      'pairs x decision times (30m)',
      `${single.pairs} x ${int(single.decisionTimes)} = ${int(single.candleSteps)} candle-steps`,
    ),
    row('trades (baseline)', int(single.trades)),
    row('one full backtest: load + indicators', `${single.loadSeconds.toFixed(2)} s`),
    row(
      'one full backtest: run (first, JIT cold)',
      `${single.runSeconds.toFixed(2)} s (${int(single.candleSteps / single.runSeconds)} candle-steps/s)`,
    ),
    row('one full backtest: total', `${oneRun.toFixed(2)} s (${int(single.candleSteps / oneRun)} candle-steps/s)`),
    row('one full backtest: peak RSS', `${single.peakRssMb.toFixed(0)} MB (V8's default heap sizing)`),
    row(
      `  old generation capped at ${HEAP_CAP_MB} MB`,
      `${capped.peakRssMb.toFixed(0)} MB (load ${capped.loadSeconds.toFixed(2)} s, run ${capped.runSeconds.toFixed(2)} s)`,
    ),
    row(
      'repeated runs (after 1 warm-up) / steps',
      `${throughput.runs} / ${int(throughput.totalSteps)} in ${throughput.runSeconds.toFixed(2)} s`,
    ),
    row(
      'throughput (repeated runs)',
      `${int(throughput.stepsPerSecond)} candle-steps/s (best run ${int(throughput.bestRunStepsPerSecond)})`,
    ),
    row(
      'repeated runs: peak RSS of the process',
      `${throughput.peakRssMb.toFixed(0)} MB (old generation capped at ${HEAP_CAP_MB} MB)`,
    ),
    row(
      'reference: Freqtrade on this data',
      `${int(FREQTRADE_STEPS_PER_S)} candle-steps/s (6.3 s), ${FREQTRADE_MB} MB`,
    ),
    row('goal', `>= ${int(GOAL_STEPS_PER_S)} candle-steps/s, < ${GOAL_MB} MB`),
  ];
  console.log(lines.join('\n'));
  return { single, capped, throughput };
}

const mode = process.argv.includes(CHILD_FLAG) ? process.argv[process.argv.indexOf(CHILD_FLAG) + 1] : undefined;
if (mode === 'single') console.log(JSON.stringify(await measureSingle()));
else if (mode === 'throughput') console.log(JSON.stringify(await measureThroughput()));
