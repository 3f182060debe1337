/**
 * The HTML report in a real browser: headless Chromium (Debian package `chromium`, driven by playwright-core) opens
 * the file with every network request blocked and checks that the charts are drawn, the markers match the trades,
 * the trade table is filled, and nothing was logged as an error.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { runBacktest } from '../../src/backtest/engine';
import { baselinePolicy } from '../../src/backtest/policy';
import { renderReport, scriptJson } from '../../src/backtest/report';
import type { BacktestResult } from '../../src/backtest/result';
import { closedCount } from '../../src/core/timeframe';
import type { Candle } from '../../src/core/types';
import { DAY_MS, MAIN_MS, recordedMarket, testConfig } from '../helpers/backtest';

const CHROMIUM = '/usr/bin/chromium';
const PAIRS = ['BTC/USDT:USDT', 'ETH/USDT:USDT'];
const FROM = Date.UTC(2025, 4, 22, 0, 30) + 5 * DAY_MS;
const TO = FROM + 25 * DAY_MS;

interface Box {
  width: number;
  height: number;
  /** length of the path's `d` attribute */
  d: number;
}

interface Measured {
  up: Box | null;
  down: Box | null;
  wicks: Box | null;
  equity: Box | null;
  drawdown: Box | null;
  entries: number;
  exits: number;
  pair: string;
  label: string;
  rows: number;
  firstReason: string | null;
  images: number;
  comparisonRows: number;
}

/**
 * What the page shows, measured in the page. A string, not a function: the test runner's TypeScript transform would
 * add helpers to a function that do not exist in the browser.
 */
const MEASURE = `(() => {
  const box = (sel) => {
    const e = document.querySelector(sel);
    if (!e) return null;
    const r = e.getBoundingClientRect();
    return { width: r.width, height: r.height, d: (e.getAttribute('d') || '').length };
  };
  const cell = document.querySelector('#trades tr td:nth-child(14)');
  return {
    up: box('#price-chart path.candles-up'),
    down: box('#price-chart path.candles-down'),
    wicks: box('#price-chart path.wicks'),
    equity: box('#equity-chart path.series'),
    drawdown: box('#drawdown-chart path.area'),
    entries: document.querySelectorAll('#price-chart .marker.entry').length,
    exits: document.querySelectorAll('#price-chart .marker.exit').length,
    pair: document.getElementById('pair').value,
    label: document.getElementById('range-label').textContent,
    rows: document.querySelectorAll('#trades tr').length,
    firstReason: cell ? cell.textContent : null,
    images: document.images.length,
    comparisonRows: document.querySelectorAll('#comparison tbody tr').length,
  };
})()`;

describe('the HTML report in headless Chromium', () => {
  let dir: string;
  let file: string;
  let result: BacktestResult;
  let browser: Browser;

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: the report test needs Chromium. Install it with: apt-get update && apt-get install -y chromium`,
    );
    const market = recordedMarket();
    ({ result } = await runBacktest({
      config: testConfig(),
      market,
      pairs: PAIRS,
      from: FROM,
      to: TO,
      policy: baselinePolicy(),
      lookaheadSamples: 3,
    }));
    // a reason that would break a page that inserts text as HTML
    result.trades[0]!.entry_reason = '</script><img src=x onerror="console.error(1)"> & more';
    const candles: Record<string, readonly Candle[]> = {};
    for (const pair of PAIRS) {
      const all = await market.history(pair, '30m');
      candles[pair] = all.slice(closedCount(all, MAIN_MS, FROM) - 1, closedCount(all, MAIN_MS, TO));
    }
    dir = mkdtempSync(join(tmpdir(), 'backtest-report-'));
    file = join(dir, 'report.html');
    writeFileSync(file, renderReport(result, candles));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
      ],
    });
  });

  after(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('draws the charts and the trade table without errors or network requests', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.route('**/*', async (route) => {
      const url = route.request().url();
      if (url === pathToFileURL(file).href) return route.continue();
      requests.push(url);
      return route.abort();
    });
    await page.goto(pathToFileURL(file).href);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });

    const chart = (await page.evaluate(MEASURE)) as Measured;
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, []);
    for (const name of ['up', 'down', 'wicks', 'equity', 'drawdown'] as const) {
      const b = chart[name];
      assert.ok(b, `${name} is not drawn`);
      assert.ok(b.width > 500 && b.height > 20 && b.d > 100, `${name}: ${JSON.stringify(b)}`);
    }
    // one entry and one exit marker per trade of the selected pair
    const trades = result.trades.filter((t) => t.pair === chart.pair);
    assert.equal(chart.pair, PAIRS[0]);
    assert.ok(trades.length > 0);
    assert.equal(chart.entries, trades.length);
    assert.equal(chart.exits, trades.length);
    assert.equal(chart.rows, result.trades.length);
    // the reason is shown as text, not parsed as HTML
    assert.equal(chart.firstReason, result.trades[0]!.entry_reason);
    assert.equal(chart.images, 0);
    assert.equal(chart.comparisonRows, 1 + PAIRS.length);

    // choosing the other pair redraws its candles and markers
    await page.selectOption('#pair', PAIRS[1]!);
    const other = (await page.evaluate(MEASURE)) as Measured;
    assert.equal(other.entries, result.trades.filter((t) => t.pair === PAIRS[1]).length);
    assert.equal(other.pair, PAIRS[1]);
    assert.match(other.label, /candles/);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('inline JSON cannot close its script element', () => {
    const text = scriptJson({ reason: '</script><script>alert(1)</script> & \u2028' });
    assert.ok(!text.includes('<') && !text.includes('>') && !text.includes('&'));
    assert.deepEqual(JSON.parse(text), { reason: '</script><script>alert(1)</script> & \u2028' });
  });
});
