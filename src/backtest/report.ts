/**
 * The HTML report of a backtest: one self-contained file that opens offline (inline CSS, the charting library and
 * the page's script inline, the data as inline JSON; nothing is fetched when it is viewed).
 *
 * What it shows, as a trader reads it: the headline figures over the tradable period (stated in the header: after
 * the indicator warm-up) beside the equal-weight buy-and-hold of the traded pairs; the comparison with the baseline
 * and each pair's buy-and-hold; the equity curve with the benchmark line and the drawdown; a candle chart per pair
 * (pair selector) with the entries and exits of its trades and the protective stop, with a time axis, zoom (wheel,
 * drag), a crosshair and a tooltip naming the model's reason and the trade's PnL; the policy's results per pair, by
 * exit reason, side and month; the decisions panel; every trade.
 *
 * The charts are TradingView's lightweight-charts (Apache-2.0), inlined from its standalone build. The candles are
 * sent compactly (integer prices at the pair's decimals, delta-coded; times implied by the timeframe), so 17 pairs
 * of two months stay a page of about a megabyte.
 *
 * Pure but for reading the library's file once: `renderReport` builds the text; the caller writes it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { timeframeMs } from '../core/timeframe';
import type { Candle } from '../core/types';
import { PROBLEM_KIND_LABELS, type ProblemKind } from '../core/validate';
import { describePrice } from '../llm/pricing';
import type { BacktestResult, LlmSpend, TradeGroup } from './result';

let library: string | null = null;

/** The standalone build of lightweight-charts (defines `window.LightweightCharts`), safe inside a script element. */
function chartLibrary(): string {
  if (library === null) {
    // the package exports only its modules: find the standalone build beside its package.json
    const manifest = createRequire(import.meta.url).resolve('lightweight-charts/package.json');
    const file = join(dirname(manifest), 'dist', 'lightweight-charts.standalone.production.js');
    library = readFileSync(file, 'utf8').replace(/<\/(script)/gi, '<\\/$1');
  }
  return library;
}

/**
 * Candles of one pair for the chart. `t0` is the first open time (Unix s) and `tf` the timeframe (s); a candle's open
 * time is `t0 + (i + skipped before it) × tf`, with `gaps` listing `[index, candles missing before it]`. Prices are
 * integers at `10^-digits`: `c` the change of the close from the previous one, `o`/`h`/`l` the offset from the close.
 */
export interface ChartCandles {
  t0: number;
  tf: number;
  gaps: [number, number][];
  digits: number;
  o: number[];
  h: number[];
  l: number[];
  c: number[];
}

/** The decimals that write every price of `candles` exactly (at most 8). */
function priceDigits(candles: readonly Candle[]): number {
  let digits = 0;
  for (const k of candles) {
    for (const p of [k.open, k.high, k.low, k.close]) {
      while (digits < 8 && Math.abs(Math.round(p * 10 ** digits) - p * 10 ** digits) > 1e-6) digits++;
    }
  }
  return digits;
}

/** The compact form of `candles` (see {@link ChartCandles}). */
export function chartCandles(candles: readonly Candle[], tfMs: number): ChartCandles {
  const digits = priceDigits(candles);
  const scale = 10 ** digits;
  const tf = tfMs / 1000;
  const out: ChartCandles = {
    t0: candles.length > 0 ? candles[0]!.time / 1000 : 0,
    tf,
    gaps: [],
    digits,
    o: [],
    h: [],
    l: [],
    c: [],
  };
  let prevClose = 0;
  let prevTime = candles.length > 0 ? candles[0]!.time - tfMs : 0;
  for (let i = 0; i < candles.length; i++) {
    const k = candles[i]!;
    const missing = Math.round((k.time - prevTime) / tfMs) - 1;
    if (missing > 0) out.gaps.push([i, missing]);
    prevTime = k.time;
    const close = Math.round(k.close * scale);
    out.c.push(close - prevClose);
    out.o.push(Math.round(k.open * scale) - close);
    out.h.push(Math.round(k.high * scale) - close);
    out.l.push(Math.round(k.low * scale) - close);
    prevClose = close;
  }
  return out;
}

