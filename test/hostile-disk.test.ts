import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, cli, exampleRepo, scratchDirs, SMALL } from './helpers.ts';

/**
 * A read-only cache directory (a real read-only tmpfs mount; root in the container may mount):
 * `-n` and `explain` need no write, a build says in one line which directory and what to do, and
 * exits 1, never "internal error" (issue 12, item 6). Skipped where mounting is not allowed.
 */
const canMount = (() => {
  try {
    const probe = join(scratchDirs('mount-probe')(), 'm');
    mkdirSync(probe);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!canMount)('a read-only cache', () => {
  let repo: string;
  let mount: string;
  const scratch = scratchDirs('hostile-disk');
  beforeAll(async () => {
    repo = exampleRepo();
    mount = join(scratch(), 'mnt');
    mkdirSync(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mount]);
    const warm = await cli(['acs', `REPO=${repo}`, ...SMALL, '-n'], { cache: join(mount, 'cache') });
    if (warm.code !== 0) throw new Error(warm.stderr);
    execFileSync('mount', ['-o', 'remount,ro', mount]);
  });
  afterAll(() => {
    if (mount) execFileSync('umount', [mount]);
    cleanup(repo);
  });
  const run = (...args: string[]) => cli([...args, `REPO=${repo}`, ...SMALL], { cache: join(mount, 'cache') });

  it('-n and explain work without writing', async () => {
    const dry = await run('acs', '-n');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/would run acs/);
    const e = await run('explain', 'acs');
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/^acs: would run/);
  });

  it('a build is one line naming the directory and the fix, exit 1', async () => {
    const r = await run('acs');
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`^error: ${mount}/cache\\S* is on a read-only file system \\(EROFS\\); point BUILD_CACHE_DIR at a writable directory`));
  });
});
