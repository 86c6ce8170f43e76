import { accessSync, constants } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { failed, UsageError, type Failure, type Result } from './report/failures.ts';
import { writeFileAtomic } from './util/fs-atomic.ts';
import { outputRecordSchema } from './output-record.ts';
import { processStartTime } from './util/process-identity.ts';

/**
 * A run is one build: `{version}_{sha8}_{YYYYMMDD_HHMMSS}` (the real pipeline's format). It writes
 * only under `cache/runs/<run_id>/`: meta.json, artifacts/, diagnostics/, h5s/, logs/, tree/.
 * Earlier runs are never modified; the content-addressed store is what runs share.
 */
export type RunId = string & { readonly __brand: 'RunId' };

export const RUN_ID_PATTERN = /^[0-9A-Za-z.+-]+_[0-9a-f]{8}_\d{8}_\d{6}$/;

export function makeRunId(version: string, sha: string, at: Date): RunId {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}_${p(at.getUTCHours())}${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}`;
  return `${version}_${sha.slice(0, 8)}_${stamp}` as RunId;
}

/** Refuses anything that is not a run id before it is joined into a path. */
export function checkRunId(value: string): RunId {
  if (value.includes('/') || value.includes('\\') || value.includes('..')) {
    throw new UsageError('bad-run-id', `RUN_ID=${value} contains a path separator or '..'; pass a run id as listed by ./build.ts status`);
  }
  if (!RUN_ID_PATTERN.test(value)) {
    throw new UsageError('bad-run-id', `RUN_ID=${value} is not a run id (version_sha8_YYYYMMDD_HHMMSS); see ./build.ts status`);
  }
  return value as RunId;
}

/** What a target's line says beside its outcome: in its `target` event and in meta.json alike. */
export const targetMarks = {
  /** Built with the same output bytes as the last run that had it: what depends on it can stay cached (early cutoff). */
  identicalOutput: z.literal(true).optional(),
  /** It ran from its checkpoint directory's content, left by an earlier attempt of the same action. */
  resumedFromCheckpoint: z.literal(true).optional(),
  /** Cached from the action cache every machine shares (the Modal volume): another machine built it. */
  fromSharedCache: z.literal(true).optional(),
};

export const targetOutcomeSchema = z.object({
  outcome: z.enum(['built', 'cached', 'failed', 'skipped', 'running', 'cancelled']),
  key: z.string().optional(),
  executor: z.string().optional(),
  startedAt: z.string().optional(),
  /** When a target that ran settled (for a batch member: when its batch's outputs were checked). */
  finishedAt: z.string().optional(),
  durationMs: z.number().optional(),
  error: z.string().optional(),
  /** Remote bookkeeping: call id, resource class, queue/run seconds, GPU seconds. */
  remote: z.record(z.string(), z.unknown()).optional(),
  /** A built or cached target's outputs, as its cache entry holds them (what a replay links). */
  outputs: z.record(z.string(), outputRecordSchema).optional(),
  ...targetMarks,
});
export type TargetOutcome = z.infer<typeof targetOutcomeSchema>;

export const runStatusSchema = z.enum(['running', 'completed', 'failed', 'cancelled', 'promoted']);
export type RunStatus = z.infer<typeof runStatusSchema>;

export const runMetaSchema = z.object({
  runId: z.string(),
  status: runStatusSchema,
  version: z.string(),
  sha: z.string(),
  branch: z.string(),
  repo: z.string(),
  /** Set when the user opted in to uncommitted changes: the snapshot commit actually built. */
  dirty: z.boolean(),
  goals: z.array(z.string()),
  variables: z.record(z.string(), z.string()),
  pid: z.number(),
  /** The process's start time (util/process-identity.ts): a reused PID is not taken for the run's process. Absent in older runs. */
  pidStart: z.string().optional(),
  /** The machine the process runs on: from another one (a shared cache), its liveness cannot be checked here. */
  host: z.string().optional(),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  durationMs: z.number().optional(),
  /** `cancelled` is absent in runs recorded before it was counted apart from `failed`. */
  counts: z.object({ built: z.number(), cached: z.number(), failed: z.number(), cancelled: z.number().optional(), skipped: z.number() }),
  targets: z.record(z.string(), targetOutcomeSchema),
  error: z.string().optional(),
  /** A completed build's inputs as one digest (replay.ts): a later build with the same one replays this run. */
  inputsKey: z.string().optional(),
  /** Set when this run replayed that earlier run instead of walking the graph. */
  replayedFrom: z.string().optional(),
  /** Free-form sections owned by later stages (publishing, promote), validated where they are read. */
  publish: z.record(z.string(), z.unknown()).optional(),
});
export type RunMeta = z.infer<typeof runMetaSchema>;

/** What a run pinned and was asked for, as prepare() resolved it. */
export interface RunRequest {
  version: string;
  sha: string;
  branch: string;
  repo: string;
  dirty: boolean;
  goals: string[];
  vars: Readonly<Record<string, string>>;
}

/** A run's meta.json before its first target (the build itself, or `--detach` on its behalf). */
export function startingMeta(request: RunRequest, runId: string, pid: number, startedAt: Date): RunMeta {
  const { version, sha, branch, repo, dirty, goals, vars } = request;
  return {
    runId, status: 'running', version, sha, branch, repo, dirty, goals, variables: { ...vars }, pid, pidStart: processStartTime(pid), host: hostname(),
    startedAt: startedAt.toISOString(), counts: { built: 0, cached: 0, failed: 0, cancelled: 0, skipped: 0 }, targets: {},
  };
}

export function runDir(cacheDir: string, runId: string): string {
  return join(cacheDir, 'runs', runId);
}

/**
 * Allocates a fresh run directory. Two runs started in the same second would share an id, so the
 * timestamp moves forward until `mkdir` (atomic) succeeds: ids keep their format and never clash.
 */
export async function allocateRun(cacheDir: string, version: string, sha: string, now: Date): Promise<{ runId: RunId; dir: string }> {
  await mkdir(join(cacheDir, 'runs'), { recursive: true }).catch((error: unknown) => {
    // A recursive mkdir on a read-only mount says ENOENT: ask the directory itself why.
    try {
      accessSync(cacheDir, constants.W_OK);
    } catch (access) {
      throw Object.assign(access as Error, { path: join(cacheDir, 'runs') });
    }
    throw error;
  });
  for (let offset = 0; ; offset++) {
    const runId = makeRunId(version, sha, new Date(now.getTime() + offset * 1000));
    const dir = runDir(cacheDir, runId);
    try {
      await mkdir(dir);
      return { runId, dir };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

export async function writeMeta(dir: string, meta: RunMeta): Promise<void> {
  await writeFileAtomic(join(dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
}

/** A run's meta.json, or why it cannot be read: the run does not exist, or its record is corrupt. */
export type MetaRead = Result<RunMeta, Failure<'bad-run'>>;

/** Reads and validates a run's meta.json; a corrupt one is reported, never trusted. */
export async function readMeta(cacheDir: string, runId: string): Promise<MetaRead> {
  const path = join(runDir(cacheDir, runId), 'meta.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    // The directory without its record: the build stopped (a full disk, a kill) before writing it.
    const made = await stat(runDir(cacheDir, runId)).then((s) => s.isDirectory(), () => false);
    return failed({
      reason: 'bad-run',
      message: made ? `run ${runId} has no meta.json (half-made: its build stopped before recording it); ./build.ts gc removes it` : `run ${runId} does not exist; list runs with ./build.ts status`,
    });
  }
  try {
    return { ok: true, value: runMetaSchema.parse(JSON.parse(text)) };
  } catch (error) {
    const why = error instanceof z.ZodError ? (error.issues[0]?.path.join('.') ?? '') + ' ' + error.issues[0]?.message : (error as Error).message;
    return failed({ reason: 'bad-run', message: `${path} is corrupt (${why.trim()}); it is not trusted — inspect or delete that run directory` });
  }
}

/**
 * Every run id on disk, newest first (ids end in their UTC start time). Ids are ASCII, so plain
 * comparison orders them: `localeCompare` goes through ICU and took ~13 ms for a few hundred runs.
 */
export async function listRunIds(cacheDir: string): Promise<string[]> {
  return sortRunIds((await readdir(join(cacheDir, 'runs')).catch(() => [] as string[])).filter((n) => RUN_ID_PATTERN.test(n)));
}

/** Run ids newest first, by the UTC start time they end in. */
export function sortRunIds(ids: string[]): string[] {
  const newestFirst = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0);
  return [...ids].sort((a, b) => newestFirst(a.slice(-15), b.slice(-15)) || newestFirst(a, b));
}
