import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { decisionId } from '../../src/core/ids';
import { evaluateTrade, reflectOnTrade, rewardForTrade, reviewTrade } from '../../src/core/learning';
import { tradeRow } from '../../src/core/trade-row';
import type { ClosedTrade } from '../../src/core/types';
import {
  Journal,
  journalContext,
  journalPaths,
  type DecisionEntry,
  type JournalOptions,
  type MissedCandles,
} from '../../src/store/journal';
import { readJsonLines } from '../../src/store/jsonl';
import { Redactor } from '../../src/core/redact';
import { repoRoot } from '../helpers/cli';
import { AS_OF, decisionContext, PAIR } from '../helpers/llm-fixtures';
import { makeTrade } from '../core/learning/make-trade';

const CANDLE = 30 * 60_000;
const OWNER = 'pair:binanceusdm:BTC/USDT:USDT';

/**
 * The journal schema as the first release (schema v1) created it, copied here on purpose: the migration must keep
 * working on files written by that release even if the module's own copy is ever edited.
 */
const V1_SCHEMA = `
CREATE TABLE IF NOT EXISTS decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  owner TEXT NOT NULL,
  pair TEXT NOT NULL,
  time INTEGER NOT NULL,
  tool TEXT NOT NULL,
  source TEXT NOT NULL,
  model TEXT,
  confidence REAL,
  reason TEXT NOT NULL,
  pnl_pct REAL,
  outcome TEXT NOT NULL,
  detail TEXT,
  decision_json TEXT,
  verdict_json TEXT,
  context_json TEXT,
  calls_json TEXT NOT NULL,
  problems_json TEXT NOT NULL,
  notes_json TEXT NOT NULL,
  thinking TEXT,
  tokens_in INTEGER NOT NULL,
  tokens_out INTEGER NOT NULL,
  latency_ms REAL NOT NULL,
  client_order_id TEXT,
  recorded_at INTEGER NOT NULL,
  UNIQUE (owner, pair, time)
);
CREATE INDEX IF NOT EXISTS decisions_pair_time ON decisions (pair, time);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions (time);

CREATE TABLE IF NOT EXISTS trades (
  trade_id TEXT PRIMARY KEY,
  pair TEXT NOT NULL,
  side TEXT NOT NULL,
  entry_time INTEGER NOT NULL,
  exit_time INTEGER NOT NULL,
  entry_price REAL NOT NULL,
  exit_price REAL NOT NULL,
  quantity REAL NOT NULL,
  leverage REAL NOT NULL,
  margin REAL NOT NULL,
  notional REAL NOT NULL,
  pnl REAL NOT NULL,
  pnl_pct REAL NOT NULL,
  fees REAL NOT NULL,
  funding REAL NOT NULL,
  exit_reason TEXT NOT NULL,
  mfe_pct REAL NOT NULL,
  mae_pct REAL NOT NULL,
  holds INTEGER NOT NULL,
  adjustments INTEGER NOT NULL,
  entry_reason TEXT NOT NULL,
  exit_text TEXT NOT NULL,
  trade_score REAL,
  entry_confidence REAL NOT NULL,
  client_order_ids_json TEXT NOT NULL,
  grade TEXT NOT NULL,
  score REAL NOT NULL,
  reward REAL NOT NULL,
  review_json TEXT NOT NULL,
  reflection_json TEXT NOT NULL,
  evaluation_json TEXT NOT NULL,
  reward_json TEXT NOT NULL,
  recorded_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS trades_pair_exit ON trades (pair, exit_time);
CREATE INDEX IF NOT EXISTS trades_exit ON trades (exit_time);

CREATE TABLE IF NOT EXISTS rewards (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  trade_id TEXT NOT NULL UNIQUE,
  pair TEXT NOT NULL,
  time INTEGER NOT NULL,
  reward REAL NOT NULL,
  pnl_pct REAL NOT NULL,
  leverage REAL NOT NULL,
  trade_score REAL
);
`;

