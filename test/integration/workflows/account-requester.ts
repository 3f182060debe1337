/**
 * Workflows for test/integration/account.test.ts: the real account workflow, and a requester standing in for a pair
 * (it only keeps the admission answers it is sent, so the test can read them).
 */
import { condition, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';
import type { AdmissionDecision } from '../../../src/core/admission';
import { admissionDecisionSignal } from '../../../src/workflows/messages';

export { account } from '../../../src/workflows/account';

export const answersQuery = defineQuery<AdmissionDecision[]>('answers');
export const stopSignal = defineSignal('stop');

export async function requester(): Promise<void> {
  const answers: AdmissionDecision[] = [];
  let stop = false;
  setHandler(admissionDecisionSignal, (decision) => {
    answers.push(decision);
  });
  setHandler(answersQuery, () => answers);
  setHandler(stopSignal, () => {
    stop = true;
  });
  await condition(() => stop);
}
