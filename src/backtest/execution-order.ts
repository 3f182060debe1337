/**
 * The fixed pair order in which a decision time's cycles touch the shared account.
 *
 * At a decision time every pair's cycle builds its context from the same account (engine.ts, `openTime`), the model
 * is asked for all of them at once, and its answers come back in any order. What changes the account — the risk
 * gate's check against it and the order that follows, a protective exit's order too — must not depend on that order,
 * or a rerun at another concurrency would trade differently. So those steps run through {@link ExecutionOrder.at}:
 * a pair's step runs when every pair listed before it has finished its cycle, one pair at a time, in the order of the
 * backtest's pair list. A step whose turn has come runs at once and returns its value (a backtest whose steps all
 * answer at once, like the baseline's, never waits and never creates a promise); a step whose turn has not come yet
 * returns a promise of its value and runs when it has.
 *
 * A portfolio admission (a check of the whole account before adding exposure) belongs in the steps run through
 * here: at its turn a pair sees exactly the account every earlier pair left.
 */

interface Waiter {
  run: () => void;
  fail: (err: unknown) => void;
}

export class ExecutionOrder {
  private readonly index = new Map<string, number>();
  /** 1 when the pair's cycle at the current decision time has finished (or the pair has none) */
  private readonly done: Uint8Array;
  private readonly waiting: (Waiter | null)[];
  /** the first pair whose cycle has not finished: the one whose turn it is */
  private next = 0;
  private active = false;
  private failure: { err: unknown } | null = null;
  /** called with a pair's index when its turn comes (the look-ahead check keeps the account as it is then) */
  onTurn: ((index: number) => void) | null = null;
  /**
   * called with a pair's index when the turn moves past it (its cycle finished, every earlier pair's too), in pair
   * order, before the next pair's step runs: the driver settles the pair's admission slot there
   */
  onPassed: ((index: number) => void) | null = null;

  /** @param pairs the backtest's pairs, in execution order */
  constructor(readonly pairs: readonly string[]) {
    pairs.forEach((p, i) => this.index.set(p, i));
    this.done = new Uint8Array(pairs.length);
    this.waiting = pairs.map(() => null);
  }

  /** Starts a decision time: `cycles[i]` tells whether pair i has a cycle at it (the others are done already). */
  begin(cycles: ArrayLike<boolean>): void {
    for (let i = 0; i < this.pairs.length; i++) {
      this.done[i] = cycles[i] ? 0 : 1;
      this.waiting[i] = null;
    }
    this.failure = null;
    this.active = true;
    this.next = 0;
    this.advance();
  }

  /** Ends the decision time: until the next `begin`, steps run at once (as in a single cycle run on its own). */
  end(): void {
    this.active = false;
  }

  /**
   * Runs `action` at `pair`'s turn: at once, returning its value, when every pair before it has finished its cycle
   * (or no decision time is active, or the pair is not in the list); else later, returning a promise of its value.
   */
  at<T>(pair: string, action: () => T): T | Promise<T> {
    if (!this.active) return action();
    const i = this.index.get(pair);
    if (i === undefined) return action();
    if (this.failure) return Promise.reject(this.failure.err);
    if (i <= this.next) return action();
    if (this.waiting[i] !== null) {
      throw new Error(`execution order: ${pair} is already waiting for its turn (one step at a time per cycle)`);
    }
    return new Promise<T>((resolve, reject) => {
      this.waiting[i] = {
        run: () => {
          try {
            resolve(action());
          } catch (err) {
            reject(err);
          }
        },
        fail: reject,
      };
    });
  }

  /** Pair `i`'s cycle at this decision time has finished: the turn moves on past every finished pair. */
  finish(i: number): void {
    this.done[i] = 1;
    if (i === this.next) this.advance();
  }

  /** The decision time failed: every step waiting for its turn, and every later one, is rejected with `err`. */
  abort(err: unknown): void {
    this.failure = { err };
    for (let i = 0; i < this.waiting.length; i++) {
      const w = this.waiting[i];
      this.waiting[i] = null;
      w?.fail(err);
    }
  }

  private advance(): void {
    const n = this.pairs.length;
    while (this.next < n && this.done[this.next] === 1) {
      this.onPassed?.(this.next);
      this.next++;
      if (this.next < n) this.onTurn?.(this.next);
    }
    if (this.next === 0 && n > 0) this.onTurn?.(0);
    if (this.next < n) {
      const w = this.waiting[this.next];
      if (w) {
        this.waiting[this.next] = null;
        w.run();
      }
    }
  }
}
