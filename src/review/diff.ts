import type { Result } from '../report/failures.ts';
import type { PublishStores } from '../publish/config.ts';
import { diffTable } from './diff-table.ts';
import { reviewNumbers, type ReviewNumbers } from './review-numbers.ts';
import { readSides } from './review-sources.ts';

/**
 * `./build.ts diff RUN_ID=... [AGAINST=<version>|<run id>]`: the review's key numbers in the
 * terminal (DVC's `metrics diff` for a data release): mean and worst errors per fit and per
 * geography level against the base, the count of targets worse by more than the threshold, and
 * the files promote would publish against the base's. Read-only.
 */
export interface DiffOptions {
  cacheDir: string;
  runId: string;
  stores: PublishStores;
  /** A registered version or a run id; default: the current version. */
  against?: string;
  /** Worse-by threshold, a fraction (0.05 = 5 points). */
  threshold: number;
}

/** The numbers and their table lines. */
export async function diffRun(o: DiffOptions): Promise<Result<{ numbers: ReviewNumbers; lines: string[] }>> {
  const sides = await readSides({ ...o, scope: 'targets' });
  if (!sides.ok) return sides;
  const numbers = reviewNumbers(sides.value.run, sides.value.base, o.threshold);
  return { ok: true, value: { numbers, lines: diffTable(numbers) } };
}
