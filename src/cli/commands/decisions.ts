/**
 * `llm-trader decisions [pair] [--run <run|all>] [--follow]`: the latest decisions from the journal
 * (`<data_dir>/journal.sqlite`, written by the worker's activities), one line each: decision time, pair, tool,
 * confidence, outcome, source, tokens, reason; gaps of candles a pair skipped after an outage show as one line each.
 * The first line names the run shown (default: the current run, the one of the latest record) and how to see others.
 * `--follow` keeps printing new decisions (polling every 2 s) until Ctrl-C. `--json` prints one JSON object per
 * decision and line (no header, no gaps).
 *
 * `llm-trader decisions --show <decision id>`: one decision in full (arguments, verdict, tokens) with the prompt as it
 * was sent, wrapped for reading; `--json` prints it as one JSON object.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { Journal, JournaledDecision, JournaledMissedCandles } from '../../store/journal';
import {
  addConfigOption,
  checkPair,
  formatTime,
  positiveInt,
  readConfig,
  runHeader,
  runName,
  type ConfigOptions,
} from './shared';

/** How often `--follow` looks for new decisions, ms. */
export const FOLLOW_INTERVAL_MS = 2_000;

/** Width the prompt is wrapped to when stdout is not a terminal. */
export const WRAP_COLUMNS = 100;

interface DecisionsOptions extends ConfigOptions {
  limit: string;
  follow?: boolean;
  json?: boolean;
  run?: string;
  show?: string;
}

