import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  analyzePatterns,
  reasonKeywords,
  summarizeLast30Days,
  summarizePeriod,
  THIRTY_DAYS_MS,
  type PatternGroup,
} from '../../../src/core/learning/patterns';
import type { ClosedTrade, CloseReason, Side } from '../../../src/core/types';
import { DAY0, HOUR, makeTrade } from './make-trade';

/**
 * Eight hand-made trades (margin 100, so pnl in USDT equals pnlPct):
 *
 * | # | side  | conf | entry UTC | lev | exit           | held | pnl | entry reason                              |
 * |---|-------|------|-----------|-----|----------------|------|-----|-------------------------------------------|
 * | 1 | long  | 85   | 01:00     | 5   | model          | 1h   | +4  | Breakout above resistance with volume     |
 * | 2 | long  | 90   | 02:00     | 5   | model          | 3h   | +6  | breakout retest, volume confirms           |
 * | 3 | long  | 70   | 07:00     | 10  | model          | 10h  | +2  | breakout continuation                     |
 * | 4 | short | 55   | 13:00     | 20  | emergency_stop | 30h  | -15 | overbought reversal guess                 |
 * | 5 | short | 50   | 14:00     | 25  | emergency_stop | 5h   | -16 | overbought fade                           |
 * | 6 | short | 65   | 19:00     | 25  | model          | 1.5h | +1  | overbought divergence                     |
 * | 7 | long  | 80   | 20:00     | 10  | model          | 9h   | -3  | pullback to support, bounce               |
 * | 8 | long  | 58   | 08:00     | 3   | model          | 2h   | 0   | pullback support                          |
 *
 * Overall: wins 1, 2, 3, 6 = 4; losses 4, 5, 7 = 3; trade 8 is breakeven. Win rate 4 / 8 = 0.5, loss rate 3 / 8.
 */
const rows: [Side, number, number, number, CloseReason, number, number, string][] = [
  ['long', 85, 1, 5, 'model', 1, 4, 'Breakout above resistance with volume'],
  ['long', 90, 2, 5, 'model', 3, 6, 'breakout retest, volume confirms'],
  ['long', 70, 7, 10, 'model', 10, 2, 'breakout continuation'],
  ['short', 55, 13, 20, 'emergency_stop', 30, -15, 'overbought reversal guess'],
  ['short', 50, 14, 25, 'emergency_stop', 5, -16, 'overbought fade'],
  ['short', 65, 19, 25, 'model', 1.5, 1, 'overbought divergence'],
  ['long', 80, 20, 10, 'model', 9, -3, 'pullback to support, bounce'],
  ['long', 58, 8, 3, 'model', 2, 0, 'pullback support'],
];
const trades: ClosedTrade[] = rows.map(([side, conf, hour, leverage, exitReason, held, pnlPct, reason], i) => {
  const entryTime = DAY0 + hour * HOUR;
  return makeTrade({
    tradeId: `t${i + 1}`,
    side,
    entryConfidence: conf,
    entryTime,
    exitTime: entryTime + held * HOUR,
    leverage,
    exitReason,
    margin: 100,
    pnlPct,
    mfePct: Math.max(pnlPct, 0),
    maePct: Math.min(pnlPct, 0),
    entryReason: reason,
  });
});

function group(groups: PatternGroup[], dimension: PatternGroup['dimension'], label: string): PatternGroup | undefined {
  return groups.find((g) => g.dimension === dimension && g.label === label);
}

