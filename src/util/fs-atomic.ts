/** Small filesystem helpers: atomic writes (temporary name, then rename) and existence checks. */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Whether a path exists (any kind of file), for "was it written / is it cached" checks. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes a file so that readers see either the old content or the new, never a torn write:
 * write to a unique temporary name in the same directory, then rename over the target.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    // A failed write(2) (ENOSPC) carries no path; the message naming the directory needs one.
    throw Object.assign(error as Error, { path: (error as NodeJS.ErrnoException).path ?? tmp });
  }
}

/**
 * `mkdir -p`, once per directory per `made` set: ~500 files of a build land in a handful of
 * directories, and each mkdirSync is a system call even when the directory exists.
 */
export function mkdirOnce(dir: string, made: Set<string>): void {
  if (made.has(dir)) return;
  mkdirSync(dir, { recursive: true });
  made.add(dir);
}

/**
 * writeFileAtomic for the small JSON files written once per action (cache entries): four
 * synchronous metadata calls cost a few microseconds each, where each thread-pool round trip
 * costs ~0.3 ms of latency between one action and the next. The directory must exist.
 */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw Object.assign(error as Error, { path: (error as NodeJS.ErrnoException).path ?? tmp });
  }
}
