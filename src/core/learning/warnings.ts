/**
 * Decision-quality warnings over the recent decisions of one pair (after the original's DecisionQualityChecker):
 * stuck in a loop, no progress, profit erosion. The messages go into the position prompt. Pure.
 *
 * The rules only look at the decisions of the position that is open now: the longest run of most recent records
 * whose `pnlPct` is not null (a decision taken while flat has `pnlPct: null`, so the run starts after the entry).
 * When the most recent record is a `signal_exit` the position is closed and there are no warnings.
 *
 * Rules (thresholds in {@link WARNING_RULES}; PnL in leveraged % of margin):
 * - loop: among the last 15 `signal_hold` records of the position, one normalised reason occurs 5 or more times.
 *   Normalising ({@link normalizeReason}) lower-cases, replaces every number with `#` and collapses whitespace, so
 *   "RSI 52, waiting" and "rsi 48,  waiting" are the same reason.
 * - no_progress: the most recent records are 6 or more consecutive `signal_hold`s whose PnL values all lie within
 *   a 3-point band (max - min <= 3). The run is extended backwards as long as both conditions hold.
 * - profit_erosion: the PnL of the last 5 records fell 4 times in a row (each strictly below the one before), the
 *   first of them was a profit of at least +1 % (below that "half the profit" is noise), and the last is below half
 *   of the first.
 */
import type { ToolName } from '../types';
import { formatSignedPct } from './format';

/** One decision as the warnings need it; the cycle's richer record (with source, outcome...) fits this shape. */
export interface DecisionRecord {
  /** decision time (the candle close it was taken at), Unix ms */
  time: number;
  tool: ToolName;
  reason: string;
  /** leveraged PnL % of the open position when decided; null when flat */
  pnlPct: number | null;
}

export type DecisionWarningKind = 'loop' | 'no_progress' | 'profit_erosion';

export interface DecisionWarning {
  kind: DecisionWarningKind;
  /** one or two English sentences for the prompt, with the numbers that triggered it */
  message: string;
}

export const WARNING_RULES = {
  /** loop: how many of the most recent holds are looked at */
  loopWindow: 15,
  /** loop: how many times one normalised reason must occur in that window */
  loopMinRepeats: 5,
  /** no_progress: consecutive most recent holds needed */
  noProgressMinHolds: 6,
  /** no_progress: the PnL band (max - min, percentage points of margin) the holds stay within */
  noProgressBandPct: 3,
  /** profit_erosion: consecutive falls needed */
  erosionFalls: 4,
  /** profit_erosion: the PnL before the falls must be at least this (% of margin) */
  erosionMinStartPct: 1,
} as const;

/** Lower-cases, replaces each number (with sign, decimals and thousands separators) by `#`, collapses whitespace. */
export function normalizeReason(reason: string): string {
  return reason
    .toLowerCase()
    .replace(/[-+]?\d+(?:[.,]\d+)*/g, '#')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * The records of the position open now: the longest suffix with non-null `pnlPct`, or none when the last record
 * is a `signal_exit` (the position was closed).
 */
export function openPositionRecords(records: readonly DecisionRecord[]): DecisionRecord[] {
  const last = records[records.length - 1];
  if (!last || last.tool === 'signal_exit') return [];
  let start = records.length;
  while (start > 0 && records[start - 1]?.pnlPct != null) start -= 1;
  return records.slice(start);
}

function quote(reason: string): string {
  const oneLine = reason.replace(/\s+/g, ' ').trim();
  return oneLine.length > 100 ? `${oneLine.slice(0, 97)}...` : oneLine;
}

function loopWarning(position: DecisionRecord[]): DecisionWarning | null {
  const holds = position.filter((r) => r.tool === 'signal_hold').slice(-WARNING_RULES.loopWindow);
  const counts = new Map<string, { count: number; latest: string }>();
  for (const hold of holds) {
    const key = normalizeReason(hold.reason);
    if (key === '') continue;
    const entry = counts.get(key);
    counts.set(key, { count: (entry?.count ?? 0) + 1, latest: hold.reason });
  }
  let top: { count: number; latest: string } | null = null;
  for (const entry of counts.values()) if (top === null || entry.count > top.count) top = entry;
  if (top === null || top.count < WARNING_RULES.loopMinRepeats) return null;
  return {
    kind: 'loop',
    message:
      `Stuck in a loop: ${top.count} of your last ${holds.length} holds gave the same reason ("${quote(top.latest)}"). ` +
      'Repeating it is not analysis: say what has changed since the entry, or exit or adjust the position.',
  };
}

function noProgressWarning(position: DecisionRecord[]): DecisionWarning | null {
  let min = Infinity;
  let max = -Infinity;
  let run = 0;
  for (let i = position.length - 1; i >= 0; i -= 1) {
    const record = position[i];
    if (!record || record.tool !== 'signal_hold' || record.pnlPct === null) break;
    const nextMin = Math.min(min, record.pnlPct);
    const nextMax = Math.max(max, record.pnlPct);
    if (nextMax - nextMin > WARNING_RULES.noProgressBandPct) break;
    min = nextMin;
    max = nextMax;
    run += 1;
  }
  if (run < WARNING_RULES.noProgressMinHolds) return null;
  return {
    kind: 'no_progress',
    message:
      `No progress: your last ${run} decisions were holds and the PnL stayed between ${formatSignedPct(min)} and ` +
      `${formatSignedPct(max)} of margin. The trade is not playing out; consider exiting or reducing instead of holding again.`,
  };
}

function erosionWarning(position: DecisionRecord[]): DecisionWarning | null {
  const falls = WARNING_RULES.erosionFalls;
  const values = position.slice(-(falls + 1)).map((r) => r.pnlPct);
  if (values.length < falls + 1) return null;
  let first: number | null = null;
  let previous: number | null = null;
  for (const value of values) {
    if (value === null) return null;
    if (previous !== null && !(value < previous)) return null;
    first ??= value;
    previous = value;
  }
  const last = previous;
  if (first === null || last === null) return null;
  if (first < WARNING_RULES.erosionMinStartPct || !(last < first / 2)) return null;
  return {
    kind: 'profit_erosion',
    message:
      `Profit erosion: the PnL fell ${falls} times in a row, from ${formatSignedPct(first)} to ${formatSignedPct(last)} ` +
      'of margin (less than half). Protect what is left: exit, reduce, or tighten the invalidation level.',
  };
}

/**
 * Warnings for the position open now, in the order loop, no_progress, profit_erosion (rules in the module
 * comment). Returns an empty list when flat, when the position was just closed, or when no rule fires.
 */
export function decisionWarnings(records: readonly DecisionRecord[]): DecisionWarning[] {
  const position = openPositionRecords(records);
  if (position.length === 0) return [];
  return [loopWarning(position), noProgressWarning(position), erosionWarning(position)].filter(
    (w): w is DecisionWarning => w !== null,
  );
}
