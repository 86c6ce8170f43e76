import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRunId, runMetaSchema, type RunId, type RunMeta, type RunRequest as RunRecordRequest } from '../../run.ts';
import { shipBuildSystem } from './buildsys.ts';
import { journalEntrySchema } from './journal.ts';
import { COORDINATOR_FUNCTION, PROTOCOL, type CoordinatorRequest } from './protocol.ts';
import { secretNeed } from './secrets.ts';
import { remoteState, type CoordinatorRecord } from './remote-state.ts';
import { VolumeSync } from './sync.ts';
import type { ModalTransport } from './transport.ts';

/**
 * The operator's side of a run coordinated on Modal: `--detach` starts it (the build system and
 * the pinned commit on the volume, the run record written there, the coordinator call spawned),
 * `cancel` stops it. Nothing of it keeps running here. The layout is remote-state.ts.
 */
export interface StartCoordinatorOptions {
  transport: ModalTransport;
  /** The operator's local cache (VolumeSync remembers there which blobs the volume has). */
  cacheDir: string;
  /** This build system's directory (the one holding build.ts and dist/). */
  root: string;
  /** What was pinned and asked for, as prepare() resolved it. */
  run: RunRecordRequest;
  /** The CLI's arguments for the coordinator (see CoordinatorRequest.args). */
  args: string[];
  /** Non-secret settings for the coordinator's environment. */
  env: Record<string, string>;
  /** Secret variables the coordinator itself reads (names): its call gets their Modal secrets (secrets.ts), never their values in the request. */
  secretEnv: string[];
  now: Date;
}

export interface StartedCoordinator {
  runId: RunId;
  callId: string;
  buildsys: string;
  /** Bytes uploaded: the build system and the commit, 0 when the volume had both. */
  uploadedBytes: number;
}

export async function startCoordinator(o: StartCoordinatorOptions): Promise<StartedCoordinator> {
  const { transport } = o;
  await transport.check([COORDINATOR_FUNCTION], o.secretEnv.map(secretNeed));
  const shipped = await shipBuildSystem(transport, o.root);
  const sync = new VolumeSync({ transport, cacheDir: o.cacheDir, repo: o.run.repo, blobPath: () => '' });
  const commitBytes = await sync.ensureCommit(o.run.sha);
  const runId = await allocateRemoteRun(transport, o.run.version, o.run.sha, o.now);
  // pid 0: no process here coordinates it; the coordinator's CLI takes the record over.
  const meta: RunMeta = {
    runId, status: 'running', version: o.run.version, sha: o.run.sha, branch: o.run.branch, repo: o.run.repo, dirty: o.run.dirty,
    goals: o.run.goals, variables: { ...o.run.vars }, pid: 0, startedAt: o.now.toISOString(),
    counts: { built: 0, cached: 0, failed: 0, cancelled: 0, skipped: 0 }, targets: {},
  };
  await putJson(transport, remoteState.meta(runId), meta);
  const callId = await spawnCoordinator(transport, { runId, sha: o.run.sha, dirty: o.run.dirty, buildsys: shipped.digest, args: o.args, env: o.env, secretEnv: o.secretEnv, now: o.now });
  return { runId, callId, buildsys: shipped.digest, uploadedBytes: shipped.bytes + commitBytes };
}

export interface ResumeCoordinatorOptions {
  transport: ModalTransport;
  cacheDir: string;
  root: string;
  /** The run on the volume, as its meta.json records it (the caller checked it may be resumed). */
  run: Pick<RunMeta, 'runId' | 'sha' | 'dirty' | 'repo'>;
  /** Its coordinator.json: the arguments and settings its first coordinator was started with. */
  record: CoordinatorRecord & { args: string[]; env: Record<string, string> };
  now: Date;
}

/**
 * Starts a new coordinator call for a run whose coordinator died for good, with the arguments
 * and settings of the first one: the same run id, so it resumes as a restarted coordinator does
 * (cache hits for what finished, the journal's in-flight calls reattached). The build system
 * shipped is the operator's (what runs remotely is always the build the operator has).
 */
export async function resumeCoordinator(o: ResumeCoordinatorOptions): Promise<StartedCoordinator> {
  const { transport } = o;
  const secretEnv = o.record.secretEnv ?? [];
  await transport.check([COORDINATOR_FUNCTION], secretEnv.map(secretNeed));
  const shipped = await shipBuildSystem(transport, o.root);
  const sync = new VolumeSync({ transport, cacheDir: o.cacheDir, repo: o.run.repo, blobPath: () => '' });
  const commitBytes = await sync.ensureCommit(o.run.sha);
  const runId = o.run.runId as RunId;
  const callId = await spawnCoordinator(transport, { runId, sha: o.run.sha, dirty: o.run.dirty, buildsys: shipped.digest, args: o.record.args, env: o.record.env, secretEnv, now: o.now });
  return { runId, callId, buildsys: shipped.digest, uploadedBytes: shipped.bytes + commitBytes };
}

