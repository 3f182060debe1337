/**
 * The decision provider for any OpenAI-compatible `/v1/chat/completions` endpoint (OpenAI, vLLM, llama.cpp, Ollama,
 * LM Studio, DeepSeek, OpenRouter...), through the official `openai` client.
 *
 * One decision:
 * 1. Ask with the strict tool definitions of the allowed tools and `tool_choice: "required"`.
 * 2. Read the answer: native `tool_calls`, or, from servers without native tool calling, a call written in the text
 *    (JSON, a code fence, `<tool_call>` tags). Thinking (`reasoning_content` / `reasoning` fields, `<think>` blocks)
 *    is kept for the journal and never sent back.
 * 3. Validate with `validateToolCalls`. Invalid: ONE repair round that sends the problems back (a `tool` message
 *    answering the call, or a user message when there was no native call). Still invalid: the safe fallback
 *    (`signal_hold` in a position, `signal_wait` when flat) with reason "invalid model output: ...", source
 *    `fallback`.
 *
 * Failure policy: invalid OUTPUT never throws (it ends in the fallback decision, so the cycle goes on and the risk
 * rules keep running); TRANSPORT failures throw an `LlmError` (timeout, rate limit, server unavailable: retryable;
 * authentication, rejected request: not retryable) after the client's own retries, so the Temporal activity retries
 * with its backoff. Nothing else escapes: an unexpected exception becomes `LlmUnavailable`.
 *
 * Timeouts and retries: `llm.timeout` applies to EACH attempt and covers the response headers and the whole body (the
 * client's own timer stops at the headers, so a server that sends headers and then stalls is cut off by a wrapper
 * around fetch). The client retries `llm.retry_times` times on connection errors, timeouts, 408, 409, 429 and 5xx,
 * with exponential backoff (0.5 s doubling, at most 8 s, jittered) or the server's Retry-After, which is capped at
 * `maxRetryAfterMs` so that one call cannot sleep for an hour inside an activity.
 *
 * Compatibility: some models reject parameters (OpenAI's o-series and gpt-5 want `max_completion_tokens` instead of
 * `max_tokens` and only the default temperature; some servers reject `tool_choice: "required"` or
 * `parallel_tool_calls`). When the server answers 400/422 naming one of those parameters, the provider adapts once
 * (switches the token-limit parameter, drops temperature or parallel_tool_calls, uses `tool_choice: "auto"`), resends,
 * keeps the adaptation for later calls and records a note.
 *
 * Rate limits: by default the client retries a 429 like the failures above. With a `scheduler`
 * (src/llm/request-scheduler.ts: the backtester's), every request waits for a place in it and a 429 is handed to it
 * instead (the client is told not to retry it): the scheduler honours Retry-After, lowers the concurrency for a while
 * and asks again, so a rate limit never fails the call. A 429 for an exhausted quota (`insufficient_quota`) is not a
 * rate limit: it fails with LlmRateLimited and says to add credit.
 *
 * The API key is sent only as the Authorization header; it is removed from every error message and result. Without
 * a key, only a local endpoint may be used (src/llm/endpoint.ts): no Authorization header is sent to it; for any
 * other endpoint the constructor throws LlmAuthentication instead of sending a request that cannot be authorised.
 */
