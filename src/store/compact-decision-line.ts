/**
 * The compact form of an `llm_decisions.jsonl` line, as `llm-trader backtest` writes its decision log: the same
 * record ({@link DecisionLine}) with every field that only repeats what the line already says, or holds its empty
 * default, left out. Each line stays one self-contained, readable JSON object, and {@link expandDecisionLine} gives
 * back the full line (readers of the journal's full lines, such as the replay provider, read both forms).
 *
 * Left out, and restored as:
 * - `decision.pair` and `decision.reason`: the line's `pair` and `reasoning`;
 * - `function_calls`: when no model call was made, the decision as one call (`{id: null, name: action, arguments:
 *   decision, origin: null}`);
 * - `market_context.allowed_tools`: when they are the tools of the position state (`allowedTools(has_position)`);
 *   `market_context.prompt_tokens`: null; `market_context.messages`: [] (no prompt was rendered);
 * - `tokens` {input: 0, output: 0}, `latency_ms` 0, `verdict` {status: 'none'}, `run` '', and null or empty
 *   `detail`, `pnl_pct`, `thinking`, `problems`, `notes`, `client_order_id`.
 *
 * Why: a rule-based backtest over 17 pairs and two months writes ~50,000 lines; in full, two thirds of each line
 * was such repetition (52 MB; compact about a third of that, measured in the README).
 */
import type { ToolName } from '../core/types';
import { allowedTools } from '../core/tools';
import type { DecisionLine, LoggedToolCall } from './journal';

/** A decision line in compact form: see the module comment for what is left out. */
export type CompactDecisionLine = Partial<DecisionLine> & Pick<DecisionLine, 'timestamp' | 'pair' | 'action'>;

function sameTools(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** True when `calls` are what {@link expandDecisionLine} restores: none without a decision, else the decision. */
function isDecisionAsCall(calls: readonly LoggedToolCall[], line: DecisionLine): boolean {
  if (line.decision === null) return calls.length === 0;
  if (calls.length !== 1) return false;
  const c = calls[0]!;
  return (
    c.id === null &&
    c.origin === null &&
    c.name === line.action &&
    (c.arguments === line.decision || JSON.stringify(c.arguments) === JSON.stringify(line.decision))
  );
}

/** The compact form of `line` (see the module comment); `expandDecisionLine` of it equals `line`. */
export function compactDecisionLine(line: DecisionLine): CompactDecisionLine {
  const out: Record<string, unknown> = { timestamp: line.timestamp, pair: line.pair, action: line.action };
  const args = line.decision as Record<string, unknown> | null;
  if (args === null) out.decision = null;
  else {
    const rest: Record<string, unknown> = {};
    for (const key in args) {
      if ((key === 'pair' && args[key] === line.pair) || (key === 'reason' && args[key] === line.reasoning)) continue;
      rest[key] = args[key];
    }
    // a key that differs from the line's (never, for a validated decision) is kept, so nothing is lost
    out.decision = rest;
  }
  out.reasoning = line.reasoning;
  out.confidence = line.confidence;
  const ctx = line.market_context;
  if (ctx === null) out.market_context = null;
  else {
    const c: Record<string, unknown> = { price: ctx.price, has_position: ctx.has_position };
    if (!sameTools(ctx.allowed_tools, allowedTools(ctx.has_position))) c.allowed_tools = ctx.allowed_tools;
    if (ctx.prompt_tokens !== null) c.prompt_tokens = ctx.prompt_tokens;
    if (ctx.messages.length > 0) c.messages = ctx.messages;
    out.market_context = c;
  }
  if (!isDecisionAsCall(line.function_calls, line)) out.function_calls = line.function_calls;
  if (line.tokens.input !== 0 || line.tokens.output !== 0 || line.tokens.cachedInput !== undefined) {
    out.tokens = line.tokens;
  }
  if (line.latency_ms !== 0) out.latency_ms = line.latency_ms;
  out.model = line.model;
  out.source = line.source;
  out.outcome = line.outcome;
  if (line.detail !== null) out.detail = line.detail;
  if (line.verdict !== null && line.verdict.status !== 'none') out.verdict = line.verdict;
  else if (line.verdict === null) out.verdict = null;
  if (line.pnl_pct !== null) out.pnl_pct = line.pnl_pct;
  if (line.thinking !== null) out.thinking = line.thinking;
  if (line.problems.length > 0) out.problems = line.problems;
  if (line.notes.length > 0) out.notes = line.notes;
  out.owner = line.owner;
  if (line.client_order_id !== null) out.client_order_id = line.client_order_id;
  out.decision_id = line.decision_id;
  if (line.run !== '') out.run = line.run;
  return out as CompactDecisionLine;
}

/**
 * The full line of a compact (or already full) one: every left-out field restored (see the module comment). The
 * caller has checked that `line` is an object with `timestamp`, `pair` and `action`.
 */
export function expandDecisionLine(value: Record<string, unknown>): DecisionLine {
  const v = value as Partial<DecisionLine> & { pair: string; action: ToolName; reasoning?: string };
  const reasoning = typeof v.reasoning === 'string' ? v.reasoning : '';
  let decision = v.decision ?? null;
  if (decision !== null && typeof decision === 'object' && !Array.isArray(decision)) {
    const d = decision as unknown as Record<string, unknown>;
    if (!('pair' in d) || !('reason' in d)) {
      // the schemas' key order: pair first, reason last
      decision = {
        pair: v.pair,
        ...d,
        reason: 'reason' in d ? d.reason : reasoning,
      } as unknown as DecisionLine['decision'];
    }
  }
  const ctx = v.market_context;
  const marketContext =
    ctx === null || ctx === undefined
      ? null
      : {
          price: ctx.price,
          has_position: ctx.has_position,
          allowed_tools: ctx.allowed_tools ?? allowedTools(ctx.has_position === true),
          prompt_tokens: ctx.prompt_tokens ?? null,
          messages: ctx.messages ?? [],
        };
  const line: DecisionLine = {
    timestamp: v.timestamp!,
    pair: v.pair,
    action: v.action,
    decision,
    reasoning,
    confidence: v.confidence ?? null,
    market_context: marketContext,
    function_calls:
      v.function_calls ?? (decision === null ? [] : [{ id: null, name: v.action, arguments: decision, origin: null }]),
    tokens: v.tokens ?? { input: 0, output: 0 },
    latency_ms: v.latency_ms ?? 0,
    model: v.model ?? null,
    source: v.source!,
    outcome: v.outcome!,
    detail: v.detail ?? null,
    verdict: v.verdict === undefined ? { status: 'none' } : v.verdict,
    pnl_pct: v.pnl_pct ?? null,
    thinking: v.thinking ?? null,
    problems: v.problems ?? [],
    notes: v.notes ?? [],
    owner: v.owner ?? '',
    client_order_id: v.client_order_id ?? null,
    decision_id: v.decision_id ?? '',
    run: v.run ?? '',
  };
  return line;
}
