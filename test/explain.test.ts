import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeChanges } from '../src/stale-reason.ts';
import { cleanup, cli, exampleRepo, outcomes, scratchDirs, SMALL } from './helpers.ts';

/**
 * `explain` answers the question `-n` answers, from the same dry run (issue 12, item 2): against
 * the entry the build would use (or on a miss the closest one), naming only real causes, in the
 * words that differ.
 */
describe('explain', () => {
  let repo: string;
  let cache: string;
  const scratch = scratchDirs('explain');
  beforeAll(async () => {
    repo = exampleRepo();
    cache = join(scratch(), 'cache');
    for (const seed of ['42', '31']) {
      const r = await cli(['acs', `REPO=${repo}`, ...SMALL, `SEED=${seed}`, '--json'], { cache });
      if (r.code !== 0) throw new Error(r.stdout + r.stderr);
    }
  });
  afterAll(() => cleanup(repo));
  const run = (...args: string[]) => cli([...args, `REPO=${repo}`, ...SMALL], { cache });

  it('a target -n calls cached is cached in explain too, after a build with other variables', async () => {
    const dry = await run('acs', '-n', '--json', 'SEED=42');
    expect(outcomes(dry).get('acs')).toBe('cached');
    const e = await run('explain', 'acs', 'SEED=42');
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/^acs: cached: nothing changed; the build would use entry [0-9a-f]{12}/);
    expect(e.stdout).not.toMatch(/SEED/);
  });

  it('the Python environment, cached, is cached (not "never built")', async () => {
    const e = await run('explain', 'python-env');
    expect(e.stdout).toMatch(/^python-env: cached/);
  });

  it('a miss names the variable that changed against the closest entry, not the command it repeats', async () => {
    const e = await run('explain', 'acs', 'SEED=7');
    expect(e.stdout).toMatch(/acs: would run:\n  var SEED: 31 -> 7\n  \(compared with the closest cache entry/);
    expect(e.stdout).not.toMatch(/command/);
    const dry = await run('acs', '-n', '--json', 'SEED=7');
    expect(dry.events).toContainEqual(expect.objectContaining({ event: 'plan', target: 'acs', causes: [{ kind: 'var', name: 'SEED', before: '31', after: '7' }] }));
  });

  it('a fan-out whose inputs would run says why, not only a header', async () => {
    const e = await run('explain', 'areas');
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/^areas: would run: fan-out; its items are not known yet/);
    // The database waits on the ETL chain (tasks mirror the Makefile): its first step is the cause shown.
    expect(e.stdout).toMatch(/\ndb-create-tables: would run: never built/);
  });

  it('many changed outputs of one upstream are one line; a command shows only the words that differ', () => {
    const upstream = Array.from({ length: 489 }, (_, i) => ({ kind: 'upstream' as const, name: `areas h5s/${i}.h5`, detail: 'content changed (aaaaaaaa -> bbbbbbbb)' }));
    expect(describeChanges(upstream)).toEqual(['upstream areas: 489 files changed (h5s/0.h5, h5s/1.h5, h5s/2.h5, ...)']);
    const command = { kind: 'command' as const, name: 'command', detail: 'python -m fit --epochs 30 --lr 0.1 --out x  ->  python -m fit --epochs 30 --lr 0.2 --out x' };
    expect(describeChanges([command])).toEqual(['command: … --lr 0.1 …  ->  … --lr 0.2 …']);
  });
});
