/**
 * Entry point of the `llm-trader` command: runs the program and turns known errors into exit codes.
 * Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad configuration.
 */
import { CommanderError } from 'commander';
import { buildProgram } from './program';
import { ConfigError } from '../config/load';
import { OperatorError } from '../worker/errors';

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message (or the help / version text)
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof OperatorError) {
      // an error that explains itself (unreachable server, unknown pair...): one line, no stack
      console.error(`llm-trader: ${err.message}`);
      return 1;
    }
    if (err instanceof ConfigError) {
      console.error(`llm-trader: invalid ${err.message}`);
      return 2;
    }
    console.error(`llm-trader: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
