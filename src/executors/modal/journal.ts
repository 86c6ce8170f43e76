import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../util/fs-atomic.ts';

/**
 * The call journal: `cache/modal/calls/<action key>.json`, written the moment a call is spawned.
 * A rerun (or RESUME=<run id>) that needs the same action key finds the call here and reattaches
 * to it instead of dispatching again; the scheduler's lock on the key makes this safe between
 * concurrent runs. Keyed by action key, not by run, because the key is what the call computes.
 * An entry is removed once its call's result has been consumed (the cache entry is committed
 * right after), so the journal never acts as a second cache.
 */
export const journalEntrySchema = z.object({
  key: z.string(),
  /** The transport's id: a stand-in call id means nothing to Modal, and the other way round. */
  transport: z.string(),
  callId: z.string(),
  function: z.string(),
  resourceClass: z.string(),
  /** Epoch seconds at spawn. */
  spawnedAt: z.number(),
  /** Actions in the same call (1 unless an area batch). */
  batchSize: z.number().int().positive(),
});
export type JournalEntry = z.infer<typeof journalEntrySchema>;

export class CallJournal {
  private readonly dir: string;

  constructor(cacheDir: string) {
    this.dir = join(cacheDir, 'modal', 'calls');
  }

  private path(key: string): string {
    if (!/^[0-9a-zA-Z]+$/.test(key)) throw new Error(`not an action key: ${key}`);
    return join(this.dir, `${key}.json`);
  }

  /** The entry for a key, or null (a corrupt entry is treated as absent: at worst the action is dispatched again). */
  async read(key: string): Promise<JournalEntry | null> {
    const text = await readFile(this.path(key), 'utf8').catch(() => null);
    if (text === null) return null;
    try {
      return journalEntrySchema.parse(JSON.parse(text));
    } catch {
      return null;
    }
  }

  async write(entry: JournalEntry): Promise<void> {
    await writeFileAtomic(this.path(entry.key), JSON.stringify(entry));
  }

  async remove(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}
