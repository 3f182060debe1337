/**
 * `llm-trader pause|resume|exit|stop <pair>`: signals to a running pair workflow (signals work on every server
 * version, including those without Workflow Update). The raw equivalent:
 *   temporal workflow signal --workflow-id 'pair:binanceusdm:BTC/USDT:USDT' --name pause
 */
import type { Command } from 'commander';
import type { Config } from '../../core/config';
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
  for (const { verb, signalName, description, effect } of CONTROL_VERBS) {
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
      const config = readConfig(opts);
      const workflowId = await signalPair(config, pair, verb);
      console.log(`${pair}: sent ${signalName} to ${workflowId}: ${effect}`);
    });
  }
}

/**
 * Sends the signal of `verb` to the workflow of `pair`. Returns the workflow id.
 * @throws OperatorError when the pair has no running workflow
 */
async function signalPair(config: Config, pair: string, verb: ControlVerb['verb']): Promise<string> {
  const [{ WorkflowNotFoundError }, messages, { OperatorError }] = await Promise.all([
    import('@temporalio/client'),
    import('../../workflows/messages'),
    import('../../worker/errors'),
  ]);
  const signal = {
    pause: messages.pauseSignal,
    resume: messages.resumeSignal,
    exit: messages.forceExitSignal,
    stop: messages.stopSignal,
  }[verb];
  const workflowId = messages.pairWorkflowId(config.exchange.name, pair);
  await withClient(config, async (client) => {
    try {
      await client.workflow.getHandle(workflowId).signal(signal);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        throw new OperatorError(
          `${pair} is not running (no open workflow ${workflowId}); start it with \`llm-trader start --pairs ${pair}\``,
          { cause: err },
        );
      }
      throw err;
    }
  });
  return workflowId;
}
