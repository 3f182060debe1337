/**
 * `llm-trader status [pair] [--json]`: the state of each configured pair (or the given one), from the workflow's
 * `status` query: mode, pause flag, position, last action, next wake-up, cycle and token counters. A pair without a
 * running workflow is reported as such. The raw equivalent:
 *   temporal workflow query --workflow-id 'pair:binanceusdm:BTC/USDT:USDT' --type status
 */
import type { Command } from 'commander';
import type { Client, Connection } from '@temporalio/client';
import type { PairStatus } from '../../workflows/messages';
import type { TemporalSettings } from '../../worker/connection';
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
    const config = await readConfig(opts);
    const pairs = onePair !== null ? [onePair] : config.pairs;
    const reports = await withClient(config, async (client, settings, connection) => {
      const out: PairReport[] = [];
      for (const pair of pairs) out.push(await pairReport(client, connection, config.exchange.name, pair, settings));
      return out;
    });
    if (opts.json) console.log(JSON.stringify(reports, null, 2));
    else console.log(statusTable(reports, Date.now()));
  });
}

/** Where the status query goes: the server's address (for messages), the namespace and the task queue. */
export type StatusTarget = Pick<TemporalSettings, 'address' | 'namespace' | 'taskQueue'>;

/** How long the task-queue check after a failed query may take, ms. */
export const POLLER_CHECK_TIMEOUT_MS = 5_000;

const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;

/** The gRPC status code of `err` or of one of its causes; null when it is not a gRPC service error. */
export function grpcCode(err: unknown): number | null {
  const seen = new Set<unknown>();
  let cur: unknown = err;
  while (cur instanceof Error && !seen.has(cur)) {
    seen.add(cur);
    const e = cur as Error & { code?: unknown; details?: unknown };
    if (typeof e.code === 'number' && typeof e.details === 'string') return e.code;
    cur = cur.cause;
  }
  return null;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);
}

/**
 * Describes and (when it runs) queries the workflow of one pair. Never throws for a missing or closed workflow, an
 * unanswered query or a server that stops answering: the report's `detail` names the fault and what to do, telling
 * apart the server (unreachable), the workflow (not started, closed) and the worker (none polling the task queue, or
 * polling but not answering).
 */
export async function pairReport(
  client: Client,
  connection: Connection,
  exchange: string,
  pair: string,
  target: StatusTarget,
): Promise<PairReport> {
  const [{ WorkflowNotFoundError }, { pairWorkflowId, statusQuery }, { START_SERVER_HINT }] = await Promise.all([
    import('@temporalio/client'),
    import('../../workflows/messages'),
    import('../../worker/connection'),
  ]);
  const serverDetail = (err: unknown): string =>
    `the Temporal server at ${target.address} did not answer (${firstLine(err)}); ${START_SERVER_HINT}`;
  const workflowId = pairWorkflowId(exchange, pair);
  const base = { pair, workflowId, executionStatus: null, closeTime: null, status: null, detail: null };
  const handle = client.workflow.getHandle(workflowId);
  let description;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      return {
        ...base,
        state: 'not-started',
        detail: `no workflow ${workflowId}: start the pair with \`llm-trader start --pairs ${pair}\``,
      };
    }
    const code = grpcCode(err);
    if (code === GRPC_UNAVAILABLE || code === GRPC_DEADLINE_EXCEEDED) {
      return { ...base, state: 'unanswered', detail: serverDetail(err) };
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
      detail: `${executionStatus.toLowerCase()}${closeTime ? ` at ${closeTime}` : ''}; start it again with \`llm-trader start --pairs ${pair}\``,
    };
  }
  try {
    const status = await connection.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query(statusQuery));
    return { ...base, state: 'running', executionStatus, status };
  } catch (err) {
    return {
      ...base,
      state: 'unanswered',
      executionStatus,
      detail: await queryFailure(client, connection, target, err, serverDetail),
    };
  }
}

