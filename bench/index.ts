/**
 * `npm run bench`: runs every in-process bench in sequence and prints their tables. Run from the repository root (the
 * benches read ../shared/data relative to the working directory).
 *
 * `npm run bench -- --whole [--runs N] [--no-worker]`: the whole-process bench instead (bench/whole.ts): the real
 * commands under /usr/bin/time, and the worker with 20 replay pairs.
 */
import { runBacktestBench } from './backtest';
import { runContextBench } from './context';
import { runWholeBench } from './whole';

const argv = process.argv.slice(2);
if (argv.includes('--whole')) {
  await runWholeBench(argv);
  // the worker part's Temporal connection keeps the event loop alive (as in bench/scale.ts)
  process.exit(0);
} else {
  const benches: { name: string; run: () => Promise<unknown> }[] = [
    { name: 'context', run: runContextBench },
    { name: 'backtest', run: runBacktestBench },
  ];
  for (const bench of benches) {
    console.log(`\n# ${bench.name}`);
    await bench.run();
  }
}
