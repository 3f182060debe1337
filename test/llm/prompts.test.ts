import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RiskConfigSchema } from '../../src/core/config';
import { entrySystemPrompt, positionSystemPrompt } from '../../src/llm/prompts';

const risk = RiskConfigSchema.parse({
  max_leverage: 7,
  default_leverage: 3,
  max_position_pct: 12.5,
  default_stake_pct: 5,
  max_total_exposure_pct: 150,
  max_open_trades: 2,
  min_confidence: 65,
  cooldown_minutes: 90,
  liquidation_atr_multiple: 2.5,
  max_adjustments_per_trade: 1,
  allow_model_freedom: true,
  emergency_stop_loss: -0.08,
  liquidation_buffer: 0.02,
});

describe('system prompts state the configured limits', () => {
  test('entry prompt', () => {
    const p = entrySystemPrompt(risk, '15m');
    for (const fragment of [
      'Leverage <= 7x',
      'margin <= 12.5% of equity',
      'stake_amount null: 5%',
      'total notional of open positions <= 150% of equity',
      'at most 2 open positions',
      'confidence_score < 65',
      'within 90 min after a stop-out',
      'within 2.5 x ATR14 (15m)',
      'leveraged loss of 8% of margin',
      'within 2% of its liquidation price',
      'reduced to fit',
      'Every tool call is final',
      'signal_entry_long',
      'signal_entry_short',
      'signal_wait',
      '"n/a" = not available',
      'CSV with a header line',
      'Omitted to fit the token budget',
    ]) {
      assert.ok(p.includes(fragment), `entry prompt lacks "${fragment}":\n${p}`);
    }
    assert.ok(!p.includes('adjust_position'), 'entry prompt offers a position tool');
  });

  test('position prompt', () => {
    const p = positionSystemPrompt(risk, '15m');
    for (const fragment of [
      'At most 1 adjustment per trade',
      'confidence_score >= 65',
      'position margin <= 12.5% of equity',
      '<= 150% of equity',
      'within 2.5 x ATR14 (15m)',
      'leveraged loss of 8% of margin',
      'signal_hold',
      'adjust_position',
      'signal_exit',
      'trade_score',
      'Decision-quality warnings',
      'Every tool call is final',
      '"n/a" = not available',
    ]) {
      assert.ok(p.includes(fragment), `position prompt lacks "${fragment}":\n${p}`);
    }
  });

  test('allow_model_freedom false says limits reject instead of clamp', () => {
    const strict = { ...risk, allow_model_freedom: false };
    for (const p of [entrySystemPrompt(strict, '30m'), positionSystemPrompt(strict, '30m')]) {
      assert.ok(p.includes('is rejected, not reduced'), p);
      assert.ok(!p.includes('reduced to fit'), p);
    }
  });

  test('disabled rules are not announced', () => {
    const off = { ...risk, cooldown_minutes: 0, liquidation_atr_multiple: 0, liquidation_buffer: 0 };
    const p = entrySystemPrompt(off, '30m');
    assert.ok(!p.includes('stop-out'), p);
    assert.ok(!p.includes('ATR14'), p);
    assert.ok(!p.includes('liquidation price'), p);
    assert.ok(!positionSystemPrompt(off, '30m').includes('ATR14'));
  });
});
