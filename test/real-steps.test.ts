import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { built, cli, git, outcomes, ROOT, scratchDirs, SHARED_ENVS, summary, type CliResult } from './helpers.ts';
import { bundleTasksModule } from './tasks-module.ts';

/**
 * The real policyengine-us-data (the fixture bundle of e01a0384) run through the build, as far as
 * it runs on this machine: its Python environment from its own uv.lock (extra l0, dev group),
 * with the interpreter the discovery finds for its requires-python (">=3.12, <3.15": pyenv's
 * 3.13 here) and the explicit substitution of the two pins PyPI no longer serves; then the first
 * modules of `make database` (Makefile:81-83), each its own target in the Makefile's order:
 * `create_database_tables` and `create_initial_strata --year 2024` write policy_data.db and cache;
 * `etl_national_targets` stops at its insert of `medicare_part_b_premiums`, a variable the served
 * policyengine-us does not define. Also on the real code: `get_git_provenance` records the pinned
 * SHA, and a pandas HDFStore (PyTables) rewritten later cuts off on its content digest.
 *
 * The database modules are declared here, in a BUILD_TASKS pipeline using tasks/ (the real
 * python-env target, storage paths), until tasks/data.ts declares the whole chain.
 *
 * The first run installs the environment (~7.4 GB: torch with its CUDA wheels is a main
 * dependency of the lock; measured 76 s for `uv pip install` with a cold uv cache on this
 * machine, plus uv's bootstrap from PyPI and bytecode compilation), shared by later runs through
 * BUILD_ENVS_DIR like every test environment.
 */
const BUNDLE = 'policyengine-us-data-e01a0384.bundle';
const SUBSTITUTE = 'policyengine-us==1.691.1 policyengine-core==3.26.0';

/** ../shared/fixtures/<bundle>, relative to the project root or to any directory above it (a worktree). */
function fixtureBundle(): string | null {
  for (let dir = ROOT; ; dir = dirname(dir)) {
    const candidate = join(dir, '..', 'shared', 'fixtures', BUNDLE);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return null;
  }
}

const bundle = fixtureBundle();
if (!bundle) console.warn(`real-steps test skipped: ../shared/fixtures/${BUNDLE} was not found above ${ROOT} (CI has it)`);

const PIPELINE = `
import { pythonEnvTarget } from '@tasks/python-env.ts';
import { art, STORAGE } from '@tasks/storage.ts';

const DB = STORAGE + '/calibration/policy_data.db';
const MODULE_SOURCES = ['policyengine_us_data/**/*.py', STORAGE + '/calibration/raw_inputs/**', STORAGE + '/calibration_targets/**'];

/**
 * One module of \`make database\`: the database so far placed where every module opens it (a copy:
 * the module writes into it), the module run as the Makefile runs it (a bare \`python\`, which must
 * be the environment's), the result collected under the step's own name.
 */
function dbStep(name, module, args, from) {
  const script = [
    'set -e',
    'rm -f ' + DB,
    ...(from ? ['mkdir -p ' + STORAGE + '/calibration', 'cp ' + art(from + '.db') + ' ' + DB] : []),
    '"$@"',
    'cp ' + DB + ' ' + art(name + '.db'),
  ].join('\\n');
  return {
    name, deps: ['python-env', ...(from ? [from] : [])], sources: MODULE_SOURCES, vars: [],
    command: () => ['sh', '-c', script, 'sh', 'python', '-m', 'policyengine_us_data.db.' + module, ...args],
    outputs: ['artifacts/' + name + '.db'],
    contentDigest: { ['artifacts/' + name + '.db']: 'sqlite' },
  };
}

const PROVENANCE = 'import json, sys; from policyengine_us_data.calibration.unified_calibration import get_git_provenance; json.dump(get_git_provenance(), open(sys.argv[1], "w"))';
const STORE = [
  'import sys, time, pandas',
  'time.sleep(1.1)  # a later second than any earlier write: PyTables embeds time.time() in every object header',
  'frame = pandas.DataFrame({"weight": [1.5, 2.5, 3.5], "state": ["CA", "NY", "TX"]})',
  'frame.to_hdf(sys.argv[1], key="households", mode="w")',
].join('\\n');
const STORE_SUM = 'import sys, pandas; print(pandas.read_hdf(sys.argv[1], "households").weight.sum(), file=open(sys.argv[2], "w"))';

export function makePipeline(profile) {
  const t = (target) => ({ kind: 'target', target });
  return {
    defaultGoals: ['db-create-initial-strata'],
    nodes: [
      t(pythonEnvTarget(profile)),
      t(dbStep('db-create-database-tables', 'create_database_tables', [])),
      t(dbStep('db-create-initial-strata', 'create_initial_strata', ['--year', '2024'], 'db-create-database-tables')),
      t(dbStep('db-etl-national-targets', 'etl_national_targets', ['--year', '2024'], 'db-create-initial-strata')),
      t({ name: 'provenance', deps: ['python-env'], sources: MODULE_SOURCES, vars: [],
        command: () => ['{python}', '-c', PROVENANCE, art('provenance.json')], outputs: ['artifacts/provenance.json'] }),
      t({ name: 'store', deps: ['python-env'], sources: [], vars: [], env: ['STORE_NOISE'],
        command: () => ['{python}', '-c', STORE, art('store.h5')], outputs: ['artifacts/store.h5'],
        contentDigest: { 'artifacts/store.h5': 'hdf5' } }),
      t({ name: 'store-sum', deps: ['python-env', 'store'], sources: [], vars: [],
        command: () => ['{python}', '-c', STORE_SUM, art('store.h5'), art('sum.txt')], outputs: ['artifacts/sum.txt'] }),
    ],
  };
}
`;

