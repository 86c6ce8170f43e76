import { existsSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv } from './argv.ts';
import type { Settings } from './settings.ts';
import { UsageError } from '../report/failures.ts';
import { checkRunId, readMeta, runDir, type RunMeta } from '../run.ts';
import type { BuilderState } from '../run-heartbeat.ts';
import { builderOf, findRun, resumeCommand, shownStatus, type RunSource } from './run-source.ts';
import { parseVariables } from '../variables.ts';
import { VARIABLES } from '../../tasks/index.ts';

/**
 * The exit code of a followed run, as the build itself returned it: 0 completed (or promoted),
 * 1 failed or interrupted (its process died), 130 cancelled. So `--detach ... && logs -f && promote` scripts.
 */
export function runExitCode(meta: RunMeta, builder: BuilderState): number {
  const status = shownStatus(meta, builder);
  if (status === 'completed' || status === 'promoted') return 0;
  return status === 'cancelled' ? 130 : 1;
}

/**
 * `./build.ts logs RUN_ID=... [-f] [<target>]`: the run's event log; with -f, follows it until the
 * run ends and exits with its result. A run on the Modal volume (run-source.ts) is read the same
 * way, its log files polled through the transport, and followed until its coordinator ends.
 */
export async function logsCommand(argv: Argv, settings: Settings, words: string[] = []): Promise<number> {
  const vars = parseVariables(argv.assignments, VARIABLES);
  if (!vars.RUN_ID) throw new UsageError('missing-run-id', 'logs needs RUN_ID=<run id>; list runs with ./build.ts status');
  if (words.length > 1) throw new UsageError('unexpected-argument', `logs takes at most one target, not '${words[1]}'`);
  const runId = checkRunId(vars.RUN_ID);
  const { source, meta: first } = await findRun(runId, settings);
  const logs = runLogs(source, runId);
  const target = words[0];
  const rel = target ? `logs/${targetLogName(target)}` : 'run.log';
  if (target && !(await logs.exists(rel))) {
    const outcome = first.targets[target]?.outcome;
    throw new UsageError('no-target-log', `${target} has no log in run ${runId} (${outcome ? `it was ${outcome}` : 'the run has no such target'}); see ./build.ts status RUN_ID=${runId}`);
  }
  const pollMs = source.remote && !source.remote.transport.id.startsWith('standin:') ? 3000 : 300;
  const builder = () => builderOf(source, first);
  // A detached run's run.log appears once its coordinator starts (a Modal container can take a
  // while): following a run whose builder lives waits for it rather than taking the run for a
  // foreground one that has no run.log.
  if (!target && argv.flags.follow) {
    while (!(await logs.exists(rel)) && (await builder()) === 'alive') await sleep(pollMs);
  }
  // A foreground run has no run.log (its output went to the terminal): print each target's log.
  if (!target && !(await logs.exists(rel))) {
    for (const name of (await logs.list('logs')).sort()) {
      process.stdout.write(`== ${name.replace(/\.log$/, '')} ==\n`);
      await logs.copyFrom(`logs/${name}`, 0);
    }
    if (!argv.flags.follow) return 0;
    const meta = await readRunMeta(source, runId);
    return followedExit(source, meta);
  }
  let offset = 0;
  for (;;) {
    offset += await logs.copyFrom(rel, offset);
    if (!argv.flags.follow) return 0;
    // Follow while the run's builder lives: it still publishes after meta.json says completed.
    const meta = await readRunMeta(source, runId);
    const state = await builderOf(source, meta);
    if (state !== 'alive') {
      offset += await logs.copyFrom(rel, offset);
      // Read once more: the builder may have ended between the two reads above.
      const last = await readRunMeta(source, runId);
      return followedExit(source, last);
    }
    await sleep(pollMs);
  }
}

/** A followed run's exit code; a run whose builder is gone mid-run also gets a line saying so and what resumes it. */
async function followedExit(source: RunSource, meta: RunMeta): Promise<number> {
  const builder = await builderOf(source, meta);
  if (shownStatus(meta, builder) === 'interrupted') {
    const resume = source.remote ? `resume it with ${resumeCommand(meta.runId)}` : 'rerun the same build (what it finished is cached)';
    process.stderr.write(`run ${meta.runId} is interrupted: its ${source.remote ? 'coordinator' : 'build process'} is gone; ${resume}\n`);
  }
  return runExitCode(meta, builder);
}

/** The run's meta.json now (from the volume for a remote run); unreadable is a usage error. */
async function readRunMeta(source: RunSource, runId: string): Promise<RunMeta> {
  const meta = source.remote ? await source.remote.readMeta(runId) : await readMeta(source.cacheDir, runId);
  if (!meta.ok) throw new UsageError('bad-run', meta.failure.message);
  return meta.value;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A run's log files, read from the local run directory or, for a run on the volume, downloaded into its mirror first. */
function runLogs(source: RunSource, runId: string) {
  const local = (rel: string) => join(runDir(source.cacheDir, runId), rel);
  return {
    exists: async (rel: string) => (source.remote ? (await source.remote.download(runId, rel)) !== null : existsSync(local(rel))),
    list: async (sub: string) => (source.remote ? source.remote.listRunDir(runId, sub) : readdir(local(sub)).catch(() => [] as string[])),
    copyFrom: async (rel: string, offset: number) => {
      if (source.remote) await source.remote.download(runId, rel);
      return copyFrom(local(rel), offset);
    },
  };
}

/** A target's log file name in the run's logs/ (as target-build.ts names it). */
export function targetLogName(target: string): string {
  return `${target.replace(/[/:]/g, '_')}.log`;
}

async function copyFrom(file: string, offset: number): Promise<number> {
  const handle = await open(file, 'r').catch(() => null);
  if (!handle) return 0;
  try {
    const { size } = await handle.stat();
    if (size <= offset) return 0;
    const buffer = Buffer.alloc(size - offset);
    await handle.read(buffer, 0, buffer.length, offset);
    process.stdout.write(buffer);
    return buffer.length;
  } finally {
    await handle.close();
  }
}
