/**
 * A backtest's running account of a remote model: what this run has asked and spent, the cost cap, the fallback alarm,
 * the progress figures and the preview estimate. The CLI (src/cli/commands/backtest.ts) wires it in:
 * - `meter` wraps the provider that sends the requests (below the decision cache, so a cache hit costs nothing and
 *   passes no cap): before a decision is sent, its worst case (two requests of its prompt plus the answer limit each)
 *   is reserved against `llm.max_cost_usd`; when the spend so far, the reservations of the decisions in flight and
 *   its own would pass the cap, it is not sent and the run stops ({@link BacktestStop} `cost-cap`). The decisions in
 *   flight finish and are cached, so the rerun continues from there and pays for no decision twice. A prefetch is
 *   sent only while it leaves room for a whole decision time of questions; else it is not sent, and nothing stops.
 * - `observe` sees every decision in the result's order: cache hits, fallbacks, dropped fields; the fallback alarm
 *   stops the run ({@link BacktestStop} `fallbacks`) when more than `backtest.fallback_alarm_pct` % of the first
 *   `backtest.fallback_alarm_decisions` model decisions are fallbacks (as soon as that is certain, or at the end of a
 *   shorter run), with the reasons by kind and an example of a rejected answer, unless fallbacks are allowed.
 * - `progress` and `estimate` give the figures of the progress line and the preview.
 *
 * The spend of this run counts the tokens the server reported for the requests this run made, at `llm.pricing` (or
 * the built-in table); it is shown as it goes and never written into result.json, whose `llm` section reports what
 * every decision originally cost (so a cached rerun writes the same file).
 */
import type { Config } from '../core/config';
import type { DecisionContext } from '../core/context-types';
import type { TokenUsage } from '../core/types';
import { PROBLEM_KIND_LABELS, type ProblemKind } from '../core/validate';
import { costUsd, priceOf, type PriceQuote } from '../llm/pricing';
import type { CacheableProvider, DecideOptions, ProviderDecision, RequestIdentity } from '../llm/provider';
import type { RequestScheduler, SchedulerStats } from '../llm/request-scheduler';
import { BacktestStop, type DecisionEvent, type RequestPreview } from './engine';
import { fallbackKinds } from './llm-usage';

/** Output tokens assumed per answer when no answer has been seen yet (a tool call with a reason of ~80 words). */
export const ASSUMED_OUTPUT_TOKENS = 150;

/** Longest rendering of a rejected answer in the alarm's message, characters. */
const EXAMPLE_MAX_CHARS = 400;

export interface LlmRunOptions {
  /** the effective config: llm (model, pricing, max_tokens, max_cost_usd), backtest (alarm), context (budgets) */
  config: Config;
  /** the scheduler the requests run through (for the concurrency and rate-limit figures) */
  scheduler: RequestScheduler;
  /** true: fallbacks never stop the run (`--allow-fallbacks`) */
  allowFallbacks?: boolean;
  /** wall clock, ms (tests) */
  now?: () => number;
}

/** What the progress line shows. */
export interface LlmProgress {
  /** model decisions recorded so far, and the run's pair-cycles that ask the model (an upper bound) */
  decisions: number;
  slots: number;
  /** of the decisions, those served from the decision cache */
  cacheHits: number;
  /** requests this run sent (prefetches included), their tokens and cost (null without a price) */
  requests: number;
  /** of the requests, those asked ahead of their decision time (`--prefetch`) */
  prefetchRequests: number;
  tokens: Required<TokenUsage>;
  spentUsd: number | null;
  /** share of fallbacks among the model decisions so far, percent; null before any */
  fallbackPct: number | null;
  /** seconds left at the pace of this run's answers; null before the first answer */
  etaSeconds: number | null;
  scheduler: SchedulerStats;
}

/** The preview's estimate of what the rest of the run will ask and cost. */
export interface RunEstimate {
  /** decisions still to ask, those already answered from the cache, and every model decision of the run */
  toAsk: number;
  cached: number;
  slots: number;
  /** the prompts the estimate is read from: their number and average size (tokens as built; null: not counted) */
  prompts: number;
  promptTokens: number | null;
  /** the prompt-size ceiling of a position prompt (`context.max_position_context_tokens`) */
  positionBudget: number;
  inputTokens: number | null;
  /** output tokens per answer: measured on the cached answers, or {@link ASSUMED_OUTPUT_TOKENS} */
  outputPerAnswer: number;
  outputMeasured: boolean;
  outputTokens: number;
  /** at most `llm.max_tokens` per answer */
  maxOutputTokens: number;
  price: PriceQuote | null;
  costUsd: number | null;
  concurrency: number;
  /** rounds of requests per decision time (pairs / concurrency, rounded up) and the decision times left to ask */
  roundsPerTime: number;
  remainingTimes: number;
  /** the wall time in answer times: rounds per decision time x decision times left */
  answerTimes: number;
  /** prefetching (backtest.prefetch), and the wall time it allows at best: every request place busy all the time */
  prefetch: boolean;
  prefetchAnswerTimes: number;
}

