/**
 * A Temporal server for the integration suite, in this order:
 * 1. TEMPORAL_ADDRESS (an already running server; TEMPORAL_NAMESPACE, default "default"),
 * 2. TEMPORAL_CLI_PATH (a Temporal CLI executable started as a local dev server),
 * 3. the SDK's own cached download of the dev server (needs internet the first time),
 * else the suite is skipped with one line saying why.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { ensureSearchAttributes, PAIR_SEARCH_ATTRIBUTE_KEYS } from '../../src/worker/search-attributes';

export interface IntegrationServer {
  env: TestWorkflowEnvironment;
  namespace: string;
  /** how the server was obtained, for the test log */
  origin: string;
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
    return { env, namespace, origin: `existing server at ${address}` };
  }
  const searchAttributes = [...PAIR_SEARCH_ATTRIBUTE_KEYS];
  const cliPath = process.env.TEMPORAL_CLI_PATH;
  if (cliPath) {
    const env = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: cliPath }, searchAttributes },
    });
    return { env, namespace: 'default', origin: `dev server from TEMPORAL_CLI_PATH=${cliPath}` };
  }
  try {
    const env = await withTimeout(
      TestWorkflowEnvironment.createLocal({ server: { searchAttributes } }),
      120_000,
      "the SDK's dev server download",
    );
    return { env, namespace: 'default', origin: "the SDK's cached dev server download" };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const why = /dns error|Connect|ENOTFOUND|EAI_AGAIN/.test(message)
      ? 'no network'
      : message.split('\n')[0]!.slice(0, 160);
    return `no Temporal server: TEMPORAL_ADDRESS and TEMPORAL_CLI_PATH are unset and the SDK's dev server download failed (${why})`;
  }
}
