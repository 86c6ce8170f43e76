import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLease, releaseLease } from './lease.ts';
import type { PublishStores } from './config.ts';
import { productionPath, releaseManifestPath } from './layout.ts';
import { formatBytes, fromStore, publishFail, type PublishEmit, type PublishResult, type StepReport } from './result.ts';
import { addEntry, describeEntry, findVersion, readRegistry, updateRegistry, type VersionEntry } from './registry.ts';
import { parseManifest } from './staging-manifest.ts';
import { asStoreVersion, type Store, type StoreVersion } from '../stores/store.ts';
import type { PublishReason } from '../report/failures.ts';

/**
 * `./build.ts rollback VERSION=x NEW_VERSION=y`: republishes version x as a new release y, as the
 * real `version_manifest.rollback` intends (reference §5.1): every file of x is read at x's pin
 * (the HF commit, the GCS generations, the local store's versions) and written back to its
 * production path (one HF commit; GCS uploads with preconditions), then a new registry entry
 * `{version: y, special_operation: "roll-back", roll_back_version: x}` pointing at the new
 * commit and generations becomes current. History is never rewritten: x stays registered.
 *
 * Reading old GCS generations needs Object Versioning on the bucket. Unchanged files are skipped
 * by the stores, so only what differs from production is written; a rerun completes the rest.
 */
export interface RollbackInput {
  target: string;
  newVersion: string;
  stores: PublishStores;
  emit: PublishEmit;
  dryRun: boolean;
  confirm: (summary: string) => Promise<boolean>;
  now?: () => Date;
}

/** One file of x on one store: where it is pinned and where it goes. */
interface PinnedFile {
  path: string;
  version: StoreVersion;
  /** Destination (x's release manifest becomes y's). */
  to: string;
}

/** How a rollback that did not fail ended. */
export type RollbackOutcome =
  | { status: 'rolled-back'; entry: VersionEntry; steps: StepReport[] }
  | { status: 'dry-run' | 'declined' };