/** JSON safe inside a <script> element: `<`, `>` and `&` written as \u escapes, so no text can close the element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const STYLE = `
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0; color: #1d2330; background: #f4f5f8; }
main { max-width: 1360px; margin: 0 auto; padding: 20px 20px 40px; }
h1 { font-size: 21px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 0 0 10px; } h3 { font-size: 14px; margin: 0 0 6px; color: #3b4252; }
.sub { color: #5b6475; overflow-wrap: anywhere; } .note { color: #5b6475; font-size: 12.5px; margin: 6px 0 0; overflow-wrap: anywhere; }
section { background: #fff; border: 1px solid #e1e4eb; border-radius: 8px; padding: 14px 16px; margin-top: 14px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin-top: 14px; }
.card { background: #fff; border: 1px solid #e1e4eb; border-radius: 8px; padding: 10px 12px; }
.card .k { color: #5b6475; font-size: 12px; } .card .v { font-size: 19px; white-space: nowrap; font-weight: 600; margin-top: 2px; } .card .s { color: #5b6475; font-size: 12px; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eceef3; text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f7f8fa; color: #3b4252; font-weight: 600; position: sticky; top: 0; white-space: nowrap; }
.grid3 td, .grid2 td { white-space: nowrap; } #trade-table th { white-space: normal; } #trade-table td { overflow-wrap: anywhere; }
td.l, th.l { text-align: left; } td.text { text-align: left; overflow-wrap: anywhere; font-size: 12px; color: #3b4252; }
tr.total td { font-weight: 600; border-top: 2px solid #d5d9e2; }
tr.pick { cursor: pointer; } tr.pick:hover td { background: #f3f6fd; } tr.sel td { background: #e8effd; }
.pos { color: #12805c; } .neg { color: #c2362b; } .muted { color: #8a93a6; }
.ok { color: #12805c; font-weight: 600; } .bad { color: #c2362b; font-weight: 600; }
.grid3 { display: grid; grid-template-columns: minmax(0, 1.15fr) minmax(0, 1fr); gap: 16px; } .grid3 > div:last-child { grid-column: 1 / -1; }
.grid2 { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
.controls { display: flex; gap: 14px; align-items: center; flex-wrap: wrap; margin-bottom: 8px; }
.controls select { font: inherit; padding: 3px 6px; max-width: 100%; }
.legend { display: flex; gap: 14px; flex-wrap: wrap; font-size: 12.5px; color: #3b4252; }
.legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 5px; }
.chart { position: relative; width: 100%; }
.tip { position: absolute; z-index: 5; pointer-events: none; display: none; max-width: 380px; background: rgba(255,255,255,0.97);
  border: 1px solid #c9cfdb; border-radius: 6px; padding: 7px 9px; font-size: 12px; line-height: 1.4; box-shadow: 0 2px 8px rgba(0,0,0,0.12);
  overflow-wrap: anywhere; }
.tip b { font-weight: 600; } .tip .ev { margin-top: 5px; padding-top: 5px; border-top: 1px solid #eceef3; }
.scroll { max-height: 560px; overflow-y: auto; }
#trade-table { table-layout: fixed; }
details summary { cursor: pointer; color: #1a5fb4; margin-top: 8px; }
`;

/**
 * The page's script: reads the inline JSON, builds the charts with lightweight-charts and fills the trade table.
 * Element ids: equity-chart, price-chart (chart containers), pair (select), trades (tbody), pair-results (tbody).
 * Sets body[data-ready] once everything is drawn.
 */