import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  BadRequestError,
  UnprocessableEntityError,
} from 'openai';
import type {
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import type { LlmConfig } from '../core/config';
import type { DecisionContext } from '../core/context-types';
import type { Decision, HoldArgs, TokenUsage, ToolName } from '../core/types';
import { REASON_MAX_CHARS, TOOL_NAMES } from '../core/tools';
import { validateToolCalls } from '../core/validate';
import { Redactor } from '../core/redact';
import { isLocalEndpoint } from './endpoint';
import { LlmError, safeUrl } from './errors';
import { extractTextToolCalls, splitThinking } from './model-output';
import type { CacheableProvider, DecideOptions, ModelToolCall, ProviderDecision, RequestIdentity } from './provider';
import type { RateLimitSignal, RequestLane, RequestScheduler } from './request-scheduler';

/**
 * The client requires some credential even when none is sent; for a local endpoint without a key it gets this, and
 * the Authorization header is removed from every request (see the constructor), so it never leaves the process.
 */
const UNSENT_CREDENTIAL = 'unsent';

/** Longest answer text kept for the journal and the fallback alarm's example, characters. */
const ANSWER_TEXT_MAX_CHARS = 500;

/** Default cap on a server's Retry-After, ms. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 30_000;

/** Header in which the fetch wrapper keeps the delay the server asked for, before capping it (ms). */
const REQUESTED_RETRY_AFTER_HEADER = 'x-llm-trader-requested-retry-after-ms';

/** Statuses whose response must have no body (the Response constructor rejects one). */
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([101, 204, 205, 304]);

/** The longest server message quoted in an error, characters. */
const SERVER_MESSAGE_MAX_CHARS = 300;

/** Model names that require `max_completion_tokens` (OpenAI reasoning models). */
const COMPLETION_TOKENS_MODEL_RE = /^(?:o\d|gpt-5)/i;

const KNOWN_TOOLS: ReadonlySet<string> = new Set(TOOL_NAMES);

type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export type TokenLimitParam = 'max_tokens' | 'max_completion_tokens';

export interface OpenAIProviderOptions {
  /** which request field carries `llm.max_tokens`; default: `max_completion_tokens` for o-series and gpt-5 models */
  tokenLimitParam?: TokenLimitParam;
  /** cap on a server's Retry-After between the client's retries, ms (default 30 000) */
  maxRetryAfterMs?: number;
  /** run every request through this scheduler, which also owns rate limits (see the file comment) */
  scheduler?: RequestScheduler;
  /**
   * a missing key for a remote endpoint fails the first decision instead of the construction, sending nothing (a
   * backtest's dry run, which previews a run and sends no request)
   */
  deferKeyCheck?: boolean;
}

/** The request fields the provider may change after a server rejects them. */
interface RequestCompat {
  tokenLimitParam: TokenLimitParam;
  sendTemperature: boolean;
  sendParallelToolCalls: boolean;
  toolChoice: 'required' | 'auto';
}

/** One model answer, read. */
interface ModelAnswer {
  /** the model name the server reported */
  model: string | null;
  /** the message text without thinking */
  text: string;
  thinking: string | null;
  calls: ModelToolCall[];
  /** whether `calls` came from the native `tool_calls` field */
  native: boolean;
  finishReason: string | null;
  /** null when the server reported no usage */
  usage: TokenUsage | null;
}

function isQuotaExhausted(err: APIError): boolean {
  return err.code === 'insufficient_quota' || /insufficient_quota/.test(err.message);
}

/** The rate-limit test of the scheduler: a 429 that is not an exhausted quota, with the delay the server asked for. */
function rateLimitOf(err: unknown): RateLimitSignal | null {
  if (!(err instanceof APIError) || err.status !== 429 || isQuotaExhausted(err)) return null;
  const requested = err.headers?.get(REQUESTED_RETRY_AFTER_HEADER) ?? null;
  const ms = requested !== null ? Number(requested) : NaN;
  return { retryAfterMs: Number.isFinite(ms) ? ms : null };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/**
 * The delay a response asks for before a retry, ms: `retry-after-ms`, else `retry-after` in seconds or as an HTTP
 * date. Null when neither header is present or readable; never negative.
 */
export function requestedRetryAfterMs(headers: Headers, now: number): number | null {
  const ms = headers.get('retry-after-ms');
  if (ms !== null) {
    const v = Number.parseFloat(ms);
    if (Number.isFinite(v)) return Math.max(0, v);
  }
  const ra = headers.get('retry-after');
  if (ra !== null) {
    const seconds = Number.parseFloat(ra);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(ra);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  return null;
}

function abortError(message: string): Error {
  const err = new Error(message);
  // the openai client recognises a timeout by this name, then retries or throws APIConnectionTimeoutError
  err.name = 'AbortError';
  return err;
}

/**
 * A fetch whose deadline covers the response headers AND the whole body (read into memory), per call (= per attempt
 * of the client), and which caps a Retry-After header at `maxRetryAfterMs` (the requested delay is kept in the
 * REQUESTED_RETRY_AFTER_HEADER header for the error). Aborting the caller's signal aborts the request.
 *
 * Why: the client clears its own timer as soon as fetch resolves, i.e. at the response headers, so a server that sends
 * headers and then stalls would hold the call forever. Reading the body here puts it under the client's timer too;
 * the wrapper's own timer makes the deadline independent of that client detail.
 */
function deadlineFetch(timeoutMs: number, maxRetryAfterMs: number, callerRetriesRateLimits: boolean): FetchFn {
  return async (input, init) => {
    const controller = new AbortController();
    const outer = init?.signal ?? null;
    const forward = () => controller.abort(outer?.reason);
    if (outer?.aborted) forward();
    else outer?.addEventListener('abort', forward, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    try {
      const response = await fetch(input, { ...init, signal: controller.signal });
      const body = NULL_BODY_STATUSES.has(response.status) ? null : await response.arrayBuffer();
      const headers = new Headers(response.headers);
      // the body is already decoded and complete
      headers.delete('content-encoding');
      headers.delete('content-length');
      headers.delete('transfer-encoding');
      if (!response.ok) {
        const requested = requestedRetryAfterMs(headers, Date.now());
        if (requested !== null) {
          headers.set(REQUESTED_RETRY_AFTER_HEADER, String(Math.round(requested)));
          if (requested > maxRetryAfterMs) {
            headers.delete('retry-after');
            headers.set('retry-after-ms', String(maxRetryAfterMs));
          }
        }
        // the scheduler retries rate limits itself, with what it knows of every request in flight
        if (callerRetriesRateLimits && response.status === 429) headers.set('x-should-retry', 'false');
      }
      return new Response(body, { status: response.status, statusText: response.statusText, headers });
    } catch (err) {
      if (timedOut) throw abortError(`request timed out after ${timeoutMs} ms (response headers and body)`);
      throw err;
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', forward);
    }
  };
}

/** The message of an error and of its causes (up to 3 levels), with error codes: "fetch failed: connect ECONNREFUSED". */
function describeCause(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; depth < 4 && cur !== undefined && cur !== null; depth++) {
    if (cur instanceof Error) {
      const code = (cur as { code?: unknown }).code;
      const text = typeof code === 'string' && !cur.message.includes(code) ? `${cur.message} (${code})` : cur.message;
      if (text && !parts.includes(text)) parts.push(text);
      cur = (cur as { cause?: unknown }).cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.join(': ') || 'unknown error';
}

function mentions(text: string, name: string): boolean {
  return new RegExp(`(^|[^A-Za-z0-9_])${name}([^A-Za-z0-9_]|$)`).test(text);
}

/**
 * Adapt `compat` to a 400/422 that names a request parameter the provider can change; returns a note saying what
 * changed, or null when the rejection is about something else (then it is a real bad request).
 */
function adaptToRejection(compat: RequestCompat, err: APIError): string | null {
  const text = `${err.param ?? ''} ${err.message}`;
  if (compat.tokenLimitParam === 'max_tokens' && mentions(text, 'max_tokens')) {
    compat.tokenLimitParam = 'max_completion_tokens';
    return 'the server rejected max_tokens; sending the limit as max_completion_tokens from now on';
  }
  if (compat.tokenLimitParam === 'max_completion_tokens' && mentions(text, 'max_completion_tokens')) {
    compat.tokenLimitParam = 'max_tokens';
    return 'the server rejected max_completion_tokens; sending the limit as max_tokens from now on';
  }
  if (compat.sendTemperature && mentions(text, 'temperature')) {
    compat.sendTemperature = false;
    return 'the server rejected the configured temperature; using the model default from now on';
  }
  if (compat.sendParallelToolCalls && mentions(text, 'parallel_tool_calls')) {
    compat.sendParallelToolCalls = false;
    return 'the server rejected parallel_tool_calls; no longer sending it';
  }
  if (compat.toolChoice === 'required' && mentions(text, 'tool_choice')) {
    compat.toolChoice = 'auto';
    return 'the server rejected tool_choice "required"; using "auto" from now on';
  }
  return null;
}

/** Most parameter adaptations one request may go through (there are four adaptable parameters). */
const MAX_ADAPTATIONS = 4;

/** `arguments` as the JSON string the chat API expects in an assistant message. */
function argumentsString(args: unknown): string {
  if (typeof args === 'string') return args;
  return JSON.stringify(args ?? {});
}

/** The text of a message's `content` (a string, or an array of text parts as some servers send). */
function contentText(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    const texts = content.map((p) => (isRecord(p) && typeof p.text === 'string' ? p.text : '')).filter((t) => t);
    return texts.length > 0 ? texts.join('') : null;
  }
  return null;
}

/** Read the first choice of a chat completion (already checked to have one with a `message` object). */
function readAnswer(
  completion: Record<string, unknown>,
  message: Record<string, unknown>,
  finish: unknown,
): ModelAnswer {
  let content = contentText(message.content);
  if (typeof message.refusal === 'string' && message.refusal.trim() !== '') {
    content = content ? `${content}\n${message.refusal}` : message.refusal;
  }
  const { answer, thinking } = splitThinking(content, [message.reasoning_content, message.reasoning]);

  const native: ModelToolCall[] = [];
  if (Array.isArray(message.tool_calls)) {
    for (const tc of message.tool_calls) {
      if (!isRecord(tc)) continue;
      const fn = isRecord(tc.function) ? tc.function : {};
      native.push({
        id: typeof tc.id === 'string' && tc.id !== '' ? tc.id : null,
        name: typeof fn.name === 'string' ? fn.name : '',
        arguments: fn.arguments,
        origin: 'native',
      });
    }
  }
  // the deprecated single `function_call` field, still produced by some servers
  if (native.length === 0 && isRecord(message.function_call)) {
    const fc = message.function_call;
    native.push({
      id: null,
      name: typeof fc.name === 'string' ? fc.name : '',
      arguments: fc.arguments,
      origin: 'native',
    });
  }
  const calls: ModelToolCall[] =
    native.length > 0
      ? native
      : extractTextToolCalls(answer, KNOWN_TOOLS).map((c) => ({
          id: null,
          name: c.name,
          arguments: c.arguments,
          origin: 'text' as const,
        }));

  const u = completion.usage;
  const input = isRecord(u) ? u.prompt_tokens : undefined;
  const output = isRecord(u) ? u.completion_tokens : undefined;
  const details = isRecord(u) && isRecord(u.prompt_tokens_details) ? u.prompt_tokens_details : null;
  const cached = details ? details.cached_tokens : undefined;
  const usage: TokenUsage | null =
    typeof input === 'number' || typeof output === 'number'
      ? {
          input: typeof input === 'number' ? input : 0,
          output: typeof output === 'number' ? output : 0,
          ...(typeof cached === 'number' ? { cachedInput: cached } : {}),
        }
      : null;
  return {
    model: typeof completion.model === 'string' && completion.model !== '' ? completion.model : null,
    text: answer,
    thinking,
    calls,
    native: native.length > 0,
    finishReason: typeof finish === 'string' ? finish : null,
    usage,
  };
}

/** The messages that send `problems` back to the model after `answer` (thinking is left out). */
function repairMessages(
  answer: ModelAnswer,
  problems: string[],
  allowed: readonly ToolName[],
): ChatCompletionMessageParam[] {
  const list = problems.map((p) => `- ${p}`).join('\n');
  const instruction = `Call exactly one of ${allowed.join(', ')} again, with every problem above fixed.`;
  if (answer.native) {
    const ids = answer.calls.map((c, i) => c.id ?? `call_${i + 1}`);
    return [
      {
        role: 'assistant',
        content: answer.text === '' ? null : answer.text,
        tool_calls: answer.calls.map((c, i) => ({
          id: ids[i] ?? `call_${i + 1}`,
          type: 'function' as const,
          function: { name: c.name, arguments: argumentsString(c.arguments) },
        })),
      },
      ...ids.map((id, i): ChatCompletionMessageParam => ({
        role: 'tool',
        tool_call_id: id,
        content:
          i === 0
            ? `Rejected, not executed. Problems:\n${list}\n${instruction}`
            : 'Not executed: only the first tool call of an answer counts.',
      })),
    ];
  }
  const heading =
    answer.calls.length > 0
      ? 'Your tool call was rejected, not executed. Problems:'
      : 'Your answer was not accepted. Problems:';
  const messages: ChatCompletionMessageParam[] = [];
  if (answer.text !== '') messages.push({ role: 'assistant', content: answer.text });
  messages.push({ role: 'user', content: `${heading}\n${list}\n${instruction} Answer with the tool call only.` });
  return messages;
}

/**
 * The safe decision when the model gave no valid call after the repair round: `signal_hold` in a position,
 * `signal_wait` when flat, confidence 0, reason "invalid model output: <problems joined by '; '>" (cut to the reason
 * limit). `rsi_value` is RSI(14) of the main timeframe, or 50 (neutral) when it is not available, because the tool
 * arguments require a number.
 */
export function fallbackDecision(
  ctx: Pick<DecisionContext, 'pair' | 'hasPosition' | 'snapshot'>,
  problems: readonly string[],
): Decision {
  const rsi = ctx.snapshot.timeframes[ctx.snapshot.mainTimeframe]?.indicators.rsi14 ?? null;
  const args: HoldArgs = {
    pair: ctx.pair,
    confidence_score: 0,
    rsi_value: rsi !== null && Number.isFinite(rsi) ? Math.min(100, Math.max(0, rsi)) : 50,
    reason: truncate(`invalid model output: ${problems.join('; ')}`, REASON_MAX_CHARS),
  };
  return ctx.hasPosition ? { tool: 'signal_hold', args } : { tool: 'signal_wait', args };
}

/** Decision provider for an OpenAI-compatible chat-completions endpoint. See the file comment for the policy. */
export class OpenAIProvider implements CacheableProvider {
  readonly name = 'openai';
  readonly model: string;
  readonly temperature: number;
  private readonly client: OpenAI;
  private readonly maxTokens: number;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly baseUrl: string;
  private readonly keyConfigured: boolean;
  private readonly redactor: Redactor;
  private readonly compat: RequestCompat;
  private readonly scheduler: RequestScheduler | null;
  private readonly identity: RequestIdentity;
  /** why no request may be sent (a missing key, with `deferKeyCheck`); null when requests may go out */
  private readonly refusal: LlmError | null;

  /**
   * @param llm `api_base`, `api_key` (empty: only for a local endpoint, see the file comment), `model`, `temperature`,
   *   `max_tokens`, `timeout` (seconds per attempt, rounded to whole ms), `retry_times` (retries after the first attempt).
   * @throws LlmError LlmAuthentication when no key is configured for an endpoint that is not local
   */
  constructor(llm: LlmConfig, options: OpenAIProviderOptions = {}) {
    this.model = llm.model;
    this.temperature = llm.temperature;
    this.maxTokens = llm.max_tokens;
    this.timeoutMs = Math.max(1, Math.round(llm.timeout * 1000));
    this.retries = llm.retry_times;
    this.baseUrl = safeUrl(llm.api_base);
    this.keyConfigured = llm.api_key !== '';
    this.refusal =
      !this.keyConfigured && !isLocalEndpoint(llm.api_base)
        ? new LlmError(
            'LlmAuthentication',
            `no API key for ${this.baseUrl}: set OPENAI_API_KEY (or llm.api_key) to a key for this server; only a ` +
              'local endpoint (localhost, a private address, a single-label host name such as a Compose service) is ' +
              'used without one',
          )
        : null;
    if (this.refusal && !options.deferKeyCheck) throw this.refusal;
    this.redactor = new Redactor([llm.api_key]);
    this.scheduler = options.scheduler ?? null;
    this.compat = {
      tokenLimitParam:
        options.tokenLimitParam ??
        (COMPLETION_TOKENS_MODEL_RE.test(llm.model) ? 'max_completion_tokens' : 'max_tokens'),
      sendTemperature: true,
      sendParallelToolCalls: true,
      toolChoice: 'required',
    };
    this.identity = {
      endpoint: this.baseUrl,
      model: this.model,
      temperature: this.temperature,
      max_tokens: this.maxTokens,
      tool_choice: 'required',
      parallel_tool_calls: false,
    };
    this.client = new OpenAI({
      apiKey: this.keyConfigured ? llm.api_key : UNSENT_CREDENTIAL,
      ...(this.keyConfigured ? {} : { defaultHeaders: { Authorization: null } }),
      baseURL: llm.api_base,
      timeout: this.timeoutMs,
      maxRetries: llm.retry_times,
      fetch: deadlineFetch(
        this.timeoutMs,
        options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS,
        this.scheduler !== null,
      ),
    });
  }

  /**
   * What the answers depend on besides the prompt: the endpoint without credentials or query, the model and the
   * request parameters as configured (not as adapted to a server that rejected one: a rerun starts from the same).
   */
  requestIdentity(): RequestIdentity {
    return this.identity;
  }

  /**
   * Decide for `ctx`: one request, plus one repair request when the first answer is invalid.
   * Resolves with a validated decision (source `openai`) or the fallback (source `fallback`, problems listed).
   * Rejects only with an `LlmError` (transport failure after the client's retries).
   * `usage` sums both rounds; `latencyMs` is the wall time of the whole call including retries.
   */
  async decide(ctx: DecisionContext, options: DecideOptions = {}): Promise<ProviderDecision> {
    if (this.refusal) throw this.refusal;
    const started = performance.now();
    try {
      return this.redactor.redactDeep(await this.run(ctx, started, options.prefetch ? 'spare' : 'now'));
    } catch (err) {
      throw err instanceof LlmError ? err : this.classify(err);
    }
  }

  private async run(ctx: DecisionContext, started: number, lane: RequestLane): Promise<ProviderDecision> {
    const conversation: ChatCompletionMessageParam[] = ctx.messages.map((m) => ({ role: m.role, content: m.content }));
    const usage: TokenUsage = { input: 0, output: 0 };
    const notes: string[] = [];
    const thinking: string[] = [];
    const rawToolCalls: ModelToolCall[] = [];
    const answerTexts: string[] = [];
    const problems: string[] = [];
    let model = this.model;
    let lastProblems: string[] = [];

    for (let round = 1; round <= 2; round++) {
      const answer = await this.ask(conversation, ctx, notes, lane);
      if (answer.model) model = answer.model;
      if (answer.usage) {
        usage.input += answer.usage.input;
        usage.output += answer.usage.output;
        if (answer.usage.cachedInput !== undefined)
          usage.cachedInput = (usage.cachedInput ?? 0) + answer.usage.cachedInput;
      } else {
        notes.push(`answer ${round}: the server reported no token usage`);
      }
      if (answer.thinking) thinking.push(answer.thinking);
      rawToolCalls.push(...answer.calls);
      answerTexts.push(truncate(answer.text, ANSWER_TEXT_MAX_CHARS));

      const result = validateToolCalls(answer.calls, { pair: ctx.pair, hasPosition: ctx.hasPosition });
      if (result.ok) {
        if (!answer.native) notes.push(`answer ${round}: the tool call was read from the message text`);
        notes.push(...result.notes);
        return {
          decision: result.decision,
          source: 'openai',
          model,
          usage,
          latencyMs: Math.round(performance.now() - started),
          problems,
          thinking: thinking.length > 0 ? thinking.join('\n\n') : null,
          rawToolCalls,
          answerTexts,
          notes,
          rounds: round,
          droppedFields: result.dropped,
        };
      }
      lastProblems = [...result.problems];
      if (answer.finishReason === 'length') {
        lastProblems.push(
          `the answer was cut off at the output limit of ${this.maxTokens} tokens: call the tool directly and keep reason short`,
        );
      }
      problems.push(...lastProblems.map((p) => `answer ${round}: ${p}`));
      if (round === 1) conversation.push(...repairMessages(answer, lastProblems, ctx.allowedTools));
    }

    const decision = fallbackDecision(ctx, lastProblems);
    if (ctx.snapshot.timeframes[ctx.snapshot.mainTimeframe]?.indicators.rsi14 == null) {
      notes.push('fallback rsi_value is 50 (neutral): RSI(14) of the main timeframe is not available');
    }
    return {
      decision,
      source: 'fallback',
      model,
      usage,
      latencyMs: Math.round(performance.now() - started),
      problems,
      thinking: thinking.length > 0 ? thinking.join('\n\n') : null,
      rawToolCalls,
      answerTexts,
      notes,
      rounds: 2,
      droppedFields: [],
    };
  }

  private requestBody(
    messages: ChatCompletionMessageParam[],
    ctx: DecisionContext,
  ): ChatCompletionCreateParamsNonStreaming {
    const c = this.compat;
    return {
      model: this.model,
      messages,
      tools: ctx.tools,
      tool_choice: c.toolChoice,
      ...(c.sendParallelToolCalls ? { parallel_tool_calls: false } : {}),
      ...(c.sendTemperature ? { temperature: this.temperature } : {}),
      ...(c.tokenLimitParam === 'max_tokens'
        ? { max_tokens: this.maxTokens }
        : { max_completion_tokens: this.maxTokens }),
    };
  }

  /** One chat completion (the client retries transport failures), adapted to parameter rejections; then read. */
  private async ask(
    messages: ChatCompletionMessageParam[],
    ctx: DecisionContext,
    notes: string[],
    lane: RequestLane,
  ): Promise<ModelAnswer> {
    for (let adaptations = 0; ; adaptations++) {
      let completion: unknown;
      try {
        const body = this.requestBody(messages, ctx);
        completion = this.scheduler
          ? await this.scheduler.run(() => this.client.chat.completions.create(body), rateLimitOf, lane)
          : await this.client.chat.completions.create(body);
      } catch (err) {
        if (
          adaptations < MAX_ADAPTATIONS &&
          (err instanceof BadRequestError || err instanceof UnprocessableEntityError)
        ) {
          const note = adaptToRejection(this.compat, err);
          if (note) {
            notes.push(note);
            continue;
          }
        }
        throw this.classify(err);
      }
      const choices = isRecord(completion) ? completion.choices : undefined;
      const first: unknown = Array.isArray(choices) ? choices[0] : undefined;
      if (!isRecord(completion) || !isRecord(first) || !isRecord(first.message)) {
        const got =
          typeof completion === 'string'
            ? `text starting ${JSON.stringify(completion.slice(0, 80))}`
            : 'JSON without choices[0].message';
        throw new LlmError(
          'LlmUnavailable',
          this.sanitize(
            `LLM server ${this.baseUrl} (model ${this.model}) answered HTTP 200 with something that is not a chat ` +
              `completion (${got}): check that llm.api_base is an OpenAI-compatible /v1 endpoint`,
          ),
        );
      }
      return readAnswer(completion, first.message, first.finish_reason);
    }
  }

  private sanitize(text: string): string {
    return this.redactor.redact(text);
  }

  /** Classify any failure of a request into an `LlmError` with a message that says what to do. */
  private classify(err: unknown): LlmError {
    const where = `LLM request to ${this.baseUrl} (model ${this.model})`;
    const attempts = `${this.retries + 1} attempt(s)`;
    const fix = (text: string) => this.sanitize(text);
    if (err instanceof LlmError) return err;
    if (err instanceof APIConnectionTimeoutError) {
      return new LlmError(
        'LlmTimeout',
        fix(
          `${where} timed out after ${this.timeoutMs / 1000} s per attempt, ${attempts}: the server is too slow or ` +
            'not answering; raise llm.timeout or llm.retry_times, or use a faster model',
        ),
      );
    }
    if (err instanceof APIConnectionError) {
      return new LlmError(
        'LlmUnavailable',
        fix(
          `${where} could not connect after ${attempts}: ${describeCause(err)}; check llm.api_base and that the server is running`,
        ),
      );
    }
    if (err instanceof APIError && typeof err.status === 'number') {
      const status = err.status;
      const serverSays = truncate(err.message.replace(/^\d{3}\s+/, ''), SERVER_MESSAGE_MAX_CHARS);
      const requested = err.headers?.get(REQUESTED_RETRY_AFTER_HEADER) ?? null;
      const retryAfterMs = requested !== null && Number.isFinite(Number(requested)) ? Number(requested) : null;
      if (status === 429 && isQuotaExhausted(err)) {
        return new LlmError(
          'LlmRateLimited',
          fix(
            `${where} was refused (HTTP 429, insufficient_quota): ${serverSays}; the account has no credit left: add ` +
              'credit or use another key',
          ),
          { status, retryAfterMs },
        );
      }
      if (status === 429) {
        return new LlmError(
          'LlmRateLimited',
          fix(
            `${where} was rate limited (HTTP 429) after ${attempts}: ${serverSays}; retry later or raise the account's limits`,
          ),
          { status, retryAfterMs },
        );
      }
      if (status === 401 || status === 403) {
        const key = this.keyConfigured ? 'the configured API key' : 'no API key (none is configured)';
        return new LlmError(
          'LlmAuthentication',
          fix(
            `${where} was refused (HTTP ${status}) with ${key}: ${serverSays}; set OPENAI_API_KEY (or llm.api_key) to a valid key for this server`,
          ),
          { status },
        );
      }
      if (status === 408 || status === 504) {
        return new LlmError(
          'LlmTimeout',
          fix(`${where} timed out on the server side (HTTP ${status}) after ${attempts}: ${serverSays}`),
          { status, retryAfterMs },
        );
      }
      if (status === 409 || status >= 500) {
        return new LlmError(
          'LlmUnavailable',
          fix(
            `${where} failed with HTTP ${status} after ${attempts}: ${serverSays}; the server is unavailable, retry later`,
          ),
          { status, retryAfterMs },
        );
      }
      return new LlmError(
        'LlmBadRequest',
        fix(`${where} was rejected (HTTP ${status}): ${serverSays}; check llm.model, llm.api_base and llm.max_tokens`),
        { status },
      );
    }
    return new LlmError('LlmUnavailable', fix(`${where} failed unexpectedly: ${describeCause(err)}`));
  }
}
