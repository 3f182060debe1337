/**
 * The worker: polls the task queue, runs the workflows (bundled from src/workflows/index.ts, or a prebuilt bundle) and
 * the activities (built from the config by createActivityRuntime: exchange, market source, decision provider,
 * journal). One structured logger serves the worker and the SDK (installed as Temporal's Runtime logger).
 *
 * Shutdown: on SIGINT or SIGTERM the worker stops polling, lets in-flight tasks finish for up to
 * {@link SHUTDOWN_GRACE}, then the activities' resources (database handles, exchange sessions) are closed. A second
 * signal exits at once. Workflow state is on the server: the next worker carries on where this one stopped.
 */
import { writeFileAtomic } from '../store/atomic-file';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { ActivityRuntime } from '../activities';
import type { Config } from '../core/config';
import {
  TemporalUnreachableError,
  connectFailureReason,
  connectionOptions,
  temporalSettings,
  type TemporalSettings,
} from './connection';
import type { StructuredLogger } from './logger';
import { PACKAGE_ROOT } from './package-root';

/** The workflows' entry point, bundled by webpack when no prebuilt bundle is given. */
export const WORKFLOWS_PATH = join(PACKAGE_ROOT, 'src/workflows/index.ts');

/**
 * How long a workflow task may wait on a worker's sticky queue before any worker may take it. A task waits there when
 * the worker that ran the workflow last is gone (killed, crashed): this is the part of recovery a new worker cannot
 * shorten. The SDK's default is 10 s.
 */
export const STICKY_QUEUE_TIMEOUT = '3s';

/** Where prebuilt workflow bundles are kept, by content hash: the repository's node_modules/.cache (a build cache). */
export const BUNDLE_CACHE_DIR = join(PACKAGE_ROOT, 'node_modules/.cache/llm-trader');

/** How long in-flight workflow and activity tasks may run on after a shutdown request before activities are cancelled. */
export const SHUTDOWN_GRACE = '10s';
/** After this, a worker that has not stopped is abandoned (the process should exit). */
export const SHUTDOWN_FORCE = '60s';

let runtimeInstalled = false;

/**
 * Installs `logger` as Temporal's Runtime logger (SDK, workflow and activity log calls, and the Core SDK's warnings,
 * forwarded), with no signal handlers of its own: {@link runWorker} and `llm-trader dev` handle the signals. Call it
 * before anything else creates the Runtime (a worker, a NativeConnection, a test server); later calls do nothing.
 * @throws IllegalStateError when something else already created the Runtime
 */
export function installRuntimeLogger(logger: StructuredLogger): void {
  if (runtimeInstalled) return;
  Runtime.install({
    logger,
    shutdownSignals: [],
    telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
  });
  runtimeInstalled = true;
}

/** Bundles the workflow code (webpack; a few seconds). Returns the bundle's JavaScript. */
export async function buildWorkflowBundle(logger: StructuredLogger): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger });
  return code;
}

/** The .ts files under `dir`, recursively, sorted. */
async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out.sort();
}

/**
 * The content hash of everything that goes into the workflow bundle: the sources it may import (src/workflows and
 * src/core: the lint rules allow workflows nothing else) and the versions of the Temporal packages bundled with them.
 */
export async function workflowBundleKey(): Promise<string> {
  const hash = createHash('sha256');
  const src = dirname(dirname(WORKFLOWS_PATH));
  for (const dir of ['workflows', 'core']) {
    for (const file of await sourceFiles(join(src, dir))) {
      hash
        .update(relative(src, file))
        .update('\0')
        .update(await readFile(file))
        .update('\0');
    }
  }
  const require = createRequire(import.meta.url);
  for (const pkg of ['@temporalio/workflow', '@temporalio/common', '@temporalio/worker']) {
    const { version } = require(`${pkg}/package.json`) as { version: string };
    hash.update(`${pkg}@${version}\0`);
  }
  return hash.digest('hex').slice(0, 20);
}

/**
 * The path of a workflow bundle of the current sources: built once (a few seconds of webpack) and then reused from
 * {@link BUNDLE_CACHE_DIR} by every worker start, so a replacement worker polls within a second or two. The file is
 * written under a temporary name and renamed, so concurrent starts never read half a bundle. Returns null when the
 * cache cannot be written (a read-only install): the caller bundles in memory.
 */
export async function cachedWorkflowBundle(
  logger: StructuredLogger,
  cacheDir: string = BUNDLE_CACHE_DIR,
): Promise<string | null> {
  const file = join(cacheDir, `workflow-bundle-${await workflowBundleKey()}.js`);
  try {
    if ((await stat(file)).size > 0) return file;
  } catch {
    // not built yet
  }
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(cacheDir, { recursive: true });
    logger.info('bundling the workflow code once for this version', { file });
    await writeFile(temp, await buildWorkflowBundle(logger), 'utf8');
    await rename(temp, file);
    return file;
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    logger.warn('could not keep the workflow bundle; bundling at every start', {
      file,
      error: err instanceof Error ? err.message : String(err),
    });
    return null;
  }
}

/**
 * Writes the workflow bundle to `file`, for images that should not bundle on every start (`worker --bundle <file>`).
 * The bundle must be used with the same @temporalio/worker version that built it. Returns its size in bytes.
 */
