import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { rm, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ActionEntry, type ActionResult, type Cache, type OutputRecord } from './caching/cache.ts';
import type { DigestMemo } from './caching/digest-memo.ts';
import type { Emit } from './report/events.ts';
import type { ActionSpec, ExecOutcome, Executor, PortableAction } from './executors/executor.ts';
import { Batcher } from './local-batcher.ts';
import { lpt } from './executors/lpt.ts';
import { actionKey, declaredParts, diffFingerprints, makeFingerprint, type ActionKey, type Fingerprint } from './fingerprint.ts';
import { expandFanout, type Graph } from './graph.ts';
import type { Digest } from './caching/hash.ts';
import { acquireLock } from './caching/action-lock.ts';
import { listSources } from './source-files.ts';
import { mkdirOnce } from './util/fs-atomic.ts';
import type { TargetOutcome } from './run.ts';
import type { ExecutorKind, FanOut, Target, Vars } from './target.ts';
import { envDirOf, envsDir, resolveArgv } from './placeholders.ts';

/** Where a real (not dry) run puts things; absent in a dry run. */
export interface Workspace {
  runDir: string;
  /** The project directory inside the run's own copy of the pinned tree, created on first use. */
  ensureCwd(): Promise<string>;
}

export interface SchedulerOptions {
  graph: Graph;
  goals: string[];
  vars: Vars;
  cache: Cache;
  memo: DigestMemo;
  /** Project directory inside the shared pinned tree: sources are hashed here, never in a work tree. */
  sourceRoot: string;
  workspace?: Workspace;
  executors: Partial<Record<ExecutorKind, Executor>>;
  executorFor: (target: Target) => ExecutorKind;
  /** Base environment for actions (PATH and friends); declared env is added per target. */
  baseEnv: Record<string, string>;
  cacheDir: string;
  jobs: number;
  keepGoing: boolean;
  emit: Emit;
  signal: AbortSignal;
  record: (target: string, outcome: TargetOutcome) => void;
  /** Dry run: include each command that would run in its plan event (for `-n REPO=...`). */
  showCommands?: boolean;
  /** Called with every fingerprint computed (for `explain`). */
  onFingerprint?: (target: Target, fp: Fingerprint) => void;
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
}

type State =
  | { kind: 'done'; outputs: Record<string, OutputRecord>; envDir?: string; key?: string }
  | { kind: 'failed' }
  | { kind: 'skipped' }
  /** Dry run: this node would execute, so its outputs are not known yet. */
  | { kind: 'unknown' };

export interface SchedulerReport {
  built: number;
  cached: number;
  failed: number;
  skipped: number;
  cancelled: boolean;
}

/**
 * Walks the graph: for each target, fingerprint -> lookup -> (restore | execute + store), with at
 * most `jobs` actions at once. Downstream fingerprints hash upstream output *bytes*, so a rebuilt
 * target with identical outputs leaves its dependants cached (early cutoff).
 */
export class Scheduler {
  private readonly o: SchedulerOptions;
  private readonly states = new Map<string, State>();
  private readonly sourceDigests = new Map<string, Promise<Digest>>();
  /** Source pattern -> matching files, expanded once per run (see source-files.ts). */
  private readonly patternCache = new Map<string, Promise<string[]>>();
  private readonly report: SchedulerReport = { built: 0, cached: 0, failed: 0, skipped: 0, cancelled: false };

  /** Local batchable actions wait here until every started one has arrived, then run in `-j` LPT batches. */
  private readonly batcher = new Batcher<PreparedAction>((items) =>
    Promise.all(lpt(items.map((a) => ({ a, weight: a.target.batch!.weight })), this.o.jobs).map((bin) => this.runBatch(bin.map((x) => x.a)))).then(() => undefined),
  );

  constructor(options: SchedulerOptions) {
    this.o = options;
  }

