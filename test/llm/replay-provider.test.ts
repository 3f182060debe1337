import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DecisionContext } from '../../src/core/context-types';
import type { DecisionRecord } from '../../src/core/cycle';
import type { Decision, DecisionSource } from '../../src/core/types';
import { ReplayProvider } from '../../src/llm/replay-provider';
import { Journal, journalPaths } from '../../src/store/journal';
import { Redactor } from '../../src/core/redact';
import { AS_OF, decisionContext, PAIR, RSI } from '../helpers/llm-fixtures';

const CANDLE = 30 * 60_000;
const T = (i: number) => AS_OF + i * CANDLE;

/** The decisions of a recorded run: flat at T0..T1, a long from T2, exit at T4; a protective exit at T6. */
const recorded: { time: number; decision: Decision; source: DecisionSource; model: string }[] = [
  {
    time: T(0),
    source: 'openai',
    model: 'gpt-4.1-mini',
    decision: {
      tool: 'signal_wait',
      args: { pair: PAIR, confidence_score: 40, rsi_value: 48, reason: 'no trend yet' },
    },
  },
  {
    time: T(1),
    source: 'openai',
    model: 'gpt-4.1-mini',
    decision: {
      tool: 'signal_entry_long',
      args: {
        pair: PAIR,
        leverage: 4,
        stake_amount: 250,
        confidence_score: 75,
        key_support: 41_800,
        key_resistance: 43_000,
        rsi_value: 56,
        trend_strength: 'strong',
        reason: 'breakout above the range',
      },
    },
  },
  {
    time: T(2),
    source: 'cache',
    model: 'gpt-4.1-mini',
    decision: {
      tool: 'adjust_position',
      args: {
        pair: PAIR,
        adjustment_pct: -50,
        confidence_score: 66,
        key_support: 42_000,
        key_resistance: 43_000,
        reason: 'take half off into resistance',
      },
    },
  },
  {
    time: T(3),
    source: 'baseline',
    model: 'baseline-trend-v1',
    decision: {
      tool: 'signal_hold',
      args: { pair: PAIR, confidence_score: 60, rsi_value: 61, reason: 'trend intact' },
    },
  },
  {
    time: T(4),
    source: 'openai',
    model: 'gpt-4.1-mini',
    decision: {
      tool: 'signal_exit',
      args: {
        pair: PAIR,
        confidence_score: 80,
        rsi_value: 71,
        trade_score: 70,
        reason: 'RSI overbought at resistance',
      },
    },
  },
];

function ctxAt(time: number, hasPosition: boolean): DecisionContext {
  return { ...decisionContext({ hasPosition }), asOf: time };
}

function writeRun(dataDir: string): string {
  const journal = Journal.open({ dataDir, redactor: new Redactor([]) });
  try {
    for (const r of recorded) {
      const record: DecisionRecord = {
        time: r.time,
        tool: r.decision.tool,
        reason: r.decision.args.reason,
        confidence: r.decision.args.confidence_score,
        pnlPct: null,
        source: r.source,
        outcome: 'none',
        detail: null,
      };
      journal.recordDecision({
        owner: 'run-1',
        pair: PAIR,
        record,
        result: {
          decision: r.decision,
          source: r.source,
          model: r.model,
          usage: { input: 1500, output: 60 },
          latencyMs: 900,
          problems: [],
        },
        verdict: null,
        context: null,
        clientOrderId: null,
      });
    }
    journal.recordDecision({
      owner: 'run-1',
      pair: PAIR,
      record: {
        time: T(6),
        tool: 'signal_exit',
        reason: 'emergency stop',
        confidence: null,
        pnlPct: -15.5,
        source: 'protective',
        outcome: 'executed',
        detail: null,
      },
      result: null,
      verdict: null,
      context: null,
      clientOrderId: 'lt1',
    });
  } finally {
    journal.close();
  }
  return journalPaths(dataDir).decisionsLog;
}

