import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
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
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr, r.stdout).not.toMatch(/internal error/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`^error: ${mount}/cache\\S* is on a read-only file system \\(EROFS\\); point BUILD_CACHE_DIR at a writable directory`));
  });
});

/**
 * A full disk (a real tmpfs filled by a preallocated file, 200 kB left: room for a run's
 * meta.json, not for a copy of the pinned tree; then 16 kB): copying the tree into the run, or
 * extracting the tree itself, is one line naming the directory and the fix, never a `cp:` or
 * `tar:` line per file nor an internal error; the run is recorded as failed with that reason and
 * the partial copy is gone (issue 12, item 6).
 */
describe.skipIf(!canMount)('a full disk', () => {
  let repo: string;
  let mount: string;
  const scratch = scratchDirs('full-disk');
  const cache = () => join(mount, 'cache');
  beforeAll(async () => {
    repo = exampleRepo();
    mount = join(scratch(), 'mnt');
    mkdirSync(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mount]);
    const warm = await cli(['acs', `REPO=${repo}`, ...SMALL, '-n'], { cache: cache() });
    if (warm.code !== 0) throw new Error(warm.stderr);
    const { bavail, bsize } = statfsSync(mount);
    execFileSync('fallocate', ['-l', String(bavail * bsize - 200 * 1024), join(mount, 'filler')]);
  });
  afterAll(() => {
    if (mount) execFileSync('umount', [mount]);
    cleanup(repo);
  });
  const run = (...args: string[]) => cli([...args, `REPO=${repo}`, ...SMALL], { cache: cache() });
  const lines = (r: { stdout: string; stderr: string }) => `${r.stdout}${r.stderr}`.split('\n');

  it('copying the pinned tree into the run: one line naming the run tree, the run failed with it, the partial copy removed', async () => {
    const r = await run('acs', '--json');
    expect(r.code).toBe(1);
    const all = lines(r);
    expect(all.filter((l) => /cp: |internal error/.test(l))).toEqual([]);
    const summary = r.events.find((e) => e.event === 'summary')!;
    const runId = summary.runId as string;
    const tree = join(cache(), 'runs', runId, 'tree');
    const target = r.events.find((e) => e.event === 'target' && e.target === 'acs')!;
    expect(target.outcome).toBe('failed');
    expect(target.error).toMatch(new RegExp(`^no space left for ${tree} \\(ENOSPC\\); free space: \\./build\\.ts gc removes old runs, \\./build\\.ts cache gc unused cache entries$`));
    const meta = JSON.parse(readFileSync(join(cache(), 'runs', runId, 'meta.json'), 'utf8'));
    expect(meta.status).toBe('failed');
    expect(meta.targets.acs.error).toMatch(/^no space left for .*\/tree \(ENOSPC\)/);
    expect(existsSync(tree)).toBe(false);
  });

  it('extracting the pinned tree: one line naming trees/, exit 1, no run left behind', async () => {
    rmSync(join(cache(), 'trees'), { recursive: true, force: true });
    // 16 kB left: not enough for the example's tree.
    const { bavail, bsize } = statfsSync(mount);
    execFileSync('fallocate', ['-l', String(bavail * bsize - 16 * 1024), join(mount, 'filler-2')]);
    const listRuns = () => (existsSync(join(cache(), 'runs')) ? readdirSync(join(cache(), 'runs')) : []);
    const runs = listRuns();
    const r = await run('acs');
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr, r.stdout).toBe(`error: no space left for ${join(cache(), 'trees')} (ENOSPC); free space: ./build.ts gc removes old runs, ./build.ts cache gc unused cache entries\n`);
    expect(lines(r).filter((l) => /tar: |internal error/.test(l))).toEqual([]);
    expect(listRuns()).toEqual(runs);
  });
});
