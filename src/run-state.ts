import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { readMeta, runDir, type RunMeta, type RunStatus } from './run.ts';
import { isAlive } from './util/process-identity.ts';

/**
 * What a run directory is now, for `status` and `gc`. A run no process will finish must be
 * visible and collectable, or a full disk or a kill leaves it behind forever:
 * - `half-made`: the directory has no meta.json (the build stopped between allocating the run and
 *   recording it). Younger than {@link HALF_MADE_GRACE_MS} it may be a build starting this very
 *   moment (`starting`), so gc leaves it alone.
 * - `interrupted`: meta.json says running and its process is gone (or its PID is another process now).
 * - `corrupt`: meta.json cannot be read or validated; kept, since it cannot say what it is.
 */
export type RunState =
  | { kind: 'recorded'; runId: string; meta: RunMeta; status: RunStatus | 'interrupted'; ageMs: number }
  | { kind: 'half-made'; runId: string; ageMs: number; starting: boolean }
  | { kind: 'corrupt'; runId: string; message: string };

/**
 * How long a run directory without meta.json counts as a build starting: a build writes its
 * meta.json right after allocating the directory, so ten minutes is far beyond any real gap.
 */
export const HALF_MADE_GRACE_MS = 10 * 60_000;

/**
 * Whether the process a run's meta.json names is alive and is that process (not a reused PID).
 * A run recorded on another machine (a shared cache) is taken as alive: nothing here can tell.
 */
export function runProcessAlive(meta: RunMeta): boolean {
  if (meta.host && meta.host !== hostname()) return true;
  return runProcessHere(meta);
}

/** Whether the run's process is alive on this machine and is that process: what may be signalled. */
export function runProcessHere(meta: RunMeta): boolean {
  return (!meta.host || meta.host === hostname()) && isAlive(meta.pid, meta.pidStart ?? '');
}

/** A run still marked running whose process is gone was killed; say so instead of "running". */
export function effectiveStatus(meta: RunMeta): RunStatus | 'interrupted' {
  return meta.status === 'running' && !runProcessAlive(meta) ? 'interrupted' : meta.status;
}

/** Reads one run directory's state (`now` for ages). */
export async function runState(cacheDir: string, runId: string, now = Date.now()): Promise<RunState> {
  const read = await readMeta(cacheDir, runId);
  if (read.ok) return { kind: 'recorded', runId, meta: read.value, status: effectiveStatus(read.value), ageMs: now - Date.parse(read.value.startedAt) };
  const dir = runDir(cacheDir, runId);
  const hasMeta = await stat(join(dir, 'meta.json')).then(() => true, () => false);
  const dirStat = hasMeta ? null : await stat(dir).catch(() => null);
  if (!dirStat) return { kind: 'corrupt', runId, message: read.failure.message };
  const ageMs = Math.max(0, now - dirStat.mtimeMs);
  return { kind: 'half-made', runId, ageMs, starting: ageMs < HALF_MADE_GRACE_MS };
}

/** An age for people: `45s`, `12 min`, `3.5 h`, `2.1 days`. */
export function formatAge(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))}s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86_400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} days`;
}
