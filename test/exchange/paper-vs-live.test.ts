/**
 * The paper exchange as a preview of live trading: the same scripted decisions on the same recorded market, once on
 * the paper exchange (the replay path: recorded candles, the SQLite paper ledger, with the trading rules of the
 * exchange), once live on the local exchange through the real ccxt (test/local-exchange). Both run with the same
 * taker fee and slippage. The orders must get the same fills, to the exchange's rounding: the local exchange fills at
 * whole ticks and books fees to 8 decimals, the paper exchange does neither; a stop is stamped at the moment its
 * candle crossed it live and at the candle's close on paper.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema } from '../../src/core/config';
import { createActivities } from '../../src/activities';
import { CcxtExchange } from '../../src/exchange/ccxt-exchange';
import { PaperExchange } from '../../src/exchange/paper-exchange';
import { RecordedMarketSource, csvRecordedData } from '../../src/exchange/market-source';
import { ReplayProvider } from '../../src/llm/replay-provider';
import { Journal } from '../../src/store/journal';
import type { ClosedTrade, Execution, OrderIntent } from '../../src/core/types';
import type { LocalExchange } from '../local-exchange/server';
import {
  DATA_DIR,
  HALF_HOUR,
  liveHarness,
  pairCycles,
  silentLogger,
  startLocalExchange,
  tools,
  writeScript,
  type LiveHarness,
  type PairCycles,
  type ScriptedDecision,
} from '../helpers/live-exchange';

const PAIR = 'BTC/USDT:USDT';
const OWNER = `pair:binanceusdm:${PAIR}`;
const FROM = Date.parse('2025-06-21T18:00:00Z');
const CYCLES = 48;
const TICK = 0.1;
const SLIPPAGE = 0.0002;
const TAKER_FEE = 0.0005;

/** Every 12 candles a trade: entry (long, then short, alternating), +50 % at 2, -30 % at 5, exit at 9. */
function script(): ScriptedDecision[] {
  const out: ScriptedDecision[] = [];
  for (let k = 1; k <= CYCLES; k++) {
    const time = FROM + k * HALF_HOUR;
    const phase = k % 12;
    const long = Math.floor(k / 12) % 2 === 0;
    if (phase === 1) {
      out.push({ time, tool: long ? 'signal_entry_long' : 'signal_entry_short', args: tools.entry(10, 200) });
    } else if (phase === 3) out.push({ time, tool: 'adjust_position', args: tools.adjust(50) });
    else if (phase === 6) out.push({ time, tool: 'adjust_position', args: tools.adjust(-30) });
    else if (phase === 10) out.push({ time, tool: 'signal_exit', args: tools.exit() });
    else out.push({ time, tool: 'signal_hold', args: tools.hold() });
  }
  return out;
}

interface Order {
  intent: OrderIntent;
  execution: Execution;
}

const ordersOf = (c: PairCycles): Order[] =>
  c.events.flatMap((e) => (e.type === 'order' ? [{ intent: e.intent, execution: e.execution }] : []));
const tradesOf = (c: PairCycles): ClosedTrade[] => c.events.flatMap((e) => (e.type === 'tradeClosed' ? [e.trade] : []));

