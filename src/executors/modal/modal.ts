import { appendFile, writeFile } from 'node:fs/promises';
import type { Cache, OutputRecord } from '../../caching/cache.ts';
import { VolumeActionCache } from './shared-cache.ts';
import { UsageError, type ExecReason, type Failure } from '../../report/failures.ts';
import { readMeta } from '../../run.ts';
import type { Target, Vars } from '../../target.ts';
import type { ActionSpec, ExecFailure, ExecOutcome, Executor, PortableAction } from '../executor.ts';
import { ModalBatcher, type BatchItem } from './batcher.ts';
import { modalTransport, type ModalSettings } from './config.ts';
import { CallJournal, type JournalEntry } from './journal.ts';
import { BATCH_FUNCTION, FUNCTIONS, isGpuClass, PROTOCOL, volumePaths, type RemoteAction, type RemoteResult, type RunRequest } from './protocol.ts';
import { secretNeed } from './secrets.ts';
import { VolumeSync } from './sync.ts';
import { TransportError, type ModalTransport } from './transport.ts';
import { CallWaiter } from './waiter.ts';
import { isMachineEnv } from '../../machine-env.ts';

/**
 * Runs actions on Modal (or its local stand-in) through the generic runner of modal_app/.
 *
 * For each action: reattach if the journal holds a call for its key; else make sure the volume
 * has the pinned commit and every input blob (only what is missing is uploaded), spawn the call
 * (weighted actions, the area fan-out, are gathered into at most NUM_WORKERS LPT batches, one
 * call each), record the call id at once (journal + the run's meta.json via `spec.report`), wait,
 * and return the outputs as remote-resident records: the bytes stay on the volume until a local
 * action needs them (`materialise`) or the user asks (`./build.ts fetch`). The cache key is
 * computed by the scheduler before any executor is chosen, so the executor never changes it.
 */
export interface ModalExecutorOptions {
  transport: ModalTransport;
  cacheDir: string;
  repo: string;
  sha: string;
  /** The project directory inside the repository ('.' or 'examples/us-data'). */
  projectDir: string;
  blobPath: (digest: string) => string;
  /** How long one wait long-polls (seconds). */
  pollSeconds?: number;
  /** Batching window for weighted actions: quiet time, and the cap after the first arrival. */
  batchQuietMs?: number;
  batchMaxWaitMs?: number;
  /** Whether downloaded outputs may be verified in hashing worker threads (default true). */
  hashWorkers?: boolean;
}

interface BatchedAction extends BatchItem {
  spec: ActionSpec;
  action: RemoteAction;
  fn: string;
  pythonEnv: PortableAction['pythonEnv'];
  batch?: PortableAction['batch'];
}

export class ModalExecutor implements Executor {
  readonly kind = 'modal';
  /** Large, so that every stale area is in flight at once and can be batched. */
  readonly concurrency = 1024;
  private readonly o: ModalExecutorOptions;
  private readonly transport: ModalTransport;
  private readonly journal: CallJournal;
  private readonly sync: VolumeSync;
  private readonly waiter: CallWaiter;
  private readonly batcher: ModalBatcher<BatchedAction>;

  constructor(o: ModalExecutorOptions) {
    this.o = o;
    this.transport = o.transport;
    this.journal = new CallJournal(o.cacheDir);
    this.sync = new VolumeSync({ transport: o.transport, cacheDir: o.cacheDir, repo: o.repo, blobPath: o.blobPath, ...(o.hashWorkers !== undefined && { hashWorkers: o.hashWorkers }) });
    this.waiter = new CallWaiter(o.transport, o.pollSeconds ?? 20);
    this.batcher = new ModalBatcher<BatchedAction>({
      quietMs: o.batchQuietMs ?? 500,
      maxWaitMs: o.batchMaxWaitMs ?? 10_000,
      dispatch: (batches) => this.spawnBatches(batches),
    });
  }

