import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sqliteDigest } from '../src/caching/content-digest.ts';
import { digestFile } from '../src/caching/hash.ts';
import { cli, commitChange, exampleRepo, git, outcomes, scratchDirs, summary, type CliResult } from './helpers.ts';
import { bundleTasksModule } from './tasks-module.ts';

/**
 * Early cutoff on outputs whose bytes embed history or time: an SQLite database (header counters)
 * and an HDF5 file written with object-header times (as PyTables, so pandas' HDFStore, writes
 * every file). Real writers (python3's sqlite3, h5py), real builds through the CLI.
 */
const scratch = scratchDirs('content-digest');

/** Writes rows.txt into an SQLite table, then bumps the header counters DB_NOISE times without changing a row. */
const WRITE_DB = `import os, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("create table t (id integer primary key, name text)")
c.executemany("insert into t (name) values (?)", [(l,) for l in open("rows.txt").read().split()])
c.commit()
for _ in range(int(os.environ.get("DB_NOISE", "0"))):
    c.execute("pragma user_version = 0")
    c.commit()
c.close()
`;

const SQLITE_PIPELINE = `
export function makePipeline() {
  return {
    defaultGoals: ['count'],
    nodes: [
      { kind: 'target', target: { name: 'db', deps: [], sources: ['rows.txt', 'write_db.py'], vars: [], env: ['DB_NOISE'],
        command: () => ['python3', 'write_db.py', '{run}/artifacts/rows.db'], outputs: ['artifacts/rows.db'],
        contentDigest: { 'artifacts/rows.db': 'sqlite' } } },
      { kind: 'target', target: { name: 'count', deps: ['db'], sources: [], vars: [],
        command: () => ['python3', '-c', 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from t").fetchone()[0], file=open(sys.argv[2], "w"))', '{run}/artifacts/rows.db', '{run}/artifacts/count.txt'],
        outputs: ['artifacts/count.txt'] } },
    ],
  };
}
`;

/** The output records a run recorded for a target (digest = bytes, content = content digest). */
function recorded(cache: string, r: CliResult, target: string): Record<string, { digest: string; content?: string }> {
  const meta = JSON.parse(readFileSync(join(cache, 'runs', summary(r).runId as string, 'meta.json'), 'utf8')) as {
    targets: Record<string, { outputs: Record<string, { digest: string; content?: string }> }>;
  };
  return meta.targets[target]!.outputs;
}

