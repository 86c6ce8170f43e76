import { join } from 'node:path';
import type { PublishStores } from './config.ts';
import { MANIFEST_NAME, productionPath, releaseManifestPath, stagedRunFiles, stagingPrefix } from './layout.ts';
import { fromStore, publishFail, type PublishResult } from './result.ts';
import { describeEntry, findVersion, readRegistry, type Registry, type VersionEntry } from './registry.ts';
import { readMeta, runDir, type RunMeta } from '../run.ts';
import { publishSection, type StagingRecord } from './run-publish.ts';
import { countProblems, parseManifest, type StagingManifest } from './staging-manifest.ts';
import { digestFile, sha256Hex, type Store } from '../stores/store.ts';
import { gateFailures, type QualityGates } from '../review/quality-gates.ts';
import { reviewNumbers, type ReviewNumbers } from '../review/review-numbers.ts';
import { readSides } from '../review/review-sources.ts';

/**
 * Everything promote checks before its first production write, and the plan it then follows.
 * Read-only: a failed preflight has written nothing anywhere (the real promote skipped its
 * preflight on the local-area path and only warned on manifest mismatches, W8).
 */

/** One file of the release: staged at `staging/{run}/{rel}`, published at `production`. */
export interface PlannedFile {
  rel: string;
  production: string;
  sha256: string;
  size: number;
  /** A local copy whose bytes were checked against the manifest (for GCS uploads), if there is one. */
  localPath?: string;
}

/** What promote will do. */
export interface PromotePlan {
  runId: string;
  version: string;
  meta: RunMeta;
  staging: StagingRecord;
  manifest: StagingManifest;
  manifestSha256: string;
  files: PlannedFile[];
  bytes: number;
  /** Stores written, in order: release store, GCS, registry home (+ mirror). */
  destinations: string[];
  /** The registry already has this run's entry: production is done, only the rest remains. */
  registered?: VersionEntry;
  /** The run against the current version (src/review/), and the quality gates it failed. */
  review?: PlannedReview;
}

/** What preflight checks of the run's quality (tasks/variables.ts: WORSE_BY, MAX_MEAN_ERROR, MAX_REGRESSION, FORCE). */
export interface QualityCheck {
  gates: QualityGates;
  /** Worse-by threshold, a fraction. */
  threshold: number;
  /** FORCE=1: promote past failed gates, recording them. */
  force: boolean;
}

/** The review promote shows in its plan. */
export interface PlannedReview {
  numbers: ReviewNumbers | null;
  /** Failed gates, one line each with the numbers; non-empty only when forced. */
  forced: string[];
}

/** What preflight checks. */
export interface PreflightInput {
  cacheDir: string;
  runId: string;
  /** Release version; default: the run's version. */
  version?: string;
  stores: PublishStores;
  /** Scratch directory for small staged files that must be downloaded to be checked. */
  scratch: string;
  /** Quality gates; without them the review is still computed for the plan, and nothing is refused. */
  quality?: QualityCheck;
}

/** A run that was already promoted as this version: nothing to do. */
export interface AlreadyPromoted {
  alreadyPromoted: true;
  version: string;
}

