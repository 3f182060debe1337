import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ApplicationFailure } from '@temporalio/common';
import { ConfigSchema, type Config } from '../../src/core/config';
import { createActivityRuntime, type ActivityRuntime } from '../../src/activities';
import { initialPairState, runCycle, type CycleSteps, type PairState } from '../../src/core/cycle';
import type { Activities, BuildContextRequest, PromptRef } from '../../src/activities/types';
import { decisionId } from '../../src/core/ids';
import { admit, emptyBook } from '../../src/core/admission';
import { CONFIGURATION_ERROR, MARKET_DATA_UNAVAILABLE } from '../../src/core/error-types';
import { readJsonLines } from '../../src/store/jsonl';
import { Journal } from '../../src/store/journal';

const DATA = join(process.cwd(), '../shared/data/binanceusdm');
const PAIR = 'BTC/USDT:USDT';
const OWNER = `pair:binanceusdm:${PAIR}`;
const HALF_HOUR = 30 * 60_000;
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

function replayConfig(dataDir: string): Config {
  return ConfigSchema.parse({
    mode: 'replay',
    pairs: [PAIR],
    data_dir: dataDir,
    replay: { data: DATA, start: '2025-06-01T00:00:00Z', seconds_per_candle: 1 },
    llm: { provider: 'baseline' },
  });
}

/** What the workflow's context step hands to decide (as in src/workflows/pair-trader.ts). */
interface StepContext {
  ref: PromptRef;
  request: BuildContextRequest;
}

/** The cycle's steps over the activities, the way pairTrader wires them (decision id per cycle, account per request). */
function stepsOf(a: Activities, owner: string, pair: string, journalEvents = true, account?: string) {
  const run = account ?? 'replay';
  let id = '';
  // portfolio admission on an in-process book (the account workflow is exercised on a real server: test/integration)
  const book = emptyBook();
  const steps: CycleSteps<StepContext> = {
    fetchMarket: (req) => a.fetchMarket({ ...req, ...(account ? { account } : {}) }),
    buildContext: async (req) => {
      const request: BuildContextRequest = { ...req, decisionId: id, owner, run };
      return { ref: await a.buildContext(request), request };
    },
    decide: (ctx) => a.decide(ctx),
    checkRisk: (req) => a.checkRisk(req),
    admit: (req) => admit(book, req),
    execute: (req) => a.execute({ ...req, ...(account ? { account } : {}) }),
  };
  return {
    steps,
    async cycle(state: PairState, asOf: number) {
      id = decisionId(owner, pair, asOf);
      const out = await runCycle(
        steps,
        state,
        { asOf, orderOwner: owner, forceExit: false, paused: false },
        {
          risk: replayConfig('x').risk,
          maxRecentDecisions: 5,
          maintenanceMarginRate: 0.005,
        },
      );
      if (journalEvents) {
        for (const e of out.events) {
          if (e.type === 'decision') {
            await a.recordDecision({
              decisionId: id,
              pair,
              price: e.context?.ref.price ?? null,
              decidedAt: asOf,
              record: e.record,
              result: e.result,
              verdict: e.verdict,
              clientOrderId: e.clientOrderId,
              owner,
              run,
            });
          } else if (e.type === 'tradeClosed') {
            const reviewed = await a.reviewTrade(e.trade);
            await a.recordTrade({ trade: e.trade, run, ...reviewed });
          }
        }
      }
      return out;
    },
  };
}