export async function writeWorkflowBundle(file: string, logger: StructuredLogger): Promise<number> {
  const code = await buildWorkflowBundle(logger);
  writeFileAtomic(file, code);
  return Buffer.byteLength(code, 'utf8');
}

export interface StartWorkerOptions {
  logger: StructuredLogger;
  /** where and how to connect; default: from the config and the environment (see connection.ts) */
  settings?: TemporalSettings;
  /** an open connection to use (e.g. the dev server's); the caller closes it. Default: connect to `settings` */
  connection?: NativeConnection;
  /** a prebuilt workflow bundle (see {@link writeWorkflowBundle}); default: the cached bundle of the sources */
  workflowBundlePath?: string;
  /** builds the activities; default createActivityRuntime (tests pass their own) */
  createActivities?: (config: Config, opts: { logger: StructuredLogger }) => Promise<ActivityRuntime>;
}

export interface RunningWorker {
  settings: TemporalSettings;
  /** resolves when the worker has stopped and the activities are closed; rejects on a fatal worker error */
  done: Promise<void>;
  /** asks the worker to stop (in-flight tasks get {@link SHUTDOWN_GRACE}); returns `done`. Safe to call twice. */
  shutdown(): Promise<void>;
}

/**
 * Starts a worker for `config` and returns once it is polling.
 * @throws TemporalUnreachableError when the server cannot be reached; errors of the activity runtime (bad exchange or
 *   provider settings) and of the workflow bundle as they are. Nothing stays open after a throw.
 */
export async function startWorker(config: Config, options: StartWorkerOptions): Promise<RunningWorker> {
  const { logger } = options;
  installRuntimeLogger(logger);
  const settings = options.settings ?? temporalSettings(config);
  // loaded here, not at the top: writing a bundle needs none of the exchange, model or database clients
  const createActivities = options.createActivities ?? (await import('../activities')).createActivityRuntime;
  const activityRuntime = await createActivities(config, { logger });
  let ownConnection: NativeConnection | null = null;
  let worker: Worker;
  try {
    let connection = options.connection;
    if (connection === undefined) {
      try {
        ownConnection = await NativeConnection.connect(connectionOptions(settings));
      } catch (err) {
        throw new TemporalUnreachableError(settings.address, connectFailureReason(err));
      }
      connection = ownConnection;
    }
    const bundlePath = options.workflowBundlePath ?? (await cachedWorkflowBundle(logger));
    logger.info(bundlePath ? 'loading the workflow bundle' : 'bundling the workflow code', {
      path: bundlePath ?? WORKFLOWS_PATH,
    });
    worker = await Worker.create({
      connection,
      namespace: settings.namespace,
      taskQueue: settings.taskQueue,
      activities: activityRuntime.activities,
      ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: WORKFLOWS_PATH }),
      stickyQueueScheduleToStartTimeout: STICKY_QUEUE_TIMEOUT,
      shutdownGraceTime: SHUTDOWN_GRACE,
      shutdownForceTime: SHUTDOWN_FORCE,
    });
  } catch (err) {
    await closeQuietly(logger, 'the activities', () => activityRuntime.close());
    if (ownConnection) await closeQuietly(logger, 'the connection', () => ownConnection!.close());
    throw err;
  }

  const done = (async () => {
    try {
      await worker.run();
    } finally {
      await closeQuietly(logger, 'the activities', () => activityRuntime.close());
      if (ownConnection) await closeQuietly(logger, 'the connection', () => ownConnection!.close());
    }
  })();
  logger.info('worker started', {
    address: settings.address,
    namespace: settings.namespace,
    taskQueue: settings.taskQueue,
    mode: config.mode,
    provider: config.llm.provider,
  });
  return {
    settings,
    done,
    shutdown: () => {
      if (worker.getState() === 'RUNNING') {
        logger.info('worker shutting down: finishing in-flight tasks', { graceTime: SHUTDOWN_GRACE });
        worker.shutdown();
      }
      return done;
    },
  };
}

async function closeQuietly(logger: StructuredLogger, what: string, close: () => Promise<void>): Promise<void> {
  try {
    await close();
  } catch (err) {
    logger.error(`could not close ${what}`, { error: err });
  }
}

/**
 * Calls `onFirst(signal)` on the first SIGINT or SIGTERM; a second one exits the process at once (code 130).
 * Returns a function that removes the handlers.
 */
export function onShutdownSignals(
  logger: StructuredLogger,
  onFirst: (signal: NodeJS.Signals) => void,
  signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'],
): () => void {
  let received = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (received) {
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(130);
    }
    received = true;
    logger.info(`${signal} received: shutting down (send it again to exit at once)`);
    onFirst(signal);
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}

/** `llm-trader worker`: starts a worker and runs it until SIGINT or SIGTERM, then shuts it down gracefully. */
export async function runWorker(config: Config, options: StartWorkerOptions): Promise<void> {
  const running = await startWorker(config, options);
  const dispose = onShutdownSignals(options.logger, () => void running.shutdown());
  try {
    await running.done;
  } finally {
    dispose();
  }
  options.logger.info('worker stopped');
}
