/**
 * Backtest metrics: pure functions over an equity series and closed trades. No I/O, no clock.
 *
 * Conventions
 * - An equity series is a list of account values in USDT, oldest first, one per decision time; the backtester puts the
 *   starting balance first, so the first return is the one of the first decision time.
 * - Step returns are simple returns between consecutive values: r_i = v_i / v_(i-1) - 1.
 * - Sharpe = mean(r) / sd(r) × sqrt(P), with sd the SAMPLE standard deviation (n - 1) and a risk-free rate of 0.
 * - Sortino = mean(r) / dd(r) × sqrt(P), with the downside deviation dd = sqrt(Σ min(r_i, 0)² / n) over ALL n returns
 *   (target return 0).
 * - P = periods per year = 365 days / the step length (crypto trades every day): 17,520 for 30-minute steps.
 * - Percentages are percents (12.5 = 12.5 %); a figure that is undefined (no trades, no losing trade, no variance) is
 *   null, never 0 or Infinity, so it survives JSON unchanged.
 */

const YEAR_MS = 365 * 24 * 3_600_000;

/** Periods per year for steps of `stepMs` milliseconds (365-day year): 17,520 for 30 minutes. */
export function periodsPerYear(stepMs: number): number {
  if (!(stepMs > 0)) throw new Error(`periodsPerYear: the step must be a positive number of ms, got ${stepMs}`);
  return YEAR_MS / stepMs;
}

/** Simple returns between consecutive values (length n - 1; empty for fewer than 2 values). */
export function stepReturns(values: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < values.length; i++) out.push(values[i]! / values[i - 1]! - 1);
  return out;
}

/** (last / first - 1) × 100; 0 for fewer than 2 values. */
export function totalReturnPct(values: readonly number[]): number {
  if (values.length < 2) return 0;
  return (values[values.length - 1]! / values[0]! - 1) * 100;
}

/**
 * Drawdown at each point, in percent below the running peak (0 at a new high, 25 = 25 % below the best value so far).
 * Same length as `values`.
 */
export function drawdownSeries(values: readonly number[]): number[] {
  const out = new Array<number>(values.length);
  let peak = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v > peak) peak = v;
    out[i] = peak > 0 ? ((peak - v) / peak) * 100 : 0;
  }
  return out;
}

/** The largest drawdown of the series, percent of the peak it fell from (>= 0; 0 for a series that never falls). */
export function maxDrawdownPct(values: readonly number[]): number {
  let worst = 0;
  for (const d of drawdownSeries(values)) if (d > worst) worst = d;
  return worst;
}

function mean(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/**
 * Annualised Sharpe ratio of step returns (see the module comment). Null with fewer than 2 returns or when every
 * return is the same (no variance).
 */
export function sharpeRatio(returns: readonly number[], periods: number): number | null {
  const n = returns.length;
  if (n < 2) return null;
  const m = mean(returns);
  let ss = 0;
  for (const r of returns) ss += (r - m) * (r - m);
  const sd = Math.sqrt(ss / (n - 1));
  if (!(sd > 0)) return null;
  return (m / sd) * Math.sqrt(periods);
}

/**
 * Annualised Sortino ratio of step returns (see the module comment). Null with fewer than 2 returns or when no return
 * is negative (the downside deviation is 0).
 */
export function sortinoRatio(returns: readonly number[], periods: number): number | null {
  const n = returns.length;
  if (n < 2) return null;
  let down = 0;
  for (const r of returns) if (r < 0) down += r * r;
  if (!(down > 0)) return null;
  return (mean(returns) / Math.sqrt(down / n)) * Math.sqrt(periods);
}

/** Share of `flags` that are true, in percent; 0 for an empty list. */
export function sharePct(flags: readonly boolean[]): number {
  if (flags.length === 0) return 0;
  let k = 0;
  for (const f of flags) if (f) k++;
  return (k / flags.length) * 100;
}

export interface TradeStats {
  trades: number;
  /** trades with net PnL > 0 */
  wins: number;
  /** trades with net PnL < 0 (a trade at exactly 0 is neither) */
  losses: number;
  /** wins / trades × 100; null without trades */
  winRatePct: number | null;
  /** Σ positive PnL, USDT */
  grossProfit: number;
  /** Σ |negative PnL|, USDT */
  grossLoss: number;
  /** grossProfit / grossLoss; null when there is no losing trade */
  profitFactor: number | null;
  /** mean net PnL per trade, USDT; null without trades */
  averagePnl: number | null;
  /** mean net PnL per trade in percent of its margin; null without trades */
  averagePnlPct: number | null;
}

/** Win rate, profit factor and averages of closed trades (net PnL after fees and funding). */
export function tradeStats(trades: readonly { pnl: number; pnlPct: number }[]): TradeStats {
  let wins = 0;
  let losses = 0;
  let grossProfit = 0;
  let grossLoss = 0;
  let pnlSum = 0;
  let pctSum = 0;
  for (const t of trades) {
    if (t.pnl > 0) {
      wins++;
      grossProfit += t.pnl;
    } else if (t.pnl < 0) {
      losses++;
      grossLoss -= t.pnl;
    }
    pnlSum += t.pnl;
    pctSum += t.pnlPct;
  }
  const n = trades.length;
  return {
    trades: n,
    wins,
    losses,
    winRatePct: n > 0 ? (wins / n) * 100 : null,
    grossProfit,
    grossLoss,
    profitFactor: grossLoss > 0 ? grossProfit / grossLoss : null,
    averagePnl: n > 0 ? pnlSum / n : null,
    averagePnlPct: n > 0 ? pctSum / n : null,
  };
}

/**
 * Equity series of buying at the first close and holding to the last, 1x, no funding (spot-like), with the costs of
 * the paper exchange: the buy fills at close_0 × (1 + slippage) and pays `fee` of its notional, so
 * quantity = balance / (close_0 × (1 + slippage) × (1 + fee)); each intermediate point is quantity × close_i (marked
 * to market); the last point sells at close_last × (1 - slippage) and pays the fee:
 * quantity × close_last × (1 - slippage) × (1 - fee). The first point is the balance itself (before the buy), so
 * the series has closes.length + 1 values, like the backtester's equity series.
 * @throws Error when a close is not a positive number or there is no close
 */
export function buyAndHoldEquity(
  closes: readonly number[],
  costs: { startingBalance: number; fee: number; slippage: number },
): number[] {
  if (closes.length === 0) throw new Error('buyAndHoldEquity: no closes');
  for (const c of closes) {
    if (!(c > 0) || !Number.isFinite(c)) throw new Error(`buyAndHoldEquity: close ${c} is not a positive price`);
  }
  const { startingBalance, fee, slippage } = costs;
  const quantity = startingBalance / (closes[0]! * (1 + slippage) * (1 + fee));
  const out = [startingBalance];
  for (let i = 0; i < closes.length - 1; i++) out.push(quantity * closes[i]!);
  out.push(quantity * closes[closes.length - 1]! * (1 - slippage) * (1 - fee));
  return out;
}