/** A decision the alarm can show: where it was and what the model answered. */
interface Rejected {
  pair: string;
  time: number;
  answer: string;
  problems: string[];
}

function render(result: ProviderDecision): string {
  const calls = (result.rawToolCalls ?? []).map(
    (c) => `${c.name || '(no name)'} ${typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments)}`,
  );
  const texts = (result.answerTexts ?? []).filter((t) => t.trim() !== '');
  const parts = [...calls.map((c) => `tool call ${c}`), ...texts.map((t) => `text ${JSON.stringify(t)}`)];
  const text = parts.length > 0 ? parts.join('; ') : '(an empty answer)';
  return text.length > EXAMPLE_MAX_CHARS ? `${text.slice(0, EXAMPLE_MAX_CHARS - 3)}...` : text;
}

/** The provider that sends requests, behind the cost cap and the meter of a {@link LlmRun}. */
class MeteredProvider implements CacheableProvider {
  readonly name: string;
  readonly model: string;

  constructor(
    private readonly inner: CacheableProvider,
    private readonly run: LlmRun,
  ) {
    this.name = inner.name;
    this.model = inner.model;
  }

  requestIdentity(): RequestIdentity {
    return this.inner.requestIdentity();
  }

  async decide(ctx: DecisionContext, options: DecideOptions = {}): Promise<ProviderDecision> {
    const reserved = this.run.reserve(ctx, options.prefetch === true);
    try {
      const result = await this.inner.decide(ctx, options);
      this.run.paid(result, options.prefetch === true);
      return result;
    } finally {
      this.run.release(reserved);
    }
  }
}

export class LlmRun {
  /** the configured model's price; null when neither llm.pricing nor the built-in table knows it */
  readonly price: PriceQuote | null;
  readonly maxCostUsd: number | null;
  /** the scheduler the requests run through */
  readonly scheduler: RequestScheduler;
  private readonly config: Config;
  private readonly allowFallbacks: boolean;
  private readonly now: () => number;
  private requests = 0;
  /** of the requests, those of prefetches */
  private prefetchRequests = 0;
  private readonly tokens: Required<TokenUsage> = { input: 0, output: 0, cachedInput: 0 };
  private spent = 0;
  private reserved = 0;
  /** the worst case of the decision the cap stopped, for the message */
  private refused: number | null = null;
  private decisions = 0;
  private cacheHits = 0;
  private fallbacks = 0;
  private slots = 0;
  /** fallbacks among the first `window` model decisions, by kind, and the first rejected answer */
  private windowFallbacks = 0;
  private readonly windowKinds = new Map<ProblemKind, number>();
  private example: Rejected | null = null;
  /** wall time of the first answer this run paid for, and the decisions recorded then (the pace of the ETA) */
  private firstAnswer: { at: number; decisions: number } | null = null;

  constructor(options: LlmRunOptions) {
    this.config = options.config;
    this.scheduler = options.scheduler;
    this.allowFallbacks = options.allowFallbacks ?? false;
    this.now = options.now ?? Date.now;
    this.price = priceOf(options.config.llm.model, options.config.llm.pricing);
    this.maxCostUsd = options.config.llm.max_cost_usd;
    if (this.maxCostUsd !== null && this.price === null) {
      throw new Error(
        `a cost cap (llm.max_cost_usd / --max-cost) needs the price of model "${options.config.llm.model}", which ` +
          `neither llm.pricing nor the built-in table has: set llm.pricing["${options.config.llm.model}"] to ` +
          '{"input": <USD per million tokens>, "cached_input": <USD or null>, "output": <USD per million tokens>}',
      );
    }
  }

  /** Wraps the provider that sends the requests (for `openaiPolicy`'s `wrap`). */
  readonly meter = (inner: CacheableProvider): CacheableProvider => new MeteredProvider(inner, this);