/** Spawns the run's coordinator call; coordinator.json names it (and what it was started with) once it exists. */
async function spawnCoordinator(transport: ModalTransport, o: { runId: RunId; sha: string; dirty: boolean; buildsys: string; args: string[]; env: Record<string, string>; secretEnv: string[]; now: Date }): Promise<string> {
  const request: CoordinatorRequest = {
    protocol: PROTOCOL, kind: 'coordinator', runId: o.runId, sha: o.sha, dirty: o.dirty, buildsys: o.buildsys, args: o.args, env: o.env, spawnedAt: o.now.getTime() / 1000,
  };
  let callId = '';
  await transport.spawn([{ fn: COORDINATOR_FUNCTION, request, secretEnv: o.secretEnv }], async (_i, id) => {
    callId = id;
    const record: CoordinatorRecord = {
      runId: o.runId, transport: transport.id, callId: id, function: COORDINATOR_FUNCTION, buildsys: o.buildsys, sha: o.sha, spawnedAt: new Date().toISOString(), args: o.args, env: o.env, secretEnv: o.secretEnv,
    };
    await putJson(transport, remoteState.coordinator(o.runId), record);
  });
  return callId;
}

/** A run's coordinator.json on the volume; null when it has none. */
export function readCoordinatorRecord(transport: ModalTransport, runId: string): Promise<CoordinatorRecord | null> {
  return getJson(transport, remoteState.coordinator(runId), (v) => v as CoordinatorRecord);
}

/**
 * A run id no run on the volume has: the time moves on a second while one does. Two operators
 * allocating in the same second can still meet (a volume has no atomic create); the coordinator's
 * claim then keeps the second from running beside the first.
 */
async function allocateRemoteRun(transport: ModalTransport, version: string, sha: string, now: Date): Promise<RunId> {
  const taken = new Set(await transport.list(remoteState.runs));
  for (let offset = 0; ; offset++) {
    const id = makeRunId(version, sha, new Date(now.getTime() + offset * 1000));
    if (!taken.has(id)) return id;
  }
}

/** What `cancel` found and did. */
export type CancelOutcome =
  | { kind: 'absent' }
  | { kind: 'ended'; status: RunMeta['status'] }
  | { kind: 'cancelled'; calls: string[] };

/**
 * Stops a run coordinated on the volume: its coordinator call first (so it dispatches nothing
 * more), then the action calls it has in flight (the targets its meta.json records as running
 * with a call id, and the journal's entries for this run's keys or spawned since it started:
 * meta.json may lag the journal by a moment), then marks the run cancelled in its meta.json.
 */
export async function cancelRemoteRun(transport: ModalTransport, runId: string, now: Date): Promise<CancelOutcome> {
  const meta = await getJson(transport, remoteState.meta(runId), (v) => runMetaSchema.parse(v));
  if (!meta) return { kind: 'absent' };
  if (meta.status !== 'running') return { kind: 'ended', status: meta.status };
  const coordinator = await readCoordinatorRecord(transport, runId);
  if (coordinator?.callId) await transport.cancel([coordinator.callId]);
  // Read again: the coordinator may have recorded more calls before it stopped.
  const last = (await getJson(transport, remoteState.meta(runId), (v) => runMetaSchema.parse(v))) ?? meta;
  const calls = new Set<string>();
  const keys = new Set<string>();
  for (const t of Object.values(last.targets)) {
    if (t.key) keys.add(t.key);
    if (t.outcome === 'running' && typeof t.remote?.callId === 'string' && t.remote.transport === transport.id) calls.add(t.remote.callId);
  }
  const started = Date.parse(last.startedAt) / 1000;
  for (const name of await transport.list(remoteState.journal)) {
    if (!name.endsWith('.json')) continue;
    const entry = await getJson(transport, remoteState.journalEntry(name.slice(0, -'.json'.length)), (v) => journalEntrySchema.parse(v));
    if (entry && entry.transport === transport.id && (keys.has(entry.key) || entry.spawnedAt >= started)) calls.add(entry.callId);
  }
  await transport.cancel([...calls]);
  const at = now.toISOString();
  for (const t of Object.values(last.targets)) if (t.outcome === 'running') Object.assign(t, { outcome: 'cancelled', finishedAt: at });
  const counts = { built: 0, cached: 0, failed: 0, cancelled: 0, skipped: 0 };
  for (const t of Object.values(last.targets)) if (t.outcome !== 'running') counts[t.outcome]++;
  await putJson(transport, remoteState.meta(runId), {
    ...last, status: 'cancelled', counts, finishedAt: at, durationMs: now.getTime() - Date.parse(last.startedAt), error: 'cancelled by ./build.ts cancel',
  } satisfies RunMeta);
  return { kind: 'cancelled', calls: [...(coordinator?.callId ? [coordinator.callId] : []), ...calls] };
}

async function putJson(transport: ModalTransport, remote: string, value: unknown): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'remote-state-'));
  try {
    await writeFile(join(dir, 'f.json'), `${JSON.stringify(value, null, 2)}\n`);
    await transport.put([{ local: join(dir, 'f.json'), remote }]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A JSON file of the volume, parsed; null when absent (or unreadable as `parse` wants it). */
async function getJson<T>(transport: ModalTransport, remote: string, parse: (v: unknown) => T): Promise<T | null> {
  const slash = remote.lastIndexOf('/');
  if (!(await transport.list(remote.slice(0, slash))).includes(remote.slice(slash + 1))) return null;
  const dir = await mkdtemp(join(tmpdir(), 'remote-state-'));
  try {
    await transport.get([{ remote, local: join(dir, 'f.json') }]);
    return parse(JSON.parse(await readFile(join(dir, 'f.json'), 'utf8')));
  } catch {
    return null;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
