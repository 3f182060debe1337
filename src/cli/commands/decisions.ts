/**
 * `llm-trader decisions [pair] [--follow]`: the latest decisions from the journal (`<data_dir>/journal.sqlite`, written
 * by the worker's activities), one line each: decision time, pair, tool, confidence, outcome, source, tokens, reason.
 * `--follow` keeps printing new decisions (polling every 2 s) until Ctrl-C. `--json` prints one JSON object per line.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { Journal, JournaledDecision } from '../../store/journal';
import { addConfigOption, checkPair, formatTime, positiveInt, readConfig, type ConfigOptions } from './shared';

/** How often `--follow` looks for new decisions, ms. */
export const FOLLOW_INTERVAL_MS = 2_000;

interface DecisionsOptions extends ConfigOptions {
  limit: string;
  follow?: boolean;
  json?: boolean;
}

/** Adds the `decisions` command to `program`. */
export function registerDecisions(program: Command): void {
  const command = program
    .command('decisions')
    .description(
      'show the latest decisions from the journal (tool, confidence, outcome, reason); --follow for new ones',
    )
    .argument('[pair]', 'one pair, e.g. BTC/USDT:USDT (default: all pairs)')
    .option('-n, --limit <n>', 'how many of the latest decisions to show first', '20')
    .option('-f, --follow', `keep printing new decisions (every ${FOLLOW_INTERVAL_MS / 1000} s) until Ctrl-C`)
    .option('--json', 'one JSON object per decision and line');
  addConfigOption(command);
  command.action(async (pairArg: string | undefined, opts: DecisionsOptions, cmd: Command) => {
    const pair = pairArg !== undefined ? checkPair(cmd, pairArg) : null;
    const limit = positiveInt(cmd, '--limit', opts.limit);
    const config = readConfig(opts);
    const { Journal, journalPaths } = await import('../../store/journal');
    const database = journalPaths(config.data_dir).database;
    if (!existsSync(database) && !opts.follow) {
      console.log(`no decisions yet: ${database} does not exist (the worker creates it with the first decision)`);
      return;
    }
    const journal = Journal.fromConfig(config);
    try {
      const print = (d: JournaledDecision): void => console.log(opts.json ? JSON.stringify(d) : decisionText(d));
      const recent = journal.recentDecisions(pair, limit);
      if (!opts.json) console.log(DECISION_HEADER);
      recent.forEach(print);
      if (!opts.follow) {
        if (recent.length === 0) console.log(`no decisions${pair ? ` for ${pair}` : ''} in ${database} yet`);
        return;
      }
      await follow(journal, pair, recent, print);
    } finally {
      journal.close();
    }
  });
}

/** The header above {@link decisionText} lines. */
export const DECISION_HEADER = `${'time'.padEnd(17)}  ${'pair'.padEnd(14)}  ${'tool'.padEnd(18)}  conf  ${'outcome'.padEnd(8)}  ${'source'.padEnd(10)}  ${'tokens'.padStart(6)}  reason`;

/** One decision as one line (see {@link DECISION_HEADER}); a rejection or failure adds its detail in brackets. */
export function decisionText(d: JournaledDecision): string {
  const conf = d.confidence === null ? '-' : String(Math.round(d.confidence));
  const detail = d.detail && d.outcome !== 'executed' && d.outcome !== 'none' ? ` [${d.detail}]` : '';
  return (
    `${formatTime(d.time).padEnd(17)}  ${d.pair.padEnd(14)}  ${d.tool.padEnd(18)}  ${conf.padStart(4)}  ` +
    `${d.outcome.padEnd(8)}  ${d.source.padEnd(10)}  ${String(d.tokensIn + d.tokensOut).padStart(6)}  ` +
    `${d.reason.replace(/\s+/g, ' ')}${detail}`
  );
}

/** Where `--follow` has got to: the latest decision time shown, and the ids shown at exactly that time. */
interface Cursor {
  time: number;
  ids: Set<number>;
}

function advance(cursor: Cursor, shown: readonly JournaledDecision[]): Cursor {
  let next = cursor;
  for (const d of shown) {
    if (d.time > next.time) next = { time: d.time, ids: new Set([d.id]) };
    else if (d.time === next.time) next.ids.add(d.id);
  }
  return next;
}

/**
 * Polls the journal every {@link FOLLOW_INTERVAL_MS} and prints decisions taken at or after the latest one shown and
 * not shown yet (several pairs decide at the same candle close, so the time alone is not a cursor), until SIGINT or
 * SIGTERM.
 */
async function follow(
  journal: Journal,
  pair: string | null,
  shown: readonly JournaledDecision[],
  print: (d: JournaledDecision) => void,
): Promise<void> {
  let cursor = advance({ time: Number.MIN_SAFE_INTEGER, ids: new Set() }, shown);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    while (!stop.signal.aborted) {
      const rows = journal
        .decisionsSince(pair, cursor.time - 1)
        .filter((d) => d.time > cursor.time || !cursor.ids.has(d.id));
      rows.forEach(print);
      cursor = advance(cursor, rows);
      await sleep(FOLLOW_INTERVAL_MS, undefined, { signal: stop.signal }).catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
