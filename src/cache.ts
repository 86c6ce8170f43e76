import { copyFileSync, linkSync, mkdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { DigestMemo } from './digest-memo.ts';
import { writeFileAtomic } from './fs-atomic.ts';
import { fingerprintSchema, type ActionKey, type Fingerprint } from './fingerprint.ts';
import type { Digest } from './hash.ts';
import { exists } from './fs-atomic.ts';

/**
 * The local content-addressed cache: `actions/<key>.json` (ActionKey -> ActionResult) over
 * `cas/<aa>/<digest>` blobs. An entry is committed by writing its action result last, so an
 * interrupted save is a miss, never a corrupt hit. Blobs are read-only and are linked into runs;
 * every restore verifies the blob against its digest (through the stat memo), so a blob that was
 * modified anyway is detected, dropped, and rebuilt.
 */
const digest = z.string().regex(/^[0-9a-f]{32}$/);

export const outputRecordSchema = z.object({
  digest,
  size: z.number().int().nonnegative(),
  /** Set when the bytes live only on a remote volume (Modal); fetched on demand. */
  remote: z.string().optional(),
});
export type OutputRecord = z.infer<typeof outputRecordSchema>;

/**
 * What a lookup reads: everything but the fingerprint, which lives beside it in `<key>.fp.json`.
 * A no-op build looks up every target, and validating ~500 fingerprints (their source and
 * upstream digests) was most of that cost; only `explain` and dry-run reasons read fingerprints.
 */
export const actionEntrySchema = z.object({
  key: z.string(),
  target: z.string(),
  outputs: z.record(z.string(), outputRecordSchema),
  executor: z.string(),
  durationMs: z.number(),
  createdAt: z.string(),
  /** Remote bookkeeping (resource class, GPU seconds...), kept for status and GPU-hours saved. */
  remote: z.record(z.string(), z.unknown()).optional(),
});
export type ActionEntry = z.infer<typeof actionEntrySchema>;
/** An entry with its fingerprint, as committed and as `latest()` returns it. */
export type ActionResult = ActionEntry & { fingerprint: Fingerprint };

export type Lookup =
  | { kind: 'hit'; result: ActionEntry }
  | { kind: 'miss' }
  | { kind: 'corrupt'; message: string };

export class Cache {
  readonly dir: string;
  private readonly memo: DigestMemo;

  constructor(dir: string, memo: DigestMemo) {
    this.dir = dir;
    this.memo = memo;
  }

  blobPath(d: string): string {
    return join(this.dir, 'cas', d.slice(0, 2), d);
  }

  private actionPath(key: string): string {
    return join(this.dir, 'actions', key.slice(0, 2), `${key}.json`);
  }

  private fingerprintPath(key: string): string {
    return join(this.dir, 'actions', key.slice(0, 2), `${key}.fp.json`);
  }

  private latestPath(target: string): string {
    return join(this.dir, 'targets', `${encodeURIComponent(target)}.json`);
  }

  async lookup(key: ActionKey): Promise<Lookup> {
    let text: string;
    try {
      // Synchronous: a no-op build looks up every target, and one readFileSync costs a fraction of
      // the four thread-pool round trips (open, fstat, read, close) of fs.promises.readFile.
      text = readFileSync(this.actionPath(key), 'utf8');
    } catch {
      return { kind: 'miss' };
    }
    try {
      const result = actionEntrySchema.parse(JSON.parse(text));
      if (result.key !== key) throw new Error('key mismatch');
      return { kind: 'hit', result };
    } catch (error) {
      return { kind: 'corrupt', message: `cache entry ${key} is corrupt (${(error as Error).message.split('\n')[0]}); it will be rebuilt` };
    }
  }

  /** The newest committed fingerprint for a target, whatever its key: what `explain` diffs against. */
  async latest(target: string): Promise<ActionResult | null> {
    try {
      const { key } = z.object({ key: z.string() }).parse(JSON.parse(await readFile(this.latestPath(target), 'utf8')));
      const found = await this.lookup(key as ActionKey);
      const fingerprint = await this.fingerprintOf(key as ActionKey);
      return found.kind === 'hit' && fingerprint ? { ...found.result, fingerprint } : null;
    } catch {
      return null;
    }
  }

  /** Hashes an output the action just wrote and links it into the store (read-only). */
  async ingest(file: string): Promise<OutputRecord> {
    const { digest: d, size } = await this.memo.digest(file);
    const blob = this.blobPath(d);
    if (!(await exists(blob))) {
      await mkdir(dirname(blob), { recursive: true });
      const tmp = `${blob}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
      await link(file, tmp).catch(() => copyFile(file, tmp));
      await chmod(tmp, 0o444);
      await rename(tmp, blob);
      this.memo.remember(blob, await stat(blob), d);
    }
    // The run's copy may share the blob's inode; its ctime moved, so remember it afresh.
    this.memo.remember(file, await stat(file), d);
    return { digest: d, size };
  }

  /**
   * Links each output's blob into the run. Returns a message (and deletes the blob) when a blob is
   * missing or no longer matches its digest; the caller treats that as a miss.
   */
  async restore(result: ActionEntry, runDir: string): Promise<string | null> {
    for (const [path, record] of Object.entries(result.outputs)) {
      if (record.remote) continue;
      const problem = await this.verifyBlob(record.digest as Digest);
      if (problem) return `${result.target}: output ${path} ${problem}; rebuilding`;
    }
    for (const [path, record] of Object.entries(result.outputs)) {
      if (record.remote) continue;
      const blob = this.blobPath(record.digest);
      await placeFile(blob, join(runDir, path));
      // Linking bumped the blob's ctime: remember it afresh (it was verified just above), or the
      // next run would re-read every restored blob.
      this.memo.remember(blob, statSync(blob), record.digest as Digest);
    }
    return null;
  }

  /** null if the blob exists and hashes to its name, else what is wrong (and the blob is removed). */
  async verifyBlob(d: Digest): Promise<string | null> {
    const blob = this.blobPath(d);
    let st;
    try {
      st = statSync(blob);
    } catch {
      return 'is missing from the cache';
    }
    const actual = await this.memo.digest(blob, st);
    if (actual.digest !== d) {
      await rm(blob, { force: true });
      this.memo.forget(blob);
      return `is corrupt in the cache (digest ${actual.digest.slice(0, 8)}, expected ${d.slice(0, 8)})`;
    }
    return null;
  }

  /** Commits an entry: its fingerprint first, then the entry itself (the commit marker), atomically. */
  async commit(result: ActionResult): Promise<void> {
    const { fingerprint, ...entry } = result;
    await writeFileAtomic(this.fingerprintPath(result.key), JSON.stringify(fingerprint));
    await writeFileAtomic(this.actionPath(result.key), JSON.stringify(entry));
    await writeFileAtomic(this.latestPath(result.target), JSON.stringify({ key: result.key }));
  }

  /** The stored fingerprint of an entry, validated; null if absent or corrupt. */
  async fingerprintOf(key: ActionKey): Promise<Fingerprint | null> {
    try {
      return fingerprintSchema.parse(JSON.parse(await readFile(this.fingerprintPath(key), 'utf8')));
    } catch {
      return null;
    }
  }
}

/** Puts a blob at `dest` as a hard link (no copy, no shared writable file: blobs are 0444). */
export async function placeFile(blob: string, dest: string): Promise<void> {
  // Synchronous calls: three tiny metadata operations, done for every output of a no-op build.
  // Link first: in a fresh run directory the destination never exists, and a failed unlink of an
  // absent file costs an exception per output.
  mkdirSync(dirname(dest), { recursive: true });
  try {
    linkSync(blob, dest);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      unlinkSync(dest);
      return placeFile(blob, dest);
    }
    if (code !== 'EXDEV') throw error;
    rmSync(dest, { force: true });
    copyFileSync(blob, dest);
  }
}