  async run(): Promise<SchedulerReport> {
    const { names, onlyChildren } = this.o.graph.select(this.o.goals);
    // Work list of runnable units: static targets and fan-out groups, in dependency order.
    const pending = new Map<string, { deps: string[]; start: () => Promise<void> }>();
    for (const name of names) {
      const node = this.o.graph.get(name);
      if (node.kind === 'target') {
        pending.set(name, { deps: node.target.deps, start: () => this.buildTarget(node.target) });
      } else {
        pending.set(name, { deps: node.fanout.deps, start: () => this.expand(node.fanout, onlyChildren.get(name), pending) });
      }
    }
    const inflight = new Map<string, Promise<void>>();
    // One wake-up promise, settled by whichever unit finishes next: Promise.race over ~500 in-flight
    // units would subscribe to each of them on every pass (quadratic, and most of a no-op's GC).
    let wake: () => void = () => undefined;
    let woken = new Promise<void>((resolve) => (wake = resolve));
    const running = new Map<string, number>();
    type Pool = { name: string; size: number };
    type Unit = { deps: string[]; start: () => Promise<void> };
    // Units whose deps are all settled but whose pool was full wait in a per-pool queue, out of
    // `pending`: otherwise every finished action rescans the ~489 ready areas (O(n^2) for the
    // fan-out; it was the largest item of a no-op build's profile). Each unit's pool is looked up once.
    const queued = new Map<string, { items: { name: string; unit: Unit; pool: Pool }[]; next: number }>();
    let started = false;
    const launch = (name: string, unit: Unit, pool: Pool | null) => {
      started = true;
      let held = pool !== null;
      const release = () => {
        if (!held) return;
        held = false;
        running.set(pool!.name, running.get(pool!.name)! - 1);
        wake();
      };
      if (pool) {
        running.set(pool.name, (running.get(pool.name) ?? 0) + 1);
        this.slotReleases.set(name, release);
      }
      const p = unit.start().finally(() => {
        inflight.delete(name);
        this.slotReleases.delete(name);
        release();
        wake();
      });
      inflight.set(name, p);
    };
    for (;;) {
      started = false;
      if (!this.stopping()) {
        for (const [poolName, q] of queued) {
          while (q.next < q.items.length) {
            const item = q.items[q.next]!;
            if ((running.get(poolName) ?? 0) >= item.pool.size) break;
            q.next++;
            launch(item.name, item.unit, item.pool);
          }
        }
      }
      for (const [name, unit] of pending) {
        let waiting = false;
        let upstreamFailed = false;
        // From the last dep: a fan-out group waits on its ~489 children, which settle roughly in
        // order, so a forward scan on every wake-up would walk all the settled ones (quadratic).
        for (let i = unit.deps.length - 1; i >= 0; i--) {
          const s = this.states.get(unit.deps[i]!);
          if (s === undefined) {
            waiting = true;
            break;
          }
          if (s.kind === 'failed' || s.kind === 'skipped') upstreamFailed = true;
        }
        if (waiting) continue;
        if (upstreamFailed) {
          pending.delete(name);
          this.skip(name, 'an upstream target failed');
          started = true;
          continue;
        }
        if (this.stopping()) continue;
        // Fan-out bookkeeping takes no slot; actions do.
        const pool = this.poolOf(name);
        pending.delete(name);
        const q = pool ? queued.get(pool.name) : undefined;
        if (pool && ((running.get(pool.name) ?? 0) >= pool.size || (q !== undefined && q.next < q.items.length))) {
          if (q) q.items.push({ name, unit, pool });
          else queued.set(pool.name, { items: [{ name, unit, pool }], next: 0 });
          continue;
        }
        launch(name, unit, pool);
      }
      if (inflight.size === 0 && !started) break;
      if (!started) {
        await woken;
        woken = new Promise<void>((resolve) => (wake = resolve));
      }
    }
    // Whatever never started (cancelled, or stopped after a failure without -k) is skipped.
    const neverStarted = [...pending.keys()];
    for (const q of queued.values()) for (const item of q.items.slice(q.next)) neverStarted.push(item.name);
    for (const name of neverStarted) {
      if (!name.startsWith('\0group:')) this.skip(name, this.o.signal.aborted ? 'cancelled' : 'stopped after a failure');
    }
    this.report.cancelled = this.o.signal.aborted;
    return this.report;
  }

