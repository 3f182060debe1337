import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DecisionLog } from '../../src/backtest/decision-log';
import type { DecisionRecord } from '../../src/core/cycle';
import type { ProviderDecision } from '../../src/llm/provider';

const T = Date.UTC(2025, 6, 1);
const BTC = 'BTC/USDT:USDT';
const ETH = 'ETH/USDT:USDT';
const ACCOUNT = { equity: 10_000, available: 10_000 };

function record(over: Partial<DecisionRecord>): DecisionRecord {
  return {
    time: T,
    tool: 'signal_wait',
    reason: 'no trend',
    confidence: 55,
    pnlPct: null,
    source: 'baseline',
    outcome: 'none',
    detail: null,
    ...over,
  };
}

const entry: ProviderDecision = {
  decision: {
    tool: 'signal_entry_long',
    args: {
      pair: ETH,
      leverage: 5,
      stake_amount: 800,
      confidence_score: 72,
      key_support: 3000.5,
      key_resistance: 3300,
      rsi_value: 58.25,
      trend_strength: 'strong',
      reason: 'breakout',
    },
  },
  source: 'cache',
  model: 'gpt-test',
  usage: { input: 0, output: 0 },
  originalUsage: { input: 2400, output: 120, cachedInput: 1024 },
  latencyMs: 0,
  problems: ['leverage: 12 is above 10; repaired'],
  rounds: 2,
  cached: true,
  droppedFields: ['note'],
};

