/**
 * A Temporal server for the integration suite, in this order:
 * 1. TEMPORAL_ADDRESS (an already running server; TEMPORAL_NAMESPACE, default "default"),
 * 2. TEMPORAL_CLI_PATH (a Temporal CLI executable started as a local dev server),
 * 3. the project's shared dev server, ../shared/tools/temporal-dev/temporal (a real Temporal server 1.19.1 with the
 *    CLI's `server start-dev` interface), when it exists,
 * 4. the SDK's own cached download of the dev server (needs internet the first time),
 * else the suite is skipped with one line saying why — except in CI (`CI=true`), where no server is a failure:
 * see {@link requireServerInCi}.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { ensureSearchAttributes, PAIR_SEARCH_ATTRIBUTE_KEYS } from '../../src/worker/search-attributes';

export interface IntegrationServer {
  env: TestWorkflowEnvironment;
  namespace: string;
  /** how the server was obtained, for the test log */
  origin: string;
  /** host:port of the frontend, for processes the suite starts (workers, CLI) */
  address: string;
}

/** The shared dev server's executable, relative to the repository root (the working directory of `npm test`). */
export const SHARED_TEMPORAL_CLI = resolve(process.cwd(), '../shared/tools/temporal-dev/temporal');

/**
 * In CI a skipped Temporal test is a failure: throws with the reason when `skip` is a reason and CI is set, so the
 * suite's `before` hook fails (and every test in it) instead of skipping. Elsewhere it does nothing.
 */
export function requireServerInCi(skip: string | null): void {
  if (skip !== null && process.env.CI === 'true') {
    throw new Error(`CI=true and the Temporal integration suite cannot run: ${skip}`);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The server, or the reason the suite is skipped. */
export async function acquireServer(): Promise<IntegrationServer | string> {
  const address = process.env.TEMPORAL_ADDRESS;
  if (address) {
    const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
    const env = await TestWorkflowEnvironment.createFromExistingServer({ address, namespace });
    // an existing server may not know the custom search attributes yet: register them (idempotent)
    await ensureSearchAttributes(env.connection, namespace);
    return { env, namespace, origin: `existing server at ${address}`, address };
  }
  const searchAttributes = [...PAIR_SEARCH_ATTRIBUTE_KEYS];
  const cliPath = process.env.TEMPORAL_CLI_PATH || (existsSync(SHARED_TEMPORAL_CLI) ? SHARED_TEMPORAL_CLI : null);
  if (cliPath) {
    const env = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: cliPath }, searchAttributes },
    });
    const origin = process.env.TEMPORAL_CLI_PATH
      ? `dev server from TEMPORAL_CLI_PATH=${cliPath}`
      : `the shared dev server ${cliPath}`;
    return { env, namespace: 'default', origin, address: env.address };
  }
  try {
    const env = await withTimeout(
      TestWorkflowEnvironment.createLocal({ server: { searchAttributes } }),
      120_000,
      "the SDK's dev server download",
    );
    return { env, namespace: 'default', origin: "the SDK's cached dev server download", address: env.address };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const why = /dns error|Connect|ENOTFOUND|EAI_AGAIN/.test(message)
      ? 'no network'
      : message.split('\n')[0]!.slice(0, 160);
    return `no Temporal server: TEMPORAL_ADDRESS and TEMPORAL_CLI_PATH are unset, ${SHARED_TEMPORAL_CLI} does not exist, and the SDK's dev server download failed (${why})`;
  }
}
