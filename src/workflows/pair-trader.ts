/**
 * pairTrader: one durable workflow per trading pair. It sleeps until the pair's next candle close (plus a grace
 * period), then runs one decision cycle (src/core/cycle.ts) with activities as the steps. All state (position
 * mirror, MFE/MAE tracker, recent decisions, pause flag, counters) is workflow state and is carried across
 * continue-as-new.
 *
 * Fresh decisions only. Every cycle starts with a timer (also one already due); at the start of the task it opens,
 * the workflow picks the latest closed candle, and the candles since the last cycle are journaled as missed
 * (`recordMissedCandles`), never decided late. A model answer that came after the next candle closed (by the decide
 * activity's recorded `answeredAt`) is not acted on: that candle is missed too, and the next cycle starts at once.
 * Both read only times a replay sees exactly (a task's start, an activity's result), so a replay takes the same
 * branch. An order step is retried as it is (its client order id makes the retry find the order, never a second).
 *
 * History budget. The market, context, decision and risk steps are local activities (one marker each, no extra
 * workflow task); their results are compact: the snapshot without the prompt's series, a reference to the prompt
 * (stored in the journal under the decision id), the decision without the prompt. The order (`execute`) and the
 * journal write (`recordDecision`) are regular activities, so the Web UI lists every decision by name with its tool,
 * arguments, reason, price and outcome in its input. A hold cycle is about 15 events and 6 KB.
 *
 * Recovery. The workflow task timeout is short ({@link PAIR_WORKFLOW_TASK_TIMEOUT}): when a worker dies mid-cycle,
 * the server hands the cycle to another worker within that time (a longer model call makes the SDK heartbeat the
 * task, 3 events per 8 s). Workers move a task off a dead worker's sticky queue after a few seconds (src/worker).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  log,
  proxyActivities,
  makeContinueAsNewFunc,
  patched,
  proxyLocalActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError, type SearchAttributeUpdatePair } from '@temporalio/common';
import type { BuildContextRequest, PairActivities, PromptRef } from '../activities/types';
import { emptyCounters, initialPairState, runCycle, type CycleSteps, type PairState } from '../core/cycle';
import {
  slotAfterAdmission,
  slotAfterCycle,
  type AdmissionDecision,
  type AdmissionRequest,
  type HeldSlot,
} from '../core/admission';
import type { ClosedTrade, Execution } from '../core/types';
import { candleOpenTime, nextCloseAfter, timeframeMs } from '../core/timeframe';
import { decisionId } from '../core/ids';
import { ReplayClock } from '../core/replay-clock';
import {
  MARKET_DATA_UNAVAILABLE,
  CONFIGURATION_ERROR,
  NON_RETRYABLE_EXCHANGE_ERROR_TYPES,
  NON_RETRYABLE_LLM_ERROR_TYPES,
} from '../core/error-types';
import {
  PAIR_WORKFLOW_TASK_TIMEOUT,
  admissionDecisionSignal,
  LastActionKey,
  PausedKey,
  PositionSideKey,
  TradingModeKey,
  TradingPairKey,
  forceExitSignal,
  pauseSignal,
  positionSideLabel,
  recentDecisionsQuery,
  resumeSignal,
  reviewWorkflowId,
  statusQuery,
  stopSignal,
  type PairStatus,
  type PairTraderInput,
  type ReplaySchedule,
} from './messages';
import { tradeReview } from './trade-review';

/** Local activities: fast, retried with backoff; their results are recorded as one marker event each. */
const market = proxyLocalActivities<Pick<PairActivities, 'fetchMarket'>>({
  startToCloseTimeout: '60s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 8,
    nonRetryableErrorTypes: [MARKET_DATA_UNAVAILABLE, CONFIGURATION_ERROR],
  },
});

/** The worker's clock, recorded: what every replay of the history sees as the time a cycle woke. */
const clockStep = proxyLocalActivities<Pick<PairActivities, 'wallClock'>>({
  startToCloseTimeout: '5s',
  retry: { initialInterval: '100ms', maximumAttempts: 10 },
});

