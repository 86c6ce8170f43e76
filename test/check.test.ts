import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, cli, cloneRealFixture, git, realFixtureBundle, tempDir } from './helpers.ts';

/**
 * `./build.ts check` and the preflight on the real repository (a clone of the fixture bundle):
 * the plan tasks/ declares today, against the pinned tree, and mutations of the tree that each
 * must be caught with a line naming them. Where the fixture is absent these tests say so and skip.
 */
const bundle = realFixtureBundle();
if (!bundle) console.warn('check.test.ts: shared/fixtures/policyengine-us-data-e01a0384.bundle is not beside the project (CI has it at ../shared); the real-repository tests are skipped');

describe.skipIf(!bundle)('check on the real repository (fixture e01a0384)', () => {
  let cache: string;
  let pristine: { code: number | null; stdout: string };
  const check = (repo: string, ...args: string[]) => cli(['check', `REPO=${repo}`, ...args], { cache });
  /** A clone with one mutation committed, checked. */
  const mutated = async (mutate: (repo: string) => void, message: string) => {
    const repo = cloneRealFixture(bundle!);
    mutate(repo);
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', message);
    const r = await check(repo);
    cleanup(join(repo, '..'));
    return r;
  };

  beforeAll(async () => {
    cache = join(tempDir('check-cache'), 'cache');
    const repo = cloneRealFixture(bundle!);
    pristine = await check(repo);
    cleanup(join(repo, '..'));
  });
  afterAll(() => cleanup(join(cache, '..')));

  it('conformance: check passes on the fixture, statically and without running anything', () => {
    // Lists today's problems in the failure message: tasks/ is converging on the real contract.
    expect(pristine.stdout.split('\n').filter((l) => l && !l.startsWith('note:') && !l.startsWith('check:')), pristine.stdout).toEqual([]);
    expect(pristine.code).toBe(0);
    expect(pristine.stdout).toMatch(/^check: the plan matches .* at [0-9a-f]{12} \(\d+ targets, /m);
  });

  it('a flag removed from a real argparse (--log-freq of unified_calibration) is a line naming the flag', async () => {
    const line = /^fit-\w+: python -m policyengine_us_data\.calibration\.unified_calibration passes --log-freq, which policyengine_us_data\.calibration\.unified_calibration's argparse does not define \(it exits 2\)/m;
    expect(pristine.stdout).not.toMatch(line);
    const r = await mutated((repo) => {
      const file = join(repo, 'policyengine_us_data/calibration/unified_calibration.py');
      const text = readFileSync(file, 'utf8');
      const without = text.replace(/\n {4}parser\.add_argument\(\n {8}"--log-freq",[\s\S]*?\n {4}\)\n/, '\n');
      expect(without).not.toBe(text);
      writeFileSync(file, without);
    }, 'drop --log-freq');
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(line);
  });

  it('a module moved (git mv) is a line naming the module and where it went', async () => {
    const line = /^h5:states\/AL: python -m modal_app\.worker_script: no such module at [0-9a-f]{12}; it is now modal_app\.workers\.worker_script\?/m;
    expect(pristine.stdout).not.toMatch(line);
    const r = await mutated((repo) => {
      mkdirSync(join(repo, 'modal_app', 'workers'));
      git(repo, 'mv', 'modal_app/worker_script.py', 'modal_app/workers/worker_script.py');
    }, 'move the worker');
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(line);
  });

  it('the target config renamed is a line naming its path', async () => {
    const line = /passes policyengine_us_data\/calibration\/target_config\.yaml, which does not exist in the tree at [0-9a-f]{12}; did you mean policyengine_us_data\/calibration\/target_config_v2\.yaml/;
    expect(pristine.stdout).not.toMatch(line);
    const r = await mutated((repo) => {
      git(repo, 'mv', 'policyengine_us_data/calibration/target_config.yaml', 'policyengine_us_data/calibration/target_config_v2.yaml');
    }, 'rename the target config');
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(line);
  });

  it('a Make target deleted is a line naming it', async () => {
    const line = /the Makefile has no target database/;
    expect(pristine.stdout).not.toMatch(line);
    const r = await mutated((repo) => {
      const file = join(repo, 'Makefile');
      const text = readFileSync(file, 'utf8');
      const without = text.replace(/\ndatabase:\n(\t.*\n)+/, '\n');
      expect(without).not.toBe(text);
      writeFileSync(file, without);
    }, 'delete make database');
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(line);
  });

  it('the preflight stops a build of a mutated checkout before anything runs, with the same line', async () => {
    const repo = cloneRealFixture(bundle!);
    git(repo, 'mv', 'policyengine_us_data/calibration/target_config.yaml', 'policyengine_us_data/calibration/target_config_v2.yaml');
    git(repo, 'commit', '-q', '-m', 'rename the target config');
    const r = await cli(['pipeline', '-n', `REPO=${repo}`, 'BUILD_DB=1'], { cache });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: the plan does not match .* \(\d+ problem\(s\); nothing was run\):\n/);
    expect(r.stderr).toMatch(/\n {2}[\w:/-]+: .*passes policyengine_us_data\/calibration\/target_config\.yaml, which does not exist/);
    expect(r.stderr).not.toContain('internal error');
    const runs = await cli(['status'], { cache });
    expect(runs.stdout).toMatch(/no runs yet/);
    cleanup(join(repo, '..'));
  });
});
