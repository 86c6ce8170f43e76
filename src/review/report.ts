import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Failure, Result } from '../report/failures.ts';
import type { PublishStores } from '../publish/config.ts';
import { diagnosticsPrefix, storeUrl } from '../publish/layout.ts';
import { fromStore } from '../publish/result.ts';
import { runDir } from '../run.ts';
import { writeFileAtomic } from '../util/fs-atomic.ts';
import { reportData } from './report-data.ts';
import { chartLibrary, renderReportPage } from './report-page.ts';
import { reviewNumbers, type ReviewNumbers } from './review-numbers.ts';
import { readSides } from './review-sources.ts';
import { timelineOf } from './timeline.ts';

/**
 * `./build.ts report RUN_ID=... [AGAINST=<version>|<run id>]`: writes the review page of a run
 * (report-page.ts) compared with the registry's current version (or AGAINST), and, at the end of
 * a completed pipeline, the same page is uploaded beside the run's diagnostics
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
export const pipelineReportPath = (cacheDir: string, runId: string): string => join(runDir(cacheDir, runId), 'review', 'report.html');

/** The pipeline's review page, locally and in the release store. */
export interface PublishedReport {
  path: string;
  bytes: number;
  url: string;
}

/**
 * The end of a completed pipeline (and `stage`): writes the run's review page against the current
 * version, once (a retry reuses it, so the append-only upload stays identical), and uploads it
 * with the run's diagnostics.
 */
export async function publishRunReport(o: { cacheDir: string; runId: string; stores: PublishStores; threshold: number }): Promise<Result<PublishedReport, Failure>> {
  const path = pipelineReportPath(o.cacheDir, o.runId);
  if (!existsSync(path)) {
    // The page is for the reviewer: a failure to write it is reported, and never fails the run's publishing.
    const written = await writeReport({ ...o, out: path }).catch((error: Error): Result<WrittenReport> => ({ ok: false, failure: { reason: 'report-failed', message: error.message } }));
    if (!written.ok) return written;
  }
  const remote = `${diagnosticsPrefix(o.runId)}report.html`;
  const put = await o.stores.release.putFiles([{ localPath: path, path: remote }], { message: `Review page of run ${o.runId}`, mode: 'append-only' });
  if (!put.ok) return { ok: false, failure: fromStore(put.failure, `uploading the review page of run ${o.runId}`) };
  return { ok: true, value: { path, bytes: (await stat(path)).size, url: storeUrl(o.stores.release.location, remote) } };
}