  async execute(spec: ActionSpec): Promise<ExecOutcome> {
    const started = Date.now();
    const p = spec.portable;
    if (!p) return fail(spec, 'modal-unsupported', 'the scheduler gave no portable description of this action');
    const fn = p.weight !== undefined && spec.resourceClass === 'cpu' ? BATCH_FUNCTION : FUNCTIONS[spec.resourceClass];
    if (!fn) return fail(spec, 'unknown-resource-class', `resource class ${spec.resourceClass} has no Modal function (${Object.keys(FUNCTIONS).join(', ')})`);
    try {
      const previous = await this.journal.read(spec.key);
      if (previous && previous.transport === this.transport.id) {
        const settled = await this.settle(spec, previous, { started, reattached: true, uploadedBytes: 0 });
        if (settled) return settled;
      }
      const uploadedBytes = await this.prepareInputs(p);
      const action: RemoteAction = {
        key: spec.key,
        command: p.command,
        env: Object.fromEntries(Object.entries(spec.env).filter(([name]) => !isMachineEnv(name))),
        inputs: Object.fromEntries(Object.entries(p.inputs).map(([path, record]) => [path, record.digest])),
        outputs: p.outputs,
        ...(p.secretEnv?.length ? { secretEnv: p.secretEnv } : {}),
        ...(p.contentDigest ? { contentDigest: p.contentDigest } : {}),
      };
      const entry =
        fn === BATCH_FUNCTION
          ? ((await this.batcher.add({
              name: spec.target,
              weight: p.weight ?? 1,
              group: `${spec.resourceClass} ${p.pythonEnv?.key ?? ''}`,
              workers: Math.max(1, Number.parseInt(spec.vars.NUM_WORKERS ?? '8', 10) || 8),
              spec,
              action,
              fn,
              pythonEnv: p.pythonEnv,
              ...(p.batch ? { batch: p.batch } : {}),
            })) as JournalEntry)
          : (await this.spawnBatches([[{ name: spec.target, weight: 1, group: '', workers: 1, spec, action, fn, pythonEnv: p.pythonEnv }]])).values().next().value!;
      spec.report({ callId: entry.callId, function: entry.function, resourceClass: entry.resourceClass, transport: entry.transport, batchSize: entry.batchSize });
      return (await this.settle(spec, entry, { started, reattached: false, uploadedBytes }))!;
    } catch (error) {
      if (error instanceof TransportError) return fail(spec, error.reason, error.message);
      throw error;
    }
  }

  /** The action cache on this executor's volume, shared by every machine (shared-cache.ts). */
  sharedCache(cache: Cache, warn: (message: string) => void): VolumeActionCache {
    return new VolumeActionCache({ transport: this.transport, sync: this.sync, cache, cacheDir: this.o.cacheDir, warn });
  }

  /** Brings remote-resident blobs into the local store, for a local action or `fetch`. */
  async materialise(records: OutputRecord[]): Promise<Failure<ExecReason> | null> {
    const elsewhere = records.find((r) => r.remote && r.remote !== this.transport.id);
    if (elsewhere) {
      return { reason: 'remote-elsewhere', message: `output ${elsewhere.digest} lives on ${elsewhere.remote}, not on ${this.transport.id}; fetch it from there or rebuild it` };
    }
    try {
      await this.sync.fetchBlobs(records.map((r) => r.digest));
      return null;
    } catch (error) {
      return { reason: error instanceof TransportError ? error.reason : 'fetch-failed', message: `downloading remote outputs failed: ${(error as Error).message}` };
    }
  }

  /** The pinned commit and every local input blob on the volume; resolves to bytes uploaded. */
  private async prepareInputs(p: PortableAction): Promise<number> {
    const local: string[] = [];
    const remote: string[] = [];
    for (const record of Object.values(p.inputs)) {
      if (!record.remote) local.push(record.digest);
      else if (record.remote === this.transport.id) remote.push(record.digest);
      else throw new TransportError('remote-elsewhere', `an input lives on ${record.remote}, not on ${this.transport.id}; rebuild it or switch back`);
    }
    await this.sync.markKnown(remote);
    const [commit, blobs] = await Promise.all([this.sync.ensureCommit(this.o.sha), this.sync.ensureBlobs(local)]);
    return commit + blobs;
  }

  /** Spawns one call per batch and journals every action of it; item -> its journal entry. */
  private async spawnBatches(batches: BatchedAction[][]): Promise<Map<BatchedAction, JournalEntry>> {
    const spawnedAt = Date.now() / 1000;
    const calls = batches.map((batch) => ({
      fn: batch[0]!.fn,
      // The call's Modal secrets: those its actions declare (names only; secrets.ts).
      secretEnv: [...new Set(batch.flatMap((b) => b.action.secretEnv ?? []))],
      request: {
        protocol: PROTOCOL,
        sha: this.o.sha,
        projectDir: this.o.projectDir,
        pythonEnv: batch[0]!.pythonEnv ?? null,
        spawnedAt,
        actions: batch.map((b) => b.action),
        batches: batchCommands(batch),
      } satisfies RunRequest,
    }));
    const out = new Map<BatchedAction, JournalEntry>();
    // Journaled as each call starts, before spawn returns (see ModalTransport.spawn).
    await this.transport.spawn(calls, async (i, callId) => {
      const batch = batches[i]!;
      for (const item of batch) {
        const entry: JournalEntry = {
          key: item.spec.key,
          transport: this.transport.id,
          callId,
          function: item.fn,
          resourceClass: item.spec.resourceClass,
          spawnedAt,
          batchSize: batch.length,
        };
        await this.journal.write(entry);
        out.set(item, entry);
      }
    });
    return out;
  }

