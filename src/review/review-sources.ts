import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Failure, Result } from '../report/failures.ts';
import type { PublishStores } from '../publish/config.ts';
import { MANIFEST_NAME, releaseManifestPath, stagedRunFiles, stagingPrefix } from '../publish/layout.ts';
import { currentEntry, findVersion, readRegistry, type Registry } from '../publish/registry.ts';
import { publishSection } from '../publish/run-publish.ts';
import { parseManifest } from '../publish/staging-manifest.ts';
import { readMeta, RUN_ID_PATTERN, runDir, runMetaSchema, type RunMeta } from '../run.ts';
import { digestFile, type Store } from '../stores/store.ts';
import { readDiagnostics, type Diagnostics } from './diagnostics.ts';
import type { ManifestFiles } from './file-changes.ts';

/**
 * The two sides a review compares, read from where they live: a run from its directory under
 * `cache/runs/` (diagnostics, meta.json, and the staged manifest, or the manifest its files would
 * make), and a registered version from the release store, at the `diagnostics_path` its registry
 * entry records and the `releases/<version>/manifest.json` promote committed with its files.
 */

/** One side of a review. */
export interface ReviewSide {
  kind: 'run' | 'version';
  /** `run 1.72.3_...` or `version 1.72.3`. */
  label: string;
  /** The run this side was built by, when known (a version's `pipeline_run_id`). */
  runId?: string;
  version?: string;
  /** The run's meta.json (for a version: the copy uploaded with its diagnostics), when there is one. */
  meta: RunMeta | null;
  diagnostics: Diagnostics;
  /** The files promote publishes (or published), by staged path. */
  manifest: ManifestFiles | null;
  /** What could not be read, one line each (diagnostics' notes included). */
  notes: string[];
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};

const fail = (reason: string, message: string): { ok: false; failure: Failure } => ({ ok: false, failure: { reason, message } });

/** A run from the local cache. With the release store given, a staged run's manifest is read from staging. */
export async function runSide(options: { cacheDir: string; runId: string; release?: Store; manifest?: ManifestFiles }): Promise<Result<ReviewSide>> {
  const read = await readMeta(options.cacheDir, options.runId);
  if (!read.ok) return fail('run-not-found', read.message);
  const dir = runDir(options.cacheDir, options.runId);
  const diagnostics = await readDiagnostics(
    (name) => readFile(join(dir, 'diagnostics', name), 'utf8').catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? null : Promise.reject(error))),
    `run ${options.runId}'s diagnostics/`,
  );
  const notes = [...diagnostics.notes];
  const manifest = options.manifest ?? (await runManifest(dir, read.meta, options.release, notes));
  return { ok: true, value: { kind: 'run', label: `run ${options.runId}`, runId: options.runId, version: read.meta.version, meta: read.meta, diagnostics, manifest, notes } };
}

/** The staged manifest's files, else those the run's files would stage (hashed here). */
async function runManifest(dir: string, meta: RunMeta, release: Store | undefined, notes: string[]): Promise<ManifestFiles | null> {
  const staging = publishSection(meta).staging;
  if (staging && release && staging.store === release.location) {
    const got = await release.readVersioned(`${stagingPrefix(meta.runId)}${MANIFEST_NAME}`);
    const parsed = got.ok && got.value ? parseManifest(got.value.bytes) : null;
    if (parsed?.ok) return parsed.manifest.files;
    notes.push(`the staged manifest of run ${meta.runId} could not be read from ${release.location}; listing the run's own files instead`);
  }
  const collected = await stagedRunFiles(dir);
  if (!collected.ok) {
    notes.push(`run ${meta.runId} has no ${collected.missing}: what promote would publish is unknown`);
    return null;
  }
  const files: Record<string, { sha256: string; size_bytes: number }> = {};
  for (const f of collected.files) {
    const d = await digestFile(f.localPath);
    files[f.rel] = { sha256: d.sha256, size_bytes: d.size };
  }
  return files;
}

/**
 * A registered version (default: the current one) from the release store. `ok: true, value: null`
 * when nothing is registered yet; an unknown version is a failure.
 */