  private readonly targetsByName = new Map<string, Target>();

  /**
   * Gives back a running unit's slot as soon as its process has exited: `-j` bounds processes,
   * and storing the outputs (hashing, linking, the cache entry) overlaps the next action.
   */
  private readonly slotReleases = new Map<string, () => void>();

  /**
   * The slot pool an action takes: local actions share `-j`; a remote executor has its own
   * (large) pool so that it sees many actions at once and can batch them. Fan-out bookkeeping
   * takes no slot.
   */
  private poolOf(name: string): { name: string; size: number } | null {
    if (name.startsWith('\0group:')) return null;
    const node = this.o.graph.nodes.get(name);
    if (node?.kind === 'fanout') return null;
    const target = node?.kind === 'target' ? node.target : this.targetsByName.get(name);
    const kind = target ? this.executorKind(target) : 'local';
    // Batchable local actions take no slot while they gather: their batches are sized by -j.
    if (target?.batch && kind === 'local') return null;
    const executor = this.o.executors[kind];
    if (kind !== 'local' && executor?.concurrency) return { name: kind, size: executor.concurrency };
    return { name: 'local', size: this.o.jobs };
  }

  /** Where a target's action runs; the pipeline's Python environment is always built here (cache/envs). */
  private executorKind(target: Target): ExecutorKind {
    return target.environment ? 'local' : this.o.executorFor(target);
  }

  private stopping(): boolean {
    return this.o.signal.aborted || (!this.o.keepGoing && this.report.failed > 0);
  }

  private skip(name: string, reason: string): void {
    this.states.set(name, { kind: 'skipped' });
    if (this.o.graph.nodes.get(name)?.kind === 'fanout') return;
    this.report.skipped++;
    this.o.emit({ event: 'target', target: name, outcome: 'skipped', reason });
    this.o.record(name, { outcome: 'skipped', error: reason });
  }

  /** Expands a fan-out from its inputs' bytes and schedules one target per item. */
  private async expand(
    fanout: FanOut,
    only: Set<string> | undefined,
    pending: Map<string, { deps: string[]; start: () => Promise<void> }>,
  ): Promise<void> {
    if (fanout.deps.some((d) => this.states.get(d)?.kind === 'unknown')) {
      this.states.set(fanout.name, { kind: 'unknown' });
      this.o.emit({ event: 'plan', target: fanout.name, action: 'run', why: 'fan-out; its items are known once its inputs are built' });
      return;
    }
    const outputsOf = (dep: string) => {
      const state = this.states.get(dep);
      return state?.kind === 'done' ? state.outputs : undefined;
    };
    const targets = expandFanout(fanout, outputsOf, (d) => this.o.cache.blobPath(d), this.o.vars, only);
    this.o.emit({ event: 'expand', target: fanout.name, children: targets.length, childPrefix: fanout.childPrefix });
    for (const child of targets) {
      this.targetsByName.set(child.name, child);
      pending.set(child.name, { deps: child.deps, start: () => this.buildTarget(child) });
    }
    // The group completes when its children have: its outputs are their union.
    pending.set(`\0group:${fanout.name}`, {
      deps: targets.map((t) => t.name),
      start: async () => {
        const outputs: Record<string, OutputRecord> = {};
        for (const t of targets) {
          const s = this.states.get(t.name);
          if (s?.kind === 'done') Object.assign(outputs, s.outputs);
          else {
            this.states.set(fanout.name, { kind: s?.kind === 'unknown' ? 'unknown' : 'skipped' });
            return;
          }
        }
        this.states.set(fanout.name, { kind: 'done', outputs });
      },
    });
  }

  /**
   * Source digests of a target. Globs and digests are shared by every target of the run as
   * promises: the 489 area targets start together and ask for the same files at once.
   */
  private async sources(target: Target): Promise<Record<string, Digest>> {
    const out: Record<string, Digest> = {};
    for (const file of await listSources(this.o.sourceRoot, target.sources, this.patternCache)) {
      let digest = this.sourceDigests.get(file);
      if (!digest) {
        digest = this.o.memo.digest(join(this.o.sourceRoot, file)).then((d) => d.digest);
        this.sourceDigests.set(file, digest);
      }
      out[file] = await digest;
    }
    return out;
  }

