import type { CommandContext } from './command.ts';
import type { Event } from '../report/events.ts';
import { UsageError } from '../report/failures.ts';
import { checkRunId, listRunIds, readMeta, type RunMeta } from '../run.ts';
import { effectiveStatus, formatAge, runState } from '../run-state.ts';
import { parseVariables } from '../variables.ts';
import { targetGlob } from '../util/target-glob.ts';
import { VARIABLES } from '../../tasks/index.ts';

const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)}s`);

/** GPU-hours spent on remote fits in this run, and saved by cache hits on earlier ones. */
export function gpuHours(meta: RunMeta): { spent: number; saved: number } {
  let spent = 0;
  let saved = 0;
  for (const t of Object.values(meta.targets)) {
    const gpuSeconds = typeof t.remote?.gpuSeconds === 'number' ? t.remote.gpuSeconds : 0;
    if (t.outcome === 'cached' && t.remote?.saved) saved += gpuSeconds;
    else if (t.outcome === 'built') spent += gpuSeconds;
  }
  return { spent: spent / 3600, saved: saved / 3600 };
}

/** A run's `run` event: its record, counts flattened (a `summary` event's field names). */
function runEvent(meta: RunMeta): Extract<Event, { event: 'run' }> {
  const { runId, sha, branch, repo, dirty, goals, variables, startedAt, finishedAt, durationMs, counts, replayedFrom, error } = meta;
  const gpu = gpuHours(meta);
  return {
    event: 'run', runId, status: effectiveStatus(meta), sha, branch, repo, dirty, goals, variables, startedAt,
    ...(finishedAt !== undefined && { finishedAt }), ...(durationMs !== undefined && { durationMs }),
    built: counts.built, cached: counts.cached, failed: counts.failed, cancelled: counts.cancelled ?? 0, skipped: counts.skipped,
    ...(replayedFrom && { replayedFrom }), gpuHoursSpent: gpu.spent, gpuHoursSaved: gpu.saved, ...(error && { error }),
  };
}

/** `./build.ts status [RUN_ID=... [<target glob>] [--failed]] [--json]`. */
export async function statusCommand({ argv, settings, words, logger }: CommandContext): Promise<number> {
  const vars = parseVariables(argv.assignments, VARIABLES);
  const dir = settings.cacheDir;
  if (!vars.RUN_ID && (words.length || argv.flags.failed)) throw new UsageError('missing-run-id', 'a target filter or --failed needs RUN_ID=<run id>; list runs with ./build.ts status');
  if (words.length > 1) throw new UsageError('unexpected-argument', `status takes one target glob, not '${words[1]}'`);
  if (vars.RUN_ID) {
    const runId = checkRunId(vars.RUN_ID);
    const read = await readMeta(dir, runId);
    if (!read.ok) throw new UsageError('bad-run', read.failure.message);
    const meta = read.value;
    const glob = words[0] ? targetGlob(words[0]) : null;
    const shown = Object.entries(meta.targets).filter(([name, t]) => (!glob || glob.test(name)) && (!argv.flags.failed || t.outcome === 'failed' || t.outcome === 'cancelled'));
    if (argv.flags.json) {
      logger.emit(runEvent(meta));
      for (const [target, t] of shown.sort(([a], [b]) => a.localeCompare(b))) {
        // `outputs` is the cache entry's record, which `cache ls` and the run's files show.
        const { outputs: _outputs, ...recorded } = t;
        logger.emit({ event: 'run-target', runId, target, ...recorded });
      }
      return 0;
    }
    const gpu = gpuHours(meta);
    const out = [
      `run       ${meta.runId}`,
      `status    ${effectiveStatus(meta)}${meta.error ? ` (${meta.error.split('\n')[0]})` : ''}`,
      `sha       ${meta.sha}${meta.dirty ? ' (dirty: uncommitted changes)' : ''}`,
      `branch    ${meta.branch}   repo ${meta.repo}`,
      `started   ${meta.startedAt}   duration ${seconds(meta.durationMs)}`,
      `counts    ${meta.counts.built} built, ${meta.counts.cached} cached, ${meta.counts.failed} failed, ${meta.counts.cancelled ?? 0} cancelled, ${meta.counts.skipped} skipped`,
      `gpu       ${gpu.spent.toFixed(3)} GPU-hours spent, ${gpu.saved.toFixed(3)} saved by cache hits`,
      `variables ${Object.entries(meta.variables).map(([k, v]) => `${k}=${v}`).join(' ') || '(defaults)'}`,
      '',
    ];
    for (const [name, t] of shown.sort(([a], [b]) => a.localeCompare(b))) {
      const where = t.executor && t.executor !== 'local' ? ` [${t.executor}]` : '';
      out.push(`  ${t.outcome.padEnd(9)} ${name}${where} ${t.durationMs !== undefined ? seconds(t.durationMs) : ''}${t.error ? `  ${t.error.split('\n')[0]}` : ''}`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  }
  const rows: string[] = [];
  const now = Date.now();
  for (const id of await listRunIds(dir)) {
    const state = await runState(dir, id, now);
    if (state.kind === 'corrupt') {
      if (argv.flags.json) logger.emit({ event: 'run', runId: id, status: 'corrupt', error: state.message });
      else rows.push(`${id.padEnd(40)} corrupt: ${state.message}`);
      continue;
    }
    // No meta.json: the build stopped before recording the run (a full disk, a kill); gc collects it.
    if (state.kind === 'half-made') {
      const status = state.starting ? 'starting' : 'half-made';
      if (argv.flags.json) logger.emit({ event: 'run', runId: id, status, ageMs: Math.round(state.ageMs) });
      else rows.push(`${id.padEnd(40)} ${status.padEnd(11)} -         -                           -  no meta.json, ${formatAge(state.ageMs)} old${state.starting ? '' : '; ./build.ts gc removes it'}`);
      continue;
    }
    const m = state.meta;
    if (argv.flags.json) {
      logger.emit({ ...runEvent(m), status: state.status, ...(state.status === 'interrupted' ? { ageMs: Math.round(state.ageMs) } : {}) });
      continue;
    }
    const interrupted = state.status === 'interrupted' ? `; process ${m.pid} gone, started ${formatAge(state.ageMs)} ago; ./build.ts gc removes it` : '';
    rows.push(
      `${m.runId.padEnd(40)} ${state.status.padEnd(11)} ${m.sha.slice(0, 8)}  ${m.startedAt.slice(0, 19)}  ${seconds(m.durationMs).padStart(8)}  ${m.counts.built} built, ${m.counts.cached} cached${m.counts.failed ? `, ${m.counts.failed} failed` : ''}${m.counts.cancelled ? `, ${m.counts.cancelled} cancelled` : ''}${interrupted}`,
    );
  }
  if (!argv.flags.json) process.stdout.write(rows.length ? `${'run'.padEnd(40)} ${'status'.padEnd(11)} sha       started              duration  targets\n${rows.join('\n')}\n` : 'no runs yet; start one with ./build.ts pipeline\n');
  return 0;
}
