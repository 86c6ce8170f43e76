import { FITS, type FitName } from './diagnostics.ts';
import { compareFiles, totalsByKind, type FileChanges, type KindTotals } from './file-changes.ts';
import { compareTargets, errorStats, statsByLevel, summariseChanges, type ChangeSummary, type ErrorStats } from './fit-numbers.ts';
import type { Level } from './geography.ts';
import type { ReviewSide } from './review-sources.ts';

/**
 * The key numbers of a review, as `diff` prints them, `promote -n` shows them and the quality
 * gates check them: per fit, the error statistics of the run and of the base (overall and per
 * geography level) and how many targets got worse; the files promote would publish and how they
 * differ from the base's. Plain data (it is also `diff --json`).
 */

/** One fit, run against base. */
export interface FitReview {
  fit: FitName;
  run: ErrorStats | null;
  base: ErrorStats | null;
  levels: Array<{ level: Level; run: ErrorStats; base: ErrorStats | null }>;
  /** Null when either side has no per-target diagnostics. */
  changes: ChangeSummary | null;
  /** Logged epochs (points of the loss curve) of the run. */
  curvePoints: number | null;
}

/** The whole review in numbers. */
export interface ReviewNumbers {
  run: string;
  /** The base's label, or null when there is nothing to compare with. */
  base: string | null;
  fits: FitReview[];
  files: { run: KindTotals[] | null; base: KindTotals[] | null; changes: FileChanges | null };
  /** The `worse` threshold, as a fraction of |relative error| (0.05 = 5 points). */
  threshold: number;
  notes: string[];
}

/** Computes the review's numbers; `threshold` is a fraction (0.05: worse by more than 5 points). */
export function reviewNumbers(run: ReviewSide, base: ReviewSide | null, threshold: number): ReviewNumbers {
  const fits = FITS.map((fit): FitReview => {
    const now = run.diagnostics.fits[fit].targets;
    const before = base?.diagnostics.fits[fit].targets ?? null;
    const baseLevels = new Map((before ? statsByLevel(before) : []).map((l) => [l.level, l.stats]));
    return {
      fit,
      run: now ? errorStats(now) : null,
      base: before ? errorStats(before) : null,
      levels: now ? statsByLevel(now).map((l) => ({ level: l.level, run: l.stats, base: baseLevels.get(l.level) ?? null })) : [],
      changes: now && before ? summariseChanges(compareTargets(now, before), before, threshold) : null,
      curvePoints: run.diagnostics.fits[fit].curve?.length ?? null,
    };
  });
  const notes = [...run.notes, ...(base ? base.notes : ['nothing to compare with: no version is registered yet'])];
  return {
    run: run.label,
    base: base?.label ?? null,
    fits,
    files: {
      run: run.manifest ? totalsByKind(run.manifest) : null,
      base: base?.manifest ? totalsByKind(base.manifest) : null,
      changes: run.manifest && base?.manifest ? compareFiles(run.manifest, base.manifest) : null,
    },
    threshold,
    notes,
  };
}
