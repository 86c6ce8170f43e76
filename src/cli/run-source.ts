import type { Settings } from './settings.ts';
import { runProcessAlive } from '../run-state.ts';
import { modalTransport } from '../executors/modal/config.ts';
import { RemoteRuns } from '../executors/modal/remote-state.ts';
import { UsageError } from '../report/failures.ts';
import { builderState, type BuilderState } from '../run-heartbeat.ts';
import { readMeta, type RunMeta } from '../run.ts';

/**
 * Where a run lives, for the commands that read one (status, logs, promote, fetch, explain): the
 * local cache, or the shared state on the Modal volume (executors/modal/remote-state.ts), whose
 * files are read from a local mirror laid out like a cache dir. `cacheDir` is the directory whose
 * `runs/<id>/` holds the run (or its copy), so the local code paths read either unchanged.
 */
export interface RunSource {
  /** `local`, `modal:<volume>` or `standin`. */
  where: string;
  cacheDir: string;
  /** Set for a run on the volume: how to download more of its files. */
  remote?: RemoteRuns;
}

/** The volume's runs, when Modal is configured (the stand-in, or a token); else null. */
export function remoteRuns(settings: Settings): RemoteRuns | null {
  return settings.modal.configured ? new RemoteRuns(modalTransport(settings.modal), settings.cacheDir) : null;
}

/** One line naming why the volume could not be read (status goes on with local runs). */
export function unreachable(remote: RemoteRuns, error: unknown): string {
  return `cannot read the runs on ${remote.label} (${(error as Error).message.split('\n')[0]}); showing local runs only`;
}

/**
 * A run by id: the local cache first, else the volume. A run on neither, or a volume that cannot
 * be read, is a usage error naming the problem (no stack trace).
 */
export async function findRun(runId: string, settings: Settings): Promise<{ source: RunSource; meta: RunMeta }> {
  const local = await readMeta(settings.cacheDir, runId);
  if (local.ok) return { source: { where: 'local', cacheDir: settings.cacheDir }, meta: local.value };
  const remote = remoteRuns(settings);
  if (!remote || local.failure.message.includes('is corrupt')) throw new UsageError('bad-run', local.failure.message);
  let read;
  try {
    read = await remote.readMeta(runId);
  } catch (error) {
    throw new UsageError('bad-run', `run ${runId} is not in the local cache, and the runs on ${remote.label} cannot be read: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!read.ok) throw new UsageError('bad-run', read.failure.message.replace('does not exist', `exists neither locally nor on ${remote.label}`));
  return { source: { where: remote.label, cacheDir: remote.mirrorDir, remote }, meta: read.value };
}

/**
 * Whether the process building a run is still there: locally its pid; on the volume its
 * heartbeat (run-heartbeat.ts), since a coordinator's pid means nothing here.
 */
export async function builderOf(source: RunSource, meta: RunMeta): Promise<BuilderState> {
  if (!source.remote) return runProcessAlive(meta) ? 'alive' : meta.status === 'running' ? 'lost' : 'ended';
  return builderState(await source.remote.readHeartbeat(meta.runId), meta.startedAt, Date.now());
}

/** A run still marked running whose builder is gone was killed: `interrupted`, not `running`. */
export function shownStatus(meta: RunMeta, builder: BuilderState): string {
  return meta.status === 'running' && builder === 'lost' ? 'interrupted' : meta.status;
}

/** What resumes a run on the volume whose coordinator died for good. */
export function resumeCommand(runId: string): string {
  return `./build.ts pipeline EXECUTOR=modal RUN_ID=${runId} --detach`;
}

/**
 * Where promote, report and diff read a run: the local cache, else (Modal configured) the
 * volume's shared state, whose meta.json and diagnostics are mirrored locally first. A run on
 * neither is left to the caller, which refuses it as for any missing run (`run-not-found`). The
 * released files come from the store's staging either way.
 */
export async function mirroredRun(runId: string, settings: Settings): Promise<RunSource> {
  const local: RunSource = { where: 'local', cacheDir: settings.cacheDir };
  const remote = remoteRuns(settings);
  if ((await readMeta(settings.cacheDir, runId)).ok || !remote) return local;
  const onVolume = await remote.has(runId).catch((error: Error) => {
    throw new UsageError('bad-run', `run ${runId} is not in the local cache, and the runs on ${remote.label} cannot be read: ${error.message.split('\n')[0]}`);
  });
  if (!onVolume) return local;
  const read = await remote.mirrorRecord(runId);
  if (!read.ok) throw new UsageError('bad-run', read.failure.message);
  return { where: remote.label, cacheDir: remote.mirrorDir, remote };
}
