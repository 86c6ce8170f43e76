import type { CommandContext } from './command.ts';
import type { Event } from '../report/events.ts';
import { UsageError } from '../report/failures.ts';
import { marks } from '../report/logger.ts';
import { checkRunId, listRunIds, type RunMeta } from '../run.ts';
import { effectiveStatus, formatAge, runState } from '../run-state.ts';
import { builderOf, findRun, remoteRuns, resumeCommand, shownStatus, unreachable } from './run-source.ts';
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

/** `./build.ts status [RUN_ID=... [<target glob>] [--failed]] [--json]`: local runs, and the runs on the Modal volume when Modal is configured. */
export async function statusCommand({ argv, settings, words, logger }: CommandContext): Promise<number> {
  const vars = parseVariables(argv.assignments, VARIABLES);
  const dir = settings.cacheDir;
  if (!vars.RUN_ID && (words.length || argv.flags.failed)) throw new UsageError('missing-run-id', 'a target filter or --failed needs RUN_ID=<run id>; list runs with ./build.ts status');
  if (words.length > 1) throw new UsageError('unexpected-argument', `status takes one target glob, not '${words[1]}'`);
  if (vars.RUN_ID) {
    const runId = checkRunId(vars.RUN_ID);
    const { source, meta } = await findRun(runId, settings);
    const builder = source.remote ? await builderOf(source, meta) : null;
    const status = builder ? shownStatus(meta, builder) : effectiveStatus(meta);
    const glob = words[0] ? targetGlob(words[0]) : null;
    const shown = Object.entries(meta.targets).filter(([name, t]) => (!glob || glob.test(name)) && (!argv.flags.failed || t.outcome === 'failed' || t.outcome === 'cancelled'));
    const lost = source.remote && status === 'interrupted';
    if (argv.flags.json) {
      logger.emit({ ...runEvent(meta), status, where: source.where, ...(lost && { resume: resumeCommand(runId) }) });
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
      `where     ${source.where}`,
      `status    ${status}${meta.error ? ` (${meta.error.split('\n')[0]})` : ''}`,
      ...(lost ? [`          its coordinator stopped beating (died for good); resume it with ${resumeCommand(runId)}`] : []),
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
      out.push(`  ${t.outcome.padEnd(9)} ${name}${where} ${t.durationMs !== undefined ? seconds(t.durationMs) : ''}${marks(t)}${t.error ? `  ${t.error.split('\n')[0]}` : ''}`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  }
  const rows: string[] = [];
  const row = (m: RunMeta, status: string, where: string, o: { note?: string; resume?: boolean; ageMs?: number } = {}) => {
    if (argv.flags.json) {
      logger.emit({ ...runEvent(m), status, where, ...(o.resume && { resume: resumeCommand(m.runId) }), ...(o.ageMs !== undefined && { ageMs: Math.round(o.ageMs) }) });
      return;
    }
    rows.push(
      `${m.runId.padEnd(40)} ${status.padEnd(11)} ${where.padEnd(8)} ${m.sha.slice(0, 8)}  ${m.startedAt.slice(0, 19)}  ${seconds(m.durationMs).padStart(8)}  ${m.counts.built} built, ${m.counts.cached} cached${m.counts.failed ? `, ${m.counts.failed} failed` : ''}${m.counts.cancelled ? `, ${m.counts.cancelled} cancelled` : ''}${o.note ?? ''}`,
    );
  };
  const corrupt = (id: string, where: string, message: string) => {
    if (argv.flags.json) logger.emit({ event: 'run', runId: id, status: 'corrupt', where, error: message });
    else rows.push(`${id.padEnd(40)} corrupt: ${message}`);
  };
  const now = Date.now();
  for (const id of await listRunIds(dir)) {
    const state = await runState(dir, id, now);
    if (state.kind === 'corrupt') {
      corrupt(id, 'local', state.message);
      continue;
    }
    // No meta.json: the build stopped before recording the run (a full disk, a kill); gc collects it.
    if (state.kind === 'half-made') {
      const status = state.starting ? 'starting' : 'half-made';
      if (argv.flags.json) logger.emit({ event: 'run', runId: id, status, where: 'local', ageMs: Math.round(state.ageMs) });
      else rows.push(`${id.padEnd(40)} ${status.padEnd(11)} ${'local'.padEnd(8)} -         -                           -  no meta.json, ${formatAge(state.ageMs)} old${state.starting ? '' : '; ./build.ts gc removes it'}`);
      continue;
    }
    const m = state.meta;
    const interrupted = state.status === 'interrupted';
    row(m, state.status, 'local', interrupted ? { note: `; process ${m.pid} gone, started ${formatAge(state.ageMs)} ago; ./build.ts gc removes it`, ageMs: state.ageMs } : {});
  }
  const remote = remoteRuns(settings);
  if (remote) {
    // The volume may be unreachable (no network, an expired token): one warning, local runs only.
    try {
      const source = { where: remote.label, cacheDir: remote.mirrorDir, remote };
      // Every run on the volume, even one whose id a local run shares (ids are per second, per SHA).
      for (const id of await remote.listRunIds()) {
        const read = await remote.readMeta(id);
        if (!read.ok) {
          corrupt(id, remote.label, read.failure.message);
          continue;
        }
        const status = shownStatus(read.value, read.value.status === 'running' ? await builderOf(source, read.value) : 'ended');
        const lost = status === 'interrupted';
        row(read.value, status, remote.label, lost ? { note: `  (coordinator lost; resume: ${resumeCommand(id)})`, resume: true } : {});
      }
    } catch (error) {
      if (argv.flags.json) logger.emit({ event: 'warning', message: unreachable(remote, error) });
      else process.stderr.write(`warning: ${unreachable(remote, error)}\n`);
    }
  }
  if (!argv.flags.json) process.stdout.write(rows.length ? `${'run'.padEnd(40)} ${'status'.padEnd(11)} ${'where'.padEnd(8)} sha       started              duration  targets\n${rows.join('\n')}\n` : 'no runs yet; start one with ./build.ts pipeline\n');
  return 0;
}