/** A baseline wait of OWNER at `time`, in `run`. */
function wait(time: number, run: string, overrides: Partial<DecisionEntry> = {}): DecisionEntry {
  return {
    owner: OWNER,
    pair: PAIR,
    run,
    record: {
      time,
      tool: 'signal_wait',
      reason: 'no clear trend',
      confidence: 55,
      pnlPct: null,
      source: 'baseline',
      outcome: 'none',
      detail: null,
    },
    result: null,
    verdict: null,
    context: null,
    clientOrderId: null,
    ...overrides,
  };
}

function recordTrade(journal: Journal, trade: ClosedTrade, run?: string) {
  return journal.recordTrade(
    trade,
    reviewTrade(trade),
    reflectOnTrade(trade),
    evaluateTrade(trade),
    rewardForTrade(trade),
    run === undefined ? {} : { run },
  );
}

function lines<T = Record<string, unknown>>(file: string): T[] {
  const { records, corrupt } = readJsonLines(file);
  assert.deepEqual(corrupt, [], `${file} has no corrupt lines`);
  return records as T[];
}

function gap(overrides: Partial<MissedCandles> = {}): MissedCandles {
  return {
    owner: OWNER,
    run: 'paper',
    pair: PAIR,
    firstClose: AS_OF,
    lastClose: AS_OF + 29 * CANDLE,
    count: 30,
    reason: 'outage',
    ...overrides,
  };
}

