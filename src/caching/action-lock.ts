import { appendFileSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { anyGroupAlive, isAlive, selfIdentity } from '../util/process-identity.ts';

export { isAlive };

/**
 * A cross-process lock on one action key, so two runs sharing a cache never execute the same
 * action at the same time: the second waits, then finds the first one's cache entry.
 *
 * A lock is a hard link `locks/<key>.lock` to this process's owner file `locks/owner-<pid>`:
 * link(2) is atomic and fails if the lock is held, and it allocates no inode. Creating an inode
 * costs ~0.3 ms of kernel time on this machine's disk, against ~10 us for a link, and every
 * executed action takes a lock (bench/PROFILE.md).
 *
 * The owner file says who holds the lock and what that holder started:
 *   `<pid> <start time>`   (util/process-identity.ts: a reused PID cannot pass for the holder)
 *   `group <pgid>`         one line per process group of actions it started (the shell launchers,
 *                          appended through `recordProcessGroup`; every lock sees it, being a link)
 * A lock is taken over only when its holder is gone and so is every process group it started: the
 * actions of a killed build die with it (their launcher's watchdog), but not in the same instant,
 * and a rerun must not run the same action beside a survivor. Locks left by dead holders are
 * swept when a process first takes a lock in a directory.
 */

/** What a waiting acquire reports, once, when it starts waiting for a live holder. */
export interface LockWait {
  key: string;
  /** The holder's PID, and whether the holder itself is alive (else: its actions still are). */
  pid: number;
  holderAlive: boolean;
  /** When this acquire started waiting. */
  since: Date;
}

/** How to wait for a held lock. */
export interface LockOptions {
  signal?: AbortSignal;
  /** Called once when the lock turns out to be held by someone alive. */
  onWait?: (wait: LockWait) => void;
  /** Give up after this long (default 24 h: a fit may legitimately run for hours). */
  maxWaitMs?: number;
}

/** Waiting for a lock took longer than its bound. */
export class LockWaitTimeout extends Error {
  readonly reason = 'lock-wait-timeout';
}

export async function acquireLock(dir: string, key: string, options: LockOptions = {}): Promise<() => void> {
  const owner = ownerFile(dir);
  const path = join(dir, `${key}.lock`);
  const since = new Date();
  const deadline = since.getTime() + (options.maxWaitMs ?? 24 * 3600_000);
  let reported = false;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      linkSync(owner, path);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readHolder(path);
    if (!holder) continue; // released meanwhile
    const holderAlive = holder.pid > 0 && isAlive(holder.pid, holder.startTime);
    if (holder.pid > 0 && !holderAlive && !anyGroupAlive(holder.groups) && takeOver(path, holder.identity, dir)) continue;
    if (!reported) {
      reported = true;
      options.onWait?.({ key, pid: holder.pid, holderAlive, since });
    }
    if (Date.now() > deadline) {
      throw new LockWaitTimeout(
        `gave up waiting for the lock ${path}, held since before ${since.toISOString()} by pid ${holder.pid}${holderAlive ? '' : ' (exited; its actions still run)'}; if no build is running that action, remove the lock file and rerun`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Holder {
  /** The first line, exactly: what takeOver compares. */
  identity: string;
  pid: number;
  startTime: string;
  groups: number[];
}

/** The holder a lock names, or null when the lock is gone. */
function readHolder(path: string): Holder | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const [identity = '', ...rest] = text.split('\n');
  const [pid = '', startTime = ''] = identity.trim().split(' ');
  const groups = rest.filter((l) => l.startsWith('group ')).map((l) => Number(l.slice(6))).filter((g) => g > 0);
  return { identity: identity.trim(), pid: Number(pid) || 0, startTime, groups };
}

/**
 * Removes a dead holder's lock. Several waiters may see the same dead holder; without a guard,
 * one could remove the lock another had just taken over. The guard is a directory (mkdir is
 * atomic); under it the holder is read again. A guard left by a process that died inside these
 * few system calls is cleared after 10 s. Returns false when another process holds the guard.
 */
function takeOver(path: string, identity: string, dir: string): boolean {
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
    const current = readHolder(path);
    if (!current) return true; // released meanwhile
    if (current.identity === identity) {
      rmSync(path, { force: true });
      rmSync(join(dir, `owner-${current.pid}`), { force: true });
    }
    return true;
  } finally {
    rmSync(guard, { recursive: true, force: true });
  }
}

const owners = new Map<string, string>();
const groups: number[] = [];

/**
 * Records a process group this process started (a shell launcher's), so that its locks are not
 * taken over while that group still runs, even after this process died.
 */
export function recordProcessGroup(pgid: number): void {
  groups.push(pgid);
  for (const file of owners.values()) {
    try {
      appendFileSync(file, `group ${pgid}\n`);
    } catch {
      // the locks directory was removed: nothing of ours is locked there
    }
  }
}

/**
 * This process's owner file in `dir`, created on first use (after sweeping the locks dead holders
 * left) and removed when the process exits.
 */
function ownerFile(dir: string): string {
  let file = owners.get(dir);
  if (!file) {
    mkdirSync(dir, { recursive: true });
    sweep(dir);
    file = join(dir, `owner-${process.pid}`);
    // A dead process that had this PID may have left its owner file, still linked by its locks:
    // unlink it rather than rewrite it, so those locks keep naming their real holder.
    rmSync(file, { force: true });
    writeFileSync(file, `${selfIdentity()}\n${groups.map((g) => `group ${g}\n`).join('')}`);
    owners.set(dir, file);
    if (owners.size === 1) process.once('exit', () => owners.forEach((f) => rmSync(f, { force: true })));
  }
  return file;
}

/** Removes the locks, and owner files, of holders that are gone with everything they started. */
function sweep(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const gone = new Map<string, boolean>();
  const isGone = (holder: Holder): boolean => {
    let answer = gone.get(holder.identity);
    if (answer === undefined) {
      answer = holder.pid > 0 && holder.pid !== process.pid && !isAlive(holder.pid, holder.startTime) && !anyGroupAlive(holder.groups);
      gone.set(holder.identity, answer);
    }
    return answer;
  };
  for (const name of names) {
    if (!name.endsWith('.lock')) continue;
    const path = join(dir, name);
    const holder = readHolder(path);
    if (holder && isGone(holder)) takeOver(path, holder.identity, dir);
  }
  for (const name of names) {
    if (!name.startsWith('owner-')) continue;
    const holder = readHolder(join(dir, name));
    if (holder && isGone(holder)) rmSync(join(dir, name), { force: true });
  }
}