const local = proxyLocalActivities<Pick<PairActivities, 'buildContext' | 'checkRisk'>>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumAttempts: 3, nonRetryableErrorTypes: [CONFIGURATION_ERROR] },
});

/**
 * The journal: regular activities, so that each decision is an event the Web UI names (`recordDecision`) with the
 * decision in its input. Short timeouts: a SQLite row and a JSONL line; a worker that dies while writing hands the
 * write to another within seconds. Idempotent per decision id, so a retry writes nothing twice.
 */
/**
 * Portfolio admission's messages to the account workflow (signal-with-start: the first request starts it). Short:
 * they only hand a signal to the server; the answer comes back as a signal.
 */
const admission = proxyActivities<Pick<PairActivities, 'requestAdmission' | 'settleSlot'>>({
  startToCloseTimeout: '5s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumAttempts: 4,
    nonRetryableErrorTypes: [CONFIGURATION_ERROR],
  },
});

/**
 * How long a pair waits for the account workflow's answer before it refuses its own entry (the account workflow is
 * unavailable: no worker runs it, or the server is slow). Exits never wait for it.
 */
const ADMISSION_ANSWER_WAIT_MS = 20_000;

const journal = proxyActivities<Pick<PairActivities, 'recordDecision' | 'recordMissedCandles'>>({
  startToCloseTimeout: '5s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumAttempts: 5,
    nonRetryableErrorTypes: [CONFIGURATION_ERROR],
  },
});

/**
 * Orders: a regular activity. Once the workflow task that decided an order completes, the order step is on the
 * server: a worker that dies after the exchange accepted the order and before it reported back is detected by the
 * missed heartbeat within seconds, and the activity is retried as it is (same client order id: the exchange finds
 * the order instead of placing a second one). As a local activity the whole task was lost with the worker, and the
 * retried task asked the model again on a market that now showed the order's position as untracked: the fill was
 * never recorded. Never retried on a non-retryable exchange type.
 */
const orders = proxyActivities<Pick<PairActivities, 'execute'>>({
  startToCloseTimeout: '60s',
  heartbeatTimeout: '4s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 6,
    nonRetryableErrorTypes: [...NON_RETRYABLE_EXCHANGE_ERROR_TYPES, CONFIGURATION_ERROR],
  },
});

/** Orders as local activities: the workflows recorded before EXECUTE_AS_ACTIVITY_PATCH replay with these. */
const localOrders = proxyLocalActivities<Pick<PairActivities, 'execute'>>({
  startToCloseTimeout: '60s',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 6,
    nonRetryableErrorTypes: [...NON_RETRYABLE_EXCHANGE_ERROR_TYPES, CONFIGURATION_ERROR],
  },
});

/**
 * The decision is a local activity too: its marker records the prompt that was sent and the tool call that came back
 * (open it in the Web UI), and a cycle costs one workflow task instead of two. LLM calls longer than ~80 % of the
 * workflow task timeout make the SDK heartbeat the task (3 more events each time): start pair workflows with a
 * workflow task timeout of a minute (see src/worker/starter.ts) so that ordinary calls never do.
 */
function decider(input: PairTraderInput) {
  return proxyLocalActivities<Pick<PairActivities, 'decide'>>({
    startToCloseTimeout: input.decideTimeoutMs,
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumAttempts: input.decideAttempts,
      nonRetryableErrorTypes: [...NON_RETRYABLE_LLM_ERROR_TYPES, CONFIGURATION_ERROR],
    },
  });
}

/**
 * A step that failed for good: a regular activity's failure (ActivityFailure), or a local activity's, which reaches
 * the workflow as the activity's ApplicationFailure itself (no ActivityFailure around it). Anything else thrown in
 * the workflow is a bug.
 */
function isStepFailure(err: unknown): err is ActivityFailure | ApplicationFailure {
  return err instanceof ActivityFailure || err instanceof ApplicationFailure;
}

