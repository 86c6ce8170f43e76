import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLease, releaseLease } from './lease.ts';
import { preflight, type PlannedFile, type PromotePlan, type QualityCheck } from './preflight.ts';
import { diffTable } from '../review/diff-table.ts';
import type { PublishStores } from './config.ts';
import { isAreaFile, MANIFEST_NAME, releaseManifestPath, stagingPrefix, storeUrl } from './layout.ts';
import { formatBytes, fromStore, progressReporter, type PublishEmit, type PublishFailure, type PublishResult, type StepReport } from './result.ts';
import { addEntry, updateRegistry, type VersionEntry } from './registry.ts';
import { updateRunPublish } from './run-publish.ts';
import type { FileWrite, Store, StoreFailure, WriteReport } from '../stores/store.ts';

/**
 * `./build.ts promote RUN_ID=...`: a reviewed, staged run becomes a registered version.
 *
 * Order (reference §4.5, fixing W5): preflight (read-only) -> plan (`-n` stops here) ->
 * confirmation -> lease -> the release store's staging copied to production paths in ONE batch
 * (one HF commit, by LFS oid) -> GCS uploads with `ifGenerationMatch`, generations taken from the
 * upload responses -> the registry entry, last -> the run marked `promoted`. Any failure stops at
 * once and the result says which steps were done and which were not; the registry is written
 * only after every production write succeeded, so a failure before it leaves the registry
 * untouched. Every write skips content already in place, so rerunning the same promote completes
 * the rest without writing anything twice; once the entry exists, a rerun only finishes the
 * registry mirror and the run's status.
 */
export interface PromoteInput {
  cacheDir: string;
  runId: string;
  version?: string;
  stores: PublishStores;
  emit: PublishEmit;
  /** `-n`: print the plan, write nothing. */
  dryRun: boolean;
  /** Asks the operator; false means stop before writing. */
  confirm: (plan: PromotePlan) => Promise<boolean>;
  now?: () => Date;
  leaseTtlMs?: number;
  /** Quality gates checked in preflight (FORCE recorded in the entry as `quality_override`). */
  quality?: QualityCheck;
}

/** How a promote that did not fail ended. */
export type PromoteOutcome =
  | { status: 'promoted'; entry: VersionEntry; steps: StepReport[] }
  | { status: 'already-promoted'; version: string }
  | { status: 'dry-run' | 'declined'; plan: PromotePlan };

