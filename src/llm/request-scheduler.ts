/**
 * Model requests in flight at once, adapted to what the server allows.
 *
 * - At most `limit` requests run at once, started in the order they were submitted (a request put back after a rate
 *   limit goes first). `limit` starts at the configured concurrency.
 * - A request the server answers with HTTP 429 is not a failure: it goes back to the front of the queue, no request
 *   starts until the server's Retry-After has passed (without one: 1 s, doubling with every further 429 up to 60 s),
 *   and the limit is halved (once per pause: the requests that were in flight when the server's limit hit answer 429
 *   together). A wait is capped at `maxWaitMs` (15 minutes by default); the request is then simply asked again.
 * - After `limit` successes in a row the limit grows by one, back up to the configured concurrency.
 * - Two lanes: `now` (a decision the run waits for) and `spare` (a prefetch that only uses a place no `now` request
 *   is waiting for). A spare request never delays a queued `now` one from starting.
 *
 * So a run is never failed by a rate limit: it slows down to what the server accepts and speeds up again. Any other
 * failure of a request is passed on as it is.
 */

/** What a rate-limited attempt asks for: the delay the server gave (Retry-After), null when it gave none. */
export interface RateLimitSignal {
  retryAfterMs: number | null;
}

/** Tells a rate-limited failure (HTTP 429) from any other: its signal, or null when the failure is not one. */
export type RateLimitTest = (err: unknown) => RateLimitSignal | null;

export interface RequestSchedulerOptions {
  /** requests in flight at most (the configured concurrency) */
  concurrency: number;
  /** longest single wait after a 429, ms (default 15 minutes) */
  maxWaitMs?: number;
  /** wall clock, ms (tests) */
  now?: () => number;
}

/** The scheduler's state, for progress lines. */
export interface SchedulerStats {
  /** the configured concurrency */
  concurrency: number;
  /** requests allowed in flight now */
  limit: number;
  inFlight: number;
  queued: number;
  /** 429 answers so far */
  rateLimited: number;
  /** wall time (ms) until which no request starts, null when not waiting */
  waitingUntil: number | null;
}

/** `now`: a request the run waits for; `spare`: one that may use an idle place (see the module comment). */
export type RequestLane = 'now' | 'spare';

interface Job {
  lane: RequestLane;
  task: () => Promise<unknown>;
  isRateLimit: RateLimitTest;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

const DEFAULT_MAX_WAIT_MS = 15 * 60_000;
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;

export class RequestScheduler {
  readonly concurrency: number;
  private limit: number;
  private inFlight = 0;
  private readonly queue: Job[] = [];
  private readonly spare: Job[] = [];
  private pausedUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private successes = 0;
  /** the backoff of the next 429 without a Retry-After (0: none yet since the last success) */
  private backoffMs = 0;
  private rateLimited = 0;
  private readonly maxWaitMs: number;
  private readonly now: () => number;

  constructor(options: RequestSchedulerOptions) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new Error(`request scheduler: concurrency must be a positive integer, got ${options.concurrency}`);
    }
    this.concurrency = options.concurrency;
    this.limit = options.concurrency;
    this.maxWaitMs = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * Runs `task` when a place is free; resolves with its value, or rejects with its error unless `isRateLimit` says the
   * error is a rate limit, in which case the task is run again later (see the module comment).
   */
  run<T>(task: () => Promise<T>, isRateLimit: RateLimitTest, lane: RequestLane = 'now'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const job: Job = { lane, task, isRateLimit, resolve: resolve as (value: unknown) => void, reject };
      (lane === 'now' ? this.queue : this.spare).push(job);
      this.pump();
    });
  }

  stats(): SchedulerStats {
    const now = this.now();
    return {
      concurrency: this.concurrency,
      limit: this.limit,
      inFlight: this.inFlight,
      queued: this.queue.length + this.spare.length,
      rateLimited: this.rateLimited,
      waitingUntil: this.pausedUntil > now ? this.pausedUntil : null,
    };
  }

  private pump(): void {
    if (this.queue.length === 0 && this.spare.length === 0) return;
    const wait = this.pausedUntil - this.now();
    if (wait > 0) {
      if (this.timer === null) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.pump();
        }, wait);
      }
      return;
    }
    while (this.inFlight < this.limit && this.queue.length > 0) this.start(this.queue.shift()!);
    while (this.inFlight < this.limit && this.queue.length === 0 && this.spare.length > 0) {
      this.start(this.spare.shift()!);
    }
  }

  private start(job: Job): void {
    this.inFlight++;
    let attempt: Promise<unknown>;
    try {
      attempt = job.task();
    } catch (err) {
      attempt = Promise.reject(err);
    }
    attempt.then(
      (value) => {
        this.inFlight--;
        this.succeeded();
        job.resolve(value);
        this.pump();
      },
      (err: unknown) => {
        this.inFlight--;
        const signal = job.isRateLimit(err);
        if (signal === null) {
          job.reject(err);
        } else {
          this.limited(signal);
          (job.lane === 'now' ? this.queue : this.spare).unshift(job);
        }
        this.pump();
      },
    );
  }

  private succeeded(): void {
    this.backoffMs = 0;
    this.successes++;
    if (this.limit < this.concurrency && this.successes >= this.limit) {
      this.limit++;
      this.successes = 0;
    }
  }

  private limited(signal: RateLimitSignal): void {
    this.rateLimited++;
    this.successes = 0;
    const now = this.now();
    if (now >= this.pausedUntil) {
      this.limit = Math.max(1, Math.floor(this.limit / 2));
      this.backoffMs = this.backoffMs === 0 ? FIRST_BACKOFF_MS : Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    }
    const wait = Math.min(this.maxWaitMs, Math.max(0, signal.retryAfterMs ?? this.backoffMs));
    this.pausedUntil = Math.max(this.pausedUntil, now + wait);
    if (this.timer !== null && this.pausedUntil - now > 0) {
      // the pause got longer: re-arm the timer for its new end
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