/** Why a status query failed: the server, no worker on the task queue, or a worker that did not answer. */
async function queryFailure(
  client: Client,
  connection: Connection,
  target: StatusTarget,
  err: unknown,
  serverDetail: (err: unknown) => string,
): Promise<string> {
  if (grpcCode(err) === GRPC_UNAVAILABLE) return serverDetail(err);
  const timedOut = grpcCode(err) === GRPC_DEADLINE_EXCEEDED;
  let pollers: number;
  try {
    const answer = await connection.withDeadline(Date.now() + POLLER_CHECK_TIMEOUT_MS, () =>
      client.workflowService.describeTaskQueue({
        namespace: target.namespace,
        taskQueue: { name: target.taskQueue },
        taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
      }),
    );
    pollers = answer.pollers?.length ?? 0;
  } catch (checkErr) {
    const code = grpcCode(checkErr);
    if (code === GRPC_UNAVAILABLE || code === GRPC_DEADLINE_EXCEEDED) return serverDetail(checkErr);
    return `the status query failed (${firstLine(err)}), and the task queue ${target.taskQueue} could not be checked (${firstLine(checkErr)})`;
  }
  if (pollers === 0) {
    return (
      `no worker is polling task queue ${target.taskQueue} (the query ${timedOut ? `timed out after ${QUERY_TIMEOUT_MS / 1000} s` : `failed: ${firstLine(err)}`}): ` +
      `start one with \`llm-trader worker\` (or \`llm-trader dev\`) using the same temporal.task_queue`
    );
  }
  const workers = pollers === 1 ? '1 worker polls' : `${pollers} workers poll`;
  return timedOut
    ? `${workers} task queue ${target.taskQueue} but none answered the query within ${QUERY_TIMEOUT_MS / 1000} s: ` +
        'the worker may be overloaded or stuck in a long workflow task; see its log, or restart it'
    : `the status query failed: ${firstLine(err)}`;
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

/** The workflow's count of candle closes skipped instead of decided late (workflows of older versions have none). */
function missedCandles(s: PairStatus): number | null {
  const value = (s as { missedCandles?: unknown }).missedCandles;
  return typeof value === 'number' ? value : null;
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
 * Orders that did not go out: refused by the exchange (insufficient margin, below the minimums, invalid...) plus
 * entries refused at portfolio admission (the account's open-trade or exposure limit), e.g. `3 (2 admission)`.
 */
function refusedText(s: PairStatus): string {
  const exchange = s.counters.executionFailures ?? 0;
  const admission = s.counters.admissionRefusals ?? 0;
  const total = exchange + admission;
  return admission > 0 ? `${total} (${admission} admission)` : String(total);
}

/**
 * The status table: one row per pair. PnL % is the position's leveraged return on margin at the last cycle; `next
 * close` is the market time of the next decision (recorded time in replay mode), `next wake` the wall time until it
 * (`overdue` when it has passed: the timer fired but no worker ran the cycle); `refused` the orders the exchange or
 * portfolio admission refused (the pair went on); `missed` (shown when the workflows
 * count them) the candle closes skipped after outages instead of being decided late.
 */
export function statusTable(reports: readonly PairReport[], now: number): string {
  const showMissed = reports.some((r) => r.status !== null && missedCandles(r.status) !== null);
  const rows = reports.map((r) => {
    const s = r.status;
    if (s === null) {
      return [r.pair, '-', r.state, '-', '-', '-', '-', '-', '-', '-', ...(showMissed ? ['-'] : []), '-', '-'];
    }
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
      refusedText(s),
      ...(showMissed ? [String(missedCandles(s) ?? '-')] : []),
      String(s.counters.tokensIn + s.counters.tokensOut),
      `${s.run}`,
    ];
  });
  const header = [
    'pair',
    'mode',
    'state',
    'position',
    'PnL %',
    'last action',
    'next close',
    'next wake',
    'cycles',
    'refused',
  ];
  const table = formatTable(
    [...header, ...(showMissed ? ['missed'] : []), 'tokens', 'run'],
    rows,
    showMissed ? [4, 8, 9, 10, 11, 12] : [4, 8, 9, 10, 11],
  );
  const notes = reports.filter((r) => r.detail !== null).map((r) => `${r.pair}: ${r.detail}`);
  return notes.length > 0 ? `${table}\n\n${notes.join('\n')}` : table;
}
