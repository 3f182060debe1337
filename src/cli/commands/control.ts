/**
 * `llm-trader pause|resume|exit|stop <pair>`: signals to a running pair workflow (signals work on every server
 * version, including those without Workflow Update). `exit` first asks the workflow's status and sends nothing when
 * the pair is flat. The raw equivalent:
 *   temporal workflow signal --workflow-id 'pair:binanceusdm:BTC/USDT:USDT' --name pause
 */
import type { Command } from 'commander';
import type { Client, Connection } from '@temporalio/client';
import { addConfigOption, checkPair, readConfig, withClient, type ConfigOptions } from './shared';

export interface ControlVerb {
  verb: 'pause' | 'resume' | 'exit' | 'stop';
  /** the signal's name (the definitions are in src/workflows/messages.ts) */
  signalName: string;
  description: string;
  /** what the pair does now, for the confirmation line */
  effect: string;
}

export const CONTROL_VERBS: readonly ControlVerb[] = [
  {
    verb: 'pause',
    signalName: 'pause',
    description:
      'stop asking the model for decisions on a pair; the position stays protected (emergency stop, liquidation buffer)',
    effect: 'it asks for no new decisions; protective exits stay active',
  },
  {
    verb: 'resume',
    signalName: 'resume',
    description: 'resume decisions on a paused pair',
    effect: 'it decides again from the next candle close',
  },
  {
    verb: 'exit',
    signalName: 'forceExit',
    description: "close a pair's position at the next candle close, without the model",
    effect: 'its position closes at the next candle close',
  },
  {
    verb: 'stop',
    signalName: 'stop',
    description: "finish a pair's current cycle, then complete its workflow (an open position stays open)",
    effect: 'its workflow completes after the current cycle',
  },
];

/** Adds `pause`, `resume`, `exit` and `stop` to `program`. */
export function registerControl(program: Command): void {
  for (const { verb, signalName, description } of CONTROL_VERBS) {
    const command = program
      .command(verb)
      .description(description)
      .argument('<pair>', 'ccxt perpetual symbol, e.g. BTC/USDT:USDT');
    addConfigOption(command);
    command.addHelpText(
      'after',
      `\nRaw equivalent: temporal workflow signal --workflow-id 'pair:<exchange>:<pair>' --name ${signalName}`,
    );
    command.action(async (pairArg: string, opts: ConfigOptions, cmd: Command) => {
      const pair = checkPair(cmd, pairArg);
      const config = await readConfig(opts);
      const { pairWorkflowId } = await import('../../workflows/messages');
      const workflowId = pairWorkflowId(config.exchange.name, pair);
      const line = await withClient(config, (client, _settings, connection) =>
        controlPair(client, connection, workflowId, pair, verb),
      );
      console.log(line);
    });
  }
}

/** How long `exit` waits for the workflow's status before sending the signal anyway, ms. */
export const EXIT_STATUS_TIMEOUT_MS = 5_000;

/**
 * Sends the signal of `verb` to the workflow `workflowId` of `pair`, and returns the line to print.
 *
 * `exit` asks the workflow's status first: on a flat pair it sends nothing and says so (`<pair> has no open position:
 * nothing to exit`); when the status cannot be read in {@link EXIT_STATUS_TIMEOUT_MS} (no worker, say) it sends the
 * signal anyway, since the workflow acts on it at its next cycle.
 * @throws OperatorError when the pair has no running workflow
 */
export async function controlPair(
  client: Client,
  connection: Connection,
  workflowId: string,
  pair: string,
  verb: ControlVerb['verb'],
): Promise<string> {
  const [{ WorkflowNotFoundError }, messages, { OperatorError }] = await Promise.all([
    import('@temporalio/client'),
    import('../../workflows/messages'),
    import('../../worker/errors'),
  ]);
  const { signalName, effect } = CONTROL_VERBS.find((v) => v.verb === verb)!;
  const signal = {
    pause: messages.pauseSignal,
    resume: messages.resumeSignal,
    exit: messages.forceExitSignal,
    stop: messages.stopSignal,
  }[verb];
  const notRunning = (err: unknown): Error =>
    new OperatorError(
      `${pair} is not running (no open workflow ${workflowId}); start it with \`llm-trader start --pairs ${pair}\``,
      { cause: err },
    );
  const handle = client.workflow.getHandle(workflowId);
  let note = effect;
  if (verb === 'exit') {
    try {
      const status = await connection.withDeadline(Date.now() + EXIT_STATUS_TIMEOUT_MS, () =>
        handle.query(messages.statusQuery),
      );
      if (status.position === null) return `${pair} has no open position: nothing to exit`;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw notRunning(err);
      const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      note = `its status could not be read (${reason}); the position, if any, closes at the next candle close`;
    }
  }
  try {
    await handle.signal(signal);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw notRunning(err);
    throw err;
  }
  return `${pair}: sent ${signalName} to ${workflowId}: ${note}`;
}
