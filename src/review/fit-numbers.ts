import type { TargetError } from './diagnostics.ts';
import { LEVELS, type Level } from './geography.ts';

/**
 * The numbers a reviewer judges a fit by, from its per-target diagnostics: how far off the
 * targets are (mean, median, 90th percentile, worst, how many are more than 10% off), per
 * geography level, and per target against the version in production. Errors are fractions
 * (0.1 = 10%), |relative error| over achievable targets only, as the real pipeline's own summary
 * (`mean_error_pct` in unified_run_config.json) counts them.
 */

/** Summary of |relative error| over a set of targets. */
export interface ErrorStats {
  targets: number;
  /** Targets any record can move; the statistics below are over these. */
  achievable: number;
  mean: number;
  median: number;
  p90: number;
  worst: { name: string; relError: number } | null;
  /** Achievable targets more than 10% off. */
  over10: number;
}

/** The q-quantile of sorted values (linear interpolation, as numpy's default). */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/** Error statistics of a set of targets. */
export function errorStats(targets: readonly TargetError[]): ErrorStats {
  const achievable = targets.filter((t) => t.achievable);
  const errors = achievable.map((t) => Math.abs(t.relError)).sort((a, b) => a - b);
  let worst: ErrorStats['worst'] = null;
  for (const t of achievable) if (!worst || Math.abs(t.relError) > Math.abs(worst.relError)) worst = { name: t.name, relError: t.relError };
  return {
    targets: targets.length,
    achievable: achievable.length,
    mean: errors.length ? errors.reduce((s, e) => s + e, 0) / errors.length : Number.NaN,
    median: quantile(errors, 0.5),
    p90: quantile(errors, 0.9),
    worst,
    over10: errors.filter((e) => e > 0.1).length,
  };
}

/** Error statistics per geography level present, coarsest first. */
export function statsByLevel(targets: readonly TargetError[]): Array<{ level: Level; stats: ErrorStats }> {
  return LEVELS.map((level) => ({ level, stats: errorStats(targets.filter((t) => t.level === level)) })).filter((l) => l.stats.targets > 0);
}

/** One target of the run beside the same target in the version it is compared with. */
export interface TargetChange {
  target: TargetError;
  base?: TargetError;
  /** |rel error| now minus |rel error| before (positive: worse); absent when the target is new. */
  change?: number;
}

/** Joins the run's targets with the base's by name. */
export function compareTargets(run: readonly TargetError[], base: readonly TargetError[] | null): TargetChange[] {
  const before = new Map((base ?? []).map((t) => [t.name, t]));
  return run.map((target) => {
    const b = before.get(target.name);
    return b ? { target, base: b, change: Math.abs(target.relError) - Math.abs(b.relError) } : { target };
  });
}

/** How the targets moved against the base. */
export interface ChangeSummary {
  /** Targets in both. */
  compared: number;
  /** Achievable targets whose |rel error| grew by more than `threshold`. */
  worse: number;
  /** ... or shrank by more than `threshold`. */
  better: number;
  /** Largest growth of |rel error|, with its target. */
  largest: { name: string; change: number } | null;
  /** In the run, not in the base. */
  added: number;
  /** In the base, not in the run. */
  removed: number;
  /** The threshold (fraction) `worse` and `better` use. */
  threshold: number;
}

/** Counts targets that got worse or better by more than `threshold` (a fraction: 0.05 = 5 points). */
export function summariseChanges(changes: readonly TargetChange[], base: readonly TargetError[], threshold: number): ChangeSummary {
  const names = new Set(changes.map((c) => c.target.name));
  let worse = 0;
  let better = 0;
  let compared = 0;
  let largest: ChangeSummary['largest'] = null;
  for (const c of changes) {
    if (c.change === undefined) continue;
    compared++;
    if (!c.target.achievable) continue;
    if (c.change > threshold) worse++;
    if (c.change < -threshold) better++;
    if (!largest || c.change > largest.change) largest = { name: c.target.name, change: c.change };
  }
  return { compared, worse, better, largest, added: changes.length - compared, removed: base.filter((t) => !names.has(t.name)).length, threshold };
}

/** Upper edges of the |relative error| histogram's bins (fractions); the last bin is open. */
export const ERROR_BINS = [0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2] as const;

/** Counts achievable targets per |relative error| bin (ERROR_BINS, then one open bin). */
export function errorHistogram(targets: readonly TargetError[]): number[] {
  const counts = new Array<number>(ERROR_BINS.length + 1).fill(0);
  for (const t of targets) {
    if (!t.achievable) continue;
    const e = Math.abs(t.relError);
    const bin = ERROR_BINS.findIndex((edge) => e <= edge);
    counts[bin < 0 ? ERROR_BINS.length : bin]!++;
  }
  return counts;
}

/** Mean |relative error| of the achievable targets of each state or district (the tile grid's colour). */
export function areaErrors(targets: readonly TargetError[]): Map<string, { mean: number; targets: number }> {
  const sums = new Map<string, { sum: number; n: number }>();
  for (const t of targets) {
    if (!t.achievable || (t.level !== 'state' && t.level !== 'district')) continue;
    const s = sums.get(t.area) ?? { sum: 0, n: 0 };
    s.sum += Math.abs(t.relError);
    s.n++;
    sums.set(t.area, s);
  }
  return new Map([...sums].map(([area, s]) => [area, { mean: s.sum / s.n, targets: s.n }]));
}
