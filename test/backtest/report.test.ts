/**
 * The HTML report in a real browser: headless Chromium (Debian package `chromium`, driven by playwright-core) opens
 * the report of the 17-pair baseline backtest over the whole shared data from file:// with every network request
 * refused, and checks that nothing was logged as an error, that the charts are drawn (canvases present and not
 * blank), that the per-pair and breakdown tables hold every traded pair and every trade, that the page fits 1400 px,
 * and that choosing a pair redraws its chart. Also: result.json's per-pair PnL sums to the total PnL.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runBacktest } from '../../src/backtest/engine';
import { baselinePolicy } from '../../src/backtest/policy';
import { chartCandles, renderReport, scriptJson } from '../../src/backtest/report';
import type { BacktestResult } from '../../src/backtest/result';
import { closedCount } from '../../src/core/timeframe';
import type { Candle } from '../../src/core/types';
import { ALL_PAIRS, MAIN_MS, recordedMarket, testConfig } from '../helpers/backtest';

const CHROMIUM = '/usr/bin/chromium';

/** Pixels of a chart's canvases that are not the background (white), counted in the page. */
const INKED = `((sel) => {
  const canvases = [...document.querySelectorAll(sel + ' canvas')];
  let inked = 0;
  for (const c of canvases) {
    if (c.width === 0 || c.height === 0) continue;
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && (px[i] < 240 || px[i + 1] < 240 || px[i + 2] < 240)) inked++;
  }
  return { canvases: canvases.length, inked };
})`;

interface Table {
  rows: string[][];
}

async function table(page: Page, selector: string): Promise<Table> {
  const rows = (await page.evaluate(
    `[...document.querySelectorAll(${JSON.stringify(`${selector} tbody tr`)})].map((r) => [...r.cells].map((c) => c.textContent))`,
  )) as string[][];
  return { rows };
}

