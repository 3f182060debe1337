/**
 * Checking a decision log before it is replayed (`--policy replay:<llm_decisions.jsonl>`): a log that is empty,
 * corrupt or cut short must not silently turn into hold/wait decisions.
 *
 * - Corrupt lines (not JSON, or missing pair, timestamp, action or decision) are listed with their line numbers and
 *   refuse the run. A last line without its newline that does not parse is the record a killed writer was writing:
 *   it is reported (`incomplete_last_line`), not refused, and the decision it would have held counts as missing.
 * - Coverage: every pair-cycle of the run that asks the policy (every decision time but the last, where positions
 *   are closed without a decision, and only when the pair's candle is recorded) needs a line for that pair and time.
 *   Decision times the log does not cover refuse the run, listed as ranges per pair, unless `--allow-missing`: then
 *   they become hold/wait fallbacks, counted in result.json `replayLog`.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parseDecisionLine, type RecordedDecision } from '../llm/replay-provider';
import { iterateJsonLines, type CorruptLine } from '../store/jsonl';
import { InputError } from '../worker/errors';

/** What was read from a decision log. */
export interface DecisionLogContents {
  records: RecordedDecision[];
  /** lines that are not JSON or lack a field, with their numbers (not counting an incomplete last line) */
  corrupt: CorruptLine[];
  /** the last line had no newline and did not parse: a record cut off by an interrupted writer */
  incompleteLastLine: CorruptLine | null;
  /** lines holding something (blank lines are not counted) */
  lines: number;
}

/** result.json `replayLog`: what the replayed log held and what the run made of it. */
export interface ReplayLogReport {
  /** lines holding something */
  lines: number;
  /** distinct (pair, time) decisions in the log */
  decisions: number;
  /** corrupt lines (refused unless there were none) */
  corrupt: number;
  /** a cut-off last line was ignored */
  incomplete_last_line: boolean;
  /** pair-cycles of the run that asked the policy */
  asked: number;
  /** answered from the log */
  replayed: number;
  /** pair-cycles the log had no line for (hold/wait instead; only with --allow-missing) */
  missing: number;
  /** lines holding no model decision (protective or operator exits) or no longer valid in the replayed state */
  not_replayable: number;
  allow_missing: boolean;
}

/** Pair-cycles of a run the log does not cover, as ranges of consecutive decision times. */
export interface MissingRange {
  pair: string;
  from: number;
  to: number;
  count: number;
}

/** True when the file is not empty and does not end with a newline. */
function endsWithoutNewline(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    closeSync(fd);
  }
}

/** Reads a decision log (see the module comment for what counts as corrupt). */
export function readDecisionLog(file: string): DecisionLogContents {
  const records: RecordedDecision[] = [];
  const corrupt: CorruptLine[] = [];
  let lines = 0;
  let lastLine = 0;
  for (const item of iterateJsonLines(file)) {
    lines++;
    lastLine = item.line;
    if ('error' in item) {
      corrupt.push({ line: item.line, error: item.error });
      continue;
    }
    try {
      records.push(parseDecisionLine(item.value, item.line));
    } catch (err) {
      corrupt.push({ line: item.line, error: err instanceof Error ? err.message : String(err) });
    }
  }
  let incompleteLastLine: CorruptLine | null = null;
  const tail = corrupt.at(-1);
  if (tail !== undefined && tail.line === lastLine && endsWithoutNewline(file)) {
    incompleteLastLine = corrupt.pop()!;
  }
  return { records, corrupt, incompleteLastLine, lines };
}

/**
 * The pair-cycles in `cycles` that no record covers, grouped into ranges of consecutive times per pair.
 * @param cycles per pair, the decision times at which the run asks the policy (ascending)
 * @param step the main timeframe's length (consecutive times are `step` apart)
 */
export function missingDecisions(
  records: readonly RecordedDecision[],
  cycles: ReadonlyMap<string, readonly number[]>,
  step: number,
): MissingRange[] {
  const covered = new Set(records.map((r) => `${r.pair}\u0000${r.time}`));
  const out: MissingRange[] = [];
  for (const [pair, times] of cycles) {
    let open: MissingRange | null = null;
    for (const t of times) {
      if (covered.has(`${pair}\u0000${t}`)) {
        open = null;
        continue;
      }
      if (open !== null && t === open.to + step) {
        open.to = t;
        open.count++;
      } else {
        open = { pair, from: t, to: t, count: 1 };
        out.push(open);
      }
    }
  }
  return out;
}

function iso(t: number): string {
  return new Date(t).toISOString().replace(':00.000Z', 'Z');
}

/** Ranges listed in an error; the rest are counted. */
const LISTED = 8;

/**
 * Refuses a log that cannot be replayed faithfully: corrupt lines (always), pair-cycles it does not cover (unless
 * `allowMissing`).
 * @throws InputError naming the file, the corrupt lines with their numbers, or the uncovered ranges, and the way out
 */
export function assertReplayable(
  file: string,
  log: DecisionLogContents,
  missing: readonly MissingRange[],
  asked: number,
  allowMissing: boolean,
): void {
  if (log.corrupt.length > 0) {
    const listed = log.corrupt.slice(0, LISTED).map((c) => `  line ${c.line}: ${c.error}`);
    const more = log.corrupt.length > LISTED ? [`  ... and ${log.corrupt.length - LISTED} more corrupt lines`] : [];
    throw new InputError(
      [
        `backtest: the decision log ${file} has ${log.corrupt.length} corrupt line(s) (of ${log.lines}):`,
        ...listed,
        ...more,
        'Repair or remove those lines (or replay another log); a corrupt log is never replayed, since its missing ' +
          'decisions would silently become hold/wait.',
      ].join('\n'),
    );
  }
  const count = missing.reduce((s, m) => s + m.count, 0);
  if (count === 0 || allowMissing) return;
  const what =
    log.records.length === 0
      ? `holds no decisions${log.lines === 0 ? ' (the file is empty)' : ''}`
      : `has no decision for ${count} of the run's ${asked} pair-cycles`;
  const listed = missing
    .slice(0, LISTED)
    .map(
      (m) =>
        `  ${m.pair} ${m.count === 1 ? iso(m.from) : `${iso(m.from)} to ${iso(m.to)}`} (${m.count} decision times)`,
    );
  const more = missing.length > LISTED ? [`  ... and ${missing.length - LISTED} more ranges`] : [];
  const cut = log.incompleteLastLine
    ? [`  (its last line ${log.incompleteLastLine.line} is cut off: the writer was interrupted)`]
    : [];
  throw new InputError(
    [
      `backtest: the decision log ${file} ${what}:`,
      ...(log.records.length === 0 ? [] : listed),
      ...(log.records.length === 0 ? [] : more),
      ...cut,
      'Replay the range the log covers (--from/--to, --pairs), or pass --allow-missing to replay anyway: the missing ' +
        'decisions become hold/wait and are counted in result.json replayLog.',
    ].join('\n'),
  );
}