  /**
   * The most a decision on `ctx` can cost: two requests (the answer and a repair round) of its prompt (its o200k size
   * plus a tenth for the server's own count of messages and tools) and of the answer limit each.
   */
  worstCaseUsd(ctx: Pick<DecisionContext, 'tokens' | 'hasPosition'>): number {
    if (this.price === null) return 0;
    const { context, llm } = this.config;
    const budget = ctx.hasPosition ? context.max_position_context_tokens : context.max_context_tokens;
    const prompt = Math.ceil((ctx.tokens ?? budget) * 1.1) + 50;
    const input = 2 * prompt + llm.max_tokens + 300;
    return costUsd({ input, output: 2 * llm.max_tokens }, this.price.price);
  }

  /**
   * @internal the cap's check before a decision is sent: its reservation, or a stop (for a prefetch, which the run
   * does not wait for, a refusal that stops nothing)
   */
  reserve(ctx: DecisionContext, prefetch = false): number {
    const worst = this.worstCaseUsd(ctx);
    // a prefetch leaves room for a whole decision time of questions the run waits for
    const room = prefetch ? worst * (1 + this.config.pairs.length) : worst;
    if (this.maxCostUsd !== null && this.spent + this.reserved + room > this.maxCostUsd) {
      if (prefetch) throw new Error('the cost cap leaves no room for a prefetch');
      this.refused = worst;
      throw new BacktestStop('cost-cap', this.capMessage());
    }
    this.reserved += worst;
    return worst;
  }

  /** @internal */
  release(amount: number): void {
    this.reserved = Math.max(0, this.reserved - amount);
  }

  /** @internal a decision this run asked for has its answer */
  paid(result: ProviderDecision, prefetch = false): void {
    this.requests += result.rounds ?? 1;
    if (prefetch) this.prefetchRequests += result.rounds ?? 1;
    this.tokens.input += result.usage.input;
    this.tokens.output += result.usage.output;
    this.tokens.cachedInput += result.usage.cachedInput ?? 0;
    if (this.price) this.spent += costUsd(result.usage, this.price.price);
    this.firstAnswer ??= { at: this.now(), decisions: this.decisions };
  }

  /** The engine's `onDecision`: counts the decision and runs the fallback alarm (in the result's order). */
  readonly observe = (pair: string, event: DecisionEvent): void => {
    const result = event.result as ProviderDecision | null;
    if (result === null) return;
    this.decisions++;
    if (result.cached) this.cacheHits++;
    if (result.source !== 'fallback') return;
    this.fallbacks++;
    const { fallback_alarm_decisions: window, fallback_alarm_pct: pct } = this.config.backtest;
    if (this.decisions > window) return;
    this.windowFallbacks++;
    for (const kind of fallbackKinds(result.problems))
      this.windowKinds.set(kind, (this.windowKinds.get(kind) ?? 0) + 1);
    this.example ??= { pair, time: event.record.time, answer: render(result), problems: result.problems };
    if (!this.allowFallbacks && this.windowFallbacks > (pct / 100) * window) {
      throw new BacktestStop('fallbacks', this.alarmMessage(window, this.decisions));
    }
  };

  /** At the end of the run: the alarm for a run with fewer model decisions than the alarm's window. */
  finish(): void {
    const { fallback_alarm_decisions: window, fallback_alarm_pct: pct } = this.config.backtest;
    if (this.allowFallbacks || this.decisions === 0 || this.decisions >= window) return;
    if ((this.windowFallbacks / this.decisions) * 100 > pct) {
      throw new BacktestStop('fallbacks', this.alarmMessage(this.decisions, this.decisions));
    }
  }

  /** The progress figures now; `slots` is the engine's count of the run's pair-cycles that ask the model. */
  progress(slots: number): LlmProgress {
    this.slots = Math.max(this.slots, slots);
    let eta: number | null = null;
    if (this.firstAnswer) {
      const seconds = (this.now() - this.firstAnswer.at) / 1000;
      const made = this.decisions - this.firstAnswer.decisions;
      if (seconds > 0 && made > 0) eta = Math.max(0, this.slots - this.decisions) / (made / seconds);
    }
    return {
      decisions: this.decisions,
      slots: this.slots,
      cacheHits: this.cacheHits,
      requests: this.requests,
      prefetchRequests: this.prefetchRequests,
      tokens: { ...this.tokens },
      spentUsd: this.price ? this.spent : null,
      fallbackPct: this.decisions > 0 ? (this.fallbacks / this.decisions) * 100 : null,
      etaSeconds: eta,
      scheduler: this.scheduler.stats(),
    };
  }

