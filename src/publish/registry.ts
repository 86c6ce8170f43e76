import { z } from 'zod';
import { REGISTRY_PATH } from './layout.ts';
import { fromStore, publishFail, type PublishEmit, type PublishFailure, type PublishResult } from './result.ts';
import type { Store, StoreVersion } from '../stores/store.ts';

/**
 * The version registry, `version_manifest.json`, in the real schema (reference §5.1):
 * `{current, versions[]}` newest first, each `{version, created_at, hf {repo, commit} | null,
 * gcs {bucket, generations}, special_operation?, roll_back_version?, pipeline_run_id?,
 * diagnostics_path?}`. Keys this code does not know (e.g. `policyengine_us`) are kept as they
 * are, so rewriting the registry never drops another producer's data.
 *
 * Unlike the real `upload_manifest` (an unlocked read-modify-write on two backends, W6), every
 * change here is a compare-and-swap: read the document with its version (GCS generation, HF
 * commit), apply a pure change, write with `ifGenerationMatch` / `parentCommit`; a lost race is
 * retried on fresh state, so no concurrent update is lost. The home copy (GCS when configured) is
 * authoritative; the mirror (HF, what consumers read) is then refreshed from it.
 *
 * Three extensions, documented because they are not in the Python schema: `gcs` is null when no
 * bucket is configured (local or HF-only flows), and entries published to the local store carry
 * `local {dir, versions}`, per-file versions, because the local store's versions are per path
 * rather than snapshots (an HF commit pins the whole repo, so `hf.commit` suffices there); and
 * `quality_override`, present only when promote was forced past failed quality gates.
 */
export const HfInfoSchema = z.looseObject({ repo: z.string().min(1), commit: z.string().min(1) });
/** Where a version's objects are on GCS: object name -> generation (upload-returned). */
export const GcsInfoSchema = z.looseObject({ bucket: z.string().min(1), generations: z.record(z.string(), z.number().int()) });
/** Extension for the local store: path -> local version (its versions are per path). */
export const LocalInfoSchema = z.looseObject({ dir: z.string().min(1), versions: z.record(z.string(), z.number().int()) });

/** One registered version (real schema + the documented extensions). */
export const VersionEntrySchema = z.looseObject({
  version: z.string().min(1),
  created_at: z.string(),
  hf: HfInfoSchema.nullable(),
  gcs: GcsInfoSchema.nullable(),
  special_operation: z.string().optional(),
  roll_back_version: z.string().optional(),
  pipeline_run_id: z.string().optional(),
  diagnostics_path: z.string().optional(),
  local: LocalInfoSchema.optional(),
  /** Extension: promote was forced (FORCE=1) past these failed quality gates (src/review/quality-gates.ts). */
  quality_override: z.looseObject({ forced: z.literal(true), failed: z.array(z.string()) }).optional(),
});
export type VersionEntry = z.infer<typeof VersionEntrySchema>;

/** The whole document: `current` is "" when nothing is registered. */
export const RegistrySchema = z.looseObject({ current: z.string(), versions: z.array(VersionEntrySchema) });
export type Registry = z.infer<typeof RegistrySchema>;

/** The registry before the first promote. */
export const emptyRegistry = (): Registry => ({ current: '', versions: [] });

/** Serialises like the real code (`indent=2`), with the real key order; absent optional keys are omitted. */
export function registryBytes(registry: Registry): Uint8Array {
  const versions = registry.versions.map((entry) => {
    const { version, created_at, hf, gcs, special_operation, roll_back_version, pipeline_run_id, diagnostics_path, ...rest } = entry;
    return { version, created_at, hf, gcs, special_operation, roll_back_version, pipeline_run_id, diagnostics_path, ...rest };
  });
  const { current, versions: _old, ...rest } = registry;
  return new TextEncoder().encode(`${JSON.stringify({ current, versions, ...rest }, null, 2)}\n`);
}

/** Parses registry bytes; a corrupt registry is a failure, never silently replaced. */
export function parseRegistry(bytes: Uint8Array, where: string): PublishResult<Registry> {
  try {
    return { ok: true, value: RegistrySchema.parse(JSON.parse(new TextDecoder().decode(bytes))) };
  } catch (error) {
    const why = error instanceof z.ZodError ? `${error.issues[0]?.path.join('.')}: ${error.issues[0]?.message}` : (error as Error).message;
    return publishFail('registry-corrupt', `${REGISTRY_PATH} in ${where} is not a valid registry (${why}); fix it by hand before publishing`);
  }
}

/** Reads the registry (empty when it does not exist yet) with the version it was read at. */
export async function readRegistry(store: Store): Promise<PublishResult<{ registry: Registry; version: StoreVersion | null }>> {
  const read = await store.readVersioned(REGISTRY_PATH);
  if (!read.ok) return { ok: false, failure: fromStore(read.failure, `reading the registry`) };
  if (!read.value) return { ok: true, value: { registry: emptyRegistry(), version: null } };
  const parsed = parseRegistry(read.value.bytes, store.location);
  return parsed.ok ? { ok: true, value: { registry: parsed.value, version: read.value.version } } : parsed;
}

/** The entry of a version, if registered. */
export const findVersion = (registry: Registry, version: string): VersionEntry | undefined => registry.versions.find((v) => v.version === version);

/** The entry `current` names (what BUILD_DB=0 reads). */
export const currentEntry = (registry: Registry): VersionEntry | undefined => (registry.current ? findVersion(registry, registry.current) : undefined);

