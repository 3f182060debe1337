import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkRisk, protectiveExit, stopPriceFor, type MarketLimits, type RiskInput } from '../../src/core/risk';
import { RiskConfigSchema, type RiskConfig } from '../../src/core/config';
import type {
  AccountSnapshot,
  Candle,
  Decision,
  EntryArgs,
  ExchangePosition,
  MarketSnapshot,
  OrderIntent,
  PositionState,
  Side,
  Verdict,
} from '../../src/core/types';

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const PAIR = 'BTC/USDT:USDT';
const TF = '30m';
const TF_MS = 30 * 60_000;
const ASOF = Date.UTC(2024, 0, 10, 12, 0);
/** Schema defaults: max_leverage 20, default_leverage 5, max_position_pct 25, default_stake_pct 10,
 * max_total_exposure_pct 300, max_open_trades 4, min_confidence 60, cooldown_minutes 120,
 * liquidation_atr_multiple 3, max_adjustments_per_trade 3, emergency_stop_loss -0.15, liquidation_buffer 0.01. */
const RISK: RiskConfig = RiskConfigSchema.parse({});
const STRICT: RiskConfig = { ...RISK, allow_model_freedom: false };
const LIMITS: MarketLimits = { minNotional: 5, qtyStep: 0.001, minQty: 0.001, maintenanceMarginRate: 0.005 };

function snapshot(price: number, atr: number | null, candles: Candle[] = [], pair = PAIR): MarketSnapshot {
  const nulls = {
    ema20: null,
    ema50: null,
    ema100: null,
    rsi14: null,
    macd: null,
    macdSignal: null,
    macdHist: null,
    bbUpper: null,
    bbMiddle: null,
    bbLower: null,
    adx14: null,
    mfi14: null,
    obv: null,
  };
  return {
    pair,
    asOf: ASOF,
    mainTimeframe: TF,
    price,
    timeframes: {
      [TF]: {
        timeframe: TF,
        lastCandleTime: ASOF - TF_MS,
        close: price,
        changePct: null,
        indicators: { ...nulls, atr14: atr },
        tails: { close: [], volume: [], rsi14: [], macd: [], macdHist: [], ema20: [], ema50: [], adx14: [] },
        candles,
      },
    },
    funding: { rate: null, time: null },
  };
}

function account(over: Partial<AccountSnapshot> = {}): AccountSnapshot {
  return { equity: 10_000, available: 10_000, usedMargin: 0, positions: [], externalCloses: [], ...over };
}

function exchangePosition(pair: string, notional: number, margin = notional / 10): ExchangePosition {
  return {
    pair,
    side: 'long',
    quantity: 1,
    entryPrice: notional,
    leverage: 10,
    margin,
    notional,
    liquidationPrice: null,
    unrealizedPnl: 0,
  };
}

function entry(side: Side, args: Partial<EntryArgs> = {}): Decision {
  const full: EntryArgs = {
    pair: PAIR,
    leverage: 10,
    stake_amount: 1000,
    confidence_score: 70,
    key_support: 98_000,
    key_resistance: 104_000,
    rsi_value: 55,
    trend_strength: 'medium',
    reason: 'test',
    ...args,
  };
  return side === 'long' ? { tool: 'signal_entry_long', args: full } : { tool: 'signal_entry_short', args: full };
}

function adjust(pct: number, confidence = 70): Decision {
  return {
    tool: 'adjust_position',
    args: {
      pair: PAIR,
      adjustment_pct: pct,
      confidence_score: confidence,
      key_support: 1,
      key_resistance: 2,
      reason: 'test',
    },
  };
}

/** A long 0.1 BTC @ 100,000 at 10x: margin 1,000, notional 10,000, liquidation 90,500. */
function position(over: Partial<PositionState> = {}): PositionState {
  return {
    tradeId: 't1',
    pair: PAIR,
    side: 'long',
    entryTime: ASOF - 4 * TF_MS,
    entryPrice: 100_000,
    quantity: 0.1,
    leverage: 10,
    margin: 1000,
    maxQuantity: 0.1,
    maxMargin: 1000,
    fees: 5,
    funding: 0,
    realizedPnl: 0,
    liquidationPrice: 90_500,
    entryReason: 'test',
    entryConfidence: 70,
    entryMarket: { price: 100_000, atr14: 500, rsi14: null, ema20: null, ema50: null, macdHist: null, adx14: null },
    adjustments: 0,
    holds: 0,
    highestPrice: 100_000,
    lowestPrice: 100_000,
    mfePct: 0,
    maePct: 0,
    lastPnlPct: 0,
    clientOrderIds: ['o1'],
    ...over,
  };
}

function input(over: Partial<RiskInput> = {}): RiskInput {
  return {
    decision: entry('long'),
    snapshot: snapshot(100_000, 500),
    account: account(),
    position: null,
    risk: RISK,
    market: LIMITS,
    now: ASOF,
    lastStopOutTime: null,
    ...over,
  };
}

function approved(v: Verdict): { intent: OrderIntent; notes: string[] } {
  assert.equal(v.status, 'approved', `expected approval, got ${JSON.stringify(v)}`);
  if (v.status !== 'approved') throw new Error('unreachable');
  return v;
}

function rejected(v: Verdict): string {
  assert.equal(v.status, 'rejected', `expected rejection, got ${JSON.stringify(v)}`);
  if (v.status !== 'rejected') throw new Error('unreachable');
  return v.reasons.join(' | ');
}