describe('paper and live give the same fills for the same decisions on the recorded market', () => {
  let exchange: LocalExchange;
  let live: LiveHarness;
  let paperDir: string;
  let paper: PaperExchange;
  let paperJournal: Journal;
  let onPaper: PairCycles;

  before(async () => {
    const decisions = script();
    let clock: { now: number };
    ({ exchange, clock } = await startLocalExchange(FROM, { engine: { slippage: SLIPPAGE, takerFee: TAKER_FEE } }));
    live = await liveHarness({
      exchange,
      clock,
      pair: PAIR,
      decisions,
      config: { paper: { slippage: SLIPPAGE, taker_fee: TAKER_FEE } },
    });

    // the paper side: recorded candles, the paper ledger, the exchange's trading rules (its public market data)
    paperDir = mkdtempSync(join(tmpdir(), 'llm-trader-paper-'));
    const config = ConfigSchema.parse({
      ...live.config,
      mode: 'replay',
      data_dir: paperDir,
      replay: { data: DATA_DIR },
      exchange: { ...live.config.exchange, api_key: '', api_secret: '' },
    });
    const source = new RecordedMarketSource(csvRecordedData(DATA_DIR));
    let marketTime = 0;
    paper = new PaperExchange({
      file: join(paperDir, 'paper.sqlite'),
      config: config.paper,
      source,
      clock: () => marketTime,
      triggerTimeframe: '30m',
      markets: new CcxtExchange({ exchangeId: 'binanceusdm', apiUrl: exchange.url, marketsCacheFile: null }),
    });
    const scriptFile = join(paperDir, 'script.jsonl');
    writeScript(scriptFile, PAIR, decisions);
    paperJournal = Journal.fromConfig(config);
    const activities = createActivities({
      config,
      exchange: paper,
      paper,
      setMarketTime: (t) => {
        marketTime = Math.max(marketTime, t);
      },
      market: source,
      provider: ReplayProvider.fromFile(scriptFile),
      journal: paperJournal,
      logger: silentLogger,
    });
    onPaper = pairCycles(activities, { pair: PAIR, owner: OWNER, config, account: 'replay' });

    for (let k = 1; k <= CYCLES; k++) {
      const asOf = FROM + k * HALF_HOUR;
      await live.cycle(asOf);
      await onPaper.cycle(asOf);
    }
  });

  after(async () => {
    await live?.close();
    await exchange?.close();
    paper?.close();
    paperJournal?.close();
    if (paperDir) rmSync(paperDir, { recursive: true, force: true });
  });

  test('the same orders, each with the same fills (price to the tick, quantity to float noise, fee to the rounding)', () => {
    const a = ordersOf(live);
    const b = ordersOf(onPaper);
    assert.ok(a.length >= 12, `${a.length} orders`);
    assert.deepEqual(
      b.map((o) => [o.execution.clientOrderId, o.intent.kind, o.execution.status]),
      a.map((o) => [o.execution.clientOrderId, o.intent.kind, o.execution.status]),
    );
    for (let i = 0; i < a.length; i++) {
      const [l, p] = [a[i]!.execution, b[i]!.execution];
      assert.equal(l.fills.length, p.fills.length, l.clientOrderId);
      for (let j = 0; j < l.fills.length; j++) {
        const [lf, pf] = [l.fills[j]!, p.fills[j]!];
        const what = `${a[i]!.intent.kind} ${l.clientOrderId}`;
        // the paper ledger's quantities carry float noise (0.019 + 0.009 - 0.008 = 0.019999999999999997)
        assert.ok(Math.abs(lf.quantity - pf.quantity) < 1e-9, `${what}: quantity ${lf.quantity} / ${pf.quantity}`);
        assert.ok(
          Math.abs(lf.price - pf.price) <= TICK / 2 + 1e-9,
          `${what}: price ${lf.price} live, ${pf.price} paper`,
        );
        const feeTolerance = lf.quantity * (TICK / 2) * TAKER_FEE + 1e-8;
        assert.ok(Math.abs(lf.fee - pf.fee) <= feeTolerance, `${what}: fee ${lf.fee} live, ${pf.fee} paper`);
      }
    }
  });

  test('the same trades: exit reasons and prices, fees to the cent, funding to the cent, PnL within a cent per fill', () => {
    const a = tradesOf(live);
    const b = tradesOf(onPaper);
    assert.deepEqual(
      b.map((t) => [t.tradeId, t.side, t.exitReason]),
      a.map((t) => [t.tradeId, t.side, t.exitReason]),
    );
    assert.ok(
      a.some((t) => t.exitReason === 'stop'),
      'a stop fill on both sides',
    );
    assert.ok(a.some((t) => t.exitReason === 'model'));
    for (let i = 0; i < a.length; i++) {
      const [l, p] = [a[i]!, b[i]!];
      assert.ok(
        Math.abs(l.exitPrice - p.exitPrice) <= TICK / 2 + 1e-9,
        `${l.tradeId} exit ${l.exitPrice} / ${p.exitPrice}`,
      );
      assert.ok(Math.abs(l.fees - p.fees) < 0.005, `${l.tradeId} fees ${l.fees} / ${p.fees}`);
      // paper settles funding at the last trade price, the exchange at the mark price
      assert.ok(Math.abs(l.funding - p.funding) < 0.005, `${l.tradeId} funding ${l.funding} / ${p.funding}`);
      const fills = ordersOf(live).filter((o) => l.clientOrderIds.includes(o.execution.clientOrderId)).length + 1;
      assert.ok(Math.abs(l.pnl - p.pnl) < 0.01 * fills, `${l.tradeId} pnl ${l.pnl} / ${p.pnl}`);
      if (l.exitReason === 'stop') {
        assert.equal(p.exitTime % HALF_HOUR, 0, 'paper: the close of the candle that crossed the stop');
        assert.ok(l.exitTime > p.exitTime - HALF_HOUR && l.exitTime < p.exitTime, 'live: inside that candle');
      }
    }
  });
});
