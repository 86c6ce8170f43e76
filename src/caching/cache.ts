import { chmodSync, copyFileSync, existsSync, linkSync, lstatSync, readFileSync, renameSync, rmSync, statSync, type Stats } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { DigestMemo } from './digest-memo.ts';
import { mkdirOnce, writeFileAtomicSync } from '../util/fs-atomic.ts';
import { fingerprintSchema, type ActionKey, type Fingerprint } from '../fingerprint.ts';
import type { Digest } from './hash.ts';
import { listRunIds, readMeta } from '../run.ts';
import { ENV_FINGERPRINT, envDirOf } from '../placeholders.ts';
import { outputRecordSchema, type OutputRecord } from '../output-record.ts';

export { outputRecordSchema, type OutputRecord } from '../output-record.ts';

/**
 * An entry file holds two lines: this entry, then its fingerprint. A no-op build looks up every
 * target and parses only the first line (validating ~500 fingerprints, their source and upstream
 * digests, was most of that cost); only `explain` and dry-run reasons read the second. One file
 * per entry, because creating a file costs ~0.3 ms of kernel time on this machine's disk.
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

/**
 * The local content-addressed cache: `actions/<key>.json` (ActionKey -> ActionResult) over
 * `cas/<aa>/<digest>` blobs. An entry is committed by writing its action result last, so an
 * interrupted save is a miss, never a corrupt hit. Blobs are read-only and are linked into runs;
 * every restore verifies the blob against its digest (through the stat memo), so a blob that was
 * modified anyway is detected, dropped, and rebuilt.
 *
 * What a restore does not see: a blob whose stat (size, mtime, ctime, inode) the memo knows is
 * trusted without a read, for speed (a no-op restores ~500 blobs). Bytes that rot on disk with the
 * stat unchanged are therefore restored as they are; staging and promote re-read every file they
 * publish against the digests the build recorded (publish/recorded-digests.ts), and `cache
 * verify` (resumable, incremental with MAX_GB, -n to report only) re-reads blobs on a schedule.
 * A blob that is not a regular file (a directory, a FIFO) is removed before anything opens it.
 */
export class Cache {
  readonly dir: string;
  private readonly memo: DigestMemo;

  /** Where Python environments live (BUILD_ENVS_DIR may share them between caches). */
  private readonly envsDir: string;

  constructor(dir: string, memo: DigestMemo, envsDir = join(dir, 'envs')) {
    this.dir = dir;
    this.memo = memo;
    this.envsDir = envsDir;
  }

  blobPath(d: string): string {
    return join(this.dir, 'cas', d.slice(0, 2), d);
  }

  private actionPath(key: string): string {
    return join(this.dir, 'actions', key.slice(0, 2), `${key}.json`);
  }

  async lookup(key: ActionKey): Promise<Lookup> {
    let text: string;
    const path = this.actionPath(key);
    try {
      // Synchronous: a no-op build looks up every target, and one readFileSync costs a fraction of
      // the four thread-pool round trips (open, fstat, read, close) of fs.promises.readFile.
      // existsSync first: a cold build misses ~1,000 times, and a thrown ENOENT costs a stack trace.
      if (!existsSync(path)) return { kind: 'miss' };
      text = readFileSync(path, 'utf8');
    } catch {
      return { kind: 'miss' };
    }
    try {
      const result = parseEntry(text);
      if (result.key !== key) throw new Error('key mismatch');
      return { kind: 'hit', result };
    } catch (error) {
      return { kind: 'corrupt', message: `cache entry ${key} is corrupt (${(error as Error).message.split('\n')[0]}); it will be rebuilt` };
    }
  }

  /**
   * The entry (with its fingerprint) that the newest run on disk used for a target, built or
   * restored: what `explain` and dry-run reasons diff against. Runs record every target's key, so
   * no per-target pointer is written per action.
   */
  async latest(target: string): Promise<ActionResult | null> {
    return (await this.recent(target, 1))[0] ?? null;
  }