const SCRIPT = String.raw`
(function () {
  'use strict';
  var LW = window.LightweightCharts;
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var UP = '#26a269', DOWN = '#e01b24', LONG = '#1a5fb4', SHORT = '#c64600';

  function iso(ms) { return new Date(ms).toISOString().slice(0, 16).replace('T', ' '); }
  function fmt(v, d) { return v === null || v === undefined ? '-' : Number(v).toFixed(d); }
  function signed(v, d) { return (v > 0 ? '+' : '') + fmt(v, d); }
  function price(v) { return String(Number(Number(v).toPrecision(6))); }
  function esc(s) { var e = document.createElement('span'); e.textContent = s; return e.innerHTML; }
  function options(el, height) {
    return {
      width: el.clientWidth, height: height, autoSize: false,
      layout: { background: { type: 'solid', color: '#ffffff' }, textColor: '#3b4252', fontSize: 12, attributionLogo: false },
      grid: { vertLines: { color: '#f0f2f6' }, horzLines: { color: '#f0f2f6' } },
      rightPriceScale: { borderColor: '#d5d9e2' },
      timeScale: { borderColor: '#d5d9e2', timeVisible: true, secondsVisible: false },
      crosshair: { mode: LW.CrosshairMode.Normal },
      localization: { timeFormatter: function (t) { return iso(t * 1000) + ' UTC'; } }
    };
  }
  function tipAt(tip, el, point, html) {
    if (!point || !html) { tip.style.display = 'none'; return; }
    tip.innerHTML = html;
    tip.style.display = 'block';
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var x = point.x + 16; if (x + w > el.clientWidth) x = point.x - w - 16; if (x < 0) x = 0;
    var y = point.y + 16; if (y + h > el.clientHeight) y = Math.max(0, point.y - h - 16);
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  }

  // ---- equity, benchmark and drawdown (two panes of one chart: one time axis) ----
  var eqEl = document.getElementById('equity-chart');
  var eqTip = eqEl.querySelector('.tip');
  var eq = LW.createChart(eqEl, options(eqEl, 430));
  var eqSeries = eq.addSeries(LW.LineSeries, { color: LONG, lineWidth: 2, title: 'policy', priceFormat: { type: 'price', precision: 0, minMove: 1 } });
  var bmSeries = eq.addSeries(LW.LineSeries, { color: '#8a93a6', lineWidth: 2, lineStyle: LW.LineStyle.Dashed, title: 'buy & hold', priceFormat: { type: 'price', precision: 0, minMove: 1 } });
  var ddSeries = eq.addSeries(LW.AreaSeries, { lineColor: DOWN, topColor: 'rgba(224,27,36,0.05)', bottomColor: 'rgba(224,27,36,0.30)', lineWidth: 1,
    invertFilledArea: true, title: 'drawdown %', priceFormat: { type: 'price', precision: 1, minMove: 0.1 } }, 1);
  var eqData = [], bmData = [], ddData = [], peak = -Infinity;
  data.equity.t.forEach(function (t, i) {
    var v = data.equity.v[i];
    if (v > peak) peak = v;
    eqData.push({ time: t / 1000, value: v });
    ddData.push({ time: t / 1000, value: peak > 0 ? -((peak - v) / peak) * 100 : 0 });
    bmData.push({ time: t / 1000, value: data.benchmark[i] });
  });
  eqSeries.setData(eqData); bmSeries.setData(bmData); ddSeries.setData(ddData);
  eq.panes()[1].setHeight(130);
  eq.timeScale().fitContent();
  eq.subscribeCrosshairMove(function (p) {
    if (!p.time || !p.point) return tipAt(eqTip, eqEl, null);
    var e = p.seriesData.get(eqSeries), b = p.seriesData.get(bmSeries), d = p.seriesData.get(ddSeries);
    tipAt(eqTip, eqEl, p.point, '<b>' + iso(p.time * 1000) + ' UTC</b><br>policy ' + fmt(e && e.value, 2) + ' USDT<br>buy &amp; hold ' +
      fmt(b && b.value, 2) + ' USDT<br>drawdown ' + fmt(d && d.value, 2) + ' %');
  });

  // ---- candles per pair, with trades and the protective stop ----
  var pxEl = document.getElementById('price-chart');
  var pxTip = pxEl.querySelector('.tip');
  var px = LW.createChart(pxEl, options(pxEl, 520));
  var candles = px.addSeries(LW.CandlestickSeries, { upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN });
  var stopLine = px.addSeries(LW.LineSeries, { color: '#c2362b', lineWidth: 1, lineStyle: LW.LineStyle.Dashed,
    lastValueVisible: false, priceLineVisible: false, crosshairMarkerVisible: false, lineType: LW.LineType.Simple,
    autoscaleInfoProvider: function () { return null; } });
  var markers = LW.createSeriesMarkers(candles, []);
  var byBar = {}; // bar time (s) -> events of the selected pair

  function decode(cs) {
    var out = [], skip = 0, g = 0, close = 0, s = Math.pow(10, cs.digits);
    for (var i = 0; i < cs.c.length; i++) {
      if (g < cs.gaps.length && cs.gaps[g][0] === i) { skip += cs.gaps[g][1]; g++; }
      close += cs.c[i];
      out.push({ time: cs.t0 + (i + skip) * cs.tf, open: (close + cs.o[i]) / s, high: (close + cs.h[i]) / s, low: (close + cs.l[i]) / s, close: close / s });
    }
    return out;
  }
  function barOf(ms) { return ms / 1000 - data.tf; }
  function addEvent(bar, html) { (byBar[bar] = byBar[bar] || []).push(html); }

  function drawPair(pair) {
    var cs = data.candles[pair];
    var bars = cs ? decode(cs) : [];
    var digits = cs ? cs.digits : 2;
    candles.applyOptions({ priceFormat: { type: 'price', precision: digits, minMove: Math.pow(10, -digits) } });
    stopLine.applyOptions({ priceFormat: { type: 'price', precision: digits, minMove: Math.pow(10, -digits) } });
    candles.setData(bars);
    byBar = {};
    var ms = [];
    data.trades.forEach(function (tr) {
      if (tr.pair !== pair) return;
      var long = tr.side === 'long';
      var pnl = signed(tr.pnl, 2) + ' USDT (' + signed(tr.pnl_pct, 1) + ' %)';
      ms.push({ time: barOf(tr.entry_time), position: long ? 'belowBar' : 'aboveBar', shape: long ? 'arrowUp' : 'arrowDown',
        color: long ? LONG : SHORT, size: 1.3 });
      ms.push({ time: barOf(tr.exit_time), position: long ? 'aboveBar' : 'belowBar', shape: 'circle', color: tr.pnl >= 0 ? UP : DOWN });
      addEvent(barOf(tr.entry_time), '<b style="color:' + (long ? LONG : SHORT) + '">Entry ' + tr.side + ' ' + tr.leverage + 'x</b> @ ' + price(tr.entry_price) +
        ', margin ' + fmt(tr.margin, 0) + ' USDT, trade PnL ' + pnl + '<br>' + esc(tr.entry_reason));
      addEvent(barOf(tr.exit_time), '<b class="' + (tr.pnl >= 0 ? 'pos' : 'neg') + '">Exit (' + esc(tr.exit_reason) + ')</b> @ ' + price(tr.exit_price) +
        ', PnL ' + pnl + ', fees ' + fmt(tr.fees, 2) + ', funding ' + fmt(tr.funding, 2) + '<br>' + esc(tr.exit_text));
    });
    ms.sort(function (a, b) { return a.time - b.time; });
    markers.setMarkers(ms);
    // the stop in force at each bar (placed at a decision time: from the next bar on, until it ended). A line series
    // joins every point, and a segment takes the colour of its first point: the bars without a stop, and the last bar
    // of each stop, are transparent points at the next stop's level, so no line joins one stop to the next.
    var stops = data.stops.filter(function (s) { return s.pair === pair; });
    var at = [], k = 0, active = [];
    bars.forEach(function (b) {
      var close = (b.time + data.tf) * 1000;
      while (k < stops.length && stops[k].from < close) { active.push(stops[k]); k++; }
      active = active.filter(function (s) { return s.to >= close; });
      at.push(active.length > 0 ? active[active.length - 1] : null);
    });
    var line = [], next = null;
    for (var i = bars.length - 1; i >= 0; i--) {
      if (at[i]) next = at[i];
      var drawn = at[i] !== null && at[i + 1] === at[i];
      if (next) line.push(drawn ? { time: bars[i].time, value: at[i].price } : { time: bars[i].time, value: next.price, color: 'transparent' });
      else line.push({ time: bars[i].time });
    }
    line.reverse();
    stopLine.setData(line);
    // the last three weeks at first, readable candle by candle; scroll or zoom out for the rest
    var shown = Math.min(bars.length, Math.round((21 * 86400) / data.tf));
    if (bars.length > 0) px.timeScale().setVisibleLogicalRange({ from: bars.length - shown, to: bars.length + 2 });
    document.getElementById('pair-label').textContent = bars.length + ' candles of ' + data.timeframe + ', ' +
      data.trades.filter(function (t) { return t.pair === pair; }).length + ' trades; the last 3 weeks shown: scroll to zoom, drag to pan';
    document.querySelectorAll('#pair-results tr[data-pair]').forEach(function (r) {
      r.classList.toggle('sel', r.getAttribute('data-pair') === pair);
    });
  }
  px.subscribeCrosshairMove(function (p) {
    if (!p.time || !p.point) return tipAt(pxTip, pxEl, null);
    var c = p.seriesData.get(candles), s = p.seriesData.get(stopLine);
    if (!c) return tipAt(pxTip, pxEl, null);
    var html = '<b>' + iso(p.time * 1000) + ' UTC</b> O ' + price(c.open) + ' H ' + price(c.high) + ' L ' + price(c.low) + ' C ' + price(c.close);
    if (s && s.value !== undefined) html += '<br>protective stop ' + price(s.value);
    (byBar[p.time] || []).forEach(function (e) { html += '<div class="ev">' + e + '</div>'; });
    tipAt(pxTip, pxEl, p.point, html);
  });

  var pairSelect = document.getElementById('pair');
  data.pairs.forEach(function (p) {
    var o = document.createElement('option');
    o.value = p.pair; o.textContent = p.pair + ' · ' + p.trades + ' trades · ' + signed(p.pnl, 2) + ' USDT';
    pairSelect.appendChild(o);
  });
  // first shown: the pair that moved the result most (largest absolute PnL)
  var first = data.pairs.slice().sort(function (a, b) { return Math.abs(b.pnl) - Math.abs(a.pnl); })[0];
  if (first) pairSelect.value = first.pair;
  pairSelect.addEventListener('change', function () { drawPair(pairSelect.value); });
  document.querySelectorAll('#pair-results tr[data-pair]').forEach(function (r) {
    r.addEventListener('click', function () {
      pairSelect.value = r.getAttribute('data-pair'); drawPair(pairSelect.value);
      pxEl.scrollIntoView({ behavior: 'smooth', block: 'center' });
    });
  });
  drawPair(pairSelect.value);

  window.addEventListener('resize', function () {
    eq.applyOptions({ width: eqEl.clientWidth }); px.applyOptions({ width: pxEl.clientWidth });
  });

  // ---- every trade ----
  var body = document.getElementById('trades');
  data.trades.forEach(function (tr) {
    var row = document.createElement('tr');
    var cells = [tr.pair, tr.side, iso(tr.entry_time), iso(tr.exit_time), price(tr.entry_price), price(tr.exit_price),
      tr.leverage + 'x', fmt(tr.pnl, 2), fmt(tr.pnl_pct, 1), fmt(tr.fees, 2), fmt(tr.funding, 2), tr.exit_reason, tr.entry_reason, tr.exit_text];
    cells.forEach(function (text, i) {
      var td = document.createElement('td');
      td.textContent = text;
      if (i >= 12) td.className = 'text';
      else if (i <= 1 || i === 11) td.className = 'l';
      if (i === 7 || i === 8) td.className = tr.pnl >= 0 ? 'pos' : 'neg';
      row.appendChild(td);
    });
    body.appendChild(row);
  });
  // the charts, for scripts driving the page (the report test hovers a trade's candle through them)
  window.reportCharts = { equity: eq, price: px, showPair: function (p) { pairSelect.value = p; drawPair(p); } };
  requestAnimationFrame(function () { requestAnimationFrame(function () { document.body.setAttribute('data-ready', 'true'); }); });
})();
`;

