import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envDirOf } from '../src/placeholders.ts';
import { cleanup, cli, exampleRepo, scratchDirs, SHARED_ENVS, SMALL } from './helpers.ts';

/**
 * `cache ls` (a header, a target glob) and `cache du` (every area: blobs, actions, runs, trees,
 * envs, checkpoints, the local store, the rest), on the cache a real pipeline of the example
 * leaves (issue 12, item 13). The sizes `du` reports are checked against a walk of the real files
 * made here: regular files by lstat, each hard-linked inode counted once, in the first area (in
 * du's order) that holds it. The Python environment is a hard-linked copy of the shared test
 * environment in a directory of this test's own, so no other test changes it meanwhile.
 */
describe('cache ls and cache du', () => {
  const scratch = scratchDirs('cache-inspection');
  let repo: string;
  let cache: string;
  let envs: string;
  const run = (...args: string[]) => cli(args, { cache, env: { BUILD_ENVS_DIR: envs } });
  beforeAll(async () => {
    repo = exampleRepo();
    const root = scratch();
    cache = join(root, 'cache');
    envs = join(root, 'envs');
    // The environment the example needs, built (or found) in the shared directory, then linked here.
    const env = await cli(['python-env', `REPO=${repo}`, '--json'], { cache });
    if (env.code !== 0) throw new Error(env.stderr);
    const runId = env.events.find((e) => e.event === 'summary')!.runId as string;
    const key = (JSON.parse(readFileSync(join(cache, 'runs', runId, 'meta.json'), 'utf8')) as { targets: Record<string, { key: string }> }).targets['python-env']!.key;
    execFileSync('mkdir', ['-p', envs]);
    execFileSync('cp', ['-al', envDirOf(SHARED_ENVS, key).dir, envDirOf(envs, key).dir]);
    const pipeline = await run('pipeline', `REPO=${repo}`, ...SMALL);
    if (pipeline.code !== 0) throw new Error(`${pipeline.stdout}\n${pipeline.stderr}`);
  });
  afterAll(() => cleanup(repo));

  /** Bytes, linked bytes and regular files of each area, walked in du's order (inodes once). */
  function expected(areas: Array<{ area: string; path: string }>) {
    const seen = new Set<string>();
    const roots = new Set(areas.map((a) => a.path));
    return areas.map(({ area, path }) => {
      const sum = { area, bytes: 0, linkedBytes: 0, files: 0 };
      const walk = (dir: string) => {
        for (const name of readdirSync(dir)) {
          const file = join(dir, name);
          const st = lstatSync(file);
          if (st.isDirectory() && !roots.has(file)) walk(file);
          if (!st.isFile()) continue;
          sum.files++;
          const inode = `${st.dev}:${st.ino}`;
          if (st.nlink > 1 && seen.has(inode)) sum.linkedBytes += st.size;
          else sum.bytes += st.size;
          seen.add(inode);
        }
      };
      walk(path);
      return sum;
    });
  }

  it('cache du: one line per area with its bytes and counts, and a total; --json: one event per area', async () => {
    const json = await run('cache', 'du', '--json');
    expect(json.code, json.stderr).toBe(0);
    const areas = json.events.filter((e) => e.event === 'cache-area');
    expect(areas.map((a) => a.area)).toEqual(['blobs', 'actions', 'runs', 'trees', 'envs', 'checkpoints', 'store', 'other']);
    const paths = { blobs: 'cas', actions: 'actions', runs: 'runs', trees: 'trees', checkpoints: 'checkpoints', store: 'store' } as Record<string, string>;
    const where = (area: string) => (area === 'envs' ? envs : area === 'other' ? cache : join(cache, paths[area]!));
    for (const a of areas) expect(a.path).toBe(where(a.area as string));
    const want = expected(areas.map((a) => ({ area: a.area as string, path: a.path as string })));
    expect(areas.map(({ area, bytes, linkedBytes, files }) => ({ area, bytes, linkedBytes, files }))).toEqual(want);
    // Every area the pipeline writes holds something; run outputs are links to blobs.
    for (const a of areas.filter((x) => x.area !== 'other')) expect(a.bytes, String(a.area)).toBeGreaterThan(0);
    expect(areas.find((a) => a.area === 'runs')!.linkedBytes).toBeGreaterThan(0);

    const count = (area: string) => areas.find((a) => a.area === area)!.count;
    const dirs = (dir: string) => readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).length;
    expect(count('runs')).toBe(readdirSync(join(cache, 'runs')).length);
    expect(count('runs')).toBe(2);
    expect(count('trees')).toBe(1);
    expect(count('envs')).toBe(1);
    expect(count('checkpoints')).toBe(dirs(join(cache, 'checkpoints')));
    expect(count('blobs')).toBe(want.find((a) => a.area === 'blobs')!.files);
    const entries = readdirSync(join(cache, 'actions'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.json')).length;
    expect(count('actions')).toBe(entries);

    const total = json.events.find((e) => e.event === 'cache-total')!;
    expect(total.bytes).toBe(want.reduce((s, a) => s + a.bytes, 0));
    expect(total.files).toBe(want.reduce((s, a) => s + a.files, 0));

    const text = await run('cache', 'du');
    const lines = text.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual([...areas.map((a) => a.area), 'total']);
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    for (const a of want) expect(lines.find((l) => l.startsWith(`${a.area} `))).toContain(mb(a.bytes));
    expect(lines.find((l) => l.startsWith('runs '))).toMatch(/ 2 runs /);
    expect(lines.at(-1)).toContain(mb(total.bytes as number));
  });

  it('cache ls: a header, then the entries; a target glob lists only matching targets (--json too, same shape)', async () => {
    const all = await run('cache', 'ls');
    expect(all.code, all.stderr).toBe(0);
    const [header, ...rows] = all.stdout.trim().split('\n');
    expect(header).toMatch(/^target\s+key\s+created\s+outputs\s+size\s+executor$/);
    expect(rows.some((r) => r.startsWith('database '))).toBe(true);

    const everything = (await run('cache', 'ls', '--json')).events;
    const states = await run('cache', 'ls', 'h5:states/*');
    const [stateHeader, ...stateRows] = states.stdout.trim().split('\n');
    expect(stateHeader).toBe(header);
    const wanted = everything.filter((e) => String(e.target).startsWith('h5:states/'));
    expect(wanted.length).toBe(51);
    expect(stateRows.map((r) => r.split(/\s+/)[0]).sort()).toEqual(wanted.map((e) => e.target).sort());

    const json = await run('cache', 'ls', 'h5:states/C?', '--json');
    expect(json.stdout.split('\n').filter(Boolean).every((l) => l.startsWith('{'))).toBe(true);
    const [schema, ...entries] = json.events;
    expect(schema).toMatchObject({ event: 'schema', command: 'cache' });
    expect(entries).toEqual(everything.filter((e) => /^h5:states\/C.$/.test(String(e.target))));
    expect(entries.map((e) => e.target)).toEqual(['h5:states/CA', 'h5:states/CO', 'h5:states/CT']);

    const none = await run('cache', 'ls', 'no-such-*');
    expect(none.code).toBe(0);
    expect(none.stdout).toBe(`no cache entries for targets matching 'no-such-*' in ${join(cache, 'actions')}\n`);
    const two = await run('cache', 'ls', 'a', 'b');
    expect(two.code).toBe(2);
    expect(two.stderr).toMatch(/cache ls takes one target glob, not 'b'/);
  });
});