  /** What the rest of the run will ask and cost, from the preview (see {@link RunEstimate}). */
  estimate(preview: RequestPreview): RunEstimate {
    const { context, llm, backtest } = this.config;
    const cached = preview.cachedBefore + preview.cachedNow;
    const toAsk = Math.max(0, preview.remainingSlots - preview.cachedNow);
    const sized = preview.prompts.map((p) => p.tokens).filter((t): t is number => t !== null);
    const promptTokens = sized.length > 0 ? sized.reduce((a, b) => a + b, 0) / sized.length : null;
    const outputMeasured = preview.cachedBefore > 0;
    const outputPerAnswer = outputMeasured ? preview.cachedOutputTokens / preview.cachedBefore : ASSUMED_OUTPUT_TOKENS;
    const inputTokens = promptTokens === null ? null : Math.round(promptTokens * toAsk);
    const outputTokens = Math.round(outputPerAnswer * toAsk);
    const roundsPerTime = Math.ceil(preview.pairs / backtest.concurrency);
    const remainingTimes = Math.max(0, preview.times - 1 - preview.timeIndex);
    return {
      toAsk,
      cached,
      slots: preview.decisionSlots,
      prompts: preview.prompts.length,
      promptTokens,
      positionBudget: context.max_position_context_tokens,
      inputTokens,
      outputPerAnswer,
      outputMeasured,
      outputTokens,
      maxOutputTokens: toAsk * llm.max_tokens,
      price: this.price,
      costUsd:
        this.price && inputTokens !== null
          ? costUsd({ input: inputTokens, output: outputTokens }, this.price.price)
          : null,
      concurrency: backtest.concurrency,
      roundsPerTime,
      remainingTimes,
      answerTimes: roundsPerTime * remainingTimes,
      prefetch: backtest.prefetch,
      prefetchAnswerTimes: Math.ceil((preview.pairs * remainingTimes) / backtest.concurrency),
    };
  }

  /** Why the cost cap stopped the run, with what was spent. */
  capMessage(): string {
    const usd = (v: number) => (v < 1 ? v.toFixed(4) : v.toFixed(2));
    const cap = this.maxCostUsd ?? 0;
    const next = this.refused === null ? '' : `; the next decision could cost up to ${usd(this.refused)} USD`;
    return (
      `the cost cap stopped the run: ${usd(this.spent)} USD spent on ${this.requests} request(s) of ` +
      `${usd(cap)} USD allowed (--max-cost / llm.max_cost_usd)${next}. Every answer so far is in the decision ` +
      `cache: the same command continues from there with a new allowance of ${usd(cap)} USD (raise --max-cost ` +
      'to go further at once)'
    );
  }

  /** @param window the decisions judged; @param seen the decisions seen (fewer when the outcome was already certain) */
  private alarmMessage(window: number, seen: number): string {
    const { fallback_alarm_pct: pct } = this.config.backtest;
    const kinds = [...this.windowKinds].map(([k, v]) => `${PROBLEM_KIND_LABELS[k]} ${v}`).join(', ');
    const count =
      seen < window
        ? `${this.windowFallbacks} of the first ${seen} model decisions were fallbacks, already more than ` +
          `${pct} % of the first ${window} (backtest.fallback_alarm_pct, backtest.fallback_alarm_decisions)`
        : `${this.windowFallbacks} of the first ${window} model decisions (${((this.windowFallbacks / window) * 100).toFixed(1)} %) ` +
          `were fallbacks, more than backtest.fallback_alarm_pct ${pct} %`;
    const lines = [
      `fallback alarm: ${count}. A fallback is an answer still invalid after the repair round: the pair held or ` +
        'waited instead.',
      `  why, by kind: ${kinds || 'unknown'}`,
    ];
    if (this.example) {
      const e = this.example;
      lines.push(`  a rejected answer (${e.pair} at ${new Date(e.time).toISOString()}): ${e.answer}`);
      lines.push(`  its problems: ${e.problems.join('; ')}`);
    }
    lines.push(
      'The model does not answer with valid tool calls: check llm.model and that the server supports tool calling. ' +
        'The answers are in the decision cache (a rerun replays them; --no-cache asks again); pass --allow-fallbacks ' +
        'to run anyway.',
    );
    return lines.join('\n');
  }
}
