import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, cli, exampleRepo, tempDir } from './helpers.ts';

/**
 * Bad input fails before any work: one line naming the problem and the fix, exit 2, nothing
 * written (the cache directory is not even created).
 */
describe('bad input', () => {
  let repo: string;
  let cache: string;
  beforeAll(() => {
    repo = exampleRepo();
    cache = join(tempDir('errors'), 'cache');
  });
  afterAll(() => cleanup(repo, join(cache, '..')));

  const cases: [string, string[], RegExp][] = [
    ['unknown target', ['no-such-target'], /unknown target 'no-such-target'/],
    ['unknown variable', ['pipeline', 'EPOCS=3'], /unknown variable EPOCS; valid variables: .*EPOCHS/],
    ['malformed assignment', ['pipeline', 'EPOCHS:3=x'], /malformed variable 'EPOCHS:3=x'; write it as NAME=value/],
    ['unknown GPU type', ['pipeline', 'GPU=K80'], /GPU=K80 is invalid .*use one of T4, A10/],
    ['non-numeric epochs', ['pipeline', 'EPOCHS=ten'], /EPOCHS=ten is invalid \(must be a positive whole number\)/],
    ['run id with ..', ['status', 'RUN_ID=../etc'], /path separator or '\.\.'/],
    ['run id with /', ['status', 'RUN_ID=a/b'], /path separator/],
    ['run id that does not exist', ['status', 'RUN_ID=1.0.0_abcdef12_20260101_000000'], /does not exist/],
    ['unknown flag', ['pipeline', '--frobnicate'], /unknown option --frobnicate/],
    ['bad -j', ['pipeline', '-j', 'zero'], /-j needs a positive number/],
  ];
  for (const [name, args, message] of cases) {
    it(`${name}: exit 2, one clear line, nothing written`, async () => {
      const r = await cli([...args, `REPO=${repo}`], { cache });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(existsSync(cache)).toBe(false);
    });
  }

  it('a ref that does not resolve', async () => {
    const r = await cli(['pipeline', `REPO=${repo}`, 'BRANCH=no-such-branch'], { cache });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/BRANCH=no-such-branch does not resolve to a commit/);
    expect(existsSync(cache)).toBe(false);
  });

  it('a REPO that is not a git repository', async () => {
    const notGit = tempDir('not-git');
    const r = await cli(['pipeline', `REPO=${notGit}`], { cache });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not a git repository; pass REPO=<path to a git checkout>/);
    expect(existsSync(cache)).toBe(false);
    cleanup(notGit);
  });

  it('uncommitted changes are refused unless ALLOW_DIRTY=1', async () => {
    writeFileSync(join(repo, 'pyproject.toml'), '[project]\nname = "policyengine-us-data"\nversion = "9.9.9"\n');
    const r = await cli(['pipeline', `REPO=${repo}`], { cache });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has uncommitted changes \(pyproject.toml\); commit them, or pass ALLOW_DIRTY=1/);
    expect(existsSync(cache)).toBe(false);
    const dry = await cli(['database', `REPO=${repo}`, 'ALLOW_DIRTY=1', '-n', '--json'], { cache });
    expect(dry.code).toBe(0);
  });

  it('a corrupted meta.json is reported, never trusted', async () => {
    const id = '1.0.0_abcdef12_20260101_000000';
    const dir = join(cache, 'runs', id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'meta.json'), '{"runId": "x", "status": "exploded"}');
    const one = await cli(['status', `RUN_ID=${id}`], { cache });
    expect(one.code).toBe(2);
    expect(one.stderr).toMatch(/meta.json is corrupt/);
    const all = await cli(['status'], { cache });
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(new RegExp(`${id}\\s+corrupt`));
    expect(readdirSync(dir)).toEqual(['meta.json']);
  });
});
