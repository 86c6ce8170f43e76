import { rm } from 'node:fs/promises';
import { acquireLease, releaseLease } from './lease.ts';
import type { PublishStores } from './config.ts';
import { fromStore, type PublishEmit, type PublishResult } from './result.ts';
import { readRegistry } from './registry.ts';
import { listRunIds, RUN_ID_PATTERN, runDir } from '../run.ts';
import { formatAge, runState } from '../run-state.ts';

/**
 * `./build.ts gc KEEP=N` and `./build.ts pipeline --clean-old-runs`: removes old runs that were
 * never promoted: their `staging/{run_id}/` on the release store and their `cache/runs/{run_id}/`
 * directory, keeping the newest N of them (nothing deleted the real pipeline's staging, §8).
 *
 * Never removed: a run marked promoted, a run any registered version names as its
 * `pipeline_run_id` (rollbacks included), a run still running (its process alive and the same
 * process), a run whose meta.json is corrupt, and diagnostics (append-only, named by
 * `diagnostics_path`). Always removed, whatever KEEP says: a run no process will finish, that is
 * a half-made one (no meta.json; older than run-state.ts's grace, so not a build starting now)
 * and an interrupted one (marked running, its process gone). Production paths are never
 * candidates: only `staging/` is listed. It holds the publish lease while deleting, so it cannot
 * remove the staging of a run being promoted at that moment.
 */
export interface GcInput {
  cacheDir: string;
  keep: number;
  stores: PublishStores;
  emit: PublishEmit;
  dryRun: boolean;
  /** Runs never removed regardless of age (the run that just finished). */
  protect?: string[];
}

/** What gc removed, kept (newest unpromoted), and protected (and why). */
export interface GcOutcome {
  removed: Array<{ runId: string; runDir: boolean; stagedFiles: number; why: string }>;
  kept: string[];
  protected: Array<{ runId: string; why: string }>;
}

/** Removes old unpromoted runs (dry run: only reports them). */
export async function gcRuns(input: GcInput): Promise<PublishResult<GcOutcome>> {
  const { stores, emit } = input;
  const lease = input.dryRun ? null : await acquireLease(stores.registryHome, { action: 'gc of old runs' });
  if (lease && !lease.ok) return lease;
  try {
    const registry = await readRegistry(stores.registryHome);
    if (!registry.ok) return registry;
    const why = new Map<string, string>();
    for (const entry of registry.value.registry.versions) if (entry.pipeline_run_id) why.set(entry.pipeline_run_id, `referenced by version ${entry.version}`);
    for (const id of input.protect ?? []) if (!why.has(id)) why.set(id, 'the current run');

    const local = new Set(await listRunIds(input.cacheDir));
    // Runs no process will finish: removed whatever KEEP says (their logs are all they hold).
    const abandoned = new Map<string, string>();
    for (const id of local) {
      if (why.has(id)) continue;
      const state = await runState(input.cacheDir, id);
      if (state.kind === 'corrupt') why.set(id, `meta.json unreadable: ${state.message}`);
      else if (state.kind === 'half-made') {
        if (state.starting) why.set(id, `no meta.json yet, ${formatAge(state.ageMs)} old: a build may be starting`);
        else abandoned.set(id, `half-made: no meta.json, ${formatAge(state.ageMs)} old`);
      } else if (state.status === 'promoted') why.set(id, 'promoted');
      else if (state.status === 'running') why.set(id, `running (pid ${state.meta.pid})`);
      else if (state.status === 'interrupted') abandoned.set(id, `interrupted: process ${state.meta.pid} gone, started ${formatAge(state.ageMs)} ago`);
    }
    const listed = await stores.release.list('staging/');
    if (!listed.ok) return { ok: false, failure: fromStore(listed.failure, 'listing staging/') };
    const staged = new Map<string, string[]>();
    for (const entry of listed.value) {
      const id = entry.path.split('/')[1] ?? '';
      if (RUN_ID_PATTERN.test(id)) staged.set(id, [...(staged.get(id) ?? []), entry.path]);
    }

    const stamp = (id: string) => id.slice(-15);
    const candidates = [...new Set([...local, ...staged.keys()])].filter((id) => !why.has(id) && !abandoned.has(id)).sort((a, b) => stamp(b).localeCompare(stamp(a)) || b.localeCompare(a));
    const kept = candidates.slice(0, input.keep);
    const doomed = [...abandoned.keys(), ...candidates.slice(input.keep)];
    const removed = doomed.map((runId) => ({ runId, runDir: local.has(runId), stagedFiles: staged.get(runId)?.length ?? 0, why: abandoned.get(runId) ?? `older than the newest ${input.keep} unpromoted` }));
    const protectedRuns = [...why].filter(([id]) => local.has(id) || staged.has(id)).map(([runId, reason]) => ({ runId, why: reason }));
    const verb = input.dryRun ? 'would remove' : 'removing';
    for (const r of removed) emit('gc', `${verb} run ${r.runId} (${r.why}): ${r.runDir ? 'run directory' : 'no run directory'}, ${r.stagedFiles} staged files in ${stores.release.location}`, r);
    for (const p of protectedRuns) emit('gc', `keeping run ${p.runId} (${p.why})`, p);
    if (kept.length) emit('gc', `keeping the newest ${kept.length} unpromoted run(s): ${kept.join(', ')}`, { kept });
    if (input.dryRun || removed.length === 0) return { ok: true, value: { removed, kept, protected: protectedRuns } };

    // Staging first (one batch), then the directories: a failed delete leaves the run whole for the next gc.
    const paths = doomed.flatMap((id) => staged.get(id) ?? []);
    if (paths.length > 0) {
      const deleted = await stores.release.delete(paths, { message: `Remove staging of ${doomed.length} unpromoted run(s)` });
      if (!deleted.ok) return { ok: false, failure: fromStore(deleted.failure, `removing old staging from ${stores.release.location}; no run was removed`) };
    }
    for (const id of doomed) if (local.has(id)) await rm(runDir(input.cacheDir, id), { recursive: true, force: true });
    emit('gc', `removed ${removed.length} run(s) and ${paths.length} staged files`, { removed: removed.length, stagedFiles: paths.length });
    return { ok: true, value: { removed, kept, protected: protectedRuns } };
  } finally {
    if (lease?.ok) {
      const warning = await releaseLease(lease.value);
      if (warning) emit('warning', `warning: ${warning}`);
    }
  }
}