function num(v: number | null, digits: number): string {
  return v === null ? '-' : v.toFixed(digits);
}

function signedNum(v: number | null, digits: number): string {
  return v === null ? '-' : `${v > 0 ? '+' : ''}${v.toFixed(digits)}`;
}

function cls(v: number | null): string {
  return v === null || v === 0 ? '' : v > 0 ? 'pos' : 'neg';
}

function isoMinute(t: number): string {
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function days(ms: number): string {
  return `${(ms / 86_400_000).toFixed(1)} days`;
}

function card(label: string, value: string, sub: string, valueClass = ''): string {
  return `<div class="card"><div class="k">${escapeHtml(label)}</div><div class="v ${valueClass}">${escapeHtml(value)}</div><div class="s">${escapeHtml(sub)}</div></div>`;
}

/** A table of trade groups (per exit reason, side or month), with a total row. */
function groupTable(id: string, title: string, rows: readonly TradeGroup[], total: TradeGroup): string {
  const row = (g: TradeGroup, extra = '') =>
    `<tr${extra}><td class="l">${escapeHtml(g.key)}</td><td>${g.trades}</td><td>${num(g.win_rate_pct, 1)}</td>` +
    `<td class="${cls(g.pnl)}">${signedNum(g.pnl, 2)}</td><td class="${cls(g.return_contribution_pct)}">${signedNum(g.return_contribution_pct, 2)}</td>` +
    `<td>${num(g.average_trade_pct, 2)}</td><td>${num(g.profit_factor, 2)}</td></tr>`;
  return `<div><h3>${escapeHtml(title)}</h3><table id="${id}"><thead><tr><th class="l">${escapeHtml(title.replace(/^by /, ''))}</th><th>trades</th>
<th>win %</th><th>PnL USDT</th><th>return %</th><th>avg %</th><th>PF</th></tr></thead><tbody>
${rows.map((g) => row(g)).join('\n')}
${row(total, ' class="total"')}
</tbody></table></div>`;
}

function countTable(
  id: string,
  title: string,
  head: string,
  counts: Readonly<Record<string, number>>,
  empty: string,
): string {
  const entries = Object.entries(counts);
  const body =
    entries.length === 0
      ? `<tr><td class="l muted" colspan="2">${escapeHtml(empty)}</td></tr>`
      : entries
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `<tr><td class="l">${escapeHtml(k)}</td><td>${v}</td></tr>`)
          .join('\n');
  return `<div><h3>${escapeHtml(title)}</h3><table id="${id}"><thead><tr><th class="l">${escapeHtml(head)}</th><th>decisions</th></tr></thead><tbody>
${body}
</tbody></table></div>`;
}

