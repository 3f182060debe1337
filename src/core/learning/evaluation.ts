/**
 * Trade evaluation: four component scores (0..100) combined with the original's weights into a total (0..100)
 * and a letter grade. Every formula is stated here so the README can quote it. Pure.
 *
 * Units: `pnlPct`, `mfePct`, `maePct` are leveraged percentages of margin; adverse = -maePct (>= 0);
 * hours = (exitTime - entryTime) / 3 600 000. clamp(x) = min(100, max(0, x)).
 *
 * | component  | weight | formula |
 * |------------|--------|---------|
 * | profit     | 0.35   | clamp(50 + 5 x pnlPct)  (-10 % of margin → 0, breakeven → 50, +10 % → 100) |
 * | risk       | 0.25   | 0 if liquidated, else clamp(100 - min(60, 4 x adverse) - min(40, 2 x max(0, leverage - 5)) - 30 if a protective exit fired) |
 * | timing     | 0.20   | 100 x mfePct / (mfePct + adverse); 50 when both are 0 |
 * | efficiency | 0.20   | 0.5 x kept + 0.5 x pace, kept = clamp(100 x pnlPct / mfePct) (0 when mfePct = 0), pace = clamp(50 + 25 x pnlPct / max(hours, 0.5)) |
 *
 * total = 0.35 x profit + 0.25 x risk + 0.20 x timing + 0.20 x efficiency; the grade is the first row of
 * {@link GRADE_CUTOFFS} whose `min` the total reaches.
 */
import type { ClosedTrade } from '../types';
import { assertReviewableTrade, isProtectiveExit } from './review';

/** Component weights (the original's); they sum to 1. */
export const EVALUATION_WEIGHTS = { profit: 0.35, risk: 0.25, timing: 0.2, efficiency: 0.2 } as const;

/** The constants of the component formulas (see the module comment). */
export const EVALUATION_FORMULA = {
  /** profit: points per % of margin around 50 */
  profitPointsPerPct: 5,
  /** risk: points per % of margin of adverse excursion, and the cap of that penalty */
  riskPointsPerAdversePct: 4,
  riskAdverseCap: 60,
  /** risk: leverage up to this is free; points per x above it, and the cap */
  riskFreeLeverage: 5,
  riskPointsPerLeverage: 2,
  riskLeverageCap: 40,
  /** risk: penalty when an emergency stop, exchange stop or liquidation buffer closed the trade */
  riskProtectivePenalty: 30,
  /** efficiency: pace points per (% of margin per hour) around 50, and the shortest duration counted (hours) */
  pacePointsPerPctPerHour: 25,
  paceMinHours: 0.5,
} as const;

export type Grade = 'A+' | 'A' | 'A-' | 'B+' | 'B' | 'B-' | 'C+' | 'C' | 'C-' | 'D' | 'F';

/** Grade cut-offs on the total (0..100), best first: a total gets the first grade whose `min` it reaches. */
export const GRADE_CUTOFFS: readonly { grade: Grade; min: number }[] = [
  { grade: 'A+', min: 95 },
  { grade: 'A', min: 90 },
  { grade: 'A-', min: 85 },
  { grade: 'B+', min: 80 },
  { grade: 'B', min: 75 },
  { grade: 'B-', min: 70 },
  { grade: 'C+', min: 65 },
  { grade: 'C', min: 60 },
  { grade: 'C-', min: 55 },
  { grade: 'D', min: 45 },
  { grade: 'F', min: 0 },
];

export interface EvaluationScores {
  profit: number;
  risk: number;
  timing: number;
  efficiency: number;
}

export interface TradeEvaluation {
  /** component scores, each 0..100 */
  scores: EvaluationScores;
  /** weighted total, 0..100 (not rounded) */
  total: number;
  grade: Grade;
  /** e.g. "Grade B (76.3/100): profit 81, risk 70, timing 85, efficiency 62." */
  summary: string;
}

const HOUR_MS = 3_600_000;

function clamp100(x: number): number {
  return Math.min(100, Math.max(0, x));
}

/** The letter grade of a total (0..100). Throws a RangeError for a non-finite total. */
export function gradeFor(total: number): Grade {
  if (!Number.isFinite(total)) throw new RangeError(`gradeFor: total must be a finite number in 0..100, got ${total}`);
  for (const { grade, min } of GRADE_CUTOFFS) if (total >= min) return grade;
  return 'F';
}

/** Profit score (0..100) from the leveraged net PnL %. */
export function profitScore(pnlPct: number): number {
  return clamp100(50 + EVALUATION_FORMULA.profitPointsPerPct * pnlPct);
}

/** Risk score (0..100) from the adverse excursion, the leverage and the exit reason. */
export function riskScore(trade: Pick<ClosedTrade, 'maePct' | 'leverage' | 'exitReason'>): number {
  if (trade.exitReason === 'liquidation') return 0;
  const f = EVALUATION_FORMULA;
  const adverse = Math.max(0, -trade.maePct);
  const maePenalty = Math.min(f.riskAdverseCap, f.riskPointsPerAdversePct * adverse);
  const leveragePenalty = Math.min(
    f.riskLeverageCap,
    f.riskPointsPerLeverage * Math.max(0, trade.leverage - f.riskFreeLeverage),
  );
  const protectivePenalty = isProtectiveExit(trade.exitReason) ? f.riskProtectivePenalty : 0;
  return clamp100(100 - maePenalty - leveragePenalty - protectivePenalty);
}

/** Timing score (0..100): the favourable share of the total excursion; 50 when the price never moved. */
export function timingScore(mfePct: number, maePct: number): number {
  const favourable = Math.max(0, mfePct);
  const adverse = Math.max(0, -maePct);
  if (favourable + adverse === 0) return 50;
  // clamped: with tiny excursions floating point can land a hair above 100
  return clamp100((100 * favourable) / (favourable + adverse));
}

/** Efficiency score (0..100): half share of the peak kept, half PnL pace per hour held. */
export function efficiencyScore(trade: Pick<ClosedTrade, 'pnlPct' | 'mfePct' | 'entryTime' | 'exitTime'>): number {
  const f = EVALUATION_FORMULA;
  const kept = trade.mfePct > 0 ? clamp100((100 * trade.pnlPct) / trade.mfePct) : 0;
  const hours = Math.max((trade.exitTime - trade.entryTime) / HOUR_MS, f.paceMinHours);
  const pace = clamp100(50 + (f.pacePointsPerPctPerHour * trade.pnlPct) / hours);
  return 0.5 * kept + 0.5 * pace;
}

/** Evaluates a closed trade (formulas in the module comment). Throws when the trade record is inconsistent. */
export function evaluateTrade(trade: ClosedTrade): TradeEvaluation {
  assertReviewableTrade(trade, 'evaluateTrade');
  const scores: EvaluationScores = {
    profit: profitScore(trade.pnlPct),
    risk: riskScore(trade),
    timing: timingScore(trade.mfePct, trade.maePct),
    efficiency: efficiencyScore(trade),
  };
  const w = EVALUATION_WEIGHTS;
  const total =
    w.profit * scores.profit + w.risk * scores.risk + w.timing * scores.timing + w.efficiency * scores.efficiency;
  const grade = gradeFor(total);
  const summary =
    `Grade ${grade} (${total.toFixed(1)}/100): profit ${Math.round(scores.profit)}, risk ${Math.round(scores.risk)}, ` +
    `timing ${Math.round(scores.timing)}, efficiency ${Math.round(scores.efficiency)}.`;
  return { scores, total, grade, summary };
}
