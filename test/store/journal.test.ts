import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ConfigSchema } from '../../src/core/config';
import type { DecisionRecord } from '../../src/core/cycle';
import {
  appendReward,
  emptyRewardHistory,
  evaluateTrade,
  reflectOnTrade,
  rewardForTrade,
  rewardStats,
  reviewTrade,
  type Reflection,
  type RewardHistory,
} from '../../src/core/learning';
import type { ClosedTrade, EntryArgs, HoldArgs, Verdict } from '../../src/core/types';
import type { ProviderDecision } from '../../src/llm/provider';
import {
  DECISIONS_LOG_FILE,
  Journal,
  journalContext,
  journalPaths,
  REWARD_FILE_FORMAT,
  type DecisionEntry,
  type RewardFile,
} from '../../src/store/journal';
import { readJsonLines } from '../../src/store/jsonl';
import { Redactor } from '../../src/core/redact';
import { AS_OF, decisionContext, PAIR } from '../helpers/llm-fixtures';
import { DAY0, HOUR, makeTrade } from '../core/learning/make-trade';

const DAY = 24 * HOUR;
const CANDLE = 30 * 60_000;
const OWNER = 'pair-BTC-USDT-USDT';

const entryArgs: EntryArgs = {
  pair: PAIR,
  leverage: 5,
  stake_amount: null,
  confidence_score: 72,
  key_support: 41_800,
  key_resistance: 42_900,
  rsi_value: 47.5,
  trend_strength: 'medium',
  reason: 'EMA20 above EMA50 with rising ADX',
};

/** A model decision to enter long at `time`, with raw tool calls, thinking and an approved verdict. */
function entryDecision(time: number, overrides: Partial<DecisionEntry> = {}): DecisionEntry {
  const result: ProviderDecision = {
    decision: { tool: 'signal_entry_long', args: entryArgs },
    source: 'openai',
    model: 'gpt-4.1-mini',
    usage: { input: 2100, output: 85 },
    latencyMs: 1234,
    problems: [],
    thinking: 'trend is up',
    rawToolCalls: [{ id: 'call_1', name: 'signal_entry_long', arguments: JSON.stringify(entryArgs), origin: 'native' }],
    notes: [],
    rounds: 1,
  };
  const verdict: Verdict = {
    status: 'approved',
    intent: {
      kind: 'open',
      pair: PAIR,
      side: 'long',
      leverage: 5,
      margin: 1000,
      quantity: 0.118,
      price: 42_150,
      stopPrice: 40_900,
    },
    notes: [],
  };
  const record: DecisionRecord = {
    time,
    tool: 'signal_entry_long',
    reason: entryArgs.reason,
    confidence: 72,
    pnlPct: null,
    source: 'openai',
    outcome: 'executed',
    detail: null,
  };
  return {
    owner: OWNER,
    pair: PAIR,
    record,
    result,
    verdict,
    context: journalContext({ ...decisionContext(), asOf: time }),
    clientOrderId: 'lt0123456789abcdef0',
    ...overrides,
  };
}

/** A baseline hold at `time` with the given leveraged PnL %. */
function holdDecision(time: number, pnlPct: number, reason = 'trend intact, holding'): DecisionEntry {
  const args: HoldArgs = { pair: PAIR, confidence_score: 60, rsi_value: 55, reason };
  return {
    owner: OWNER,
    pair: PAIR,
    record: {
      time,
      tool: 'signal_hold',
      reason,
      confidence: 60,
      pnlPct,
      source: 'baseline',
      outcome: 'none',
      detail: null,
    },
    result: {
      decision: { tool: 'signal_hold', args },
      source: 'baseline',
      model: 'baseline-trend-v1',
      usage: { input: 0, output: 0 },
      latencyMs: 0,
      problems: [],
    },
    verdict: { status: 'none' },
    context: null,
    clientOrderId: null,
  };
}

function record(journal: Journal, trade: ClosedTrade, reflection: Reflection = reflectOnTrade(trade)) {
  return journal.recordTrade(trade, reviewTrade(trade), reflection, evaluateTrade(trade), rewardForTrade(trade));
}