/**
 * The report of `result` as one HTML document. `candles` are the main-timeframe candles of each pair to chart
 * (normally the decision range); a pair without candles gets an empty chart.
 */
export function renderReport(result: BacktestResult, candles: Readonly<Record<string, readonly Candle[]>>): string {
  const m = result.metrics;
  const period = result.period;
  const bench = result.benchmark;
  const tf = timeframeMs(result.range.main_timeframe);
  const measured = result.equity.filter((p) => p.time >= period.from);
  const round2 = (v: number) => Math.round(v * 100) / 100;
  const payload = {
    timeframe: result.range.main_timeframe,
    tf: tf / 1000,
    candles: Object.fromEntries(result.range.pairs.map((p) => [p, chartCandles(candles[p] ?? [], tf)])),
    trades: result.trades.map((t) => ({
      pair: t.pair,
      side: t.side,
      entry_time: t.entry_time,
      exit_time: t.exit_time,
      entry_price: t.entry_price,
      exit_price: t.exit_price,
      leverage: t.leverage,
      margin: t.margin,
      pnl: t.pnl,
      pnl_pct: t.pnl_pct,
      fees: t.fees,
      funding: t.funding,
      exit_reason: t.exit_reason,
      entry_reason: t.entry_reason,
      exit_text: t.exit_text,
    })),
    stops: result.stops.map((s) => ({ pair: s.pair, from: s.from, to: s.to, price: s.stop_price })),
    pairs: result.pairs.map((p) => ({ pair: p.pair, trades: p.trades, pnl: p.pnl })),
    equity: { t: measured.map((p) => p.time), v: measured.map((p) => round2(p.equity)) },
    benchmark: bench.equity.map((p) => round2(p.equity)),
  };
  const policyRow = result.comparison.find((r) => r.kind === 'policy')!;
  const baselineRow = result.comparison.find((r) => r.kind === 'baseline') ?? null;
  const excess = m.total_return_pct - bench.total_return_pct;
  const warmupText =
    period.reason === 'warmup_end' || period.reason === 'range_start'
      ? `after the indicator warm-up (${days(period.from - result.range.from)}: ${period.warmup_indicators.join(', ')} have values for every pair)`
      : period.reason === 'first_entry'
        ? `from the policy's first entry, which came before the indicator warm-up ended${period.warmup_end === null ? '' : ` (${isoMinute(period.warmup_end)})`}`
        : `over the whole range: the indicator warm-up (${period.warmup_indicators.join(', ')}) does not end within it`;
  const cards = [
    card(
      'net PnL (USDT)',
      signedNum(m.net_pnl, 2),
      `${signedNum(m.total_return_pct, 2)} % of ${m.starting_balance.toFixed(0)} USDT`,
      cls(m.net_pnl),
    ),
    card(
      'vs buy & hold',
      `${signedNum(excess, 2)} pp`,
      `equal-weight buy & hold ${signedNum(bench.total_return_pct, 2)} %`,
      cls(excess),
    ),
    card('max drawdown', `${m.max_drawdown_pct.toFixed(2)} %`, `buy & hold ${bench.max_drawdown_pct.toFixed(2)} %`),
    card(
      'Sharpe / Sortino',
      `${num(m.sharpe, 2)} / ${num(m.sortino, 2)}`,
      `buy & hold ${num(bench.sharpe, 2)} / ${num(bench.sortino, 2)}`,
    ),
    card(
      'trades',
      `${m.trades}`,
      `win rate ${m.win_rate_pct === null ? '-' : `${m.win_rate_pct.toFixed(1)} %`}, PF ${num(m.profit_factor, 2)}`,
    ),
    card(
      'average trade',
      m.average_trade_pct === null ? '-' : `${signedNum(m.average_trade_pct, 2)} %`,
      `${signedNum(m.average_trade_pnl, 2)} USDT, of margin`,
    ),
    card('fees / funding (USDT)', `${m.fees.toFixed(0)} / ${m.funding.toFixed(0)}`, 'funding: + paid, − received'),
    card(
      'exposure',
      `${m.exposure_pct.toFixed(1)} %`,
      `of the time; ${m.protective_exits} protective exits, ${m.liquidations} liquidations`,
    ),
  ].join('\n');

  const comparisonRow = (
    label: string,
    r: {
      total_return_pct: number;
      max_drawdown_pct: number;
      sharpe: number | null;
      sortino: number | null;
      final_equity: number;
    },
    trades: string,
    win: string,
    pf: string,
    extra = '',
  ) =>
    `<tr${extra}><td class="l">${escapeHtml(label)}</td><td class="${cls(r.total_return_pct)}">${signedNum(r.total_return_pct, 2)}</td>` +
    `<td>${r.max_drawdown_pct.toFixed(2)}</td><td>${num(r.sharpe, 2)}</td><td>${num(r.sortino, 2)}</td>` +
    `<td>${trades}</td><td>${win}</td><td>${pf}</td><td>${r.final_equity.toFixed(2)}</td></tr>`;
  const main = [
    comparisonRow(
      policyRow.label,
      policyRow,
      String(policyRow.trades),
      num(policyRow.win_rate_pct, 1),
      num(policyRow.profit_factor, 2),
    ),
    ...(baselineRow
      ? [
          comparisonRow(
            'baseline',
            baselineRow,
            String(baselineRow.trades),
            num(baselineRow.win_rate_pct, 1),
            num(baselineRow.profit_factor, 2),
          ),
        ]
      : []),
    comparisonRow(bench.label, bench, '-', '-', '-', ' class="total"'),
  ];
  const perPairHold = result.comparison
    .filter((r) => r.kind === 'buy_and_hold')
    .map((r) => comparisonRow(r.label, r, '1', num(r.win_rate_pct, 0), '-'));

  const pairRows = result.pairs
    .map(
      (p) =>
        `<tr class="pick" data-pair="${escapeHtml(p.pair)}"><td class="l">${escapeHtml(p.pair)}</td><td>${p.trades}</td>` +
        `<td>${p.long_trades} / ${p.short_trades}</td><td>${num(p.win_rate_pct, 1)}</td>` +
        `<td class="${cls(p.pnl)}">${signedNum(p.pnl, 2)}</td><td class="${cls(p.return_contribution_pct)}">${signedNum(p.return_contribution_pct, 2)}</td>` +
        `<td>${num(p.average_trade_pct, 2)}</td><td>${num(p.profit_factor, 2)}</td><td>${p.fees.toFixed(2)}</td><td>${p.funding.toFixed(2)}</td>` +
        `<td>${p.max_drawdown_pct.toFixed(2)}</td><td>${num(p.average_duration_hours, 1)}</td></tr>`,
    )
    .join('\n');
  const sum = (f: (p: (typeof result.pairs)[number]) => number) => result.pairs.reduce((s, p) => s + f(p), 0);
  const pairTotal =
    `<tr class="total"><td class="l">all pairs</td><td>${m.trades}</td><td>${sum((p) => p.long_trades)} / ${sum((p) => p.short_trades)}</td>` +
    `<td>${num(m.win_rate_pct, 1)}</td><td class="${cls(m.net_pnl)}">${signedNum(
      sum((p) => p.pnl),
      2,
    )}</td>` +
    `<td class="${cls(m.total_return_pct)}">${signedNum(
      sum((p) => p.return_contribution_pct),
      2,
    )}</td><td>${num(m.average_trade_pct, 2)}</td>` +
    `<td>${num(m.profit_factor, 2)}</td><td>${sum((p) => p.fees).toFixed(2)}</td><td>${sum((p) => p.funding).toFixed(2)}</td>` +
    `<td>${m.max_drawdown_pct.toFixed(2)}</td><td></td></tr>`;

  const allTrades: TradeGroup = {
    key: 'all trades',
    trades: m.trades,
    wins: m.wins,
    losses: m.losses,
    win_rate_pct: m.win_rate_pct,
    pnl: sum((p) => p.pnl),
    return_contribution_pct: sum((p) => p.return_contribution_pct),
    average_trade_pct: m.average_trade_pct,
    profit_factor: m.profit_factor,
    fees: m.fees,
    funding: m.funding,
    average_duration_hours: null,
  };
  const bd = result.breakdowns;
  const d = bd.decisions;
  const toolRows = Object.entries(d.by_tool)
    .map(
      ([tool, c]) =>
        `<tr><td class="l">${escapeHtml(tool)}</td><td>${c.decisions}</td><td>${c.executed}</td><td>${c.rejected}</td>` +
        `<td>${c.refused}</td><td>${c.failed}</td><td>${c.none}</td></tr>`,
    )
    .join('\n');
  const model = d.model;
  const modelLine =
    model.decisions > 0
      ? `A model decided ${model.decisions} times in ${model.requests} requests: ${model.tokens.input} input tokens ` +
        `(${model.tokens.cached_input} cached), ${model.tokens.output} output tokens, ` +
        `${model.cost_usd === null ? 'no price for the model (set llm.pricing)' : `${model.cost_usd.toFixed(4)} USD`}.`
      : 'No model was asked: no tokens, no cost.';

  const llm = result.llm;
  const spendRow = (label: string, x: LlmSpend) =>
    `<tr><td class="l">${escapeHtml(label)}</td><td>${x.decisions}</td><td>${x.requests}</td><td>${x.tokens.input}</td>` +
    `<td>${x.tokens.cached_input}</td><td>${x.tokens.output}</td><td>${x.cost_usd === null ? '-' : x.cost_usd.toFixed(4)}</td></tr>`;
  const usage = llm
    ? `<h3 style="margin-top:14px">Model usage</h3>
<p class="note">${escapeHtml(llm.model)} at ${escapeHtml(llm.endpoint)}; ${
        llm.price
          ? `priced at ${escapeHtml(describePrice(llm.price))} (${llm.price.source === 'config' ? 'llm.pricing' : 'built-in table'})`
          : 'no price for this model (set llm.pricing): no cost'
      }. Tokens as originally asked: a decision served from the decision cache counts what its request cost.
Fallbacks ${llm.fallbacks.decisions}${llm.fallbacks.pct === null ? '' : ` (${llm.fallbacks.pct.toFixed(1)} %)`}${
        Object.keys(llm.fallbacks.by_reason).length > 0
          ? `: ${escapeHtml(
              Object.entries(llm.fallbacks.by_reason)
                .map(([k, v]) => `${PROBLEM_KIND_LABELS[k as ProblemKind]} ${v}`)
                .join(', '),
            )}`
          : ''
      }; tool calls with extra fields (dropped): ${llm.extra_fields.decisions}.</p>
<table id="llm-usage"><thead><tr><th class="l">decisions</th><th>count</th><th>requests</th><th>input tokens</th>
<th>of them cached</th><th>output tokens</th><th>cost USD</th></tr></thead><tbody>
${spendRow('all', llm)}
${spendRow('entry (flat)', llm.by_kind.entry)}
${spendRow('position', llm.by_kind.position)}
</tbody></table>`
    : '';
  const lookahead = result.lookahead
    ? `<p class="note">Look-ahead check: <span class="${result.lookahead.passed ? 'ok' : 'bad'}">${
        result.lookahead.passed
          ? 'passed'
          : `FAILED (${result.lookahead.mismatches.length} of ${result.lookahead.samples})`
      }</span> over ${result.lookahead.samples} pair-cycles rerun with ${escapeHtml(result.lookahead.corruption)}.</p>`
    : '';
  const skipped = result.dataQuality.skipped_cycles.reduce((s, c) => s + c.cycles, 0);

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>Backtest ${escapeHtml(result.run_id)}: ${escapeHtml(result.policy.name)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>Backtest ${escapeHtml(result.run_id)} · policy ${escapeHtml(result.policy.name)}</h1>
<div class="sub">${result.range.pairs.length} pairs · ${escapeHtml(result.range.main_timeframe)} decisions (informative ${escapeHtml(
    result.range.informative_timeframes.join(', '),
  )}) from ${isoMinute(result.range.from)} to ${isoMinute(result.range.to)} · policy id ${escapeHtml(result.policy.id)}</div>
<div class="sub" id="period"><b>Measured from ${isoMinute(period.from)} to ${isoMinute(period.to)}</b> (${period.steps} decision times, ${days(
    period.to - period.from,
  )}), ${escapeHtml(warmupText)}. Every figure below, the buy-and-hold benchmarks included, covers this period.</div>
${lookahead}
<div class="cards">
${cards}
</div>

<section>
<h2>Comparison</h2>
<table id="comparison"><thead><tr><th class="l">run</th><th>return %</th><th>max DD %</th><th>Sharpe</th><th>Sortino</th>
<th>trades</th><th>win %</th><th>PF</th><th>final equity</th></tr></thead><tbody>
${main.join('\n')}
</tbody></table>
<p class="note">${escapeHtml(bench.label)}: the starting balance split evenly, each part bought at the first close of the period and sold at
the last with the paper fee and slippage, 1x, no funding (best ${escapeHtml(bench.best_pair)}, worst ${escapeHtml(bench.worst_pair)}).</p>
<details><summary>buy-and-hold of each pair (${perPairHold.length})</summary>
<table id="buy-and-hold"><thead><tr><th class="l">run</th><th>return %</th><th>max DD %</th><th>Sharpe</th><th>Sortino</th>
<th>trades</th><th>win %</th><th>PF</th><th>final equity</th></tr></thead><tbody>
${perPairHold.join('\n')}
</tbody></table></details>
</section>

<section>
<h2>Equity and drawdown</h2>
<div class="legend"><span><i style="background:#1a5fb4"></i>policy equity (USDT)</span><span><i style="background:#8a93a6"></i>${escapeHtml(
    bench.label,
  )}</span><span><i style="background:#e01b24"></i>policy drawdown from its peak (%)</span></div>
<div class="chart" id="equity-chart"><div class="tip"></div></div>
</section>

<section>
<h2>Price and trades</h2>
<div class="controls"><label>pair <select id="pair"></select></label><span class="note" id="pair-label"></span></div>
<div class="legend"><span><i style="background:#1a5fb4"></i>long entry ▲</span><span><i style="background:#c64600"></i>short entry ▼</span>
<span><i style="background:#26a269"></i>exit ● with a gain, <i style="background:#e01b24"></i>with a loss</span><span><i style="background:#c2362b;height:1px"></i>protective stop</span>
<span class="muted">hover a candle for its trades: the model's reason and the trade's PnL</span></div>
<div class="chart" id="price-chart"><div class="tip"></div></div>
</section>

<section>
<h2>Results per pair</h2>
<div class="scroll"><table id="pair-table"><thead><tr><th class="l">pair</th><th>trades</th><th>long / short</th><th>win %</th><th>PnL USDT</th>
<th>return %</th><th>avg trade %</th><th>PF</th><th>fees</th><th>funding</th><th>max DD %</th><th>avg hours</th></tr></thead>
<tbody id="pair-results">
${pairRows}
${pairTotal}
</tbody></table></div>
<p class="note">Return % is the pair's PnL as a share of the starting balance (its contribution to the total return); avg trade % is of
the trade's margin; max DD % is the largest fall of the pair's cumulative closed-trade PnL, of the starting balance; funding is paid (+) or
received (−). Click a pair to chart it.</p>
</section>

<section>
<h2>Breakdowns</h2>
<div class="grid3">
${groupTable('by-exit-reason', 'by exit reason', bd.exit_reason, allTrades)}
${groupTable('by-side', 'by side', bd.side, allTrades)}
${groupTable('by-month', 'by month', bd.month, allTrades)}
</div>
<p class="note">Exit reasons: model (the policy's signal_exit), stop (the protective stop order filled), emergency_stop and
liquidation_buffer (the cycle's protective exits), liquidation, force_exit (still open at the last decision time). Months are those of the exit, UTC.</p>
</section>

<section>
<h2>Decisions</h2>
<div class="grid2">
<div><h3>per tool</h3><table id="by-tool"><thead><tr><th class="l">tool</th><th>decisions</th><th>executed</th><th>rejected</th>
<th>refused</th><th>failed</th><th>no order</th></tr></thead><tbody>
${toolRows}
<tr class="total"><td class="l">all</td><td>${d.decisions}</td><td></td><td>${d.rejections}</td><td></td><td></td><td></td></tr>
</tbody></table>
<p class="note">Decided by: ${escapeHtml(
    Object.entries(d.by_source)
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
  )}. ${escapeHtml(modelLine)}${skipped > 0 ? ` ${skipped} pair-cycles were skipped over missing candles (result.json dataQuality).` : ''}</p></div>
<div class="grid2">
${countTable('rejections-by-rule', 'risk rejections by rule', 'rule', d.rejections_by_rule, 'none')}
${countTable('fallbacks-by-reason', 'fallbacks by reason', 'reason', d.fallbacks_by_reason, 'none: every decision was valid')}
${countTable('refusals', 'refusals', 'by', d.refusals, 'none')}
</div>
</div>
${usage}
</section>

<section>
<h2>Trades (${result.trades.length})</h2>
<div class="scroll"><table id="trade-table"><colgroup><col style="width:9.5%"><col style="width:4.5%"><col style="width:8%"><col style="width:8%"><col style="width:6%"><col style="width:6%"><col style="width:3.5%"><col style="width:5.5%"><col style="width:4.5%"><col style="width:4.5%"><col style="width:5%"><col style="width:7%"><col style="width:14.5%"><col style="width:13.5%"></colgroup>
<thead><tr><th class="l">pair</th><th class="l">side</th><th>entry (UTC)</th><th>exit (UTC)</th><th>entry price</th>
<th>exit price</th><th>lev.</th><th>PnL</th><th>PnL %</th><th>fees</th><th>funding</th><th class="l">exit reason</th>
<th class="l">entry reason (the model's)</th><th class="l">exit</th></tr></thead>
<tbody id="trades"></tbody></table></div>
</section>
<p class="note">Money in USDT; PnL is net of fees and funding; times are UTC. Charts: TradingView Lightweight Charts (Apache-2.0).
Figures as in result.json (period, metrics, benchmark, comparison, pairs, breakdowns).</p>
</main>
<script type="application/json" id="report-data">${scriptJson(payload)}</script>
<script>${chartLibrary()}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
