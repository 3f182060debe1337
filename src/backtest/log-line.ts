/**
 * The line a backtest writes to its decision log (`<out>/llm_decisions.jsonl`) for one decision: the journal's line
 * (src/store/journal.ts `decisionLine`) in compact form (src/store/compact-decision-line.ts), as JSON text.
 */
import { compactDecisionLine } from '../store/compact-decision-line';
import { decisionLine, journalContext } from '../store/journal';
import { orderOwner, type DecisionEvent } from './engine';

/** The decision log line of `event`, a decision of `pair` in the run `runId` (no newline; not yet redacted). */
export function backtestLogLine(runId: string, pair: string, event: DecisionEvent): string {
  return JSON.stringify(
    compactDecisionLine(
      decisionLine({
        owner: orderOwner(runId, pair),
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