export async function versionSide(options: { stores: PublishStores; version?: string; registry?: Registry; scope?: 'all' | 'targets' }): Promise<Result<ReviewSide | null>> {
  const { stores } = options;
  const read = options.registry ? null : await readRegistry(stores.registryHome);
  if (read && !read.ok) return read;
  const registry = options.registry ?? read!.value.registry;
  const entry = options.version ? findVersion(registry, options.version) : currentEntry(registry);
  if (!entry) {
    if (options.version) return fail('unknown-version', `version ${options.version} is not registered in ${stores.registryHome.location}; list versions with ./build.ts versions`);
    return { ok: true, value: null };
  }
  const notes: string[] = [];
  const store = stores.release;
  const fromStore = async (path: string): Promise<string | null> => {
    const got = await store.readVersioned(path);
    if (!got.ok) throw new Error(got.failure.message);
    return got.value ? new TextDecoder().decode(got.value.bytes) : null;
  };
  const prefix = entry.diagnostics_path;
  const where = `version ${entry.version}'s diagnostics (${prefix ?? 'none recorded'})`;
  const scope = options.scope ?? 'all';
  const diagnostics = await readDiagnostics(prefix ? (name) => fromStore(`${prefix}${name}`) : async () => null, where, scope);
  if (!prefix) notes.push(`version ${entry.version} has no diagnostics_path in the registry (${entry.special_operation ? `a ${entry.special_operation}` : 'registered by another tool'}): nothing to compare the fits with`);
  notes.push(...diagnostics.notes);
  let meta: RunMeta | null = null;
  if (prefix && scope === 'all') {
    const text = await fromStore(`${prefix}meta.json`).catch(() => null);
    const parsed = text ? runMetaSchema.safeParse(parseJson(text)) : null;
    if (parsed?.success) meta = parsed.data;
    else notes.push(`meta.json: not readable in ${where}: the timeline and header of ${entry.version} are unknown`);
  }
  let manifest: ManifestFiles | null = null;
  const released = await fromStore(releaseManifestPath(entry.version)).catch(() => null);
  const parsed = released ? parseManifest(new TextEncoder().encode(released)) : null;
  if (parsed?.ok) manifest = parsed.manifest.files;
  else notes.push(`${releaseManifestPath(entry.version)} is not in ${store.location}: file changes against ${entry.version} are unknown`);
  return {
    ok: true,
    value: { kind: 'version', label: `version ${entry.version}`, version: entry.version, ...(entry.pipeline_run_id && { runId: entry.pipeline_run_id }), meta, diagnostics, manifest, notes },
  };
}

/** The run under review and what it is compared with. */
export interface ReviewSides {
  run: ReviewSide;
  /** Null when nothing is registered yet (and no AGAINST was given). */
  base: ReviewSide | null;
}

/**
 * Reads a run and its base: `against` names a registered version or another run (an id in the
 * run-id format); without it, the registry's current version.
 */
export async function readSides(options: {
  cacheDir: string;
  runId: string;
  stores: PublishStores;
  against?: string;
  /** Already read by the caller (promote's preflight): the run's staged manifest files and the registry. */
  known?: { manifest?: ManifestFiles; registry?: Registry };
  /** `targets`: of a registered base, only what the numbers need (fewer store reads; no curves, no meta). */
  scope?: 'all' | 'targets';
}): Promise<Result<ReviewSides>> {
  const known = options.known;
  const run = await runSide({ cacheDir: options.cacheDir, runId: options.runId, release: options.stores.release, ...(known?.manifest && { manifest: known.manifest }) });
  if (!run.ok) return run;
  const against = options.against;
  if (against && RUN_ID_PATTERN.test(against)) {
    const other = await runSide({ cacheDir: options.cacheDir, runId: against, release: options.stores.release });
    return other.ok ? { ok: true, value: { run: run.value, base: other.value } } : other;
  }
  const base = await versionSide({ stores: options.stores, ...(against && { version: against }), ...(known?.registry && { registry: known.registry }), ...(options.scope && { scope: options.scope }) });
  return base.ok ? { ok: true, value: { run: run.value, base: base.value } } : base;
}
