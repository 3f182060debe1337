#!/usr/bin/env node
// Opens a backtest report (report.html) in headless Chromium from file:// with every network request refused,
// prints its size and its load time (navigation start to the page's data-ready mark, median of --runs), checks
// the console stayed clean, and writes a full-page screenshot.
// Usage: node scripts/report-screenshot.mjs <report.html> <out.png> [--width 1400] [--runs 5]
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const [report, png, ...rest] = process.argv.slice(2);
if (!report || !png) {
  console.error('usage: node scripts/report-screenshot.mjs <report.html> <out.png> [--width 1400] [--runs 5]');
  process.exit(2);
}
const option = (name, fallback) => {
  const i = rest.indexOf(name);
  return i >= 0 ? Number(rest[i + 1]) : fallback;
};
const width = option('--width', 1400);
const runs = option('--runs', 5);
const url = pathToFileURL(resolve(report)).href;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
  ],
});
try {
  const times = [];
  let page;
  const errors = [];
  for (let r = 0; r < runs; r++) {
    await page?.close();
    page = await browser.newPage({ viewport: { width, height: 900 } });
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort()));
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
    times.push(await page.evaluate('performance.now()'));
  }
  times.sort((a, b) => a - b);
  const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
  await page.screenshot({ path: png, fullPage: true });
  console.log(
    `${report}: ${(statSync(report).size / 1e6).toFixed(2)} MB; load to ready in Chromium (${runs} runs): min ` +
      `${times[0].toFixed(0)} ms, median ${times[Math.floor(times.length / 2)].toFixed(0)} ms, max ` +
      `${times[times.length - 1].toFixed(0)} ms; horizontal overflow at ${width} px: ${overflow} px; console errors: ${errors.length}`,
  );
  for (const e of errors) console.log(`  ${e}`);
} finally {
  await browser.close();
}
