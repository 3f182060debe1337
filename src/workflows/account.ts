/**
 * account: one long-running workflow per exchange account (id `account:<account id>@<task queue>`) that owns the portfolio
 * admission book (src/core/admission.ts) and answers the pairs' admission requests one at a time: the entity
 * workflow ("mutex") pattern, with signals and queries only, so servers as old as 1.19 work.
 *
 * - A pair asks with the `admissionRequest` signal (sent by its `requestAdmission` activity with signal-with-start,
 *   so the first request starts this workflow); the handler admits or refuses at once, in signal order, and the
 *   answer goes back to the pair as its `admissionDecision` signal. A request id answered before gets the same
 *   answer: a retried activity can never take a second slot.
 * - A pair settles its slot with `settleSlot` after every cycle that changed its position (0 = release: its trade
 *   closed, or its admitted order did not fill). An answer that cannot be delivered (the requester is gone)
 *   releases what it granted.
 * - Unavailable (no worker polls it, the server is down): the pair's wait for an answer times out and the entry is
 *   refused, journaled with that reason; exits and reductions never come here, so they never wait.
 * - Completes after `idleMs` with no slot held and nothing to answer (a later request starts a fresh, empty one);
 *   continues as new (the book in its input) when the server suggests it or the history passes ~1,000 events
 *   (~4,000 for runs started before the patch 'account-short-runs').
 */
import {
  allHandlersFinished,
  condition,
  patched,
  getExternalWorkflowHandle,
  log,
  makeContinueAsNewFunc,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { admit, emptyBook, openSlots, settle, type AdmissionDecision } from '../core/admission';
import {
  accountStatusQuery,
  admissionDecisionSignal,
  admissionRequestSignal,
  settleSlotSignal,
  type AccountStatus,
  type AccountWorkflowInput,
} from './messages';

/**
 * History length at which the workflow continues as new (each answer costs about 6 events). A worker that takes the
 * account over after a crash replays the current run before it answers anyone, so this stays small (about 2 ms per
 * event to replay on a loaded 2-core machine): entries wait on it, exits never do.
 */
const CONTINUE_AS_NEW_EVENTS = 1_000;
/** The threshold of runs recorded before 'account-short-runs' (their histories replay with it). */
const CONTINUE_AS_NEW_EVENTS_BEFORE_PATCH = 4_000;

export async function account(input: AccountWorkflowInput): Promise<void> {
  const book = input.carried?.book ?? emptyBook();
  const runs = (input.carried?.runs ?? 0) + 1;
  let granted = input.carried?.granted ?? 0;
  let refused = input.carried?.refused ?? 0;
  let undelivered = input.carried?.undelivered ?? 0;
  /** answers to send, in the order they were decided */
  const outbox: { to: string; decision: AdmissionDecision; pair: string; holder: string }[] = [];
  let sending = 0;

  setHandler(admissionRequestSignal, ({ request, replyTo }) => {
    const decision = admit(book, request);
    if (decision.status === 'granted') granted += 1;
    else refused += 1;
    outbox.push({ to: replyTo, decision, pair: request.pair, holder: request.holder });
  });
  setHandler(settleSlotSignal, (settlement) => {
    settle(book, settlement);
  });
  setHandler(accountStatusQuery, (): AccountStatus => ({
    account: input.account,
    slots: openSlots(book),
    granted,
    refused,
    undelivered,
    runs,
  }));

  const deliver = async (answer: (typeof outbox)[number]): Promise<void> => {
    try {
      await getExternalWorkflowHandle(answer.to).signal(admissionDecisionSignal, answer.decision);
    } catch (err) {
      // the requester is gone (terminated, completed): nobody will trade on this answer, so it holds nothing
      undelivered += 1;
      if (answer.decision.status === 'granted') {
        settle(book, { pair: answer.pair, holder: answer.holder, requestId: answer.decision.requestId, notional: 0 });
      }
      log.warn('admission answer not delivered', {
        to: answer.to,
        requestId: answer.decision.requestId,
        message: err instanceof Error ? err.message : String(err),
      });
    } finally {
      sending -= 1;
    }
  };

  // runs started before this patch continued as new only after an answer, at ~4,000 events; from it on, a run that
  // only receives settlements (every pair's cycle that changed its position) also wakes up for a new run at ~1,000
  const shortRuns = patched('account-short-runs');
  const limit = shortRuns ? CONTINUE_AS_NEW_EVENTS : CONTINUE_AS_NEW_EVENTS_BEFORE_PATCH;
  const dueForNewRun = (): boolean => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength > limit;
  };

  for (;;) {
    const busy = await condition(() => outbox.length > 0 || (shortRuns && dueForNewRun()), input.idleMs);
    if (outbox.length > 0) {
      // answers are sent concurrently; the decisions were all made in the handlers, in signal order
      const batch = outbox.splice(0, outbox.length);
      sending += batch.length;
      await Promise.all(batch.map(deliver));
    } else if (!busy && sending === 0 && openSlots(book).length === 0) {
      await condition(allHandlersFinished);
      if (outbox.length === 0 && openSlots(book).length === 0) return;
    }
    if (outbox.length === 0 && dueForNewRun()) {
      await condition(allHandlersFinished);
      const next = makeContinueAsNewFunc<typeof account>({ memo: workflowInfo().memo });
      return next({ ...input, carried: { book, runs, granted, refused, undelivered } });
    }
  }
}
