import type { Cache } from './caching/cache.ts';
import type { SharedActionCache } from './caching/shared-cache.ts';
import type { Emit } from './report/events.ts';
import { schedulerInputs, type Prepared } from './prepare.ts';
import { Scheduler, type SchedulerOptions, type SchedulerReport } from './scheduler.ts';
import type { ExecutorKind, Target } from './target.ts';

export interface PlanOptions {
  prepared: Prepared;
  cache: Cache;
  emit: Emit;
  signal: AbortSignal;
  jobs: number;
  executorFor: (target: Target) => ExecutorKind;
  /** Put each command that would run in its plan event (`-n`). */
  showCommands: boolean;
  /** The action cache every machine shares, read (never written) as the build would ask it. */
  shared?: SharedActionCache;
  /** Called with every fingerprint computed (`explain RUN_ID=...` compares one with that run's). */
  onFingerprint?: SchedulerOptions['onFingerprint'];
}

/**
 * The dry run: the walk a build would make, with no workspace, so nothing executes and nothing is
 * written but the digest memo (an entry or fan-out list another machine built is read from the
 * shared cache into a temporary directory). `-n` prints its events and `explain` reads them: one code path, so
 * the two cannot disagree about what would run and why.
 */
export function planBuild(o: PlanOptions): Promise<SchedulerReport> {
  return new Scheduler({
    ...schedulerInputs(o.prepared, o.cache),
    executors: {}, executorFor: o.executorFor, baseEnv: {},
    jobs: o.jobs, keepGoing: true, emit: o.emit, signal: o.signal, record: () => undefined,
    showCommands: o.showCommands,
    ...(o.shared && { shared: o.shared }),
    ...(o.onFingerprint && { onFingerprint: o.onFingerprint }),
  }).run();
}
