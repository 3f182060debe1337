import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runBacktest, orderOwner, type DecisionEvent } from '../../src/backtest/engine';
import { baselinePolicy } from '../../src/backtest/policy';
import { backtestLogLines } from '../../src/backtest/log-line';
import { decisionId } from '../../src/core/ids';
import { compactDecisionLine } from '../../src/store/compact-decision-line';
import { decisionLine, journalContext } from '../../src/store/journal';
import { ALL_PAIRS, recordedMarket, testConfig } from '../helpers/backtest';

/** The definition of a backtest's log line: the journal's full line, compacted, as JSON. */
function definition(runId: string, pair: string, event: DecisionEvent): string {
  const owner = orderOwner(runId, pair);
  return JSON.stringify(
    compactDecisionLine(
      decisionLine({
        owner,
        decisionId: decisionId(owner, pair, event.record.time),
        pair,
        record: event.record,
        result: event.result,
        verdict: event.verdict,
        context: event.context ? journalContext(event.context) : null,
        clientOrderId: event.clientOrderId,
      }),
    ),
  );
}

describe('decision log lines are the compacted journal lines, byte for byte', () => {
  const events: { pair: string; event: DecisionEvent; runId: string }[] = [];
  before(async () => {
    await runBacktest({
      config: testConfig(),
      market: recordedMarket(),
      pairs: ALL_PAIRS,
      policy: baselinePolicy(),
      onDecision: (pair, event, runId) => events.push({ pair, event, runId }),
    });
  });

  test('every decision of a 17-pair baseline run: waits, holds, entries, exits, rejections, protective exits', () => {
    const line = backtestLogLines();
    const seen = { verdict: 0, client_order_id: 0, pnl_pct: 0, detail: 0, protective: 0 };
    for (const { pair, event, runId } of events) {
      const text = line(runId, pair, event);
      assert.equal(text, definition(runId, pair, event), `${pair} at ${new Date(event.record.time).toISOString()}`);
      for (const key of ['verdict', 'client_order_id', 'pnl_pct', 'detail'] as const) {
        if (text.includes(`"${key}":`)) seen[key]++;
      }
      if (event.result === null) seen.protective++;
    }
    assert.ok(events.length > 40_000, `${events.length} decisions`);
    // the run has lines with each optional field, so each way of writing it was compared
    for (const [key, count] of Object.entries(seen)) assert.ok(count > 0, `lines with ${key}: ${count}`);
  });

  test('decisions with a model call, a prompt or unusual arguments: the same text as the definition', () => {
    const base = events.find((e) => e.event.result !== null && e.event.context !== null)!;
    const { pair, runId } = base;
    const result = base.event.result!;
    const context = base.event.context!;
    const variants: Record<string, DecisionEvent> = {
      'tool calls as the model sent them': {
        ...base.event,
        result: {
          ...result,
          rawToolCalls: [
            { id: 'call_1', name: result.decision.tool, arguments: result.decision.args, origin: 'native' },
          ],
        } as DecisionEvent['result'],
      },
      thinking: { ...base.event, result: { ...result, thinking: 'first, the trend' } as DecisionEvent['result'] },
      problems: { ...base.event, result: { ...result, problems: ['repaired a field'] } },
      notes: { ...base.event, result: { ...result, notes: ['read "12" as 12'] } as DecisionEvent['result'] },
      tokens: { ...base.event, result: { ...result, usage: { input: 1200, output: 80 } } },
      latency: { ...base.event, result: { ...result, latencyMs: 850 } },
      'a model name with a quote': { ...base.event, result: { ...result, model: 'my "model"' } },
      'a prompt': {
        ...base.event,
        context: { ...context, messages: [{ role: 'user', content: 'BTC: close 100' }], tokens: 12 },
      },
      'tools other than the position state gives': { ...base.event, context: { ...context, allowedTools: [] } },
      'a result whose tool is not the record one': {
        ...base.event,
        record: { ...base.event.record, tool: 'signal_exit' },
      },
      'arguments with an undefined value, a string and a non-finite number': {
        ...base.event,
        result: {
          ...result,
          decision: {
            tool: result.decision.tool,
            args: { ...result.decision.args, extra: undefined, note: 'a "quoted" \n text', size: Infinity },
          } as unknown as typeof result.decision,
        },
      },
      'arguments whose pair and reason differ from the line': {
        ...base.event,
        result: {
          ...result,
          decision: {
            tool: result.decision.tool,
            args: { ...result.decision.args, pair: 'ETH/USDT:USDT', reason: 'another reason' },
          } as typeof result.decision,
        },
      },
      'a rejected verdict, a detail, a PnL and an order id': {
        ...base.event,
        verdict: { status: 'rejected', reasons: ['exposure above the limit'] },
        record: { ...base.event.record, outcome: 'rejected', detail: 'risk gate: exposure', pnlPct: -0 },
        clientOrderId: 'bt-1-x',
      },
      'no verdict and no context (a protective exit)': {
        ...base.event,
        result: null,
        verdict: null,
        context: null,
        record: { ...base.event.record, source: 'protective', confidence: null },
      },
      'a reason with characters JSON escapes': {
        ...base.event,
        record: { ...base.event.record, reason: 'close 1.5 "up" \u2028 \\ tab\t' },
      },
    };
    for (const [what, event] of Object.entries(variants)) {
      const line = backtestLogLines();
      assert.equal(line(runId, pair, event), definition(runId, pair, event), what);
    }
  });
});
