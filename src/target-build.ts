import { appendFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { copyFile, rm, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ActionEntry, type ActionResult, type Cache, type OutputRecord } from './caching/cache.ts';
import type { DigestMemo } from './caching/digest-memo.ts';
import type { Cause, Emit } from './report/events.ts';
import type { Failure, TargetReason } from './report/failures.ts';
import { HDF5_DIGEST_INPUT, type ActionSpec, type ExecOutcome, type Executor, type PortableAction } from './executors/executor.ts';
import type { SharedActionCache } from './caching/shared-cache.ts';
import { LocalBatcher } from './local-batcher.ts';
import { describeCause, staleReason, type ImportedVia } from './stale-reason.ts';
import { environmentFailure } from './report/environment-failure.ts';
import { actionKey, declaredParts, makeFingerprint, type ActionKey, type Fingerprint } from './fingerprint.ts';
import type { Graph } from './graph.ts';
import type { Digest } from './caching/hash.ts';
import { acquireLock, LockWaitTimeout } from './caching/action-lock.ts';
import { listSources } from './source-files.ts';
import { mkdirOnce } from './util/fs-atomic.ts';
import { shellCommand, toRepoPaths } from './util/shell-command.ts';
import type { TargetOutcome } from './run.ts';
import type { Environment, ExecutorKind, Target, Vars } from './target.ts';
import { adaptersNamed, ENV_FINGERPRINT, envDirOf, resolveArgv } from './placeholders.ts';
import { scrubOutcome, secretsOf } from './secret-env.ts';
import type { PythonIndex } from './python/python-index.ts';
import { importChain, pythonEntries, pythonSourceFiles } from './python/python-sources.ts';
import { contentDigest } from './caching/content-digest.ts';
import { pinFailureInLog } from './python-env/env-failure.ts';
import { sameOutputs, type RunHistory } from './run-history.ts';

/** Where a real (not dry) run puts things; absent in a dry run. */
export interface Workspace {
  runDir: string;
  /** The project directory inside the run's own copy of the pinned tree, created on first use. */
  ensureCwd(): Promise<string>;
}

/** What building any one target of the run needs: the run's inputs, executors and reporting. */
export interface TargetBuildOptions {
  graph: Graph;
  vars: Vars;
  cache: Cache;
  memo: DigestMemo;
  /** Project directory inside the shared pinned tree: sources are hashed here, never in a work tree. */
  sourceRoot: string;
  /**
   * This build system's own adapter scripts (tasks/adapters/), run where the real repository has
   * no CLI for a step: `{adapters}/<file>` in a command. Each adapter a command names is a source
   * of that target (keyed `{adapters}/<file>`), so editing an adapter rebuilds what runs it.
   */
  adaptersDir: string;
  /**
   * The pinned tree's Python index (src/python/), loaded on first use: the import closure of a
   * target's `pythonModules` and of the adapters its command runs is part of its sources.
   * Absent only where no target declares Python modules (the scheduler's unit tests).
   */
  pythonIndex?: () => PythonIndex;
  workspace?: Workspace;
  executors: Partial<Record<ExecutorKind, Executor>>;
  /** EXECUTOR=modal: the action cache every machine shares, asked on a local miss and given every new entry. */
  shared?: SharedActionCache;
  executorFor: (target: Target) => ExecutorKind;
  /**
   * Base environment for actions (PATH and friends, the run's provenance); declared env is added
   * per target, and a target that runs in the pipeline's Python environment gets its bin first on PATH.
   */
  baseEnv: Record<string, string>;
  /** The environment the CLI read: the values of each target's declared env (hashed, and passed to its action). */
  env: Environment;
  /**
   * The interpreter found for the project's requires-python (src/python-env/): `{interpreter}` in
   * the environment target's command, and `{python}` for a target with no environment.
   */
  interpreter?: string;
  /** src/python-env/hdf5_digest.py, for outputs declared `contentDigest: 'hdf5'` (prepare.ts supplies it). */
  hdf5DigestScript?: string;
  cacheDir: string;
  /** Where Python environments are built (BUILD_ENVS_DIR, default `<cache>/envs`). */
  envsDir: string;
  jobs: number;
  emit: Emit;
  signal: AbortSignal;
  record: (target: string, outcome: TargetOutcome) => void;
  /** Dry run: include each command that would run in its plan event (for `-n REPO=...`). */
  showCommands?: boolean;
  /**
   * The repository the user edits, and the pinned trees its commit was copied to: a failed
   * action's log tail shows tree paths as repository paths.
   */
  repoPaths?: { repo: string; trees: string[] };
  /** Called with every fingerprint computed (for `explain`). */
  onFingerprint?: (target: Target, fp: Fingerprint) => void;
  /**
   * The earlier runs' records, read when the first action is about to run: a built target whose
   * outputs match the last ones recorded is marked `identicalOutput` (and the walk's estimates use it).
   */
  history?: RunHistory;
}

/** What the walk knows of a target: settled (done, failed, skipped), or in a dry run, would run. */
export type TargetState =
  | { kind: 'done'; outputs: Record<string, OutputRecord>; envDir?: string; key?: string }
  | { kind: 'failed' }
  | { kind: 'skipped' }
  /** Dry run: this node would execute, so its outputs are not known yet. */
  | { kind: 'unknown' };

/** The counts a target's build adds to (the walk adds the skipped ones). */
export interface BuildCounts {
  built: number;
  cached: number;
  failed: number;
  /** Stopped by the signal: counted apart from failures (events, status, meta.json). */
  cancelled: number;
}

export interface TargetBuilderOptions extends TargetBuildOptions {
  /** Shared with the walk: upstream states are read here, and each target's own is written. */
  states: Map<string, TargetState>;
  counts: BuildCounts;
  /** Gives the target's slot back to the walk as soon as its process has exited. */
  releaseSlot: (target: string) => void;
}

/** An action ready for an executor, with what settling it needs. */
interface PreparedAction {
  target: Target;
  fp: Fingerprint;
  key: ActionKey;
  executor: Executor;
  spec: ActionSpec;
  placeholders: Record<string, string>;
  envDir: string;
  envTmp: string;
  /** Its `{checkpoint}` directory was not empty when it started: an earlier attempt left it. */
  resumed: boolean;
}

/** A target that ended with its outputs, built here or restored from the cache. */
interface Done {
  target: Target;
  key: string;
  outputs: Record<string, OutputRecord>;
  outcome: 'built' | 'cached';
  /** Set for the Python environment target: where it lives (cache/envs). */
  envDir?: string;
  /** The cache entry, when there is one: its executor and remote bookkeeping are recorded. */
  result?: ActionEntry;
  durationMs?: number;
  resumed?: boolean;
  /** Its entry came from the shared action cache (another machine built it). */
  shared?: boolean;
}

/** A target that failed (or was cancelled while it waited or ran). */
interface Failed extends Failure<TargetReason> {
  target: Target;
  key?: string;
  remote?: Record<string, unknown>;
  resumed?: boolean;
}

/**
 * One target's life, for every target of the run: fingerprint -> lookup (restore, or in a dry run
 * say why it would run) -> action lock -> prepare the action -> execute (alone, or in a local
 * batch) -> settle its outputs into the cache -> finish (state, counts, event, run record).
 * Downstream fingerprints hash upstream output *bytes*, so a rebuilt target with identical
 * outputs leaves its dependants cached (early cutoff). The walk (scheduler.ts) decides when.
 */
export class TargetBuilder {
  private readonly o: TargetBuilderOptions;
  private readonly states: Map<string, TargetState>;
  private readonly sourceDigests = new Map<string, Promise<Digest>>();
  /** Source pattern -> matching files, expanded once per run (see source-files.ts). */
  private readonly patternCache = new Map<string, Promise<string[]>>();
  /** Python entry modules -> the files they import (the 489 areas share one worker's closure). */
  private readonly pythonFiles = new Map<string, { id: string; path: string }[]>();
  /** Directories this run already created: ~500 actions share a handful of output directories. */
  private readonly createdDirs = new Set<string>();
  /** Adapter file -> its blob, ingested once per run for remote actions. */
  private readonly adapterBlobs = new Map<string, Promise<OutputRecord>>();
  /** Local batchable actions wait here until every started one has arrived, then run in `-j` LPT batches. */
  private readonly batcher: LocalBatcher<PreparedAction> | null;
  /** Batchable targets that joined a batch (they leave the batcher through it, not through build). */
  private readonly submitted = new Set<string>();

  constructor(o: TargetBuilderOptions) {
    this.o = o;
    this.states = o.states;
    this.batcher = o.workspace
      ? new LocalBatcher<PreparedAction>({
          jobs: o.jobs,
          vars: o.vars,
          runDir: o.workspace.runDir,
          signal: o.signal,
          emit: o.emit,
          started: (a, startedAt) => o.record(a.target.name, { outcome: 'running', key: a.spec.key, executor: a.executor.kind, startedAt }),
          runOne: (a) => this.runAction(a),
          settle: (a, outcome) => this.settle(a, outcome),
        })
      : null;
  }

  /**
   * Where a target's action runs: the pipeline's Python environment is always built here
   * (cache/envs); the rest as the build chose (src/executor-choice.ts).
   */
  executorKind(target: Target): ExecutorKind {
    return target.environment ? 'local' : this.o.executorFor(target);
  }

  /** Dry run: where a target would run, with its resource class when that is remote. */
  plannedWhere(target: Target): { executor: ExecutorKind; resourceClass?: string } {
    const executor = this.executorKind(target);
    return executor === 'local' ? { executor } : { executor, resourceClass: target.resources?.(this.o.vars).class ?? 'cpu' };
  }

  /** Builds one target whose upstreams have all settled; never throws (a bug fails the target). */
  async build(target: Target): Promise<void> {
    const group = target.batch && this.batcher && this.executorKind(target) === 'local' ? target.batch.group : null;
    if (group) this.batcher!.enter(group);
    try {
      await this.buildInner(target);
    } catch (error) {
      const environment = environmentFailure(error);
      this.finishFailed({ target, reason: environment?.reason ?? 'internal-error', message: environment?.message ?? (error as Error).message });
    } finally {
      if (group && !this.submitted.has(target.name)) this.batcher!.leave(group);
    }
  }

  /**
   * Source digests of a target: the files its globs match, the adapters its command names, and
   * every project file that its Python modules and those adapters import (python-sources.ts), by
   * path, so `explain` names an imported file that changed. Globs and digests are shared by every
   * target of the run as promises: the 489 area targets start together and ask for the same files.
   */
  private async sources(target: Target): Promise<Record<string, Digest>> {
    const out: Record<string, Digest> = {};
    for (const file of await listSources(this.o.sourceRoot, target.sources, this.patternCache)) {
      out[file] = await this.digestOnce(file, join(this.o.sourceRoot, file));
    }
    const adapters = adaptersNamed(target.command(this.o.vars));
    for (const name of adapters) {
      out[`{adapters}/${name}`] = await this.digestOnce(`{adapters}/${name}`, join(this.o.adaptersDir, name));
    }
    const entries = pythonEntries(target, adapters);
    if (entries.length > 0) {
      if (!this.o.pythonIndex) throw new Error(`${target.name} declares Python modules, but the build has no Python index`);
      for (const { id, path } of this.pythonFilesOf(entries)) out[id] ??= await this.digestOnce(id, path);
    }
    return out;
  }

  /** The project and adapter files the entries import (the static closure), once per set of entries. */
  private pythonFilesOf(entries: string[]): { id: string; path: string }[] {
    const key = entries.join('\n');
    let files = this.pythonFiles.get(key);
    if (!files) {
      files = pythonSourceFiles(this.o.pythonIndex!(), entries, { sourceRoot: this.o.sourceRoot, adaptersDir: this.o.adaptersDir });
      this.pythonFiles.set(key, files);
    }
    return files;
  }

  private digestOnce(id: string, path: string): Promise<Digest> {
    let digest = this.sourceDigests.get(id);
    if (!digest) {
      digest = this.o.memo.digest(path).then((d) => d.digest);
      this.sourceDigests.set(id, digest);
    }
    return digest;
  }

  /** -n and explain name how a changed source is imported (its chain from the entry module), when it is not the entry itself. */
  private importedVia(target: Target): ImportedVia | undefined {
    const entries = pythonEntries(target, adaptersNamed(target.command(this.o.vars)));
    const index = this.o.pythonIndex;
    if (entries.length === 0 || !index) return undefined;
    return (source) => {
      const chain = importChain(index(), entries, source);
      return chain && chain.length > 2 ? chain : null;
    };
  }

  private async fingerprint(target: Target): Promise<Fingerprint> {
    const upstream: Record<string, string> = {};
    for (const dep of target.deps) {
      const state = this.states.get(dep);
      if (state?.kind !== 'done') throw new Error(`${target.name}: upstream ${dep} is not built`);
      // A declared content digest stands for the bytes (early cutoff past embedded times).
      for (const [path, record] of Object.entries(state.outputs)) upstream[`${dep} ${path}`] = record.content ?? record.digest;
    }
    return makeFingerprint({
      target: target.name,
      ...declaredParts(target, this.o.vars, this.o.env),
      sources: await this.sources(target),
      upstream,
      outputs: target.outputs,
    });
  }

  private async buildInner(target: Target): Promise<void> {
    if (target.deps.some((d) => this.states.get(d)?.kind === 'unknown')) {
      this.states.set(target.name, { kind: 'unknown' });
      const dep = target.deps.find((d) => this.states.get(d)?.kind === 'unknown');
      const command = this.o.showCommands ? await this.plannedCommand(target, target.command(this.o.vars)) : {};
      const cause: Cause = { kind: 'upstream-would-run', target: dep! };
      this.o.emit({ event: 'plan', target: target.name, action: 'run', why: describeCause(cause), causes: [cause], ...command, ...this.plannedWhere(target) });
      return;
    }
    const fp = await this.fingerprint(target);
    this.o.onFingerprint?.(target, fp);
    const key = actionKey(fp);
    // An always-run target is never looked up: what it reads lies outside its key.
    const lookup = !target.alwaysRun;
    if (lookup && (await this.tryCached(target, key))) return;
    if (!this.o.workspace) {
      this.states.set(target.name, { kind: 'unknown' });
      const command = this.o.showCommands ? await this.plannedCommand(target, fp.command, key) : {};
      const { closest, causes } = lookup ? await staleReason(this.o.cache, target.name, fp, this.importedVia(target)) : { closest: undefined, causes: [{ kind: 'always-run' } as const] };
      const why = causes.slice(0, 3).map(describeCause).join('; ') + (causes.length > 3 ? `; +${causes.length - 3} more` : '');
      this.o.emit({
        event: 'plan', target: target.name, action: 'run', why, causes, ...command, ...this.plannedWhere(target),
        ...(closest ? { closest: { key: closest.key, createdAt: closest.createdAt } } : {}),
      });
      return;
    }
    const release = await acquireLock(join(this.o.cacheDir, 'locks'), key, {
      signal: this.o.signal,
      onWait: (w) => this.o.emit({ event: 'warning', message: `${target.name}: waiting for ${w.holderAlive ? `another build (pid ${w.pid})` : `the actions of a killed build (pid ${w.pid}) to end`}, which holds the lock on the same action, since ${w.since.toISOString()}` }),
    }).catch((error: Error) => error);
    if (release instanceof LockWaitTimeout) return this.finishFailed({ target, reason: 'lock-wait-timeout', message: `${target.name}: ${release.message}` });
    if (release instanceof Error) return this.finishFailed({ target, reason: 'cancelled', message: `${target.name}: cancelled` });
    try {
      // Another run may have built it while we waited for the lock.
      if (lookup && (await this.tryCached(target, key))) return;
      await this.execute(target, fp, key);
    } finally {
      release();
    }
  }

  /** Restores a committed entry into the run; false (with a warning) when it cannot be used. */
  private async tryCached(target: Target, key: ActionKey): Promise<boolean> {
    if (target.environment) {
      const { dir, complete } = envDirOf(this.o.envsDir, key);
      if (!complete) return false;
      this.finishDone({ target, key, outputs: { env: { digest: key, size: 0 } }, outcome: 'cached', envDir: dir });
      return true;
    }
    let found = await this.o.cache.lookup(key);
    if (found.kind === 'corrupt') this.o.emit({ event: 'warning', message: found.message });
    // Built by another machine: its entry joins the local cache (outputs stay remote until needed).
    const pulled = found.kind === 'miss' && this.o.workspace !== undefined && this.o.shared !== undefined && (await this.o.shared.pull(key));
    if (pulled) found = await this.o.cache.lookup(key);
    // A dry run reads that entry without taking it, so -n says what the build would do: take it.
    if (found.kind === 'miss' && !this.o.workspace && this.o.shared) {
      const entry = await this.o.shared.peek(key);
      if (!entry) return false;
      this.finishDone({ target, key, outputs: entry.outputs, outcome: 'cached', result: entry, shared: true });
      return true;
    }
    if (found.kind !== 'hit') return false;
    if (this.o.workspace) {
      const problem = await this.o.cache.restore(found.result, this.o.workspace.runDir);
      if (problem) {
        this.o.emit({ event: 'warning', message: problem });
        return false;
      }
    } else if (await this.o.cache.verify(found.result)) {
      return false;
    }
    this.finishDone({ target, key, outputs: found.result.outputs, outcome: 'cached', result: found.result, shared: pulled });
    return true;
  }

  /**
   * Dry run: the command as it would run, placeholders resolved where they are known before the
   * run exists (`{run}` stays: the run directory is allocated when the build starts), beside the
   * command as declared (placeholders kept), which is what a task file says and tools compare.
   */
  private async plannedCommand(target: Target, command: string[], key?: string): Promise<{ command: string; declared: string }> {
    const values: Record<string, string> = {
      run: '{run}', python: this.pythonFor(target), adapters: this.o.adaptersDir, out: '{out}',
      checkpoint: key ? join(this.o.cacheDir, 'checkpoints', key) : '{checkpoint}',
    };
    return { command: shellCommand(await resolveArgv(command, values)), declared: command.join(' ') };
  }

  private async execute(target: Target, fp: Fingerprint, key: ActionKey): Promise<void> {
    const kind = this.executorKind(target);
    const executor = this.o.executors[kind];
    if (!executor) return this.finishFailed({ target, reason: 'no-executor', message: `${target.name}: executor ${kind} is not configured` });
    if (executor.kind === 'local') {
      const problem = await this.materialiseInputs(target);
      if (problem) return this.finishFailed({ target, reason: problem.reason, message: problem.message, key });
    }
    await this.o.history?.load();
    const action = await this.prepareAction(target, fp, key, executor);
    if (target.batch && kind === 'local') {
      this.submitted.add(target.name);
      return this.batcher!.submit(target.batch.group, action);
    }
    await this.runAction(action);
  }

  /** Resolves everything an executor needs; clears stale outputs first. */
  private async prepareAction(target: Target, fp: Fingerprint, key: ActionKey, executor: Executor): Promise<PreparedAction> {
    const ws = this.o.workspace!;
    const env: Record<string, string> = { ...this.o.baseEnv };
    for (const name of target.env ?? []) if (this.o.env[name] !== undefined) env[name] = this.o.env[name]!;
    // Secrets: in this action's environment only (never in the key, the record or a remote call).
    if (executor.kind === 'local') Object.assign(env, secretsOf(target, this.o.env));
    // `make database` and friends call a bare `python`: the environment's comes first.
    const pythonEnv = this.envDirFor(target);
    if (pythonEnv) env.PATH = env.PATH ? `${join(pythonEnv, 'bin')}:${env.PATH}` : join(pythonEnv, 'bin');
    executor.warm?.(env);
    const cwd = await ws.ensureCwd();
    const logFile = join(ws.runDir, 'logs', `${target.name.replace(/[/:]/g, '_')}.log`);
    // Synchronous metadata calls (microseconds each): this runs between one action and the next.
    mkdirOnce(join(ws.runDir, 'logs'), this.createdDirs);
    const outputs = target.outputs.map((p) => join(ws.runDir, p));
    for (const file of outputs) {
      // existsSync first: in a fresh run directory the output never exists, and rmSync of a
      // missing file costs a thrown error.
      if (existsSync(file)) rmSync(file, { force: true });
      mkdirOnce(join(file, '..'), this.createdDirs);
    }
    const envDir = join(this.o.envsDir, key);
    const envTmp = `${envDir}.tmp-${process.pid}`;
    if (target.environment) await rm(envTmp, { recursive: true, force: true });
    const checkpointDir = join(this.o.cacheDir, 'checkpoints', key);
    const placeholders: Record<string, string> = {
      run: ws.runDir, python: this.pythonFor(target), checkpoint: checkpointDir, out: envTmp, adapters: this.o.adaptersDir, interpreter: this.o.interpreter ?? 'python3',
    };
    const checkpointed = fp.command.some((t) => t.includes('{checkpoint}'));
    // A remote executor keeps its checkpoints on its own volume: only a local one resumes from this directory.
    const resumed = checkpointed && executor.kind === 'local' && nonEmptyDir(checkpointDir);
    if (checkpointed) mkdirSync(checkpointDir, { recursive: true });
    const startedAt = new Date().toISOString();
    const argv = await resolveArgv(fp.command, placeholders);
    // The log starts with the command, resolved and copy-pasteable (the action appends below it).
    appendFileSync(logFile, `$ ${shellCommand(argv, cwd)}\n`);
    const spec: ActionSpec = {
      key,
      target: target.name,
      argv,
      // What a remote executor needs; a local action never reads it (489 areas would build it for nothing).
      ...(executor.kind === 'local' ? {} : { portable: await this.portable(target, fp, ws.runDir) }),
      cwd,
      env,
      outputs,
      logFile,
      resourceClass: target.resources?.(this.o.vars).class ?? 'cpu',
      signal: this.o.signal,
      vars: this.o.vars,
      report: (remote) => this.o.record(target.name, { outcome: 'running', key, executor: executor.kind, startedAt, remote }),
    };
    return { target, fp, key, executor, spec, placeholders, envDir, envTmp, resumed };
  }

  private async runAction(a: PreparedAction): Promise<void> {
    this.o.emit({ event: 'target-start', target: a.target.name, executor: a.executor.kind, logFile: a.spec.logFile, ...(a.resumed ? { resumedFromCheckpoint: true } : {}) });
    this.o.record(a.target.name, { outcome: 'running', key: a.key, executor: a.executor.kind, startedAt: new Date().toISOString() });
    let outcome = await a.executor.execute(a.spec);
    const secrets = Object.values(secretsOf(a.target, this.o.env));
    if (secrets.length > 0) outcome = await scrubOutcome(outcome, a.spec.logFile, secrets);
    this.o.releaseSlot(a.target.name);
    await null; // the freed slot's next action goes first
    await this.settle(a, outcome);
  }

  /** Checks and stores an action's outputs (the action result is committed last), or records its failure. */
  private async settle(a: PreparedAction, outcome: ExecOutcome): Promise<void> {
    const { target, key, fp, executor } = a;
    if (!outcome.ok) {
      const reason = outcome.failure.reason;
      const repo = this.o.repoPaths;
      const tail = outcome.failure.logTail && repo ? toRepoPaths(outcome.failure.logTail, repo.trees, repo.repo) : outcome.failure.logTail;
      // The command heads the log, so a short log's tail already shows it.
      const shown = `$ ${shellCommand(a.spec.argv, a.spec.cwd)}`;
      const command = reason === 'cancelled' || tail?.startsWith(shown) ? '' : `\n${shown}`;
      let message = `${outcome.failure.message}${command}${tail ? `\n${tail}` : ''}`;
      // An environment that cannot be installed as pinned: one line naming the package and the fix.
      const pins = target.environment && reason === 'command-failed' ? await pinFailureInLog(a.spec.logFile, this.o.vars.PY_SUBSTITUTE) : null;
      if (pins) message = `${target.name}: ${pins.line}; full log: ${a.spec.logFile}`;
      return this.finishFailed({ target, reason: pins?.reason ?? reason, message, key, resumed: a.resumed, ...(outcome.remote ? { remote: outcome.remote } : {}) });
    }
    if (target.environment) {
      // Its fingerprint beside it (it has no cache entry): what `explain` and dry-run reasons diff against.
      await writeFile(join(a.envTmp, ENV_FINGERPRINT), JSON.stringify(fp));
      await writeFile(join(a.envTmp, '.complete'), key);
      await rename(a.envTmp, a.envDir).catch(async () => rm(a.envTmp, { recursive: true, force: true }));
      return this.finishDone({ target, key, outputs: { env: { digest: key, size: 0 } }, outcome: 'built', envDir: a.envDir, durationMs: outcome.durationMs });
    }
    const records: Record<string, OutputRecord> = {};
    for (const [i, path] of target.outputs.entries()) {
      const remote = outcome.remoteOutputs?.[path];
      if (remote) {
        records[path] = remote;
        continue;
      }
      const file = a.spec.outputs[i]!;
      if (!existsSync(file)) {
        return this.finishFailed({ target, reason: 'missing-output', message: `${target.name}: the command succeeded but did not write ${path}`, key });
      }
      records[path] = await this.o.cache.ingest(file);
      const kind = target.contentDigest?.[path];
      if (kind) {
        const content = await contentDigest(kind, file, { python: this.pythonFor(target), hdf5Script: this.o.hdf5DigestScript ?? 'hdf5_digest.py' });
        if (!content.ok) return this.finishFailed({ target, reason: 'content-digest', message: `${target.name}: ${path} ${content.message}`, key });
        records[path] = { ...records[path]!, content: content.digest };
      }
    }
    const result: ActionResult = {
      key,
      target: target.name,
      fingerprint: fp,
      outputs: records,
      executor: executor.kind,
      durationMs: outcome.durationMs,
      createdAt: new Date().toISOString(),
      ...(outcome.remote ? { remote: outcome.remote } : {}),
    };
    this.o.cache.commit(result);
    this.o.shared?.push(result);
    this.finishDone({ target, key, outputs: records, outcome: 'built', result, durationMs: outcome.durationMs, resumed: a.resumed });
  }

  /**
   * The action as a remote executor needs it: unresolved command, upstream outputs, Python env.
   * The adapters it runs are not in the pinned tree: each travels as an input blob placed at
   * `{run}/.adapters/<file>`, and the command names them there.
   */
  private async portable(target: Target, fp: Fingerprint, runDir: string): Promise<PortableAction> {
    const inputs: Record<string, OutputRecord> = {};
    let pythonEnv: PortableAction['pythonEnv'];
    for (const dep of target.deps) {
      const state = this.states.get(dep);
      if (state?.kind !== 'done') continue;
      const node = this.o.graph.nodes.get(dep);
      if (state.envDir) {
        if (!pythonEnv && node?.kind === 'target' && state.key) pythonEnv = { key: state.key, command: node.target.command(this.o.vars) };
        continue;
      }
      Object.assign(inputs, state.outputs);
    }
    const batched = target.batch;
    // A batch command (one worker over many items) may name adapters too; they ship with each member.
    const named = [...adaptersNamed(fp.command), ...(batched ? adaptersNamed(batched.command([batched.item], this.o.vars)) : [])];
    for (const name of this.adapterClosure(named)) inputs[`${REMOTE_ADAPTERS}/${name}`] = await this.adapterBlob(name, runDir);
    // The runner computes declared content digests as settle() does here; HDF5 needs the walk script.
    const contentDigest = target.contentDigest && { contentDigest: target.contentDigest };
    if (Object.values(target.contentDigest ?? {}).includes('hdf5')) inputs[HDF5_DIGEST_INPUT] = await this.toolBlob(this.o.hdf5DigestScript ?? 'hdf5_digest.py', HDF5_DIGEST_INPUT, runDir);
    const remote = (argv: string[]) => argv.map((t) => t.replaceAll('{adapters}/', `{run}/${REMOTE_ADAPTERS}/`));
    const command = remote(fp.command);
    const weight = target.resources?.(this.o.vars).weight;
    const batch = batched && { group: batched.group, item: batched.item, command: (items: unknown[]) => remote(batched.command(items, this.o.vars)) };
    const secretEnv = target.secretEnv?.length ? { secretEnv: target.secretEnv } : {};
    return { command, inputs, outputs: target.outputs, ...secretEnv, ...contentDigest, ...(pythonEnv ? { pythonEnv } : {}), ...(weight !== undefined ? { weight } : {}), ...(batch ? { batch } : {}) };
  }

  /**
   * The adapter files a remote action needs: those its command names and the adapters they import
   * (`_adapter.py`), found by the same static import closure that keys them (sources()).
   */
  private adapterClosure(named: string[]): string[] {
    const out = new Set(named);
    const entries = named.filter((a) => a.endsWith('.py')).map((a) => `{adapters}/${a}`);
    if (entries.length > 0 && this.o.pythonIndex) {
      for (const { id } of this.pythonFilesOf(entries)) {
        if (id.startsWith('{adapters}/')) out.add(id.slice('{adapters}/'.length));
      }
    }
    return [...out].sort();
  }

  /** An adapter's bytes in the store (ingested from a copy: ingesting makes its file a read-only blob). */
  private adapterBlob(name: string, runDir: string): Promise<OutputRecord> {
    return this.toolBlob(join(this.o.adaptersDir, name), `${REMOTE_ADAPTERS}/${name}`, runDir);
  }

  /** A file of this build system shipped with remote actions, at `runPath` in the run (an adapter, the HDF5 digest script). */
  private toolBlob(source: string, runPath: string, runDir: string): Promise<OutputRecord> {
    let record = this.adapterBlobs.get(runPath);
    if (!record) {
      const copy = join(runDir, runPath);
      mkdirOnce(join(copy, '..'), this.createdDirs);
      record = copyFile(source, copy).then(() => this.o.cache.ingest(copy));
      this.adapterBlobs.set(runPath, record);
    }
    return record;
  }

  /**
   * A local action reading remote-resident outputs (left on the Modal volume) gets them first:
   * the executor that can fetch them brings the blobs into the local store, then they are linked
   * into the run like any restored output.
   */
  private async materialiseInputs(target: Target): Promise<Failure<TargetReason> | null> {
    const wanted: [string, OutputRecord][] = [];
    for (const dep of target.deps) {
      const state = this.states.get(dep);
      if (state?.kind === 'done') for (const entry of Object.entries(state.outputs)) if (entry[1].remote) wanted.push(entry);
    }
    if (wanted.length === 0) return null;
    const fetcher = Object.values(this.o.executors).find((e) => e?.materialise);
    if (!fetcher?.materialise) {
      return { reason: 'remote-output', message: `${target.name}: ${wanted[0]![0]} is on the Modal volume (${wanted[0]![1].remote}); build with EXECUTOR=modal so it can be downloaded, or run ./build.ts fetch` };
    }
    const failure = await fetcher.materialise(wanted.map(([, record]) => record));
    if (failure) return { reason: failure.reason, message: `${target.name}: ${failure.message}` };
    // placeBlob, not a bare link: the memo learns the blob's new ctime, so it is not re-read later.
    for (const [path, record] of wanted) await this.o.cache.placeBlob(record.digest as Digest, join(this.o.workspace!.runDir, path));
    return null;
  }

  /** The directory of the Python environment this target depends on, if any. */
  private envDirFor(target: Target): string | undefined {
    for (const dep of target.deps) {
      const state = this.states.get(dep);
      if (state?.kind === 'done' && state.envDir) return state.envDir;
    }
    return undefined;
  }

  /** `{python}`: the interpreter of the environment this target depends on, else the one found for the project. */
  private pythonFor(target: Target): string {
    const dir = this.envDirFor(target);
    return dir ? join(dir, 'bin', 'python') : (this.o.interpreter ?? 'python3');
  }

  private finishDone(o: Done): void {
    const { target, key, outputs, outcome, envDir, result, durationMs } = o;
    this.states.set(target.name, { kind: 'done', outputs, envDir, key });
    this.o.counts[outcome]++;
    const executor = result?.executor ?? 'local';
    const last = outcome === 'built' && !envDir ? this.o.history?.lastOutputs(target.name) : undefined;
    // The marks go to the event and to meta.json alike (status RUN_ID=... shows them later).
    const marks = {
      ...(last && sameOutputs(outputs, last) ? { identicalOutput: true as const } : {}),
      ...(o.resumed ? { resumedFromCheckpoint: true as const } : {}),
      ...(o.shared ? { fromSharedCache: true as const } : {}),
    };
    this.o.emit({ event: 'target', target: target.name, outcome, key, executor, ...(durationMs !== undefined ? { durationMs } : {}), ...marks });
    this.o.record(target.name, {
      outcome,
      key,
      executor,
      ...(durationMs !== undefined ? { durationMs } : {}),
      ...(result?.remote ? { remote: { ...result.remote, ...(outcome === 'cached' ? { saved: true } : {}) } } : {}),
      outputs,
      ...marks,
    });
  }

  private finishFailed(o: Failed): void {
    const { target, reason, message, key, remote, resumed } = o;
    // A cancelled target settles like a failed one for the walk (its dependants do not start).
    this.states.set(target.name, { kind: 'failed' });
    const outcome = reason === 'cancelled' || this.o.signal.aborted ? 'cancelled' : 'failed';
    this.o.counts[outcome]++;
    this.o.emit({ event: 'target', target: target.name, outcome, reason, error: message, ...(key ? { key } : {}), ...(resumed ? { resumedFromCheckpoint: true } : {}) });
    this.o.record(target.name, { outcome, error: message, ...(key ? { key } : {}), ...(remote ? { remote } : {}), ...(resumed ? { resumedFromCheckpoint: true } : {}) });
  }
}

/** True when `dir` exists and holds anything. */
function nonEmptyDir(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

/** Where a remote action finds the adapters it runs, relative to its run directory. */
const REMOTE_ADAPTERS = '.adapters';