  /**
   * The distinct entries the newest runs used for a target (at most `limit`, newest first): a
   * dry run's reason diffs against the closest of them, not only the newest (a build with SEED=42
   * after one with SEED=31 is closest to the SEED=42 entry).
   */
  async recent(target: string, limit: number): Promise<ActionResult[]> {
    this.runIds ??= listRunIds(this.dir);
    const keys: string[] = [];
    for (const id of await this.runIds) {
      let meta = this.metas.get(id);
      if (!meta) this.metas.set(id, (meta = readMeta(this.dir, id)));
      const read = await meta;
      const outcome = read.ok ? read.value.targets[target] : undefined;
      if (outcome?.key && (outcome.outcome === 'built' || outcome.outcome === 'cached') && !keys.includes(outcome.key)) {
        keys.push(outcome.key);
        if (keys.length >= limit) break;
      }
    }
    const out: ActionResult[] = [];
    for (const key of keys) {
      const entry = this.withFingerprint(target, key);
      if (entry) out.push(entry);
    }
    return out;
  }

  /** The entry committed for `key`, with its fingerprint (`explain RUN_ID=...` reads the one a run used). */
  resultOf(target: string, key: string): ActionResult | null {
    return this.withFingerprint(target, key);
  }

  private withFingerprint(target: string, key: string): ActionResult | null {
    // One read for both lines: the entry, then its fingerprint.
    try {
      const text = readFileSync(this.actionPath(key), 'utf8');
      const entry = parseEntry(text);
      if (entry.key !== key) return null;
      return { ...entry, fingerprint: fingerprintSchema.parse(JSON.parse(text.slice(text.indexOf('\n') + 1))) };
    } catch {
      return this.latestEnvironment(target, key);
    }
  }

  /** A Python environment has no entry: its fingerprint is kept inside it (target-build.ts). */
  private latestEnvironment(target: string, key: string): ActionResult | null {
    try {
      const file = join(envDirOf(this.envsDir, key).dir, ENV_FINGERPRINT);
      const fingerprint = fingerprintSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
      return { key, target, outputs: {}, executor: 'local', durationMs: 0, createdAt: statSync(file).mtime.toISOString(), fingerprint };
    } catch {
      return null;
    }
  }

  /** Runs newest first, and their metas as read, for `latest` (explain reads them for many targets). */
  private runIds: Promise<string[]> | undefined;
  private readonly metas = new Map<string, ReturnType<typeof readMeta>>();

