import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decisionWarnings,
  normalizeReason,
  openPositionRecords,
  type DecisionRecord,
  type DecisionWarningKind,
} from '../../../src/core/learning/warnings';

const T0 = Date.UTC(2025, 0, 6);
const STEP = 30 * 60_000;

/** A position's decisions: the entry (taken flat: pnl null), then one record per [tool, reason, pnl]. */
function position(
  decisions: [DecisionRecord['tool'], string, number][],
  before: DecisionRecord[] = [],
): DecisionRecord[] {
  const start = before.length;
  const entry: DecisionRecord = {
    time: T0 + start * STEP,
    tool: 'signal_entry_long',
    reason: 'breakout',
    pnlPct: null,
  };
  return [
    ...before,
    entry,
    ...decisions.map(([tool, reason, pnlPct], i) => ({ time: T0 + (start + i + 1) * STEP, tool, reason, pnlPct })),
  ];
}

const hold = (reason: string, pnl: number): [DecisionRecord['tool'], string, number] => ['signal_hold', reason, pnl];
const kinds = (records: DecisionRecord[]): DecisionWarningKind[] => decisionWarnings(records).map((w) => w.kind);

/** PnL values that swing by 5 points so the no-progress band (3) never holds and never fall 4 times in a row. */
const swing = (i: number) => (i % 2 === 0 ? 0 : 5);

describe('normalizeReason', () => {
  test('case, whitespace and numbers do not make a reason different', () => {
    const a = normalizeReason('RSI 52, waiting for the breakout above 61,200');
    assert.equal(a, 'rsi #, waiting for the breakout above #');
    assert.equal(normalizeReason('  rsi 48.5,\twaiting for  the Breakout above 60,950.5 '), a);
    assert.equal(normalizeReason('PnL -2.3% holding'), 'pnl #% holding');
  });
});

describe('loop warning', () => {
  const same = ['RSI 52, waiting for breakout', 'rsi 48,  waiting for breakout', 'RSI 50.5, Waiting for BREAKOUT'];

  test('fires at 5 repeats of a normalised reason among the last 15 holds', () => {
    const records = position(Array.from({ length: 5 }, (_, i) => hold(same[i % 3] ?? '', swing(i))));
    const warnings = decisionWarnings(records);
    assert.deepEqual(
      warnings.map((w) => w.kind),
      ['loop'],
    );
    assert.equal(
      warnings[0]?.message,
      'Stuck in a loop: 5 of your last 5 holds gave the same reason ("rsi 48, waiting for breakout"). ' +
        'Repeating it is not analysis: say what has changed since the entry, or exit or adjust the position.',
    );
  });

  test('4 repeats are not a loop', () => {
    const records = position([
      ...Array.from({ length: 4 }, (_, i) => hold(same[i % 3] ?? '', swing(i))),
      hold('volume fading, still above EMA 20', swing(4)),
    ]);
    assert.deepEqual(kinds(records), []);
  });

  test('only the last 15 holds count: a repeat 16 holds back falls out of the window', () => {
    // oldest hold repeats the reason, then 10 distinct holds, then 4 more repeats: 5 repeats in 15 holds
    const distinct = Array.from({ length: 10 }, (_, i) => hold(`reason ${'abcdefghij'[i]}`, swing(i + 1)));
    const inWindow = position([
      hold(same[0] ?? '', 5),
      ...distinct,
      ...same.concat(same[0] ?? '').map((r, i) => hold(r, swing(i + 1))),
    ]);
    assert.deepEqual(kinds(inWindow), ['loop']);
    // one more distinct hold in front of the last 4 repeats pushes the first repeat to 16 holds back
    const outOfWindow = position([
      hold(same[0] ?? '', 5),
      hold('reason k', 0),
      ...distinct,
      ...same.concat(same[0] ?? '').map((r, i) => hold(r, swing(i + 1))),
    ]);
    assert.deepEqual(kinds(outOfWindow), []);
  });

  test('other tools in between do not break a loop, holds of an earlier position do not count', () => {
    const interleaved = position([
      hold(same[0] ?? '', 0),
      hold(same[1] ?? '', 5),
      ['adjust_position', 'add on dip', 0],
      hold(same[2] ?? '', 5),
      hold(same[0] ?? '', 0),
      hold(same[1] ?? '', 5),
    ]);
    assert.deepEqual(kinds(interleaved), ['loop']);

    const earlier = position([hold(same[0] ?? '', 0), hold(same[1] ?? '', 5), hold(same[2] ?? '', 0)]);
    const closed = [
      ...earlier,
      { time: T0 + 10 * STEP, tool: 'signal_exit' as const, reason: 'take profit', pnlPct: 5 },
    ];
    const flat = [...closed, { time: T0 + 11 * STEP, tool: 'signal_wait' as const, reason: 'no setup', pnlPct: null }];
    const next = position([hold(same[0] ?? '', 0), hold(same[1] ?? '', 5)], flat);
    assert.deepEqual(kinds(next), []);
  });
});

