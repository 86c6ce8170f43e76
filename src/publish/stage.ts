import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { diagnosticsPrefix, diagnosticsRunFiles, isAreaFile, MANIFEST_NAME, REVIEW_PAGE, stagedRunFiles, stagingPrefix, storeUrl } from './layout.ts';
import { formatBytes, fromStore, progressReporter, publishFail, type PublishEmit, type PublishResult } from './result.ts';
import { readMeta, runDir, type RunMeta } from '../run.ts';
import { updateRunPublish, type StagingRecord } from './run-publish.ts';
import { buildManifest, countProblems, manifestBytes, type ManifestFile, type StagingManifest } from './staging-manifest.ts';
import { digestFile, sha256Hex, type PutFile, type Store, type WriteReport } from '../stores/store.ts';

/**
 * The end of `./build.ts pipeline`: a completed run's diagnostics go to
 * `calibration/runs/{run_id}/diagnostics/` and its area files, calibration files and base datasets
 * to `staging/{run_id}/...` with a `manifest.json`, on the release store. Both are append-only: a
 * path that exists with different content is an error, never an overwrite, and identical content
 * is skipped, so staging the same run again writes 0 bytes. Nothing under a production path is
 * written here (the real pipeline promoted base datasets mid-run, W2).
 */
export interface StageInput {
  runDir: string;
  meta: RunMeta;
  release: Store;
  emit: PublishEmit;
  /**
   * Writes the run's review page from the manifest being staged (src/review/report.ts), uploaded
   * in the same batch as the diagnostics as `report.html`; null when it could not be written.
   */
  reviewPage?: (manifest: StagingManifest) => Promise<string | null>;
}

/** The `files` part of the Python-built `h5s/manifest.json`, which staging cross-checks. */
const RunManifestSchema = z.object({ files: z.record(z.string(), z.object({ sha256: z.string(), size_bytes: z.number() })) });

