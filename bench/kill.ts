/**
 * `npm run bench:kill [-- --kills N --seconds-per-candle S --max-minutes M --seed X --pairs A B ...]`: the kill test
 * of test/integration/kill.test.ts with many kills (default 50): worker processes SIGKILLed at random times, asleep
 * between cycles, and at the failpoints (in the decision, between the exchange's acceptance of an order and the
 * journal, in the journal write), restarted each time. Prints the recovery time of every kill, min / median / max, and
 * the checks (duplicate fills, duplicate or lost journal records, stale decisions, every pair continuing). Exits 1
 * when a check fails or a kill took longer than the limit to recover from; 2 when no Temporal server can be had.
 *
 * Needs a Temporal server: TEMPORAL_ADDRESS, or TEMPORAL_CLI_PATH (e.g. ../shared/tools/temporal-dev/temporal), as
 * the integration suite (test/integration/temporal-server.ts). Run from the repository root. Bounded: it stops starting
 * kills after --max-minutes (default 60) and stops by itself.
 */
import { acquireServer } from '../test/integration/temporal-server';
import {
  KILL_POINTS,
  RECOVERY_LIMIT_MS,
  runKillScenario,
  seededRandom,
  type KillPoint,
} from '../test/helpers/worker-process';
import { replaySchedule } from '../src/worker/starter';
import { ConfigSchema } from '../src/core/config';
import { resolve } from 'node:path';

interface BenchArgs {
  kills: number;
  secondsPerCandle: number | null;
  maxMinutes: number;
  seed: number;
  pairs: string[];
}

function parseArgs(argv: readonly string[]): BenchArgs {
  const out: BenchArgs = {
    kills: 50,
    secondsPerCandle: null,
    maxMinutes: 60,
    seed: Date.now() % 1_000_000,
    pairs: ['BTC/USDT:USDT', 'ETH/USDT:USDT', 'SOL/USDT:USDT', 'DOGE/USDT:USDT'],
  };
  const number = (flag: string, value: string | undefined, min: number): number => {
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || n < min) {
      throw new Error(`${flag} needs a number >= ${min}, got ${JSON.stringify(value)}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i]!;
    switch (flag) {
      case '--kill': // `npm run bench -- --kill` style; nothing to do
        break;
      case '--kills':
        out.kills = Math.floor(number(flag, argv[++i], 1));
        break;
      case '--seconds-per-candle':
        out.secondsPerCandle = number(flag, argv[++i], 0.5);
        break;
      case '--max-minutes':
        out.maxMinutes = number(flag, argv[++i], 1);
        break;
      case '--seed':
        out.seed = Math.floor(number(flag, argv[++i], 0));
        break;
      case '--pairs': {
        const pairs: string[] = [];
        while (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) pairs.push(argv[++i]!);
        if (pairs.length === 0) throw new Error('--pairs needs at least one pair, e.g. BTC/USDT:USDT');
        out.pairs = pairs;
        break;
      }
      default:
        throw new Error(
          `unknown argument ${flag}; usage: bench/kill.ts [--kills N] [--seconds-per-candle S] [--max-minutes M] ` +
            `[--seed X] [--pairs A B ...]`,
        );
    }
  }
  return out;
}

/** Each kill point in turn, in a seeded random order per round, so every point gets its share. */
function killPlan(kills: number, seed: number): KillPoint[] {
  const random = seededRandom(seed ^ 0x5eed);
  const plan: KillPoint[] = [];
  while (plan.length < kills) {
    const round = [...KILL_POINTS];
    for (let i = round.length - 1; i > 0; i -= 1) {
      const j = Math.floor(random() * (i + 1));
      [round[i], round[j]] = [round[j]!, round[i]!];
    }
    plan.push(...round);
  }
  return plan.slice(0, kills);
}

export async function runKillBench(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const args = parseArgs(argv);
  // the recorded data must outlast the run: stretch the candles when the budget is longer than the data at 1 s each
  let secondsPerCandle = args.secondsPerCandle;
  if (secondsPerCandle === null) {
    const config = ConfigSchema.parse({ replay: { data: resolve('../shared/data/binanceusdm') } });
    let candles = Infinity;
    for (const pair of args.pairs) {
      const s = await replaySchedule(config, pair);
      candles = Math.min(candles, (s.recordedEnd - s.recordedStart) / (30 * 60_000));
    }
    const neededSeconds = args.maxMinutes * 60 + 600;
    secondsPerCandle = Math.max(1, Math.ceil((neededSeconds / candles) * 10) / 10);
  }
  const acquired = await acquireServer();
  if (typeof acquired === 'string') {
    console.error(`kill bench: ${acquired}`);
    return 2;
  }
  console.log(`# kill bench on ${acquired.origin} (${acquired.env.address}), seed ${args.seed}`);
  // Ctrl-C: no further kill, then the checks and the clean-up; a second one exits at once (the workers are killed)
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (abort.signal.aborted) process.exit(130);
    console.log(`# ${signal}: stopping after the current kill (again to exit at once)`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const report = await runKillScenario({
      address: acquired.env.address,
      namespace: acquired.namespace,
      client: acquired.env.client,
      pairs: args.pairs,
      plan: killPlan(args.kills, args.seed),
      secondsPerCandle,
      seed: args.seed,
      maxDurationMs: args.maxMinutes * 60_000,
      recoveryTimeoutMs: 150_000,
      log: (line) => console.log(line),
      signal: abort.signal,
    });
    console.log(`\n${report.summary}`);
    const failed = report.checks.filter((c) => !c.ok);
    if (failed.length > 0 || report.slowKills.length > 0) {
      console.log(`\nthe workers' logs and files are kept in ${report.dataDir}`);
    }
    if (report.slowKills.length > 0) {
      const worst = Math.max(...report.slowKills.map((k) => k.recoveryFromStartMs ?? Infinity));
      console.log(
        `${report.slowKills.length}/${report.kills.length} kills took longer than ${RECOVERY_LIMIT_MS / 1000} s to ` +
          `recover from (worst ${Number.isFinite(worst) ? `${(worst / 1000).toFixed(1)} s, ${((worst - RECOVERY_LIMIT_MS) / 1000).toFixed(1)} s over` : 'never'})`,
      );
    }
    if (report.kills.length < args.kills)
      console.log(`only ${report.kills.length}/${args.kills} kills: ${report.stopReason}`);
    return failed.length === 0 && report.slowKills.length === 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await acquired.env.teardown();
  }
}

process.exitCode = await runKillBench();