  async fingerprint(target: Target): Promise<Fingerprint> {
    const upstream: Record<string, string> = {};
    for (const dep of target.deps) {
      const state = this.states.get(dep);
      if (state?.kind !== 'done') throw new Error(`${target.name}: upstream ${dep} is not built`);
      for (const [path, record] of Object.entries(state.outputs)) upstream[`${dep} ${path}`] = record.digest;
    }
    return makeFingerprint({
      target: target.name,
      ...declaredParts(target, this.o.vars),
      sources: await this.sources(target),
      upstream,
      outputs: target.outputs,
    });
  }

  private async buildTarget(target: Target): Promise<void> {
    const group = target.batch && this.o.workspace && this.executorKind(target) === 'local' ? target.batch.group : null;
    if (group) this.batcher.enter(group);
    try {
      await this.buildTargetInner(target);
    } catch (error) {
      this.finishFailed(target, 'internal-error', (error as Error).message);
    } finally {
      if (group && !this.submitted.has(target.name)) this.batcher.leave(group);
    }
  }

  /** Batchable targets that joined a batch (they leave the batcher through it, not through buildTarget). */
  private readonly submitted = new Set<string>();

  private async buildTargetInner(target: Target): Promise<void> {
    if (target.deps.some((d) => this.states.get(d)?.kind === 'unknown')) {
      this.states.set(target.name, { kind: 'unknown' });
      const dep = target.deps.find((d) => this.states.get(d)?.kind === 'unknown');
      const command = this.o.showCommands ? { command: target.command(this.o.vars).join(' ') } : {};
      this.o.emit({ event: 'plan', target: target.name, action: 'run', why: `upstream ${dep} would run (unless its outputs come out identical)`, ...command });
      return;
    }
    const fp = await this.fingerprint(target);
    this.o.onFingerprint?.(target, fp);
    const key = actionKey(fp);
    const hit = await this.tryCached(target, key);
    if (hit) return;
    if (!this.o.workspace) {
      this.states.set(target.name, { kind: 'unknown' });
      const command = this.o.showCommands ? { command: fp.command.join(' ') } : {};
      this.o.emit({ event: 'plan', target: target.name, action: 'run', why: await this.why(target, fp), ...command });
      return;
    }
    const release = await acquireLock(join(this.o.cacheDir, 'locks'), key, this.o.signal).catch(() => null);
    if (!release) return this.finishFailed(target, 'cancelled', `${target.name}: cancelled`);
    try {
      // Another run may have built it while we waited for the lock.
      if (await this.tryCached(target, key)) return;
      await this.execute(target, fp, key);
    } finally {
      release();
    }
  }

  /** Restores a committed entry into the run; false (with a warning) when it cannot be used. */
  private async tryCached(target: Target, key: ActionKey): Promise<boolean> {
    if (target.environment) {
      const { dir, complete } = envDirOf(this.o.cacheDir, key);
      if (!complete) return false;
      this.finishDone(target, key, { env: { digest: key, size: 0 } }, 'cached', dir);
      return true;
    }
    const found = await this.o.cache.lookup(key);
    if (found.kind === 'corrupt') this.o.emit({ event: 'warning', message: found.message });
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
    this.finishDone(target, key, found.result.outputs, 'cached', undefined, found.result);
    return true;
  }

  private async why(target: Target, fp: Fingerprint): Promise<string> {
    const previous = await this.o.cache.latest(target.name);
    if (!previous) return 'never built';
    const changes = diffFingerprints(previous.fingerprint, fp);
    if (changes.length === 0) return 'cached outputs are missing or corrupt';
    const shown = changes.slice(0, 3).map((c) => `${c.kind} ${c.name}: ${c.detail}`);
    return shown.join('; ') + (changes.length > 3 ? `; +${changes.length - 3} more` : '');
  }