const scratch = scratchDirs('real-steps');

describe.skipIf(!bundle)('the real policyengine-us-data steps through ./build.ts', () => {
  let repo: string;
  let cache: string;
  let tasks: string;
  const build = (args: string[], env: Record<string, string> = {}) =>
    cli([...args, `REPO=${repo}`, 'BUILD_DB=1', '--json'], { cache, env: { BUILD_TASKS: tasks, ...env } });
  const artifact = (r: CliResult, file: string) => join(cache, 'runs', summary(r).runId as string, 'artifacts', file);
  const event = (r: CliResult, target: string) => r.events.find((e) => e.event === 'target' && e.target === target)!;

  beforeAll(async () => {
    const outer = scratch();
    repo = join(outer, 'pe');
    execFileSync('git', ['clone', '-q', bundle!, repo]);
    tasks = await bundleTasksModule(outer, PIPELINE);
    // The cache inside a git checkout, so an action's git would find it if nothing stopped it.
    git(outer, 'init', '-q', '-b', 'outer');
    git(outer, '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'outer');
    cache = join(outer, 'cache');
  });

  it('the lock as pinned is not installable here: one line names the unserved pin and the substitution', { timeout: 600_000 }, async () => {
    const r = await build(['python-env']);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(event(r, 'python-env')).toMatchObject({ outcome: 'failed', reason: 'unserved-pin' });
    expect(event(r, 'python-env').error).toMatch(
      /^python-env: the package index does not serve policyengine-us==1\.637\.0, which the lock pins; substitute a served version explicitly with PY_SUBSTITUTE="policyengine-us==<served version>"/,
    );
  });

  it('substituting policyengine-us alone: one line names the pin it conflicts with', { timeout: 600_000 }, async () => {
    const r = await build(['python-env', 'PY_SUBSTITUTE=policyengine-us==1.691.1']);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(event(r, 'python-env')).toMatchObject({ outcome: 'failed', reason: 'conflicting-pins' });
    expect(event(r, 'python-env').error).toMatch(
      /^python-env: the pins cannot be installed together: policyengine-us<=1\.691\.1 depends on policyengine-core>=3\.26\.0, but the lock pins policyengine-core==3\.23\.6; substitute that one too, e\.g\. PY_SUBSTITUTE="policyengine-us==1\.691\.1 policyengine-core==<a version that fits>"; full log: /,
    );
  });

  it('installs the environment with the explicit substitution and the discovered interpreter', { timeout: 1_800_000 }, async () => {
    const r = await build(['python-env', `PY_SUBSTITUTE=${SUBSTITUTE}`]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const key = event(r, 'python-env').key as string;
    const meta = JSON.parse(readFileSync(join(cache, 'runs', summary(r).runId as string, 'meta.json'), 'utf8')) as { variables: Record<string, string> };
    expect(meta.variables).toMatchObject({ PY_SUBSTITUTE: SUBSTITUTE, PYTHON_VERSION: expect.stringMatching(/^cpython-3\.1[234]\.\d+$/) });
    const installed = readFileSync(join(SHARED_ENVS, key, 'requirements.lock.txt'), 'utf8');
    for (const pin of ['policyengine-us==1.691.1', 'policyengine-core==3.26.0', 'l0-python==0.5.0', 'pytest==8.4.2', 'tables==3.11.1']) expect(installed).toContain(`\n${pin}`);
    const version = execFileSync(join(SHARED_ENVS, key, 'bin', 'python'), ['-c', 'import platform; print(platform.python_version())'], { encoding: 'utf8' }).trim();
    expect(meta.variables.PYTHON_VERSION).toBe(`cpython-${version}`);
  });

  it('runs create_database_tables and create_initial_strata, and caches them', { timeout: 1_200_000 }, async () => {
    const first = await build(['db-create-initial-strata', 'provenance', `PY_SUBSTITUTE=${SUBSTITUTE}`]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(built(first)).toEqual(['db-create-database-tables', 'db-create-initial-strata', 'provenance']);
    const db = artifact(first, 'db-create-initial-strata.db');
    const count = (table: string) => execFileSync('python3', ['-c', `import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from ${table}").fetchone()[0])`, db], { encoding: 'utf8' }).trim();
    expect(Number(count('strata'))).toBeGreaterThan(0);
    expect(count('targets')).toBe('0');

    // The real get_git_provenance found no repository (the cache sits inside one) and took the run's.
    const provenance = JSON.parse(readFileSync(artifact(first, 'provenance.json'), 'utf8')) as Record<string, unknown>;
    expect(provenance).toMatchObject({ git_commit: git(repo, 'rev-parse', 'HEAD'), git_branch: 'main', git_dirty: null, package_version: '1.88.0' });

    // A new run (not the no-op that names the first as identical) restores both from the cache.
    const second = await build(['db-create-initial-strata', 'provenance', `PY_SUBSTITUTE=${SUBSTITUTE}`, '--new-run']);
    expect(second.code, second.stderr).toBe(0);
    expect(summary(second)).toMatchObject({ built: 0, failed: 0 });
    expect(outcomes(second).get('db-create-initial-strata')).toBe('cached');
  });

  it('stops in etl_national_targets at medicare_part_b_premiums, which the served model does not define', { timeout: 1_200_000 }, async () => {
    const r = await build(['db-etl-national-targets', `PY_SUBSTITUTE=${SUBSTITUTE}`]);
    expect(r.code).toBe(1);
    expect(outcomes(r).get('db-create-initial-strata')).toBe('cached');
    const failed = event(r, 'db-etl-national-targets');
    expect(failed.outcome).toBe('failed');
    expect(failed.error).toMatch(/IntegrityError/);
    expect(failed.error).toMatch(/\[parameters: \('medicare_part_b_premiums', 2024,/);
  });

  it('a pandas HDFStore rewritten later with the same frame stops the rebuild downstream', { timeout: 600_000 }, async () => {
    const first = await build(['store-sum', `PY_SUBSTITUTE=${SUBSTITUTE}`]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const again = await build(['store-sum', `PY_SUBSTITUTE=${SUBSTITUTE}`], { STORE_NOISE: '1' });
    expect(again.code, again.stderr).toBe(0);
    expect(outcomes(again).get('store')).toBe('built');
    const record = (r: CliResult) =>
      (JSON.parse(readFileSync(join(cache, 'runs', summary(r).runId as string, 'meta.json'), 'utf8')) as { targets: Record<string, { outputs: Record<string, { digest: string; content?: string }> }> })
        .targets.store!.outputs['artifacts/store.h5']!;
    expect(record(again).digest).not.toBe(record(first).digest);
    expect(record(again).content).toBe(record(first).content);
    expect(outcomes(again).get('store-sum')).toBe('cached');
    expect(readFileSync(artifact(again, 'sum.txt'), 'utf8').trim()).toBe('7.5');
  });
});