/** Adds the `decisions` command to `program`. */
export function registerDecisions(program: Command): void {
  const command = program
    .command('decisions')
    .description(
      'show the latest decisions from the journal (tool, confidence, outcome, reason); --follow for new ones, ' +
        '--show <id> for one decision with its prompt',
    )
    .argument('[pair]', 'one pair, e.g. BTC/USDT:USDT (default: all pairs)')
    .option('-n, --limit <n>', 'how many of the latest decisions to show first', '20')
    .option('-r, --run <run>', 'the run to show: paper, live, replay-<id>, or all (default: the current run)')
    .option('-f, --follow', `keep printing new decisions (every ${FOLLOW_INTERVAL_MS / 1000} s) until Ctrl-C`)
    .option('--show <decision id>', 'print one decision in full with the prompt as it was sent')
    .option('--json', 'one JSON object per decision and line (with --show: the decision and its prompt)');
  addConfigOption(command);
  command.action(async (pairArg: string | undefined, opts: DecisionsOptions, cmd: Command) => {
    const pair = pairArg !== undefined ? checkPair(cmd, pairArg) : null;
    const limit = positiveInt(cmd, '--limit', opts.limit);
    const config = await readConfig(opts);
    const { Journal, journalPaths } = await import('../../store/journal');
    const database = journalPaths(config.data_dir).database;
    if (opts.show !== undefined) {
      if (!existsSync(database)) {
        return cmd.error(`decisions: no decision ${opts.show} in ${database} (the file does not exist yet)`, {
          exitCode: 2,
          code: 'llm-trader.no-decision',
        });
      }
      const journal = Journal.fromConfig(config);
      try {
        const d = journal.decision(opts.show);
        if (d === null) {
          return cmd.error(
            `decisions: no decision ${opts.show} in ${database}; the ids are in \`llm-trader decisions --json\` ` +
              `(decisionId) and in llm_decisions.jsonl (decision_id)`,
            { exitCode: 2, code: 'llm-trader.no-decision' },
          );
        }
        console.log(opts.json ? JSON.stringify(d) : decisionDetail(d, wrapColumns()));
      } finally {
        journal.close();
      }
      return;
    }
    if (!existsSync(database) && !opts.follow) {
      console.log(`no decisions yet: ${database} does not exist (the worker creates it with the first decision)`);
      return;
    }
    const journal = Journal.fromConfig(config);
    try {
      const current = journal.currentRun();
      const run = opts.run === 'all' ? null : (opts.run ?? current);
      const print = (d: JournaledDecision): void => console.log(opts.json ? JSON.stringify(d) : decisionText(d));
      const recent = journal.recentDecisions(pair, limit, { run });
      const since = recent.length === limit ? recent[0]!.time - 1 : -1;
      const gaps = opts.json ? [] : journal.missedCandles({ pair, run, since });
      if (!opts.json) {
        console.log(runHeader(run, current, journal.runs()));
        console.log(DECISION_HEADER);
        for (const line of mergeByTime(recent, gaps)) console.log(line);
      } else recent.forEach(print);
      if (!opts.follow) {
        if (recent.length === 0 && !opts.json) {
          console.log(
            `no decisions${pair ? ` for ${pair}` : ''}${run !== null ? ` in run ${runName(run)}` : ''} in ${database} yet`,
          );
        }
        return;
      }
      await follow(journal, { pair, run, json: opts.json === true }, recent, gaps, print);
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

/** A gap of skipped candles as one line among the decisions: `... missed 30 candles <first> → <last> (outage)`. */
export function missedText(m: JournaledMissedCandles): string {
  const candles = m.count === 1 ? '1 candle' : `${m.count} candles`;
  return (
    `${formatTime(m.firstClose).padEnd(17)}  ${m.pair.padEnd(14)}  ` +
    `missed ${candles} ${formatTime(m.firstClose)} → ${formatTime(m.lastClose)} (${m.reason})`
  );
}

/** Decisions and gaps as lines, by time (a gap at its first skipped close). */
function mergeByTime(decisions: readonly JournaledDecision[], gaps: readonly JournaledMissedCandles[]): string[] {
  const items = [
    ...decisions.map((d) => ({ time: d.time, text: decisionText(d) })),
    ...gaps.map((g) => ({ time: g.firstClose, text: missedText(g) })),
  ];
  return items.sort((a, b) => a.time - b.time).map((i) => i.text);
}

/** The terminal's width, or {@link WRAP_COLUMNS} when stdout is not a terminal. */
function wrapColumns(): number {
  return process.stdout.isTTY && process.stdout.columns > 40 ? process.stdout.columns : WRAP_COLUMNS;
}

/**
 * `text` with every line longer than `width` broken at spaces (a word longer than the width is cut); a continuation
 * keeps the line's indentation. Existing line breaks stay.
 */
export function wrapText(text: string, width: number): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line.length <= width) {
      out.push(line);
      continue;
    }
    const indent = /^\s*/.exec(line)![0].slice(0, Math.floor(width / 2));
    let rest = line;
    let first = true;
    while (rest.length > 0) {
      const room = first ? width : width - indent.length;
      if (rest.length <= room) {
        out.push(first ? rest : indent + rest);
        break;
      }
      let cut = rest.lastIndexOf(' ', room);
      if (cut <= 0) cut = room;
      out.push((first ? '' : indent) + rest.slice(0, cut).trimEnd());
      rest = rest.slice(cut).trimStart();
      first = false;
    }
  }
  return out.join('\n');
}

/** One decision in full, then its prompt as sent (each message under its role), wrapped to `width`. */
export function decisionDetail(d: JournaledDecision, width: number = WRAP_COLUMNS): string {
  const field = (name: string, value: string): string => `${name.padEnd(12)} ${value}`;
  const detail = d.detail ? ` (${d.detail})` : '';
  const lines = [
    field('decision', `${d.decisionId}  run ${runName(d.run)}, owner ${d.owner}`),
    field('time', formatTime(d.time)),
    field('pair', d.pair),
    field('tool', d.tool),
    field('arguments', d.decision ? JSON.stringify(d.decision.args) : '- (no model was asked)'),
    field('reason', d.reason),
    field('confidence', d.confidence === null ? '-' : String(d.confidence)),
    field('outcome', `${d.outcome}${detail}`),
    field('verdict', d.verdict ? JSON.stringify(d.verdict) : '-'),
    field('source', `${d.source}${d.model ? `, model ${d.model}` : ''}`),
    field('tokens', `${d.tokensIn} in, ${d.tokensOut} out, ${Math.round(d.latencyMs)} ms`),
    field('order', d.clientOrderId ?? '-'),
  ];
  if (d.problems.length > 0) lines.push(field('problems', d.problems.join('; ')));
  if (d.thinking) lines.push(field('thinking', d.thinking));
  lines.push('');
  const c = d.context;
  if (c === null) {
    lines.push('prompt: none recorded (a protective or operator exit asks no model)');
  } else {
    lines.push(
      `prompt: ${c.messages.length} messages, ${c.tokens ?? 'uncounted'} tokens, tools offered: ${c.allowedTools.join(', ')}`,
    );
    for (const m of c.messages) lines.push('', `--- ${m.role} ---`, m.content);
  }
  return wrapText(lines.join('\n'), width);
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

const gapKey = (g: JournaledMissedCandles): string => `${g.owner}\n${g.pair}\n${g.firstClose}`;

/**
 * Polls the journal every {@link FOLLOW_INTERVAL_MS} and prints decisions taken at or after the latest one shown and
 * not shown yet (several pairs decide at the same candle close, so the time alone is not a cursor), and gaps ending
 * after it not shown yet, until SIGINT or SIGTERM.
 */
async function follow(
  journal: Journal,
  filter: { pair: string | null; run: string | null; json: boolean },
  shown: readonly JournaledDecision[],
  shownGaps: readonly JournaledMissedCandles[],
  print: (d: JournaledDecision) => void,
): Promise<void> {
  let cursor = advance({ time: Number.MIN_SAFE_INTEGER, ids: new Set() }, shown);
  const gapsSince = cursor.time === Number.MIN_SAFE_INTEGER ? -1 : cursor.time;
  const gapsShown = new Set(shownGaps.map(gapKey));
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    while (!stop.signal.aborted) {
      if (!filter.json) {
        for (const g of journal.missedCandles({ pair: filter.pair, run: filter.run, since: gapsSince })) {
          if (gapsShown.has(gapKey(g))) continue;
          gapsShown.add(gapKey(g));
          console.log(missedText(g));
        }
      }
      const rows = journal
        .decisionsSince(filter.pair, cursor.time - 1, { run: filter.run })
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