/** Promotes one staged run (see the module comment for the order and the guarantees). */
export async function promote(input: PromoteInput): Promise<PublishResult<PromoteOutcome>> {
  const scratch = await mkdtemp(join(tmpdir(), 'promote-'));
  try {
    const checked = await preflight({ cacheDir: input.cacheDir, runId: input.runId, ...(input.version && { version: input.version }), stores: input.stores, scratch, ...(input.quality && { quality: input.quality }) });
    if (!checked.ok) return checked;
    if ('alreadyPromoted' in checked.value) {
      input.emit('done', `run ${input.runId} is already promoted as ${checked.value.version}; nothing to do`);
      return { ok: true, value: { status: 'already-promoted', version: checked.value.version } };
    }
    const plan = checked.value;
    printPlan(plan, input.stores, input.emit);
    if (input.dryRun) return { ok: true, value: { status: 'dry-run', plan } };
    if (!(await input.confirm(plan))) return { ok: true, value: { status: 'declined', plan } };

    const lease = await acquireLease(input.stores.registryHome, { action: `promote of run ${plan.runId} as ${plan.version}`, ...(input.leaseTtlMs && { ttlMs: input.leaseTtlMs }) });
    if (!lease.ok) return lease;
    try {
      const result = await execute(plan, input, scratch);
      await updateRunPublish(
        input.cacheDir,
        plan.runId,
        (s) => ({
          ...s,
          promote: {
            version: plan.version,
            at: new Date().toISOString(),
            ok: result.ok,
            ...(result.ok ? { registry: input.stores.registryHome.location } : { failedStep: result.failure.step ?? 'unknown', message: result.failure.message }),
          },
        }),
        result.ok ? 'promoted' : undefined,
      ).catch((error: Error) => input.emit('warning', `warning: could not record the promote in the run's meta.json: ${error.message}`));
      return result;
    } finally {
      const warning = await releaseLease(lease.value);
      if (warning) input.emit('warning', `warning: ${warning}`);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The production writes, then the registry; a failure reports every step's state. */
async function execute(plan: PromotePlan, input: PromoteInput, scratch: string): Promise<PublishResult<PromoteOutcome>> {
  const { stores, emit } = input;
  const steps: StepReport[] = [];
  const stepNames = ['production', ...(stores.gcs ? ['gcs'] : []), 'registry', ...(stores.registryMirror ? ['registry-mirror'] : [])];
  const stop = (step: string, failure: PublishFailure, detail: string): PublishResult<PromoteOutcome> => {
    steps.push({ step, status: 'failed', detail });
    for (const name of stepNames.slice(stepNames.indexOf(step) + 1)) steps.push({ step: name, status: 'not-done', detail: notDone(name, plan, stores) });
    steps.push({ step: 'mark-promoted', status: 'not-done', detail: `run ${plan.runId} stays completed (not promoted)` });
    return { ok: false, failure: { ...failure, step, steps } };
  };

  let entry: VersionEntry;
  if (plan.registered) {
    entry = plan.registered;
    steps.push({ step: 'production', status: 'done', detail: `already done: version ${plan.version} is registered from this run` });
  } else {
    const message = `Promote run ${plan.runId} as ${plan.version}`;
    const prefix = stagingPrefix(plan.runId);
    const pairs = [...plan.files.map((f) => ({ from: `${prefix}${f.rel}`, to: f.production })), { from: `${prefix}${MANIFEST_NAME}`, to: releaseManifestPath(plan.version) }];
    emit('production', `production: copying ${pairs.length} files from ${prefix} in ${stores.release.location} (one batch)...`);
    const copied = await stores.release.copy(pairs, { message, mode: 'overwrite' });
    if (!copied.ok) return stop('production', fromStore(copied.failure, `production copy in ${stores.release.location}`), `${stores.release.location}: nothing copied (${copied.failure.reason}); production unchanged`);
    const commit = copied.value.batchVersion ?? copied.value.files[0]?.version ?? null;
    const detail = `${stores.release.location}: ${describe(copied.value)}${stores.release.kind === 'hf' ? ` in commit ${commit ?? '(none)'}` : ''}`;
    steps.push({ step: 'production', status: 'done', detail });

    let generations: Record<string, number> | undefined;
    if (stores.gcs) {
      const uploaded = await uploadToGcs(stores.gcs, plan, input, scratch, message);
      if (!uploaded.ok) return stop('gcs', uploaded.failure, uploaded.failure.message);
      generations = uploaded.value.generations;
      steps.push({ step: 'gcs', status: 'done', detail: uploaded.value.detail });
    }
    entry = {
      version: plan.version,
      created_at: (input.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      hf: stores.config.release.kind === 'hf' ? { repo: stores.config.release.repo, commit: String(commit) } : null,
      gcs: stores.config.gcs && generations ? { bucket: stores.config.gcs.bucket, generations } : null,
      pipeline_run_id: plan.runId,
      diagnostics_path: plan.staging.diagnosticsPath,
      ...(plan.review?.forced.length && { quality_override: { forced: true, failed: plan.review.forced } }),
      ...(stores.config.release.kind === 'local' && { local: { dir: stores.config.release.dir, versions: numeric(copied.value.files) } }),
    };
  }

  const registered = await updateRegistry(addEntry(entry), { home: stores.registryHome, ...(stores.registryMirror && { mirror: stores.registryMirror }), message: `Register ${plan.version} (run ${plan.runId})`, emit });
  if (!registered.ok) {
    if (registered.failure.step === 'registry-mirror') {
      steps.push({ step: 'registry', status: 'done', detail: `version ${plan.version} registered in ${stores.registryHome.location}` });
      return stop('registry-mirror', registered.failure, `${stores.registryMirror?.location}: registry not refreshed (${registered.failure.message})`);
    }
    return stop('registry', registered.failure, `registry untouched in ${stores.registryHome.location} (${registered.failure.message})`);
  }
  steps.push({ step: 'registry', status: 'done', detail: `version ${plan.version} ${registered.value.wrote ? 'registered' : 'was already registered'} in ${stores.registryHome.location}; current = ${registered.value.registry.current}` });
  if (stores.registryMirror) steps.push({ step: 'registry-mirror', status: 'done', detail: `registry mirrored to ${stores.registryMirror.location}` });
  steps.push({ step: 'mark-promoted', status: 'done', detail: `run ${plan.runId} marked promoted` });
  return { ok: true, value: { status: 'promoted', entry, steps } };
}

/** GCS: every release file (and the release manifest) uploaded with preconditions; generations from the responses. */
async function uploadToGcs(
  gcs: Store,
  plan: PromotePlan,
  input: PromoteInput,
  scratch: string,
  message: string,
): Promise<PublishResult<{ generations: Record<string, number>; detail: string }>> {
  // Sources: the run's own files when they still match the manifest, else the staged copy.
  const sources: Array<{ localPath: string; path: string }> = [];
  for (const file of plan.files) {
    const local = file.localPath ?? (await fetchStaged(file, plan, input, scratch));
    if (typeof local !== 'string') return { ok: false, failure: local };
    sources.push({ localPath: local, path: file.production });
  }
  const manifestLocal = await fetchStaged({ rel: MANIFEST_NAME, production: '', sha256: plan.manifestSha256, size: 0 }, plan, input, scratch);
  if (typeof manifestLocal !== 'string') return { ok: false, failure: manifestLocal };
  sources.push({ localPath: manifestLocal, path: releaseManifestPath(plan.version) });

  input.emit('gcs', `gcs: uploading ${sources.length} files (${formatBytes(plan.bytes)}) to ${gcs.location} with generation preconditions...`);
  const uploaded = await gcs.putFiles(sources, { message, mode: 'overwrite', onProgress: progressReporter(input.emit) });
  if (!uploaded.ok) return { ok: false, failure: { ...gcsFailure(gcs, uploaded.failure, sources.length) } };
  return { ok: true, value: { generations: numeric(uploaded.value.files), detail: `${gcs.location}: ${describe(uploaded.value)}` } };
}

/** A GCS failure, saying exactly which files landed (GCS has no multi-object transaction). */
function gcsFailure(gcs: Store, failure: StoreFailure, total: number): PublishFailure {
  const landed = failure.completed ?? [];
  const shown = landed.slice(0, 5).map((f) => f.path).join(', ') + (landed.length > 5 ? `, +${landed.length - 5} more` : '');
  return {
    reason: failure.reason,
    message: `${gcs.location}: ${landed.length} of ${total} files in place${landed.length ? ` (${shown})` : ''}, ${total - landed.length} not uploaded; stopped${failure.path ? ` at ${failure.path}` : ''}: ${failure.message}`,
  };
}

/** Downloads a staged file into the scratch directory, verified against the manifest's sha256. */
async function fetchStaged(file: PlannedFile, plan: PromotePlan, input: PromoteInput, scratch: string): Promise<string | PublishFailure> {
  const local = join(scratch, 'staged', file.rel);
  const got = await input.stores.release.download(`${stagingPrefix(plan.runId)}${file.rel}`, local);
  if (!got.ok) return fromStore(got.failure, `reading the staged ${file.rel}`);
  if (got.value.sha256 !== file.sha256) return { reason: 'staging-mismatch', message: `staged ${file.rel} changed since preflight (sha256 ${got.value.sha256.slice(0, 12)})` };
  return local;
}

/** Per-path versions as numbers (GCS generations, local versions), as the registry stores them. */
function numeric(files: FileWrite[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of files) {
    const n = Number(f.version);
    if (!Number.isSafeInteger(n)) throw new Error(`version ${f.version} of ${f.path} is not an integer`);
    out[f.path] = n;
  }
  return out;
}

function describe(report: WriteReport): string {
  return `${report.files.length} files, ${report.written.files} written (${formatBytes(report.written.bytes)}), ${report.skipped.files} already in place`;
}

function notDone(step: string, plan: PromotePlan, stores: PublishStores): string {
  switch (step) {
    case 'gcs':
      return `${stores.gcs?.location}: no upload attempted`;
    case 'registry':
      return `registry untouched: ${plan.version} not registered`;
    case 'registry-mirror':
      return `${stores.registryMirror?.location}: registry mirror not refreshed`;
    default:
      return `${step}: not attempted`;
  }
}

/** The plan as `-n` prints it: files and bytes by kind, every non-area file, and the destinations. */
function printPlan(plan: PromotePlan, stores: PublishStores, emit: PublishEmit): void {
  const byKind = new Map<string, { files: number; bytes: number }>();
  for (const f of plan.files) {
    const kind = f.rel.split('/')[0] ?? '';
    const k = byKind.get(kind) ?? { files: 0, bytes: 0 };
    byKind.set(kind, { files: k.files + 1, bytes: k.bytes + f.size });
  }
  const lines = [
    `promote run ${plan.runId} as version ${plan.version}${plan.registered ? ' (already registered: only the registry mirror and the run status remain)' : ''}`,
    `  ${plan.files.length} files, ${formatBytes(plan.bytes)}, staged at ${storeUrl(stores.release.location, stagingPrefix(plan.runId))} (manifest verified)`,
    ...[...byKind].map(([kind, k]) => `    ${kind.padEnd(12)} ${String(k.files).padStart(4)} files  ${formatBytes(k.bytes).padStart(9)}`),
    ...plan.files.filter((f) => !isAreaFile(f.rel)).map((f) => `    ${f.rel} -> ${f.production}  ${formatBytes(f.size)}`),
    `    ${MANIFEST_NAME} -> ${releaseManifestPath(plan.version)}`,
    `  destinations, in order: ${plan.destinations.join(' -> ')}`,
    ...(plan.review?.numbers ? ['', ...diffTable(plan.review.numbers).map((l) => `  ${l}`)] : []),
    ...(plan.review?.forced.length ? ['', `  FORCE=1: promoting past ${plan.review.forced.length} failed quality gate(s), recorded in the registry entry:`, ...plan.review.forced.map((f) => `    ${f}`)] : []),
  ];
  emit('plan', lines.join('\n'), {
    runId: plan.runId,
    version: plan.version,
    bytes: plan.bytes,
    destinations: plan.destinations,
    files: plan.files.map((f) => ({ from: `${stagingPrefix(plan.runId)}${f.rel}`, to: f.production, size: f.size, sha256: f.sha256 })),
    ...(plan.review && { review: plan.review }),
  });
}
