/**
 * `llm-trader status [pair] [--json]`: the state of each configured pair (or the given one), from the workflow's
 * `status` query: mode, pause flag, position, last action, next wake-up, cycle and token counters. A pair without a
 * running workflow is reported as such. The raw equivalent:
 *   temporal workflow query --workflow-id 'pair:binanceusdm:BTC/USDT:USDT' --type status
 */
import type { Command } from 'commander';
import type { Client, Connection } from '@temporalio/client';
import type { PairStatus } from '../../workflows/messages';
import {
  addConfigOption,
  checkPair,
  formatDuration,
  formatNumber,
  formatSigned,
  formatTable,
  formatTime,
  readConfig,
  withClient,
  type ConfigOptions,
} from './shared';

/** How long a status query may wait for a worker to answer, ms. */
export const QUERY_TIMEOUT_MS = 10_000;

export interface PairReport {
  pair: string;
  workflowId: string;
  /** `running` (then `status` is set), `not-started`, `closed` (see `executionStatus`), or `unanswered` (see `detail`) */
  state: 'running' | 'not-started' | 'closed' | 'unanswered';
  /** Temporal's execution status name (RUNNING, COMPLETED, FAILED, TERMINATED...); null when there is no workflow */
  executionStatus: string | null;
  closeTime: string | null;
  status: PairStatus | null;
  detail: string | null;
}

interface StatusOptions extends ConfigOptions {
  json?: boolean;
}

/** Adds the `status` command to `program`. */
export function registerStatus(program: Command): void {
  const command = program
    .command('status')
    .description('show each pair: mode, paused, position and PnL, last action, next wake-up, cycles, tokens')
    .argument('[pair]', 'one pair, e.g. BTC/USDT:USDT (default: every pair of the config)')
    .option('--json', 'print the full status of each pair as JSON');
  addConfigOption(command);
  command.action(async (pairArg: string | undefined, opts: StatusOptions, cmd: Command) => {
    const onePair = pairArg !== undefined ? checkPair(cmd, pairArg) : null;
    const config = readConfig(opts);
    const pairs = onePair !== null ? [onePair] : config.pairs;
    const reports = await withClient(config, async (client, settings, connection) => {
      const out: PairReport[] = [];
      for (const pair of pairs)
        out.push(await pairReport(client, connection, config.exchange.name, pair, settings.taskQueue));
      return out;
    });
    if (opts.json) console.log(JSON.stringify(reports, null, 2));
    else console.log(statusTable(reports, Date.now()));
  });
}

/** Describes and (when it runs) queries the workflow of one pair. Never throws for a missing or closed workflow. */
export async function pairReport(
  client: Client,
  connection: Connection,
  exchange: string,
  pair: string,
  taskQueue: string,
): Promise<PairReport> {
  const [{ WorkflowNotFoundError, isGrpcDeadlineError }, { pairWorkflowId, statusQuery }] = await Promise.all([
    import('@temporalio/client'),
    import('../../workflows/messages'),
  ]);
  const workflowId = pairWorkflowId(exchange, pair);
  const base = { pair, workflowId, executionStatus: null, closeTime: null, status: null, detail: null };
  const handle = client.workflow.getHandle(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      return { ...base, state: 'not-started', detail: `no workflow ${workflowId}: start it with \`llm-trader start\`` };
    }
    throw err;
  }
  const executionStatus = description.status.name;
  if (executionStatus !== 'RUNNING') {
    const closeTime = description.closeTime?.toISOString() ?? null;
    return {
      ...base,
      state: 'closed',
      executionStatus,
      closeTime,
      detail: `${executionStatus.toLowerCase()}${closeTime ? ` at ${closeTime}` : ''}; start it again with \`llm-trader start\``,
    };
  }
  try {
    const status = await connection.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query(statusQuery));
    return { ...base, state: 'running', executionStatus, status };
  } catch (err) {
    const detail = isGrpcDeadlineError(err)
      ? `no worker answered within ${QUERY_TIMEOUT_MS / 1000} s: is \`llm-trader worker\` running on task queue ${taskQueue}?`
      : `the status query failed: ${(err as Error).message.split('\n')[0]}`;
    return { ...base, state: 'unanswered', executionStatus, detail };
  }
}

function positionText(s: PairStatus): string {
  const p = s.position;
  if (p === null) return 'flat';
  return `${p.side} ${formatNumber(p.quantity)} @ ${formatNumber(p.entryPrice)} x${p.leverage}`;
}

function lastActionText(s: PairStatus): string {
  const d = s.lastDecision;
  if (d === null) return '-';
  return d.outcome === 'none' || d.outcome === 'executed' ? d.tool : `${d.tool} (${d.outcome})`;
}

/** A wake-up this far in the past means no worker is running the workflow. */
const OVERDUE_MS = 30_000;

function nextWakeText(s: PairStatus, now: number): string {
  if (s.stopRequested) return 'stopping';
  if (s.nextWakeTime === null) return s.nextDecisionAsOf === null ? '-' : 'deciding';
  const wait = s.nextWakeTime - now;
  return wait < -OVERDUE_MS ? `overdue ${formatDuration(-wait)}` : `in ${formatDuration(wait)}`;
}

/**
 * The status table: one row per pair. PnL % is the position's leveraged return on margin at the last cycle; `next
 * close` is the market time of the next decision (recorded time in replay mode), `next wake` the wall time until it
 * (`overdue` when it has passed: the timer fired but no worker ran the cycle).
 */
export function statusTable(reports: readonly PairReport[], now: number): string {
  const rows = reports.map((r) => {
    const s = r.status;
    if (s === null) return [r.pair, '-', r.state, '-', '-', '-', '-', '-', '-', '-', '-'];
    const flags = [s.paused ? 'paused' : null, s.forceExitPending ? 'exit pending' : null].filter((f) => f !== null);
    return [
      r.pair,
      s.mode,
      flags.length > 0 ? flags.join(', ') : 'running',
      positionText(s),
      s.position ? formatSigned(s.position.lastPnlPct) : '-',
      lastActionText(s),
      formatTime(s.nextDecisionAsOf),
      nextWakeText(s, now),
      String(s.counters.cycles),
      String(s.counters.tokensIn + s.counters.tokensOut),
      `${s.run}`,
    ];
  });
  const table = formatTable(
    ['pair', 'mode', 'state', 'position', 'PnL %', 'last action', 'next close', 'next wake', 'cycles', 'tokens', 'run'],
    rows,
    [4, 8, 9, 10],
  );
  const notes = reports.filter((r) => r.detail !== null).map((r) => `${r.pair}: ${r.detail}`);
  return notes.length > 0 ? `${table}\n\n${notes.join('\n')}` : table;
}
