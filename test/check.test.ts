import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPlan } from '../src/check/plan-check.ts';
import { Graph } from '../src/graph.ts';
import { loadPythonIndex } from '../src/python/python-index.ts';
import type { Node, Pipeline, Target } from '../src/target.ts';
import { STORAGE, storageOutputs, storageStep } from '../tasks/storage.ts';
import { cleanup, cli, cloneRealFixture, git, realFixtureBundle, scratchDirs, tempDir } from './helpers.ts';

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

  it('conformance: a dry run of the real plan passes the preflight and prints the real modules', async () => {
    const repo = cloneRealFixture(bundle!);
    const r = await cli(['pipeline', '-n', `REPO=${repo}`, 'BUILD_DB=1'], { cache });
    cleanup(join(repo, '..'));
    expect(r.code, r.stderr).toBe(0);
    for (const module of ['policyengine_us_data.db.create_database_tables', 'policyengine_us_data.datasets.cps.cps', 'policyengine_us_data.calibration.unified_calibration']) {
      expect(r.stdout).toContain(`-m ${module}`);
    }
  });

  it('a flag removed from a real argparse (--log-freq of unified_calibration) is a line naming the flag', async () => {
    const line = /^[\w:/-]+: python -m policyengine_us_data\.calibration\.unified_calibration passes --log-freq, which policyengine_us_data\.calibration\.unified_calibration's argparse does not define \(it exits 2\)/m;
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
    const line = /^[\w:/-]+: python -m modal_app\.worker_script: no such module at [0-9a-f]{12}; did it move to modal_app\.workers\.worker_script\?/m;
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

/** checkPlan itself on a small tree of real files, one declaration per kind of problem. */
describe('checkPlan on a small tree', () => {
  const scratch = scratchDirs('plan-check');
  const files: Record<string, string> = {
    Makefile: 'YEAR ?= 2024\n.PHONY: database\n\ndatabase:\n\trm -f pkg/storage/db.sqlite\n\tpython -m pkg.db.a --year $(YEAR)\n\tpython -m pkg.db.b\n',
    'pkg/__init__.py': '',
    'policyengine_us_data/__init__.py': '',
    'policyengine_us_data/storage/__init__.py': 'STORAGE_FOLDER = "policyengine_us_data/storage"\n',
    'pkg/utils.py': 'import argparse\n\ndef etl_argparser(description):\n    p = argparse.ArgumentParser(description)\n    p.add_argument("--year", type=int)\n    return p.parse_args()\n',
    'pkg/db/__init__.py': '',
    'pkg/db/a.py': 'from pkg.utils import etl_argparser\n\nif __name__ == "__main__":\n    etl_argparser("a")\n',
    'pkg/db/b.py': 'def main():\n    pass\n\nif __name__ == "__main__":\n    main()\n',
    'pkg/ds.py': 'from policyengine_us_data.storage import STORAGE_FOLDER\n\nOUT = "out_2024.h5"\n\ndef side(year):\n    return f"{STORAGE_FOLDER}/side_{year}.csv"\n\nif __name__ == "__main__":\n    side(2024)\n',
    'pkg/nomain.py': 'def helper():\n    return 1\n',
    'pkg/hand.py': 'import sys\n\nif __name__ == "__main__":\n    print(sys.argv[1:])\n',
    'config/c.yaml': 'x: 1\n',
    '../adapters/lister.py': 'import argparse\nimport sys\n\nsys.path.insert(0, ".")\nfrom pkg.ds import OUT\n\np = argparse.ArgumentParser()\np.add_argument("--db-path")\np.parse_args()\n',
  };
  const py = (module: string, ...args: string[]) => ['{python}', '-m', module, ...args];
  /** The files under `<root>/tree`, adapters beside it in `<root>/adapters`; returns the tree. */
  const treeOf = (root: string) => {
    for (const [rel, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, 'tree', rel)), { recursive: true });
      writeFileSync(join(root, 'tree', rel), text);
    }
    return join(root, 'tree');
  };
  const target = (t: Partial<Target> & Pick<Target, 'name' | 'command'>): Node => ({ kind: 'target', target: { deps: [], sources: [], vars: [], outputs: [], ...t } });

  it('names each problem on one line, notes what it cannot check, and passes what is right', () => {
    const dir = treeOf(scratch());
    const pipeline: Pipeline = {
      defaultGoals: [],
      nodes: [
        target({ name: 'a', command: () => py('pkg.db.a', '--year', '2024'), pythonModules: ['pkg.db.a'], outputs: ['artifacts/a.txt'], deps: [] }),
        target({ name: 'b', command: () => py('pkg.db.b', '--year', '2024'), pythonModules: ['pkg.db.b'] }),
        target({
          name: 'ds', deps: ['a'], pythonModules: ['pkg.ds'],
          command: () => storageStep({ inputs: ['in.h5'], outputs: ['out_2024.h5', 'side_2024.csv', 'missing.h5'] }, py('pkg.ds')),
          outputs: storageOutputs({ outputs: ['out_2024.h5', 'side_2024.csv', 'missing.h5'] }),
        }),
        target({ name: 'nomain', command: () => py('pkg.nomain', '--x', 'config/c.yaml', 'config/d.yaml', '--output', 'new/out.txt'), outputs: ['artifacts/never.txt'] }),
        target({ name: 'hand', command: () => ['python3', '-u', '-m', 'pkg.hand', '100', '--seed=3'], pythonModules: ['pkg.hand', 'pkg.gone'] }),
        target({ name: 'mk', command: () => ['make', 'database', 'YEAR=2024', 'PYTHON=x'], pythonModules: ['pkg.db.a'] }),
        target({ name: 'nosuch', command: () => ['make', 'databse'] }),
        target({ name: 'ext', command: () => ['python3', '-m', 'pytest', 'tests/unit/'] }),
        target({ name: 'written', command: () => ['sh', '-c', 'echo > {run}/artifacts/w.txt'], outputs: ['artifacts/w.txt'] }),
        target({ name: 'adapter', command: () => ['{python}', '{adapters}/lister.py', '--db-path', '{run}/artifacts/a.txt', '--bogus'], deps: ['a'], outputs: ['artifacts/list.json'] }),
        target({ name: 'noadapter', command: () => ['{python}', '{adapters}/gone.py'] }),
      ],
      mirrorsMakefile: [{ makeTarget: 'database', targets: ['a', 'b'] }],
    };
    const { index } = loadPythonIndex({ projectDir: dir, memoFile: join(dir, 'memo.json'), adaptersDir: join(dir, '..', 'adapters') });
    const graph = new Graph(pipeline);
    const report = checkPlan({ graph, goals: [...graph.nodes.keys()], vars: {}, projectDir: dir, index, storageDir: STORAGE, mirrors: pipeline.mirrorsMakefile!, sha: 'abc' });
    const lines = report.problems.map((p) => `${p.target}: ${p.message}`);
    const expected = [
      /^b: python -m pkg\.db\.b passes --year, but pkg\.db\.b has no argparse and reads no sys\.argv, so it ignores the flag; drop it$/,
      /^ds: copies artifacts\/in\.h5 into policyengine_us_data\/storage\/in\.h5, but none of its deps \(a\) declares that output; add the target that builds it to deps$/,
      /^ds: collects policyengine_us_data\/storage\/missing\.h5, but no file the step runs names missing\.h5, so it cannot write it; check the file name$/,
      /^nomain: runs python -m pkg\.nomain, which pythonModules does not declare, so edits to the files it imports would not rebuild nomain; add 'pkg\.nomain' to its pythonModules$/,
      /^nomain: python -m pkg\.nomain: pkg\/nomain\.py has no `if __name__ == "__main__":` and no module-level code, so running it does nothing; /,
      /^nomain: python -m pkg\.nomain passes --x, but pkg\.nomain has no argparse/,
      /^nomain: python -m pkg\.nomain passes --output, but pkg\.nomain has no argparse/,
      /^nomain: python -m pkg\.nomain passes config\/d\.yaml, which does not exist in the tree at abc; did you mean config\/c\.yaml\?$/,
      /^nomain: declares output artifacts\/never\.txt, but its command names neither \{run\}\/artifacts\/never\.txt nor a directory holding it/,
      /^hand: pythonModules names pkg\.gone, which is not a module of the tree at abc; /,
      /^mk: make database runs 1 module\(s\) that pythonModules does not declare \(pkg\.db\.b\)/,
      /^mk: make database PYTHON=x: the Makefile never uses \$\(PYTHON\), so the assignment does nothing; drop it$/,
      /^nosuch: make databse: the Makefile has no target databse; did you mean database\?$/,
      /^ext: python -m pytest passes tests\/unit\/, which does not exist in the tree at abc; fix the path$/,
      /^b: runs pkg\.db\.b with flags \[--year\], but Makefile:7 passes \[\]; pass the recipe's flags$/,
      /^a: declares output artifacts\/a\.txt, but its command names neither/,
      /^adapter: python \{adapters\}\/lister\.py passes --bogus, which \{adapters\}\/lister\.py's argparse does not define \(it exits 2\); its flags are --db-path$/,
      /^noadapter: python \{adapters\}\/gone\.py: tasks\/adapters\/gone\.py does not exist; fix the script path$/,
    ];
    for (const re of expected) expect(lines.filter((l) => re.test(l)), `${re}\n${lines.join('\n')}`).toHaveLength(1);
    expect(lines).toHaveLength(expected.length);
    expect(report.notes).toEqual([{ target: 'hand', message: 'python -m pkg.hand: no argparse (it reads sys.argv by hand): flags are not checked' }]);
  });

  it('a chain that leaves the Makefile order is named at the first difference', () => {
    const dir = treeOf(scratch());
    const pipeline: Pipeline = {
      defaultGoals: [],
      nodes: [
        target({ name: 'b', command: () => py('pkg.db.b'), pythonModules: ['pkg.db.b'] }),
        target({ name: 'a', command: () => py('pkg.db.a', '--year', '2024'), pythonModules: ['pkg.db.a'] }),
      ],
    };
    const { index } = loadPythonIndex({ projectDir: dir, memoFile: join(dir, 'memo.json'), adaptersDir: join(dir, '..', 'adapters') });
    const graph = new Graph(pipeline);
    const run = (targets: string[]) => checkPlan({ graph, goals: [], vars: {}, projectDir: dir, index, storageDir: STORAGE, mirrors: [{ makeTarget: 'database', targets }], sha: 'abc' }).problems;
    expect(run(['a', 'b'])).toEqual([]);
    expect(run(['b', 'a'])).toEqual([{ target: 'b', message: 'is target 1 of the chain mirroring make database and runs pkg.db.b, but Makefile:6 runs pkg.db.a there; keep the Makefile\'s modules in its order' }]);
    expect(run(['a'])).toEqual([{ target: 'a', message: 'the chain mirroring make database ends after 1 targets, but Makefile:7 then runs pkg.db.b; add a target for it' }]);
  });
});