describe('the HTML report in headless Chromium (17 pairs, the whole shared data)', () => {
  let dir: string;
  let file: string;
  let result: BacktestResult;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const requests: string[] = [];

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: the report test needs Chromium. Install it with: apt-get update && apt-get install -y chromium`,
    );
    const market = recordedMarket();
    ({ result } = await runBacktest({
      config: testConfig(),
      market,
      pairs: ALL_PAIRS,
      policy: baselinePolicy(),
      lookaheadSamples: 3,
    }));
    // a reason that would break a page that inserts text as HTML
    result.trades[0]!.entry_reason = '</script><img src=x onerror="console.error(1)"> & more';
    const candles: Record<string, readonly Candle[]> = {};
    for (const pair of ALL_PAIRS) {
      const all = await market.history(pair, '30m');
      candles[pair] = all.slice(
        closedCount(all, MAIN_MS, result.range.from) - 1,
        closedCount(all, MAIN_MS, result.range.to),
      );
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
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
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
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  });

  after(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('loads offline without errors; the charts are drawn, not blank', async () => {
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, []);
    for (const chart of ['#equity-chart', '#price-chart']) {
      const drawn = (await page.evaluate(`${INKED}(${JSON.stringify(chart)})`)) as { canvases: number; inked: number };
      assert.ok(drawn.canvases > 0, `${chart}: no canvas`);
      assert.ok(drawn.inked > 5000, `${chart} is blank: ${JSON.stringify(drawn)}`);
    }
    // the reason is shown as text, not parsed as HTML
    const cell = await page.evaluate(`document.querySelector('#trades tr td:nth-child(13)').textContent`);
    assert.equal(cell, result.trades[0]!.entry_reason);
    assert.equal(await page.evaluate('document.images.length'), 0);
    assert.equal(await page.evaluate(`document.querySelectorAll('#trades tr').length`), result.trades.length);
  });

  test('states the tradable period in the header', async () => {
    assert.equal(result.period.reason, 'warmup_end');
    assert.ok(result.period.from > result.range.from, 'the warm-up is not counted');
    const header = (await page.evaluate(`document.getElementById('period').textContent`)) as string;
    const when = new Date(result.period.from).toISOString().slice(0, 16).replace('T', ' ');
    assert.ok(header.includes(`Measured from ${when} UTC`), header);
    assert.match(header, /after the indicator warm-up \(8\.\d days: .*4h ema50/);
  });

  test('the per-pair and breakdown tables hold every traded pair and every trade', async () => {
    const traded = [...new Set(result.trades.map((t) => t.pair))].sort();
    assert.equal(traded.length, ALL_PAIRS.length, 'the baseline trades every pair of the shared data');
    const pairs = await table(page, '#pair-table');
    const named = pairs.rows.map((r) => r[0]!).filter((n) => n !== 'all pairs');
    assert.deepEqual([...named].sort(), traded);
    for (const row of pairs.rows.filter((r) => r[0] !== 'all pairs')) {
      assert.equal(Number(row[1]), result.trades.filter((t) => t.pair === row[0]).length, `trades of ${row[0]}`);
    }
    for (const id of ['#by-exit-reason', '#by-side', '#by-month']) {
      const rows = (await table(page, id)).rows;
      const groups = rows.filter((r) => r[0] !== 'all trades');
      assert.equal(
        groups.reduce((s, r) => s + Number(r[1]), 0),
        result.trades.length,
        `${id}: the groups do not hold every trade`,
      );
    }
    const months = (await table(page, '#by-month')).rows.map((r) => r[0]);
    assert.deepEqual(months, ['2025-05', '2025-06', '2025-07', 'all trades']);
    // the comparison: the policy, and the equal-weight buy-and-hold of the traded pairs
    const comparison = (await table(page, '#comparison')).rows.map((r) => r[0]);
    assert.deepEqual(comparison, [
      'policy baseline',
      `equal-weight buy-and-hold of the ${ALL_PAIRS.length} traded pairs`,
    ]);
  });

  test('fits 1400 px without horizontal scrolling', async () => {
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    assert.equal(overflow, 0);
  });

  test('choosing a pair redraws its candles; the tooltip names the trade', async () => {
    const pair = 'BTC/USDT:USDT';
    await page.selectOption('#pair', pair);
    const label = (await page.evaluate(`document.getElementById('pair-label').textContent`)) as string;
    assert.match(
      label,
      new RegExp(`^\\d+ candles of 30m, ${result.trades.filter((t) => t.pair === pair).length} trades`),
    );
    const shown = await page.evaluate(`document.querySelector('#pair-results tr.sel').getAttribute('data-pair')`);
    assert.equal(shown, pair);
    // hover the candle of the pair's last entry: the tooltip shows the model's reason and the trade's PnL
    const trade = result.trades.filter((t) => t.pair === pair).at(-1)!;
    const bar = (trade.entry_time - MAIN_MS) / 1000;
    await page.evaluate(
      `window.reportCharts.price.timeScale().setVisibleRange({ from: ${bar - 3 * 86400}, to: ${bar + 3 * 86400} })`,
    );
    await page.evaluate(`document.getElementById('price-chart').scrollIntoView({ block: 'center' })`);
    await page.waitForTimeout(100);
    const at = (await page.evaluate(`(() => {
      const ts = window.reportCharts.price.timeScale();
      const box = document.getElementById('price-chart').getBoundingClientRect();
      return { x: box.left + ts.timeToCoordinate(${bar}), y: box.top + 200 };
    })()`)) as { x: number; y: number };
    assert.ok(Number.isFinite(at.x), 'the entry candle is not on the chart');
    await page.mouse.move(at.x, at.y);
    // (the page's CSP forbids eval, so poll with evaluate rather than waitForFunction)
    for (let i = 0; i < 40; i++) {
      if (await page.evaluate(`document.querySelector('#price-chart .tip').style.display === 'block'`)) break;
      await page.waitForTimeout(50);
    }
    const tip = (await page.evaluate(`document.querySelector('#price-chart .tip').textContent`)) as string;
    assert.ok(tip.includes(trade.entry_reason), tip);
    const pnl = `${trade.pnl > 0 ? '+' : ''}${trade.pnl.toFixed(2)} USDT`;
    assert.ok(tip.includes(`trade PnL ${pnl}`), tip);
    const drawn = (await page.evaluate(`${INKED}('#price-chart')`)) as { inked: number };
    assert.ok(drawn.inked > 5000);
    assert.deepEqual(errors, []);
  });

  test("result.json's per-pair PnL sums to the total PnL", () => {
    const sum = result.pairs.reduce((s, p) => s + p.pnl, 0);
    assert.ok(result.trades.length > 100);
    assert.ok(Math.abs(sum - result.metrics.net_pnl) < 1e-6, `${sum} vs ${result.metrics.net_pnl}`);
    assert.ok(
      Math.abs(result.metrics.net_pnl - (result.metrics.final_equity - result.metrics.starting_balance)) < 1e-9,
    );
    for (const b of Object.values({
      e: result.breakdowns.exit_reason,
      s: result.breakdowns.side,
      m: result.breakdowns.month,
    })) {
      assert.ok(Math.abs(b.reduce((s, g) => s + g.pnl, 0) - result.metrics.net_pnl) < 1e-6);
    }
  });
});

describe('the report page data', () => {
  test('inline JSON cannot close its script element', () => {
    const text = scriptJson({ reason: '</script><script>alert(1)</script> & \u2028' });
    assert.ok(!text.includes('<') && !text.includes('>') && !text.includes('&'));
    assert.deepEqual(JSON.parse(text), { reason: '</script><script>alert(1)</script> & \u2028' });
  });

  test('the compact candles decode to the candles, gaps included', () => {
    const t0 = Date.UTC(2025, 4, 22);
    const candles: Candle[] = [0, 1, 4, 5].map((k, i) => ({
      time: t0 + k * MAIN_MS,
      open: 0.7735 + i * 0.0011,
      high: 0.78 + i * 0.001,
      low: 0.77 - i * 0.0001,
      close: 0.7751 - i * 0.0003,
      volume: 1,
    }));
    const c = chartCandles(candles, MAIN_MS);
    assert.equal(c.digits, 4);
    assert.deepEqual(c.gaps, [[2, 2]]);
    let close = 0;
    let skip = 0;
    const s = 10 ** c.digits;
    candles.forEach((k, i) => {
      const gap = c.gaps.find((g) => g[0] === i);
      if (gap) skip += gap[1];
      close += c.c[i]!;
      assert.equal((c.t0 + (i + skip) * c.tf) * 1000, k.time);
      assert.ok(Math.abs(close / s - k.close) < 1e-12);
      assert.ok(Math.abs((close + c.o[i]!) / s - k.open) < 1e-12);
      assert.ok(Math.abs((close + c.h[i]!) / s - k.high) < 1e-12);
      assert.ok(Math.abs((close + c.l[i]!) / s - k.low) < 1e-12);
    });
  });
});
