import { join } from 'node:path';
import type { Emit } from './report/events.ts';
import type { ActionSpec, ExecOutcome, Executor } from './executors/executor.ts';
import { lpt } from './executors/lpt.ts';
import { resolveArgv } from './placeholders.ts';
import type { Target, Vars } from './target.ts';

/** What a local batch needs of each action it runs: the target's batch declaration and the prepared spec. */
export interface BatchableAction {
  target: Target;
  executor: Executor;
  spec: ActionSpec;
  /** The placeholder values the action's argv was resolved with; the batch command uses the first's. */
  placeholders: Record<string, string>;
}

export interface LocalBatcherOptions<T extends BatchableAction> {
  /** `-j`: a flush runs as at most this many batches, partitioned by weight (LPT). */
  jobs: number;
  vars: Vars;
  /** The run directory: batch logs go to its `logs/`. */
  runDir: string;
  signal: AbortSignal;
  emit: Emit;
  /** Records a batch member as running from its batch's start (the review's timeline reads it). */
  started: (action: T, startedAt: string) => void;
  /** Runs one action on its own: a batch of one, or each action of a failed batch again. */
  runOne: (action: T) => Promise<void>;
  /** Checks and stores one action of a batch on the batch's outcome. */
  settle: (action: T, outcome: ExecOutcome) => Promise<void>;
}

/**
 * Local batching (the area fan-out): many cheap batchable actions run as a few processes, 489
 * areas as `-j` worker processes instead of 489 Python start-ups. A group flushes once every
 * action of it that started has either arrived in the queue or left (cache hit, failure); all of a
 * fan-out's children start in the same scheduling pass, so one flush takes them all. The Modal
 * executor batches its own actions into calls (executors/modal/batcher.ts, ModalBatcher).
 */
export class LocalBatcher<T extends BatchableAction> {
  private readonly o: LocalBatcherOptions<T>;
  private readonly outstanding = new Map<string, number>();
  private readonly queues = new Map<string, { item: T; done: () => void; failed: (e: unknown) => void }[]>();

  constructor(o: LocalBatcherOptions<T>) {
    this.o = o;
  }

  /** A batchable action of `group` started (before its first await). */
  enter(group: string): void {
    this.outstanding.set(group, (this.outstanding.get(group) ?? 0) + 1);
  }

  /** It finished without joining a batch. */
  leave(group: string): void {
    this.outstanding.set(group, (this.outstanding.get(group) ?? 1) - 1);
    this.maybeFlush(group);
  }

  /** Joins the next batch of `group`; resolves when that batch has been run and settled. */
  submit(group: string, item: T): Promise<void> {
    return new Promise((done, failed) => {
      const queue = this.queues.get(group) ?? [];
      queue.push({ item, done, failed });
      this.queues.set(group, queue);
      this.leave(group);
    });
  }

  private maybeFlush(group: string): void {
    const queue = this.queues.get(group);
    if (!queue?.length || (this.outstanding.get(group) ?? 0) > 0) return;
    this.queues.delete(group);
    this.runAll(queue.map((q) => q.item)).then(
      () => queue.forEach((q) => q.done()),
      (error: unknown) => queue.forEach((q) => q.failed(error)),
    );
  }

  /** One flush: `-j` LPT batches by the targets' weights, run side by side. */
  private runAll(items: T[]): Promise<void> {
    const bins = lpt(items.map((a) => ({ a, weight: a.target.batch!.weight })), this.o.jobs);
    return Promise.all(bins.map((bin) => this.runBatch(bin.map((x) => x.a)))).then(() => undefined);
  }

  /**
   * Runs several batchable actions as one command (e.g. one worker process for many areas) and
   * settles each on its own outputs. If the batch fails, its actions are retried one by one, so a
   * single bad item fails alone, with its own log.
   */
  private async runBatch(actions: T[]): Promise<void> {
    if (actions.length === 1) return this.o.runOne(actions[0]!);
    const first = actions[0]!;
    const batch = first.target.batch!;
    const startedAt = new Date().toISOString();
    for (const a of actions) {
      this.o.emit({ event: 'target-start', target: a.target.name, executor: a.executor.kind });
      this.o.started(a, startedAt);
    }
    const argv = await resolveArgv(batch.command(actions.map((a) => a.target.batch!.item), this.o.vars), first.placeholders);
    const logFile = join(this.o.runDir, 'logs', `batch-${batch.group}-${first.target.name.replace(/[/:]/g, '_')}.log`);
    const outcome = await first.executor.execute({ ...first.spec, argv, logFile, outputs: actions.flatMap((a) => a.spec.outputs) });
    if (!outcome.ok) {
      if (this.o.signal.aborted) {
        for (const a of actions) await this.o.settle(a, outcome);
        return;
      }
      this.o.emit({ event: 'warning', message: `batch of ${actions.length} ${batch.group} targets failed; retrying them one by one (${outcome.failure.message})` });
      for (const a of actions) await this.o.runOne(a);
      return;
    }
    for (const a of actions) await this.o.settle(a, { ...outcome, durationMs: Math.round(outcome.durationMs / actions.length) });
  }
}