/** Runs every check, read-only; returns the plan, or says the run is already promoted as this version. */
export async function preflight(input: PreflightInput): Promise<PublishResult<PromotePlan | AlreadyPromoted>> {
  const { stores, runId } = input;
  const read = await readMeta(input.cacheDir, runId);
  if (!read.ok) return publishFail('run-not-found', read.message);
  const meta = read.meta;
  const section = publishSection(meta);
  const version = input.version ?? meta.version;
  if (meta.status === 'promoted') {
    if (section.promote?.version === version) return { ok: true, value: { alreadyPromoted: true, version } };
    return publishFail('already-promoted', `run ${runId} was already promoted as ${section.promote?.version ?? '?'}; a run is released once (use rollback to republish an old version)`);
  }
  if (meta.status !== 'completed') return publishFail('run-not-completed', `run ${runId} is ${meta.status}; only a completed run can be promoted`);
  const staging = section.staging;
  if (!staging) {
    const why = section.stageError ? ` (publishing failed: ${section.stageError})` : '';
    return publishFail('not-staged', `run ${runId} was not staged${why}; stage it with ./build.ts stage RUN_ID=${runId}`);
  }
  if (staging.store !== stores.release.location) {
    return publishFail('staged-elsewhere', `run ${runId} was staged to ${staging.store}, but the configured release store is ${stores.release.location}; pass the same HF_REPO / STORE_DIR`);
  }

  // The staged manifest is the one staging recorded, and the staged files are exactly its files.
  const prefix = stagingPrefix(runId);
  const manifestRead = await stores.release.readVersioned(`${prefix}${MANIFEST_NAME}`);
  if (!manifestRead.ok) return { ok: false, failure: fromStore(manifestRead.failure, `reading the staged manifest of run ${runId}`) };
  if (!manifestRead.value) return publishFail('staging-mismatch', `${prefix}${MANIFEST_NAME} is missing from ${stores.release.location}; stage the run again`);
  const manifestSha256 = sha256Hex(manifestRead.value.bytes);
  if (manifestSha256 !== staging.manifestSha256) return publishFail('staging-mismatch', `${prefix}${MANIFEST_NAME} in ${stores.release.location} is not the manifest this run staged (sha256 ${manifestSha256.slice(0, 12)}, recorded ${staging.manifestSha256.slice(0, 12)})`);
  const parsed = parseManifest(manifestRead.value.bytes);
  if (!parsed.ok) return publishFail('staging-mismatch', `${prefix}${MANIFEST_NAME} is not a valid manifest (${parsed.message})`);
  const manifest = parsed.manifest;
  if (manifest.run_id !== runId) return publishFail('staging-mismatch', `${prefix}${MANIFEST_NAME} belongs to run ${manifest.run_id}, not ${runId}`);
  const counts = countProblems(manifest);
  if (counts.length > 0) return publishFail('area-count', `run ${runId} does not hold a complete release: ${counts.join(', ')}`);
  const mismatches = await compareStaging(stores.release, prefix, manifest, input.scratch);
  if (!mismatches.ok) return mismatches;
  if (mismatches.value.length > 0) {
    const shown = mismatches.value.slice(0, 5).join('; ') + (mismatches.value.length > 5 ? `; and ${mismatches.value.length - 5} more` : '');
    return publishFail('staging-mismatch', `staged files of run ${runId} do not match its manifest: ${shown}`);
  }

  // The version names one content, forever.
  const registry = await readRegistry(stores.registryHome);
  if (!registry.ok) return registry;
  const existing = findVersion(registry.value.registry, version);
  const ours = existing !== undefined && existing.pipeline_run_id === runId && existing.special_operation === undefined;
  if (existing && !ours) return publishFail('version-exists', `version ${version} is already registered (${describeEntry(existing)}); pass VERSION=<another version>`);
  const released = await stores.release.readVersioned(releaseManifestPath(version));
  if (!released.ok) return { ok: false, failure: fromStore(released.failure, `reading ${releaseManifestPath(version)}`) };
  if (released.value && sha256Hex(released.value.bytes) !== manifestSha256) {
    return publishFail('version-exists', `${releaseManifestPath(version)} in ${stores.release.location} holds another run's release of ${version}; pass VERSION=<another version>`);
  }

  const review = ours ? undefined : await checkQuality(input, { manifest: manifest.files, registry: registry.value.registry });
  if (review && !review.ok) return review;

  const files = await plannedFiles(runDir(input.cacheDir, runId), manifest, Boolean(stores.gcs) && !ours);
  const destinations = [stores.release.location, ...(stores.gcs ? [stores.gcs.location] : []), `registry ${stores.registryHome.location}`, ...(stores.registryMirror ? [`registry mirror ${stores.registryMirror.location}`] : [])];
  return {
    ok: true,
    value: {
      runId,
      version,
      meta,
      staging,
      manifest,
      manifestSha256,
      files,
      bytes: files.reduce((sum, f) => sum + f.size, 0),
      destinations,
      ...(ours && { registered: existing }),
      ...(review && { review: review.value }),
    },
  };
}

