/**
 * Fixtures for LLM provider tests: a small decision context (hand-made snapshot and position), an LLM config pointing
 * at a scripted server, and valid tool arguments.
 */
import { LlmConfigSchema, type LlmConfig } from '../../src/core/config';
import type { DecisionContext } from '../../src/core/context-types';
import { allowedTools, toolDefinitions } from '../../src/core/tools';
import type { EntryArgs, HoldArgs, IndicatorValues, MarketSnapshot, PositionState } from '../../src/core/types';

/** A recognisable fake key: it must never show up in results, errors or cache files. */
export const FAKE_API_KEY = 'sk-test-SECRET-1234567890abcdefghij';

export const PAIR = 'BTC/USDT:USDT';
/** 2024-01-01T00:30:00Z, the close of the 00:00 30m candle */
export const AS_OF = Date.UTC(2024, 0, 1, 0, 30);
export const RSI = 47.5;

function indicators(rsi: number | null): IndicatorValues {
  return {
    ema20: 42_100,
    ema50: 41_900,
    ema100: null,
    rsi14: rsi,
    macd: 12.5,
    macdSignal: 10,
    macdHist: 2.5,
    bbUpper: 42_600,
    bbMiddle: 42_100,
    bbLower: 41_600,
    atr14: 210,
    adx14: 22,
    mfi14: 55,
    obv: 1_000,
  };
}

export function snapshot(rsi: number | null = RSI): MarketSnapshot {
  return {
    pair: PAIR,
    asOf: AS_OF,
    mainTimeframe: '30m',
    price: 42_150,
    timeframes: {
      '30m': {
        timeframe: '30m',
        lastCandleTime: AS_OF - 30 * 60_000,
        close: 42_150,
        changePct: 0.12,
        indicators: indicators(rsi),
        tails: {
          close: [42_100, 42_150],
          volume: [10, 12],
          rsi14: [46, rsi],
          macd: [11, 12.5],
          macdHist: [2, 2.5],
          ema20: [42_090, 42_100],
          ema50: [41_890, 41_900],
          adx14: [21, 22],
        },
        candles: [],
      },
    },
    funding: { rate: 0.0001, time: AS_OF - 8 * 3_600_000 },
  };
}

export function position(): PositionState {
  return {
    tradeId: 'BTC-1',
    pair: PAIR,
    side: 'long',
    entryTime: AS_OF - 3 * 3_600_000,
    entryPrice: 41_800,
    quantity: 0.1,
    leverage: 5,
    margin: 836,
    maxQuantity: 0.1,
    maxMargin: 836,
    fees: 2.09,
    funding: 0,
    realizedPnl: 0,
    liquidationPrice: 33_650,
    entryReason: 'trend continuation',
    entryConfidence: 70,
    entryMarket: { price: 41_800, atr14: 200, rsi14: 55, ema20: 41_700, ema50: 41_500, macdHist: 1, adx14: 21 },
    adjustments: 0,
    holds: 2,
    highestPrice: 42_300,
    lowestPrice: 41_700,
    mfePct: 5.98,
    maePct: -1.2,
    lastPnlPct: 4.19,
    clientOrderIds: ['c1'],
  };
}

/** A decision context; `variant` changes the user message so that contexts differ (for cache tests). */
export function decisionContext(
  opts: { hasPosition?: boolean; rsi?: number | null; variant?: string } = {},
): DecisionContext {
  const hasPosition = opts.hasPosition ?? false;
  const names = allowedTools(hasPosition);
  return {
    pair: PAIR,
    asOf: AS_OF,
    hasPosition,
    allowedTools: names,
    messages: [
      { role: 'system', content: 'You trade BTC/USDT:USDT perpetual futures. Call exactly one tool.' },
      {
        role: 'user',
        content:
          `Price 42150, RSI14 ${opts.rsi === undefined ? RSI : (opts.rsi ?? 'n/a')}. ${hasPosition ? 'Open long 5x.' : 'Flat.'} ${opts.variant ?? ''}`.trim(),
      },
    ],
    tools: toolDefinitions(names),
    tokens: null,
    snapshot: snapshot(opts.rsi === undefined ? RSI : opts.rsi),
    position: hasPosition ? position() : null,
  };
}

/** An LLM config for a scripted server: short timeout, one retry, the fake key. */
export function llmConfig(apiBase: string, overrides: Partial<LlmConfig> = {}): LlmConfig {
  return LlmConfigSchema.parse({
    provider: 'openai',
    api_base: apiBase,
    api_key: FAKE_API_KEY,
    model: 'test-model',
    temperature: 0.2,
    max_tokens: 800,
    timeout: 2,
    retry_times: 1,
    ...overrides,
  });
}

export const WAIT_ARGS: HoldArgs = {
  pair: PAIR,
  confidence_score: 64,
  rsi_value: RSI,
  reason: 'No clean setup: price sits between the Bollinger middle and upper band.',
};

export const HOLD_ARGS: HoldArgs = {
  pair: PAIR,
  confidence_score: 70,
  rsi_value: RSI,
  reason: 'Trend intact above EMA50; exit below 41600.',
};

export const LONG_ARGS: EntryArgs = {
  pair: PAIR,
  leverage: 5,
  stake_amount: 200,
  confidence_score: 72,
  key_support: 41_600,
  key_resistance: 42_800,
  rsi_value: RSI,
  trend_strength: 'medium',
  reason: 'EMA20 above EMA50 with rising MACD histogram; invalidation below 41600.',
};
