import { statSync } from 'node:fs';
import { DataFile } from 'lowdb/node';
import type { Stats } from 'node:fs';
import { digestFile, type Digest } from './hash.ts';

/**
 * Remembers file digests by path, keyed by size, mtime, ctime and inode, so a no-op run costs a
 * stat per file instead of a read. ctime cannot be set by tools (utimes bumps it), so a file
 * rewritten in place with a forged mtime is still re-read. The memo is only an optimisation:
 * a missing or unreadable memo file means re-hashing, never a wrong answer.
 */
type Entry = [size: number, mtimeMs: number, ctimeMs: number, ino: number, digest: string];

export class DigestMemo {
  private entries: Record<string, Entry> = {};
  private dirty = false;
  /** How many files were actually read (for `--json` summaries and the closing figures). */
  filesRead = 0;
  bytesRead = 0;
  /**
   * lowdb's adapter writes through a temporary file and a rename, so a crash never tears it.
   * Compact JSON: the memo holds an entry per source and blob (~1,500 for the example), and a
   * build that links or writes anything saves it again.
   */
  private readonly adapter: DataFile<unknown>;
  /** Whether large files may be hashed in worker threads (BUILD_HASH_WORKERS=0 says no). */
  private readonly workers: boolean;

  constructor(file: string, o: { workers?: boolean } = {}) {
    this.workers = o.workers ?? true;
    this.adapter = new DataFile<unknown>(file, { parse: JSON.parse, stringify: (data) => JSON.stringify(data) });
  }

  async load(): Promise<void> {
    try {
      const parsed = await this.adapter.read();
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        for (const [path, value] of Object.entries(parsed as Record<string, unknown>)) {
          if (isEntry(value)) this.entries[path] = value;
        }
      }
    } catch {
      this.entries = {};
    }
  }

  /**
   * Digest of `path`, read only when its stat differs from the remembered one. The stat is
   * synchronous: a no-op build makes ~1,000 of them, and a synchronous stat (~5 us) costs a tenth
   * of a thread-pool round trip.
   */
  async digest(path: string, known?: Stats): Promise<{ digest: Digest; size: number }> {
    const st = known ?? statSync(path);
    const remembered = this.known(path, st);
    if (remembered) return { digest: remembered, size: st.size };
    const result = await digestFile(path, { size: st.size, workers: this.workers });
    this.filesRead += 1;
    this.bytesRead += result.size;
    const after = statSync(path);
    // Remember only if the file did not change while it was read.
    if (after.mtimeMs === st.mtimeMs && after.size === result.size) {
      this.remember(path, after, result.digest);
    }
    return result;
  }

  /** The remembered digest if `st` still matches, without a promise (a no-op asks ~500 times). */
  known(path: string, st: Stats): Digest | null {
    const entry = this.entries[path];
    return entry && entry[0] === st.size && entry[1] === st.mtimeMs && entry[2] === st.ctimeMs && entry[3] === st.ino ? (entry[4] as Digest) : null;
  }

  /** Tell the memo a file was just written with a known digest (outputs we hashed while storing). */
  remember(path: string, st: Stats, digest: Digest): void {
    this.entries[path] = [st.size, st.mtimeMs, st.ctimeMs, st.ino, digest];
    this.dirty = true;
  }

  forget(path: string): void {
    if (path in this.entries) {
      delete this.entries[path];
      this.dirty = true;
    }
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await this.adapter.write(this.entries);
    this.dirty = false;
  }
}

function isEntry(value: unknown): value is Entry {
  return (
    Array.isArray(value) &&
    value.length === 5 &&
    value.slice(0, 4).every((n) => typeof n === 'number') &&
    typeof value[4] === 'string' &&
    /^[0-9a-f]{32}$/.test(value[4])
  );
}
