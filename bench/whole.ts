/**
 * Whole-process bench (`npm run bench -- --whole`): the real `llm-trader` commands as a user runs them
 * (`bin/llm-trader ...`, the script npm links as `llm-trader`: the built code, process start and module loading
 * included), each run several times under `/usr/bin/time` (wall time `%e`, the child's maximum resident set size
 * `%M`), printed as min / median / max.
 *
 * Commands:
 * - `--help`, `config`: start-up and module loading alone;
 * - `backtest`, the baseline policy over all 17 pairs of ../shared/data (every 30m decision time of the data: 2,916 x
 *   17 pair-cycles), reading the CSV files (`--data`), writing every output (result.json, llm_decisions.jsonl,
 *   report.html) into a fresh folder; the sizes of the outputs are printed;
 * - `import-data` of the same files into a new candle database (once per run), then the same backtest over the
 *   database (`--db`);
 * - the worker with 20 replay pairs (the 17 recorded pairs, 3 of them twice in a second paper account): bench/scale.ts
 *   `runScale(20)` (a real Temporal server, the worker as its own process, every pair waking at the same candle close,
 *   24 candles at 2 s each), its RSS (/proc VmRSS) sampled every second: peak, and steady = the median of the second
 *   half of the samples. Skipped with `--no-worker`.
 *
 * Options: `--runs N` (default 5) runs of each command. The load average is printed before and after: on a shared
 * machine the wall times move with it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScale } from './scale';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin/llm-trader');
const DATA = path.resolve(ROOT, '../shared/data/binanceusdm');
const TIME = '/usr/bin/time';

interface Goal {
  wallS?: number;
  rssMb?: number;
}

/** One command's runs. */
export interface WholeFigures {
  name: string;
  wallS: number[];
  rssMb: number[];
  goal: Goal;
}

/** The 17 pairs of the recorded data. */
function recordedPairs(): string[] {
  return readdirSync(DATA)
    .filter((f) => f.endsWith('-30m.csv.gz'))
    .map((f) => f.replace(/-30m\.csv\.gz$/, '').replace(/^([A-Z0-9]+)_([A-Z0-9]+)_([A-Z0-9]+)$/, '$1/$2:$3'))
    .sort();
}

/** Runs `llm-trader <args>` once under /usr/bin/time; returns its wall time (s) and max RSS (MB). */
function timed(args: string[], dir: string): { wallS: number; rssMb: number } {
  const timeFile = path.join(dir, 'time.txt');
  const res = spawnSync(TIME, ['-o', timeFile, '-f', '%e %M', BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, OPENAI_API_KEY: '' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.status !== 0) {
    throw new Error(`llm-trader ${args.join(' ')} exited ${res.status}:\n${res.stderr.slice(-2000)}`);
  }
  const [wall, rssKb] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wallS: wall!, rssMb: rssKb! / 1024 };
}

function stats(values: number[]): [number, number, number] {
  const s = [...values].sort((a, b) => a - b);
  return [s[0]!, s[Math.floor((s.length - 1) / 2)]!, s.at(-1)!];
}

/** A file size in MB of 10^6 bytes, as the backtest command prints it (RSS figures are /usr/bin/time's KiB / 1024). */
function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function loadLine(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
}

function goalText(figures: WholeFigures): string {
  const parts: string[] = [];
  const [, wallMedian] = stats(figures.wallS);
  const rssMax = Math.max(...figures.rssMb);
  if (figures.goal.wallS !== undefined) {
    parts.push(`median <= ${figures.goal.wallS} s: ${wallMedian <= figures.goal.wallS ? 'met' : 'NOT met'}`);
  }
  if (figures.goal.rssMb !== undefined) {
    parts.push(`<= ${figures.goal.rssMb} MB: ${rssMax <= figures.goal.rssMb ? 'met' : 'NOT met'}`);
  }
  return parts.join('; ');
}

function printTable(rows: WholeFigures[]): void {
  const f = (v: [number, number, number], digits: number): string => v.map((x) => x.toFixed(digits)).join(' / ');
  const table = [
    ['command', 'runs', 'wall s min / median / max', 'max RSS MB min / median / max', 'goal'],
    ...rows.map((r) => [r.name, String(r.wallS.length), f(stats(r.wallS), 2), f(stats(r.rssMb), 0), goalText(r)]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table)
    console.log(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
}

export async function runWholeBench(argv: string[] = process.argv.slice(2)): Promise<WholeFigures[]> {
  const runsArg = argv.indexOf('--runs');
  const runs = runsArg >= 0 ? Number(argv[runsArg + 1]) : 5;
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs: a positive integer');
  const pairs = recordedPairs();
  const dir = mkdtempSync(path.join(tmpdir(), 'llm-trader-whole-'));
  console.log(`load average before: ${loadLine()} (1 / 5 / 15 min); node ${process.version}; ${runs} runs each`);
  const rows: WholeFigures[] = [];
  const measure = (name: string, goal: Goal, args: (run: number) => string[]): WholeFigures => {
    const row: WholeFigures = { name, wallS: [], rssMb: [], goal };
    for (let run = 0; run < runs; run++) {
      const { wallS, rssMb } = timed(args(run), dir);
      row.wallS.push(wallS);
      row.rssMb.push(rssMb);
    }
    rows.push(row);
    return row;
  };
  try {
    timed(['--help'], dir); // fails at once, saying so, when dist/ is not built from the current sources
    measure('llm-trader --help', { wallS: 0.25, rssMb: 70 }, () => ['--help']);
    measure('llm-trader config', {}, () => ['config']);
    const backtest = (source: string[], out: string): string[] => [
      'backtest',
      ...source,
      '--pairs',
      ...pairs,
      '--policy',
      'baseline',
      '--out',
      out,
    ];
    measure(`backtest ${pairs.length} pairs, baseline, CSV (--data)`, { wallS: 1.0, rssMb: 160 }, (run) =>
      backtest(['--data', DATA], path.join(dir, `csv-${run}`)),
    );
    measure(`import-data ${pairs.length} pairs (new database)`, {}, (run) => [
      'import-data',
      DATA,
      '--db',
      path.join(dir, `candles-${run}.sqlite`),
    ]);
    measure(`backtest ${pairs.length} pairs, baseline, database (--db)`, { wallS: 1.0, rssMb: 160 }, (run) =>
      backtest(['--db', path.join(dir, 'candles-0.sqlite')], path.join(dir, `db-${run}`)),
    );
    const out = path.join(dir, 'csv-0');
    console.log(
      `\nbacktest outputs: ${readdirSync(out)
        .sort()
        .map((f) => `${f} ${mb(statSync(path.join(out, f)).size)}`)
        .join(', ')}`,
    );
    console.log('');
    printTable(rows);

    if (!argv.includes('--no-worker')) {
      console.log('\nworker, 20 replay pairs (bench/scale.ts runScale: 24 candles at 2 s each)...');
      const scale = await runScale(20, { candles: 24, secondsPerCandle: 2, lead: null });
      console.log(
        `worker RSS peak ${scale.rssPeakMb.toFixed(0)} MB, steady ${scale.rssSteadyMb.toFixed(0)} MB ` +
          `(goal steady <= 250 MB: ${scale.rssSteadyMb <= 250 ? 'met' : 'NOT met'}); ${scale.cycles} cycles, ` +
          `${scale.completed} of 20 workflows completed, ${scale.missedCandles} candles missed, ` +
          `${scale.failedCycles} failed cycles`,
      );
    }
    console.log(`\nload average after: ${loadLine()}`);
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await runWholeBench();
  process.exit(0);
}
