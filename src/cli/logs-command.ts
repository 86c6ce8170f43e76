import { existsSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv } from './argv.ts';
import type { Settings } from './settings.ts';
import { UsageError } from '../report/failures.ts';
import { checkRunId, readMeta, runDir, type RunMeta } from '../run.ts';
import { effectiveStatus, runProcessAlive } from '../run-state.ts';
import { parseVariables } from '../variables.ts';
import { VARIABLES } from '../../tasks/index.ts';

/**
 * The exit code of a followed run, as the build itself returned it: 0 completed (or promoted),
 * 1 failed or interrupted (its process died), 130 cancelled. So `--detach ... && logs -f && promote` scripts.
 */
export function runExitCode(meta: RunMeta): number {
  const status = effectiveStatus(meta);
  if (status === 'completed' || status === 'promoted') return 0;
  return status === 'cancelled' ? 130 : 1;
}

/** `./build.ts logs RUN_ID=... [-f]`: the run's event log; with -f, follows it until the run ends and exits with its result. */
export async function logsCommand(argv: Argv, settings: Settings, words: string[] = []): Promise<number> {
  const vars = parseVariables(argv.assignments, VARIABLES);
  if (!vars.RUN_ID) throw new UsageError('missing-run-id', 'logs needs RUN_ID=<run id>; list runs with ./build.ts status');
  if (words.length > 1) throw new UsageError('unexpected-argument', `logs takes at most one target, not '${words[1]}'`);
  const runId = checkRunId(vars.RUN_ID);
  const dir = settings.cacheDir;
  const first = await readMeta(dir, runId);
  if (!first.ok) throw new UsageError('bad-run', first.failure.message);
  const target = words[0];
  const logsDir = join(runDir(dir, runId), 'logs');
  const file = target ? join(logsDir, targetLogName(target)) : join(runDir(dir, runId), 'run.log');
  if (target && !existsSync(file)) {
    const outcome = first.value.targets[target]?.outcome;
    throw new UsageError('no-target-log', `${target} has no log in run ${runId} (${outcome ? `it was ${outcome}` : 'the run has no such target'}); see ./build.ts status RUN_ID=${runId}`);
  }
  // A foreground run has no run.log (its output went to the terminal): print each target's log.
  if (!target && !existsSync(file)) {
    for (const name of (await readdir(logsDir).catch(() => [] as string[])).sort()) {
      process.stdout.write(`== ${name.replace(/\.log$/, '')} ==\n`);
      await copyFrom(join(logsDir, name), 0);
    }
    return argv.flags.follow ? runExitCode(first.value) : 0;
  }
  let offset = 0;
  for (;;) {
    offset += await copyFrom(file, offset);
    if (!argv.flags.follow) return 0;
    // Follow while the run's process lives: it still publishes after meta.json says completed.
    const meta = await readMeta(dir, runId);
    if (!meta.ok || !runProcessAlive(meta.value)) {
      offset += await copyFrom(file, offset);
      if (!meta.ok) throw new UsageError('bad-run', meta.failure.message);
      return runExitCode(meta.value);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
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
