import { z } from 'zod';
import { readMeta, runDir, writeMeta, type RunMeta, type RunStatus } from '../run.ts';

/**
 * The `publish` section of a run's meta.json (run.ts leaves it free-form and owned by publishing):
 * what was staged, and what promote did. Validated here, where it is read; an unreadable section
 * is treated as absent, so a run is never promoted on the strength of a corrupt record.
 */
export const StagingRecordSchema = z.object({
  /** The release store the run was staged to (`file:/dir`, `hf:org/repo@main`). */
  store: z.string(),
  diagnosticsPath: z.string(),
  stagingPath: z.string(),
  /** sha256 of the staging manifest's bytes: promote checks the staged manifest is this one. */
  manifestSha256: z.string().regex(/^[0-9a-f]{64}$/),
  files: z.number().int(),
  bytes: z.number().int(),
  stagedAt: z.string(),
});
export type StagingRecord = z.infer<typeof StagingRecordSchema>;

/** The last promote of this run: the run is `promoted` only when `ok` (registry entry written). */
export const PromoteRecordSchema = z.object({
  version: z.string(),
  at: z.string(),
  ok: z.boolean(),
  /** The step that failed, when not ok. */
  failedStep: z.string().optional(),
  message: z.string().optional(),
  /** Where the registry entry lives once ok. */
  registry: z.string().optional(),
});
export type PromoteRecord = z.infer<typeof PromoteRecordSchema>;

/** The whole `publish` section. */
export const PublishSectionSchema = z.object({
  staging: StagingRecordSchema.optional(),
  /** Why the end-of-pipeline publishing failed, until a later `stage` succeeds. */
  stageError: z.string().optional(),
  promote: PromoteRecordSchema.optional(),
});
export type PublishSection = z.infer<typeof PublishSectionSchema>;

/** The run's publish section, validated ({} when absent or unreadable). */
export function publishSection(meta: RunMeta): PublishSection {
  const parsed = PublishSectionSchema.safeParse(meta.publish ?? {});
  return parsed.success ? parsed.data : {};
}

/**
 * Rewrites a run's meta.json with a new publish section (and optionally a new status). Runs are
 * finished when this is called, so nothing else writes their meta concurrently.
 */
export async function updateRunPublish(
  cacheDir: string,
  runId: string,
  change: (section: PublishSection) => PublishSection,
  status?: RunStatus,
): Promise<RunMeta> {
  const read = await readMeta(cacheDir, runId);
  if (!read.ok) throw new Error(read.failure.message);
  const meta: RunMeta = { ...read.value, publish: change(publishSection(read.value)), ...(status && { status }) };
  await writeMeta(runDir(cacheDir, runId), meta);
  return meta;
}