describe('activities (replay mode: recorded candles, paper exchange, baseline, journal)', () => {
  let dir: string;
  let runtime: ActivityRuntime;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'llm-trader-activities-'));
    runtime = await createActivityRuntime(replayConfig(dir), { logger: silent });
  });
  after(async () => {
    await runtime.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('cycles over two weeks of BTC trade on paper, never see a candle after asOf, and journal every decision', async () => {
    const { cycle } = stepsOf(runtime.activities, OWNER, PAIR);
    let state = initialPairState(PAIR);
    const start = Date.parse('2025-06-01T00:00:00Z');
    const cycles = 14 * 48;
    let trades = 0;
    for (let i = 1; i <= cycles; i++) {
      const asOf = start + i * HALF_HOUR;
      const out = await cycle(state, asOf);
      state = out.state;
      trades += out.events.filter((e) => e.type === 'tradeClosed').length;
      const decision = out.events.find((e) => e.type === 'decision');
      if (decision?.type === 'decision' && decision.context) {
        assert.equal(decision.context.ref.decisionId, decisionId(OWNER, PAIR, asOf));
        assert.ok(decision.context.request.snapshot.asOf <= asOf);
      }
    }
    assert.equal(state.counters.cycles, cycles);
    assert.ok(state.counters.entries >= 1, `the baseline entered ${state.counters.entries} times in two weeks`);
    assert.ok(trades >= 1, 'at least one trade closed');

    const lines = readJsonLines<{ pair: string; action: string }>(join(dir, 'logs/llm_decisions.jsonl'));
    assert.equal(lines.corrupt.length, 0);
    assert.equal(lines.records.length, cycles, 'one llm_decisions.jsonl line per cycle');
    const tradesLog = readJsonLines(join(dir, 'logs/trade_experience.jsonl'));
    assert.equal(tradesLog.records.length, trades, 'one trade_experience.jsonl line per closed trade');
    assert.ok(existsSync(join(dir, 'logs/reward_learning.json')));
  });

  test('the account is one SQLite paper ledger: reopening it gives the same balance', async () => {
    const balance = await runtime.activities.fetchMarket({
      pair: PAIR,
      asOf: Date.parse('2025-06-15T00:30:00Z'),
      since: null,
    });
    await runtime.close();
    runtime = await createActivityRuntime(replayConfig(dir), { logger: silent });
    const again = await runtime.activities.fetchMarket({
      pair: PAIR,
      asOf: Date.parse('2025-06-15T00:30:00Z'),
      since: null,
    });
    assert.equal(again.account.equity, balance.account.equity);
    assert.equal(again.account.available, balance.account.available);
  });

  test('a replay past the end of the recorded data is a non-retryable MarketDataUnavailable failure', async () => {
    await assert.rejects(
      runtime.activities.fetchMarket({ pair: PAIR, asOf: Date.parse('2025-09-01T00:00:00Z'), since: null }),
      (err: unknown) =>
        err instanceof ApplicationFailure && err.type === MARKET_DATA_UNAVAILABLE && err.nonRetryable === true,
    );
  });

  test('a workflow of another mode is refused with a non-retryable ConfigurationError naming both modes', async () => {
    await assert.rejects(
      runtime.activities.fetchMarket({
        pair: PAIR,
        asOf: Date.parse('2025-06-15T00:30:00Z'),
        since: null,
        mode: 'live',
      }),
      (err: unknown) =>
        err instanceof ApplicationFailure &&
        err.type === CONFIGURATION_ERROR &&
        err.nonRetryable === true &&
        /trades in live mode but this worker is configured for replay mode/.test(err.message),
    );
  });

  test('a repeated execute with the same client order id places one order (a retried activity)', async () => {
    const asOf = Date.parse('2025-06-20T12:00:00Z');
    const view = await runtime.activities.fetchMarket({ pair: 'ETH/USDT:USDT', asOf, since: null });
    const req = {
      intent: {
        kind: 'open' as const,
        pair: 'ETH/USDT:USDT',
        side: 'long' as const,
        leverage: 3,
        margin: 100,
        quantity: 300 / view.snapshot.price,
        price: view.snapshot.price,
        stopPrice: null,
      },
      clientOrderId: 'ltretrytest0001',
      asOf,
      tradeId: 'ltretrytest0001',
    };
    const first = await runtime.activities.execute(req);
    const second = await runtime.activities.execute(req);
    assert.equal(first.status, 'filled');
    assert.deepEqual(second.fills, first.fills);
    assert.ok(second.position && Math.abs(second.position.quantity - req.intent.quantity) < 1e-9, 'not doubled');
  });

  test('decisions in the journal are readable back per pair', () => {
    const journal = Journal.fromConfig(replayConfig(dir), {});
    try {
      const recent = journal.recentDecisions(PAIR, 3);
      assert.equal(recent.length, 3);
      assert.ok(recent.every((d) => d.owner === OWNER));
    } finally {
      journal.close();
    }
    assert.ok(readFileSync(join(dir, 'logs/llm_decisions.jsonl'), 'utf8').length > 0);
  });

  test('what a workflow records is compact: a snapshot without series, a prompt reference, a decision without prompt', async () => {
    const asOf = Date.parse('2025-06-21T12:00:00Z');
    const pair = 'SOL/USDT:USDT';
    const a = runtime.activities;
    const view = await a.fetchMarket({ pair, asOf, since: asOf - HALF_HOUR });
    for (const [tf, s] of Object.entries(view.snapshot.timeframes)) {
      assert.equal(s.tails.close.length, 0, `${tf}: series tails in the recorded view`);
      assert.equal(s.candles.length, tf === '30m' ? 1 : 0, `${tf}: raw candles in the recorded view`);
      assert.notEqual(s.indicators.rsi14, undefined);
    }
    const id = decisionId(OWNER, pair, asOf);
    const request: BuildContextRequest = {
      snapshot: view.snapshot,
      account: view.account,
      position: null,
      recentDecisions: [],
      decisionId: id,
      owner: OWNER,
      run: 'replay',
    };
    const ref = await a.buildContext(request);
    assert.equal(ref.decisionId, id);
    assert.equal(ref.price, view.snapshot.price);
    assert.ok(ref.tokens !== null && ref.tokens > 500, `prompt tokens ${ref.tokens}`);
    const result = await a.decide({ ref, request });
    assert.equal(result.prompt, undefined, 'the decide result carries the prompt');
    const sizes = {
      view: JSON.stringify(view).length,
      ref: JSON.stringify(ref).length,
      result: JSON.stringify(result).length,
    };
    assert.ok(sizes.view < 4_000 && sizes.ref < 300 && sizes.result < 1_500, JSON.stringify(sizes));

    // the full prompt, with the series the view left out, is in the journal under the decision id
    const journal = Journal.fromConfig(replayConfig(dir), {});
    try {
      const prompt = journal.prompt(id);
      assert.ok(prompt, 'no prompt stored under the decision id');
      assert.equal(prompt.tokens, ref.tokens);
      assert.equal(prompt.messages[0]?.role, 'system');
      assert.ok(prompt.messages[1]!.content.length > 2_000, 'the stored prompt is the whole user message');
    } finally {
      journal.close();
    }
  });

  test('decide on a worker that did not build the prompt builds it again from the request', async () => {
    const asOf = Date.parse('2025-06-22T08:00:00Z');
    const pair = 'ETH/USDT:USDT';
    const view = await runtime.activities.fetchMarket({ pair, asOf, since: null });
    const request: BuildContextRequest = {
      snapshot: view.snapshot,
      account: view.account,
      position: null,
      recentDecisions: [],
      decisionId: decisionId(OWNER, pair, asOf),
      owner: OWNER,
      run: 'replay',
    };
    const ref = await runtime.activities.buildContext(request);
    const here = await runtime.activities.decide({ ref, request });
    const other = await createActivityRuntime(replayConfig(dir), { logger: silent });
    try {
      const there = await other.activities.decide({ ref, request });
      assert.deepEqual(there.decision, here.decision);
    } finally {
      await other.close();
    }
  });

  test('each replay account is its own paper ledger file: an order in one is not in another', async () => {
    const asOf = Date.parse('2025-06-20T12:00:00Z');
    const pair = 'XRP/USDT:USDT';
    const view = await runtime.activities.fetchMarket({ pair, asOf, since: null, account: 'replay-a' });
    const order = {
      intent: {
        kind: 'open' as const,
        pair,
        side: 'long' as const,
        leverage: 2,
        margin: 100,
        quantity: 200 / view.snapshot.price,
        price: view.snapshot.price,
        stopPrice: null,
      },
      clientOrderId: 'ltaccounttest01',
      asOf,
      tradeId: 'ltaccounttest01',
      account: 'replay-a',
    };
    assert.equal((await runtime.activities.execute(order)).status, 'filled');
    assert.ok(existsSync(join(dir, 'paper-replay-a.sqlite')));
    const inA = await runtime.activities.fetchMarket({ pair, asOf, since: null, account: 'replay-a' });
    const inB = await runtime.activities.fetchMarket({ pair, asOf, since: null, account: 'replay-b' });
    assert.equal(inA.account.positions.filter((p) => p.pair === pair).length, 1);
    assert.equal(inB.account.positions.length, 0, 'a new replay account starts flat');
    assert.equal(inB.account.equity, replayConfig(dir).paper.starting_balance);
    await assert.rejects(
      runtime.activities.fetchMarket({ pair, asOf, since: null, account: '../escape' }),
      (err: unknown) => err instanceof ApplicationFailure && err.type === CONFIGURATION_ERROR,
    );
  });
});