function near(actual: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
    `${what}: expected ${expected}, got ${actual}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Unit tests, rule by rule
// ---------------------------------------------------------------------------------------------

describe('checkRisk: entries', () => {
  test('an entry within every limit is approved as asked, with the protective stop', () => {
    // 1,000 margin x 10 / 100,000 = 0.1 BTC; stop: 100,000 x (1 - 0.15/10) = 98,500.
    const { intent, notes } = approved(checkRisk(input()));
    assert.equal(intent.kind, 'open');
    if (intent.kind !== 'open') return;
    assert.equal(intent.side, 'long');
    assert.equal(intent.leverage, 10);
    near(intent.quantity, 0.1, 'quantity');
    near(intent.margin, 1000, 'margin');
    near(intent.stopPrice!, 98_500, 'stop price');
    assert.deepEqual(notes, []);
    // short: stop at 100,000 x (1 + 0.015) = 101,500
    const short = approved(checkRisk(input({ decision: entry('short') }))).intent;
    assert.equal(short.kind === 'open' && short.side, 'short');
    near(short.kind === 'open' ? short.stopPrice! : 0, 101_500, 'short stop');
  });

  test('max_leverage: clamped with a note under freedom, rejected otherwise', () => {
    const { intent, notes } = approved(checkRisk(input({ decision: entry('long', { leverage: 50 }) })));
    assert.equal(intent.kind === 'open' && intent.leverage, 20);
    // 1,000 x 20 / 100,000 = 0.2
    near(intent.kind === 'open' ? intent.quantity : 0, 0.2, 'quantity at 20x');
    assert.match(notes.join(), /leverage 50x clamped to risk\.max_leverage 20x/);
    const reason = rejected(checkRisk(input({ decision: entry('long', { leverage: 50 }), risk: STRICT })));
    assert.match(reason, /leverage 50x is above risk\.max_leverage 20x/);
  });

  test('a missing or unusable leverage falls back to default_leverage; fractions are rounded down', () => {
    const v = approved(checkRisk(input({ decision: entry('long', { leverage: Number.NaN }) })));
    assert.equal(v.intent.kind === 'open' && v.intent.leverage, 5);
    assert.match(v.notes.join(), /default_leverage 5x/);
    const f = approved(checkRisk(input({ decision: entry('long', { leverage: 7.9 }), risk: STRICT })));
    assert.equal(f.intent.kind === 'open' && f.intent.leverage, 7);
  });

  test('max_position_pct: 5,000 asked, 25 % of 10,000 = 2,500 allowed', () => {
    const { intent, notes } = approved(checkRisk(input({ decision: entry('long', { stake_amount: 5000 }) })));
    // 2,500 x 10 / 100,000 = 0.25
    near(intent.kind === 'open' ? intent.margin : 0, 2500, 'clamped margin');
    near(intent.kind === 'open' ? intent.quantity : 0, 0.25, 'quantity');
    assert.match(notes.join(), /margin 5000\.00 USDT clamped to 2500\.00 USDT by risk\.max_position_pct 25% of equity/);
    const reason = rejected(checkRisk(input({ decision: entry('long', { stake_amount: 5000 }), risk: STRICT })));
    assert.match(reason, /margin 5000\.00 USDT is above risk\.max_position_pct 25% of equity \(2500\.00 USDT\)/);
  });

  test('no stake: default_stake_pct of equity (10 % of 10,000 = 1,000)', () => {
    const { intent, notes } = approved(
      checkRisk(input({ decision: entry('long', { stake_amount: null }), risk: STRICT })),
    );
    near(intent.kind === 'open' ? intent.margin : 0, 1000, 'default margin');
    assert.match(notes.join(), /default_stake_pct 10% of equity = 1000\.00 USDT/);
  });

  test('available balance: margin clamped to it (fee reserved when the rate is known) or rejected', () => {
    const acct = account({ available: 800 });
    const plain = approved(checkRisk(input({ account: acct })));
    near(plain.intent.kind === 'open' ? plain.intent.margin : 0, 800, 'margin = available');
    assert.match(plain.notes.join(), /clamped to the available balance 800\.00 USDT/);
    // with a 0.05 % taker fee at 10x: 800 / (1 + 10 x 0.0005) = 796.02 → 0.0796 BTC → step 0.001 → 0.079 → margin 790,
    // fee 0.079 x 100,000 x 0.0005 = 3.95; 790 + 3.95 <= 800.
    const withFee = approved(checkRisk(input({ account: acct, market: { ...LIMITS, takerFeeRate: 0.0005 } })));
    near(withFee.intent.quantity, 0.079, 'quantity after reserving the fee');
    const reason = rejected(checkRisk(input({ account: acct, risk: STRICT })));
    assert.match(reason, /margin 1000\.00 USDT is above the available balance 800\.00 USDT/);
    assert.match(
      rejected(checkRisk(input({ account: account({ available: 0 }) }))),
      /available balance 0\.00 USDT leaves no room/,
    );
  });

  test('max_total_exposure_pct: room under 300 % of equity, or nothing left', () => {
    // cap 30,000; 28,000 open → 2,000 of notional left → at 10x margin 200 → 0.02 BTC.
    const crowded = account({ positions: [exchangePosition('ETH/USDT:USDT', 28_000)] });
    const { intent, notes } = approved(checkRisk(input({ account: crowded })));
    near(intent.kind === 'open' ? intent.margin : 0, 200, 'clamped margin');
    near(intent.quantity, 0.02, 'quantity');
    assert.match(
      notes.join(),
      /clamped to 200\.00 USDT so total notional stays within risk\.max_total_exposure_pct 300%/,
    );
    const reason = rejected(checkRisk(input({ account: crowded, risk: STRICT })));
    assert.match(
      reason,
      /would take total exposure to 38000\.00 USDT, above risk\.max_total_exposure_pct 300% of equity \(30000\.00 USDT\)/,
    );
    const full = account({ positions: [exchangePosition('ETH/USDT:USDT', 30_000)] });
    assert.match(rejected(checkRisk(input({ account: full }))), /already hold 30000\.00 USDT of notional.*no room/);
  });

  test('max_open_trades is never clamped', () => {
    const four = account({
      positions: ['ETH', 'SOL', 'XRP', 'BNB'].map((b) => exchangePosition(`${b}/USDT:USDT`, 100)),
    });
    assert.match(
      rejected(checkRisk(input({ account: four }))),
      /4 trades are already open, at risk\.max_open_trades 4/,
    );
  });

  test('min_confidence is never clamped', () => {
    const reason = rejected(checkRisk(input({ decision: entry('long', { confidence_score: 55 }) })));
    assert.match(reason, /confidence_score 55 is below risk\.min_confidence 60/);
  });

  test('cooldown_minutes after a stop-out', () => {
    const reason = rejected(checkRisk(input({ lastStopOutTime: ASOF - 30 * 60_000 })));
    assert.match(reason, /30 of risk\.cooldown_minutes 120 minutes have passed; entries resume in 90 minutes/);
    approved(checkRisk(input({ lastStopOutTime: ASOF - 120 * 60_000 })));
  });

  test('liquidation within k x ATR is rejected even under freedom, naming the highest leverage that fits', () => {
    // ATR 2,000, k 3 → 6,000 needed. At 20x the liquidation is 100,000 x (1 - 0.05 + 0.005) = 95,500: 4,500 away.
    // Highest leverage: 1 / (6,000/100,000 + 0.005) = 15.38 → 15x (100,000 x (1/15 - 0.005) = 6,166.67 >= 6,000).
    const wide = snapshot(100_000, 2000);
    const reason = rejected(checkRisk(input({ snapshot: wide, decision: entry('long', { leverage: 20 }) })));
    assert.match(
      reason,
      /liquidated at 95500, 4500 from the price 100000, closer than risk\.liquidation_atr_multiple 3 x ATR14 2000 = 6000; at most 15x/,
    );
    approved(checkRisk(input({ snapshot: wide, decision: entry('long', { leverage: 15 }) })));
    // freedom clamps 50x to 20x first, and 20x is still too close
    assert.match(rejected(checkRisk(input({ snapshot: wide, decision: entry('short', { leverage: 50 }) }))), /at 20x/);
  });

  test('no ATR yet: entries are rejected unless the ATR rule is off', () => {
    const noAtr = snapshot(100_000, null);
    assert.match(rejected(checkRisk(input({ snapshot: noAtr }))), /ATR14 on 30m is not available yet/);
    approved(checkRisk(input({ snapshot: noAtr, risk: { ...RISK, liquidation_atr_multiple: 0 } })));
  });

  test('exchange minimums after rounding the quantity down to the step', () => {
    // 0.4 x 10 / 100,000 = 0.00004 BTC, notional 4 < 5.
    const fine: MarketLimits = { ...LIMITS, qtyStep: 0.00001, minQty: 0.00001 };
    const reason = rejected(checkRisk(input({ market: fine, decision: entry('long', { stake_amount: 0.4 }) })));
    assert.match(reason, /entry notional 4\.00 USDT is below the exchange minimum notional 5\.00 USDT/);
    // default step 0.001: 0.00004 rounds to 0
    assert.match(rejected(checkRisk(input({ decision: entry('long', { stake_amount: 0.4 }) }))), /rounds down to 0/);
    // 1,000 x 10 / 30,000 = 0.33333 → 0.333; margin 0.333 x 30,000 / 10 = 999
    const { intent } = approved(checkRisk(input({ snapshot: snapshot(30_000, 100) })));
    assert.equal(intent.quantity, 0.333);
    near(intent.kind === 'open' ? intent.margin : 0, 999, 'margin of the rounded quantity');
  });

  test('defence in depth: wrong state or wrong pair', () => {
    assert.match(rejected(checkRisk(input({ position: position() }))), /while a long position is open/);
    const ghost = account({ positions: [exchangePosition(PAIR, 10_000)] });
    assert.match(rejected(checkRisk(input({ account: ghost }))), /exchange reports an open position/);
    assert.match(
      rejected(checkRisk(input({ decision: entry('long', { pair: 'ETH/USDT:USDT' }) }))),
      /is for ETH\/USDT:USDT but this cycle trades BTC\/USDT:USDT/,
    );
    const exit: Decision = {
      tool: 'signal_exit',
      args: { pair: PAIR, confidence_score: 80, rsi_value: 50, trade_score: 60, reason: 'x' },
    };
    assert.match(rejected(checkRisk(input({ decision: exit }))), /signal_exit while flat/);
    assert.match(rejected(checkRisk(input({ decision: adjust(20) }))), /adjust_position while flat/);
    const hold: Decision = {
      tool: 'signal_hold',
      args: { pair: PAIR, confidence_score: 50, rsi_value: 50, reason: 'x' },
    };
    assert.deepEqual(checkRisk(input({ decision: hold, position: position() })), { status: 'none' });
    assert.deepEqual(checkRisk(input({ decision: { ...hold, tool: 'signal_wait' } })), { status: 'none' });
  });
});

describe('checkRisk: exits and adjustments', () => {
  const held = account({ positions: [exchangePosition(PAIR, 10_000, 1000)] });

  test('exit closes the full quantity', () => {
    const exit: Decision = {
      tool: 'signal_exit',
      args: { pair: PAIR, confidence_score: 80, rsi_value: 50, trade_score: 60, reason: 'x' },
    };
    const { intent } = approved(checkRisk(input({ decision: exit, position: position(), account: held })));
    assert.deepEqual(intent, {
      kind: 'close',
      pair: PAIR,
      side: 'long',
      quantity: 0.1,
      price: 100_000,
      reason: 'model',
    });
  });

  test('increase: pct of the current margin at the position leverage', () => {
    // +50 % of 1,000 = 500 margin at 10x → 5,000 notional → 0.05 BTC.
    const { intent } = approved(checkRisk(input({ decision: adjust(50), position: position(), account: held })));
    assert.equal(intent.kind, 'increase');
    if (intent.kind !== 'increase') return;
    assert.equal(intent.leverage, 10);
    near(intent.margin, 500, 'added margin');
    near(intent.quantity, 0.05, 'added quantity');
  });

  test('increase: max_position_pct counts the margin already in the position', () => {
    // margin 2,400 (0.24 BTC at 10x); +50 % = 1,200 but only 2,500 - 2,400 = 100 fits → 0.01 BTC.
    const big = position({ quantity: 0.24, margin: 2400 });
    const acct = account({ positions: [exchangePosition(PAIR, 24_000, 2400)] });
    const { intent, notes } = approved(checkRisk(input({ decision: adjust(50), position: big, account: acct })));
    near(intent.kind === 'increase' ? intent.margin : 0, 100, 'clamped added margin');
    assert.match(notes.join(), /added margin 1200\.00 USDT clamped to 100\.00 USDT by risk\.max_position_pct 25%/);
    const reason = rejected(checkRisk(input({ decision: adjust(50), position: big, account: acct, risk: STRICT })));
    assert.match(
      reason,
      /would take the position to 3600\.00 USDT, above risk\.max_position_pct 25% of equity \(2500\.00 USDT\)/,
    );
  });

  test('increase: confidence, the position leverage and the liquidation distance after averaging', () => {
    assert.match(
      rejected(checkRisk(input({ decision: adjust(50, 40), position: position(), account: held }))),
      /confidence_score 40 is below risk\.min_confidence 60; no increase/,
    );
    assert.match(
      rejected(checkRisk(input({ decision: adjust(50), position: position({ leverage: 25 }), account: held }))),
      /position's leverage 25x is above risk\.max_leverage 20x/,
    );
    // price fell to 92,000: +50 % = 500 margin x 10 / 92,000 = 0.0543 → 0.054 BTC; average
    // (0.1 x 100,000 + 0.054 x 92,000) / 0.154 = 14,968 / 0.154 = 97,194.81, liquidation x 0.905 = 87,961.30,
    // 4,038.70 from 92,000 < 3 x ATR 1,500 = 4,500.
    const fallen = snapshot(92_000, 1500);
    assert.match(
      rejected(checkRisk(input({ decision: adjust(50), position: position(), account: held, snapshot: fallen }))),
      /after the increase the position would be liquidated at 87961\.3, 4038\.7 from the price 92000, closer than risk\.liquidation_atr_multiple 3 x ATR14 1500 = 4500/,
    );
    // with ATR 1,300 (3 x 1,300 = 3,900 <= 4,038.70) the same increase is fine
    approved(
      checkRisk(input({ decision: adjust(50), position: position(), account: held, snapshot: snapshot(92_000, 1300) })),
    );
  });

  test('max_adjustments_per_trade applies to increases and reductions', () => {
    const tired = position({ adjustments: 3 });
    for (const pct of [30, -30]) {
      assert.match(
        rejected(checkRisk(input({ decision: adjust(pct), position: tired, account: held }))),
        /already had 3 adjustments, at risk\.max_adjustments_per_trade 3/,
      );
    }
  });

  test('reduce: pct of the quantity, a full close at -100 %, and when the remainder would be under the minimums', () => {
    const half = approved(checkRisk(input({ decision: adjust(-50), position: position(), account: held }))).intent;
    assert.deepEqual(half, { kind: 'reduce', pair: PAIR, side: 'long', quantity: 0.05, price: 100_000 });
    const all = approved(checkRisk(input({ decision: adjust(-100), position: position(), account: held })));
    assert.equal(all.intent.kind, 'close');
    assert.match(all.notes.join(), /removes the whole position/);
    // 0.01 BTC, -95 % = 0.0095 → 0.009, leaving 0.001 < minQty 0.002 → close all.
    const small = position({ quantity: 0.01, margin: 100 });
    const v = approved(
      checkRisk(input({ decision: adjust(-95), position: small, account: held, market: { ...LIMITS, minQty: 0.002 } })),
    );
    assert.equal(v.intent.kind, 'close');
    near(v.intent.quantity, 0.01, 'whole quantity');
    assert.match(v.notes.join(), /would leave 0\.001 .*under the exchange minimums .*closing the whole position/);
    // -5 % of 0.01 = 0.0005 → rounds to 0: nothing to place.
    assert.match(
      rejected(checkRisk(input({ decision: adjust(-5), position: small, account: held }))),
      /reduce quantity rounds down to 0.*reduce by more or use signal_exit/,
    );
  });
});

describe('protective exits', () => {
  const long = position(); // long 0.1 @ 100,000, 10x, liquidation 90,500
  test('stopPriceFor', () => {
    near(stopPriceFor('long', 100_000, 10, -0.15), 98_500, 'long: 100,000 x (1 - 0.015)');
    near(stopPriceFor('short', 100_000, 10, -0.15), 101_500, 'short: 100,000 x (1 + 0.015)');
  });

  test('emergency stop at the current price', () => {
    // 98,400: -1.6 % x 10 = -16 % <= -15 %
    const exit = protectiveExit({ position: long, snapshot: snapshot(98_400, 500), risk: RISK });
    assert.equal(exit?.reason, 'emergency_stop');
    assert.deepEqual(exit?.intent, {
      kind: 'close',
      pair: PAIR,
      side: 'long',
      quantity: 0.1,
      price: 98_400,
      reason: 'emergency_stop',
    });
    assert.match(
      exit!.detail,
      /leveraged PnL -16% at the current price \(98400\) reached risk\.emergency_stop_loss -15%/,
    );
  });

  test('emergency stop from the low of a candle even when the close recovered; pre-entry candles ignored', () => {
    const recovered = [{ time: ASOF - TF_MS, open: 99_500, high: 99_800, low: 98_400, close: 99_000, volume: 1 }];
    const exit = protectiveExit({ position: long, snapshot: snapshot(99_000, 500), risk: RISK, candles: recovered });
    assert.equal(exit?.reason, 'emergency_stop');
    assert.match(exit!.detail, /the low of the 30m candle/);
    // the snapshot's own last candle counts too
    assert.equal(
      protectiveExit({ position: long, snapshot: snapshot(99_000, 500, recovered), risk: RISK })?.reason,
      'emergency_stop',
    );
    const shallow = [{ ...recovered[0]!, low: 98_600 }]; // -14 %
    assert.equal(
      protectiveExit({ position: long, snapshot: snapshot(99_000, 500), risk: RISK, candles: shallow }),
      null,
    );
    // a candle that closed at the entry time is from before the entry
    const before = [{ ...recovered[0]!, time: long.entryTime - TF_MS, low: 80_000 }];
    assert.equal(
      protectiveExit({ position: long, snapshot: snapshot(99_000, 500), risk: RISK, candles: before }),
      null,
    );
  });

  test('liquidation buffer', () => {
    const loose = { ...RISK, emergency_stop_loss: -0.9 }; // stop at 91,000
    // 91,400: 900 from 90,500 <= 1 % x 91,400 = 914; leveraged PnL -86 % > -90 %.
    const exit = protectiveExit({ position: long, snapshot: snapshot(91_400, 500), risk: loose });
    assert.equal(exit?.reason, 'liquidation_buffer');
    assert.equal(exit?.intent.reason, 'liquidation_buffer');
    assert.match(exit!.detail, /900 from the liquidation price 90500, within risk\.liquidation_buffer 1%/);
    // 91,500: 1,000 > 915
    assert.equal(protectiveExit({ position: long, snapshot: snapshot(91_500, 500), risk: loose }), null);
    // unknown liquidation price: computed from the rate given
    const unknown = { ...long, liquidationPrice: null };
    assert.equal(
      protectiveExit({ position: unknown, snapshot: snapshot(91_400, 500), risk: loose, maintenanceMarginRate: 0.005 })
        ?.reason,
      'liquidation_buffer',
    );
  });

  test('short: the stop is above the entry', () => {
    const short = position({ side: 'short', liquidationPrice: 109_500 });
    // 101,600: +1.6 % against a short x 10 = -16 %
    assert.equal(
      protectiveExit({ position: short, snapshot: snapshot(101_600, 500), risk: RISK })?.reason,
      'emergency_stop',
    );
    assert.equal(protectiveExit({ position: short, snapshot: snapshot(98_000, 500), risk: RISK }), null);
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests. The limits below are re-stated from the config's doc comments, without risk.ts helpers.
// ---------------------------------------------------------------------------------------------

const REL = 1e-9;
/** a <= b, allowing float noise of 1e-9 relative */
function le(a: number, b: number): boolean {
  return a <= b + REL * Math.max(Math.abs(a), Math.abs(b)) + 1e-12;
}

const logUniform = (minExp: number, maxExp: number) =>
  fc
    .tuple(fc.integer({ min: minExp, max: maxExp }), fc.double({ min: 1, max: 9.99, noNaN: true }))
    .map(([e, m]) => m * 10 ** e);

const riskArb = fc
  .record({
    max_leverage: fc.oneof(fc.integer({ min: 1, max: 125 }), fc.integer({ min: 1, max: 25 })),
    defaultLeverageRaw: fc.integer({ min: 1, max: 125 }),
    max_position_pct: fc.double({ min: 0.5, max: 100, noNaN: true }),
    defaultStakeShare: fc.double({ min: 0.01, max: 1, noNaN: true }),
    max_total_exposure_pct: fc.oneof(
      fc.double({ min: 1, max: 500, noNaN: true }),
      fc.double({ min: 1, max: 12_500, noNaN: true }),
    ),
    max_open_trades: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 100 })),
    min_confidence: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 100, noNaN: true })),
    cooldown_minutes: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 600, noNaN: true }), fc.constant(100_000)),
    liquidation_atr_multiple: fc.oneof(
      fc.constant(0),
      fc.double({ min: 0, max: 6, noNaN: true }),
      fc.double({ min: 0, max: 100, noNaN: true }),
    ),
    max_adjustments_per_trade: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 100 })),
    allow_model_freedom: fc.boolean(),
    emergency_stop_loss: fc.double({ min: -0.99, max: -0.001, noNaN: true }),
    liquidation_buffer: fc.double({ min: 0, max: 0.5, noNaN: true }),
  })
  .map(({ defaultLeverageRaw, defaultStakeShare, ...r }) =>
    RiskConfigSchema.parse({
      ...r,
      default_leverage: Math.min(defaultLeverageRaw, r.max_leverage),
      default_stake_pct: Math.max(1e-6, defaultStakeShare * r.max_position_pct),
    }),
  );

const marketArb = fc
  .record({
    minNotional: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 20, noNaN: true })),
    /** the quantity step is worth about this much USDT at the scenario's price (0 = any quantity) */
    stepValue: fc.oneof(fc.constant(0), fc.double({ min: 1e-4, max: 5, noNaN: true })),
    minQtySteps: fc.integer({ min: 0, max: 5 }),
    maintenanceMarginRate: fc.oneof(
      fc.double({ min: 0.001, max: 0.02, noNaN: true }),
      fc.double({ min: 0.001, max: 0.1, noNaN: true }),
    ),
    takerFeeRate: fc.option(fc.double({ min: 0, max: 0.001, noNaN: true }), { nil: undefined }),
  })
  .map(({ minQtySteps, takerFeeRate, stepValue, ...m }) => (price: number): MarketLimits => {
    // exchange steps are powers of ten: 10^floor(log10(value / price)), e.g. 0.001 BTC at 50,000
    const qtyStep = stepValue === 0 ? 0 : 10 ** Math.floor(Math.log10(stepValue / price));
    return {
      ...m,
      qtyStep,
      minQty: qtyStep * minQtySteps,
      ...(takerFeeRate === undefined ? {} : { takerFeeRate }),
    };
  });

const OTHER_PAIRS = ['ETH', 'SOL', 'XRP', 'BNB', 'DOGE', 'ADA', 'AVAX'].map((b) => `${b}/USDT:USDT`);

const scenarioArb = fc
  .record({
    risk: riskArb,
    market: marketArb,
    price: logUniform(-2, 5),
    atrFraction: fc.option(fc.double({ min: 0.0005, max: 0.1, noNaN: true }), { nil: null, freq: 8 }),
    equity: logUniform(1, 6),
    availableShare: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
    others: fc.array(
      fc.record({ pairIndex: fc.nat({ max: 6 }), notionalShare: fc.double({ min: 0, max: 2, noNaN: true }) }),
      {
        maxLength: 4,
      },
    ),
    held: fc.option(
      fc.record({
        side: fc.constantFrom<Side>('long', 'short'),
        entryMove: fc.double({ min: -0.3, max: 0.3, noNaN: true }),
        /** fraction of risk.max_leverage, or above it when > 1 */
        leverageShare: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 3, noNaN: true })),
        marginShare: fc.oneof(
          fc.double({ min: 0.001, max: 0.05, noNaN: true }),
          fc.double({ min: 0.001, max: 0.5, noNaN: true }),
        ),
        adjustments: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5 })),
        onExchange: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
      { nil: null, freq: 2 },
    ),
    toolPick: fc.nat({ max: 99 }),
    leverage: fc.oneof(
      fc.integer({ min: 1, max: 30 }),
      fc.integer({ min: 1, max: 150 }),
      fc.double({ min: 0.5, max: 150, noNaN: true }),
      fc.constantFrom(Number.NaN, 0, -3),
    ),
    stakeShare: fc.option(fc.oneof(fc.double({ min: 0, max: 1.5, noNaN: true }), fc.constant(Number.NaN)), {
      nil: null,
    }),
    confidence: fc.oneof(fc.double({ min: 0, max: 100, noNaN: true }), fc.double({ min: 60, max: 100, noNaN: true })),
    adjustmentPct: fc.oneof(fc.double({ min: -150, max: 150, noNaN: true }), fc.integer({ min: -100, max: 100 })),
    wrongPair: fc.nat({ max: 39 }),
    stopOutMinutesAgo: fc.oneof(
      { arbitrary: fc.constant(null), weight: 3 },
      { arbitrary: fc.double({ min: 0, max: 1000, noNaN: true }), weight: 1 },
    ),
  })
  .map((s) => {
    const price = s.price;
    const equity = s.equity;
    const positions: ExchangePosition[] = [];
    for (const o of s.others) {
      const pair = OTHER_PAIRS[o.pairIndex]!;
      if (positions.some((p) => p.pair === pair)) continue;
      positions.push(exchangePosition(pair, o.notionalShare * equity, (o.notionalShare * equity) / 10));
    }
    let held: PositionState | null = null;
    if (s.held) {
      const entryPrice = price * (1 + s.held.entryMove);
      const margin = s.held.marginShare * equity;
      const leverage = Math.max(1, Math.ceil(s.held.leverageShare * s.risk.max_leverage));
      const quantity = (margin * leverage) / entryPrice;
      held = position({
        side: s.held.side,
        entryPrice,
        leverage,
        margin,
        quantity,
        adjustments: s.held.adjustments,
        liquidationPrice: null,
      });
      if (s.held.onExchange < 0.85) {
        positions.push({
          ...exchangePosition(PAIR, quantity * price, margin),
          side: s.held.side,
          quantity,
          entryPrice,
          leverage,
        });
      }
    }
    // tools: mostly the ones that fit the state, sometimes the others (defence in depth)
    const fitting = held
      ? (['signal_exit', 'adjust_position', 'adjust_position', 'adjust_position', 'signal_hold'] as const)
      : ([
          'signal_entry_long',
          'signal_entry_short',
          'signal_entry_long',
          'signal_entry_short',
          'signal_wait',
        ] as const);
    const all = [
      'signal_entry_long',
      'signal_entry_short',
      'signal_exit',
      'adjust_position',
      'signal_hold',
      'signal_wait',
    ] as const;
    const tool = s.toolPick < 85 ? fitting[s.toolPick % fitting.length]! : all[s.toolPick % all.length]!;
    const pair = s.wrongPair === 0 ? 'ETH/USDT:USDT' : PAIR;
    const common = { pair, confidence_score: s.confidence, reason: 'generated' };
    let decision: Decision;
    if (tool === 'signal_entry_long' || tool === 'signal_entry_short') {
      const args: EntryArgs = {
        ...common,
        leverage: s.leverage,
        stake_amount: s.stakeShare === null ? null : s.stakeShare * equity * 0.5,
        key_support: price * 0.98,
        key_resistance: price * 1.02,
        rsi_value: 50,
        trend_strength: 'medium',
      };
      decision = tool === 'signal_entry_long' ? { tool, args } : { tool, args };
    } else if (tool === 'signal_exit') {
      decision = { tool, args: { ...common, rsi_value: 50, trade_score: 50 } };
    } else if (tool === 'adjust_position') {
      decision = {
        tool,
        args: { ...common, adjustment_pct: s.adjustmentPct, key_support: price * 0.98, key_resistance: price * 1.02 },
      };
    } else {
      decision = { tool, args: { ...common, rsi_value: 50 } };
    }
    const riskInput: RiskInput = {
      decision,
      snapshot: snapshot(price, s.atrFraction === null ? null : s.atrFraction * price),
      account: account({ equity, available: s.availableShare * equity, positions }),
      position: held,
      risk: s.risk,
      market: s.market(price),
      now: ASOF,
      lastStopOutTime: s.stopOutMinutesAgo === null ? null : ASOF - s.stopOutMinutesAgo * 60_000,
    };
    return riskInput;
  });

/** Every limit an approved intent must satisfy, re-stated plainly. Returns the broken ones. */
function brokenLimits(inp: RiskInput, verdict: Verdict): string[] {
  const { decision, snapshot: snap, account: acct, position: pos, risk, market } = inp;
  const broken: string[] = [];
  const fail = (cond: boolean, what: string) => {
    if (!cond) broken.push(what);
  };
  if (decision.tool === 'signal_hold' || decision.tool === 'signal_wait') {
    fail(verdict.status === 'none', 'hold/wait must do nothing');
    return broken;
  }
  if (verdict.status === 'none') return ['only hold/wait may give status none'];
  if (verdict.status === 'rejected') {
    fail(verdict.reasons.length > 0 && verdict.reasons.every((r) => r.length > 10), 'a rejection says why');
    return broken;
  }
  const { intent } = verdict;
  const price = snap.price;
  const equity = acct.equity;
  const atr = snap.timeframes[TF]!.indicators.atr14;
  const feeRate = market.takerFeeRate ?? 0;
  const k = risk.liquidation_atr_multiple;
  const mmr = market.maintenanceMarginRate;
  fail(decision.args.pair === snap.pair, 'approved a decision for another pair');
  fail(intent.pair === snap.pair, 'intent for another pair');
  fail(intent.quantity > 0 && Number.isFinite(intent.quantity), 'quantity positive');
  const onStep = (q: number) => {
    if (market.qtyStep === 0) return true;
    const units = q / market.qtyStep;
    return Math.abs(units - Math.round(units)) <= 1e-6 + 8 * Number.EPSILON * Math.abs(units);
  };
  const sumNotional = acct.positions.reduce((a, p) => a + Math.abs(p.notional), 0);
  const liqDistance = (side: Side, entryPrice: number, lev: number) => {
    const liq = side === 'long' ? entryPrice * (1 - 1 / lev + mmr) : entryPrice * (1 + 1 / lev - mmr);
    return side === 'long' ? price - liq : liq - price;
  };
  const distanceOk = (d: number) => d > 0 && (k === 0 || (atr !== null && le(k * atr, d)));

  switch (intent.kind) {
    case 'open': {
      const side: Side = decision.tool === 'signal_entry_long' ? 'long' : 'short';
      fail(decision.tool === 'signal_entry_long' || decision.tool === 'signal_entry_short', 'open only from an entry');
      if (decision.tool !== 'signal_entry_long' && decision.tool !== 'signal_entry_short') break;
      const args = decision.args;
      fail(intent.side === side, 'side of the entry');
      fail(pos === null && !acct.positions.some((p) => p.pair === snap.pair), 'entry while a position exists');
      fail(
        Number.isInteger(intent.leverage) && intent.leverage >= 1 && intent.leverage <= risk.max_leverage,
        'max_leverage',
      );
      fail(
        Math.abs(intent.margin - (intent.quantity * price) / intent.leverage) <= 1e-9 * intent.margin,
        'margin = notional / leverage',
      );
      fail(le(intent.margin, (risk.max_position_pct / 100) * equity), 'max_position_pct');
      fail(le(intent.margin + intent.quantity * price * feeRate, acct.available), 'available balance');
      fail(
        le(sumNotional + intent.quantity * price, (risk.max_total_exposure_pct / 100) * equity),
        'max_total_exposure_pct',
      );
      fail(new Set(acct.positions.map((p) => p.pair)).size + 1 <= risk.max_open_trades, 'max_open_trades');
      fail(intent.quantity >= market.minQty && intent.quantity * price >= market.minNotional, 'exchange minimums');
      fail(onStep(intent.quantity), 'quantity on the step');
      fail(args.confidence_score >= risk.min_confidence, 'min_confidence');
      fail(
        inp.lastStopOutTime === null || inp.now - inp.lastStopOutTime >= risk.cooldown_minutes * 60_000,
        'cooldown_minutes',
      );
      fail(distanceOk(liqDistance(side, price, intent.leverage)), 'liquidation distance >= k x ATR');
      const stop = intent.stopPrice;
      fail(
        stop !== null &&
          (side === 'long' ? stop < price : stop > price) &&
          Math.abs(
            ((side === 'long' ? stop - price : price - stop) / price) * intent.leverage - risk.emergency_stop_loss,
          ) < 1e-9,
        'protective stop at emergency_stop_loss',
      );
      if (!risk.allow_model_freedom) {
        // strict: nothing clamped — the model's leverage (when usable) and stake (when given) are what goes out
        const asked = args.leverage;
        if (Number.isFinite(asked) && asked >= 1)
          fail(intent.leverage === Math.floor(asked), 'strict mode kept the leverage');
        const stake = args.stake_amount;
        if (stake !== null && Number.isFinite(stake) && stake > 0) {
          const oneStep = (market.qtyStep * price) / intent.leverage;
          fail(le(intent.margin, stake) && le(stake - oneStep, intent.margin), 'strict mode kept the stake');
        }
      }
      break;
    }
    case 'increase': {
      fail(decision.tool === 'adjust_position' && decision.args.adjustment_pct > 0, 'increase only from adjust +');
      if (decision.tool !== 'adjust_position' || !pos) {
        fail(false, 'increase without a position');
        break;
      }
      fail(pos.adjustments < risk.max_adjustments_per_trade, 'max_adjustments_per_trade');
      fail(decision.args.confidence_score >= risk.min_confidence, 'min_confidence for an increase');
      fail(intent.side === pos.side && intent.leverage === pos.leverage, 'same side and leverage');
      fail(intent.leverage <= risk.max_leverage, 'max_leverage');
      fail(
        Math.abs(intent.margin - (intent.quantity * price) / intent.leverage) <= 1e-9 * intent.margin,
        'margin = notional / leverage',
      );
      fail(
        le(pos.margin + intent.margin, (risk.max_position_pct / 100) * equity),
        'max_position_pct after the increase',
      );
      fail(le(intent.margin + intent.quantity * price * feeRate, acct.available), 'available balance');
      const selfOnExchange = acct.positions.some((p) => p.pair === pos.pair);
      const existing = sumNotional + (selfOnExchange ? 0 : pos.quantity * price);
      fail(
        le(existing + intent.quantity * price, (risk.max_total_exposure_pct / 100) * equity),
        'max_total_exposure_pct',
      );
      fail(intent.quantity >= market.minQty && intent.quantity * price >= market.minNotional, 'exchange minimums');
      fail(onStep(intent.quantity), 'quantity on the step');
      const avg = (pos.quantity * pos.entryPrice + intent.quantity * price) / (pos.quantity + intent.quantity);
      fail(distanceOk(liqDistance(pos.side, avg, pos.leverage)), 'liquidation distance after the increase');
      fail(le(intent.margin, (decision.args.adjustment_pct / 100) * pos.margin), 'no more than asked');
      break;
    }
    case 'reduce': {
      if (decision.tool !== 'adjust_position' || !pos) {
        fail(false, 'reduce only from adjust_position on a position');
        break;
      }
      const pct = decision.args.adjustment_pct;
      fail(pct < 0 && pct > -100, 'reduce from a partial negative adjustment');
      fail(pos.adjustments < risk.max_adjustments_per_trade, 'max_adjustments_per_trade');
      fail(intent.side === pos.side, 'side');
      fail(le(intent.quantity, (-pct / 100) * pos.quantity) && intent.quantity < pos.quantity, 'no more than asked');
      fail(onStep(intent.quantity), 'quantity on the step');
      fail(
        intent.quantity >= market.minQty && intent.quantity * price >= market.minNotional,
        'exchange minimums of the order',
      );
      const rest = pos.quantity - intent.quantity;
      fail(rest >= market.minQty && rest * price >= market.minNotional, 'exchange minimums of the remainder');
      break;
    }
    case 'close': {
      fail(pos !== null, 'close without a position');
      if (!pos) break;
      fail(intent.quantity === pos.quantity && intent.side === pos.side, 'close the whole position');
      const byExit = decision.tool === 'signal_exit';
      const byReduce =
        decision.tool === 'adjust_position' &&
        decision.args.adjustment_pct < 0 &&
        pos.adjustments < risk.max_adjustments_per_trade;
      fail(byExit || byReduce, 'close only from an exit or a reduction');
      break;
    }
  }
  return broken;
}

describe('property: the risk gate never approves an order that breaks a limit', () => {
  test('10,000 generated decisions x account states', (t) => {
    const counts: Record<string, number> = {
      open: 0,
      increase: 0,
      reduce: 0,
      close: 0,
      rejected: 0,
      none: 0,
      clamped: 0,
    };
    fc.assert(
      fc.property(scenarioArb, (inp) => {
        const verdict = checkRisk(inp);
        if (verdict.status === 'approved') {
          counts[verdict.intent.kind]! += 1;
          if (verdict.notes.some((n) => n.includes('clamped'))) counts.clamped! += 1;
        } else counts[verdict.status]! += 1;
        const broken = brokenLimits(inp, verdict);
        if (broken.length > 0) throw new Error(`broken: ${broken.join(', ')}\nverdict: ${JSON.stringify(verdict)}`);
      }),
      { numRuns: 10_000, includeErrorInReport: true },
    );
    t.diagnostic(JSON.stringify(counts));
    // the run is not vacuous: every kind of approval, clamps and rejections all happened many times
    // (expected counts per 10,000: open ~650, increase ~200, reduce ~600, close ~1,000, clamped ~340)
    const floors: Record<string, number> = {
      open: 300,
      increase: 100,
      reduce: 300,
      close: 500,
      rejected: 2000,
      none: 1000,
      clamped: 150,
    };
    for (const [kind, floor] of Object.entries(floors)) {
      assert.ok(
        counts[kind]! >= floor,
        `expected at least ${floor} "${kind}" verdicts in 10,000 runs, got ${counts[kind]}`,
      );
    }
  });
});

describe('property: no protective exit is missed', () => {
  const protectiveArb = fc
    .record({
      side: fc.constantFrom<Side>('long', 'short'),
      entryPrice: logUniform(-2, 5),
      leverage: fc.integer({ min: 1, max: 125 }),
      mmr: fc.double({ min: 0.001, max: 0.1, noNaN: true }),
      liqKnown: fc.boolean(),
      emergency_stop_loss: fc.double({ min: -0.99, max: -0.001, noNaN: true }),
      liquidation_buffer: fc.double({ min: 0, max: 0.2, noNaN: true }),
      /** price move in units of 1/leverage, so stops and liquidations are reached often */
      move: fc.double({ min: -1.2, max: 1.2, noNaN: true }),
      candles: fc.array(
        fc.record({
          slot: fc.integer({ min: -2, max: 3 }),
          up: fc.double({ min: 0, max: 1, noNaN: true }),
          down: fc.double({ min: 0, max: 1, noNaN: true }),
        }),
        { maxLength: 4 },
      ),
      lastInSnapshot: fc.boolean(),
    })
    .map((g) => {
      const price = g.entryPrice * (1 + g.move / g.leverage);
      const entryTime = ASOF - 3 * TF_MS;
      const candles: Candle[] = g.candles.map((c) => {
        const high = price * (1 + (c.up * 0.8) / g.leverage);
        const low = price * (1 - (c.down * 0.8) / g.leverage);
        return {
          time: entryTime + c.slot * TF_MS,
          open: price,
          high,
          low: Math.max(low, price * 0.01),
          close: price,
          volume: 1,
        };
      });
      const liq =
        g.side === 'long' ? g.entryPrice * (1 - 1 / g.leverage + g.mmr) : g.entryPrice * (1 + 1 / g.leverage - g.mmr);
      const pos = position({
        side: g.side,
        entryPrice: g.entryPrice,
        leverage: g.leverage,
        quantity: 1,
        margin: g.entryPrice / g.leverage,
        entryTime,
        liquidationPrice: g.liqKnown ? liq : null,
      });
      const risk: RiskConfig = {
        ...RISK,
        emergency_stop_loss: g.emergency_stop_loss,
        liquidation_buffer: g.liquidation_buffer,
      };
      const last = candles.at(-1);
      const inSnapshot = g.lastInSnapshot && last ? [last] : [];
      const given = g.lastInSnapshot && last ? candles.slice(0, -1) : candles;
      return { pos, risk, price, candles, liq, inSnapshot, given, mmr: g.mmr };
    });

  test('10,000 generated positions and price paths', (t) => {
    let exits = 0;
    let stops = 0;
    fc.assert(
      fc.property(protectiveArb, ({ pos, risk, price, candles, liq, inSnapshot, given, mmr }) => {
        const result = protectiveExit({
          position: pos,
          snapshot: snapshot(price, null, inSnapshot),
          risk,
          candles: given,
          maintenanceMarginRate: mmr,
        });
        // prices seen since the entry: the current one and the extremes of candles still open after entryTime
        const seen = [price];
        for (const c of candles) if (c.time + TF_MS > pos.entryTime) seen.push(c.low, c.high);
        const lossAt = (p: number) =>
          ((pos.side === 'long' ? p - pos.entryPrice : pos.entryPrice - p) / pos.entryPrice) * pos.leverage;
        const gapAt = (p: number) => (pos.side === 'long' ? p - liq : liq - p);
        const tol = 1e-9;
        const stopSurely = seen.some((p) => lossAt(p) <= risk.emergency_stop_loss - tol);
        const bufferSurely = seen.some((p) => gapAt(p) <= risk.liquidation_buffer * p - tol * p);
        const stopMaybe = seen.some((p) => lossAt(p) <= risk.emergency_stop_loss + tol);
        const bufferMaybe = seen.some((p) => gapAt(p) <= risk.liquidation_buffer * p + tol * p);
        if (stopSurely || bufferSurely) {
          assert.ok(result, `missed exit: stop ${stopSurely}, buffer ${bufferSurely}`);
        }
        if (result) {
          exits += 1;
          assert.ok(stopMaybe || bufferMaybe, `spurious exit: ${result.detail}`);
          assert.equal(result.intent.kind, 'close');
          assert.equal(result.intent.quantity, pos.quantity);
          assert.equal(result.intent.side, pos.side);
          if (stopSurely) {
            stops += 1;
            assert.equal(result.reason, 'emergency_stop');
          }
        }
      }),
      { numRuns: 10_000, includeErrorInReport: true },
    );
    t.diagnostic(`exits ${exits}, emergency stops ${stops}`);
    assert.ok(exits >= 1000 && stops >= 500 && exits - stops >= 200, `too few exits exercised: ${exits} / ${stops}`);
  });
});