/** The failure type of a step's failure (`ApplicationFailure.type`), or null. */
function failureType(err: unknown): string | null {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.type ?? null;
  if (err instanceof ApplicationFailure) return err.type ?? null;
  return null;
}

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** Orders moved from a local to a regular activity (histories recorded before keep replaying as they were). */
const EXECUTE_AS_ACTIVITY_PATCH = 'execute-as-activity';

/** Every cycle starts with a timer, even one already due (histories recorded before skipped due timers). */
const TIMER_EVERY_CYCLE_PATCH = 'timer-every-cycle';

/**
 * "Now" for the cycle's choices comes from a local activity (recorded), and the next candle from the last one
 * (histories recorded before read the workflow clock at the start of a task).
 */
const RECORDED_CLOCK_PATCH = 'recorded-clock';

/** Entries and increases pass portfolio admission (histories recorded before sent them straight out). */
const PORTFOLIO_ADMISSION_PATCH = 'portfolio-admission';

/** A cycle abandoned because a later candle closed before its model call or order: it is not decided late. */
class StaleCycle extends Error {
  constructor(
    readonly asOf: number,
    readonly step: string,
  ) {
    super(`the candle that closed at ${asOf} is no longer the latest: ${step} skipped`);
  }
}

/** What the workflow's context step hands to decide: the stored prompt's reference, and its request (to rebuild it). */
interface WorkflowContext {
  ref: PromptRef;
  request: BuildContextRequest;
}

