/**
 * Screenshots of a pairTrader history in the Temporal Web UI, for the README (docs/web-ui-history.png and
 * docs/web-ui-list.png).
 *
 *   npx tsx scripts/web-ui-screenshot.ts [--out docs/web-ui-history.png] [--list-out <png>] [--cycles 16]
 *
 * Self-contained and bounded (about 20 s, at most DEADLINE_MS): starts the real dev server
 * (../shared/tools/temporal-dev/temporal, or TEMPORAL_CLI_PATH) on free ports with an in-memory database and the
 * search attributes, runs a worker in this process and one replay pair (BTC on recorded candles from
 * ../shared/data/binanceusdm, the baseline policy, 0.5 s per candle, a temp data_dir) until it has decided `--cycles`
 * times, then stops the worker (the history stops growing; the workflow stays Running on its timer). In headless
 * Chromium (playwright-core, /usr/bin/chromium or CHROMIUM_PATH) it opens the workflow's history in the Compact view
 * (one named row per activity, marker and timer) and writes the top of the page (`--list-out`, default
 * web-ui-list.png beside `--out`), then expands the `recordDecision` of the first entry on its ActivityTaskScheduled
 * event, whose Input is the decision (tool, args, reason, price, verdict, outcome), and writes that (`--out`).
 * Everything it started is stopped and the temp folder removed, also on failure, Ctrl-C or the deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Client, Connection, WorkflowHandle } from '@temporalio/client';
import { ConfigSchema, type Config } from '../src/core/config';
import { connectClient, isReachable, temporalSettings } from '../src/worker/connection';
import { createLogger } from '../src/worker/logger';
import { startPairs } from '../src/worker/starter';
import { startWorker, type RunningWorker } from '../src/worker/worker';
import { statusQuery } from '../src/workflows/messages';

const REPO = resolve(import.meta.dirname, '..');
const PAIR = 'BTC/USDT:USDT';
/** The baseline goes long on BTC at the third candle of this replay, then holds: waits, an entry and holds. */
const REPLAY_START = '2025-06-09T22:00:00Z';
const SEARCH_ATTRIBUTES = [
  'TradingPair=Keyword',
  'TradingMode=Keyword',
  'Paused=Bool',
  'PositionSide=Keyword',
  'LastAction=Keyword',
];
/** The whole run takes about 40 s; past this, something hangs. */
const DEADLINE_MS = 110_000;

function parseArgs(argv: readonly string[]): { out: string; listOut: string; cycles: number } {
  let out = 'docs/web-ui-history.png';
  let listOut: string | null = null;
  let cycles = 16;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--out' && value !== undefined) {
      out = value;
      i += 1;
    } else if (arg === '--list-out' && value !== undefined) {
      listOut = value;
      i += 1;
    } else if (arg === '--cycles' && value !== undefined && /^\d+$/.test(value) && Number(value) > 0) {
      cycles = Number(value);
      i += 1;
    } else {
      throw new Error(
        `unknown or incomplete argument ${String(arg)}; usage: [--out <file.png>] [--list-out <file.png>] [--cycles <n>]`,
      );
    }
  }
  return { out: resolve(out), listOut: resolve(listOut ?? join(dirname(out), 'web-ui-list.png')), cycles };
}

/** A TCP port nothing listens on right now. */
async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

/** Set once this script stops the server: its exit (status 1 on SIGTERM) is then expected. */
let stoppingServer = false;

function startServer(port: number, uiPort: number): ChildProcess {
  const cli = process.env.TEMPORAL_CLI_PATH ?? join(REPO, '../shared/tools/temporal-dev/temporal');
  const args = ['server', 'start-dev', '--port', String(port), '--ui-port', String(uiPort), '--log-level', 'warn'];
  for (const sa of SEARCH_ATTRIBUTES) args.push('--search-attribute', sa);
  const child = spawn(cli, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-2000);
  });
  child.on('exit', (code, signal) => {
    if (!stoppingServer) console.error(`the temporal server exited (${signal ?? `status ${code}`}):\n${tail}`);
  });
  return child;
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  stoppingServer = true;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function replayConfig(dataDir: string, address: string): Config {
  return ConfigSchema.parse({
    mode: 'replay',
    pairs: [PAIR],
    data_dir: dataDir,
    llm: { provider: 'baseline' },
    replay: { data: join(REPO, '../shared/data/binanceusdm'), start: REPLAY_START, seconds_per_candle: 0.5 },
    temporal: { address, task_queue: 'web-ui-screenshot', grace_seconds: 0 },
  });
}

/** The event id of the `recordDecision` scheduled for the first entry (else the latest decision), and its tool. */
async function decisionToShow(handle: WorkflowHandle): Promise<{ eventId: number; tool: string }> {
  const history = await handle.fetchHistory();
  let shown: { eventId: number; tool: string } | null = null;
  for (const event of history.events ?? []) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name !== 'recordDecision') continue;
    const data = scheduled.input?.payloads?.[0]?.data;
    const input = data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { record?: { tool?: string } }) : {};
    const tool = input.record?.tool ?? '?';
    const isEntry = tool.startsWith('signal_entry');
    if (shown === null || !shown.tool.startsWith('signal_entry')) shown = { eventId: Number(event.eventId), tool };
    if (isEntry) break;
  }
  if (shown === null) throw new Error('the history has no recordDecision activity');
  return shown;
}

/**
 * Two shots of the history's Compact view (one row per activity, timer or marker, named): the top of the page
 * (`listOut`), and the `recordDecision` of event `eventId` expanded on its ActivityTaskScheduled event, whose Input is
 * the decision (`out`).
 */