  /**
   * Hashes an output the action just wrote and links it into the store (read-only). The metadata
   * calls are synchronous (microseconds each; every executed action makes them); only hashing a
   * large file goes off the main thread.
   */
  async ingest(file: string): Promise<OutputRecord> {
    const { digest: d, size } = await this.memo.digest(file);
    const blob = this.blobPath(d);
    if (!existsSync(blob)) {
      mkdirOnce(dirname(blob), this.madeDirs);
      // The finished output becomes the blob by a hard link, which is atomic and creates no
      // inode; across filesystems, a copy under a temporary name is renamed into place.
      chmodSync(file, 0o444);
      try {
        linkSync(file, blob);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') {
          if (code !== 'EXDEV') throw error;
          const tmp = `${blob}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
          copyFileSync(file, tmp);
          chmodSync(tmp, 0o444);
          renameSync(tmp, blob);
        }
      }
      this.memo.remember(blob, statSync(blob), d);
    }
    // The run's copy may share the blob's inode; its ctime moved, so remember it afresh.
    this.memo.remember(file, statSync(file), d);
    return { digest: d, size };
  }

  /**
   * Links each output's blob into the run. Returns a message (and deletes the blob) when a blob is
   * missing or no longer matches its digest; the caller treats that as a miss.
   */
  async restore(result: ActionEntry, runDir: string): Promise<string | null> {
    const problem = await this.verify(result);
    if (problem) return problem;
    for (const [path, record] of Object.entries(result.outputs)) {
      if (!record.remote) await this.placeBlob(record.digest as Digest, join(runDir, path));
    }
    return null;
  }

  /** null when every local output's blob is intact, else what is wrong (a bad blob is removed). */
  async verify(result: ActionEntry): Promise<string | null> {
    for (const [path, record] of Object.entries(result.outputs)) {
      if (record.remote) continue;
      const problem = await this.verifyBlob(record.digest as Digest);
      if (problem) return `${result.target}: output ${path} ${problem}; rebuilding`;
    }
    return null;
  }

  /**
   * Links a blob, verified by the caller, to `dest`. Linking bumps the blob's ctime, so the memo learns its new
   * stat: otherwise the next verification would re-read the whole blob.
   */
  async placeBlob(d: Digest, dest: string): Promise<void> {
    const blob = this.blobPath(d);
    await placeFile(blob, dest, this.madeDirs);
    this.adopt(d);
  }

  /** Tells the memo that the blob for `d` was just written or linked and is known to match `d`. */
  adopt(d: Digest): void {
    const blob = this.blobPath(d);
    this.memo.remember(blob, statSync(blob), d);
  }

  /**
   * True when the entry file for `key` exists and every local output's blob is one the memo knows,
   * by its stat, to hold its digest. Reads no entry and hashes nothing (a replay asks ~500 times);
   * anything less certain is left to lookup and restore, which verify and report.
   */
  holds(key: string, outputs: Record<string, OutputRecord>): boolean {
    if (!existsSync(this.actionPath(key))) return false;
    for (const record of Object.values(outputs)) {
      if (record.remote) continue;
      const blob = this.blobPath(record.digest);
      let st;
      try {
        st = statSync(blob);
      } catch {
        return false;
      }
      if (this.memo.known(blob, st) !== record.digest) return false;
    }
    return true;
  }

  /** null if the blob exists and hashes to its name, else what is wrong (and the blob is removed). */
  async verifyBlob(d: Digest): Promise<string | null> {
    const blob = this.blobPath(d);
    let st;
    try {
      st = lstatSync(blob);
    } catch {
      return 'is missing from the cache';
    }
    // Checked before any open: opening a FIFO for reading blocks until a writer appears (forever),
    // and a directory cannot be read; neither is a blob, whatever put it there.
    if (!st.isFile()) {
      await rm(blob, { recursive: true, force: true });
      this.memo.forget(blob);
      return `is not a regular file in the cache (${fileKind(st)}; removed)`;
    }
    const actual = this.memo.known(blob, st) ?? (await this.memo.digest(blob, st)).digest;
    if (actual !== d) {
      await rm(blob, { force: true });
      this.memo.forget(blob);
      return `is corrupt in the cache (digest ${actual.slice(0, 8)}, expected ${d.slice(0, 8)})`;
    }
    return null;
  }

  /** Commits an entry with its fingerprint, atomically: the entry file is the commit marker. */
  commit(result: ActionResult): void {
    const { fingerprint, ...entry } = result;
    mkdirOnce(dirname(this.actionPath(result.key)), this.madeDirs);
    writeFileAtomicSync(this.actionPath(result.key), `${JSON.stringify(entry)}\n${JSON.stringify(fingerprint)}\n`);
  }

  /** Directories this cache made: store shards (256 of each kind) and run directories it restored into. */
  private readonly madeDirs = new Set<string>();
}

/** What a non-regular file is, for messages. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isSocket()) return 'a socket';
  if (st.isBlockDevice() || st.isCharacterDevice()) return 'a device';
  return 'a regular file';
}

/**
 * Puts a blob at `dest` as a hard link (no copy, no shared writable file: blobs are 0444). A path
 * that may already exist is never removed first: other processes of the run read it meanwhile
 * (two local actions reading one remote output both place it while the first one's command lists
 * the directory), so a path that is this blob already is left alone, and any other file there is
 * replaced by a rename, which readers see as old or new, never absent.
 */
async function placeFile(blob: string, dest: string, made: Set<string>): Promise<void> {
  // Synchronous calls: three tiny metadata operations, done for every output of a no-op build.
  // Link first: in a fresh run directory the destination never exists, and a stat of an
  // absent file costs an exception per output.
  mkdirOnce(dirname(dest), made);
  try {
    linkSync(blob, dest);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && sameFile(blob, dest)) return;
    if (code !== 'EEXIST' && code !== 'EXDEV') throw error;
  }
  const tmp = `${dest}.placing-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    try {
      linkSync(blob, tmp);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      copyFileSync(blob, tmp);
    }
    renameSync(tmp, dest);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/** Whether `dest` is `blob` itself (one inode: a hard link placed earlier). */
function sameFile(blob: string, dest: string): boolean {
  try {
    const a = statSync(blob);
    const b = lstatSync(dest);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

/** The entry on an entry file's first line, validated. */
export function parseEntry(text: string): ActionEntry {
  const end = text.indexOf('\n');
  return actionEntrySchema.parse(JSON.parse(end < 0 ? text : text.slice(0, end)));
}
