import { writeMeta, type RunMeta, type RunStatus, type TargetOutcome } from './run.ts';

/**
 * Keeps a run's meta.json current while it builds: per-target outcomes as they happen, written
 * atomically at most every 200 ms (a cold run finishes ~500 targets) and once at the end.
 */
export class RunRecorder {
  readonly meta: RunMeta;
  private readonly dir: string;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(dir: string, meta: RunMeta) {
    this.dir = dir;
    this.meta = meta;
  }

  record = (target: string, outcome: TargetOutcome): void => {
    // A target that ran keeps the start its `running` record had, and gets its end: the review's timeline.
    const startedAt = outcome.startedAt ?? this.meta.targets[target]?.startedAt;
    const ended = startedAt && outcome.outcome !== 'running' && !outcome.finishedAt ? { finishedAt: new Date().toISOString() } : {};
    this.meta.targets[target] = startedAt ? { ...outcome, startedAt, ...ended } : outcome;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      // A refused write (a full disk) must not kill the build: the next write carries the whole
      // record again, and finish() reports its own failure.
      this.flush().catch(() => undefined);
    }, 200);
  };

  flush(): Promise<void> {
    const counts = { built: 0, cached: 0, failed: 0, cancelled: 0, skipped: 0 };
    for (const t of Object.values(this.meta.targets)) if (t.outcome !== 'running') counts[t.outcome]++;
    this.meta.counts = counts;
    const snapshot = structuredClone(this.meta);
    // After an earlier failed write too: each write is the whole record.
    this.writing = this.writing.catch(() => undefined).then(() => writeMeta(this.dir, snapshot));
    return this.writing;
  }

  async finish(status: RunStatus, error?: string): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.meta.status = status;
    this.meta.finishedAt = new Date().toISOString();
    this.meta.durationMs = Date.parse(this.meta.finishedAt) - Date.parse(this.meta.startedAt);
    if (error) this.meta.error = error;
    await this.flush();
  }
}
