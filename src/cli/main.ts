/**
 * Entry point of the `llm-trader` command: runs the program and turns every failure into one line and an exit code
 * (src/cli/errors.ts). Exit codes: 0 ok, 1 runtime failure, 2 bad usage, input or configuration. `--verbose` or
 * `DEBUG=1` adds the stack trace.
 */
import { CommanderError } from 'commander';
import { buildProgram } from './program';
import { describeError, stackText, wantsStack } from './errors';

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message (or the help / version text)
      return err.exitCode === 0 ? 0 : 2;
    }
    const { message, exitCode } = describeError(err);
    console.error(`llm-trader: ${message}`);
    if (wantsStack(argv, env)) console.error(stackText(err));
    return exitCode;
  }
}

// Output piped into a reader that stops early (`| head`): stop quietly instead of a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await main(process.argv.slice(2));
