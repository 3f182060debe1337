/**
 * How the worker and the CLI reach Temporal: address, namespace, task queue, TLS and API key, from `config.temporal`
 * and the environment (the Temporal CLI's variable names, so one shell setup serves both):
 * - `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`: override `temporal.address` / `temporal.namespace` (used by
 *   docker-compose, where the server is `temporal:7233`, not the config's `localhost:7233`);
 * - `TEMPORAL_API_KEY`: API key of a hosted server (Temporal Cloud); sent as a bearer token, never logged. Setting it
 *   turns TLS on, because hosted servers only accept API keys over TLS;
 * - `TEMPORAL_TLS_CERT`, `TEMPORAL_TLS_KEY`: files of a client certificate and key (mTLS); `TEMPORAL_TLS_CA`: a file of
 *   the server's root CA when it is not publicly trusted; `TEMPORAL_TLS_SERVER_NAME`: the name to verify. Any of these
 *   turns TLS on as well.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionOptions, type TLSConfig } from '@temporalio/client';
import type { Config } from '../core/config';
import { OperatorError } from './errors';

export interface TemporalSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  /** false, or the TLS options (an empty object = TLS with the system's trusted roots) */
  tls: false | TLSConfig;
  /** from TEMPORAL_API_KEY; undefined when not set */
  apiKey: string | undefined;
}

/** How to start a local server, for "cannot reach Temporal" messages. */
export const START_SERVER_HINT =
  'start one with `llm-trader dev` (runs a local server, the worker and the pairs) or `temporal server start-dev`, ' +
  'or point temporal.address (or TEMPORAL_ADDRESS) at a running server';

/**
 * Temporal could not be reached (nothing listening, TLS or auth refused). The message names the address and how to
 * start a server; it is meant to be shown as it is, without a stack trace.
 */
export class TemporalUnreachableError extends OperatorError {
  constructor(
    readonly address: string,
    readonly reason: string,
  ) {
    super(`cannot reach the Temporal server at ${address} (${reason}); ${START_SERVER_HINT}`);
    this.name = 'TemporalUnreachableError';
  }
}

function readPemFile(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new OperatorError(
      `${variable}=${file}: cannot read the file (${(err as Error).message}); fix the path or unset ${variable}`,
    );
  }
}

/**
 * The connection settings of `config` with the environment applied (see the module comment).
 * @throws OperatorError when a TLS file named by the environment cannot be read, or only one of TEMPORAL_TLS_CERT /
 *   TEMPORAL_TLS_KEY is set.
 */
export function temporalSettings(
  config: Pick<Config, 'temporal'>,
  env: NodeJS.ProcessEnv = process.env,
): TemporalSettings {
  const nonEmpty = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const apiKey = nonEmpty('TEMPORAL_API_KEY');
  const cert = nonEmpty('TEMPORAL_TLS_CERT');
  const key = nonEmpty('TEMPORAL_TLS_KEY');
  const ca = nonEmpty('TEMPORAL_TLS_CA');
  const serverName = nonEmpty('TEMPORAL_TLS_SERVER_NAME');
  if ((cert === undefined) !== (key === undefined)) {
    throw new OperatorError(
      `TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (a client certificate and its key); set both or neither`,
    );
  }
  const wantsTls =
    config.temporal.tls || apiKey !== undefined || cert !== undefined || ca !== undefined || serverName !== undefined;
  let tls: false | TLSConfig = false;
  if (wantsTls) {
    tls = {};
    if (cert !== undefined && key !== undefined) {
      tls.clientCertPair = { crt: readPemFile('TEMPORAL_TLS_CERT', cert), key: readPemFile('TEMPORAL_TLS_KEY', key) };
    }
    if (ca !== undefined) tls.serverRootCACertificate = readPemFile('TEMPORAL_TLS_CA', ca);
    if (serverName !== undefined) tls.serverNameOverride = serverName;
  }
  return {
    address: nonEmpty('TEMPORAL_ADDRESS') ?? config.temporal.address,
    namespace: nonEmpty('TEMPORAL_NAMESPACE') ?? config.temporal.namespace,
    taskQueue: config.temporal.task_queue,
    tls,
    apiKey,
  };
}

/** The shared part of client (`Connection`) and worker (`NativeConnection`) options. */
export function connectionOptions(settings: TemporalSettings): {
  address: string;
  tls: false | TLSConfig;
  apiKey?: string;
} {
  return {
    address: settings.address,
    tls: settings.tls,
    ...(settings.apiKey !== undefined ? { apiKey: settings.apiKey } : {}),
  };
}

/** A short reason for a failed connection: the gRPC cause's details when there is one. */
export function connectFailureReason(err: unknown): string {
  const seen = new Set<unknown>();
  let cur: unknown = err;
  let text = '';
  while (cur instanceof Error && !seen.has(cur)) {
    seen.add(cur);
    text = cur.message;
    cur = cur.cause;
  }
  return (text || String(err)).split('\n')[0]!.slice(0, 200);
}

/**
 * Connects a client (for starting, signalling, querying) and checks that the server answers within `timeoutMs`.
 * @throws TemporalUnreachableError when the server does not answer in time or refuses the connection
 */
export async function connectClient(
  settings: TemporalSettings,
  options: { timeoutMs?: number } = {},
): Promise<{ client: Client; connection: Connection }> {
  const opts: ConnectionOptions = { ...connectionOptions(settings), connectTimeout: options.timeoutMs ?? 5_000 };
  let connection: Connection;
  try {
    connection = await Connection.connect(opts);
  } catch (err) {
    throw new TemporalUnreachableError(settings.address, connectFailureReason(err));
  }
  return { client: new Client({ connection, namespace: settings.namespace }), connection };
}

/**
 * True when a Temporal server answers at `settings.address` within `timeoutMs` (the connection is closed again).
 * Never throws.
 */
export async function isReachable(settings: TemporalSettings, timeoutMs: number): Promise<boolean> {
  try {
    const { connection } = await connectClient(settings, { timeoutMs });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}
