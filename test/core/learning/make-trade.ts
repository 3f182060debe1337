import type { ClosedTrade } from '../../../src/core/types';

export const HOUR = 3_600_000;
/** Monday 2025-01-06 00:00 UTC */
export const DAY0 = Date.UTC(2025, 0, 6);

/**
 * A closed trade for tests: BTC long 10x on 200 USDT margin, entered 08:00 UTC, held 5h 30m, +6.2 % of margin.
 * When `pnlPct` is overridden and `pnl` is not, `pnl` follows as pnlPct x margin / 100 so the two stay consistent.
 */
export function makeTrade(overrides: Partial<ClosedTrade> = {}): ClosedTrade {
  const margin = overrides.margin ?? 200;
  const pnlPct = overrides.pnlPct ?? 6.2;
  const entryTime = overrides.entryTime ?? DAY0 + 8 * HOUR;
  return {
    tradeId: 'trade-1',
    pair: 'BTC/USDT:USDT',
    side: 'long',
    entryTime,
    exitTime: entryTime + 5.5 * HOUR,
    entryPrice: 100_000,
    exitPrice: 100_620,
    quantity: 0.02,
    leverage: 10,
    notional: 2000,
    fees: 0,
    funding: 0,
    exitReason: 'model',
    mfePct: 9.1,
    maePct: -2.3,
    holds: 9,
    adjustments: 1,
    entryReason: 'breakout above resistance with rising volume',
    exitText: 'target reached',
    tradeScore: 78,
    entryConfidence: 70,
    clientOrderIds: [],
    ...overrides,
    margin,
    pnlPct,
    pnl: overrides.pnl ?? (pnlPct * margin) / 100,
  };
}