/** The run against the current version; refuses when a gate fails and FORCE is not set. */
async function checkQuality(input: PreflightInput, known: { manifest: StagingManifest['files']; registry: Registry }): Promise<PublishResult<PlannedReview>> {
  const quality = input.quality ?? { gates: {}, threshold: 0.05, force: false };
  const sides = await readSides({ cacheDir: input.cacheDir, runId: input.runId, stores: input.stores, known, scope: 'targets' });
  const numbers = sides.ok ? reviewNumbers(sides.value.run, sides.value.base, quality.threshold) : null;
  const gated = quality.gates.maxMeanError !== undefined || quality.gates.maxRegression !== undefined;
  const failures = numbers ? gateFailures(numbers, quality.gates) : gated && !sides.ok ? [`the review could not be read (${sides.failure.message}), so the quality gates cannot be checked`] : [];
  if (failures.length > 0 && !quality.force) {
    return publishFail('quality-gate', `run ${input.runId} fails its quality gates: ${failures.join('; ')}; review it with ./build.ts report RUN_ID=${input.runId}, or pass FORCE=1 to promote anyway (recorded in the registry entry)`);
  }
  return { ok: true, value: { numbers, forced: failures } };
}

/** Lists the staging prefix and compares it with the manifest: missing, extra and different files. */
async function compareStaging(store: Store, prefix: string, manifest: StagingManifest, scratch: string): Promise<PublishResult<string[]>> {
  const listed = await store.list(prefix);
  if (!listed.ok) return { ok: false, failure: fromStore(listed.failure, `listing ${prefix}`) };
  const staged = new Map(listed.value.map((e) => [e.path.slice(prefix.length), e]));
  const problems: string[] = [];
  for (const [rel, expected] of Object.entries(manifest.files)) {
    const entry = staged.get(rel);
    if (!entry) {
      problems.push(`${rel} is missing`);
      continue;
    }
    if (entry.size !== expected.size_bytes) {
      problems.push(`${rel} has ${entry.size} bytes, manifest says ${expected.size_bytes}`);
      continue;
    }
    let sha256 = entry.sha256;
    if (!sha256) {
      // Small plain-git files on HF carry no sha256 in listings: read them (they are small) to check.
      const local = join(scratch, 'check', rel);
      const got = await store.download(entry.path, local);
      if (!got.ok) return { ok: false, failure: fromStore(got.failure, `checking ${entry.path}`) };
      sha256 = got.value.sha256;
    }
    if (sha256 !== expected.sha256) problems.push(`${rel} has sha256 ${sha256.slice(0, 12)}, manifest says ${expected.sha256.slice(0, 12)}`);
  }
  for (const rel of staged.keys()) if (rel !== MANIFEST_NAME && !(rel in manifest.files)) problems.push(`${rel} is staged but not in the manifest`);
  return { ok: true, value: problems };
}

/** The release's files; with GCS, each is matched to a local run file whose bytes match the manifest. */
async function plannedFiles(dir: string, manifest: StagingManifest, needLocal: boolean): Promise<PlannedFile[]> {
  const local = new Map<string, string>();
  if (needLocal) {
    const collected = await stagedRunFiles(dir);
    if (collected.ok) for (const f of collected.files) local.set(f.rel, f.localPath);
  }
  const out: PlannedFile[] = [];
  for (const [rel, entry] of Object.entries(manifest.files)) {
    const file: PlannedFile = { rel, production: productionPath(rel), sha256: entry.sha256, size: entry.size_bytes };
    const candidate = local.get(rel);
    if (candidate) {
      const digest = await digestFile(candidate).catch(() => null);
      if (digest && digest.sha256 === entry.sha256) file.localPath = candidate;
    }
    out.push(file);
  }
  return out;
}
