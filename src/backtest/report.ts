/**
 * The HTML report of a backtest: one self-contained file (inline CSS, inline script, the data as inline JSON; nothing
 * is fetched when it is viewed). It shows the metrics and the comparison table, a candle chart per pair with the
 * entries (triangles) and exits (circles) of its trades, the equity curve, the drawdown, and the trade table with
 * the model's reasons. Charts are SVG drawn by the inline script; the pair selector and the range sliders redraw them.
 *
 * Pure: `renderReport` builds the text; the caller writes it.
 */
import { timeframeMs } from '../core/timeframe';
import type { Candle } from '../core/types';
import { drawdownSeries } from './metrics';
import { PROBLEM_KIND_LABELS, type ProblemKind } from '../core/validate';
import { describePrice } from '../llm/pricing';
import type { BacktestResult, LlmSpend } from './result';

/** Candles of one pair for the chart, as compact parallel arrays (open times in Unix ms). */
interface ChartCandles {
  t: number[];
  o: number[];
  h: number[];
  l: number[];
  c: number[];
}

function compact(candles: readonly Candle[]): ChartCandles {
  const out: ChartCandles = { t: [], o: [], h: [], l: [], c: [] };
  for (const k of candles) {
    out.t.push(k.time);
    out.o.push(k.open);
    out.h.push(k.high);
    out.l.push(k.low);
    out.c.push(k.close);
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
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.sub { color: #5b6475; margin-bottom: 16px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e4e7ee; text-align: right; white-space: nowrap; }
th { background: #f5f6f9; } td.text, th.text { text-align: left; white-space: normal; min-width: 240px; max-width: 420px; }
#trades td.text { font-size: 12px; color: #3b4252; } td.left, th.left { text-align: left; }
.pos { color: #12805c; } .neg { color: #c2362b; }
svg { display: block; background: #fbfcfd; border: 1px solid #e4e7ee; }
.controls { margin: 8px 0; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
.ok { color: #12805c; font-weight: 600; } .bad { color: #c2362b; font-weight: 600; }
`;

/**
 * The client script: reads the inline JSON, draws the charts and fills the trade table. Plain ES2017, no library.
 * Element ids: price-chart, equity-chart, drawdown-chart (SVG), pair (select), range-from / range-to (sliders),
 * trades (tbody).
 */
const SCRIPT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  var W = 1100;

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  }
  function clear(svg) { while (svg.firstChild) svg.removeChild(svg.firstChild); }
  function iso(t) { return new Date(t).toISOString().slice(0, 16).replace('T', ' '); }
  function fmt(v, d) { return v === null || v === undefined ? '-' : Number(v).toFixed(d); }
  function price(v) { return String(Number(Number(v).toPrecision(6))); }
  function scale(min, max, lo, hi) {
    var span = max - min || 1;
    return function (v) { return hi - ((v - min) / span) * (hi - lo); };
  }
  function axisLabels(svg, min, max, y, height) {
    for (var i = 0; i <= 4; i++) {
      var v = min + ((max - min) * i) / 4;
      var t = el('text', { x: 4, y: y(v) + 4, 'font-size': 11, fill: '#5b6475' }, svg);
      t.textContent = Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(4);
      el('line', { x1: 60, x2: W - 10, y1: y(v), y2: y(v), stroke: '#eceef3' }, svg);
    }
  }

  function lineChart(svg, times, values, color, fill) {
    clear(svg);
    var H = Number(svg.getAttribute('height'));
    var min = Math.min.apply(null, values), max = Math.max.apply(null, values);
    var y = scale(min, max, 10, H - 20);
    var t0 = times[0], t1 = times[times.length - 1];
    var x = function (t) { return 60 + ((t - t0) / (t1 - t0 || 1)) * (W - 70); };
    axisLabels(svg, min, max, y, H);
    var d = '';
    for (var i = 0; i < values.length; i++) d += (i ? 'L' : 'M') + x(times[i]).toFixed(1) + ' ' + y(values[i]).toFixed(1);
    if (fill) {
      el('path', { d: d + 'L' + x(t1).toFixed(1) + ' ' + y(min).toFixed(1) + 'L' + x(t0).toFixed(1) + ' ' + y(min).toFixed(1) + 'Z',
        fill: fill, stroke: 'none', 'class': 'area' }, svg);
    }
    el('path', { d: d, fill: 'none', stroke: color, 'stroke-width': 1.5, 'class': 'series' }, svg);
  }

  var pairSelect = document.getElementById('pair');
  var fromSlider = document.getElementById('range-from');
  var toSlider = document.getElementById('range-to');
  var priceSvg = document.getElementById('price-chart');

  function drawPrice() {
    var pair = pairSelect.value;
    var cs = data.candles[pair];
    clear(priceSvg);
    if (!cs || cs.t.length === 0) return;
    var n = cs.t.length;
    var a = Math.min(Number(fromSlider.value), n - 1), b = Math.min(Math.max(Number(toSlider.value), a + 1), n);
    var H = Number(priceSvg.getAttribute('height'));
    var lo = Infinity, hi = -Infinity;
    for (var i = a; i < b; i++) { if (cs.l[i] < lo) lo = cs.l[i]; if (cs.h[i] > hi) hi = cs.h[i]; }
    var y = scale(lo, hi, 10, H - 20);
    var step = (W - 70) / (b - a);
    var x = function (i) { return 60 + (i - a + 0.5) * step; };
    axisLabels(priceSvg, lo, hi, y, H);
    var wick = '', up = '', down = '';
    var bw = Math.max(step * 0.6, 0.5);
    for (var j = a; j < b; j++) {
      var cx = x(j);
      wick += 'M' + cx.toFixed(2) + ' ' + y(cs.h[j]).toFixed(1) + 'V' + y(cs.l[j]).toFixed(1);
      var top = y(Math.max(cs.o[j], cs.c[j])), bot = y(Math.min(cs.o[j], cs.c[j]));
      var body = 'M' + (cx - bw / 2).toFixed(2) + ' ' + top.toFixed(1) + 'h' + bw.toFixed(2) + 'V' + Math.max(bot, top + 0.5).toFixed(1) +
        'h' + (-bw).toFixed(2) + 'Z';
      if (cs.c[j] >= cs.o[j]) up += body; else down += body;
    }
    el('path', { d: wick, stroke: '#8a93a6', 'stroke-width': 1, fill: 'none', 'class': 'wicks' }, priceSvg);
    el('path', { d: up, fill: '#26a269', 'class': 'candles-up' }, priceSvg);
    el('path', { d: down, fill: '#e01b24', 'class': 'candles-down' }, priceSvg);
    var tf = data.timeframeMs;
    var t0 = cs.t[a], tEnd = cs.t[b - 1] + tf;
    // a marker sits on the candle that closes at the order's time
    var indexAt = function (t) { return a + (t - tf - t0) / tf; };
    data.trades.forEach(function (tr, k) {
      if (tr.pair !== pair) return;
      if (tr.entry_time > t0 && tr.entry_time <= tEnd) {
        var ex = x(indexAt(tr.entry_time)), ey = y(tr.entry_price);
        var pts = tr.side === 'long'
          ? [ex, ey + 2, ex - 6, ey + 12, ex + 6, ey + 12]
          : [ex, ey - 2, ex - 6, ey - 12, ex + 6, ey - 12];
        var m = el('polygon', { points: pts.map(function (p) { return p.toFixed(1); }).join(' '),
          fill: tr.side === 'long' ? '#1a5fb4' : '#c64600', 'class': 'marker entry', 'data-trade': k }, priceSvg);
        el('title', {}, m).textContent = 'entry ' + tr.side + ' ' + iso(tr.entry_time) + ' @ ' + price(tr.entry_price) + ' ' + tr.leverage + 'x: ' + tr.entry_reason;
      }
      if (tr.exit_time > t0 && tr.exit_time <= tEnd) {
        var c = el('circle', { cx: x(indexAt(tr.exit_time)).toFixed(1), cy: y(tr.exit_price).toFixed(1), r: 5,
          fill: tr.pnl >= 0 ? '#26a269' : '#e01b24', stroke: '#1d2330', 'class': 'marker exit', 'data-trade': k }, priceSvg);
        el('title', {}, c).textContent = 'exit (' + tr.exit_reason + ') ' + iso(tr.exit_time) + ' @ ' + price(tr.exit_price) + ', PnL ' + fmt(tr.pnl, 2) + ' USDT: ' + tr.exit_text;
      }
    });
    document.getElementById('range-label').textContent = iso(cs.t[a]) + ' to ' + iso(cs.t[b - 1] + tf) + ' UTC (' + (b - a) + ' candles)';
  }

  function resetRange() {
    var n = (data.candles[pairSelect.value] || { t: [] }).t.length;
    fromSlider.max = String(Math.max(n - 1, 0)); toSlider.max = String(n);
    fromSlider.value = '0'; toSlider.value = String(n);
  }

  function fillTrades() {
    var body = document.getElementById('trades');
    data.trades.forEach(function (tr) {
      var row = document.createElement('tr');
      var cells = [tr.pair, tr.side, iso(tr.entry_time), iso(tr.exit_time), price(tr.entry_price), price(tr.exit_price),
        tr.leverage + 'x', fmt(tr.margin, 2), fmt(tr.pnl, 2), fmt(tr.pnl_pct, 1), fmt(tr.fees, 2), fmt(tr.funding, 2),
        tr.exit_reason, tr.entry_reason, tr.exit_text];
      cells.forEach(function (text, i) {
        var td = document.createElement('td');
        td.textContent = text;
        if (i >= 13) td.className = 'text';
        if (i === 0 || i === 1 || i === 12) td.className = 'left';
        if (i === 8 || i === 9) td.className = tr.pnl >= 0 ? 'pos' : 'neg';
        row.appendChild(td);
      });
      body.appendChild(row);
    });
  }

  Object.keys(data.candles).forEach(function (p) {
    var o = document.createElement('option'); o.value = p; o.textContent = p; pairSelect.appendChild(o);
  });
  pairSelect.addEventListener('change', function () { resetRange(); drawPrice(); });
  fromSlider.addEventListener('input', drawPrice);
  toSlider.addEventListener('input', drawPrice);
  resetRange();
  drawPrice();
  lineChart(document.getElementById('equity-chart'), data.equity.t, data.equity.v, '#1a5fb4', null);
  lineChart(document.getElementById('drawdown-chart'), data.equity.t, data.drawdown.map(function (v) { return -v; }), '#c2362b', 'rgba(194,54,43,0.15)');
  fillTrades();
  document.body.setAttribute('data-ready', 'true');
})();
`;

function num(v: number | null, digits: number): string {
  return v === null ? '-' : v.toFixed(digits);
}

function signedClass(v: number | null): string {
  return v === null ? '' : v >= 0 ? 'pos' : 'neg';
}

/**
 * The report of `result` as one HTML document. `candles` are the main-timeframe candles of each pair to chart
 * (normally the decision range); a pair without candles gets an empty chart.
 */
export function renderReport(result: BacktestResult, candles: Readonly<Record<string, readonly Candle[]>>): string {
  const m = result.metrics;
  const equityTimes = result.equity.map((p) => p.time);
  const equityValues = result.equity.map((p) => p.equity);
  const payload = {
    timeframeMs: timeframeMs(result.range.main_timeframe),
    candles: Object.fromEntries(result.range.pairs.map((p) => [p, compact(candles[p] ?? [])])),
    trades: result.trades,
    equity: { t: equityTimes, v: equityValues },
    drawdown: drawdownSeries(equityValues),
  };
  const iso = (t: number) => `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const metricRows: [string, string, string][] = [
    ['final equity', `${m.final_equity.toFixed(2)} USDT`, ''],
    ['total return', `${m.total_return_pct.toFixed(2)} %`, signedClass(m.total_return_pct)],
    ['max drawdown', `${m.max_drawdown_pct.toFixed(2)} %`, ''],
    ['Sharpe / Sortino (annualised)', `${num(m.sharpe, 2)} / ${num(m.sortino, 2)}`, ''],
    ['trades (wins / losses)', `${m.trades} (${m.wins} / ${m.losses})`, ''],
    ['win rate', m.win_rate_pct === null ? '-' : `${m.win_rate_pct.toFixed(1)} %`, ''],
    ['profit factor', num(m.profit_factor, 2), ''],
    ['average trade', m.average_trade_pnl === null ? '-' : `${m.average_trade_pnl.toFixed(2)} USDT`, ''],
    ['exposure', `${m.exposure_pct.toFixed(1)} % of the time`, ''],
    ['fees / funding', `${m.fees.toFixed(2)} / ${m.funding.toFixed(2)} USDT`, ''],
    ['liquidations / protective exits', `${m.liquidations} / ${m.protective_exits}`, ''],
    ['decisions (fallbacks, rejections)', `${m.decisions} (${m.fallbacks}, ${m.rejections})`, ''],
    [
      'model tokens (in / out), est. cost',
      `${m.model_tokens_in} / ${m.model_tokens_out}, ${m.estimated_cost_usd === null ? 'no price for the model' : `${m.estimated_cost_usd.toFixed(4)} USD`}`,
      '',
    ],
  ];
  const llm = result.llm;
  const spendRow = (label: string, x: LlmSpend) =>
    `<tr><td class="left">${escapeHtml(label)}</td><td>${x.decisions}</td><td>${x.requests}</td><td>${x.tokens.input}</td>` +
    `<td>${x.tokens.cached_input}</td><td>${x.tokens.output}</td><td>${x.cost_usd === null ? '-' : x.cost_usd.toFixed(4)}</td></tr>`;
  const usage = llm
    ? `<h2>Model usage</h2>
<p>${escapeHtml(llm.model)} at ${escapeHtml(llm.endpoint)}; ${
        llm.price
          ? `priced at ${escapeHtml(describePrice(llm.price))} (${llm.price.source === 'config' ? 'llm.pricing' : 'built-in table'})`
          : 'no price for this model (set llm.pricing): no cost'
      }. Tokens as originally asked: a decision served from the decision cache counts what its request cost.</p>
<table id="llm-usage"><thead><tr><th class="left">decisions</th><th>count</th><th>requests</th><th>input tokens</th>
<th>of them cached</th><th>output tokens</th><th>cost USD</th></tr></thead><tbody>
${spendRow('all', llm)}
${spendRow('entry (flat)', llm.by_kind.entry)}
${spendRow('position', llm.by_kind.position)}
</tbody></table>
<p>Fallbacks: ${llm.fallbacks.decisions}${llm.fallbacks.pct === null ? '' : ` (${llm.fallbacks.pct.toFixed(1)} %)`}${
        Object.keys(llm.fallbacks.by_reason).length > 0
          ? `: ${escapeHtml(
              Object.entries(llm.fallbacks.by_reason)
                .map(([k, v]) => `${PROBLEM_KIND_LABELS[k as ProblemKind]} ${v}`)
                .join(', '),
            )}`
          : ''
      }. Tool calls with extra fields (dropped): ${llm.extra_fields.decisions}${
        Object.keys(llm.extra_fields.fields).length > 0
          ? ` (${escapeHtml(
              Object.entries(llm.extra_fields.fields)
                .map(([k, v]) => `${k} ${v}`)
                .join(', '),
            )})`
          : ''
      }.</p>`
    : '';
  const comparison = result.comparison
    .map(
      (r) =>
        `<tr><td class="text">${escapeHtml(r.label)}</td><td class="${signedClass(r.total_return_pct)}">${r.total_return_pct.toFixed(2)}</td>` +
        `<td>${r.max_drawdown_pct.toFixed(2)}</td><td>${num(r.sharpe, 2)}</td><td>${num(r.sortino, 2)}</td>` +
        `<td>${r.trades}</td><td>${num(r.win_rate_pct, 1)}</td><td>${num(r.profit_factor, 2)}</td><td>${r.final_equity.toFixed(2)}</td></tr>`,
    )
    .join('\n');
  const lookahead = result.lookahead
    ? `<p>Look-ahead check: <span class="${result.lookahead.passed ? 'ok' : 'bad'}">${
        result.lookahead.passed
          ? 'passed'
          : `FAILED (${result.lookahead.mismatches.length} of ${result.lookahead.samples})`
      }</span> over ${result.lookahead.samples} pair-cycles rerun with ${escapeHtml(result.lookahead.corruption)}.</p>`
    : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>Backtest ${escapeHtml(result.run_id)}: ${escapeHtml(result.policy.name)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Backtest ${escapeHtml(result.run_id)}: policy ${escapeHtml(result.policy.name)}</h1>
<div class="sub">${escapeHtml(result.range.pairs.join(', '))} · ${escapeHtml(result.range.main_timeframe)} decisions from
${iso(result.range.from)} to ${iso(result.range.to)} · ${result.range.candle_steps} pair-cycles · policy id ${escapeHtml(result.policy.id)}</div>
${lookahead}
<h2>Results</h2>
<table id="metrics"><tbody>
${metricRows.map(([k, v, c]) => `<tr><th class="text">${escapeHtml(k)}</th><td class="${c}">${escapeHtml(v)}</td></tr>`).join('\n')}
</tbody></table>
${usage}
<h2>Comparison</h2>
<table id="comparison"><thead><tr><th class="text">run</th><th>return %</th><th>max DD %</th><th>Sharpe</th><th>Sortino</th>
<th>trades</th><th>win %</th><th>profit factor</th><th>final equity</th></tr></thead><tbody>
${comparison}
</tbody></table>
<h2>Price and trades</h2>
<div class="controls"><label>pair <select id="pair"></select></label>
<label>from <input type="range" id="range-from" min="0" value="0"></label>
<label>to <input type="range" id="range-to" min="1" value="1"></label>
<span id="range-label"></span></div>
<svg id="price-chart" width="1100" height="420" viewBox="0 0 1100 420" role="img" aria-label="candles with trade entries and exits"></svg>
<h2>Equity (USDT)</h2>
<svg id="equity-chart" width="1100" height="220" viewBox="0 0 1100 220" role="img" aria-label="equity curve"></svg>
<h2>Drawdown (%)</h2>
<svg id="drawdown-chart" width="1100" height="160" viewBox="0 0 1100 160" role="img" aria-label="drawdown"></svg>
<h2>Trades (${result.trades.length})</h2>
<table><thead><tr><th class="left">pair</th><th class="left">side</th><th>entry (UTC)</th><th>exit (UTC)</th><th>entry price</th>
<th>exit price</th><th>leverage</th><th>margin</th><th>PnL</th><th>PnL %</th><th>fees</th><th>funding</th>
<th class="left">exit reason</th><th class="text">entry reason (the model's)</th><th class="text">exit</th></tr></thead>
<tbody id="trades"></tbody></table>
<script type="application/json" id="report-data">${scriptJson(payload)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