/** Stages one completed run (see the module comment); writes nothing but diagnostics and staging. */
export async function stageRun(input: StageInput): Promise<PublishResult<StagingRecord>> {
  const { meta, release, emit } = input;
  if (meta.status !== 'completed') {
    return publishFail('run-not-completed', `run ${meta.runId} is ${meta.status}; only a completed run is staged${meta.status === 'promoted' ? ' (it was already promoted)' : ''}`);
  }
  const collected = await stagedRunFiles(input.runDir);
  if (!collected.ok) return publishFail('run-incomplete', `run ${meta.runId} has no ${collected.missing}; it cannot be staged`);
  const files: Array<ManifestFile & { localPath: string }> = [];
  for (const file of collected.files) {
    const digest = await digestFile(file.localPath);
    files.push({ ...file, sha256: digest.sha256, size: digest.size });
  }
  const mismatch = await crossCheckRunManifest(input.runDir, files);
  if (mismatch) return publishFail('run-manifest-mismatch', `run ${meta.runId}: h5s/manifest.json disagrees with the files on disk (${mismatch}); the run is not staged`);

  const manifest = buildManifest({ version: meta.version, createdAt: meta.finishedAt ?? meta.startedAt, runId: meta.runId, files });
  for (const problem of countProblems(manifest)) emit('warning', `warning: staged area count ${problem}; promote will refuse this run`);

  const scratch = await mkdtemp(join(tmpdir(), 'stage-'));
  try {
    // The meta.json reviewers see: the run as it completed, without this publishing section.
    const { publish: _ignored, ...reviewed } = meta;
    const metaFile = join(scratch, 'meta.json');
    await writeFile(metaFile, `${JSON.stringify(reviewed, null, 2)}\n`);
    const page = input.reviewPage ? await input.reviewPage(manifest) : null;
    const diagnostics: PutFile[] = [...(await diagnosticsRunFiles(input.runDir)), { localPath: metaFile, rel: 'meta.json' }, ...(page ? [{ localPath: page, rel: REVIEW_PAGE }] : [])].map((f) => ({
      localPath: f.localPath,
      path: `${diagnosticsPrefix(meta.runId)}${f.rel}`,
    }));
    const diag = await release.putFiles(diagnostics, { message: `Diagnostics of run ${meta.runId}`, mode: 'append-only' });
    if (!diag.ok) return { ok: false, failure: fromStore(diag.failure, `diagnostics of run ${meta.runId} to ${release.location}`) };
    emit('diagnostics', `diagnostics: ${describeWrite(diag.value)} -> ${storeUrl(release.location, diagnosticsPrefix(meta.runId))}`, { path: diagnosticsPrefix(meta.runId), ...counts(diag.value) });

    const bytes = manifestBytes(manifest);
    const manifestFile = join(scratch, MANIFEST_NAME);
    await writeFile(manifestFile, bytes);
    const prefix = stagingPrefix(meta.runId);
    // One batch (one HF commit): a run's staging appears whole or not at all.
    const staged = await release.putFiles([...files.map((f) => ({ localPath: f.localPath, path: `${prefix}${f.rel}` })), { localPath: manifestFile, path: `${prefix}${MANIFEST_NAME}` }], {
      message: `Stage run ${meta.runId}`,
      mode: 'append-only',
      onProgress: progressReporter(emit),
    });
    if (!staged.ok) return { ok: false, failure: fromStore(staged.failure, `staging of run ${meta.runId} to ${release.location}`) };
    emit('staging', `staging: ${describeWrite(staged.value)} -> ${storeUrl(release.location, prefix)} (manifest: ${describeTotals(manifest.totals)})`, {
      path: prefix,
      totals: manifest.totals,
      ...counts(staged.value),
    });
    return {
      ok: true,
      value: {
        store: release.location,
        diagnosticsPath: diagnosticsPrefix(meta.runId),
        stagingPath: prefix,
        manifestSha256: sha256Hex(bytes),
        files: files.length,
        bytes: manifest.totals.total_size_bytes,
        stagedAt: new Date().toISOString(),
      },
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Compares the area files with the run's own manifest (built by the example/real Python), if any. */
async function crossCheckRunManifest(runDir: string, files: ManifestFile[]): Promise<string | null> {
  const text = await readFile(join(runDir, 'h5s', MANIFEST_NAME), 'utf8').catch(() => null);
  if (text === null) return null;
  let listed: z.infer<typeof RunManifestSchema>;
  try {
    listed = RunManifestSchema.parse(JSON.parse(text));
  } catch {
    return 'h5s/manifest.json is unreadable';
  }
  const ours = new Map(files.map((f) => [f.rel, f]));
  for (const [rel, entry] of Object.entries(listed.files)) {
    const file = ours.get(rel);
    if (!file) return `${rel} is listed but missing`;
    if (file.sha256 !== entry.sha256 || file.size !== entry.size_bytes) return `${rel} has sha256 ${file.sha256.slice(0, 12)}, listed ${entry.sha256.slice(0, 12)}`;
  }
  const extra = files.find((f) => isAreaFile(f.rel) && !(f.rel in listed.files));
  return extra ? `${extra.rel} is not listed` : null;
}

const counts = (report: WriteReport) => ({ written: report.written, skipped: report.skipped, version: report.batchVersion });

/** One line for a batch write: files, bytes written, files already there. */
function describeWrite(report: WriteReport): string {
  const total = report.written.files + report.skipped.files;
  return `${total} files, ${report.written.files} written (${formatBytes(report.written.bytes)}), ${report.skipped.files} already there`;
}

function describeTotals(totals: Record<string, number>): string {
  return Object.entries(totals)
    .filter(([k, v]) => k !== 'total_size_bytes' && v > 0)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
}

/**
 * Stages a finished run and records the outcome in its meta.json (`publish.staging`, or
 * `publish.stageError` so promote can say why it refuses). Used at the end of `pipeline` and by
 * `./build.ts stage RUN_ID=...`, which retries a failed publishing step.
 */
export async function stageAndRecord(input: { cacheDir: string; runId: string; release: Store; emit: PublishEmit; reviewPage?: StageInput['reviewPage'] }): Promise<PublishResult<StagingRecord>> {
  const read = await readMeta(input.cacheDir, input.runId);
  if (!read.ok) return publishFail('run-not-found', read.message);
  // EXECUTOR=modal leaves outputs on the Modal volume (a cache hit holds only their records): bring them into the run first.
  if (read.meta.status === 'completed' && Object.values(read.meta.targets).some((t) => t.executor === 'modal')) {
    try {
      await (await import('../executors/modal/fetch.ts')).fetchRunOutputs({ cacheDir: input.cacheDir, runId: input.runId });
    } catch (error) {
      return publishFail('remote-outputs-unavailable', `run ${input.runId}: ${(error as Error).message}`);
    }
  }
  const staged = await stageRun({ runDir: runDir(input.cacheDir, input.runId), meta: read.meta, release: input.release, emit: input.emit, ...(input.reviewPage && { reviewPage: input.reviewPage }) });
  if (read.meta.status !== 'completed') return staged;
  await updateRunPublish(input.cacheDir, input.runId, (s) => {
    const { stageError: _old, ...rest } = s;
    return staged.ok ? { ...rest, staging: staged.value } : { ...rest, stageError: `${staged.failure.reason}: ${staged.failure.message}` };
  });
  return staged;
}
