/**
 * Typed failures of an LLM call, classified once so the Temporal layer can decide on retries without parsing text.
 *
 * Transport failures (timeout, rate limit, server down, authentication, a request the server rejects) are thrown as
 * `LlmError`. An answer that arrives but is not a valid tool call is not an error: the provider repairs it once and
 * otherwise returns a safe fallback decision (see openai-provider.ts).
 */
import { type LLM_ERROR_TYPES, NON_RETRYABLE_LLM_ERROR_TYPES } from '../core/error-types';
import { Redactor, redactCredentials } from '../core/redact';

export { MIN_SECRET_LENGTH } from '../core/redact';

/** Every LLM failure type (defined in src/core/error-types.ts so workflow retry policies can list them). */
export type LlmErrorType = (typeof LLM_ERROR_TYPES)[number];

const NON_RETRYABLE: ReadonlySet<string> = new Set(NON_RETRYABLE_LLM_ERROR_TYPES);

/** Whether retrying later can help: yes for timeouts, rate limits and unavailable servers; no for a bad key or request. */
export function isRetryableLlmErrorType(type: LlmErrorType): boolean {
  return !NON_RETRYABLE.has(type);
}

/**
 * A classified LLM failure. `name` equals `type` (e.g. "LlmRateLimited"), so when an activity lets it propagate,
 * Temporal reports the failure with that type and a retry policy can list the non-retryable ones
 * (`LlmAuthentication`, `LlmBadRequest`) in `nonRetryableErrorTypes`. The message never contains the API key.
 */
export class LlmError extends Error {
  readonly type: LlmErrorType;
  /** true when a later attempt may succeed (false for LlmAuthentication and LlmBadRequest) */
  readonly retryable: boolean;
  /** HTTP status of the last response; null for network failures and timeouts */
  readonly status: number | null;
  /** the delay the server asked for before retrying (Retry-After), ms; null when it gave none */
  readonly retryAfterMs: number | null;

  constructor(
    type: LlmErrorType,
    message: string,
    opts: { status?: number | null; retryAfterMs?: number | null } = {},
  ) {
    super(message);
    this.name = type;
    this.type = type;
    this.retryable = isRetryableLlmErrorType(type);
    this.status = opts.status ?? null;
    this.retryAfterMs = opts.retryAfterMs ?? null;
  }
}

/**
 * Remove credentials from a text before it is put in an error, a log or a result: every occurrence of each of
 * `secrets` (8 characters or longer), bearer tokens, OpenAI-shaped keys and credentials inside URLs, by the project's
 * redactor (src/core/redact.ts).
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  return new Redactor(secrets).redact(text);
}

/** `api_base` without user info, query or fragment: safe to print. Returns the input redacted when it is not a URL. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return redactCredentials(url);
  }
}
