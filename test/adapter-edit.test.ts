import { copyFileSync, cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { built, cliEnv, exampleRepo, parseEvents, ROOT, scratchDirs, SMALL, type CliResult } from './helpers.ts';

/**
 * An adapter (tasks/adapters/, this build system's own code, not the pinned tree) is a source of
 * every target that runs it: in a copy of this project, editing download_prerequisites.py rebuilds
 * exactly the two prerequisites targets, and what reads their outputs only when those bytes change.
 */
describe('editing an adapter', () => {
  const scratch = scratchDirs('adapter-edit');
  let project: string;
  let repo: string;
  let cache: string;
  const adapter = () => join(project, 'tasks', 'adapters', 'download_prerequisites.py');
  const build = (): CliResult => {
    const r = spawnSync(process.execPath, [join(project, 'dist', 'cli.mjs'), 'irs-puf', `REPO=${repo}`, ...SMALL, '--json'], {
      cwd: project,
      env: cliEnv(cache),
      encoding: 'utf8',
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, events: parseEvents(r.stdout) };
  };
  const rebuilt = (r: CliResult) => built(r).filter((t) => t !== 'python-env');

  beforeAll(() => {
    project = scratch();
    copyFileSync(join(ROOT, 'build.ts'), join(project, 'build.ts'));
    // The HDF5 content digest helper the build runs for irs_puf_2015.h5 (src/python-env/hdf5_digest.py).
    mkdirSync(join(project, 'src', 'python-env'), { recursive: true });
    copyFileSync(join(ROOT, 'src', 'python-env', 'hdf5_digest.py'), join(project, 'src', 'python-env', 'hdf5_digest.py'));
    mkdirSync(join(project, 'dist'));
    for (const name of ['cli.mjs', 'cli.cjs']) copyFileSync(join(ROOT, 'dist', name), join(project, 'dist', name));
    cpSync(join(ROOT, 'tasks', 'adapters'), join(project, 'tasks', 'adapters'), { recursive: true, filter: (src) => !src.includes('__pycache__') });
    symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'));
    repo = exampleRepo();
    cache = join(scratch(), 'cache');
  });

  it('rebuilds exactly the targets that run it, and their readers only when their bytes change', () => {
    expect(rebuilt(build())).toEqual(['irs-puf', 'prerequisites', 'prerequisites-revision']);

    writeFileSync(adapter(), `${readFileSync(adapter(), 'utf8')}\n# a comment that changes no download\n`);
    expect(rebuilt(build())).toEqual(['prerequisites', 'prerequisites-revision']);

    // Now the download writes other bytes (one return fewer): the IRS PUF that reads them rebuilds.
    const line = '        print("downloaded %s of %s at %s" % (name, REPO, revision))';
    const source = readFileSync(adapter(), 'utf8');
    expect(source).toContain(line);
    const dropLastReturn = [
      '        if name == "puf_2015.csv":',
      '            path = STORAGE_FOLDER / name',
      '            path.write_text("".join(path.read_text().splitlines(True)[:-1]))',
      line,
    ].join('\n');
    writeFileSync(adapter(), source.replace(line, dropLastReturn));
    const r = build();
    expect(rebuilt(r)).toEqual(['irs-puf', 'prerequisites', 'prerequisites-revision']);
  });
});
