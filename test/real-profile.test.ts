import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, cli, git, ROOT, tempDir } from './helpers.ts';

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

/**
 * The plan on a clone of the real repository at e01a0384 (../shared/fixtures): the calibration
 * commands as the real Modal wrappers run them, with the real defaults of a real checkout.
 */
const BUNDLE = join('shared', 'fixtures', 'policyengine-us-data-e01a0384.bundle');
/** ../shared/fixtures beside the checkout (or beside a worktree's parent). */
const fixture = [join(ROOT, '..', BUNDLE), join(ROOT, '..', '..', BUNDLE)].find((f) => existsSync(f));

describe.skipIf(!fixture)('REPO=<a clone of the real fixture> (skipped: ../shared/fixtures absent)', () => {
  let repo: string;
  let cache: string;
  beforeAll(() => {
    repo = join(tempDir('real-fixture'), 'pe');
    execFileSync('git', ['clone', '-q', fixture!, repo]);
    cache = join(tempDir('real-fixture-cache'), 'cache');
  });
  afterAll(() => cleanup(join(repo, '..'), join(cache, '..')));

  it('-n names the real package, fit and area-worker commands with the real defaults', async () => {
    const r = await cli(['pipeline', '-n', `REPO=${repo}`, 'BUILD_DB=1', '--json'], { cache });
    expect(r.code, r.stderr).toBe(0);
    // Each command as the tasks declare it (placeholders kept), one per line; -n prints them resolved.
    const declared = r.events.flatMap((e) => (e.event === 'plan' && typeof e.declared === 'string' ? [`${e.declared}\n`] : [])).join('');
    const unified = '{python} -m policyengine_us_data.calibration.unified_calibration';
    const a = (f: string) => `{run}/artifacts/${f}`;
    // RCR:383-403, then the sidecar; stdout (validate_package's report) kept.
    expect(declared).toContain(
      `{python} {adapters}/package_sidecar.py --report ${a('calibration_package_validation.txt')} -- ${unified} --device cpu --epochs 0 ` +
        `--db-path ${a('policy_data.db')} --dataset ${a('source_imputed_stratified_extended_cps_2024.h5')} --build-only ` +
        `--package-output ${a('calibration_package.pkl')} --workers 50 --n-clones 430\n`,
    );
    // PL:853-889: the same flags but the hyper-parameters; the adapter adds the remaining --epochs.
    const fit = (l0: string, l2: string) =>
      `-- ${unified} --device cuda --package-path ${a('calibration_package.pkl')} --target-config policyengine_us_data/calibration/target_config.yaml ` +
      `--beta 0.65 --lambda-l0 ${l0} --lambda-l2 ${l2} --log-freq 100 --n-clones 430 --output {checkpoint}/calibration_weights.npy ` +
      `--checkpoint-output {checkpoint}/calibration_weights.checkpoint.pt\n`;
    expect(declared).toContain(`{python} {adapters}/fit.py --total-epochs 1000 --collect-into {run}/artifacts ${fit('1e-7', '1e-8')}`);
    expect(declared).toContain(`{python} {adapters}/fit.py --total-epochs 1000 --prefix national_ --collect-into {run}/artifacts ${fit('2e-2', '1e-12')}`);
    // LA:481-522 for one area (the fan-out's items are known only once the area list is built).
    expect(declared).toContain(
      `{python} {adapters}/run_areas.py --rows-dir {run}/validation -- {python} -m modal_app.worker_script --work-items [{"type":"state","id":"AL"}] ` +
        `--weights-path ${a('calibration_weights.npy')} --dataset-path ${a('source_imputed_stratified_extended_cps_2024.h5')} --db-path ${a('policy_data.db')} ` +
        `--output-dir {run}/h5s --geography-path ${a('geography_assignment.npz')} --n-clones 430 --seed 42 ` +
        `--target-config policyengine_us_data/calibration/target_config.yaml --validation-config policyengine_us_data/calibration/target_config_full.yaml\n`,
    );
    expect(declared).toContain(`{python} {adapters}/area_list.py --db-path ${a('policy_data.db')} --output ${a('areas.json')}`);
    expect(declared).toContain('-m policyengine_us_data.calibration.validate_national_h5 --h5-path {run}/h5s/national/US.h5');
    expect(declared).toContain('{python} {adapters}/manifest.py --staging-dir {run} --subdir h5s');
  });
});
