import type { CommandContext } from './command.ts';
import type { PreparedBuild } from './prepare-build.ts';
import { modalTransport } from '../executors/modal/config.ts';
import { startCoordinator } from '../executors/modal/coordinator.ts';
import { executorChooser } from '../executor-choice.ts';
import { TransportError } from '../executors/modal/transport.ts';
import { UsageError } from '../report/failures.ts';

/**
 * Non-secret settings the coordinator's CLI reads from its environment, passed on as the operator
 * has them. Tokens are never passed (a remote action's secret is a Modal secret), nor local paths.
 */
const FORWARDED_SETTINGS = ['HF_REPO', 'HF_REPO_TYPE', 'GCS_BUCKET', 'HF_ENDPOINT', 'GCS_ENDPOINT', 'BUILD_MODAL_BATCH_QUIET_MS', 'BUILD_HASH_WORKERS'] as const;

/**
 * `./build.ts pipeline EXECUTOR=modal --detach`: the variables were validated and the SHA pinned
 * here (detach.ts); the coordinator is started as a Modal call (the stand-in's with
 * MODAL_STANDIN_DIR) on a run id allocated on the volume, whose meta.json is written there at
 * once. Prints the run id and returns: nothing of the run runs on this machine. With RUN_ID=<id>
 * it resumes that run instead (resume-remote.ts).
 */
export async function detachToModal({ args, argv, settings, logger }: Pick<CommandContext, 'args' | 'argv' | 'settings' | 'logger'>, p: PreparedBuild): Promise<number> {
  if (settings.tasksFile) throw new UsageError('not-remote', 'BUILD_TASKS names a local declaration the coordinator on Modal cannot load; unset it, or detach without EXECUTOR=modal');
  if (argv.assignments.some((a) => a.startsWith('STORE_DIR=')) || settings.publish.STORE_DIR) {
    throw new UsageError('not-remote', 'STORE_DIR is a directory of this machine, which the coordinator on Modal cannot write; use HF_REPO (or the default store, on the volume), or detach without EXECUTOR=modal');
  }
  // RUN_ID=<id>: that run on the volume gets a new coordinator (resume-remote.ts), no new run.
  if (p.vars.RUN_ID) return (await import('./resume-remote.ts')).resumeOnModal({ argv, settings, logger }, p, p.vars.RUN_ID);
  // The coordinator checks out the pinned SHA itself (REPO= is added there) and keeps the branch this machine resolved.
  const forwarded = args.filter((a) => a !== '--detach' && !a.startsWith('REPO='));
  if (!argv.assignments.some((a) => a.startsWith('BRANCH='))) forwarded.push(`BRANCH=${p.branch}`);
  const env: Record<string, string> = {};
  for (const name of FORWARDED_SETTINGS) if (settings.env[name]) env[name] = settings.env[name];
  // Its call's Modal secrets: publishing's token when it stages to Hugging Face, and the secret
  // variables of the targets it runs in its own container (those not sent to Modal).
  const executorFor = executorChooser(p.pipeline, p.vars);
  const ownTargets = p.graph.select(p.goals).names.flatMap((n) => {
    const node = p.graph.get(n);
    return node.kind === 'target' && executorFor(node.target) === 'local' ? (node.target.secretEnv ?? []) : [];
  });
  const secretEnv = [...new Set([...(env.HF_REPO ? ['HF_TOKEN'] : []), ...ownTargets])].sort();
  const started = await startCoordinator({
    transport: modalTransport(settings.modal),
    cacheDir: p.cacheDir,
    root: settings.root,
    run: p,
    args: forwarded,
    env,
    secretEnv,
    now: new Date(),
  }).catch((error: unknown) => {
    // Nothing was started that runs (at most files on the volume): a configuration problem to fix.
    throw error instanceof TransportError ? new UsageError(error.reason, `starting the coordinator on ${settings.modal.standinDir ? 'the Modal stand-in' : 'Modal'} failed: ${error.message}`) : error;
  });
  if (argv.flags.json) logger.emit({ event: 'detached', runId: started.runId, callId: started.callId, buildsys: started.buildsys, uploadedBytes: started.uploadedBytes });
  else process.stdout.write(`${started.runId}\n`);
  return 0;
}
