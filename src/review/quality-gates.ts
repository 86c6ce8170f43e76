import { pct, points } from './diff-table.ts';
import type { ReviewNumbers } from './review-numbers.ts';

/**
 * Quality gates promote checks before publishing (variables MAX_MEAN_ERROR and MAX_REGRESSION,
 * both in percent / percentage points of |relative error|, off unless set). A failed gate is one
 * line with the numbers; promote refuses unless FORCE=1, and then records the lines in the
 * registry entry (`quality_override`), so a forced release says what it was forced past.
 */
export interface QualityGates {
  /** Largest mean |relative error| a fit may have, as a fraction (0.25 = 25%). */
  maxMeanError?: number;
  /** Largest rise of a fit's mean |relative error| against the current version, as a fraction (0.02 = 2 points). */
  maxRegression?: number;
}

/** A gate as the user wrote it (0.25 -> `25`). */
const asGiven = (fraction: number): string => String(Number((fraction * 100).toFixed(6)));

/** Every gate the review fails, one line each (empty: all pass). */
export function gateFailures(n: ReviewNumbers, gates: QualityGates): string[] {
  const out: string[] = [];
  for (const f of n.fits) {
    if (gates.maxMeanError !== undefined) {
      if (!f.run) out.push(`${f.fit} fit: no diagnostics, so MAX_MEAN_ERROR=${asGiven(gates.maxMeanError)} cannot be checked`);
      else if (!(f.run.mean <= gates.maxMeanError)) out.push(`${f.fit} fit: mean error ${pct(f.run.mean)} exceeds MAX_MEAN_ERROR=${asGiven(gates.maxMeanError)} (${f.run.over10} of ${f.run.achievable} targets more than 10% off)`);
    }
    if (gates.maxRegression !== undefined && n.base !== null) {
      if (!f.run || !f.base) out.push(`${f.fit} fit: ${f.run ? n.base : n.run} has no diagnostics, so MAX_REGRESSION=${asGiven(gates.maxRegression)} cannot be checked`);
      else if (f.run.mean - f.base.mean > gates.maxRegression) {
        out.push(`${f.fit} fit: mean error ${pct(f.run.mean)} vs ${pct(f.base.mean)} in ${n.base} (${points(f.run.mean - f.base.mean)}) exceeds MAX_REGRESSION=${asGiven(gates.maxRegression)}${f.changes ? `; ${f.changes.worse} targets worse by more than ${(n.threshold * 100).toFixed(1)} pt` : ''}`);
      }
    }
  }
  return out;
}
