/**
 * The decision provider port: anything that turns a `DecisionContext` into a validated decision (the OpenAI-compatible
 * provider, the rule baseline, a replay of a recorded journal, the cache in front of one of them).
 */
import type { DecisionResult, TokenUsage } from '../core/types';
import type { ChatMessage, DecisionContext } from '../core/context-types';

/** A tool call as the model made it, before validation, kept for the journal. */
export interface ModelToolCall {
  /** the call id the server assigned; null when the server gave none or the call was read from the message text */
  id: string | null;
  name: string;
  /** exactly as received: usually a JSON string, sometimes an object or a double-encoded string */
  arguments: unknown;
  /** `native`: the server's `tool_calls` field; `text`: read from the message text (JSON, a code fence, <tool_call>) */
  origin: 'native' | 'text';
}

/**
 * A provider's result: the `DecisionResult` of the cycle plus what the journal records about how it was obtained.
 * Every extra field is optional, so a plain `DecisionResult` is a valid `ProviderDecision`.
 */
export interface ProviderDecision extends DecisionResult {
  /**
   * The model's reasoning text (a `reasoning_content` / `reasoning` field, or `<think>` blocks in the content), of every
   * round, in order; null when the model produced none. Never sent back to the model.
   */
  thinking?: string | null;
  /** the tool calls of every answer, in order (first answer, then the repair answer) */
  rawToolCalls?: ModelToolCall[];
  /**
   * the text of every answer without its thinking, in order (cut to 500 characters; '' for an answer that was only a
   * tool call): with `rawToolCalls`, what the model answered, e.g. to show a rejected answer
   */
  answerTexts?: string[];
  /** fields of the accepted tool call that the tool does not have, dropped by validation (see src/core/validate.ts) */
  droppedFields?: string[];
  /** harmless repairs accepted during validation (e.g. a numeric string read as a number), and provider notes */
  notes?: string[];
  /**
   * number of model answers requested: 1, or 2 after a repair round; 0 for a replayed decision (nothing asked). A
   * cache hit keeps the rounds of the original request (and says `cached`).
   */
  rounds?: number;
  /** true when the result was served from a decision cache (no request was made for it) */
  cached?: boolean;
  /**
   * worker wall time at which the decide activity had the answer, Unix ms. The workflow judges a decision's freshness
   * by it: recorded in the activity's result, it is the same when the history is replayed
   */
  answeredAt?: number;
  /** on a cache hit: the token usage of the original call (the hit itself used no tokens) */
  originalUsage?: TokenUsage;
  /** sha256 cache key of the request, when the result went through a decision cache */
  cacheKey?: string;
  /** the prompt that was sent (system, user), echoed by the decide activity so the workflow history shows it */
  prompt?: ChatMessage[];
}

/** How a decision is asked for. */
export interface DecideOptions {
  /**
   * true: a prefetch (a backtest asking ahead for a decision it may need): it only uses an idle request place, and a
   * cost cap that cannot afford it refuses it instead of stopping the run
   */
  prefetch?: boolean;
}

/** Turns a context into a decision. Implementations never return an unvalidated decision. */
export interface DecisionProvider {
  /** short identifier for logs and reports, e.g. "openai", "baseline" */
  readonly name: string;
  /** a promise, or the decision itself when the provider has it at once (the baseline) */
  decide(ctx: DecisionContext, options?: DecideOptions): ProviderDecision | Promise<ProviderDecision>;
}

/**
 * What a remote model's answers depend on besides the prompt and the tools: where they are asked (the endpoint without
 * credentials or query), the model and the request parameters. Part of the decision cache key.
 */
export interface RequestIdentity {
  endpoint: string;
  model: string;
  temperature: number;
  max_tokens: number;
  tool_choice: string;
  parallel_tool_calls: boolean;
}

/**
 * A provider whose answers depend only on its request identity, the messages and the tools: its results may be
 * cached.
 */
export interface CacheableProvider extends DecisionProvider {
  /** the model name sent to the server */
  readonly model: string;
  requestIdentity(): RequestIdentity;
}