  private async execute(target: Target, fp: Fingerprint, key: ActionKey): Promise<void> {
    const kind = this.executorKind(target);
    const executor = this.o.executors[kind];
    if (!executor) return this.finishFailed(target, 'no-executor', `${target.name}: executor ${kind} is not configured`);
    if (executor.kind === 'local') {
      const problem = await this.materialiseInputs(target);
      if (problem) return this.finishFailed(target, problem.reason, problem.message, key);
    }
    const action = await this.prepareAction(target, fp, key, executor);
    if (target.batch && kind === 'local') {
      this.submitted.add(target.name);
      return this.batcher.submit(target.batch.group, action);
    }
    await this.runAction(action);
  }

  /** Resolves everything an executor needs; clears stale outputs first. */
  private async prepareAction(target: Target, fp: Fingerprint, key: ActionKey, executor: Executor): Promise<PreparedAction> {
    const ws = this.o.workspace!;
    const env: Record<string, string> = { ...this.o.baseEnv };
    for (const name of target.env ?? []) if (process.env[name] !== undefined) env[name] = process.env[name]!;
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
    const envDir = join(envsDir(this.o.cacheDir), key);
    const envTmp = `${envDir}.tmp-${process.pid}`;
    if (target.environment) await rm(envTmp, { recursive: true, force: true });
    const checkpointDir = join(this.o.cacheDir, 'checkpoints', key);
    const placeholders: Record<string, string> = { run: ws.runDir, python: this.pythonFor(target), checkpoint: checkpointDir, out: envTmp };
    if (fp.command.some((t) => t.includes('{checkpoint}'))) mkdirSync(checkpointDir, { recursive: true });
    const startedAt = new Date().toISOString();
    const spec: ActionSpec = {
      key,
      target: target.name,
      argv: await resolveArgv(fp.command, placeholders),
      // What a remote executor needs; a local action never reads it (489 areas would build it for nothing).
      ...(executor.kind === 'local' ? {} : { portable: this.portable(target, fp) }),
      cwd,
      env,
      outputs,
      logFile,
      resourceClass: target.resources?.(this.o.vars).class ?? 'cpu',
      signal: this.o.signal,
      vars: this.o.vars,
      report: (remote) => this.o.record(target.name, { outcome: 'running', key, executor: executor.kind, startedAt, remote }),
    };
    return { target, fp, key, executor, spec, placeholders, envDir, envTmp };
  }

  private async runAction(a: PreparedAction): Promise<void> {
    this.o.emit({ event: 'target-start', target: a.target.name, executor: a.executor.kind });
    this.o.record(a.target.name, { outcome: 'running', key: a.key, executor: a.executor.kind, startedAt: new Date().toISOString() });
    const outcome = await a.executor.execute(a.spec);
    this.slotReleases.get(a.target.name)?.();
    await null; // the freed slot's next action goes first
    await this.settle(a, outcome);
  }

  /**
   * Runs several batchable actions as one command (e.g. one worker process for many areas) and
   * settles each on its own outputs. If the batch fails, its actions are retried one by one, so a
   * single bad item fails alone, with its own log.
   */
  private async runBatch(actions: PreparedAction[]): Promise<void> {
    if (actions.length === 1) return this.runAction(actions[0]!);
    const first = actions[0]!;
    const batch = first.target.batch!;
    const startedAt = new Date().toISOString();
    for (const a of actions) {
      this.o.emit({ event: 'target-start', target: a.target.name, executor: a.executor.kind });
      this.o.record(a.target.name, { outcome: 'running', key: a.key, executor: a.executor.kind, startedAt });
    }
    const argv = await resolveArgv(batch.command(actions.map((a) => a.target.batch!.item), this.o.vars), first.placeholders);
    const logFile = join(this.o.workspace!.runDir, 'logs', `batch-${batch.group}-${first.target.name.replace(/[/:]/g, '_')}.log`);
    const outcome = await first.executor.execute({ ...first.spec, argv, logFile, outputs: actions.flatMap((a) => a.spec.outputs) });
    if (!outcome.ok) {
      if (this.o.signal.aborted) {
        for (const a of actions) await this.settle(a, outcome);
        return;
      }
      this.o.emit({ event: 'warning', message: `batch of ${actions.length} ${batch.group} targets failed; retrying them one by one (${outcome.failure.message})` });
      for (const a of actions) await this.runAction(a);
      return;
    }
    for (const a of actions) await this.settle(a, { ...outcome, durationMs: Math.round(outcome.durationMs / actions.length) });
  }

