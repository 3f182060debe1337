/**
 * The back-off an exchange asks for. Binance answers HTTP 429 when a client exceeds its request weight and HTTP 418
 * when it bans a client that went on sending after 429s; both carry `Retry-After` (seconds): the time to wait before
 * sending anything again, to avoid the ban (429) or until the ban ends (418).
 *
 * One {@link BackOffGate} per exchange client (per process, shared by every pair it trades): every request waits at
 * the gate. After a 429/418 the gate is closed until the `Retry-After` has passed; a request that would have to wait
 * longer than `maxWaitMs` is not sent at all and fails at once with a retryable `ExchangeRateLimited`, so the caller
 * (a Temporal activity) retries later instead of holding its slot, and nothing reaches the exchange before it allows
 * it. ccxt's own rate limiter (`rateLimit`, always on) spaces requests below the limit in the first place.
 */
import { ExchangeError } from './errors';

/** Waited when a 429 carries no usable Retry-After, s. */
export const DEFAULT_RETRY_AFTER_429_S = 5;
/** Waited when a 418 carries no usable Retry-After, s (Binance bans last from 2 minutes to 3 days). */
export const DEFAULT_RETRY_AFTER_418_S = 120;

/**
 * Seconds from a `Retry-After` header value (delta-seconds or an HTTP date), or null when it is missing or unusable.
 * `headers` as ccxt passes them (names in any case).
 */
export function retryAfterSeconds(
  headers: Record<string, unknown> | undefined,
  now: number = Date.now(),
): number | null {
  if (!headers) return null;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === 'retry-after');
  const raw = key === undefined ? undefined : headers[key];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const date = Date.parse(text);
  return Number.isFinite(date) ? Math.max(0, (date - now) / 1000) : null;
}

export interface BackOffGateOptions {
  /** exchange id, for messages */
  exchange: string;
  /** longest wait at the gate before a request is refused instead, ms */
  maxWaitMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class BackOffGate {
  #until = 0;
  #status = 0;
  #seconds = 0;
  readonly #opts: Required<BackOffGateOptions>;

  constructor(opts: BackOffGateOptions) {
    this.#opts = {
      now: Date.now,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      ...opts,
    };
  }

  /** Wall time (Unix ms) until which nothing is sent; 0 when open. */
  get closedUntil(): number {
    return this.#until > this.#opts.now() ? this.#until : 0;
  }

  /** Records an answer: a 429 or 418 closes the gate for its Retry-After (or the default for that status). */
  observe(status: number, headers: Record<string, unknown> | undefined): void {
    if (status !== 429 && status !== 418) return;
    const now = this.#opts.now();
    const seconds =
      retryAfterSeconds(headers, now) ?? (status === 418 ? DEFAULT_RETRY_AFTER_418_S : DEFAULT_RETRY_AFTER_429_S);
    const until = now + Math.ceil(seconds * 1000);
    if (until > this.#until) {
      this.#until = until;
      this.#status = status;
      this.#seconds = seconds;
    }
  }

  /**
   * Resolves when a request may be sent: at once when the gate is open, after the wait when it closes for at most
   * `maxWaitMs` more.
   * @throws ExchangeError `ExchangeRateLimited` (retryable), without sending, when the wait would be longer
   */
  async pass(what: string): Promise<void> {
    for (;;) {
      const wait = this.#until - this.#opts.now();
      if (wait <= 0) return;
      if (wait > this.#opts.maxWaitMs) {
        const what429 = this.#status === 418 ? 'banned this client (HTTP 418)' : 'rate-limited this client (HTTP 429)';
        throw new ExchangeError(
          'ExchangeRateLimited',
          `${this.#opts.exchange} ${what}: not sent: the exchange ${what429} and asked to wait ${this.#seconds} s ` +
            `(Retry-After), until ${new Date(this.#until).toISOString()}; retried after that (nothing is sent before)`,
        );
      }
      await this.#opts.sleep(wait);
    }
  }
}