describe('analyzePatterns', () => {
  test('needs at least 5 trades and says so', () => {
    const r = analyzePatterns(trades.slice(0, 4));
    assert.deepEqual(r, {
      enough: false,
      tradeCount: 4,
      message: 'Pattern analysis needs at least 5 closed trades; there are 4 so far.',
    });
    assert.equal(analyzePatterns([]).enough, false);
    assert.equal(analyzePatterns(trades.slice(0, 5)).enough, true);
  });

  test('overall and per-dimension counts and win rates', () => {
    const r = analyzePatterns(trades);
    assert.ok(r.enough);
    assert.equal(r.tradeCount, 8);
    assert.equal(r.wins, 4);
    assert.equal(r.losses, 3);
    assert.equal(r.winRate, 0.5);

    const expect = (
      dimension: PatternGroup['dimension'],
      label: string,
      count: number,
      wins: number,
      losses: number,
    ) => {
      const g = group(r.groups, dimension, label);
      assert.ok(g, `${dimension} ${label} missing`);
      assert.deepEqual([g.count, g.wins, g.losses], [count, wins, losses], `${dimension} ${label}`);
      assert.equal(g.winRate, wins / count);
    };
    expect('side', 'long', 5, 3, 1); // 1, 2, 3 won; 7 lost; 8 even
    expect('side', 'short', 3, 1, 2); // 6 won; 4, 5 lost
    expect('confidence', '< 60', 3, 0, 2); // 4 (55), 5 (50), 8 (58)
    expect('confidence', '60-79', 2, 2, 0); // 3 (70), 6 (65)
    expect('confidence', '>= 80', 3, 2, 1); // 1 (85), 2 (90), 7 (80: on the edge)
    expect('hour', '00-06 UTC', 2, 2, 0);
    expect('hour', '06-12 UTC', 2, 1, 0); // 3 (07:00), 8 (08:00)
    expect('hour', '12-18 UTC', 2, 0, 2);
    expect('hour', '18-24 UTC', 2, 1, 1);
    expect('leverage', '1-5x', 3, 2, 0); // 1 and 2 at 5x (on the edge), 8 at 3x
    expect('leverage', '6-10x', 2, 1, 1); // 3 and 7 at 10x
    expect('leverage', '11-20x', 1, 0, 1); // 4 at 20x
    expect('leverage', '21x+', 2, 1, 1);
    expect('exit_reason', 'model', 6, 4, 1);
    expect('exit_reason', 'emergency_stop', 2, 0, 2);
    expect('duration', '< 2h', 2, 2, 0); // 1 (1h), 6 (1.5h)
    expect('duration', '2-8h', 3, 1, 1); // 2 (3h), 5 (5h), 8 (2h: on the edge)
    expect('duration', '8-24h', 2, 1, 1);
    expect('duration', '>= 24h', 1, 0, 1);
    // empty groups are left out
    assert.equal(group(r.groups, 'exit_reason', 'liquidation'), undefined);
    // long: total 4 + 6 + 2 - 3 + 0 = 9 USDT, avg 9 / 5
    const long = group(r.groups, 'side', 'long');
    assert.equal(long?.totalPnl, 9);
    assert.equal(long?.avgPnlPct, 9 / 5);
    assert.equal(long?.description, 'long trades');
  });

  test('best and worst: groups of 3+ trades above / below the overall 50 %', () => {
    const r = analyzePatterns(trades);
    assert.ok(r.enough);
    // above 0.5 with >= 3 trades: leverage 1-5x (2/3, avg 10/3), confidence >= 80 (2/3, avg 7/3),
    // exits by model (4/6, avg 10/6), long (3/5): ties on 2/3 are broken by the higher average PnL
    assert.deepEqual(
      r.best.map((g) => g.description),
      ['leverage 1-5x', 'entry confidence >= 80', 'exits by model'],
    );
    // below 0.5: confidence < 60 (0/3), then short (1/3, avg -30/3) before held 2-8h (1/3, avg -10/3)
    assert.deepEqual(
      r.worst.map((g) => g.description),
      ['entry confidence < 60', 'short trades', 'held 2-8h'],
    );
  });

  test('success and failure keywords from the entry reasons', () => {
    const r = analyzePatterns(trades);
    assert.ok(r.enough);
    // breakout: trades 1, 2, 3 all won (3 wins); volume: 1, 2 (2 wins). "above" and "retest" have only 1 winner.
    assert.deepEqual(
      r.successKeywords.map((k) => [k.word, k.trades, k.wins]),
      [
        ['breakout', 3, 3],
        ['volume', 2, 2],
      ],
    );
    // overbought: 4, 5 lost, 6 won → 2 losses of 3 (0.67 > 0.375). pullback/support: 1 loss of 2 (0.5 > 0.375,
    // but fewer than 2 losers)
    assert.deepEqual(
      r.failureKeywords.map((k) => [k.word, k.trades, k.losses]),
      [['overbought', 3, 2]],
    );
  });

  test('a word in every reason says nothing and is not reported', () => {
    const all = trades.map((t) => ({ ...t, entryReason: `${t.entryReason} rsi` }));
    const r = analyzePatterns(all);
    assert.ok(r.enough);
    assert.ok(!r.successKeywords.some((k) => k.word === 'rsi'));
    assert.ok(!r.failureKeywords.some((k) => k.word === 'rsi'));
  });

  test('highlights are English lines with the numbers', () => {
    const r = analyzePatterns(trades);
    assert.ok(r.enough);
    assert.equal(r.highlights[0], 'Overall: 8 trades, 4 wins, 3 losses (win rate 50%).');
    assert.equal(
      r.highlights[1],
      'Best patterns: leverage 1-5x: 2 of 3 won (67%), avg +3.3%; entry confidence >= 80: 2 of 3 won (67%), avg +2.3%; ' +
        'exits by model: 4 of 6 won (67%), avg +1.7%.',
    );
    assert.match(r.highlights[2] ?? '', /^Worst patterns: entry confidence < 60: 0 of 3 won \(0%\), avg -10\.3%;/);
    assert.equal(
      r.highlights[3],
      'Winning entry reasons often mention: "breakout" (3 wins of 3), "volume" (2 wins of 2).',
    );
    assert.equal(r.highlights[4], 'Losing entry reasons often mention: "overbought" (2 losses of 3).');
  });

  test('hour buckets split at 06:00 UTC exactly', () => {
    const five = trades.slice(0, 5);
    const at = (time: number) => five.map((t, i) => (i === 0 ? { ...t, entryTime: time, exitTime: time + HOUR } : t));
    const before = analyzePatterns(at(DAY0 + 6 * HOUR - 1));
    const onEdge = analyzePatterns(at(DAY0 + 6 * HOUR));
    assert.ok(before.enough && onEdge.enough);
    // trades 2 (02:00) and 3 (07:00) stay where they are; trade 1 moves
    assert.equal(group(before.groups, 'hour', '00-06 UTC')?.count, 2);
    assert.equal(group(onEdge.groups, 'hour', '00-06 UTC')?.count, 1);
    assert.equal(group(onEdge.groups, 'hour', '06-12 UTC')?.count, 2);
  });
});

