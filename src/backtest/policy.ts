/**
 * The decision policies a backtest can run: the rule baseline, any OpenAI-compatible model (through the decision
 * cache), or a recorded decision log. A policy is a decision provider plus what the backtester needs to know about it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { LlmConfig } from '../core/config';
import { redactCredentials } from '../core/redact';
import type { RecordedMarketSource } from '../exchange/market-source';
import { BaselineProvider } from '../llm/baseline';
import type { DecisionContext } from '../core/context-types';
import type { CacheMode, DecisionCache } from '../llm/decision-cache';
import type { CacheableProvider, DecisionProvider } from '../llm/provider';
import type { ReplayStats } from '../llm/replay-provider';
import type { RequestScheduler } from '../llm/request-scheduler';
import { InputError } from '../worker/errors';
import type { DecisionLogContents } from './replay-log';

export interface BacktestPolicy {
  /** short name for tables and reports: `baseline`, `openai`, `replay` */
  readonly name: string;
  /** stable identity that goes into the run id (same policy and inputs → same run id and order ids) */
  readonly id: string;
  /**
   * `light`: the provider reads only the snapshot and the position (the baseline), so no prompt is rendered or
   * tokenised; `prompt`: the full context of the live trader (system and user messages within the token budget,
   * learning from the backtest's own closed trades).
   */
  readonly context: 'light' | 'prompt';
  /**
   * True when decisions come from a remote model. The look-ahead check then compares the prompts and reuses the
   * recorded answer instead of asking the model again (an identical prompt gets the identical cached answer).
   */
  readonly remote: boolean;
  /**
   * The provider for a run over `market`. The backtester passes the market it runs on; a provider must not read it
   * (the look-ahead check passes a market whose future is corrupted, to catch one that does).
   */
  provider(market: RecordedMarketSource): DecisionProvider;
  /** for a remote model: true when the decision for `ctx` would come from the decision cache (no request) */
  isCached?(ctx: DecisionContext): boolean;
  /** for a remote model behind a decision cache: ask for `ctx` ahead of its decision (see BacktestOptions.prefetch) */
  prefetch?(ctx: DecisionContext): void;
  /** prefetched answers so far, and how many of them a decision used */
  prefetchStats?(): { answered: number; used: number };
}

/** The rule baseline (src/llm/baseline.ts) with the light context. */
export function baselinePolicy(): BacktestPolicy {
  const provider = new BaselineProvider();
  return { name: 'baseline', id: 'baseline', context: 'light', remote: false, provider: () => provider };
}

export interface OpenAIPolicyOptions {
  /** the decision cache; null: every decision is asked and nothing is kept */
  cache?: DecisionCache | null;
  /** `refresh`: ask every decision again and replace the stored answers (`--no-cache`); default `read-write` */
  cacheMode?: CacheMode;
  /** runs the requests concurrently and owns rate limits (see src/llm/request-scheduler.ts) */
  scheduler?: RequestScheduler;
  /** wraps the provider that sends the requests, below the cache (the backtest's cost cap and meter: llm-run.ts) */
  wrap?: (provider: CacheableProvider) => CacheableProvider;
  /** a missing API key fails the first request instead of this call (a dry run sends none) */
  deferKeyCheck?: boolean;
}

/**
 * The OpenAI-compatible provider for `llm` (its `api_base`, `model`, `temperature`...), behind the decision cache when
 * one is given (a rerun with the same prompts makes no request), else asking the model every time. (The model client
 * is loaded here, not at import: a baseline backtest does not need it.)
 * @throws LlmError LlmAuthentication when no API key is configured for an endpoint that is not local
 */
export async function openaiPolicy(llm: LlmConfig, options: OpenAIPolicyOptions = {}): Promise<BacktestPolicy> {
  const [{ OpenAIProvider }, { CachedProvider }] = await Promise.all([
    import('../llm/openai-provider'),
    import('../llm/decision-cache'),
  ]);
  const sender = new OpenAIProvider(llm, {
    ...(options.scheduler ? { scheduler: options.scheduler } : {}),
    ...(options.deferKeyCheck ? { deferKeyCheck: true } : {}),
  });
  const inner = options.wrap ? options.wrap(sender) : sender;
  const cached = options.cache ? new CachedProvider(inner, options.cache, options.cacheMode) : null;
  const provider: DecisionProvider = cached ?? inner;
  return {
    name: 'openai',
    id: `openai:${llm.model}@${redactCredentials(llm.api_base)} temperature=${llm.temperature} max_tokens=${llm.max_tokens}`,
    context: 'prompt',
    remote: true,
    provider: () => provider,
    isCached: (ctx) => cached?.isCached(ctx) ?? false,
    ...(cached
      ? { prefetch: (ctx: DecisionContext) => cached.prefetch(ctx), prefetchStats: () => ({ ...cached.prefetches }) }
      : {}),
  };
}

/** The replay policy, with what the backtester reports about the replayed log. */
export interface ReplayPolicy extends BacktestPolicy {
  /** the log as read (records, corrupt lines, a cut-off last line) */
  readonly log: DecisionLogContents;
  /** counters of the provider of the policy's own run (the first one made); null before the run */
  runStats(): ReplayStats | null;
}

/**
 * Replays a recorded decision log (`llm_decisions.jsonl` of a trader or of a backtest's `--out` folder) with the
 * replay provider: the decision recorded for the same pair and time, revalidated, or a hold/wait fallback. The policy
 * id holds a hash of the file's bytes, so the same log gives the same run id wherever it is. The log is read once;
 * every run (the policy's, the look-ahead reruns) gets its own provider over it, so the counters of the policy's run
 * are its own. Check the log before running (src/backtest/replay-log.ts).
 * @throws Error when the file does not exist
 */
export async function replayPolicy(file: string): Promise<ReplayPolicy> {
  const [{ ReplayProvider }, { readDecisionLog }] = await Promise.all([
    import('../llm/replay-provider'),
    import('./replay-log'),
  ]);
  if (!existsSync(file)) {
    throw new InputError(
      `replay policy: decision log ${file} does not exist; pass replay:<path of an llm_decisions.jsonl>, e.g. the one a ` +
        'previous backtest wrote into its --out folder',
    );
  }
  const digest = createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
  const log = readDecisionLog(file);
  const corrupt = log.incompleteLastLine ? [...log.corrupt, log.incompleteLastLine] : log.corrupt;
  const providers: InstanceType<typeof ReplayProvider>[] = [];
  return {
    name: 'replay',
    id: `replay:${digest}`,
    context: 'prompt',
    remote: false,
    log,
    provider: () => {
      const provider = new ReplayProvider(log.records, file, corrupt);
      providers.push(provider);
      return provider;
    },
    runStats: () => providers[0]?.stats() ?? null,
  };
}