describe('Journal v2', () => {
  let root: string;
  let n = 0;
  const freshDir = () => path.join(root, `data-${++n}`);
  const open = (dataDir: string, extra: Partial<JournalOptions> = {}) =>
    Journal.open({ dataDir, redactor: new Redactor([]), ...extra });

  before(() => {
    root = mkdtempSync(path.join(tmpdir(), 'journal-v2-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a v1 file opens in place: its rows are kept with run "" and their decision ids, and new rows carry a run', () => {
    const dataDir = freshDir();
    const paths = journalPaths(dataDir);
    // what the first release left behind: the v1 tables, one decision, one trade with its reward
    mkdirSync(dataDir, { recursive: true });
    const old = new Database(paths.database);
    old.exec(V1_SCHEMA);
    old.pragma('user_version = 1');
    old
      .prepare(
        `INSERT INTO decisions (owner, pair, time, tool, source, model, confidence, reason, pnl_pct, outcome, detail,
           decision_json, verdict_json, context_json, calls_json, problems_json, notes_json, thinking, tokens_in,
           tokens_out, latency_ms, client_order_id, recorded_at)
         VALUES (?, ?, ?, 'signal_wait', 'baseline', NULL, 55, 'old reason', NULL, 'none', NULL, NULL, NULL, NULL,
           '[]', '[]', '[]', NULL, 0, 0, 0, NULL, 1)`,
      )
      .run(OWNER, PAIR, AS_OF);
    const trade = makeTrade({ tradeId: 'old-trade' });
    const { client_order_ids: ids, ...row } = tradeRow(trade);
    old
      .prepare(
        `INSERT INTO trades (${Object.keys(row).join(', ')}, client_order_ids_json, grade, score, reward, review_json,
           reflection_json, evaluation_json, reward_json, recorded_at)
         VALUES (${Object.keys(row)
           .map((k) => `@${k}`)
           .join(', ')}, @ids, 'B', 70, 0.5, '{}', '{"lessons":["old lesson"]}', '{}', '{}', 2)`,
      )
      .run({ ...row, ids: JSON.stringify(ids) });
    old.close();

    const journal = open(dataDir);
    try {
      const [d] = journal.recentDecisions(PAIR, 5);
      assert.equal(d?.reason, 'old reason');
      assert.equal(d?.run, '');
      assert.equal(d?.decisionId, decisionId(OWNER, PAIR, AS_OF));
      assert.deepEqual(journal.decision(decisionId(OWNER, PAIR, AS_OF))?.reason, 'old reason');
      assert.deepEqual(
        journal.recentTrades(null, 5).map((t) => [t.trade.tradeId, t.run, t.lessons]),
        [['old-trade', '', ['old lesson']]],
      );
      assert.deepEqual(journal.allTrades({ run: '' }), [trade]);
      // the old decision's line was written by the old release: a repeat of its key appends nothing
      assert.equal(journal.recordDecision(wait(AS_OF, '')).inserted, false);
      assert.equal(existsSync(paths.decisionsLog), false);
      assert.equal(journal.recordDecision(wait(AS_OF + CANDLE, 'paper')).inserted, true);
      assert.equal(journal.currentRun(), 'paper');
      // the run with the latest activity first (the old trade exited in 2025)
      assert.deepEqual(journal.runs(), [
        { run: '', decisions: 1, trades: 1, first: AS_OF, last: trade.exitTime },
        { run: 'paper', decisions: 1, trades: 0, first: AS_OF + CANDLE, last: AS_OF + CANDLE },
      ]);
    } finally {
      journal.close();
    }
    const db = new Database(paths.database, { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), 2);
    } finally {
      db.close();
    }
    // opening again is a no-op
    const again = open(dataDir);
    try {
      assert.equal(again.counts().decisions, 2);
      assert.equal(again.counts().trades, 1);
    } finally {
      again.close();
    }
  });

  test('a file of a newer schema is refused, naming the versions', () => {
    const dataDir = freshDir();
    open(dataDir).close();
    const db = new Database(journalPaths(dataDir).database);
    db.pragma('user_version = 3');
    db.close();
    assert.throws(() => open(dataDir), /schema version 3 is newer than this program's \(2\)/);
  });

  test('runs: rows and lines carry their run, queries filter by it, currentRun follows the latest record', () => {
    const dataDir = freshDir();
    const paths = journalPaths(dataDir);
    const journal = open(dataDir);
    try {
      assert.equal(journal.currentRun(), null);
      assert.deepEqual(journal.runs(), []);
      journal.recordDecision(wait(AS_OF, 'paper'));
      journal.recordDecision(wait(AS_OF + CANDLE, 'paper'));
      recordTrade(journal, makeTrade({ tradeId: 'p1', pnlPct: 5 }), 'paper');
      journal.recordDecision(wait(AS_OF, 'replay-7', { owner: 'replay-7:BTC' }));
      recordTrade(journal, makeTrade({ tradeId: 'r1', pnlPct: -3 }), 'replay-7');
      assert.equal(journal.currentRun(), 'replay-7');

      assert.deepEqual(
        journal.recentDecisions(PAIR, 10, { run: 'paper' }).map((d) => [d.run, d.time]),
        [
          ['paper', AS_OF],
          ['paper', AS_OF + CANDLE],
        ],
      );
      assert.equal(journal.recentDecisions(PAIR, 10).length, 3, 'no run: every run');
      assert.deepEqual(
        journal.decisionsSince(null, 0, { run: 'replay-7' }).map((d) => d.owner),
        ['replay-7:BTC'],
      );
      assert.deepEqual(
        journal.recentTrades(null, 10, { run: 'replay-7' }).map((t) => t.trade.tradeId),
        ['r1'],
      );
      assert.deepEqual(
        journal.allTrades({ run: 'paper' }).map((t) => t.tradeId),
        ['p1'],
      );
      assert.equal(journal.winLossBreakdown(null, { run: 'paper' }).wins, 1);
      assert.equal(journal.winLossBreakdown(null, { run: 'paper' }).losses, 0);
      assert.equal(journal.winLossBreakdown(null).count, 2);
      const runs = journal.runs();
      assert.deepEqual(runs.map((r) => [r.run, r.decisions, r.trades]).sort(), [
        ['paper', 2, 1],
        ['replay-7', 1, 1],
      ]);

      journal.recordDecision(wait(AS_OF + 2 * CANDLE, 'paper'));
      assert.equal(journal.currentRun(), 'paper', 'the latest record decides');
    } finally {
      journal.close();
    }
    const decisionLines = lines<{ decision_id: string; run: string; owner: string; timestamp: string }>(
      paths.decisionsLog,
    );
    assert.deepEqual(
      decisionLines.map((l) => [l.run, l.decision_id]),
      [
        ['paper', decisionId(OWNER, PAIR, AS_OF)],
        ['paper', decisionId(OWNER, PAIR, AS_OF + CANDLE)],
        ['replay-7', decisionId('replay-7:BTC', PAIR, AS_OF)],
        ['paper', decisionId(OWNER, PAIR, AS_OF + 2 * CANDLE)],
      ],
    );
    assert.deepEqual(
      lines<{ trade_id: string; run: string }>(paths.tradesLog).map((l) => [l.trade_id, l.run]),
      [
        ['p1', 'paper'],
        ['r1', 'replay-7'],
      ],
    );
  });

  test('a run named "all", or a decision id that is not decisionId(owner, pair, time), is refused', () => {
    const journal = open(freshDir());
    try {
      assert.throws(() => journal.recordDecision(wait(AS_OF, 'all')), /run "all" is reserved/);
      assert.throws(
        () => journal.recordDecision(wait(AS_OF, 'paper', { decisionId: decisionId(OWNER, PAIR, AS_OF + 1) })),
        /is not the id of .*expected d[0-9a-z]+; pass decisionId\(owner, pair, time\)/,
      );
      assert.throws(() => recordTrade(journal, makeTrade(), 'all'), /run "all" is reserved/);
      assert.equal(journal.counts().decisions, 0);
      assert.equal(journal.counts().trades, 0);
    } finally {
      journal.close();
    }
  });

  describe('prompts by decision id', () => {
    test('a decision journaled without context gets the stored prompt, in SQLite and in the JSONL line', () => {
      const dataDir = freshDir();
      const journal = open(dataDir);
      const id = decisionId(OWNER, PAIR, AS_OF);
      const first = journalContext({ ...decisionContext(), asOf: AS_OF });
      const sent = { ...first, messages: [...first.messages, { role: 'user' as const, content: 'repaired once' }] };
      try {
        assert.equal(journal.prompt(id), null);
        journal.recordPrompt({ decisionId: id, owner: OWNER, run: 'paper', pair: PAIR, time: AS_OF, context: first });
        // a retried build replaces it: the last prompt built is the one that was sent
        journal.recordPrompt({ decisionId: id, owner: OWNER, run: 'paper', pair: PAIR, time: AS_OF, context: sent });
        assert.deepEqual(journal.prompt(id), sent);
        journal.recordDecision(wait(AS_OF, 'paper', { decisionId: id }));
        const d = journal.decision(id);
        assert.deepEqual(d?.context, sent);
        assert.equal(d?.decisionId, id);
        assert.deepEqual(journal.recentDecisions(PAIR, 1, { withContext: true })[0]?.context, sent);
        assert.equal(journal.decision('d000000000000nope'), null);
      } finally {
        journal.close();
      }
      const [line] = lines<{ market_context: { messages: unknown; price: number } | null }>(
        journalPaths(dataDir).decisionsLog,
      );
      assert.deepEqual(line?.market_context?.messages, sent.messages);
      assert.equal(line?.market_context?.price, sent.price);
    });

    test('a prompt stored after its decision still shows with the decision', () => {
      const journal = open(freshDir());
      const id = decisionId(OWNER, PAIR, AS_OF);
      const context = journalContext({ ...decisionContext(), asOf: AS_OF });
      try {
        journal.recordDecision(wait(AS_OF, 'paper'));
        assert.equal(journal.decision(id)?.context, null);
        journal.recordPrompt({ decisionId: id, owner: OWNER, run: 'paper', pair: PAIR, time: AS_OF, context });
        assert.deepEqual(journal.decision(id)?.context, context);
      } finally {
        journal.close();
      }
    });

    test('stored prompts are redacted, and a mismatched id is refused', () => {
      const secret = 'sk-live-0123456789abcdef';
      const journal = open(freshDir(), { redactor: new Redactor([secret]) });
      const id = decisionId(OWNER, PAIR, AS_OF);
      const base = journalContext({ ...decisionContext(), asOf: AS_OF });
      const context = { ...base, messages: [{ role: 'system' as const, content: `key ${secret} leaked` }] };
      try {
        journal.recordPrompt({ decisionId: id, owner: OWNER, run: 'paper', pair: PAIR, time: AS_OF, context });
        assert.equal(journal.prompt(id)?.messages[0]?.content, 'key *** leaked');
        assert.throws(
          () =>
            journal.recordPrompt({ decisionId: id, owner: OWNER, run: 'paper', pair: PAIR, time: AS_OF + 1, context }),
          /Journal\.recordPrompt: decisionId .* is not the id of/,
        );
      } finally {
        journal.close();
      }
    });
  });

  describe('missed candles', () => {
    test('one row and one line per gap, a repeat writes nothing; queried by pair and run, totalled per pair', () => {
      const dataDir = freshDir();
      const journal = open(dataDir);
      try {
        assert.deepEqual(journal.recordMissedCandles(gap()), { inserted: true });
        assert.deepEqual(journal.recordMissedCandles(gap()), { inserted: false });
        journal.recordMissedCandles(
          gap({ firstClose: AS_OF + 40 * CANDLE, lastClose: AS_OF + 41 * CANDLE, count: 2, reason: 'stale' }),
        );
        journal.recordMissedCandles(gap({ pair: 'ETH/USDT:USDT', owner: 'pair:binanceusdm:ETH/USDT:USDT', count: 30 }));
        journal.recordMissedCandles(
          gap({ run: 'replay-1', owner: 'replay-1:BTC', count: 5, lastClose: AS_OF + 4 * CANDLE }),
        );
        assert.deepEqual(
          journal.missedCandles({ pair: PAIR, run: 'paper' }).map((m) => [m.firstClose, m.count, m.reason]),
          [
            [AS_OF, 30, 'outage'],
            [AS_OF + 40 * CANDLE, 2, 'stale'],
          ],
        );
        assert.deepEqual(
          journal.missedCandles({ pair: PAIR, since: AS_OF + 30 * CANDLE }).map((m) => m.count),
          [2],
          'since: gaps ending after it',
        );
        assert.deepEqual(journal.missedCandleTotals({ run: 'paper' }), [
          { pair: PAIR, gaps: 2, candles: 32 },
          { pair: 'ETH/USDT:USDT', gaps: 1, candles: 30 },
        ]);
        assert.deepEqual(
          journal.missedCandleTotals().find((t) => t.pair === PAIR),
          { pair: PAIR, gaps: 3, candles: 37 },
        );
      } finally {
        journal.close();
      }
      const logged = lines<{ pair: string; first_close: string; last_close: string; count: number; reason: string }>(
        journalPaths(dataDir).missedCandlesLog,
      );
      assert.equal(logged.length, 4);
      assert.deepEqual(logged[0], {
        timestamp: '2024-01-01T00:30:00.000Z',
        owner: OWNER,
        run: 'paper',
        pair: PAIR,
        first_close: '2024-01-01T00:30:00.000Z',
        last_close: '2024-01-01T15:00:00.000Z',
        count: 30,
        reason: 'outage',
      });
    });

    test('a malformed gap is refused, naming the field', () => {
      const journal = open(freshDir());
      try {
        assert.throws(() => journal.recordMissedCandles(gap({ count: 0 })), /count must be the number of skipped/);
        assert.throws(
          () => journal.recordMissedCandles(gap({ lastClose: AS_OF - 1 })),
          /lastClose .* is before firstClose/,
        );
        assert.throws(
          () => journal.recordMissedCandles(gap({ reason: 'late' as 'stale' })),
          /reason must be one of outage, stale/,
        );
        assert.throws(() => journal.recordMissedCandles(gap({ firstClose: 1.5 })), /firstClose must be a candle close/);
      } finally {
        journal.close();
      }
    });
  });

  describe('JSONL lines under retry', () => {
    test('a crash after the append and before the row is marked: the retry appends no second line', () => {
      const dataDir = freshDir();
      const paths = journalPaths(dataDir);
      const crash = () => {
        throw new Error('simulated crash after the append');
      };
      const crashing = open(dataDir, { onLineAppended: crash });
      try {
        assert.throws(() => crashing.recordDecision(wait(AS_OF, 'paper')), /simulated crash/);
        assert.throws(() => recordTrade(crashing, makeTrade({ tradeId: 't1' }), 'paper'), /simulated crash/);
        assert.throws(() => crashing.recordMissedCandles(gap()), /simulated crash/);
      } finally {
        crashing.close();
      }
      assert.equal(lines(paths.decisionsLog).length, 1, 'the line was appended before the crash');
      const journal = open(dataDir);
      try {
        // other records land in between, as they would while the activity waits for its retry
        journal.recordDecision(wait(AS_OF, 'paper', { pair: 'ETH/USDT:USDT' }));
        assert.equal(journal.recordDecision(wait(AS_OF, 'paper')).inserted, false);
        assert.deepEqual(recordTrade(journal, makeTrade({ tradeId: 't1' }), 'paper'), { inserted: false });
        assert.deepEqual(journal.recordMissedCandles(gap()), { inserted: false });
        // and once the row is marked, nothing is even looked for
        journal.recordDecision(wait(AS_OF, 'paper'));
      } finally {
        journal.close();
      }
      assert.deepEqual(
        lines<{ pair: string }>(paths.decisionsLog).map((l) => l.pair),
        [PAIR, 'ETH/USDT:USDT'],
      );
      assert.equal(lines(paths.tradesLog).length, 1);
      assert.equal(lines(paths.missedCandlesLog).length, 1);
    });

    test('a process killed right after the append: the retry in a new process gives one line', () => {
      const dataDir = freshDir();
      const paths = journalPaths(dataDir);
      const script = path.join(root, `crash-${n}.ts`);
      const journalModule = path.join(repoRoot, 'src/store/journal.ts');
      const redactorModule = path.join(repoRoot, 'src/core/redact.ts');
      writeFileSync(
        script,
        `import { Journal } from ${JSON.stringify(journalModule)};
import { Redactor } from ${JSON.stringify(redactorModule)};
const journal = Journal.open({
  dataDir: ${JSON.stringify(dataDir)},
  redactor: new Redactor([]),
  onLineAppended: () => process.kill(process.pid, 'SIGKILL'),
});
journal.recordDecision(JSON.parse(process.argv[2]));
console.log('not killed');
`,
      );
      const entry = wait(AS_OF, 'paper');
      const child = spawnSync(process.execPath, ['--import', 'tsx', script, JSON.stringify(entry)], {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(child.signal, 'SIGKILL', `the child was killed at the append: ${child.stderr}${child.stdout}`);
      assert.equal(lines(paths.decisionsLog).length, 1);
      const journal = open(dataDir);
      try {
        assert.equal(journal.counts().decisions, 1, 'the row was committed before the append');
        assert.equal(journal.recordDecision(entry).inserted, false);
      } finally {
        journal.close();
      }
      assert.equal(readFileSync(paths.decisionsLog, 'utf8').trim().split('\n').length, 1);
    });
  });
});