export async function pairTrader(input: PairTraderInput): Promise<PairState> {
  const info = workflowInfo();
  /**
   * Owner of the client order ids and journal entries. A replay re-run under the same workflow id replays the same
   * candle times against the same paper account: its orders must not be taken for the earlier run's, so in replay
   * mode the owner includes the first run id of this execution chain (stable across continue-as-new). Live and paper
   * keep the workflow id alone, so that a restarted workflow finds an order it already placed for a candle.
   */
  const owner = input.mode === 'replay' ? `${info.workflowId}@${info.firstExecutionRunId}` : info.workflowId;
  const carried = input.carried;
  let state: PairState = carried?.state ?? initialPairState(input.pair);
  // counters added since an older version carried its state: zero
  state = { ...state, counters: { ...emptyCounters(), ...state.counters } };
  /** this pair's portfolio admission slot, as the account workflow holds it for it */
  let admissionSlot: HeldSlot | null = carried?.admissionSlot ?? null;
  /** answers of the account workflow, by request id, until the cycle that asked takes them */
  const admissionAnswers = new Map<string, AdmissionDecision>();
  /** a request of this cycle whose answer did not come in time (the book may hold a grant for it) */
  let unansweredAdmission: AdmissionRequest | null = null;
  /** request ids the account workflow answered in this cycle (older histories admit without asking: no slot) */
  const answeredByAccount = new Set<string>();
  let paused = carried?.paused ?? false;
  // force-exit requests are counted so that a signal arriving during a cycle is not lost when the cycle consumes one
  let forceExitRequested = carried?.forceExitPending ? 1 : 0;
  let forceExitConsumed = 0;
  let stopRequested = false;
  const run = carried?.run ?? 1;
  /** the account traded in (journal `run`): `replay-<id>`, `paper` or `live`; older inputs name none */
  const account = input.account ?? input.mode;
  /** candle close of the last cycle started (decided, failed or abandoned): the gap after it is missed candles */
  let lastTickAsOf: number | null = carried?.lastTickAsOf ?? state.lastCycleAsOf;
  let missedCandles = carried?.missedCandles ?? 0;
  let cyclesThisRun = 0;
  let nextWakeTime: number | null = null;
  let nextDecisionAsOf: number | null = null;

  const replay: ReplaySchedule | null = input.replay
    ? { ...input.replay, wallStart: input.replay.wallStart ?? Date.now() }
    : null;
  const clock = replay
    ? new ReplayClock({
        recordedStart: replay.recordedStart,
        wallStart: replay.wallStart ?? Date.now(),
        secondsPerCandle: replay.secondsPerCandle,
        timeframe: input.timeframe,
      })
    : null;
  /** market time at wall time `wall`: itself, or the replay's recorded time */
  const marketAt = (wall: number): number => (clock ? clock.recordedTime(wall) : wall);
  /** workflow (wall) time at which the market reaches `t` */
  const wallAt = (t: number): number => (clock ? clock.wallTime(t) : t);
  const tfMs = timeframeMs(input.timeframe);
  /** the latest candle close a cycle may decide at now: closed, and its grace period over */
  const latestDecidableAt = (wall: number): number => {
    const latest = candleOpenTime(marketAt(wall) - input.graceMs, input.timeframe);
    return replay ? Math.min(latest, replay.recordedEnd) : latest;
  };

  // the cycle in progress: its candle, decision id and price (for the journal step)
  let cycleAsOf = 0;
  let cycleDecisionId = '';
  let cyclePrice: number | null = null;
  let cycleDecidedAt = 0;
  /**
   * throws StaleCycle when a later candle had closed (and its grace passed) at wall time `at`. `at` comes from a step's
   * recorded result or from the moment the cycle woke, never from the workflow clock in mid-cycle: a replay must take
   * the same branch, and the clock a workflow sees after a local activity depends on how its task was heartbeated.
   */
  const assertFreshAt = (at: number, step: string): void => {
    const market = clock ? clock.recordedTime(at) : at;
    const latest = candleOpenTime(market - input.graceMs, input.timeframe);
    if ((replay ? Math.min(latest, replay.recordedEnd) : latest) > cycleAsOf) throw new StaleCycle(cycleAsOf, step);
  };

  const decide = decider(input);
  const steps: CycleSteps<WorkflowContext> = {
    fetchMarket: async (req) => {
      const view = await market.fetchMarket({ ...req, mode: input.mode, account });
      cyclePrice = view.snapshot.price;
      return view;
    },
    buildContext: async (req) => {
      const request: BuildContextRequest = { ...req, decisionId: cycleDecisionId, owner, run: account };
      return { ref: await local.buildContext(request), request };
    },
    decide: async (ctx) => {
      const result = await decide.decide({ ref: ctx.ref, request: ctx.request });
      // an answer that came after the next candle closed is not acted on (results of older versions carry no time)
      if (result.answeredAt !== undefined) {
        assertFreshAt(result.answeredAt, 'the order (the answer came too late)');
        cycleDecidedAt = result.answeredAt;
      }
      return result;
    },
    checkRisk: (req) => local.checkRisk(req),
    admit: async (req): Promise<AdmissionDecision> => {
      if (!patched(PORTFOLIO_ADMISSION_PATCH)) {
        return { status: 'granted', requestId: req.requestId, quantity: req.quantity, clamped: null };
      }
      try {
        await admission.requestAdmission({ account, request: req, replyTo: info.workflowId });
      } catch (err) {
        if (!isStepFailure(err)) throw err;
        return {
          status: 'refused',
          requestId: req.requestId,
          reason: `the account workflow could not be asked (${failureMessage(err)}); new exposure waits for it.`,
        };
      }
      if (!(await condition(() => admissionAnswers.has(req.requestId), ADMISSION_ANSWER_WAIT_MS))) {
        unansweredAdmission = req;
        return {
          status: 'refused',
          requestId: req.requestId,
          reason:
            `the account workflow (account:${account}@${info.taskQueue}) did not answer within ${ADMISSION_ANSWER_WAIT_MS / 1000} s; ` +
            'new exposure waits until it does (is a worker running?).',
        };
      }
      const answer = admissionAnswers.get(req.requestId)!;
      admissionAnswers.delete(req.requestId);
      answeredByAccount.add(req.requestId);
      return answer;
    },
    execute: async (req): Promise<Execution> => {
      try {
        const send = patched(EXECUTE_AS_ACTIVITY_PATCH) ? orders : localOrders;
        return await send.execute({ ...req, account });
      } catch (err) {
        const type = failureType(err);
        if (type === null || !(NON_RETRYABLE_EXCHANGE_ERROR_TYPES as readonly string[]).includes(type)) throw err;
        // the exchange refused the order for good: the cycle records it and goes on
        return {
          clientOrderId: req.clientOrderId,
          status: 'rejected',
          fills: [],
          position: null,
          error: `${type}: ${failureMessage(err)}`,
        };
      }
    },
  };

  const status = (): PairStatus => ({
    pair: input.pair,
    mode: input.mode,
    paused,
    stopRequested,
    forceExitPending: forceExitRequested > forceExitConsumed,
    position: state.position,
    lastDecision: state.recentDecisions.at(-1) ?? null,
    nextWakeTime,
    nextDecisionAsOf,
    lastCycleAsOf: state.lastCycleAsOf,
    counters: state.counters,
    missedCandles,
    account,
    run,
    cyclesThisRun,
  });

  // search attributes: upsert only what changed (each upsert is a history event); start from what the workflow
  // already has (set by the starter, or carried over by continue-as-new)
  const published = new Map<string, string | boolean>();
  const current = info.typedSearchAttributes;
  for (const [name, value] of [
    ['TradingPair', current.get(TradingPairKey)],
    ['TradingMode', current.get(TradingModeKey)],
    ['Paused', current.get(PausedKey)],
    ['PositionSide', current.get(PositionSideKey)],
    ['LastAction', current.get(LastActionKey)],
  ] as const) {
    if (value !== undefined) published.set(name, value);
  }
  const publish = (full: boolean): void => {
    const desired: [string, string | boolean, SearchAttributeUpdatePair][] = [
      ['Paused', paused, { key: PausedKey, value: paused }],
      [
        'PositionSide',
        positionSideLabel(state.position?.side ?? null),
        { key: PositionSideKey, value: positionSideLabel(state.position?.side ?? null) },
      ],
      [
        'LastAction',
        state.recentDecisions.at(-1)?.tool ?? 'none',
        { key: LastActionKey, value: state.recentDecisions.at(-1)?.tool ?? 'none' },
      ],
    ];
    if (full) {
      desired.push(['TradingPair', input.pair, { key: TradingPairKey, value: input.pair }]);
      desired.push(['TradingMode', input.mode, { key: TradingModeKey, value: input.mode }]);
    }
    const updates = desired.filter(([name, value]) => published.get(name) !== value);
    if (updates.length === 0) return;
    upsertSearchAttributes(updates.map(([, , pair]) => pair));
    for (const [name, value] of updates) published.set(name, value);
  };

  setHandler(pauseSignal, () => {
    paused = true;
    publish(false);
  });
  setHandler(resumeSignal, () => {
    paused = false;
    publish(false);
  });
  setHandler(forceExitSignal, () => {
    forceExitRequested += 1;
  });
  setHandler(stopSignal, () => {
    stopRequested = true;
  });
  setHandler(admissionDecisionSignal, (decision) => {
    admissionAnswers.set(decision.requestId, decision);
  });
  setHandler(statusQuery, status);
  setHandler(recentDecisionsQuery, () => state.recentDecisions);

  publish(true);

  const startReview = async (trade: ClosedTrade): Promise<void> => {
    try {
      await startChild(tradeReview, {
        workflowId: reviewWorkflowId(input.pair, trade.tradeId),
        args: [{ trade, parentWorkflowId: info.workflowId, mode: input.mode, account }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
    } catch (err) {
      // the review of this trade was already started (e.g. by a run before a reset): reviews are per trade, once
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      log.info('trade review already started', { tradeId: trade.tradeId });
    }
  };

  /** journals the candle closes after `from` and before `to` as missed (none when they are adjacent) */
  const recordMissed = async (from: number | null, to: number, reason: 'outage' | 'stale'): Promise<void> => {
    if (from === null || to - from <= tfMs) return;
    const count = Math.round((to - from) / tfMs) - 1;
    missedCandles += count;
    await journalQuietly(() =>
      journal.recordMissedCandles({
        owner,
        run: account,
        pair: input.pair,
        firstClose: from + tfMs,
        lastClose: to - tfMs,
        count,
        reason,
      }),
    );
  };
  /** a journal write that failed for good: the decision stands (it is in this history); only its journal row is missing */
  const journalQuietly = async (write: () => Promise<void>): Promise<void> => {
    try {
      await write();
    } catch (err) {
      if (!isStepFailure(err)) throw err;
      log.warn('journal write failed', { pair: input.pair, asOf: cycleAsOf, message: failureMessage(err) });
    }
  };

  /**
   * Keep the account workflow's slot of this pair in step with its position: release it when flat, re-size it when
   * the position shrank or an admitted increase did not fill. A settlement that fails is sent again after the next
   * cycle (the slot is kept as it was).
   */
  const settleAdmission = async (): Promise<void> => {
    if (unansweredAdmission !== null) {
      const asked = unansweredAdmission;
      unansweredAdmission = null;
      admissionSlot =
        admissionSlot === null
          ? { requestId: asked.requestId, notional: 0, uncertain: true }
          : { ...admissionSlot, uncertain: true };
    }
    const after = slotAfterCycle(admissionSlot, state.position, input.pair, owner);
    if (after.settlement === null) {
      admissionSlot = after.held;
      return;
    }
    try {
      await admission.settleSlot({ account, settlement: after.settlement });
      admissionSlot = after.held;
    } catch (err) {
      if (!isStepFailure(err)) throw err;
      log.warn('admission slot not settled; trying again after the next cycle', { message: failureMessage(err) });
    }
  };

  for (;;) {
    if (stopRequested) break;
    let asOf: number;
    const recordedClock = patched(RECORDED_CLOCK_PATCH);
    if (recordedClock) {
      // the close after the last cycle's candle (the first cycle: after the recorded time now): no clock reading
      // decides a branch here, so the end of a replay is found at the same cycle in every replay of the history
      const from = lastTickAsOf ?? marketAt(await clockStep.wallClock());
      asOf = nextCloseAfter(from, input.timeframe);
      if (replay && asOf > replay.recordedEnd) {
        log.info('replay reached the end of its recorded data', { recordedEnd: replay.recordedEnd });
        break;
      }
      nextDecisionAsOf = asOf;
      nextWakeTime = wallAt(asOf + input.graceMs);
      // a due timer (after an outage) fires at once; its duration is not part of what a replay checks
      if (await condition(() => stopRequested, Math.max(1, nextWakeTime - Date.now()))) break;
    } else {
      // histories recorded before the recorded clock: as they ran
      const ready = latestDecidableAt(Date.now());
      let sleepMs: number;
      if (lastTickAsOf !== null && ready > lastTickAsOf) {
        asOf = ready;
        sleepMs = 0;
      } else {
        const from = Math.max(marketAt(Date.now()), lastTickAsOf ?? Number.NEGATIVE_INFINITY);
        asOf = nextCloseAfter(from, input.timeframe);
        if (replay && asOf > replay.recordedEnd) {
          log.info('replay reached the end of its recorded data', { recordedEnd: replay.recordedEnd });
          break;
        }
        nextDecisionAsOf = asOf;
        nextWakeTime = wallAt(asOf + input.graceMs);
        sleepMs = nextWakeTime - Date.now();
      }
      if (patched(TIMER_EVERY_CYCLE_PATCH)) {
        if (await condition(() => stopRequested, Math.max(1, sleepMs))) break;
      } else if (sleepMs > 0 && (await condition(() => stopRequested, sleepMs))) break;
    }
    nextWakeTime = null;

    // Woke late (a worker outage, a slow task): decide at the latest closed candle; the ones before it are missed.
    // "Now" is the worker's clock as a local activity recorded it: the workflow clock at the start of a task is not
    // what a replay sees after a task that timed out on a dead worker's queue (the kill test found a replay taking
    // the other branch here).
    const woke = recordedClock ? await clockStep.wallClock() : Date.now();
    asOf = Math.max(asOf, latestDecidableAt(woke));
    nextDecisionAsOf = asOf;
    await recordMissed(lastTickAsOf, asOf, 'outage');
    lastTickAsOf = asOf;
    cycleAsOf = asOf;
    // the moment the cycle starts: a protective exit is decided now (the model's decisions at its answer)
    cycleDecidedAt = woke;
    cycleDecisionId = decisionId(owner, input.pair, asOf);
    cyclePrice = null;

    const forceExitAtTick = forceExitRequested;
    // answers to requests of earlier cycles that came too late: their slots are settled from the position
    admissionAnswers.clear();
    try {
      const out = await runCycle(
        steps,
        state,
        { asOf, orderOwner: owner, forceExit: forceExitRequested > forceExitConsumed, paused },
        {
          risk: input.risk,
          maxRecentDecisions: input.maxRecentDecisions,
          maintenanceMarginRate: input.maintenanceMarginRate,
        },
      );
      state = out.state;
      forceExitConsumed = forceExitAtTick;
      for (const event of out.events) {
        if (event.type === 'admission' && answeredByAccount.has(event.request.requestId)) {
          admissionSlot = slotAfterAdmission(admissionSlot, event.request, event.decision);
        }
      }
      // reviews first: a closed trade must get its review whatever happens to the journal write below
      for (const event of out.events) {
        if (event.type === 'tradeClosed') await startReview(event.trade);
      }
      for (const event of out.events) {
        if (event.type !== 'decision') continue;
        await journalQuietly(() =>
          journal.recordDecision({
            decisionId: cycleDecisionId,
            pair: input.pair,
            price: event.context?.ref.price ?? cyclePrice,
            decidedAt: cycleDecidedAt,
            record: event.record,
            result: event.result,
            verdict: event.verdict,
            clientOrderId: event.clientOrderId,
            owner,
            run: account,
          }),
        );
      }
    } catch (err) {
      if (err instanceof StaleCycle) {
        // nothing was decided or sent: the next cycle starts at once, on the latest candle
        log.warn('cycle outlived its candle; deciding on the latest one instead', {
          pair: input.pair,
          asOf,
          step: err.step,
        });
        await recordMissed(asOf - tfMs, asOf + tfMs, 'stale');
      } else {
        // An activity that exhausted its retries (exchange or LLM down): skip this candle, keep the state, and try
        // again at the next close. Anything else is a bug and fails the workflow task (Temporal retries it after a fix).
        if (!isStepFailure(err)) throw err;
        if (failureType(err) === MARKET_DATA_UNAVAILABLE && replay) {
          log.info('replay data ended', { asOf, message: failureMessage(err) });
          break;
        }
        state = { ...state, counters: { ...state.counters, failedCycles: state.counters.failedCycles + 1 } };
        log.warn('decision cycle failed; retrying at the next candle close', {
          pair: input.pair,
          asOf,
          type: failureType(err),
          message: failureMessage(err),
        });
      }
    }
    answeredByAccount.clear();
    await settleAdmission();
    cyclesThisRun += 1;
    publish(false);

    if (!stopRequested && (cyclesThisRun >= input.maxCyclesPerRun || workflowInfo().continueAsNewSuggested)) {
      await condition(allHandlersFinished);
      const next = makeContinueAsNewFunc<typeof pairTrader>({
        memo: workflowInfo().memo,
        typedSearchAttributes: workflowInfo().typedSearchAttributes,
        workflowTaskTimeout: PAIR_WORKFLOW_TASK_TIMEOUT,
      });
      return next({
        ...input,
        replay,
        carried: {
          state,
          paused,
          forceExitPending: forceExitRequested > forceExitConsumed,
          run: run + 1,
          lastTickAsOf,
          missedCandles,
          admissionSlot,
        },
      });
    }
  }
  nextWakeTime = null;
  nextDecisionAsOf = null;
  await condition(allHandlersFinished);
  return state;
}
