import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutputRecord } from './caching/cache.ts';
import type { SkipReason } from './report/failures.ts';
import { expandFanout } from './graph.ts';
import { UsageError } from './report/failures.ts';
import type { FanOut, Target } from './target.ts';
import { TargetBuilder, type BuildCounts, type TargetBuildOptions, type TargetState } from './target-build.ts';
import type { Cause, Event } from './report/events.ts';
import { RunEstimator } from './run-estimate.ts';
import { describeCause } from './stale-reason.ts';

/** What the walk needs beyond what every target's build needs: what to build, and whether to stop at a failure. */
export interface SchedulerOptions extends TargetBuildOptions {
  goals: string[];
  /** `-k`: keep starting independent targets after a failure. */
  keepGoing: boolean;
}

/** The run's counts, for the summary event and the exit code. */
export interface SchedulerReport extends BuildCounts {
  skipped: number;
  /** The signal aborted the walk (exit 130). */
  aborted: boolean;
  /** A goal named a fan-out item its list does not hold (`h5:states/ZZ`): the walk stopped there (exit 2). */
  usageError?: UsageError;
}

/**
 * The walk: runs every selected target once its upstreams have settled, with at most `jobs`
 * local actions at once (a remote executor has its own pool), expands each fan-out from its
 * inputs' bytes when they are built, and skips whatever an upstream failure or cancellation
 * leaves unreachable. What happens to one target (fingerprint, cache, action) is target-build.ts.
 */
export class Scheduler {
  private readonly o: SchedulerOptions;
  private readonly states = new Map<string, TargetState>();
  private readonly report: SchedulerReport = { built: 0, cached: 0, failed: 0, cancelled: 0, skipped: 0, aborted: false };
  private readonly builder: TargetBuilder;
  /** Adds earlier runs' durations and the time left to the events, once an action runs (run-estimate.ts). */
  private readonly estimator: RunEstimator | null;
  /** The walk's units not settled yet, for the estimator (set by run()). */
  private unsettled: () => Iterable<string> = () => [];
  private readonly emit = (e: Event): void => this.o.emit(this.estimator ? this.estimator.decorate(e) : e);

  constructor(options: SchedulerOptions) {
    this.o = options;
    this.estimator = options.history
      ? new RunEstimator({ history: options.history, graph: options.graph, jobs: options.jobs, unsettled: () => this.unsettled() })
      : null;
    this.builder = new TargetBuilder({
      ...options,
      emit: this.emit,
      states: this.states,
      counts: this.report,
      releaseSlot: (name) => this.slotReleases.get(name)?.(),
    });
  }

