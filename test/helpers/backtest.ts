/**
 * Fixtures for backtest tests: the recorded data of ../shared/data, configs, and test policies (a deliberately leaky
 * one for the look-ahead check, an adversarial one for the risk limits).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigSchema, type Config } from '../../src/core/config';
import type { DecisionContext } from '../../src/core/context-types';
import type { Decision, DecisionResult } from '../../src/core/types';
import type { DecisionEvent } from '../../src/backtest/engine';
import type { BacktestPolicy } from '../../src/backtest/policy';
import { RecordedMarketSource, csvRecordedData } from '../../src/exchange/market-source';
import { backtestLogLines } from '../../src/backtest/log-line';
import { expandDecisionLine } from '../../src/store/compact-decision-line';
import type { DecisionLine } from '../../src/store/journal';

export const DATA_DIR = path.resolve(process.cwd(), '../shared/data/binanceusdm');
export const MAIN_MS = 30 * 60_000;
export const DAY_MS = 24 * 3_600_000;

/** The 17 pairs of ../shared/data, sorted. */
export const ALL_PAIRS = [
  'ADA',
  'AVAX',
  'BCH',
  'BNB',
  'BTC',
  'DOGE',
  'DOT',
  'ETC',
  'ETH',
  'FIL',
  'LINK',
  'LTC',
  'SOL',
  'TRX',
  'UNI',
  'USDC',
  'XRP',
].map((b) => `${b}/USDT:USDT`);

export function recordedMarket(): RecordedMarketSource {
  return new RecordedMarketSource(csvRecordedData(DATA_DIR));
}

/** The documented defaults (config/paper.json) with `overrides` merged per section. */
export function testConfig(overrides: Record<string, unknown> = {}): Config {
  const base = ConfigSchema.parse({}) as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    merged[k] =
      v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...(base[k] as object), ...(v as object) } : v;
  }
  return ConfigSchema.parse(merged);
}

function result(decision: Decision, model: string): DecisionResult {
  return { decision, source: 'baseline', model, usage: { input: 0, output: 0 }, latencyMs: 0, problems: [] };
}

/**
 * A policy that PEEKS: it reads the market it is given (the backtest's whole recorded history, not asOf-bounded) and
 * trades on the close of the candle AFTER the decision time. Its results look great; the look-ahead check must catch
 * it.
 */
export function leakyPolicy(): BacktestPolicy {
  return {
    name: 'leaky',
    id: 'leaky-test-policy',
    context: 'light',
    remote: false,
    provider: (market) => ({
      name: 'leaky',
      async decide(ctx: DecisionContext) {
        const candles = await market.history(ctx.pair, '30m');
        const i = candles.findIndex((c) => c.time + MAIN_MS === ctx.asOf);
        const now = candles[i]!.close;
        const next = candles[i + 1]?.close ?? now;
        const up = next > now;
        const base = { pair: ctx.pair, confidence_score: 90, rsi_value: 50 };
        if (ctx.hasPosition) {
          const long = ctx.position!.side === 'long';
          return result(
            up === long
              ? { tool: 'signal_hold', args: { ...base, reason: 'the next candle goes my way' } }
              : { tool: 'signal_exit', args: { ...base, trade_score: 80, reason: 'the next candle goes against me' } },
            'leaky',
          );
        }
        const args = {
          ...base,
          leverage: 3,
          stake_amount: null,
          key_support: now * 0.99,
          key_resistance: now * 1.01,
          trend_strength: 'strong' as const,
          reason: up ? 'the next candle closes higher' : 'the next candle closes lower',
        };
        return result(up ? { tool: 'signal_entry_long', args } : { tool: 'signal_entry_short', args }, 'leaky');
      },
    }),
  };
}

/**
 * A policy that tries to break every limit. `extreme`: entries at leverage 125 with a stake of a billion USDT;
 * `edge`: entries just over and just under the limits of the risk tests (leverage 21 or 20, a stake of 2,600 or 400
 * USDT). Both: confidence 100, long or short by candle, +100 % adjustments for 4 candles, then holds, and an exit
 * after 8 candles. Reads only the context (no peeking).
 */
export function adversarialPolicy(mode: 'extreme' | 'edge'): BacktestPolicy {
  return {
    name: `adversarial-${mode}`,
    id: `adversarial-${mode}-test-policy`,
    context: 'light',
    remote: false,
    provider: () => ({
      name: 'adversarial',
      async decide(ctx: DecisionContext) {
        const price = ctx.snapshot.price;
        const base = { pair: ctx.pair, confidence_score: 100 };
        if (ctx.position) {
          const held = (ctx.asOf - ctx.position.entryTime) / MAIN_MS;
          if (held < 4) {
            return result(
              {
                tool: 'adjust_position',
                args: {
                  ...base,
                  adjustment_pct: 100,
                  key_support: price * 0.9,
                  key_resistance: price * 1.1,
                  reason: 'double it',
                },
              },
              'adversarial',
            );
          }
          if (held >= 8) {
            return result(
              { tool: 'signal_exit', args: { ...base, rsi_value: 50, trade_score: 50, reason: 'time is up' } },
              'adversarial',
            );
          }
          return result({ tool: 'signal_hold', args: { ...base, rsi_value: 50, reason: 'wait' } }, 'adversarial');
        }
        const k = Math.floor(ctx.asOf / MAIN_MS);
        const args = {
          ...base,
          leverage: mode === 'extreme' ? 125 : k % 3 === 0 ? 21 : 20,
          stake_amount: mode === 'extreme' ? 1e9 : k % 2 === 0 ? 2_600 : 400,
          rsi_value: 50,
          key_support: price * 0.9,
          key_resistance: price * 1.1,
          trend_strength: 'strong' as const,
          reason: 'all in',
        };
        return result(
          k % 2 === 0 ? { tool: 'signal_entry_long', args } : { tool: 'signal_entry_short', args },
          'adversarial',
        );
      },
    }),
  };
}

/** The lines of a backtest's decision log (`<out>/llm_decisions.jsonl`), each expanded to the journal's full line. */
export function readBacktestLog(file: string): DecisionLine[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => expandDecisionLine(JSON.parse(l) as Record<string, unknown>));
}

/** Collects the decisions of a run as `llm_decisions.jsonl` lines (the CLI's format) and writes them to `file`. */
export class DecisionLogRecorder {
  private readonly lines: string[] = [];
  private readonly line = backtestLogLines();

  readonly onDecision = (pair: string, event: DecisionEvent, runId: string): void => {
    this.lines.push(this.line(runId, pair, event));
  };

  write(file: string): void {
    writeFileSync(file, this.lines.map((l) => `${l}\n`).join(''));
  }
}