describe('SQLite content digest', () => {
  it('ignores the change counter and version fields, and nothing else', async () => {
    const dir = scratch();
    writeFileSync(join(dir, 'write_db.py'), WRITE_DB);
    writeFileSync(join(dir, 'rows.txt'), 'a b c\n');
    const write = (file: string, noise: number) => execFileSync('python3', ['write_db.py', file], { cwd: dir, env: { ...process.env, DB_NOISE: String(noise) } });
    write('quiet.db', 0);
    write('noisy.db', 3);
    const [quiet, noisy] = [readFileSync(join(dir, 'quiet.db')), readFileSync(join(dir, 'noisy.db'))];
    expect(quiet.equals(noisy)).toBe(false); // the counters moved
    expect((await digestFile(join(dir, 'quiet.db'))).digest).not.toBe((await digestFile(join(dir, 'noisy.db'))).digest);
    expect(await sqliteDigest(join(dir, 'quiet.db'))).toEqual(await sqliteDigest(join(dir, 'noisy.db')));

    writeFileSync(join(dir, 'rows.txt'), 'a b d\n');
    write('other.db', 0);
    expect(await sqliteDigest(join(dir, 'other.db'))).not.toEqual(await sqliteDigest(join(dir, 'quiet.db')));

    writeFileSync(join(dir, 'not.db'), 'x'.repeat(200));
    expect(await sqliteDigest(join(dir, 'not.db'))).toEqual({ ok: false, message: 'is declared an SQLite database (contentDigest) but is not one' });
  });

  it('a database rebuilt with the same rows and other header counters stops the rebuild downstream', async () => {
    const root = scratch();
    const repo = join(root, 'repo');
    execFileSync('mkdir', ['-p', repo]);
    writeFileSync(join(repo, 'write_db.py'), WRITE_DB);
    writeFileSync(join(repo, 'rows.txt'), 'a b c\n');
    git(repo, 'init', '-q', '-b', 'main');
    git(repo, 'add', '-A');
    git(repo, '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '-m', 'db');
    writeFileSync(join(root, 'tasks.mjs'), SQLITE_PIPELINE);
    const cache = join(root, 'cache');
    const build = (env: Record<string, string> = {}) => cli(['pipeline', `REPO=${repo}`, '--json'], { cache, env: { BUILD_TASKS: join(root, 'tasks.mjs'), ...env } });

    const first = await build();
    expect(first.code, first.stderr).toBe(0);
    const noisy = await build({ DB_NOISE: '3' });
    expect(noisy.code, noisy.stderr).toBe(0);
    expect(outcomes(noisy).get('db')).toBe('built');
    const [a, b] = [recorded(cache, first, 'db')['artifacts/rows.db']!, recorded(cache, noisy, 'db')['artifacts/rows.db']!];
    expect(b.digest).not.toBe(a.digest); // other bytes, stored as such
    expect(b.content).toBe(a.content);
    expect(outcomes(noisy).get('count')).toBe('cached');

    // Control: other rows are other content.
    commitChange(repo, 'rows.txt', 'a b c d\n');
    const changed = await build({ DB_NOISE: '3' });
    expect(outcomes(changed).get('count')).toBe('built');
    expect(readFileSync(join(cache, 'runs', summary(changed).runId as string, 'artifacts', 'count.txt'), 'utf8').trim()).toBe('4');
  });
});

/** A twin checkout whose pipeline writes an HDF5 file with object-header times (h5py track_times=True). */
const HDF5_PIPELINE = `
import { pythonEnvTarget } from '@tasks/python-env.ts';
const WRITE = [
  'import sys, time, h5py, numpy',
  'time.sleep(1.1)  # a later second than any earlier write: the embedded times differ',
  'n = int(open("size.txt").read())',
  'with h5py.File(sys.argv[1], "w") as f:',
  '    g = f.create_group("household")',
  '    g.create_dataset("weight", data=numpy.arange(n, dtype="f8"), track_times=True)',
  '    g.attrs["year"] = 2024',
].join('\\n');
export function makePipeline(profile) {
  return {
    defaultGoals: ['use'],
    nodes: [
      { kind: 'target', target: pythonEnvTarget(profile) },
      { kind: 'target', target: { name: 'h5', deps: ['python-env'], sources: ['size.txt'], vars: [], env: ['H5_NOISE'],
        command: () => ['{python}', '-c', WRITE, '{run}/artifacts/data.h5'], outputs: ['artifacts/data.h5'],
        contentDigest: { 'artifacts/data.h5': 'hdf5' } } },
      { kind: 'target', target: { name: 'use', deps: ['python-env', 'h5'], sources: [], vars: [],
        command: () => ['{python}', '-c', 'import sys, h5py; print(h5py.File(sys.argv[1])["household/weight"][:].sum(), file=open(sys.argv[2], "w"))', '{run}/artifacts/data.h5', '{run}/artifacts/sum.txt'],
        outputs: ['artifacts/sum.txt'] } },
    ],
  };
}
`;

describe('HDF5 content digest', () => {
  let repo: string;
  let tasks: string;
  let cache: string;
  beforeAll(async () => {
    const root = scratch();
    repo = exampleRepo();
    writeFileSync(join(repo, 'size.txt'), '10\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'size');
    tasks = await bundleTasksModule(root, HDF5_PIPELINE);
    cache = join(root, 'cache');
  });

  it('a file rewritten later with the same data stops the rebuild downstream', async () => {
    const build = (env: Record<string, string> = {}) => cli(['pipeline', `REPO=${repo}`, '--json'], { cache, env: { BUILD_TASKS: tasks, ...env } });
    const first = await build();
    expect(first.code, first.stderr + first.stdout).toBe(0);
    const again = await build({ H5_NOISE: '1' });
    expect(again.code, again.stderr).toBe(0);
    expect(outcomes(again).get('h5')).toBe('built');
    const [a, b] = [recorded(cache, first, 'h5')['artifacts/data.h5']!, recorded(cache, again, 'h5')['artifacts/data.h5']!];
    expect(b.digest).not.toBe(a.digest); // the object-header times differ
    expect(b.content).toBe(a.content);
    expect(outcomes(again).get('use')).toBe('cached');

    commitChange(repo, 'size.txt', '11\n');
    const changed = await build({ H5_NOISE: '1' });
    expect(outcomes(changed).get('use')).toBe('built');
    expect(readFileSync(join(cache, 'runs', summary(changed).runId as string, 'artifacts', 'sum.txt'), 'utf8').trim()).toBe('55.0');
  });
});