function rowCount(file: string, table: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function jsonlLines(file: string): unknown[] {
  const { records, corrupt } = readJsonLines(file);
  assert.deepEqual(corrupt, [], `${file} has no corrupt lines`);
  return records;
}

function readRewardFile(file: string): RewardFile {
  return JSON.parse(readFileSync(file, 'utf8')) as RewardFile;
}

/** Reference: the history `appendReward` builds from the trades in recording order. */
function referenceHistory(trades: ClosedTrade[], cap?: number): RewardHistory {
  let h = emptyRewardHistory();
  for (const t of trades) {
    h = appendReward(
      h,
      {
        tradeId: t.tradeId,
        pair: t.pair,
        time: t.exitTime,
        reward: rewardForTrade(t).reward,
        pnlPct: t.pnlPct,
        leverage: t.leverage,
        tradeScore: t.tradeScore,
      },
      cap,
    );
  }
  return h;
}

describe('Journal', () => {
  let root: string;
  let n = 0;
  const freshDir = () => path.join(root, `data-${++n}`);
  const open = (dataDir: string, extra: Partial<Parameters<typeof Journal.open>[0]> = {}) =>
    Journal.open({ dataDir, redactor: new Redactor([]), ...extra });

  before(() => {
    root = mkdtempSync(path.join(tmpdir(), 'journal-'));
  });
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  describe('decisions', () => {
    test('land in SQLite and in llm_decisions.jsonl with the original field names', () => {
      const dataDir = freshDir();
      const journal = open(dataDir);
      const entry = entryDecision(AS_OF);
      try {
        assert.deepEqual(journal.recordDecision(entry), { inserted: true, id: 1 });
      } finally {
        journal.close();
      }
      const paths = journalPaths(dataDir);
      assert.equal(paths.decisionsLog, path.join(path.resolve(dataDir), 'logs', DECISIONS_LOG_FILE));
      const [line, ...rest] = jsonlLines(paths.decisionsLog) as Record<string, unknown>[];
      assert.equal(rest.length, 0);
      assert.ok(line);
      for (const field of [
        'timestamp',
        'pair',
        'action',
        'decision',
        'reasoning',
        'confidence',
        'market_context',
        'function_calls',
        'tokens',
        'latency_ms',
        'model',
        'source',
        'outcome',
      ]) {
        assert.ok(field in line, `the line has ${field}`);
      }
      assert.equal(line.timestamp, '2024-01-01T00:30:00.000Z');
      assert.equal(line.pair, PAIR);
      assert.equal(line.action, 'signal_entry_long');
      assert.deepEqual(line.decision, entryArgs);
      assert.equal(line.reasoning, entryArgs.reason);
      assert.equal(line.confidence, 72);
      const market = line.market_context as { price: number; messages: unknown; prompt_tokens: unknown };
      assert.equal(market.price, 42_150);
      assert.deepEqual(market.messages, decisionContext().messages);
      assert.deepEqual(line.function_calls, entry.result?.rawToolCalls);
      assert.deepEqual(line.tokens, { input: 2100, output: 85 });
      assert.equal(line.latency_ms, 1234);
      assert.equal(line.model, 'gpt-4.1-mini');
      assert.equal(line.source, 'openai');
      assert.equal(line.outcome, 'executed');

      const reopened = open(dataDir);
      try {
        const [d] = reopened.recentDecisions(PAIR, 5, { withContext: true });
        assert.ok(d);
        assert.equal(d.time, AS_OF);
        assert.equal(d.owner, OWNER);
        assert.deepEqual(d.decision, entry.result?.decision);
        assert.deepEqual(d.verdict, entry.verdict);
        assert.deepEqual(d.context, entry.context);
        assert.equal(d.thinking, 'trend is up');
        assert.deepEqual([d.tokensIn, d.tokensOut, d.latencyMs], [2100, 85, 1234]);
        assert.equal(d.clientOrderId, 'lt0123456789abcdef0');
        assert.deepEqual(d.functionCalls, entry.result?.rawToolCalls);
        assert.equal(reopened.recentDecisions(PAIR, 5)[0]?.context, null, 'the prompt only when asked for');
      } finally {
        reopened.close();
      }
    });

    test('a repeat of the same cycle (owner, pair, time) writes no second row or line', () => {
      const dataDir = freshDir();
      const journal = open(dataDir);
      try {
        assert.equal(journal.recordDecision(entryDecision(AS_OF)).inserted, true);
        const retry = journal.recordDecision(entryDecision(AS_OF, { clientOrderId: 'other' }));
        assert.deepEqual(retry, { inserted: false, id: null });
        // the same time under another owner (another run) or for another pair is another decision
        assert.equal(journal.recordDecision(entryDecision(AS_OF, { owner: 'backtest-1' })).inserted, true);
        assert.equal(journal.recordDecision(entryDecision(AS_OF + CANDLE)).inserted, true);
        assert.equal(journal.counts().decisions, 3);
      } finally {
        journal.close();
      }
      const paths = journalPaths(dataDir);
      assert.equal(rowCount(paths.database, 'decisions'), 3);
      assert.equal(jsonlLines(paths.decisionsLog).length, 3);
    });

    test('when the line cannot be appended the row stays (unlogged), and a retry appends the line once', () => {
      const dataDir = freshDir();
      const paths = journalPaths(dataDir);
      mkdirSync(paths.decisionsLog, { recursive: true }); // a folder where the log file should be
      const journal = open(dataDir);
      try {
        assert.throws(() => journal.recordDecision(entryDecision(AS_OF)), /llm_decisions\.jsonl/);
        assert.equal(journal.counts().decisions, 1, 'the row is committed before the line');
        rmSync(paths.decisionsLog, { recursive: true });
        assert.equal(journal.recordDecision(entryDecision(AS_OF)).inserted, false);
        assert.equal(journal.counts().decisions, 1);
        // once logged, a further repeat appends nothing
        journal.recordDecision(entryDecision(AS_OF));
      } finally {
        journal.close();
      }
      assert.equal(jsonlLines(paths.decisionsLog).length, 1);
    });

    test('with log_decisions off the row is kept and no line is written', () => {
      const dataDir = freshDir();
      const journal = open(dataDir, { logDecisions: false });
      try {
        journal.recordDecision(entryDecision(AS_OF));
        assert.equal(journal.counts().decisions, 1);
      } finally {
        journal.close();
      }
      assert.equal(existsSync(journalPaths(dataDir).decisionsLog), false);
    });

    test('a protective exit (no provider result) is journaled with decision null', () => {
      const dataDir = freshDir();
      const journal = open(dataDir);
      try {
        journal.recordDecision({
          owner: OWNER,
          pair: PAIR,
          record: {
            time: AS_OF,
            tool: 'signal_exit',
            reason: 'emergency stop: -15.2% of margin',
            confidence: null,
            pnlPct: -15.2,
            source: 'protective',
            outcome: 'executed',
            detail: null,
          },
          result: null,
          verdict: null,
          context: null,
          clientOrderId: 'lt0',
        });
        const [d] = journal.recentDecisions(PAIR, 1);
        assert.equal(d?.source, 'protective');
        assert.equal(d?.decision, null);
      } finally {
        journal.close();
      }
      const [line] = jsonlLines(journalPaths(dataDir).decisionsLog) as Record<string, unknown>[];
      assert.equal(line?.decision, null);
      assert.equal(line?.market_context, null);
      assert.deepEqual(line?.function_calls, []);
      assert.deepEqual(line?.tokens, { input: 0, output: 0 });
    });

    test('rejects an entry without owner or with a non-integer time, naming the field', () => {
      const journal = open(freshDir());
      try {
        assert.throws(() => journal.recordDecision(entryDecision(AS_OF, { owner: '' })), /owner must be/);
        assert.throws(() => journal.recordDecision(entryDecision(AS_OF + 0.5)), /record\.time must be/);
      } finally {
        journal.close();
      }
    });

    test('recentDecisions and decisionsSince filter by pair and time, oldest first', () => {
      const journal = open(freshDir());
      try {
        for (let i = 0; i < 4; i++) journal.recordDecision(holdDecision(AS_OF + i * CANDLE, 1));
        journal.recordDecision({ ...holdDecision(AS_OF + CANDLE, 1), pair: 'ETH/USDT:USDT' });
        assert.deepEqual(
          journal.recentDecisions(PAIR, 2).map((d) => d.time),
          [AS_OF + 2 * CANDLE, AS_OF + 3 * CANDLE],
        );
        assert.equal(journal.recentDecisions(null, 10).length, 5);
        assert.deepEqual(
          journal.decisionsSince(PAIR, AS_OF + CANDLE).map((d) => d.time),
          [AS_OF + 2 * CANDLE, AS_OF + 3 * CANDLE],
        );
        assert.deepEqual(
          journal.decisionsSince(null, AS_OF).map((d) => [d.pair, d.time]),
          [
            [PAIR, AS_OF + CANDLE],
            ['ETH/USDT:USDT', AS_OF + CANDLE],
            [PAIR, AS_OF + 2 * CANDLE],
            [PAIR, AS_OF + 3 * CANDLE],
          ],
        );
        assert.equal(journal.decisionsSince(PAIR, AS_OF, { limit: 1 }).length, 1);
        // a provider without a model (baseline) is logged as one call of its decision
        const hold = holdDecision(AS_OF, 1);
        assert.deepEqual(journal.recentDecisions(PAIR, 1)[0]?.functionCalls, [
          { id: null, name: 'signal_hold', arguments: hold.result?.decision.args, origin: null },
        ]);
      } finally {
        journal.close();
      }
    });
  });

  describe('trades and rewards', () => {
    test('a trade recorded twice gives one row, one JSONL line and one reward entry', () => {
      const dataDir = freshDir();
      const journal = open(dataDir);
      const trade = makeTrade({ tradeId: 't-1' });
      try {
        assert.deepEqual(record(journal, trade), { inserted: true });
        assert.deepEqual(record(journal, trade), { inserted: false });
      } finally {
        journal.close();
      }
      const paths = journalPaths(dataDir);
      assert.equal(rowCount(paths.database, 'trades'), 1);
      assert.equal(rowCount(paths.database, 'rewards'), 1);
      const lines = jsonlLines(paths.tradesLog) as Record<string, unknown>[];
      assert.equal(lines.length, 1);
      const line = lines[0] ?? {};
      // the original's trade fields: profit, leverage, stake, duration, drawdown, lessons
      assert.equal(line.trade_id, 't-1');
      assert.equal(line.profit_pct, 6.2);
      assert.equal(line.profit_usdt, 12.4); // 6.2 % of 200 USDT margin
      assert.equal(line.leverage, 10);
      assert.equal(line.stake, 200);
      assert.equal(line.duration_minutes, 330); // 5h 30m
      assert.equal(line.max_drawdown_pct, -2.3);
      assert.deepEqual(line.lessons, reflectOnTrade(trade).lessons);
      const file = readRewardFile(paths.rewardFile);
      assert.equal(file.count, 1);
      assert.equal(file.entries.length, 1);
    });

    test('reward_learning.json is valid after every write and equals the appendReward history', () => {
      const dataDir = freshDir();
      const paths = journalPaths(dataDir);
      const journal = open(dataDir);
      const trades = [
        makeTrade({ tradeId: 'r1', pnlPct: 6.2 }),
        makeTrade({ tradeId: 'r2', pnlPct: -4, mfePct: 1, maePct: -5, exitReason: 'model', tradeScore: 30 }),
        makeTrade({ tradeId: 'r3', pnlPct: 2, leverage: 3, tradeScore: null, exitReason: 'force_exit' }),
        makeTrade({ tradeId: 'r4', pnlPct: -1, mfePct: 0.5, maePct: -1.5 }),
      ];
      try {
        trades.forEach((t, i) => {
          record(journal, t);
          const file = readRewardFile(paths.rewardFile); // throws when not valid JSON
          const expected = referenceHistory(trades.slice(0, i + 1));
          assert.equal(file.format, REWARD_FILE_FORMAT);
          assert.deepEqual({ entries: file.entries, count: file.count, total: file.total }, expected);
          assert.deepEqual(file.stats, rewardStats(expected));
          assert.deepEqual(journal.rewardHistory(), expected);
        });
      } finally {
        journal.close();
      }
    });

    test('the reward file keeps the last `cap` entries while count and total stay all-time', () => {
      const dataDir = freshDir();
      const journal = open(dataDir, { rewardHistoryCap: 2 });
      const trades = [1, 2, 3].map((i) => makeTrade({ tradeId: `c${i}`, pnlPct: i }));
      try {
        for (const t of trades) record(journal, t);
        const expected = referenceHistory(trades, 2);
        assert.deepEqual(
          expected.entries.map((e) => e.tradeId),
          ['c2', 'c3'],
        );
        assert.equal(expected.count, 3);
        assert.deepEqual(journal.rewardHistory(), expected);
      } finally {
        journal.close();
      }
    });

    test('a failed reward-file write records nothing and leaves the old file intact; a retry records once', () => {
      const dataDir = freshDir();
      const paths = journalPaths(dataDir);
      const journal = open(dataDir);
      try {
        record(journal, makeTrade({ tradeId: 'a' }));
        const before = readFileSync(paths.rewardFile, 'utf8');
        // The writer's temporary file cannot be created: a folder is in its way (a crash mid-write in effect).
        const temp = `${paths.rewardFile}.${process.pid}.tmp`;
        mkdirSync(temp);
        assert.throws(() => record(journal, makeTrade({ tradeId: 'b' })), /reward_learning\.json/);
        assert.equal(readFileSync(paths.rewardFile, 'utf8'), before, 'the reward file is untouched');
        assert.equal(journal.counts().trades, 1);
        assert.equal(jsonlLines(paths.tradesLog).length, 1, 'no line for the failed trade');
        rmSync(temp, { recursive: true });
        assert.deepEqual(record(journal, makeTrade({ tradeId: 'b' })), { inserted: true });
        assert.equal(readRewardFile(paths.rewardFile).count, 2);
      } finally {
        journal.close();
      }
      assert.deepEqual(
        (jsonlLines(paths.tradesLog) as { trade_id: string }[]).map((l) => l.trade_id),
        ['a', 'b'],
      );
    });

    test('a failed trade-log append keeps the trade and its reward; a retry appends its line once', () => {
      const dataDir = freshDir();
      const paths = journalPaths(dataDir);
      const journal = open(dataDir);
      try {
        record(journal, makeTrade({ tradeId: 'a' }));
        const firstLine = readFileSync(paths.tradesLog, 'utf8');
        rmSync(paths.tradesLog);
        mkdirSync(paths.tradesLog); // the trade log cannot be appended to
        assert.throws(() => record(journal, makeTrade({ tradeId: 'b' })), /trade_experience\.jsonl/);
        assert.equal(journal.counts().trades, 2);
        assert.deepEqual(
          readRewardFile(paths.rewardFile).entries.map((e) => e.tradeId),
          ['a', 'b'],
        );
        rmSync(paths.tradesLog, { recursive: true });
        writeFileSync(paths.tradesLog, firstLine);
        assert.deepEqual(record(journal, makeTrade({ tradeId: 'b' })), { inserted: false });
        assert.deepEqual(record(journal, makeTrade({ tradeId: 'b' })), { inserted: false });
        assert.equal(readRewardFile(paths.rewardFile).count, 2, 'no second reward entry');
      } finally {
        journal.close();
      }
      assert.deepEqual(
        (jsonlLines(paths.tradesLog) as { trade_id: string }[]).map((l) => l.trade_id),
        ['a', 'b'],
      );
    });

    test('a temporary file left by a crashed writer does not affect the reward file and is cleaned up', () => {
      const dataDir = freshDir();
      const paths = journalPaths(dataDir);
      let journal = open(dataDir);
      record(journal, makeTrade({ tradeId: 'a' }));
      journal.close();
      const leftover = `${paths.rewardFile}.99999.tmp`;
      writeFileSync(leftover, '{"format": "llm-trader reward history v1", "entries": [{"tradeId": "a", "rew');
      const anHourAgo = new Date(Date.now() - HOUR);
      utimesSync(leftover, anHourAgo, anHourAgo);
      const fresh = `${paths.rewardFile}.99998.tmp`; // another writer may be using this one right now
      writeFileSync(fresh, '{');
      journal = open(dataDir);
      try {
        assert.equal(existsSync(leftover), false, 'the stale temporary file was removed');
        assert.equal(existsSync(fresh), true, 'a recent temporary file is left alone');
        assert.equal(readRewardFile(paths.rewardFile).count, 1);
        record(journal, makeTrade({ tradeId: 'b' }));
        assert.equal(readRewardFile(paths.rewardFile).count, 2);
      } finally {
        journal.close();
      }
    });

    test('a reward file this journal did not write is set aside, not overwritten', () => {
      const dataDir = freshDir();
      const paths = journalPaths(dataDir);
      mkdirSync(paths.logsDir, { recursive: true });
      const original = '{"rewards": [0.1, -0.2], "cumulative": -0.1}';
      writeFileSync(paths.rewardFile, original);
      const journal = open(dataDir);
      try {
        const aside = readdirSync(paths.logsDir).filter((f) => f.startsWith('reward_learning.json.unrecognised-'));
        assert.equal(aside.length, 1);
        assert.equal(readFileSync(path.join(paths.logsDir, aside[0] ?? ''), 'utf8'), original);
        record(journal, makeTrade({ tradeId: 'a' }));
        assert.equal(readRewardFile(paths.rewardFile).count, 1);
      } finally {
        journal.close();
      }
    });

    test('rejects a review of another trade and an inconsistent trade', () => {
      const journal = open(freshDir());
      try {
        const a = makeTrade({ tradeId: 'a' });
        const b = makeTrade({ tradeId: 'b' });
        assert.throws(
          () => journal.recordTrade(a, reviewTrade(b), reflectOnTrade(a), evaluateTrade(a), rewardForTrade(a)),
          /review is of trade b, not of a/,
        );
        const bad = { ...a, margin: 0 };
        assert.throws(
          () => journal.recordTrade(bad, reviewTrade(a), reflectOnTrade(a), evaluateTrade(a), rewardForTrade(a)),
          /margin/,
        );
        assert.equal(journal.counts().trades, 0);
      } finally {
        journal.close();
      }
    });

    test('allTrades returns the recorded trades unchanged, by exit time', () => {
      const journal = open(freshDir());
      try {
        const late = makeTrade({ tradeId: 'late', entryTime: DAY0 + DAY, clientOrderIds: ['x1', 'x2'] });
        const early = makeTrade({ tradeId: 'early', side: 'short', tradeScore: null, exitReason: 'stop' });
        record(journal, late);
        record(journal, early);
        assert.deepEqual(journal.allTrades(), [early, late]);
      } finally {
        journal.close();
      }
    });
  });

  describe('learning queries', () => {
    const ETH = 'ETH/USDT:USDT';

    test('recentTrades: the last n of the pair, oldest first, with the recorded lessons and grade', () => {
      const journal = open(freshDir());
      try {
        for (let i = 1; i <= 4; i++) {
          const trade = makeTrade({ tradeId: `b${i}`, entryTime: DAY0 + i * DAY });
          const reflection: Reflection = { ...reflectOnTrade(trade), lessons: [`lesson of b${i}`] };
          record(journal, trade, reflection);
        }
        record(journal, makeTrade({ tradeId: 'e1', pair: ETH, entryTime: DAY0 + 10 * DAY }));
        const recent = journal.recentTrades(PAIR, 2);
        assert.deepEqual(
          recent.map((r) => [r.trade.tradeId, r.lessons]),
          [
            ['b3', ['lesson of b3']],
            ['b4', ['lesson of b4']],
          ],
        );
        assert.equal(recent[0]?.grade, evaluateTrade(makeTrade()).grade);
        assert.equal(recent[0]?.reward, rewardForTrade(makeTrade()).reward);
        assert.deepEqual(
          journal.recentTrades(null, 2).map((r) => r.trade.tradeId),
          ['b4', 'e1'],
        );
      } finally {
        journal.close();
      }
    });

    test('30-day summary: trades exiting exactly at both window edges count, one ms outside does not', () => {
      const journal = open(freshDir());
      const asOf = DAY0 + 40 * DAY;
      const from = asOf - 30 * DAY;
      // margin 100 makes pnl (USDT) equal pnlPct
      const exits: [string, number, number][] = [
        ['before', from - 1, 50],
        ['at-start', from, 4],
        ['inside', from + 10 * DAY, -3],
        ['at-end', asOf, 2],
        ['after', asOf + 1, 70],
      ];
      try {
        for (const [id, exitTime, pnlPct] of exits) {
          record(
            journal,
            makeTrade({
              tradeId: id,
              entryTime: exitTime - 2 * HOUR,
              exitTime,
              margin: 100,
              pnlPct,
              mfePct: 5,
              maePct: -4,
            }),
          );
        }
        const s = journal.last30Days(PAIR, asOf);
        assert.equal(s.count, 3); // at-start, inside, at-end
        assert.equal(s.wins, 2);
        assert.equal(s.losses, 1);
        assert.equal(s.totalPnl, 4 - 3 + 2);
        assert.equal(s.best?.tradeId, 'at-start');
        assert.equal(s.worst?.tradeId, 'inside');
        assert.equal(s.grossProfit, 6);
        assert.equal(s.grossLoss, 3);
        assert.equal(journal.last30Days(ETH, asOf).count, 0);
        assert.equal(journal.periodSummary(null, from - 1, asOf + 1).count, 5);
        assert.throws(() => journal.periodSummary(PAIR, asOf, from), /from .* must be <= to/);
      } finally {
        journal.close();
      }
    });

    test('win/loss breakdown overall, by side and by exit reason', () => {
      const journal = open(freshDir());
      // margin 100: pnl = pnlPct
      const rows: [string, 'long' | 'short', number, ClosedTrade['exitReason']][] = [
        ['w1', 'long', 10, 'model'],
        ['l1', 'long', -5, 'emergency_stop'],
        ['z1', 'short', 0, 'model'],
        ['w2', 'short', 3, 'model'],
        ['l2', 'short', -2, 'stop'],
      ];
      try {
        rows.forEach(([id, side, pnlPct, exitReason], i) =>
          record(
            journal,
            makeTrade({
              tradeId: id,
              side,
              margin: 100,
              pnlPct,
              mfePct: Math.max(pnlPct, 0),
              maePct: Math.min(pnlPct, 0),
              exitReason,
              entryTime: DAY0 + i * DAY,
            }),
          ),
        );
        record(journal, makeTrade({ tradeId: 'eth', pair: ETH, pnlPct: 9 }));
        const b = journal.winLossBreakdown(PAIR);
        assert.equal(b.count, 5);
        assert.equal(b.wins, 2);
        assert.equal(b.losses, 2);
        assert.equal(b.breakeven, 1);
        assert.equal(b.winRate, 2 / 5);
        assert.equal(b.totalPnl, 10 - 5 + 0 + 3 - 2);
        assert.equal(b.avgPnlPct, 6 / 5);
        assert.equal(b.avgWinPct, (10 + 3) / 2);
        assert.equal(b.avgLossPct, (-5 - 2) / 2);
        assert.deepEqual(b.bySide.long, {
          count: 2,
          wins: 1,
          losses: 1,
          breakeven: 0,
          winRate: 0.5,
          totalPnl: 5,
          avgPnlPct: 2.5,
        });
        assert.deepEqual(b.bySide.short, {
          count: 3,
          wins: 1,
          losses: 1,
          breakeven: 1,
          winRate: 1 / 3,
          totalPnl: 1,
          avgPnlPct: 1 / 3,
        });
        assert.deepEqual(Object.keys(b.byExitReason).sort(), ['emergency_stop', 'model', 'stop']);
        assert.deepEqual(
          [b.byExitReason.model?.count, b.byExitReason.model?.wins, b.byExitReason.model?.breakeven],
          [3, 2, 1],
        );
        assert.equal(b.byExitReason.stop?.losses, 1);
        assert.equal(journal.winLossBreakdown(null).count, 6);
        const empty = journal.winLossBreakdown('SOL/USDT:USDT');
        assert.deepEqual([empty.count, empty.winRate, empty.avgWinPct, empty.avgLossPct], [0, null, null, null]);
      } finally {
        journal.close();
      }
    });

    test('patterns need five trades of the pair and only count trades exited by asOf', () => {
      const journal = open(freshDir());
      try {
        for (let i = 0; i < 5; i++) record(journal, makeTrade({ tradeId: `p${i}`, entryTime: DAY0 + i * DAY }));
        record(journal, makeTrade({ tradeId: 'eth', pair: ETH }));
        const report = journal.patterns(PAIR);
        assert.equal(report.enough, true);
        assert.equal(report.tradeCount, 5);
        const lastExit = DAY0 + 4 * DAY + 5.5 * HOUR; // makeTrade holds 5h 30m
        const before = journal.patterns(PAIR, lastExit - 1);
        assert.equal(before.enough, false);
        assert.equal(before.tradeCount, 4);
        assert.equal(journal.patterns(null).tradeCount, 6);
      } finally {
        journal.close();
      }
    });

    test('learningContext: trades exited by now (pair only when configured), warnings from decisions before now', () => {
      const journal = open(freshDir());
      const now = DAY0 + 20 * DAY;
      try {
        for (let i = 1; i <= 3; i++) record(journal, makeTrade({ tradeId: `b${i}`, entryTime: DAY0 + i * DAY }));
        record(journal, makeTrade({ tradeId: 'eth', pair: ETH, entryTime: DAY0 + 5 * DAY }));
        // exits after `now`: a backtest must not learn from the future
        record(journal, makeTrade({ tradeId: 'future', entryTime: now - HOUR, exitTime: now + HOUR }));
        // six holds before now, PnL within a 3-point band (1 % and 2 %): "no progress"; distinct reasons, so no loop
        // warning. The decision at `now` is not before now and must not be counted (the message says 6, not 7).
        const reasons = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];
        reasons.forEach((reason, k) =>
          journal.recordDecision(holdDecision(now - (6 - k) * CANDLE, 1 + (k % 2), reason)),
        );
        journal.recordDecision(holdDecision(now, 1.5));

        const exp = { max_recent_trades_context: 2, include_pair_specific_trades: true };
        const ctx = journal.learningContext(PAIR, now, exp);
        assert.deepEqual(
          ctx.recentTrades.map((t) => [t.pair, t.exitTime]),
          [
            // makeTrade holds 5h 30m
            [PAIR, DAY0 + 2 * DAY + 5.5 * HOUR],
            [PAIR, DAY0 + 3 * DAY + 5.5 * HOUR],
          ],
        );
        assert.deepEqual(ctx.recentTrades[1]?.lessons, reflectOnTrade(makeTrade()).lessons);
        assert.match(ctx.summary ?? '', /^Last 30 days: 3 trades, 3 won/);
        assert.deepEqual(ctx.patterns, [], 'three trades are below the pattern minimum');
        assert.equal(ctx.warnings.length, 1);
        assert.match(ctx.warnings[0] ?? '', /^No progress: your last 6 decisions were holds/);

        const all = journal.learningContext(PAIR, now, { ...exp, include_pair_specific_trades: false });
        assert.deepEqual(
          all.recentTrades.map((t) => t.pair),
          [PAIR, ETH],
        );
        assert.match(all.summary ?? '', /^Last 30 days: 4 trades/);

        const none = journal.learningContext('SOL/USDT:USDT', now, exp);
        assert.deepEqual(none, { recentTrades: [], summary: null, patterns: [], warnings: [] });
      } finally {
        journal.close();
      }
    });
  });

  describe('secrets (acceptance)', () => {
    const KEY = 'sk-test-LEAKCHECK-0123456789abcdefXYZ';
    const EXCHANGE_SECRET = 'exsecret-LEAKCHECK-9876543210';
    const TEMPORAL_KEY = 'temporal-LEAKCHECK-abcdef012345';

    /** Every file under `dir` (database, WAL, logs, temporary files). */
    function allFiles(dir: string): string[] {
      const out: string[] = [];
      for (const name of readdirSync(dir)) {
        const p = path.join(dir, name);
        if (statSync(p).isDirectory()) out.push(...allFiles(p));
        else out.push(p);
      }
      return out;
    }

    function assertNoSecretIn(dir: string): number {
      const files = allFiles(dir);
      for (const file of files) {
        const bytes = readFileSync(file);
        for (const secret of [KEY, EXCHANGE_SECRET, TEMPORAL_KEY]) {
          assert.equal(bytes.includes(Buffer.from(secret, 'utf8')), false, `${secret} found in ${file}`);
          assert.equal(bytes.includes(Buffer.from(secret, 'utf16le')), false, `${secret} (UTF-16) found in ${file}`);
        }
      }
      return files.length;
    }

    test('a fake key in config and in careless free text never reaches SQLite, JSONL or the reward file', () => {
      const dataDir = freshDir();
      const config = ConfigSchema.parse({
        data_dir: dataDir,
        llm: { api_key: KEY },
        exchange: { api_key: 'exkey-LEAKCHECK-000111222333', api_secret: EXCHANGE_SECRET },
      });
      const journal = Journal.fromConfig(config, { TEMPORAL_API_KEY: TEMPORAL_KEY });
      const leak = `auth failed for key ${KEY} (secret ${EXCHANGE_SECRET}, temporal ${TEMPORAL_KEY})`;
      const entry = entryDecision(AS_OF);
      const careless: DecisionEntry = {
        ...entry,
        record: { ...entry.record, reason: `My reason quotes ${KEY}`, detail: leak },
        result: {
          ...(entry.result as ProviderDecision),
          decision: { tool: 'signal_entry_long', args: { ...entryArgs, reason: `My reason quotes ${KEY}` } },
          thinking: `thinking about ${KEY}`,
          problems: [leak],
          notes: [leak],
          rawToolCalls: [{ id: KEY, name: 'signal_entry_long', arguments: `{"reason":"${KEY}"}`, origin: 'text' }],
        },
        verdict: { status: 'rejected', reasons: [leak] },
        context: {
          ...(entry.context as NonNullable<DecisionEntry['context']>),
          messages: [{ role: 'user', content: `Authorization: Bearer ${KEY}` }],
        },
        clientOrderId: KEY,
      };
      const trade = makeTrade({ tradeId: 'leak-1', entryReason: `entry ${KEY}`, exitText: leak });
      try {
        journal.recordDecision(careless);
        journal.recordDecision({ ...holdDecision(AS_OF + CANDLE, 1), owner: `owner-${KEY}` });
        journal.recordTrade(
          trade,
          reviewTrade(trade),
          reflectOnTrade(trade),
          evaluateTrade(trade),
          rewardForTrade(trade),
        );
        assertNoSecretIn(dataDir); // while the WAL holds the writes
        // the text was redacted, not dropped
        const [d] = journal.recentDecisions(PAIR, 2);
        assert.equal(d?.reason, 'My reason quotes ***');
        assert.equal(journal.allTrades()[0]?.entryReason, 'entry ***');
      } finally {
        journal.close();
      }
      const files = assertNoSecretIn(dataDir);
      assert.ok(files >= 4, 'journal.sqlite, llm_decisions.jsonl, trade_experience.jsonl, reward_learning.json');
      const [line] = jsonlLines(journalPaths(dataDir).decisionsLog) as { reasoning: string; detail: string }[];
      assert.equal(line?.reasoning, 'My reason quotes ***');
      assert.equal(line?.detail, 'auth failed for key *** (secret ***, temporal ***)');
    });
  });
});

describe('Redactor', () => {
  test('replaces every configured value, longest first, in strings and object keys', () => {
    const r = new Redactor(['abcdefgh', 'abcdefgh-longer', 'short', '']);
    assert.equal(r.size, 2, 'values under 8 characters are not secrets');
    assert.equal(r.redact('x abcdefgh-longer y abcdefgh z short'), 'x *** y *** z short');
    assert.deepEqual(r.redactDeep({ abcdefgh: ['abcdefgh!', 3, null, { k: 'v abcdefgh' }] }), {
      '***': ['***!', 3, null, { k: 'v ***' }],
    });
  });

  test('fromConfig collects the config keys and the secret environment variables', () => {
    const config = ConfigSchema.parse({
      llm: { api_key: 'llm-key-12345678' },
      exchange: { api_secret: 'ex-secret-1234' },
    });
    const r = Redactor.fromConfig(config, { TEMPORAL_API_KEY: 'temporal-key-1234', HOME: '/home/someone' });
    assert.equal(
      r.redact('llm-key-12345678 ex-secret-1234 temporal-key-1234 /home/someone'),
      '*** *** *** /home/someone',
    );
  });
});
