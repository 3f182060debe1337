/**
 * `npm run bench`: runs every bench in sequence and prints their tables. Run from the repository root (the benches
 * read ../shared/data relative to the working directory).
 */
import { runBacktestBench } from './backtest';
import { runContextBench } from './context';

const benches: { name: string; run: () => Promise<unknown> }[] = [
  { name: 'context', run: runContextBench },
  { name: 'backtest', run: runBacktestBench },
];

for (const bench of benches) {
  console.log(`\n# ${bench.name}`);
  await bench.run();
}
