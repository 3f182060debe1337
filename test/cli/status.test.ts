import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { initialPairState } from '../../src/core/cycle';
import type { PositionState } from '../../src/core/types';
import { statusTable, type PairReport } from '../../src/cli/commands/status';
import type { PairStatus } from '../../src/workflows/messages';

const NOW = Date.UTC(2025, 5, 10, 12, 0, 0);

function status(overrides: Partial<PairStatus>): PairStatus {
  const state = initialPairState('BTC/USDT:USDT');
  return {
    pair: 'BTC/USDT:USDT',
    mode: 'paper',
    paused: false,
    stopRequested: false,
    forceExitPending: false,
    position: null,
    lastDecision: null,
    nextWakeTime: null,
    nextDecisionAsOf: null,
    lastCycleAsOf: null,
    counters: { ...state.counters, cycles: 12, tokensIn: 1000, tokensOut: 234 },
    run: 2,
    cyclesThisRun: 3,
    ...overrides,
  };
}

function report(
  pair: string,
  s: PairStatus | null,
  state: PairReport['state'] = 'running',
  detail: string | null = null,
): PairReport {
  return {
    pair,
    workflowId: `pair:binanceusdm:${pair}`,
    state,
    executionStatus: s ? 'RUNNING' : null,
    closeTime: null,
    status: s,
    detail,
  };
}

/** The cells of a table line (columns are separated by two or more spaces). */
function cells(line: string): string[] {
  return line.trim().split(/\s{2,}/);
}

describe('status table', () => {
  test('one row per pair: position, PnL, last action, next close and wake-up, counters', () => {
    const position = {
      side: 'long',
      quantity: 0.015,
      entryPrice: 65_000.5,
      leverage: 5,
      lastPnlPct: 3.456,
    } as PositionState;
    const table = statusTable(
      [
        report(
          'BTC/USDT:USDT',
          status({
            position,
            paused: true,
            lastDecision: {
              time: NOW - 1_800_000,
              tool: 'signal_hold',
              reason: 'trend intact',
              pnlPct: 3.4,
              confidence: 70,
              source: 'baseline',
              outcome: 'none',
              detail: null,
            },
            nextDecisionAsOf: Date.UTC(2025, 5, 10, 12, 30),
            nextWakeTime: NOW + 4 * 60_000 + 12_000,
          }),
        ),
        report(
          'ETH/USDT:USDT',
          null,
          'not-started',
          'no workflow pair:binanceusdm:ETH/USDT:USDT: start it with `llm-trader start`',
        ),
      ],
      NOW,
    );
    const lines = table.split('\n');
    assert.deepEqual(cells(lines[0]!), [
      'pair',
      'mode',
      'state',
      'position',
      'PnL %',
      'last action',
      'next close',
      'next wake',
      'cycles',
      'tokens',
      'run',
    ]);
    assert.deepEqual(cells(lines[1]!), [
      'BTC/USDT:USDT',
      'paper',
      'paused',
      'long 0.015 @ 65000.5 x5',
      '+3.46',
      'signal_hold',
      '2025-06-10 12:30Z',
      'in 4m 12s',
      '12',
      '1234', // 1000 in + 234 out
      '2',
    ]);
    assert.deepEqual(cells(lines[2]!).slice(0, 3), ['ETH/USDT:USDT', '-', 'not-started']);
    assert.match(table, /ETH\/USDT:USDT: no workflow pair:binanceusdm:ETH\/USDT:USDT: start it/);
  });

  test('a rejected last action shows its outcome; a wake-up long past shows as overdue', () => {
    const table = statusTable(
      [
        report(
          'BTC/USDT:USDT',
          status({
            lastDecision: {
              time: NOW,
              tool: 'signal_entry_long',
              reason: 'x',
              pnlPct: null,
              confidence: 40,
              source: 'baseline',
              outcome: 'rejected',
              detail: 'confidence below 60',
            },
            nextDecisionAsOf: NOW - 600_000,
            nextWakeTime: NOW - 5 * 60_000,
          }),
        ),
      ],
      NOW,
    );
    const row = cells(table.split('\n')[1]!);
    assert.equal(row[3], 'flat');
    assert.equal(row[4], '-');
    assert.equal(row[5], 'signal_entry_long (rejected)');
    assert.equal(row[7], 'overdue 5m 0s');
  });
});
