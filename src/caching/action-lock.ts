import { linkSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A cross-process lock on one action key, so two runs sharing a cache never execute the same
 * action at the same time: the second waits, then finds the first one's cache entry.
 *
 * A lock is a hard link `locks/<key>.lock` to this process's owner file `locks/owner-<pid>`
 * (which holds the pid): link(2) is atomic and fails if the lock is held, and it allocates no
 * inode. Creating an inode costs ~0.3 ms of kernel time on this machine's disk, against ~10 us
 * for a link, and every executed action takes a lock (bench/PROFILE.md). A lock whose owner died
 * (kill -9) is taken over.
 */
export async function acquireLock(dir: string, key: string, signal?: AbortSignal): Promise<() => void> {
  const owner = ownerFile(dir);
  const path = join(dir, `${key}.lock`);
  for (;;) {
    signal?.throwIfAborted();
    try {
      linkSync(owner, path);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder = 0;
    try {
      holder = Number(readFileSync(path, 'utf8').trim());
    } catch {
      continue; // released meanwhile
    }
    if (holder && !isAlive(holder) && takeOver(path, holder, dir)) continue;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Removes a dead holder's lock. Several waiters may see the same dead holder; without a guard,
 * one could remove the lock another had just taken over. The guard is a directory (mkdir is
 * atomic); under it the holder is read again. A guard left by a process that died inside these
 * few system calls is cleared after 10 s. Returns false when another process holds the guard.
 */
function takeOver(path: string, holder: number, dir: string): boolean {
  const guard = `${path}.takeover`;
  try {
    mkdirSync(guard);
  } catch {
    try {
      if (Date.now() - statSync(guard).mtimeMs > 10_000) rmSync(guard, { recursive: true, force: true });
    } catch {
      // gone meanwhile
    }
    return false;
  }
  try {
    let current = 0;
    try {
      current = Number(readFileSync(path, 'utf8').trim());
    } catch {
      return true; // released meanwhile
    }
    if (current === holder) {
      rmSync(path, { force: true });
      rmSync(join(dir, `owner-${holder}`), { force: true });
    }
    return true;
  } finally {
    rmSync(guard, { recursive: true, force: true });
  }
}

const owners = new Map<string, string>();

/** This process's owner file in `dir`, created on first use and removed when the process exits. */
function ownerFile(dir: string): string {
  let file = owners.get(dir);
  if (!file) {
    mkdirSync(dir, { recursive: true });
    file = join(dir, `owner-${process.pid}`);
    writeFileSync(file, String(process.pid));
    owners.set(dir, file);
    if (owners.size === 1) process.once('exit', () => owners.forEach((f) => rmSync(f, { force: true })));
  }
  return file;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