  /**
   * Waits for the call and turns its result into an outcome; the journal entry is removed once
   * the call has settled (the scheduler commits the cache entry next; dying in between costs one
   * re-dispatch). Null only when reattaching to a call the transport no longer knows, whose
   * result expired (Modal keeps results for a limited time) or that `cancel` stopped: dispatch again.
   */
  private async settle(spec: ActionSpec, entry: JournalEntry, ctx: { started: number; reattached: boolean; uploadedBytes: number }): Promise<ExecOutcome | null> {
    const state = await abortable(this.waiter.wait(entry.callId), spec.signal);
    if (state === 'aborted') return fail(spec, 'cancelled', `cancelled; Modal call ${entry.callId} keeps running and a rerun reattaches to it`);
    await this.journal.remove(spec.key);
    if (state.state === 'unknown' || (state.state === 'failed' && (state.reason === 'call-expired' || state.reason === 'call-cancelled'))) {
      if (ctx.reattached) return null;
      return fail(spec, 'call-lost', `Modal call ${entry.callId} is unknown to ${this.transport.id}`);
    }
    if (state.state !== 'done') {
      const failed = state.state === 'failed' ? state : { reason: 'call-lost' as const, message: 'the call never finished' };
      return fail(spec, failed.reason, `${failed.message} (Modal call ${entry.callId}, ${entry.function})`);
    }
    const result = state.value.results.find((r) => r.key === spec.key);
    if (!result) return fail(spec, 'remote-error', `Modal call ${entry.callId} returned no result for this action`);
    await this.writeLog(spec, entry, result);
    const remote = this.bookkeeping(entry, state.value.containerStartedAt, result, ctx);
    if (!result.ok) {
      if (result.reason === 'input-missing') await this.sync.forget(Object.values(spec.portable?.inputs ?? {}).map((r) => r.digest));
      return {
        ok: false,
        failure: {
          reason: result.reason ?? 'command-failed',
          message: `${spec.target}: ${result.message ?? 'failed'} on Modal (call ${entry.callId}, ${entry.function}); full log: ${this.transport.id} ${volumePaths.log(spec.key)}`,
          ...(result.exitCode !== null && result.exitCode !== undefined ? { exitCode: result.exitCode } : {}),
          logTail: result.logTail,
        },
        remote,
      };
    }
    const missing = (spec.portable?.outputs ?? []).filter((path) => !result.outputs[path]);
    if (missing.length) return fail(spec, 'missing-output', `the remote result lacks ${missing.join(', ')}`);
    const undigested = Object.keys(spec.portable?.contentDigest ?? {}).filter((path) => !result.outputs[path]?.content);
    if (undigested.length) return fail(spec, 'content-digest', `the remote result lacks the content digest of ${undigested.join(', ')}; redeploy with \`modal deploy modal_app/runner.py\``);
    await this.sync.markKnown(Object.values(result.outputs).map((o) => o.digest));
    const remoteOutputs: Record<string, OutputRecord> = {};
    for (const [path, o] of Object.entries(result.outputs)) remoteOutputs[path] = { digest: o.digest, size: o.size, ...(o.content ? { content: o.content } : {}), remote: this.transport.id };
    return { ok: true, durationMs: Date.now() - ctx.started, remoteOutputs, remote };
  }

  private bookkeeping(entry: JournalEntry, containerStartedAt: number, result: RemoteResult, ctx: { reattached: boolean; uploadedBytes: number }): Record<string, unknown> {
    return {
      callId: entry.callId,
      function: entry.function,
      resourceClass: entry.resourceClass,
      transport: entry.transport,
      batchSize: entry.batchSize,
      queueSeconds: round(Math.max(0, containerStartedAt - entry.spawnedAt)),
      runSeconds: round(result.runSeconds),
      gpuSeconds: isGpuClass(entry.resourceClass) ? round(result.runSeconds) : 0,
      uploadedBytes: ctx.uploadedBytes,
      ...(ctx.reattached ? { reattached: true } : {}),
    };
  }

  private async writeLog(spec: ActionSpec, entry: JournalEntry, result: RemoteResult): Promise<void> {
    const head = `# ran on ${this.transport.id} (call ${entry.callId}, ${entry.function}); full log there: ${volumePaths.log(spec.key)}; last lines:\n`;
    await writeFile(spec.logFile, `${head}${result.logTail}\n`).catch(() => appendFile(spec.logFile, ''));
  }
}

