import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Result } from '../report/failures.ts';
import type { PublishStores } from '../publish/config.ts';
import { diagnosticsPrefix, REVIEW_PAGE, storeUrl } from '../publish/layout.ts';
import { formatBytes, type PublishEmit } from '../publish/result.ts';
import type { StagingManifest } from '../publish/staging-manifest.ts';
import { runDir } from '../run.ts';
import { writeFileAtomic } from '../util/fs-atomic.ts';
import { reportData } from './report-data.ts';
import { chartLibrary, renderReportPage } from './report-page.ts';
import { reviewNumbers, type ReviewNumbers } from './review-numbers.ts';
import type { ManifestFiles } from './file-changes.ts';
import { readSides } from './review-sources.ts';
import { timelineOf } from './timeline.ts';

/**
 * `./build.ts report RUN_ID=... [AGAINST=<version>|<run id>]`: writes the review page of a run
 * (report-page.ts) compared with the registry's current version (or AGAINST). At the end of a
 * completed pipeline the same page is staged with the run's diagnostics
 * (`calibration/runs/<run_id>/diagnostics/report.html`, append-only) so the reviewer opens one URL.
 */
export interface ReportOptions {
  cacheDir: string;
  runId: string;
  stores: PublishStores;
  /** A registered version or a run id; default: the current version. */
  against?: string;
  /** Worse-by threshold, a fraction (0.05 = 5 points of |relative error|). */
  threshold: number;
  /** Where to write; default `<run>/review/report-vs-<against|current>.html`. */
  out?: string;
  /** The run's manifest files when the caller has them (staging), so they are not hashed again. */
  known?: { manifest: ManifestFiles };
  now?: Date;
}

/** The page written. */
export interface WrittenReport {
  path: string;
  bytes: number;
  numbers: ReviewNumbers;
}

/** Writes a run's review page; nothing else is written. */
export async function writeReport(o: ReportOptions): Promise<Result<WrittenReport>> {
  const sides = await readSides(o);
  if (!sides.ok) return sides;
  const { run, base } = sides.value;
  const numbers = reviewNumbers(run, base, o.threshold);
  const dir = runDir(o.cacheDir, o.runId);
  const logsDir = join(dir, 'logs');
  const logs = (await readdir(logsDir).catch(() => [] as string[])).filter((n) => n.endsWith('.log')).sort().map((n) => join(logsDir, n));
  const data = reportData({ run, base, numbers, timeline: run.meta ? await timelineOf(run.meta, o.cacheDir) : null, logs, ...(o.now && { now: o.now }) });
  const html = renderReportPage(data, await chartLibrary());
  const path = o.out ?? join(dir, 'review', `report-vs-${(o.against ?? base?.version ?? 'nothing').replace(/[^0-9A-Za-z._+-]/g, '_')}.html`);
  await writeFileAtomic(path, html);
  return { ok: true, value: { path, bytes: Buffer.byteLength(html), numbers } };
}

/** Where the pipeline's own review page of a run lives, locally. */
export const pipelineReportPath = (cacheDir: string, runId: string): string => join(runDir(cacheDir, runId), 'review', REVIEW_PAGE);

/**
 * The end of a completed pipeline (and `stage`): the hook staging calls to put the run's review
 * page, against the current version, in the diagnostics batch. It is written once: a retry
 * reuses it, so the append-only upload stays identical. A page that cannot be written is a
 * warning, never a failure of publishing.
 */
export function reviewPageForStaging(o: { cacheDir: string; runId: string; stores: PublishStores; threshold: number; emit: PublishEmit }): (manifest: StagingManifest) => Promise<string | null> {
  return async (manifest) => {
    const path = pipelineReportPath(o.cacheDir, o.runId);
    if (!existsSync(path)) {
      const written = await writeReport({ ...o, out: path, known: { manifest: manifest.files } }).catch((error: Error): Result<WrittenReport> => ({ ok: false, failure: { reason: 'report-failed', message: error.message } }));
      if (!written.ok) {
        o.emit('warning', `warning: the review page was not written (${written.failure.reason}: ${written.failure.message}); write it with ./build.ts report RUN_ID=${o.runId}`, { reason: written.failure.reason });
        return null;
      }
    }
    const url = storeUrl(o.stores.release.location, `${diagnosticsPrefix(o.runId)}${REVIEW_PAGE}`);
    o.emit('report', `review page: ${url} (${formatBytes((await stat(path)).size)}; local copy ${path})`, { url, path, bytes: (await stat(path)).size });
    return path;
  };
}
