import { dirname } from 'node:path';
import type { EnvironmentReason } from './failures.ts';

/** The errno codes that mean the machine, not the build, is in the way. */
const CODES = ['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM'] as const;

/**
 * A full disk, a read-only or unwritable directory, as one line naming the directory and the fix
 * (the CLI prints it and exits 1); null for any other error. `path` is the file the call touched.
 */
export function environmentFailure(error: unknown): { reason: EnvironmentReason; message: string } | null {
  const e = error as NodeJS.ErrnoException | null;
  const code = e?.code;
  if (!code || !(CODES as readonly string[]).includes(code)) return null;
  const dir = e.path ? dirname(e.path) : 'a directory of the cache';
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return { reason: 'no-space', message: `no space left for ${dir} (${code}); free space: ./build.ts gc removes old runs, ./build.ts cache gc unused cache entries` };
    case 'EROFS':
      return { reason: 'read-only', message: `${dir} is on a read-only file system (EROFS); point BUILD_CACHE_DIR at a writable directory, or remount it read-write` };
    default:
      return { reason: 'not-writable', message: `${dir} is not writable (${code}); fix its permissions or point BUILD_CACHE_DIR at a writable directory` };
  }
}

/** Dry runs and `explain` only save the digest memo, a speed-up: a machine that refuses the write does not stop them. */
export function ignoreEnvironmentFailure(error: unknown): void {
  if (!environmentFailure(error)) throw error;
}
