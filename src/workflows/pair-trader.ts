/**
 * pairTrader: one durable workflow per trading pair. It sleeps until the pair's next candle close (plus a grace
 * period), then runs one decision cycle (src/core/cycle.ts) with activities as the steps. All state (position
 * mirror, MFE/MAE tracker, recent decisions, pause flag, counters) is workflow state and is carried across
 * continue-as-new.
 *
 * Event budget: every step runs as a local activity (one marker event each, no extra workflow task), so a cycle is
 * a timer (2 events), one workflow task (3), and one marker per step: about 9 events for a hold, 11 for a trade.
 * The `decide` marker holds the prompt sent and the tool call received, for the Web UI.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  log,
  makeContinueAsNewFunc,
  proxyLocalActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError, type SearchAttributeUpdatePair } from '@temporalio/common';
import type { PairActivities } from '../activities/types';
import { initialPairState, runCycle, type CycleSteps, type PairState } from '../core/cycle';
import type { ClosedTrade, Execution } from '../core/types';
import { nextCloseAfter } from '../core/timeframe';
import { ReplayClock } from '../core/replay-clock';
import {
  MARKET_DATA_UNAVAILABLE,
  CONFIGURATION_ERROR,
  NON_RETRYABLE_EXCHANGE_ERROR_TYPES,
  NON_RETRYABLE_LLM_ERROR_TYPES,
} from '../core/error-types';
import {
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

const local = proxyLocalActivities<Pick<PairActivities, 'buildContext' | 'checkRisk' | 'recordDecision'>>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumAttempts: 3, nonRetryableErrorTypes: [CONFIGURATION_ERROR] },
});

/**
 * Orders: never retried on a non-retryable exchange type. A retry of a retryable failure is safe because the client
 * order id is looked up before anything is sent.
 */
const orders = proxyLocalActivities<Pick<PairActivities, 'execute'>>({
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

/** The failure type of an activity failure (`ApplicationFailure.type`), or null. */
function failureType(err: unknown): string | null {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.type ?? null;
  return null;
}

function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
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
  let paused = carried?.paused ?? false;
  // force-exit requests are counted so that a signal arriving during a cycle is not lost when the cycle consumes one
  let forceExitRequested = carried?.forceExitPending ? 1 : 0;
  let forceExitConsumed = 0;
  let stopRequested = false;
  const run = carried?.run ?? 1;
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
  /** market time now: the workflow clock, or the replay's recorded time */
  const marketNow = (): number => (clock ? clock.recordedTime(Date.now()) : Date.now());
  /** workflow (wall) time at which the market reaches `t` */
  const wallAt = (t: number): number => (clock ? clock.wallTime(t) : t);

  const decide = decider(input);
  const steps: CycleSteps = {
    fetchMarket: (req) => market.fetchMarket({ ...req, mode: input.mode }),
    buildContext: (req) => local.buildContext(req),
    decide: (ctx) => decide.decide(ctx),
    checkRisk: (req) => local.checkRisk(req),
    execute: async (req): Promise<Execution> => {
      try {
        return await orders.execute(req);
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
  setHandler(statusQuery, status);
  setHandler(recentDecisionsQuery, () => state.recentDecisions);

  publish(true);

  const startReview = async (trade: ClosedTrade): Promise<void> => {
    try {
      await startChild(tradeReview, {
        workflowId: reviewWorkflowId(input.pair, trade.tradeId),
        args: [{ trade, parentWorkflowId: info.workflowId, mode: input.mode }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
    } catch (err) {
      // the review of this trade was already started (e.g. by a run before a reset): reviews are per trade, once
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      log.info('trade review already started', { tradeId: trade.tradeId });
    }
  };

  for (;;) {
    if (stopRequested) break;
    const from = Math.max(marketNow(), state.lastCycleAsOf ?? Number.NEGATIVE_INFINITY);
    const asOf = nextCloseAfter(from, input.timeframe);
    if (replay && asOf > replay.recordedEnd) {
      log.info('replay reached the end of its recorded data', { recordedEnd: replay.recordedEnd });
      break;
    }
    nextDecisionAsOf = asOf;
    nextWakeTime = wallAt(asOf + input.graceMs);
    const sleepMs = nextWakeTime - Date.now();
    if (sleepMs > 0 && (await condition(() => stopRequested, sleepMs))) break;
    nextWakeTime = null;

    const forceExitAtTick = forceExitRequested;
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
      // reviews first: a closed trade must get its review whatever happens to the journal write below
      for (const event of out.events) {
        if (event.type === 'tradeClosed') await startReview(event.trade);
      }
      for (const event of out.events) {
        if (event.type !== 'decision') continue;
        try {
          await local.recordDecision({
            owner,
            pair: input.pair,
            record: event.record,
            result: event.result,
            verdict: event.verdict,
            context: event.context,
            clientOrderId: event.clientOrderId,
          });
        } catch (err) {
          // the decision stands (it is in this history); only its journal line is missing
          if (!(err instanceof ActivityFailure)) throw err;
          log.warn('journal write failed', { pair: input.pair, asOf, message: failureMessage(err) });
        }
      }
    } catch (err) {
      // An activity that exhausted its retries (exchange or LLM down): skip this candle, keep the state, and try again
      // at the next close. Anything else is a bug and fails the workflow task (Temporal retries it after a fix).
      if (!(err instanceof ActivityFailure)) throw err;
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
    cyclesThisRun += 1;
    publish(false);

    if (!stopRequested && (cyclesThisRun >= input.maxCyclesPerRun || workflowInfo().continueAsNewSuggested)) {
      await condition(allHandlersFinished);
      const next = makeContinueAsNewFunc<typeof pairTrader>({
        memo: workflowInfo().memo,
        typedSearchAttributes: workflowInfo().typedSearchAttributes,
        workflowTaskTimeout: workflowInfo().taskTimeoutMs,
      });
      return next({
        ...input,
        replay,
        carried: { state, paused, forceExitPending: forceExitRequested > forceExitConsumed, run: run + 1 },
      });
    }
  }
  nextWakeTime = null;
  nextDecisionAsOf = null;
  await condition(allHandlersFinished);
  return state;
}