describe('reasonKeywords', () => {
  test('lower-case words of 3+ letters, without stopwords or numbers, each once', () => {
    assert.deepEqual(
      [...reasonKeywords('RSI 28 oversold; bounce off support, the support HOLDS at 61,200 (4h)')],
      ['rsi', 'oversold', 'bounce', 'off', 'support', 'holds'],
    );
  });
});

describe('summarizePeriod', () => {
  test('counts, PnL, best/worst, duration and profit factor by hand', () => {
    // all eight trades: exits between day 0 02:00 (trade 1) and day 1 19:00 (trade 4)
    const s = summarizePeriod(trades, DAY0, DAY0 + 2 * 24 * HOUR);
    assert.equal(s.count, 8);
    assert.equal(s.wins, 4);
    assert.equal(s.losses, 3);
    assert.equal(s.winRate, 0.5);
    // 4 + 6 + 2 - 15 - 16 + 1 - 3 + 0 = -21
    assert.equal(s.totalPnl, -21);
    assert.equal(s.avgPnlPct, -21 / 8);
    assert.equal(s.best?.tradeId, 't2'); // +6
    assert.equal(s.worst?.tradeId, 't5'); // -16
    // held 1 + 3 + 10 + 30 + 5 + 1.5 + 9 + 2 = 61.5 h
    assert.equal(s.avgDurationMs, (61.5 * HOUR) / 8);
    assert.equal(s.grossProfit, 13); // 4 + 6 + 2 + 1
    assert.equal(s.grossLoss, 34); // 15 + 16 + 3
    assert.equal(s.profitFactor, 13 / 34);
    assert.equal(
      s.text,
      // avg hold 61.5 h / 8 = 7.6875 h = 7h 41m
      'Last 2 days: 8 trades, 4 won, 3 lost (win rate 50%), total -21.00 USDT, avg -2.6% of margin, best +6.0%, ' +
        'worst -16.0%, avg hold 7h 41m, profit factor 0.38.',
    );
  });

  test('both ends are inclusive on the exit time', () => {
    const t1Exit = trades[0]?.exitTime ?? 0; // day 0 02:00
    const t2Exit = trades[1]?.exitTime ?? 0; // day 0 05:00
    const s = summarizePeriod(trades, t1Exit, t2Exit);
    assert.deepEqual(
      trades.filter((t) => t.exitTime >= t1Exit && t.exitTime <= t2Exit).map((t) => t.tradeId),
      ['t1', 't2'],
    );
    assert.equal(s.count, 2);
    assert.equal(summarizePeriod(trades, t1Exit + 1, t2Exit - 1).count, 0);
  });

  test('no losses: profit factor is null and the text says why', () => {
    const s = summarizePeriod(trades.slice(0, 3), DAY0, DAY0 + 24 * HOUR);
    assert.equal(s.losses, 0);
    assert.equal(s.profitFactor, null);
    assert.match(s.text, /profit factor n\/a \(no losses\)\.$/);
  });

  test('an empty period', () => {
    const s = summarizeLast30Days(trades, DAY0 - 1);
    assert.equal(s.from, DAY0 - 1 - THIRTY_DAYS_MS);
    assert.equal(s.count, 0);
    assert.equal(s.winRate, null);
    assert.equal(s.best, null);
    assert.equal(s.avgDurationMs, null);
    assert.equal(s.text, 'Last 30 days: no closed trades.');
  });

  test('from after to is an error', () => {
    assert.throws(() => summarizePeriod(trades, 10, 5), /summarizePeriod: from \(10\) must be <= to \(5\)/);
  });
});
