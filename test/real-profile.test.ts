import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, cli, git, tempDir } from './helpers.ts';

/**
 * The same tasks/ drive a real policyengine-us-data checkout (no example marker). This one is a
 * stub with the real layout but none of its code: every build of it is stopped by the preflight
 * (`check`), before anything runs. test/check.test.ts drives the real fixture.
 */
describe('REPO=<a real checkout>', () => {
  let repo: string;
  let cache: string;
  beforeAll(() => {
    repo = tempDir('real-checkout');
    mkdirSync(join(repo, 'policyengine_us_data', 'db'), { recursive: true });
    writeFileSync(join(repo, 'pyproject.toml'), '[project]\nname = "policyengine-us-data"\nversion = "1.73.0"\n');
    writeFileSync(join(repo, 'uv.lock'), '');
    writeFileSync(join(repo, 'Makefile'), 'database:\n\ttrue\n');
    writeFileSync(join(repo, 'policyengine_us_data', '__init__.py'), '');
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, 'add', '-A');
    git(repo, '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '-m', 'real layout');
    cache = join(tempDir('real-cache'), 'cache');
  });
  afterAll(() => cleanup(repo, join(cache, '..')));

  it('builds the database by default, as the real pipeline does; BUILD_DB=0 says clearly when there is no registered one', async () => {
    const r = await cli(['pipeline', '-n', `REPO=${repo}`, 'BUILD_DB=0'], { cache });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/BUILD_DB=0 takes calibration\/policy_data.db from the current registered version, but .* has none; build the database with BUILD_DB=1/);
  });

  it('-n BUILD_DB=1 is stopped by the preflight, one line per problem, and runs nothing', async () => {
    const r = await cli(['pipeline', '-n', `REPO=${repo}`, 'GPU=A100-80GB', 'BUILD_DB=1'], { cache });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^error: the plan does not match .* at [0-9a-f]{12} \(\d+ problem\(s\); nothing was run\):\n/);
    expect(r.stderr).toMatch(/\n {2}[\w:/-]+: python -m policyengine_us_data\.datasets\.acs\.acs: no such module at [0-9a-f]{12}; /);
    expect(r.stderr).not.toContain('internal error');
    const runs = await cli(['status'], { cache });
    expect(runs.stdout).toMatch(/no runs yet/);
  });
});