/**
 * The batch commands of one call: its actions grouped by their target's batch group, each group
 * of two or more as one `command(items)` (a batch of one runs its own command, as locally).
 */
function batchCommands(items: BatchedAction[]): NonNullable<RunRequest['batches']> {
  const groups = new Map<string, BatchedAction[]>();
  for (const item of items) if (item.batch) groups.set(item.batch.group, [...(groups.get(item.batch.group) ?? []), item]);
  return [...groups.values()]
    .filter((group) => group.length > 1)
    .map((group) => ({ command: group[0]!.batch!.command(group.map((g) => g.batch!.item)), keys: group.map((g) => g.action.key) }));
}

function fail(spec: ActionSpec, reason: ExecReason, message: string): { ok: false; failure: ExecFailure } {
  return { ok: false, failure: { reason, message: `${spec.target}: ${message}`, logTail: '' } };
}

const round = (n: number) => Math.round(n * 1000) / 1000;

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | 'aborted'> {
  if (signal.aborted) return Promise.resolve('aborted');
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve('aborted');
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** What setting up the Modal executor needs of the build (not the whole prepared build). */
export interface ModalSetup {
  /**
   * The selected declared targets the build sends to Modal (src/executor-choice.ts): each must ask
   * for a resource class Modal has, and the Modal secrets they declare must exist.
   */
  targets: Target[];
  /** The build's variables: the targets' resources depend on them; RESUME names a run to reattach to. */
  vars: Vars;
  cacheDir: string;
  repo: string;
  sha: string;
  /** The project directory inside the repository ('.' or 'examples/us-data'). */
  projectDir: string;
  /** Where the local cache keeps a blob (input uploads read it). */
  blobPath: (digest: string) => string;
  /** Which transport, app and volume, as the CLI read them from the environment. */
  settings: ModalSettings;
  /** Whether downloaded outputs may be verified in hashing worker threads (not BUILD_HASH_WORKERS=0). */
  hashWorkers: boolean;
}

/**
 * EXECUTOR=modal: validates everything a dispatch needs before any work starts (resource classes
 * of the declared targets, the client, the token, the deployed functions), then builds the
 * executor. GPU types themselves are validated earlier still, with every variable (tasks/variables.ts).
 */
export async function createModalExecutor(o: ModalSetup): Promise<ModalExecutor> {
  const functions = new Set<string>([BATCH_FUNCTION]);
  const secrets = new Set<string>();
  for (const target of o.targets) {
    const resourceClass = target.resources?.(o.vars).class ?? 'cpu';
    const fn = FUNCTIONS[resourceClass];
    if (!fn) throw new UsageError('unknown-resource-class', `${target.name} asks for resource class ${resourceClass}, which has no Modal function; use one of ${Object.keys(FUNCTIONS).join(', ')}`);
    functions.add(fn);
    for (const variable of target.secretEnv ?? []) secrets.add(variable);
  }
  const transport = modalTransport(o.settings);
  await transport.check([...functions].sort(), [...secrets].sort().map(secretNeed));
  if (o.vars.RESUME) await seedJournalFromRun(o.cacheDir, o.vars.RESUME, transport.id);
  const quiet = o.settings.batchQuietMs;
  return new ModalExecutor({
    transport,
    cacheDir: o.cacheDir,
    repo: o.repo,
    sha: o.sha,
    projectDir: o.projectDir,
    blobPath: o.blobPath,
    pollSeconds: o.settings.standinDir ? 1 : 20,
    ...(quiet !== undefined ? { batchQuietMs: quiet } : {}),
    hashWorkers: o.hashWorkers,
  });
}

/**
 * RESUME=<run id>: the call ids that run recorded in its meta.json join the journal (where one is
 * not there already), so this run reattaches to them even if the journal was lost.
 */
async function seedJournalFromRun(cacheDir: string, runId: string, transportId: string): Promise<void> {
  const read = await readMeta(cacheDir, runId);
  if (!read.ok) throw new UsageError('bad-run', `RESUME=${runId}: ${read.failure.message}`);
  const journal = new CallJournal(cacheDir);
  for (const t of Object.values(read.value.targets)) {
    const r = t.remote;
    if (t.outcome !== 'running' || !t.key || !r || typeof r.callId !== 'string' || r.transport !== transportId) continue;
    if (await journal.read(t.key)) continue;
    await journal.write({
      key: t.key,
      transport: transportId,
      callId: r.callId,
      function: String(r.function ?? ''),
      resourceClass: String(r.resourceClass ?? 'cpu'),
      spawnedAt: t.startedAt ? Date.parse(t.startedAt) / 1000 : Date.now() / 1000,
      batchSize: typeof r.batchSize === 'number' ? r.batchSize : 1,
    });
  }
}
