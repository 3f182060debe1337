/**
 * The lines a backtest writes to its decision log (`<out>/llm_decisions.jsonl`), one per decision: the journal's line
 * (src/store/journal.ts `decisionLine`) in compact form (src/store/compact-decision-line.ts), as JSON text.
 */
import { decisionIdAt, decisionIdPrefix } from '../core/ids';
import { compactDecisionLine } from '../store/compact-decision-line';
import { decisionLine, journalContext } from '../store/journal';
import { orderOwner, type DecisionEvent } from './engine';

/** Builds decision log lines: `line(runId, pair, event)` is the line of `event` (no newline; not yet redacted). */
export type BacktestLogLines = (runId: string, pair: string, event: DecisionEvent) => string;

/**
 * A line builder for one backtest's decision log. It remembers each pair's owner and the hash part of its decision
 * ids (src/core/ids.ts `decisionIdPrefix`), which every line of the pair shares: a 17-pair run writes ~50,000 lines.
 */
export function backtestLogLines(): BacktestLogLines {
  const owners = new Map<string, { owner: string; idPrefix: string }>();
  return (runId, pair, event) => {
    const key = `${runId} ${pair}`;
    let o = owners.get(key);
    if (o === undefined) {
      const owner = orderOwner(runId, pair);
      o = { owner, idPrefix: decisionIdPrefix(owner, pair) };
      owners.set(key, o);
    }
    return JSON.stringify(
      compactDecisionLine(
        decisionLine({
          owner: o.owner,
          decisionId: decisionIdAt(o.idPrefix, event.record.time),
          pair,
          record: event.record,
          result: event.result,
          verdict: event.verdict,
          context: event.context ? journalContext(event.context) : null,
          clientOrderId: event.clientOrderId,
        }),
      ),
    );
  };
}
