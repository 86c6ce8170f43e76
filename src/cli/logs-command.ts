import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv } from './argv.ts';
import { cacheDir } from './settings.ts';
import { UsageError } from '../report/failures.ts';
import { checkRunId, readMeta, runDir, type RunMeta } from '../run.ts';
import { effectiveStatus } from './status-command.ts';
import { isAlive } from '../caching/action-lock.ts';
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
export async function logsCommand(argv: Argv): Promise<number> {
  const vars = parseVariables(argv.assignments, VARIABLES);
  if (!vars.RUN_ID) throw new UsageError('missing-run-id', 'logs needs RUN_ID=<run id>; list runs with ./build.ts status');
  const runId = checkRunId(vars.RUN_ID);
  const dir = cacheDir();
  const first = await readMeta(dir, runId);
  if (!first.ok) throw new UsageError('bad-run', first.message);
  const file = join(runDir(dir, runId), 'run.log');
  let offset = 0;
  for (;;) {
    offset += await copyFrom(file, offset);
    if (!argv.flags.follow) return 0;
    // Follow while the run's process lives: it still publishes after meta.json says completed.
    const meta = await readMeta(dir, runId);
    if (!meta.ok || !isAlive(meta.meta.pid)) {
      offset += await copyFrom(file, offset);
      if (!meta.ok) throw new UsageError('bad-run', meta.message);
      return runExitCode(meta.meta);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
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