describe('DecisionLog', () => {
  test('rows read back as result.json documents them: nulls, cache as openai, arguments without pair and reason', () => {
    const log = new DecisionLog(1);
    // a protective exit (no provider), then a cached model entry, then a rejected wait... in the order added
    log.add(
      BTC,
      record({
        tool: 'signal_exit',
        reason: 'emergency stop',
        confidence: null,
        pnlPct: -15.5,
        source: 'protective',
        outcome: 'executed',
      }),
      null,
      { equity: 9_500.25, available: 9_000 },
      'run/BTC/1',
    );
    log.add(
      ETH,
      record({ tool: 'signal_entry_long', reason: 'breakout', confidence: 72, source: 'cache', outcome: 'rejected' }),
      entry,
      { equity: 9_500.25, available: 9_000 },
      null,
    );
    assert.equal(log.length, 2);
    assert.deepEqual(log.at(0), {
      time: T,
      pair: BTC,
      tool: 'signal_exit',
      source: 'protective',
      model: null,
      confidence: null,
      reason: 'emergency stop',
      outcome: 'executed',
      detail: null,
      args: null,
      pnl_pct: -15.5,
      equity: 9_500.25,
      available: 9_000,
      client_order_id: 'run/BTC/1',
      tokens_in: 0,
      tokens_out: 0,
      tokens_cached_in: 0,
      requests: 0,
      problems: [],
      dropped_fields: [],
    });
    const second = log.at(1);
    assert.equal(second.source, 'openai', 'a cache hit is reported as the openai decision it replays');
    assert.equal(second.model, 'gpt-test');
    assert.deepEqual(second.args, {
      leverage: 5,
      stake_amount: 800,
      confidence_score: 72,
      key_support: 3000.5,
      key_resistance: 3300,
      rsi_value: 58.25,
      trend_strength: 'strong',
    });
    assert.deepEqual(
      Object.keys(second.args!),
      Object.keys(second.args!).sort((a, b) => order(a) - order(b)),
    );
    assert.equal(second.tokens_in, 2400, "a cache hit counts the original request's tokens");
    assert.equal(second.tokens_out, 120);
    assert.equal(second.tokens_cached_in, 1024);
    assert.equal(second.requests, 2, "a cache hit counts the original's requests");
    assert.deepEqual(second.dropped_fields, ['note']);
    assert.deepEqual(second.problems, ['leverage: 12 is above 10; repaired']);
    assert.deepEqual(log.totals, { tokensIn: 2400, tokensOut: 120, fallbacks: 0, rejections: 1 });
    assert.throws(() => log.at(2), /decision row 2 is out of range: the log has 2 rows/);
  });

  test('texts come back exactly: empty, non-ASCII, a lone surrogate, longer than a slice; null detail is not ""', () => {
    const texts = ['', 'Überkauft — RSI 78 🚀', 'broken \ud800 pair', 'x'.repeat(10_000) + 'é', 'a'.repeat(70_000)];
    // enough rows for several joined chunks of reasons, and some rows after the last chunk
    const rows = 1_000;
    const reasonOf = (i: number) => (i % 7 === 0 ? texts[(i / 7) % texts.length]! : `row ${i}: ` + 'ab'.repeat(i % 40));
    const log = new DecisionLog(2);
    for (let i = 0; i < rows; i++) {
      // a reason built by concatenation, as the baseline's are
      const reason = reasonOf(i);
      log.add(BTC, record({ reason, detail: i % 2 ? null : reason }), null, ACCOUNT, null);
    }
    for (let i = 0; i < rows; i++) {
      const row = log.at(i);
      assert.equal(row.reason, reasonOf(i), `reason of row ${i}`);
      assert.equal(row.detail, i % 2 ? null : reasonOf(i), `detail of row ${i}`);
    }
  });

  test("a hold's or a wait's arguments come back as given, in their order; arguments are fresh objects", () => {
    const log = new DecisionLog(4);
    const answer = (tool: 'signal_hold' | 'signal_wait', args: Record<string, unknown>): ProviderDecision => ({
      decision: { tool, args } as unknown as ProviderDecision['decision'],
      source: 'openai',
      model: 'gpt-test',
      usage: { input: 10, output: 5 },
      latencyMs: 1,
      problems: [],
    });
    const given: Record<string, unknown>[] = [
      { pair: BTC, confidence_score: 61, rsi_value: 48.25, reason: 'range' },
      // another key order (e.g. from a cache file), extra keys, -0 and a fractional confidence
      { reason: 'range', rsi_value: 12.5, confidence_score: 40, pair: BTC },
      { pair: BTC, confidence_score: 55.5, rsi_value: -0, reason: 'x', note: 'extra' },
      { pair: BTC, confidence_score: 70, rsi_value: 30, reason: 'hold it' },
    ];
    given.forEach((args, i) =>
      log.add(
        BTC,
        record({ tool: i === 3 ? 'signal_hold' : 'signal_wait' }),
        answer(i === 3 ? 'signal_hold' : 'signal_wait', args),
        ACCOUNT,
        null,
      ),
    );
    const expected = given.map((args) => {
      const rest: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(args)) if (k !== 'pair' && k !== 'reason') rest[k] = v;
      return rest;
    });
    given.forEach((_, i) => {
      const args = log.at(i).args!;
      assert.deepEqual(args, expected[i]);
      assert.deepEqual(Object.keys(args), Object.keys(expected[i]!), `key order of row ${i}`);
      assert.equal(JSON.stringify(args), JSON.stringify(expected[i]));
    });
    log.at(0).args!.rsi_value = 99;
    assert.equal(log.at(0).args!.rsi_value, 48.25, 'changing a row read does not change the log');
    log.at(2).args!.note = 'changed';
    assert.equal(log.at(2).args!.note, 'extra');
  });

  test('JSON and iteration give every row in order, past the initial capacity', () => {
    const log = new DecisionLog(16);
    const expected = [];
    for (let i = 0; i < 700; i++) {
      const pair = i % 3 === 0 ? ETH : BTC;
      const r = record({
        time: T + i * 1_800_000,
        reason: `reason ${i}`,
        confidence: i,
        pnlPct: i % 2 ? -0.5 * i : null,
      });
      log.add(pair, r, null, { equity: 10_000 + i, available: 10_000 - i }, i % 5 ? null : `id-${i}`);
      expected.push({
        time: r.time,
        pair,
        tool: 'signal_wait',
        source: 'baseline',
        model: null,
        confidence: i,
        reason: `reason ${i}`,
        outcome: 'none',
        detail: null,
        args: null,
        pnl_pct: i % 2 ? -0.5 * i : null,
        equity: 10_000 + i,
        available: 10_000 - i,
        client_order_id: i % 5 ? null : `id-${i}`,
        tokens_in: 0,
        tokens_out: 0,
        tokens_cached_in: 0,
        requests: 0,
        problems: [],
        dropped_fields: [],
      });
    }
    assert.equal(JSON.stringify(log, null, 2), JSON.stringify(expected, null, 2));
    assert.deepEqual([...log], expected);
    assert.deepEqual(log.toArray(), expected);
  });
});

/** The order of the entry tool's arguments as the model (and the validator) give them. */
function order(key: string): number {
  return Object.keys(entry.decision.args).indexOf(key);
}
