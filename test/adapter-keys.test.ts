import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, cpSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { built, cleanup, cliEnv, exampleRepo, parseEvents, ROOT, SMALL, tempDir, type CliResult } from './helpers.ts';

/**
 * The adapters (tasks/adapters/) are this build system's own code, not the pinned tree's: each one
 * a command names is a source of its target. On a copy of this project (the bundle, build.ts and
 * the adapters), editing an adapter rebuilds exactly the targets that run it.
 */
describe('adapter scripts in the keys', () => {
  let project: string;
  let repo: string;
  let cache: string;
  const build = (goals: string[]): CliResult => {
    const r = spawnSync(process.execPath, [join(project, 'dist', 'cli.mjs'), ...goals, `REPO=${repo}`, ...SMALL, '--json'], {
      cwd: project,
      env: cliEnv(cache),
      encoding: 'utf8',
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, events: parseEvents(r.stdout) };
  };
  const ok = (r: CliResult) => {
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return r;
  };
  const GOALS = ['fit-regional', 'fit-national', 'area-list'];

  beforeAll(() => {
    const root = tempDir('adapter-keys');
    project = join(root, 'project');
    mkdirSync(join(project, 'dist'), { recursive: true });
    for (const name of ['cli.mjs', 'cli.cjs']) copyFileSync(join(ROOT, 'dist', name), join(project, 'dist', name));
    copyFileSync(join(ROOT, 'build.ts'), join(project, 'build.ts'));
    // The HDF5 content digest helper the build runs for irs_puf_2015.h5 (src/python-env/hdf5_digest.py).
    mkdirSync(join(project, 'src', 'python-env'), { recursive: true });
    copyFileSync(join(ROOT, 'src', 'python-env', 'hdf5_digest.py'), join(project, 'src', 'python-env', 'hdf5_digest.py'));
    cpSync(join(ROOT, 'tasks', 'adapters'), join(project, 'tasks', 'adapters'), { recursive: true, filter: (p) => !p.includes('__pycache__') });
    symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'));
    writeFileSync(join(project, 'package.json'), '{"type": "module"}\n');
    repo = exampleRepo();
    cache = join(root, 'cache');
  });
  afterAll(() => cleanup(join(project, '..'), repo));

  it('an edited fit adapter rebuilds both fits and nothing else; an edited area-list adapter, the area list', () => {
    ok(build(GOALS));
    appendFileSync(join(project, 'tasks', 'adapters', 'fit.py'), '\n# an edit to the fit adapter\n');
    expect(built(ok(build(GOALS)))).toEqual(['fit-national', 'fit-regional']);
    appendFileSync(join(project, 'tasks', 'adapters', 'area_list.py'), '\n# an edit to the area-list adapter\n');
    expect(built(ok(build(GOALS)))).toEqual(['area-list']);
    expect(built(ok(build(GOALS)))).toEqual([]);
  });
});