  /** Checks and stores an action's outputs (the action result is committed last), or records its failure. */
  private async settle(a: PreparedAction, outcome: ExecOutcome): Promise<void> {
    const { target, key, fp, executor } = a;
    if (!outcome.ok) {
      const reason = outcome.failure.reason;
      return this.finishFailed(target, reason, `${outcome.failure.message}${outcome.failure.logTail ? `\n${outcome.failure.logTail}` : ''}`, key, outcome.remote);
    }
    if (target.environment) {
      await writeFile(join(a.envTmp, '.complete'), key);
      await rename(a.envTmp, a.envDir).catch(async () => rm(a.envTmp, { recursive: true, force: true }));
      return this.finishDone(target, key, { env: { digest: key, size: 0 } }, 'built', a.envDir, undefined, outcome.durationMs);
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
        return this.finishFailed(target, 'missing-output', `${target.name}: the command succeeded but did not write ${path}`, key);
      }
      records[path] = await this.o.cache.ingest(file);
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
    this.finishDone(target, key, records, 'built', undefined, result, outcome.durationMs);
  }

  /** The action as a remote executor needs it: unresolved command, upstream outputs, Python env. */
  private portable(target: Target, fp: Fingerprint): PortableAction {
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
    const weight = target.resources?.(this.o.vars).weight;
    return { command: fp.command, inputs, outputs: target.outputs, ...(pythonEnv ? { pythonEnv } : {}), ...(weight !== undefined ? { weight } : {}) };
  }

  /**
   * A local action reading remote-resident outputs (left on the Modal volume) gets them first:
   * the executor that can fetch them brings the blobs into the local store, then they are linked
   * into the run like any restored output.
   */
  private async materialiseInputs(target: Target): Promise<{ reason: string; message: string } | null> {
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

  /** Directories this run already created: ~500 actions share a handful of output directories. */
  private readonly createdDirs = new Set<string>();

  /** `{python}`: the interpreter of the environment this target depends on, else the system's. */
  private pythonFor(target: Target): string {
    for (const dep of target.deps) {
      const state = this.states.get(dep);
      if (state?.kind === 'done' && state.envDir) return join(state.envDir, 'bin', 'python');
    }
    return 'python3';
  }

  private finishDone(
    target: Target,
    key: string,
    outputs: Record<string, OutputRecord>,
    outcome: 'built' | 'cached',
    envDir?: string,
    result?: ActionEntry,
    durationMs?: number,
  ): void {
    this.states.set(target.name, { kind: 'done', outputs, envDir, key });
    this.report[outcome]++;
    const executor = result?.executor ?? 'local';
    this.o.emit({ event: 'target', target: target.name, outcome, key, executor, ...(durationMs !== undefined ? { durationMs } : {}) });
    this.o.record(target.name, {
      outcome,
      key,
      executor,
      ...(durationMs !== undefined ? { durationMs } : {}),
      ...(result?.remote ? { remote: { ...result.remote, ...(outcome === 'cached' ? { saved: true } : {}) } } : {}),
      outputs,
    });
  }

  private finishFailed(target: Target, reason: string, message: string, key?: string, remote?: Record<string, unknown>): void {
    this.states.set(target.name, { kind: 'failed' });
    this.report.failed++;
    this.o.emit({ event: 'target', target: target.name, outcome: 'failed', reason, error: message, ...(key ? { key } : {}) });
    this.o.record(target.name, { outcome: reason === 'cancelled' ? 'cancelled' : 'failed', error: message, ...(key ? { key } : {}), ...(remote ? { remote } : {}) });
  }

}
