import { lpt } from '../lpt.ts';

/**
 * Gathers weighted actions (the area fan-out) that arrive together and hands them over in LPT
 * batches of at most `workers`. The scheduler gives the Modal executor its own large slot pool,
 * so every stale area reaches `add` within moments of the fan-out; the batcher waits until no
 * new action arrived for `quietMs` (at most `maxWaitMs` after the first), then partitions. Only
 * the actions that actually need to run arrive, so one stale area makes one batch of one.
 * Items are ordered by name before partitioning, so the batches do not depend on arrival order.
 * Each batch becomes one Modal call (ModalBatcher); local batching is src/local-batcher.ts.
 */
export interface BatchItem {
  name: string;
  weight: number;
  /** Actions of different classes never share a batch. */
  group: string;
  workers: number;
}

export interface ModalBatcherOptions<T extends BatchItem> {
  quietMs: number;
  maxWaitMs: number;
  /** Dispatches the batches of one flush; each item's `add` settles with what this resolves for it. */
  dispatch: (batches: T[][]) => Promise<Map<T, unknown>>;
}

export class ModalBatcher<T extends BatchItem> {
  private readonly o: ModalBatcherOptions<T>;
  private waiting: { item: T; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  private quiet: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;

  constructor(o: ModalBatcherOptions<T>) {
    this.o = o;
  }

  add(item: T): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.quiet) clearTimeout(this.quiet);
      this.quiet = setTimeout(() => void this.flush(), this.o.quietMs);
      this.deadline ??= setTimeout(() => void this.flush(), this.o.maxWaitMs);
    });
  }

  private async flush(): Promise<void> {
    clearTimeout(this.quiet);
    clearTimeout(this.deadline);
    this.quiet = this.deadline = undefined;
    const taken = this.waiting;
    this.waiting = [];
    if (taken.length === 0) return;
    const groups = new Map<string, T[]>();
    for (const { item } of [...taken].sort((a, b) => (a.item.name < b.item.name ? -1 : a.item.name > b.item.name ? 1 : 0))) {
      groups.set(item.group, [...(groups.get(item.group) ?? []), item]);
    }
    const batches = [...groups.values()].flatMap((items) => lpt(items, items[0]!.workers));
    try {
      const settled = await this.o.dispatch(batches);
      for (const w of taken) w.resolve(settled.get(w.item));
    } catch (error) {
      for (const w of taken) w.reject(error);
    }
  }
}