/** A pure change to the registry: a new document, nothing to do, or a refusal. */
export type RegistryChange = { kind: 'write'; registry: Registry } | { kind: 'noop' } | { kind: 'refuse'; failure: PublishFailure };

/**
 * Adds `entry` as the newest version and makes it current. An entry already there for the same
 * run and operation is a no-op (a rerun after a lost answer); any other entry with that version is
 * a refusal: a version names one content, forever.
 */
export function addEntry(entry: VersionEntry): (registry: Registry) => RegistryChange {
  return (registry) => {
    const existing = findVersion(registry, entry.version);
    if (existing) {
      if (sameRelease(existing, entry)) return { kind: 'noop' };
      return { kind: 'refuse', failure: { reason: 'version-exists', message: `version ${entry.version} is already registered (${describeEntry(existing)}); choose another version` } };
    }
    return { kind: 'write', registry: { ...registry, current: entry.version, versions: [entry, ...registry.versions] } };
  };
}

/** Whether two entries record the same release (same run, or the same rollback). */
export function sameRelease(a: VersionEntry, b: VersionEntry): boolean {
  return (a.pipeline_run_id ?? null) === (b.pipeline_run_id ?? null) && (a.special_operation ?? null) === (b.special_operation ?? null) && (a.roll_back_version ?? null) === (b.roll_back_version ?? null);
}

/** Where an entry came from, for messages. */
export function describeEntry(entry: VersionEntry): string {
  if (entry.special_operation) return `${entry.special_operation} to ${entry.roll_back_version ?? '?'}`;
  return entry.pipeline_run_id ? `from run ${entry.pipeline_run_id}` : 'by another tool';
}

/** Options of {@link updateRegistry}. */
export interface UpdateOptions {
  home: Store;
  mirror?: Store;
  message: string;
  emit?: PublishEmit;
  /** Compare-and-swap attempts before giving up on a contended registry (default 8). */
  attempts?: number;
}

/** What an update did, for the caller's report. */
export interface UpdateOutcome {
  /** False when the change was already there (no-op). */
  wrote: boolean;
  registry: Registry;
  /** Version of the home document after the update. */
  version: StoreVersion | null;
  /** Whether the mirror now holds the home's bytes (undefined: no mirror). */
  mirrored?: boolean;
}

/**
 * Applies `change` to the authoritative registry with compare-and-swap, retrying on fresh state
 * when another writer got in first, then refreshes the mirror. A failure before the home write
 * leaves the registry untouched; a mirror failure is reported with `step: 'registry-mirror'`
 * (the home already has the change; rerunning refreshes the mirror).
 */
export async function updateRegistry(change: (registry: Registry) => RegistryChange, options: UpdateOptions): Promise<PublishResult<UpdateOutcome>> {
  const { home } = options;
  let outcome: UpdateOutcome | undefined;
  for (let attempt = 1; attempt <= (options.attempts ?? 8) && !outcome; attempt++) {
    const read = await readRegistry(home);
    if (!read.ok) return read;
    const decided = change(read.value.registry);
    if (decided.kind === 'refuse') return { ok: false, failure: decided.failure };
    if (decided.kind === 'noop') {
      outcome = { wrote: false, registry: read.value.registry, version: read.value.version };
      break;
    }
    const written = await home.writeIfVersion(REGISTRY_PATH, registryBytes(decided.registry), read.value.version, { message: options.message });
    if (written.ok) outcome = { wrote: true, registry: decided.registry, version: written.value.version };
    else if (written.failure.reason === 'conflict') options.emit?.('registry', `registry changed under us in ${home.location} (attempt ${attempt}); re-reading and retrying`);
    else return { ok: false, failure: fromStore(written.failure, `writing the registry to ${home.location}`) };
  }
  if (!outcome) return publishFail('registry-contended', `the registry in ${home.location} kept changing during ${options.attempts ?? 8} attempts; nothing was registered, retry`);
  if (!options.mirror) return { ok: true, value: outcome };
  const mirrored = await mirrorRegistry(home, options.mirror, options.message);
  if (!mirrored.ok) return { ok: false, failure: { ...mirrored.failure, step: 'registry-mirror' } };
  return { ok: true, value: { ...outcome, mirrored: true } };
}

/**
 * Copies the home registry to the mirror. The mirror is read *before* the home, and written only
 * if it is still at that version: a slower writer can never replace a newer registry with an
 * older one (any home change it missed happened before a mirror change that makes its write lose).
 */
export async function mirrorRegistry(home: Store, mirror: Store, message: string, attempts = 8): Promise<PublishResult<{ wrote: boolean }>> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const before = await mirror.readVersioned(REGISTRY_PATH);
    if (!before.ok) return { ok: false, failure: fromStore(before.failure, `reading the registry mirror`) };
    const source = await home.readVersioned(REGISTRY_PATH);
    if (!source.ok) return { ok: false, failure: fromStore(source.failure, `reading the registry`) };
    if (!source.value) return { ok: true, value: { wrote: false } };
    if (before.value && Buffer.from(before.value.bytes).equals(Buffer.from(source.value.bytes))) return { ok: true, value: { wrote: false } };
    const written = await mirror.writeIfVersion(REGISTRY_PATH, source.value.bytes, before.value?.version ?? null, { message });
    if (written.ok) return { ok: true, value: { wrote: true } };
    if (written.failure.reason !== 'conflict') return { ok: false, failure: fromStore(written.failure, `mirroring the registry to ${mirror.location}`) };
  }
  return publishFail('registry-contended', `the registry mirror in ${mirror.location} kept changing; rerun to refresh it`);
}
