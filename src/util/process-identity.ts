import { readdirSync, readFileSync } from 'node:fs';

/**
 * Whether a process that some file names (a lock, a lease, a run's meta.json) still exists, and
 * is still the same process.
 *
 * Why more than `kill(pid, 0)`: PIDs wrap (at 32,768 on the machine the fault battery ran on), so
 * a PID read from a lock left by a killed build may belong to an unrelated live process by the
 * time anyone looks; and a process that has exited but not been reaped yet (a zombie: its parent
 * is gone or busy) still answers `kill(pid, 0)` for seconds. A process is therefore identified by
 * its PID plus its start time (field 22 of /proc/<pid>/stat, in clock ticks since boot, which a
 * reused PID cannot share), and a zombie (state `Z`) counts as dead. Where /proc is missing, the
 * start time is unknown ('') and only the PID is checked.
 */

/** The PID's /proc stat fields from field 3 (state) on, or null when it does not exist / is unreadable. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is parenthesised and may hold spaces or parentheses: split after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** This PID's start time (clock ticks since boot), or '' when it cannot be read (no such process, no /proc). */
export function processStartTime(pid: number): string {
  return statFields(pid)?.[19] ?? '';
}

/** This process's identity, as it is written into locks: `<pid> <start time>`. */
export function selfIdentity(): string {
  return `${process.pid} ${processStartTime(process.pid)}`.trim();
}

/**
 * Whether `pid` is a live process (not a zombie) and, when `startTime` is given (non-empty), the
 * same one that had that start time.
 */
export function isAlive(pid: number, startTime = ''): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const fields = statFields(pid);
  if (!fields) return true; // no /proc: the signal probe is all there is
  if (fields[0] === 'Z' || fields[0] === 'X') return false;
  return !startTime || fields[19] === startTime;
}

/**
 * Whether any live process (zombies aside) of any of these process groups still exists. Reads
 * /proc once per call (a few hundred small files), which is why only a lock takeover asks.
 */
export function anyGroupAlive(pgids: readonly number[]): boolean {
  if (pgids.length === 0) return false;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return pgids.some((pgid) => {
      try {
        process.kill(-pgid, 0);
        return true;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'EPERM';
      }
    });
  }
  const wanted = new Set(pgids.map(String));
  return pids.some((pid) => {
    const fields = statFields(Number(pid));
    return fields !== null && wanted.has(fields[2]!) && fields[0] !== 'Z' && fields[0] !== 'X';
  });
}