  async run(): Promise<SchedulerReport> {
    const { names, onlyChildren } = this.o.graph.select(this.o.goals);
    // Work list of runnable units: static targets and fan-out groups, in dependency order.
    const pending = new Map<string, { deps: string[]; start: () => Promise<void> }>();
    for (const name of names) {
      const node = this.o.graph.get(name);
      if (node.kind === 'target') {
        const restricted = [...onlyChildren].map(([fanout, only]) => ({ fanout: this.fanout(fanout), only })).filter((r) => r.fanout.deps.includes(name));
        const build = () => this.builder.build(node.target);
        // An upstream of a fan-out whose items a goal names: once it is built, check the names if the list can be read.
        const start = restricted.length === 0 ? build : async () => {
          await build();
          for (const { fanout, only } of restricted) this.checkItems(fanout, only);
        };
        pending.set(name, { deps: node.target.deps, start });
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
    this.unsettled = function* () {
      for (const name of pending.keys()) if (!name.startsWith('\0group:')) yield name;
      for (const q of queued.values()) for (const item of q.items.slice(q.next)) yield item.name;
      for (const name of inflight.keys()) if (!name.startsWith('\0group:')) yield name;
    };
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
          this.skip(name, this.o.signal.aborted ? 'cancelled' : 'an upstream target failed');
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
    this.report.aborted = this.o.signal.aborted;
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
    const kind = target ? this.builder.executorKind(target) : 'local';
    // Batchable local actions take no slot while they gather: their batches are sized by -j.
    if (target?.batch && kind === 'local') return null;
    const executor = this.o.executors[kind];
    if (kind !== 'local' && executor?.concurrency) return { name: kind, size: executor.concurrency };
    return { name: 'local', size: this.o.jobs };
  }

  private stopping(): boolean {
    return this.o.signal.aborted || this.report.usageError !== undefined || (!this.o.keepGoing && this.report.failed > 0);
  }

  private fanout(name: string): FanOut {
    const node = this.o.graph.get(name);
    if (node.kind !== 'fanout') throw new Error(`${name} is not a fan-out`);
    return node.fanout;
  }

  private outputsOf = (dep: string) => {
    const state = this.states.get(dep);
    return state?.kind === 'done' ? state.outputs : undefined;
  };

  /**
   * Checks the items a goal names (`h5:states/ZZ`) as soon as the fan-out's list can be read from
   * what is built so far (the area list, long before the fits): a name the list lacks stops the
   * walk there. Until the list's input is built, reading it fails, and the check waits.
   */
  private checkItems(fanout: FanOut, only: Set<string>): void {
    if (this.report.usageError || this.states.has(fanout.name)) return;
    try {
      expandFanout(fanout, this.outputsOf, (d) => this.o.cache.blobPath(d), this.o.vars, only);
    } catch (error) {
      if (error instanceof UsageError) this.failFanout(fanout, error);
    }
  }

  /**
   * Expands a fan-out. The list it reads is usually built here, but an entry another machine built
   * (the shared action cache) leaves it on the volume: the outputs the expansion asked for and
   * this cache lacks are downloaded, as for a local action, and it is expanded again.
   */
  private async expandWithLists(fanout: FanOut, only: Set<string> | undefined): Promise<Target[]> {
    const remote = new Map(fanout.deps.flatMap((d) => Object.values(this.outputsOf(d) ?? {})).filter((r) => r.remote).map((r) => [r.digest, r]));
    const asked: OutputRecord[] = [];
    const blobPath = (d: string) => {
      const path = this.o.cache.blobPath(d);
      const record = remote.get(d);
      if (record && !existsSync(path)) asked.push(record);
      return path;
    };
    try {
      return expandFanout(fanout, this.outputsOf, blobPath, this.o.vars, only);
    } catch (error) {
      if (asked.length === 0) throw error;
      const fetcher = Object.values(this.o.executors).find((e) => e?.materialise);
      if (fetcher?.materialise) {
        const failure = await fetcher.materialise(asked);
        if (failure) throw new Error(`${fanout.name}: ${failure.message}`);
        return expandFanout(fanout, this.outputsOf, (d) => this.o.cache.blobPath(d), this.o.vars, only);
      }
      // A dry run writes nothing to the cache: the lists come down into a directory of their own, then go.
      if (this.o.workspace || !this.o.shared) throw error;
      const dir = await mkdtemp(join(tmpdir(), 'build-plan-lists-'));
      try {
        if (!(await this.o.shared.peekBlobs(asked.map((r) => r.digest), dir))) throw error;
        const peeked = new Set(asked.map((r) => r.digest));
        return expandFanout(fanout, this.outputsOf, (d) => (peeked.has(d) ? join(dir, d) : this.o.cache.blobPath(d)), this.o.vars, only);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  }

  /** The fan-out cannot expand: a goal named a missing item (UsageError), or its list is unreadable. */
  private failFanout(fanout: FanOut, error: Error): void {
    const reason = error instanceof UsageError && error.reason === 'unknown-target' ? 'unknown-target' : 'bad-fanout-list';
    if (error instanceof UsageError) this.report.usageError = error;
    this.states.set(fanout.name, { kind: 'failed' });
    this.report.failed++;
    this.emit({ event: 'target', target: fanout.name, outcome: 'failed', reason, error: error.message });
    this.o.record(fanout.name, { outcome: 'failed', error: error.message });
  }

  private skip(name: string, reason: SkipReason): void {
    this.states.set(name, { kind: 'skipped' });
    if (this.o.graph.nodes.get(name)?.kind === 'fanout') return;
    this.report.skipped++;
    this.emit({ event: 'target', target: name, outcome: 'skipped', reason });
    this.o.record(name, { outcome: 'skipped', error: reason });
  }

  /** Expands a fan-out from its inputs' bytes and schedules one target per item. */
  private async expand(
    fanout: FanOut,
    only: Set<string> | undefined,
    pending: Map<string, { deps: string[]; start: () => Promise<void> }>,
  ): Promise<void> {
    if (this.states.get(fanout.name)?.kind === 'failed') return; // checkItems already refused a goal's item
    if (fanout.deps.some((d) => this.states.get(d)?.kind === 'unknown')) {
      this.states.set(fanout.name, { kind: 'unknown' });
      const cause: Cause = { kind: 'items-not-known', ...(only ? { items: [...only] } : {}) };
      const why = describeCause(cause);
      const sample = this.o.showCommands ? fanout.sample?.() : undefined;
      const example = sample ? { why: `${why} (for example ${sample.name})`, command: sample.command(this.o.vars).join(' '), declared: sample.command(this.o.vars).join(' ') } : undefined;
      this.o.emit({ event: 'plan', target: fanout.name, action: 'run', why, causes: [cause], ...example, ...(sample ? this.builder.plannedWhere(sample) : {}) });
      return;
    }
    let targets: Target[];
    try {
      targets = await this.expandWithLists(fanout, only);
    } catch (error) {
      return this.failFanout(fanout, error as Error);
    }
    this.o.emit({ event: 'expand', target: fanout.name, children: targets.length, childPrefix: fanout.childPrefix });
    for (const child of targets) {
      this.targetsByName.set(child.name, child);
      pending.set(child.name, { deps: child.deps, start: () => this.builder.build(child) });
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
}
