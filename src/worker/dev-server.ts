/**
 * A local Temporal dev server for `llm-trader dev`, through @temporalio/testing: the Temporal CLI's `server start-dev`
 * with the Web UI, persistence to a SQLite file under `data_dir`, and the pair search attributes registered.
 *
 * The CLI binary: `TEMPORAL_CLI_PATH` when set, else `temporal` on the PATH, else the SDK downloads it once (cached in
 * the system's temp directory). The server listens where the config says (`temporal.address`, a local host), so the
 * other verbs (`status`, `pause`...) reach it from another terminal.
 */
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Config } from '../core/config';
import { OperatorError } from './errors';
import type { TemporalSettings } from './connection';
import { PAIR_SEARCH_ATTRIBUTE_KEYS } from './search-attributes';

/** The dev server's database file under `data_dir`. */
export const DEV_SERVER_DB_FILE = 'temporal.sqlite';

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '0.0.0.0']);

export type DevServerExecutable = { type: 'existing-path'; path: string } | { type: 'cached-download' };

/**
 * Which Temporal CLI runs the dev server: `TEMPORAL_CLI_PATH`, else the first executable `temporal` on `PATH`, else
 * a download.
 * @throws OperatorError when TEMPORAL_CLI_PATH names a file that does not exist
 */
export function devServerExecutable(env: NodeJS.ProcessEnv = process.env): DevServerExecutable {
  const explicit = env.TEMPORAL_CLI_PATH?.trim();
  if (explicit) {
    if (!existsSync(explicit)) {
      throw new OperatorError(
        `TEMPORAL_CLI_PATH=${explicit} does not exist: point it at the temporal binary, or unset it to use the one on ` +
          'the PATH (or a download)',
      );
    }
    return { type: 'existing-path', path: explicit };
  }
  const names = process.platform === 'win32' ? ['temporal.exe'] : ['temporal'];
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    for (const name of names) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return { type: 'existing-path', path: candidate };
      } catch {
        // not here
      }
    }
  }
  return { type: 'cached-download' };
}

/**
 * Host and port of a `host:port` address (port 7233 when missing). IPv6 literals are not supported.
 * @throws OperatorError when the address is not `host[:port]` or the port is not in 1..65535
 */
export function parseAddress(address: string): { host: string; port: number } {
  const m = /^([^:\s]+)(?::(\d+))?$/.exec(address.trim());
  const port = m?.[2] === undefined ? 7233 : Number(m[2]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new OperatorError(`temporal.address must look like host:port (e.g. localhost:7233), got "${address}"`);
  }
  return { host: m[1]!, port };
}

export interface DevServer {
  env: TestWorkflowEnvironment;
  address: string;
  /** e.g. http://localhost:8233/namespaces/default/workflows */
  webUiUrl: string;
  dbFile: string;
}

/**
 * Starts the dev server at `settings.address` (which must be a local address without TLS), with the Web UI on
 * `uiPort` (default: the server port + 1000, i.e. 8233 for 7233) and persistence in `<data_dir>/temporal.sqlite`.
 * Call `env.teardown()` to stop it. The Runtime logger should be installed first (see installRuntimeLogger).
 * @throws OperatorError when the address is not local or uses TLS / an API key (no local server can serve it), or
 *   the server does not start
 */
export async function startDevServer(
  config: Pick<Config, 'data_dir'>,
  settings: TemporalSettings,
  options: { uiPort?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<DevServer> {
  const { host, port } = parseAddress(settings.address);
  if (!LOCAL_HOSTS.has(host)) {
    throw new OperatorError(
      `no Temporal server answers at ${settings.address}, and dev only starts a server on this machine: start the ` +
        'server there, or set temporal.address to localhost:7233 for a local one',
    );
  }
  if (settings.tls !== false || settings.apiKey !== undefined) {
    throw new OperatorError(
      `no Temporal server answers at ${settings.address}, and a local dev server speaks neither TLS nor API keys: ` +
        'unset TEMPORAL_API_KEY / TEMPORAL_TLS_* and temporal.tls, or start your own server',
    );
  }
  const uiPort = options.uiPort ?? port + 1000;
  const dataDir = resolve(config.data_dir);
  mkdirSync(dataDir, { recursive: true });
  const dbFile = join(dataDir, DEV_SERVER_DB_FILE);
  const executable = devServerExecutable(options.env);
  const createLocal = TestWorkflowEnvironment.createLocal({
    server: {
      executable,
      ip: host === 'localhost' ? '127.0.0.1' : host,
      port,
      namespace: settings.namespace,
      ui: true,
      uiPort,
      dbFilename: dbFile,
      searchAttributes: [...PAIR_SEARCH_ATTRIBUTE_KEYS],
    },
  });
  let env: TestWorkflowEnvironment;
  try {
    env = await createLocal;
  } catch (err) {
    const cli = executable.type === 'existing-path' ? executable.path : 'the downloaded Temporal CLI';
    const message = err instanceof Error ? err.message : String(err);
    const downloadFailed = executable.type === 'cached-download' && /download/i.test(message);
    const reason = downloadFailed
      ? 'the Temporal CLI could not be downloaded (no network?).'
      : `${message.split(':')[0] ?? message}: is the port taken, or the binary not the Temporal CLI?`;
    throw new OperatorError(
      `could not start a Temporal dev server at ${settings.address} with ${cli}: ${reason} ` +
        `Set TEMPORAL_CLI_PATH to a Temporal CLI, or start a server yourself (\`temporal server ` +
        `start-dev --port ${port}\`) and run dev again`,
      { cause: err },
    );
  }
  const uiHost = host === '0.0.0.0' ? 'localhost' : host;
  return {
    env,
    address: env.address,
    webUiUrl: `http://${uiHost}:${uiPort}/namespaces/${encodeURIComponent(settings.namespace)}/workflows`,
    dbFile,
  };
}
