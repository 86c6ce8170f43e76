/**
 * Gathers batchable actions (the area fan-out) so that many cheap actions run as a few processes:
 * 489 areas as `-j` worker processes instead of 489 Python start-ups. A group flushes once every
 * action of it that started has either arrived in the queue or left (cache hit, failure); all of a
 * fan-out's children start in the same scheduling pass, so one flush takes them all.
 */
export class Batcher<T> {
  private readonly outstanding = new Map<string, number>();
  private readonly queues = new Map<string, { item: T; done: () => void; failed: (e: unknown) => void }[]>();
  private readonly run: (items: T[]) => Promise<void>;

  constructor(run: (items: T[]) => Promise<void>) {
    this.run = run;
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
    this.run(queue.map((q) => q.item)).then(
      () => queue.forEach((q) => q.done()),
      (error: unknown) => queue.forEach((q) => q.failed(error)),
    );
  }
}
