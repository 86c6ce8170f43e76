import type { Argv } from './argv.ts';
import type { Settings } from './settings.ts';
import { UsageError } from '../report/failures.ts';
import { isAlive } from '../caching/action-lock.ts';
import { checkRunId, listRunIds, readMeta, type RunMeta } from '../run.ts';
import { builderOf, findRun, remoteRuns, resumeCommand, shownStatus, unreachable } from './run-source.ts';
import { parseVariables } from '../variables.ts';
import { VARIABLES } from '../../tasks/index.ts';

/** A run still marked running whose process is gone was killed; say so instead of "running". */
export function effectiveStatus(meta: RunMeta): string {
  return meta.status === 'running' && !isAlive(meta.pid) ? 'interrupted' : meta.status;
}

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

/** A target glob (`h5:states/*`): `*` any run of characters, `?` one. */
function globPattern(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/** `./build.ts status [RUN_ID=... [<target glob>] [--failed]] [--json]`: local runs, and the runs on the Modal volume when Modal is configured. */
export async function statusCommand(argv: Argv, settings: Settings, words: string[] = []): Promise<number> {
  const vars = parseVariables(argv.assignments, VARIABLES);
  const dir = settings.cacheDir;
  if (!vars.RUN_ID && (words.length || argv.flags.failed)) throw new UsageError('missing-run-id', 'a target filter or --failed needs RUN_ID=<run id>; list runs with ./build.ts status');
  if (words.length > 1) throw new UsageError('unexpected-argument', `status takes one target glob, not '${words[1]}'`);
  if (vars.RUN_ID) {
    const runId = checkRunId(vars.RUN_ID);
    const { source, meta } = await findRun(runId, settings);
    const builder = source.remote ? await builderOf(source, meta) : null;
    const status = builder ? shownStatus(meta, builder) : effectiveStatus(meta);
    const glob = words[0] ? globPattern(words[0]) : null;
    const shown = Object.entries(meta.targets).filter(([name, t]) => (!glob || glob.test(name)) && (!argv.flags.failed || t.outcome === 'failed' || t.outcome === 'cancelled'));
    const lost = source.remote && status === 'interrupted';
    if (argv.flags.json) {
      process.stdout.write(`${JSON.stringify({ ...meta, status, where: source.where, ...(lost && { resume: resumeCommand(runId) }), targets: Object.fromEntries(shown) })}\n`);
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
      out.push(`  ${t.outcome.padEnd(9)} ${name}${where} ${t.durationMs !== undefined ? seconds(t.durationMs) : ''}${t.error ? `  ${t.error.split('\n')[0]}` : ''}`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  }
  const rows: string[] = [];
  const row = (m: RunMeta, status: string, where: string, note = '') => {
    if (argv.flags.json) {
      process.stdout.write(`${JSON.stringify({ runId: m.runId, status, where, sha: m.sha, startedAt: m.startedAt, durationMs: m.durationMs, ...m.counts, ...(note && { resume: resumeCommand(m.runId) }) })}\n`);
      return;
    }
    rows.push(
      `${m.runId.padEnd(40)} ${status.padEnd(11)} ${where.padEnd(8)} ${m.sha.slice(0, 8)}  ${m.startedAt.slice(0, 19)}  ${seconds(m.durationMs).padStart(8)}  ${m.counts.built} built, ${m.counts.cached} cached${m.counts.failed ? `, ${m.counts.failed} failed` : ''}${m.counts.cancelled ? `, ${m.counts.cancelled} cancelled` : ''}${note}`,
    );
  };
  const corrupt = (id: string, where: string, message: string) => {
    if (argv.flags.json) process.stdout.write(`${JSON.stringify({ runId: id, status: 'corrupt', where, error: message })}\n`);
    else rows.push(`${id.padEnd(40)} corrupt: ${message}`);
  };
  const local = await listRunIds(dir);
  for (const id of local) {
    const read = await readMeta(dir, id);
    if (read.ok) row(read.value, effectiveStatus(read.value), 'local');
    else corrupt(id, 'local', read.failure.message);
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
        row(read.value, status, remote.label, status === 'interrupted' ? `  (coordinator lost; resume: ${resumeCommand(id)})` : '');
      }
    } catch (error) {
      process.stderr.write(`${unreachable(remote, error)}\n`);
    }
  }
  if (!argv.flags.json) process.stdout.write(rows.length ? `${'run'.padEnd(40)} ${'status'.padEnd(11)} ${'where'.padEnd(8)} sha       started              duration  targets\n${rows.join('\n')}\n` : 'no runs yet; start one with ./build.ts pipeline\n');
  return 0;
}
