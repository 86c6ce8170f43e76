import { spawn } from 'node:child_process';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandContext } from './command.ts';
import { prepareBuild } from './prepare-build.ts';
import { UsageError } from '../report/failures.ts';
import { cliEnv } from './settings.ts';
import { allocateRun, startingMeta, writeMeta } from '../run.ts';
import { missingSecret } from '../secret-env.ts';

/**
 * `--detach`: validates and pins the SHA here (so bad input still fails in the foreground with
 * exit 2), allocates the run, then re-executes the CLI in the background on that run and SHA,
 * with its plain output in the run's run.log; with EXECUTOR=modal the CLI runs on Modal instead,
 * as the run's coordinator (detach-remote.ts), and nothing is left running here. Prints the run id and returns at once. `args` are
 * the raw arguments (re-executed without `--detach`), `argv` and `goals` as the CLI parsed them.
 */
export async function detach({ args, argv, settings, logger }: CommandContext, goals: string[] | 'default'): Promise<number> {
  // A dry run builds nothing and records no run: detached, it left a run that never started,
  // reported as `interrupted` once the background process had printed its plan and exited.
  if (argv.flags.dryRun) throw new UsageError('dry-run-detached', '-n prints a plan and runs nothing, so there is nothing to detach; drop --detach (or -n)');
  const p = await prepareBuild(argv, goals, settings, { preflight: true });
  const secret = missingSecret(p.graph, p.goals, settings.env);
  if (secret) throw secret;
  if (p.vars.EXECUTOR === 'modal') return (await import('./detach-remote.ts')).detachToModal({ args, argv, settings, logger }, p);
  const { runId, dir } = await allocateRun(p.cacheDir, p.version, p.sha, new Date());
  await mkdir(dir, { recursive: true });
  const log = await open(join(dir, 'run.log'), 'a');
  const child = spawn(process.execPath, [process.argv[1]!, ...args.filter((a) => a !== '--detach')], {
    detached: true,
    stdio: ['ignore', log.fd, log.fd],
    env: cliEnv(settings.env, { CI: '1', BUILD_RUN_ID: runId, BUILD_PINNED_SHA: p.sha, BUILD_PINNED_DIRTY: p.dirty ? '1' : '0' }),
  });
  child.unref();
  await log.close();
  // `status` and `logs -f` can see the run at once; the child (whose pid this records) takes over
  // meta.json as soon as it starts building.
  await writeMeta(dir, startingMeta(p, runId, child.pid ?? process.pid, new Date()));
  if (argv.flags.json) logger.emit({ event: 'detached', runId, ...(child.pid !== undefined ? { pid: child.pid } : {}) });
  else process.stdout.write(`${runId}\n`);
  return 0;
}