/** Publishes version `target`'s files as `newVersion` (see the module comment). */
export async function rollback(input: RollbackInput): Promise<PublishResult<RollbackOutcome>> {
  const { stores, target, newVersion, emit } = input;
  const read = await readRegistry(stores.registryHome);
  if (!read.ok) return read;
  const old = findVersion(read.value.registry, target);
  if (!old) return publishFail('version-not-found', `version ${target} is not registered in ${stores.registryHome.location}; see ./build.ts versions`);
  const existing = findVersion(read.value.registry, newVersion);
  const resumed = existing?.special_operation === 'roll-back' && existing.roll_back_version === target;
  if (existing && !resumed) return publishFail('version-exists', `version ${newVersion} is already registered (${describeEntry(existing)}); choose another NEW_VERSION`);

  const scratch = await mkdtemp(join(tmpdir(), 'rollback-'));
  try {
    const releaseFiles = await pinnedOnRelease(old, input, scratch);
    if (!releaseFiles.ok) return releaseFiles;
    const gcsFiles = pinnedOnGcs(old, input);
    if (!gcsFiles.ok) return gcsFiles;
    const summary = [
      `roll back to ${target} (${describeEntry(old)}) as new version ${newVersion}${resumed ? ' (already registered: only the registry mirror remains)' : ''}`,
      `  ${stores.release.location}: ${releaseFiles.value.length} files read at ${old.hf ? `commit ${old.hf.commit}` : 'their recorded versions'}, written to production paths in one batch`,
      ...(stores.gcs ? [`  ${stores.gcs.location}: ${gcsFiles.value.length} objects read at their recorded generations, uploaded with preconditions`] : []),
      `  then registry entry ${newVersion} (special_operation roll-back, roll_back_version ${target}) in ${stores.registryHome.location}, which becomes current`,
    ].join('\n');
    emit('plan', summary, { target, newVersion, release: releaseFiles.value, gcs: gcsFiles.value });
    if (input.dryRun) return { ok: true, value: { status: 'dry-run' } };
    if (!(await input.confirm(summary))) return { ok: true, value: { status: 'declined' } };

    const lease = await acquireLease(stores.registryHome, { action: `rollback to ${target} as ${newVersion}` });
    if (!lease.ok) return lease;
    try {
      return await execute(input, old, existing && resumed ? existing : undefined, releaseFiles.value, gcsFiles.value, scratch);
    } finally {
      const warning = await releaseLease(lease.value);
      if (warning) emit('warning', `warning: ${warning}`);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function execute(
  input: RollbackInput,
  old: VersionEntry,
  registered: VersionEntry | undefined,
  releaseFiles: PinnedFile[],
  gcsFiles: PinnedFile[],
  scratch: string,
): Promise<PublishResult<RollbackOutcome>> {
  const { stores, emit, target, newVersion } = input;
  const steps: StepReport[] = [];
  const message = `Roll back to ${target} as ${newVersion}`;
  const fail = (step: string, reason: PublishReason, text: string): PublishResult<RollbackOutcome> => {
    steps.push({ step, status: 'failed', detail: text });
    if (step !== 'registry') steps.push({ step: 'registry', status: 'not-done', detail: `registry untouched: ${newVersion} not registered` });
    return { ok: false, failure: { reason, message: text, step, steps } };
  };
  let entry = registered;
  if (!entry) {
    const release = await republish(stores.release, releaseFiles, join(scratch, 'release'), message);
    if (!release.ok) return fail('production', release.failure.reason, release.failure.message);
    steps.push({ step: 'production', status: 'done', detail: release.value.detail });
    let generations: Record<string, number> | undefined;
    if (stores.gcs) {
      const gcs = await republish(stores.gcs, gcsFiles, join(scratch, 'gcs'), message);
      if (!gcs.ok) return fail('gcs', gcs.failure.reason, gcs.failure.message);
      generations = gcs.value.versions;
      steps.push({ step: 'gcs', status: 'done', detail: gcs.value.detail });
    }
    entry = {
      version: newVersion,
      created_at: (input.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      hf: stores.config.release.kind === 'hf' ? { repo: stores.config.release.repo, commit: String(release.value.commit) } : null,
      gcs: stores.config.gcs && generations ? { bucket: stores.config.gcs.bucket, generations } : null,
      special_operation: 'roll-back',
      roll_back_version: target,
      ...(old.pipeline_run_id && { pipeline_run_id: old.pipeline_run_id }),
      ...(old.diagnostics_path && { diagnostics_path: old.diagnostics_path }),
      ...(stores.config.release.kind === 'local' && { local: { dir: stores.config.release.dir, versions: release.value.versions } }),
    };
  }
  const registeredNow = await updateRegistry(addEntry(entry), { home: stores.registryHome, ...(stores.registryMirror && { mirror: stores.registryMirror }), message: `Register ${newVersion} (roll back to ${target})`, emit });
  if (!registeredNow.ok) return fail(registeredNow.failure.step ?? 'registry', registeredNow.failure.reason, registeredNow.failure.message);
  steps.push({ step: 'registry', status: 'done', detail: `version ${newVersion} registered (roll-back to ${target}); current = ${registeredNow.value.registry.current}` });
  return { ok: true, value: { status: 'rolled-back', entry, steps } };
}

/** Reads each file at its pin into `dir`, then writes them all to their destinations as one batch. */
async function republish(
  store: Store,
  files: PinnedFile[],
  dir: string,
  message: string,
): Promise<PublishResult<{ commit: StoreVersion | null; versions: Record<string, number>; detail: string }>> {
  const puts: Array<{ localPath: string; path: string }> = [];
  for (const [i, file] of files.entries()) {
    const local = join(dir, String(i));
    const got = await store.download(file.path, local, { version: file.version });
    if (!got.ok) return { ok: false, failure: fromStore(got.failure, `reading ${file.path} at ${file.version} from ${store.location}${store.kind === 'gcs' ? ' (old generations need Object Versioning on the bucket)' : ''}`) };
    puts.push({ localPath: local, path: file.to });
  }
  const written = await store.putFiles(puts, { message, mode: 'overwrite' });
  if (!written.ok) {
    const landed = written.failure.completed?.length ?? 0;
    return { ok: false, failure: fromStore(written.failure, `${store.location}: ${landed} of ${puts.length} files in place, the rest not written`) };
  }
  const versions: Record<string, number> = {};
  for (const f of written.value.files) if (/^\d+$/.test(f.version)) versions[f.path] = Number(f.version);
  const commit = written.value.batchVersion ?? written.value.files[0]?.version ?? null;
  return {
    ok: true,
    value: {
      commit,
      versions,
      detail: `${store.location}: ${written.value.files.length} files, ${written.value.written.files} written (${formatBytes(written.value.written.bytes)}), ${written.value.skipped.files} already in place${store.kind === 'hf' ? ` in commit ${commit}` : ''}`,
    },
  };
}

/** x's files on the release store, at x's pin there. */
async function pinnedOnRelease(old: VersionEntry, input: RollbackInput, scratch: string): Promise<PublishResult<PinnedFile[]>> {
  const { stores, target, newVersion } = input;
  const config = stores.config.release;
  const remap = (path: string) => (path === releaseManifestPath(target) ? releaseManifestPath(newVersion) : path);
  if (config.kind === 'local') {
    if (!old.local || old.local.dir !== config.dir) return publishFail('not-published-here', `version ${target} has no pinned files in ${stores.release.location} (it was published to ${old.local?.dir ?? (old.hf ? `hf:${old.hf.repo}` : 'another store')})`);
    return { ok: true, value: Object.entries(old.local.versions).map(([path, v]) => ({ path, version: asStoreVersion(String(v)), to: remap(path) })) };
  }
  if (!old.hf || old.hf.repo !== config.repo) return publishFail('not-published-here', `version ${target} has no commit in hf:${config.repo} (hf: ${old.hf ? old.hf.repo : 'null'})`);
  const commit = asStoreVersion(old.hf.commit);
  // The file list: x's release manifest at x's commit; else (entries of other tools) x's GCS object names.
  const manifestPath = releaseManifestPath(target);
  const got = await stores.release.download(manifestPath, join(scratch, 'release-manifest.json'), { version: commit });
  let paths: string[];
  if (got.ok) {
    const parsed = parseManifest(new Uint8Array(await readFile(join(scratch, 'release-manifest.json'))));
    if (!parsed.ok) return publishFail('registry-corrupt', `${manifestPath} at ${commit} is unreadable (${parsed.failure.message})`);
    paths = [...Object.keys(parsed.value.files).map(productionPath), manifestPath];
  } else if (got.failure.reason === 'not-found' && old.gcs) {
    paths = Object.keys(old.gcs.generations);
  } else {
    return { ok: false, failure: fromStore(got.failure, `reading ${manifestPath} at ${commit}`) };
  }
  return { ok: true, value: paths.map((path) => ({ path, version: commit, to: remap(path) })) };
}

/** x's objects on GCS, at their recorded generations. */
function pinnedOnGcs(old: VersionEntry, input: RollbackInput): PublishResult<PinnedFile[]> {
  const { stores, target, newVersion } = input;
  if (!stores.config.gcs) return { ok: true, value: [] };
  if (!old.gcs || old.gcs.bucket !== stores.config.gcs.bucket) return publishFail('not-published-here', `version ${target} has no generations in gs://${stores.config.gcs.bucket}`);
  return {
    ok: true,
    value: Object.entries(old.gcs.generations).map(([path, generation]) => ({
      path,
      version: asStoreVersion(String(generation)),
      to: path === releaseManifestPath(target) ? releaseManifestPath(newVersion) : path,
    })),
  };
}