async function screenshots(page: Page, url: string, eventId: number, out: string, listOut: string): Promise<void> {
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  const rows = page.locator('[data-testid=event-summary-row]');
  await rows.first().waitFor({ timeout: 30_000 });
  await page.locator('[data-testid=compact]').click();
  await rows.filter({ hasText: 'recordDecision' }).first().waitFor({ timeout: 10_000 });
  const perPage = page.locator('select').filter({ has: page.locator('option[value="500"]') });
  if ((await perPage.count()) > 0) await perPage.first().selectOption('500');
  await page.waitForLoadState('networkidle').catch(() => undefined);

  await page.setViewportSize({ width: 1400, height: 1300 });
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: listOut });

  const row = rows.filter({ has: page.getByText(String(eventId), { exact: true }) }).first();
  await row.click();
  const scheduledTab = page.getByText('ActivityTaskScheduled', { exact: true }).first();
  await scheduledTab.waitFor({ timeout: 10_000 });
  await scheduledTab.click();
  await page.getByText('Activity Type', { exact: true }).first().waitFor({ timeout: 10_000 });
  // from two rows above the decision (the next cycle's timer and a marker) to the end of its Input, page coordinates
  const top = await row.boundingBox();
  const input = await page.locator('pre, code').filter({ hasText: '"decisionId"' }).last().boundingBox();
  if (top === null) throw new Error(`the row of event ${eventId} is not on the page`);
  const scrollY = Number(await page.evaluate('window.scrollY'));
  const y = Math.max(0, top.y + scrollY - 2 * 65);
  const bottom = input !== null ? input.y + scrollY + input.height + 16 : y + 1000;
  // a viewport of that height scrolled there (a full-page clip would cut the UI's fixed side bar)
  await page.setViewportSize({ width: 1400, height: Math.round(Math.min(bottom - y, 1800)) });
  await page.evaluate(`window.scrollTo(0, ${Math.round(y)})`);
  await page.waitForTimeout(300);
  await page.screenshot({ path: out });
}

async function main(): Promise<void> {
  const { out, listOut, cycles } = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  const temp = mkdtempSync(join(tmpdir(), 'llm-trader-webui-'));
  const [port, uiPort] = [await freePort(), await freePort()];
  const address = `127.0.0.1:${port}`;
  const config = replayConfig(join(temp, 'user_data'), address);
  const settings = temporalSettings(config, {});
  const logger = createLogger({ level: 'WARN', format: 'pretty' });

  let server: ChildProcess | null = null;
  let worker: RunningWorker | null = null;
  let connection: Connection | null = null;
  let browser: Browser | null = null;
  // Ctrl-C or the deadline: stop the server and remove the temp folder before exiting (the worker dies with us)
  const abort = (why: string): void => {
    console.error(`web-ui-screenshot: ${why}; stopping`);
    stoppingServer = true;
    if (server && server.exitCode === null) server.kill('SIGTERM');
    rmSync(temp, { recursive: true, force: true });
    process.exit(1);
  };
  const watchdog = setTimeout(() => abort(`still running after ${DEADLINE_MS / 1000} s`), DEADLINE_MS);
  const onSignal = (signal: NodeJS.Signals): void => abort(`${signal} received`);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    server = startServer(port, uiPort);
    const child = server;
    await until('the Temporal server', 30_000, async () => {
      if (child.exitCode !== null) throw new Error('the server exited');
      return (await isReachable(settings, 1_000)) ? true : null;
    });
    const uiBase = `http://127.0.0.1:${uiPort}`;
    await until('the Web UI', 30_000, async () => ((await fetch(uiBase)).ok ? true : null));
    console.log(`server ${address}, Web UI ${uiBase} (${elapsed()})`);

    worker = await startWorker(config, { logger, settings });
    const connected = await connectClient(settings);
    connection = connected.connection;
    const client: Client = connected.client;
    const [result] = await startPairs(client, settings, config, [PAIR], {});
    if (result?.runId == null) throw new Error(`the pair did not start: ${JSON.stringify(result)}`);
    const handle = client.workflow.getHandle(result.workflowId, result.runId);
    const status = await until(`${cycles} decisions`, 60_000, async () => {
      const s = await handle.query(statusQuery);
      return s.counters.decisions >= cycles ? s : null;
    });
    // no more cycles: the history is fixed while the UI reads it (the workflow stays Running on its timer)
    await worker.shutdown();
    worker = null;
    const c = status.counters;
    console.log(
      `${result.workflowId} run ${result.runId}: ${c.decisions} decisions (${c.entries} entries, ${c.exits} exits, ` +
        `${c.holds} holds, ${c.waits} waits), position ${status.position?.side ?? 'flat'} (${elapsed()})`,
    );
    const shown = await decisionToShow(handle);

    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
      ],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const url = `${uiBase}/namespaces/default/workflows/${encodeURIComponent(result.workflowId)}/${result.runId}/history`;
    mkdirSync(dirname(out), { recursive: true });
    mkdirSync(dirname(listOut), { recursive: true });
    await screenshots(page, url, shown.eventId, out, listOut);
    for (const file of [out, listOut]) console.log(`wrote ${file} (${Math.round(statSync(file).size / 1024)} KB)`);
    console.log(`  from ${url}, recordDecision of event ${shown.eventId} (${shown.tool}) expanded`);
  } finally {
    if (browser) await browser.close().catch(() => undefined);
    if (worker) await worker.shutdown().catch(() => undefined);
    if (connection) await connection.close().catch(() => undefined);
    if (server) await stopServer(server);
    rmSync(temp, { recursive: true, force: true });
    clearTimeout(watchdog);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  console.log(`done in ${elapsed()}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('web-ui-screenshot:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
