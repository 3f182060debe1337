/**
 * The kill test: the worker as its own OS process (`llm-trader worker`), SIGKILLed at random points and at exact steps
 * (failpoints: in the decision, between the exchange's acceptance of an order and the journal, in the journal write),
 * restarted each time, on a real Temporal server (see temporal-server.ts for how one is found). Asserts that every pair
 * continues, no client order id fills twice, the journal (SQLite and llm_decisions.jsonl) has no duplicate and no lost
 * record, no decision was taken on a stale candle, and that every kill is recovered from. Prints the recovery times
 * (min / median / max) and any over the {@link RECOVERY_LIMIT_MS} goal, which bench/kill.ts enforces. The harness is test/helpers/worker-process.ts; `npm run bench:kill` runs the same with many more kills.
 *
 *   TEMPORAL_CLI_PATH=../shared/tools/temporal-dev/temporal node scripts/run-tests.mjs test/integration/kill
 *
 * KILL_SEED=<n> repeats a run's random delays (the seed is printed). On a failure the workers' logs, the config, the
 * decision file and the SQLite files are kept in the printed folder.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { acquireServer, requireServerInCi, type IntegrationServer } from './temporal-server';
import { RECOVERY_LIMIT_MS, runKillScenario, type KillPoint, type KillRunReport } from '../helpers/worker-process';

/** >= 5 kills covering the four kill points of the issue, plus one at a random time. */
const PLAN: readonly KillPoint[] = [
  'asleep',
  'decide.beforeProvider',
  'execute.afterOrder',
  'recordDecision.start',
  'random',
];
const PAIRS = ['BTC/USDT:USDT', 'ETH/USDT:USDT', 'SOL/USDT:USDT'];

describe('worker processes SIGKILLed at random points and at failpoints (replay mode, real Temporal server)', () => {
  let server: IntegrationServer | null = null;
  let skip: string | null = null;

  before(async () => {
    const acquired = await acquireServer();
    if (typeof acquired === 'string') {
      skip = acquired;
      requireServerInCi(skip);
      console.log(`# kill test skipped: ${skip}`);
      return;
    }
    server = acquired;
    console.log(`# kill test on ${server.origin} (${server.env.address})`);
  });

  after(async () => {
    await server?.env.teardown();
  });

  test(`${PLAN.length} kills: every pair continues, 0 duplicate fills, 0 duplicate or lost journal records, no stale decision, every kill recovered`, async (t) => {
    if (skip) return t.skip(skip);
    const seed = Number(process.env.KILL_SEED ?? Date.now() % 1_000_000);
    const report: KillRunReport = await runKillScenario({
      address: server!.env.address,
      namespace: server!.namespace,
      client: server!.env.client,
      pairs: PAIRS,
      plan: PLAN,
      secondsPerCandle: 1,
      seed,
      recoveryTimeoutMs: 150_000,
      log: (line) => console.log(line),
    });
    console.log(report.summary.replace(/^/gm, '# '));
    if (!report.checks.every((c) => c.ok) || report.slowKills.length > 0) {
      console.log(`# the workers' logs and files are kept in ${report.dataDir} (seed ${seed})`);
    }

    const failures = report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    if (report.kills.length < PLAN.length) {
      failures.push(`only ${report.kills.length} of ${PLAN.length} kills: ${report.stopReason}`);
    }
    const slow = report.slowKills.map(
      (k) =>
        `kill ${k.index} (${k.point}): ` +
        (k.recoveryFromStartMs === null
          ? 'never recovered'
          : `${(k.recoveryFromStartMs / 1000).toFixed(1)} s, ${((k.recoveryFromStartMs - RECOVERY_LIMIT_MS) / 1000).toFixed(1)} s over`),
    );
    // the recovery time is a speed goal: printed here, enforced by the bench (npm run bench:kill), not by a timed test
    if (slow.length > 0) console.log(`# over the ${RECOVERY_LIMIT_MS / 1000} s recovery goal: ${slow.join('; ')}`);
    assert.equal(failures.length, 0, `${failures.length} failures:\n- ${failures.join('\n- ')}`);
  });
});
