import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, cli, git, tempDir } from './helpers.ts';

/**
 * The same tasks/ drive a real policyengine-us-data checkout (no example marker): a dry run prints
 * the real entry points (`make database`, `python -m policyengine_us_data...`, the real fit flags).
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

  it('takes the registered database by default, and says so clearly when there is none', async () => {
    const r = await cli(['pipeline', '-n', `REPO=${repo}`], { cache });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/BUILD_DB=0 takes calibration\/policy_data.db from the current registered version, but .* has none; build the database with BUILD_DB=1/);
  });

  it('-n BUILD_DB=1 shows the real commands and runs nothing', async () => {
    const r = await cli(['pipeline', '-n', `REPO=${repo}`, 'GPU=A100-80GB', 'BUILD_DB=1'], { cache });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('make database YEAR=2024');
    expect(r.stdout).toContain('-m policyengine_us_data.datasets.cps.cps');
    expect(r.stdout).toMatch(/unified_calibration --device cuda --epochs 200 .* --lambda-l0 2e-2 .* --national/);
    expect(r.stdout).toContain('"$uv" export --quiet --frozen --no-hashes --no-emit-project --extra l0');
    const runs = await cli(['status'], { cache });
    expect(runs.stdout).toMatch(/no runs yet/);
  });
});
