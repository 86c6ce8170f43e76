import type { CommandContext } from './command.ts';
import type { PreparedBuild } from './prepare-build.ts';
import { builderOf } from './run-source.ts';
import { modalTransport } from '../executors/modal/config.ts';
import { readCoordinatorRecord, resumeCoordinator } from '../executors/modal/coordinator.ts';
import { RemoteRuns } from '../executors/modal/remote-state.ts';
import { TransportError } from '../executors/modal/transport.ts';
import { UsageError } from '../report/failures.ts';
import { checkRunId } from '../run.ts';

/** Assignments a resume may carry: they say where and which run, not what it builds. */
const WHERE = new Set(['EXECUTOR', 'RUN_ID', 'REPO', 'BRANCH']);

/**
 * `./build.ts pipeline EXECUTOR=modal RUN_ID=<id> --detach` (what `status` prints for a run whose
 * coordinator died for good): starts a new coordinator call for that run on the volume, with the
 * arguments its first coordinator had (coordinator.json), and prints the run id. The new one
 * resumes as a coordinator Modal restarted does: cache hits for what finished, the journal's
 * in-flight calls reattached. Refused (exit 2, nothing started) for a run not on the volume, one
 * that ended, one of another SHA than the one pinned here, or one whose coordinator still beats.
 */
export async function resumeOnModal({ argv, settings, logger }: Pick<CommandContext, 'argv' | 'settings' | 'logger'>, p: PreparedBuild, runIdText: string): Promise<number> {
  const runId = checkRunId(runIdText);
  const transport = modalTransport(settings.modal);
  const remote = new RemoteRuns(transport, settings.cacheDir);
  const read = await remote.readMeta(runId).catch((error: Error) => {
    throw new UsageError('bad-run', `run ${runId} cannot be read on ${remote.label}: ${error.message.split('\n')[0]}`);
  });
  if (!read.ok) throw new UsageError('bad-run', `run ${runId} is not on ${remote.label}, so there is nothing to resume; list runs with ./build.ts status`);
  const meta = read.value;
  const start = './build.ts pipeline EXECUTOR=modal --detach';
  if (meta.status !== 'running') throw new UsageError('not-resumable', `run ${runId} has ended (${meta.status}); nothing to resume: start a new run with ${start}`);
  if (meta.sha !== p.sha) {
    throw new UsageError('not-resumable', `run ${runId} builds ${meta.sha}, and ${p.repo} is pinned at ${p.sha}; check out the run's SHA (git checkout ${meta.sha}) to resume it`);
  }
  for (const a of argv.assignments) {
    const [name, value] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
    if (!WHERE.has(name) && meta.variables[name] !== value) {
      throw new UsageError('not-resumable', `run ${runId} resumes with the variables it started with, and ${a} differs (${meta.variables[name] === undefined ? 'unset' : `${name}=${meta.variables[name]}`} there); drop ${name}= or start a new run with ${start}`);
    }
  }
  if ((await builderOf({ where: remote.label, cacheDir: remote.mirrorDir, remote }, meta)) === 'alive') {
    throw new UsageError('not-resumable', `run ${runId} has a live coordinator (its heartbeat is fresh): it is running; follow it with ./build.ts logs RUN_ID=${runId} -f`);
  }
  const record = await readCoordinatorRecord(transport, runId);
  if (!record?.args || !record.env) throw new UsageError('not-resumable', `run ${runId} records no coordinator arguments (coordinator.json), so it cannot be resumed; start a new run with ${start}`);
  const started = await resumeCoordinator({ transport, cacheDir: p.cacheDir, root: settings.root, run: meta, record: { ...record, args: record.args, env: record.env }, now: new Date() }).catch((error: unknown) => {
    throw error instanceof TransportError ? new UsageError(error.reason, `starting the coordinator on ${settings.modal.standinDir ? 'the Modal stand-in' : 'Modal'} failed: ${error.message}`) : error;
  });
  if (argv.flags.json) logger.emit({ event: 'detached', runId: started.runId, callId: started.callId, buildsys: started.buildsys, uploadedBytes: started.uploadedBytes });
  else process.stdout.write(`${started.runId}\n`);
  return 0;
}
