/**
 * The `llm` section of a backtest result: a remote model's decisions, requests, tokens and cost (in total and by
 * prompt kind), its fallbacks by reason, and the extra fields it sent. Computed from the decision rows alone, which
 * hold what every decision originally cost (a cache hit keeps its request's usage), so a cached rerun writes the same
 * figures.
 */
import type { Config } from '../core/config';
import { PROBLEM_KIND_LABELS, problemKind, type ProblemKind } from '../core/validate';
import type { ToolName } from '../core/types';
import { safeUrl } from '../llm/errors';
import { costUsd, priceOf } from '../llm/pricing';
import type { DecisionLog } from './decision-log';
import type { DecisionRow, LlmSpend, LlmUsage } from './result';

/** The tools of a flat pair (the entry prompt); the others are those of an open position. */
const ENTRY_TOOLS: ReadonlySet<ToolName> = new Set(['signal_entry_long', 'signal_entry_short', 'signal_wait']);

/** Sources of rows the model decided (a cache hit is reported as `openai`; a fallback is an invalid answer). */
const MODEL_SOURCES: ReadonlySet<string> = new Set(['openai', 'fallback']);

const KIND_ORDER = Object.keys(PROBLEM_KIND_LABELS) as ProblemKind[];

function emptySpend(): LlmSpend {
  return { decisions: 0, requests: 0, tokens: { input: 0, cached_input: 0, output: 0 }, cost_usd: null };
}

function add(spend: LlmSpend, row: DecisionRow): void {
  spend.decisions++;
  spend.requests += row.requests;
  spend.tokens.input += row.tokens_in;
  spend.tokens.cached_input += row.tokens_cached_in;
  spend.tokens.output += row.tokens_out;
}

/** The kinds of the problems of a fallback's last answer (its `answer N:` lines with the highest N). */
export function fallbackKinds(problems: readonly string[]): ProblemKind[] {
  let last = 0;
  for (const p of problems) {
    const m = /^answer (\d+): /.exec(p);
    if (m) last = Math.max(last, Number(m[1]));
  }
  const prefix = last > 0 ? `answer ${last}: ` : '';
  const kinds = new Set<ProblemKind>();
  for (const p of problems) if (p.startsWith(prefix)) kinds.add(problemKind(p));
  if (kinds.size > 1) kinds.delete('several_calls');
  return KIND_ORDER.filter((k) => kinds.has(k));
}

/** The `llm` section for the decisions in `log` of a remote model configured by `config.llm`. */
export function llmUsage(log: DecisionLog, config: Config): LlmUsage {
  const quote = priceOf(config.llm.model, config.llm.pricing);
  const total = emptySpend();
  const byKind = { entry: emptySpend(), position: emptySpend() };
  let fallbacks = 0;
  const byReason = new Map<ProblemKind, number>();
  let extraDecisions = 0;
  const fields = new Map<string, number>();
  for (const row of log) {
    if (!MODEL_SOURCES.has(row.source)) continue;
    add(total, row);
    add(ENTRY_TOOLS.has(row.tool) ? byKind.entry : byKind.position, row);
    if (row.source === 'fallback') {
      fallbacks++;
      for (const kind of fallbackKinds(row.problems)) byReason.set(kind, (byReason.get(kind) ?? 0) + 1);
    }
    if (row.dropped_fields.length > 0) {
      extraDecisions++;
      for (const f of row.dropped_fields) fields.set(f, (fields.get(f) ?? 0) + 1);
    }
  }
  const price = quote?.price ?? null;
  for (const spend of [total, byKind.entry, byKind.position]) {
    spend.cost_usd =
      price === null
        ? null
        : costUsd(
            { input: spend.tokens.input, cachedInput: spend.tokens.cached_input, output: spend.tokens.output },
            price,
          );
  }
  return {
    model: config.llm.model,
    endpoint: safeUrl(config.llm.api_base),
    price: quote ? { ...quote.price, model: quote.model, source: quote.source } : null,
    ...total,
    by_kind: byKind,
    fallbacks: {
      decisions: fallbacks,
      pct: total.decisions > 0 ? (fallbacks / total.decisions) * 100 : null,
      by_reason: Object.fromEntries(KIND_ORDER.filter((k) => byReason.has(k)).map((k) => [k, byReason.get(k)!])),
    },
    extra_fields: {
      decisions: extraDecisions,
      fields: Object.fromEntries([...fields.keys()].sort().map((f) => [f, fields.get(f)!])),
    },
  };
}
