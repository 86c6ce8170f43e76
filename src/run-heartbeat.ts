import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './util/fs-atomic.ts';

/**
 * `runs/<run_id>/heartbeat.json`: proof that the process building a run is still there, for
 * readers on other machines, where the pid meta.json records means nothing (a run on the Modal
 * volume, built by a remote coordinator). The building process rewrites it every `intervalMs`
 * from start to exit, and once more with `closed: true` when it ends normally (after publishing,
 * which follows meta.json's `completed`). A file of its own rather than a field of meta.json:
 * meta.json is also rewritten by publishing (run-publish.ts) after the recorder's last write, and
 * a timer rewriting the recorder's snapshot would undo that.
 *
 * A heartbeat older than {@link STALE_INTERVALS} intervals means the process died without closing:
 * the interval is recorded in the file, so a reader judges each writer by its own rhythm, with
 * room for a volume's commit delay and modest clock skew between machines.
 */
export const heartbeatSchema = z.object({
  at: z.string(),
  intervalMs: z.number().int().positive(),
  /** Set by the process's last write: it ended on its own (the run's status says how). */
  closed: z.boolean().optional(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

export const HEARTBEAT_FILE = 'heartbeat.json';
export const DEFAULT_HEARTBEAT_MS = 30_000;
/** Missed beats after which the writer is taken for dead (30 s beats: 2.5 minutes). */
export const STALE_INTERVALS = 5;

/** Whether a run's builder lives: `alive`, `ended` (closed), `lost` (stale or never beat), judged at `now`. */
export type BuilderState = 'alive' | 'ended' | 'lost';

export function builderState(beat: Heartbeat | null, startedAt: string, now: number): BuilderState {
  if (beat?.closed) return 'ended';
  const last = Date.parse(beat?.at ?? startedAt);
  const interval = beat?.intervalMs ?? DEFAULT_HEARTBEAT_MS;
  return now - last > STALE_INTERVALS * interval ? 'lost' : 'alive';
}

/** Parses heartbeat bytes; anything unreadable is no heartbeat. */
function parseHeartbeat(text: string | null): Heartbeat | null {
  if (text === null) return null;
  try {
    return heartbeatSchema.parse(JSON.parse(text));
  } catch {
    return null;
  }
}

export async function readHeartbeat(runDir: string): Promise<Heartbeat | null> {
  return parseHeartbeat(await readFile(join(runDir, HEARTBEAT_FILE), 'utf8').catch(() => null));
}

/** Beats until `stop`, which writes the closing beat (or, with `closed: false`, just stops). */
export class RunHeartbeat {
  private readonly file: string;
  private readonly intervalMs: number;
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();

  constructor(runDir: string, intervalMs = DEFAULT_HEARTBEAT_MS) {
    this.file = join(runDir, HEARTBEAT_FILE);
    this.intervalMs = intervalMs;
    this.timer = setInterval(() => void this.beat(false), intervalMs);
    // The beat never keeps the process alive on its own.
    this.timer.unref();
  }

  beat(closed: boolean): Promise<void> {
    const beat: Heartbeat = { at: new Date().toISOString(), intervalMs: this.intervalMs, ...(closed && { closed: true }) };
    // A failed beat (full disk) is only a missed beat: readers tolerate several.
    this.writing = this.writing.then(() => writeFileAtomic(this.file, `${JSON.stringify(beat)}\n`)).catch(() => undefined);
    return this.writing;
  }

  async stop(closed = true): Promise<void> {
    clearInterval(this.timer);
    if (closed) await this.beat(true);
    else await this.writing;
  }
}
