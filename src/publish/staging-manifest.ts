import { z } from 'zod';
import { EXPECTED_AREA_COUNTS, FILE_KINDS, kindOf, type FileKind } from './layout.ts';
import type { Sha256Hex } from '../stores/store.ts';
import { failed, type Failure, type Result } from '../report/failures.ts';

/**
 * `staging/{run_id}/manifest.json`: the real pipeline's local-area manifest (reference §5.3,
 * `{version, created_at, files: {rel: {sha256, size_bytes}}, totals, run_id}`), extended to the
 * base datasets and calibration files a run stages, with totals for every kind.
 *
 * It is the contract between staging and promote: promote refuses to publish anything that does
 * not match it byte for byte (the real `verify_manifest` only warned, W8). Its bytes are a pure
 * function of the run (created_at is the run's finish time), so re-staging the same run writes
 * the same manifest and the append-only staging area accepts it.
 */
const count = z.number().int().nonnegative();

/** Schema of the staging manifest (validated whenever it is read back). */
export const StagingManifestSchema = z.object({
  version: z.string().min(1),
  created_at: z.string(),
  run_id: z.string(),
  files: z.record(
    z.string(),
    z.object({
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      size_bytes: z.number().int().nonnegative(),
    }),
  ),
  totals: z.object({
    national: count,
    states: count,
    districts: count,
    cities: count,
    calibration: count,
    datasets: count,
    total_size_bytes: count,
  }),
});
export type StagingManifest = z.infer<typeof StagingManifestSchema>;

/** One file as hashed for the manifest. */
export interface ManifestFile {
  rel: string;
  sha256: Sha256Hex;
  size: number;
}

/** Builds the manifest; keys sorted, so the bytes are canonical. */
export function buildManifest(input: { version: string; createdAt: string; runId: string; files: ManifestFile[] }): StagingManifest {
  const totals = { ...Object.fromEntries(FILE_KINDS.map((k) => [k, 0])), total_size_bytes: 0 } as Record<FileKind | 'total_size_bytes', number>;
  const files: StagingManifest['files'] = {};
  for (const file of [...input.files].sort((a, b) => (a.rel < b.rel ? -1 : 1))) {
    files[file.rel] = { sha256: file.sha256, size_bytes: file.size };
    const kind = kindOf(file.rel);
    if (kind) totals[kind]++;
    totals.total_size_bytes += file.size;
  }
  return { version: input.version, created_at: input.createdAt, run_id: input.runId, files, totals };
}

/** The manifest's bytes: two-space JSON with a trailing newline, like the real `json.dump(indent=2)`. */
export const manifestBytes = (manifest: StagingManifest): Uint8Array => new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);

/** Parses manifest bytes; a corrupt manifest is a failure, never trusted. */
export function parseManifest(bytes: Uint8Array): Result<StagingManifest, Failure<'manifest-corrupt'>> {
  try {
    return { ok: true, value: StagingManifestSchema.parse(JSON.parse(new TextDecoder().decode(bytes))) };
  } catch (error) {
    const why = error instanceof z.ZodError ? `${error.issues[0]?.path.join('.')}: ${error.issues[0]?.message}` : (error as Error).message;
    return failed({ reason: 'manifest-corrupt', message: why });
  }
}

/** Area kinds whose count differs from a complete release, as `states: 50 (expected 51)`. */
export function countProblems(manifest: StagingManifest): string[] {
  const counts: Partial<Record<FileKind, number>> = {};
  for (const rel of Object.keys(manifest.files)) {
    const kind = kindOf(rel);
    if (kind) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return Object.entries(EXPECTED_AREA_COUNTS)
    .filter(([kind, expected]) => (counts[kind as FileKind] ?? 0) !== expected)
    .map(([kind, expected]) => `${kind}: ${counts[kind as FileKind] ?? 0} (expected ${expected})`);
}