describe('ReplayProvider', () => {
  let root: string;
  let log: string;
  before(() => {
    root = mkdtempSync(path.join(tmpdir(), 'replay-'));
    log = writeRun(path.join(root, 'run'));
  });
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  test('gives the recorded decisions back, for the same pair and time, with no usage', async () => {
    const replay = ReplayProvider.fromFile(log);
    const hasPosition = [false, false, true, true, true];
    for (const [i, r] of recorded.entries()) {
      const result = await replay.decide(ctxAt(r.time, hasPosition[i] ?? false));
      assert.deepEqual(result.decision, r.decision, `decision at T${i}`);
      assert.equal(result.source, 'replay');
      assert.equal(result.model, r.model);
      assert.deepEqual(result.usage, { input: 0, output: 0 });
      assert.deepEqual(result.problems, []);
    }
    assert.deepEqual(replay.stats(), {
      recorded: 6,
      duplicates: 0,
      corrupt: 0,
      replayed: 5,
      fallbacks: 0,
      missing: 0,
      noDecision: 0,
      invalid: 0,
    });
  });

  test('no line for the pair and time: a counted fallback saying so (wait when flat, hold in a position)', async () => {
    const replay = ReplayProvider.fromFile(log);
    const flat = await replay.decide(ctxAt(T(5), false));
    assert.equal(flat.source, 'fallback');
    assert.equal(flat.decision.tool, 'signal_wait');
    assert.equal(flat.decision.args.confidence_score, 0);
    assert.equal(flat.decision.args.pair, PAIR);
    assert.equal((flat.decision.args as { rsi_value: number }).rsi_value, RSI);
    const when = new Date(T(5)).toISOString();
    assert.match(flat.decision.args.reason, new RegExp(`no valid decision for BTC/USDT:USDT at ${when}`));
    assert.deepEqual(flat.usage, { input: 0, output: 0 });
    const other = await replay.decide({ ...ctxAt(T(0), true), pair: 'ETH/USDT:USDT' });
    assert.equal(other.decision.tool, 'signal_hold');
    assert.equal(other.source, 'fallback');
    const s = replay.stats();
    assert.deepEqual([s.fallbacks, s.missing, s.replayed], [2, 2, 0]);
  });

  test('a recorded call not allowed in the current state falls back instead of acting', async () => {
    const replay = ReplayProvider.fromFile(log);
    // recorded while flat (an entry); the replayed state has a position: entering again is not allowed
    const drifted = await replay.decide(ctxAt(T(1), true));
    assert.equal(drifted.source, 'fallback');
    assert.equal(drifted.decision.tool, 'signal_hold');
    assert.match(drifted.decision.args.reason, /signal_entry_long is not allowed/);
    // recorded in a position (an exit); the replayed state is flat
    const flatExit = await replay.decide(ctxAt(T(4), false));
    assert.equal(flatExit.decision.tool, 'signal_wait');
    assert.deepEqual([replay.stats().invalid, replay.stats().fallbacks], [2, 2]);
  });

  test('a protective exit in the log has no model decision to replay: fallback', async () => {
    const replay = ReplayProvider.fromFile(log);
    const result = await replay.decide(ctxAt(T(6), true));
    assert.equal(result.source, 'fallback');
    assert.equal(result.decision.tool, 'signal_hold');
    assert.match(result.problems[0] ?? '', /signal_exit by protective without a model decision/);
    assert.equal(replay.stats().noDecision, 1);
  });

  test('corrupt lines are skipped and counted; a later line for the same pair and time wins', async () => {
    const dataDir = path.join(root, 'damaged');
    const file = writeRun(dataDir);
    appendFileSync(file, 'garbage\n{"pair": "BTC/USDT:USDT", "timestamp": "2024-01-0\n{"pair": "BTC/USDT:USDT"}\n');
    // a second run appended to the same log decided differently at T0
    const later = {
      timestamp: new Date(T(0)).toISOString(),
      pair: PAIR,
      action: 'signal_wait',
      decision: { pair: PAIR, confidence_score: 20, rsi_value: 47, reason: 'second run' },
      model: 'other-model',
      source: 'openai',
    };
    appendFileSync(file, `${JSON.stringify(later)}\n`);
    const replay = ReplayProvider.fromFile(file);
    const s = replay.stats();
    assert.equal(s.corrupt, 3);
    assert.deepEqual(
      replay.corruptLines.map((c) => c.line),
      [7, 8, 9],
    );
    assert.match(replay.corruptLines[2]?.error ?? '', /timestamp is missing/);
    assert.equal(s.duplicates, 1);
    const result = await replay.decide(ctxAt(T(0), false));
    assert.equal(result.decision.args.reason, 'second run');
    assert.equal(result.model, 'other-model');
    // the other recorded decisions are still there
    assert.equal((await replay.decide(ctxAt(T(3), true))).decision.tool, 'signal_hold');
  });

  test('a missing log is a clear configuration error', () => {
    assert.throws(() => ReplayProvider.fromFile(path.join(root, 'nope.jsonl')), /llm\.replay_file/);
  });
});
