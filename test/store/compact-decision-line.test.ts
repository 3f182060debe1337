/**
 * The backtest's compact decision log lines: each one expands back to the journal's full line, whatever the
 * decision was (a baseline wait, an entry with a verdict and an order, a protective exit, a model's answer with
 * its prompt and raw tool calls), and the replay provider reads the compact form as it reads the full one.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { runBacktest, type DecisionEvent } from '../../src/backtest/engine';
import { baselinePolicy } from '../../src/backtest/policy';
import { compactDecisionLine, expandDecisionLine } from '../../src/store/compact-decision-line';
import { decisionLine, journalContext, type DecisionLine } from '../../src/store/journal';
import { parseDecisionLine } from '../../src/llm/replay-provider';
import { DAY_MS, recordedMarket, testConfig } from '../helpers/backtest';

const BTC = 'BTC/USDT:USDT';
const ETH = 'ETH/USDT:USDT';
const FROM = Date.UTC(2025, 4, 22, 0, 30) + 8 * DAY_MS;

/** The line as a reader sees it: through JSON text. */
const viaJson = (value: unknown): Record<string, unknown> =>
  JSON.parse(JSON.stringify(value)) as Record<string, unknown>;

describe('compact decision log lines', () => {
  test("every line of a baseline backtest expands to the journal's full line, and is smaller", async () => {
    const events: { pair: string; event: DecisionEvent; runId: string }[] = [];
    await runBacktest({
      config: testConfig(),
      market: recordedMarket(),
      pairs: [BTC, ETH],
      from: FROM,
      to: FROM + 6 * DAY_MS,
      policy: baselinePolicy(),
      onDecision: (pair, event, runId) => events.push({ pair, event, runId }),
    });
    const outcomes = new Set<string>();
    let full = 0;
    let compact = 0;
    for (const { pair, event, runId } of events) {
      const line = decisionLine({
        owner: `${runId}/${pair}`,
        pair,
        record: event.record,
        result: event.result,
        verdict: event.verdict,
        context: event.context ? journalContext(event.context) : null,
        clientOrderId: event.clientOrderId,
      });
      const small = compactDecisionLine(line);
      assert.deepEqual(expandDecisionLine(viaJson(small)), viaJson(line));
      // the replay provider reads the same arguments from either form
      assert.deepEqual(parseDecisionLine(viaJson(small), 1), parseDecisionLine(viaJson(line), 1));
      outcomes.add(`${event.record.tool} ${event.record.outcome} ${event.record.source}`);
      full += JSON.stringify(line).length;
      compact += JSON.stringify(small).length;
    }
    assert.ok(outcomes.has('signal_wait none baseline'));
    assert.ok(
      [...outcomes].some((o) => o.startsWith('signal_entry_') && o.includes('executed')),
      [...outcomes].join(),
    );
    assert.ok(outcomes.has('signal_exit executed operator') || outcomes.has('signal_exit executed baseline'));
    assert.ok(compact < full * 0.5, `compact ${compact} vs full ${full} characters`);
  });

  test('a model decision keeps its prompt, raw tool calls, tokens, latency and problems', () => {
    const decision = { pair: BTC, confidence_score: 40, rsi_value: 58, reason: 'No setup.' };
    const line: DecisionLine = {
      timestamp: '2025-06-01T00:30:00.000Z',
      pair: BTC,
      action: 'signal_wait',
      decision,
      reasoning: 'No setup.',
      confidence: 40,
      market_context: {
        price: 104_000,
        has_position: false,
        allowed_tools: ['signal_entry_long', 'signal_wait'],
        prompt_tokens: 1234,
        messages: [
          { role: 'system', content: 'You trade.' },
          { role: 'user', content: 'BTC...' },
        ],
      },
      function_calls: [{ id: 'call_1', name: 'signal_wait', arguments: { ...decision, extra: 1 }, origin: 'native' }],
      tokens: { input: 1234, output: 56 },
      latency_ms: 812,
      model: 'gpt-x',
      source: 'openai',
      outcome: 'none',
      detail: null,
      verdict: { status: 'none' },
      pnl_pct: null,
      thinking: 'hmm',
      problems: ['answer 1: rsi_value missing'],
      notes: ['repaired'],
      owner: 'bt-1/BTC',
      client_order_id: null,
      decision_id: 'd1',
      run: 'replay-x',
    };
    const small = viaJson(compactDecisionLine(line));
    assert.ok(!('pair' in (small.decision as object)) && !('reason' in (small.decision as object)));
    assert.deepEqual(expandDecisionLine(small), viaJson(line));
  });
});