describe('no-progress warning', () => {
  const reasons = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((x) => `waiting ${x}`);

  test('fires at 6 consecutive holds within a 3-point band (edges included)', () => {
    const pnls = [0, 3, 1, 2, 0.5, 3];
    const records = position(pnls.map((p, i) => hold(reasons[i] ?? '', p)));
    const warnings = decisionWarnings(records);
    assert.deepEqual(
      warnings.map((w) => w.kind),
      ['no_progress'],
    );
    assert.equal(
      warnings[0]?.message,
      'No progress: your last 6 decisions were holds and the PnL stayed between 0.0% and +3.0% of margin. ' +
        'The trade is not playing out; consider exiting or reducing instead of holding again.',
    );
  });

  test('5 holds are not enough', () => {
    const records = position([0, 3, 1, 2, 0.5].map((p, i) => hold(reasons[i] ?? '', p)));
    assert.deepEqual(kinds(records), []);
  });

  test('a band of 3.01 points is not "within 3"', () => {
    // walking back from the newest: 0, 1, 2, 1, 0 fit (range 2); 3.01 would make the range 3.01 → run of 5
    const records = position([3.01, 0, 1, 2, 1, 0].map((p, i) => hold(reasons[i] ?? '', p)));
    assert.deepEqual(kinds(records), []);
  });

  test('a non-hold decision breaks the run', () => {
    const records = position([
      hold(reasons[0] ?? '', 1),
      hold(reasons[1] ?? '', 1),
      ['adjust_position', 'reduce', 1],
      ...[1, 1, 1, 1, 1].map((p, i) => hold(reasons[i + 2] ?? '', p)),
    ]);
    assert.deepEqual(kinds(records), []);
  });

  test('the run length in the message counts every hold in the band', () => {
    const records = position([10, 1, 2, 1, 2, 1, 2, 1].map((p, i) => hold(reasons[i] ?? '', p)));
    assert.match(decisionWarnings(records)[0]?.message ?? '', /your last 7 decisions were holds/);
  });
});

describe('profit-erosion warning', () => {
  const reasons = ['one', 'two', 'three', 'four', 'five', 'six'].map((x) => `hold ${x}`);
  const run = (pnls: number[]) => position(pnls.map((p, i) => hold(reasons[i] ?? '', p)));

  test('fires after 4 falls in a row to below half', () => {
    // 6 > 5 > 4 > 3.5 > 2.9 and 2.9 < 6 / 2 = 3
    const warnings = decisionWarnings(run([6, 5, 4, 3.5, 2.9]));
    assert.deepEqual(
      warnings.map((w) => w.kind),
      ['profit_erosion'],
    );
    assert.equal(
      warnings[0]?.message,
      'Profit erosion: the PnL fell 4 times in a row, from +6.0% to +2.9% of margin (less than half). ' +
        'Protect what is left: exit, reduce, or tighten the invalidation level.',
    );
  });

  test('exactly half is not below half', () => {
    assert.deepEqual(kinds(run([6, 5, 4, 3.5, 3])), []);
  });

  test('3 falls are not 4', () => {
    // 2 → 6 is a rise; only 6 > 5 > 4 > 2.9 fall
    assert.deepEqual(kinds(run([2, 6, 5, 4, 2.9])), []);
  });

  test('a flat step breaks the falls', () => {
    assert.deepEqual(kinds(run([6, 5, 5, 3, 2])), []);
  });

  test('the starting profit must be at least +1 %', () => {
    assert.deepEqual(kinds(run([0.99, 0.8, 0.6, 0.45, 0.2])), []);
    // 1 > 0.8 > 0.6 > 0.5 > 0.4 and 0.4 < 0.5
    assert.deepEqual(kinds(run([1, 0.8, 0.6, 0.5, 0.4])), ['profit_erosion']);
  });

  test('the entry record is not part of the falls', () => {
    // only 4 position records: 3 falls at most
    assert.deepEqual(kinds(run([6, 4, 3, 2])), []);
  });
});

describe('decisionWarnings scope', () => {
  test('no warnings when flat or just closed', () => {
    const erosion = position([6, 5, 4, 3.5, 2.9].map((p, i) => hold(`reason ${'abcde'[i]}`, p)));
    assert.deepEqual(kinds(erosion), ['profit_erosion']);
    const exited = [...erosion, { time: T0 + 20 * STEP, tool: 'signal_exit' as const, reason: 'stop', pnlPct: 2.5 }];
    assert.deepEqual(decisionWarnings(exited), []);
    assert.deepEqual(openPositionRecords(exited), []);
    const waiting = [
      ...exited,
      { time: T0 + 21 * STEP, tool: 'signal_wait' as const, reason: 'no setup', pnlPct: null },
    ];
    assert.deepEqual(decisionWarnings(waiting), []);
    assert.deepEqual(decisionWarnings([]), []);
  });

  test('several rules can fire together, in a fixed order', () => {
    // 6 identical holds, PnL 2.9 → 2.8 → 2.7 → ... within a 3-point band: loop and no progress
    const records = position([2.9, 2.8, 2.7, 2.6, 2.5, 2.4].map((p) => hold('RSI neutral, waiting', p)));
    assert.deepEqual(kinds(records), ['loop', 'no_progress']);
    // 5 identical holds falling from 6 to 2.5 (< 3, range 3.5 so no no-progress): loop and erosion
    const falling = position([6, 5, 4, 3, 2.5].map((p) => hold('RSI neutral, waiting', p)));
    assert.deepEqual(kinds(falling), ['loop', 'profit_erosion']);
  });
});
