/**
 * Failures an operator can act on (server unreachable, search attributes missing, a pair not running): the message
 * says what is wrong and what to do, completely, so the CLI shows it as one line without a stack trace.
 */
export class OperatorError extends Error {
  /** where it was thrown (`stack` holds the message only), for `--verbose` */
  readonly trace: string | undefined;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OperatorError';
    this.trace = this.stack;
    // loggers print `err.stack`; for these the message is the whole story
    this.stack = message;
  }
}

/**
 * Bad input an operator can fix (a missing data folder, an empty candle database, a corrupt decision log, an output
 * folder already in use): like {@link OperatorError}, one line saying what is wrong and what to do; the CLI exits 2.
 */
export class InputError extends OperatorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InputError';
  }
}
