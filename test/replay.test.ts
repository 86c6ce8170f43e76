import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { built, cleanup, cli, commitChange, git, summary, tempDir, type CliResult } from './helpers.ts';

/**
 * Whole-run replay (src/replay.ts): a build whose inputs equal the last completed run's takes that
 * run's keys and outputs. These tests run the real CLI on a small declaration with a variable, a
 * declared environment variable, sources and a fan-out, in a real git repository.
 */
const DECLARATION = `
const sh = (line) => ['sh', '-c', line];
const target = (t) => ({ deps: [], sources: [], vars: [], ...t });
export function makePipeline() {
  return {
    defaultGoals: ['manifest'],
    nodes: [
      { kind: 'target', target: target({ name: 'list', sources: ['inputs/areas.json'], command: () => sh('cp inputs/areas.json {run}/artifacts/areas.json'), outputs: ['artifacts/areas.json'] }) },
      { kind: 'target', target: target({ name: 'base', sources: ['inputs/base.txt'], vars: ['EPOCHS'], env: ['REPLAY_TEST_ENV'],
        command: (v) => sh('cat inputs/base.txt > {run}/artifacts/base.txt && echo "' + (v.EPOCHS ?? '') + '" >> {run}/artifacts/base.txt'), outputs: ['artifacts/base.txt'] }) },
      { kind: 'fanout', fanout: { name: 'areas', deps: ['list', 'base'], childPrefix: 'area:',
        expand: ({ readJson }) => readJson('artifacts/areas.json').map((a) => target({ name: 'area:' + a, deps: ['list', 'base'],
          command: () => sh('cat {run}/artifacts/base.txt > {run}/areas/' + a + '.txt && echo ' + a + ' >> {run}/areas/' + a + '.txt'), outputs: ['areas/' + a + '.txt'] })) } },
      { kind: 'target', target: target({ name: 'manifest', deps: ['areas'], command: () => sh('MANIFEST_COMMAND'), outputs: ['manifest.txt'] }) },
    ],
  };
}
`;
const MANIFEST = 'cat {run}/areas/*.txt > {run}/manifest.txt';
const AREAS = ['al', 'ak', 'az'];

describe('whole-run replay', () => {
  let root: string;
  let repo: string;
  let tasks: string;
  let cache: string;

  const writeDeclaration = (manifestCommand: string) => writeFileSync(tasks, DECLARATION.replace('MANIFEST_COMMAND', manifestCommand));
  const build = (args: string[] = [], env: Record<string, string> = {}) =>
    cli(['pipeline', `REPO=${repo}`, '--json', ...args], { cache, env: { BUILD_TASKS: tasks, REPLAY_TEST_ENV: 'one', ...env } });
  const meta = (r: CliResult) => JSON.parse(readFileSync(join(cache, 'runs', summary(r).runId as string, 'meta.json'), 'utf8'));
  /** target -> [key, outputs] as a run recorded them. */
  const recorded = (r: CliResult) =>
    Object.fromEntries(Object.entries(meta(r).targets as Record<string, { key: string; outputs: unknown }>).map(([t, o]) => [t, [o.key, o.outputs]]));
  /** Every file of a run's directory except its meta.json, with its inode (outputs are links to blobs). */
  const files = (r: CliResult) => {
    const dir = join(cache, 'runs', summary(r).runId as string);
    const out: Record<string, number> = {};
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        // The run's own records (meta.json, the build process's heartbeat.json) are not outputs.
        else if (e.name !== 'meta.json' && e.name !== 'heartbeat.json') out[relative(dir, join(d, e.name))] = statSync(join(d, e.name)).ino;
      }
    };
    walk(dir);
    return out;
  };
  const ok = (r: CliResult) => {
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return r;
  };

  beforeAll(() => {
    root = tempDir('replay');
    repo = join(root, 'repo');
    tasks = join(root, 'tasks.mjs');
    cache = join(root, 'cache');
    git(root, 'init', '-q', '-b', 'main', repo);
    git(repo, 'config', 'user.email', 'test@example.com');
    git(repo, 'config', 'user.name', 'Test');
    mkdirSync(join(repo, 'inputs'));
    writeFileSync(join(repo, 'inputs', 'areas.json'), JSON.stringify(AREAS));
    writeFileSync(join(repo, 'inputs', 'base.txt'), 'placeholder\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'init');
    writeDeclaration(MANIFEST);
  });
  afterAll(() => cleanup(root));

  it('a rerun with nothing changed replays the last run: same keys, outputs and files, nothing executed', async () => {
    const first = ok(await build());
    expect(summary(first).replayedFrom).toBeUndefined();
    expect(built(first)).toEqual(['area:ak', 'area:al', 'area:az', 'base', 'list', 'manifest']);
    expect(meta(first).inputsKey).toMatch(/^[0-9a-f]{32}$/);

    // --new-run: records a new run even though nothing changed (by default none is recorded, below).
    const second = ok(await build(['--new-run']));
    expect(summary(second).replayedFrom).toBe(summary(first).runId);
    expect(summary(second).cached).toBe(6);
    expect(built(second)).toEqual([]);
    expect(recorded(second)).toEqual(recorded(first));
    expect(meta(second).inputsKey).toBe(meta(first).inputsKey);
    // The same output files, linked to the same blobs; no action ran, so no logs.
    const firstOutputs = Object.fromEntries(Object.entries(files(first)).filter(([f]) => !f.startsWith('logs/') && !f.startsWith('tree/')));
    expect(files(second)).toEqual(firstOutputs);
    const manifest = readFileSync(join(cache, 'runs', summary(second).runId as string, 'manifest.txt'), 'utf8');
    for (const area of AREAS) expect(manifest).toContain(`${area}\n`);
    // The expansion is reported as the scheduler reports it.
    expect(second.events.find((e) => e.event === 'expand')).toMatchObject({ target: 'areas', children: 3, childPrefix: 'area:' });

    // A replayed run can be replayed in turn.
    const third = ok(await build(['--new-run']));
    expect(summary(third).replayedFrom).toBe(summary(second).runId);

    // By default a no-op records nothing new: it names the identical run, the one to promote.
    const runsBefore = readdirSync(join(cache, 'runs')).sort();
    const noop = ok(await build());
    expect(summary(noop)).toMatchObject({ status: 'unchanged', runId: summary(third).runId, replayedFrom: summary(third).runId, built: 0, cached: 6 });
    expect(noop.events.filter((e) => e.event === 'run-start')).toEqual([]);
    expect(readdirSync(join(cache, 'runs')).sort()).toEqual(runsBefore);
    const plain = await cli(['pipeline', `REPO=${repo}`], { cache, env: { BUILD_TASKS: tasks, REPLAY_TEST_ENV: 'one' } });
    expect(plain.stdout).toMatch(new RegExp(`^nothing to be done: nothing changed since run ${summary(third).runId} .* promote RUN_ID=${summary(third).runId}`, 'm'));
    expect(readdirSync(join(cache, 'runs')).sort()).toEqual(runsBefore);
  });

  it('a changed variable, environment variable, source or declaration is never replayed', async () => {
    ok(await build());
    const variable = ok(await build(['EPOCHS=7']));
    expect(summary(variable).replayedFrom).toBeUndefined();
    expect(built(variable)).toEqual(['area:ak', 'area:al', 'area:az', 'base', 'manifest']);

    const env = ok(await build(['EPOCHS=7'], { REPLAY_TEST_ENV: 'two' }));
    expect(summary(env).replayedFrom).toBeUndefined();
    // Same bytes from base: early cutoff keeps the areas cached.
    expect(built(env)).toEqual(['base']);

    commitChange(repo, 'inputs/base.txt', 'changed\n');
    const source = ok(await build(['EPOCHS=7'], { REPLAY_TEST_ENV: 'two' }));
    expect(summary(source).replayedFrom).toBeUndefined();
    expect(built(source)).toEqual(['area:ak', 'area:al', 'area:az', 'base', 'manifest']);

    writeDeclaration(`${MANIFEST} && echo done >> {run}/manifest.txt`);
    const declaration = ok(await build(['EPOCHS=7'], { REPLAY_TEST_ENV: 'two' }));
    expect(summary(declaration).replayedFrom).toBeUndefined();
    expect(built(declaration)).toEqual(['manifest']);

    const again = ok(await build(['EPOCHS=7'], { REPLAY_TEST_ENV: 'two' }));
    expect(summary(again).replayedFrom).toBe(summary(declaration).runId);

    // Other goals: the run built something else, so it is walked (and finds everything cached).
    const one = ok(await cli(['base', `REPO=${repo}`, 'EPOCHS=7', '--json'], { cache, env: { BUILD_TASKS: tasks, REPLAY_TEST_ENV: 'two' } }));
    expect(summary(one).replayedFrom).toBeUndefined();
    expect(summary(one).cached).toBe(1);
    const after = ok(await build(['EPOCHS=7'], { REPLAY_TEST_ENV: 'two' }));
    expect(summary(after).replayedFrom).toBeUndefined();
    expect(built(after)).toEqual([]);
    // The walk stats the sources against the digest memo; it reads none of them.
    expect(summary(after).filesHashed).toBe(0);
  });

  it('a blob or entry missing from the cache, or a failed run, falls back to the normal walk', async () => {
    writeDeclaration(MANIFEST);
    const base = ok(await build());
    const areaBlob = (meta(base).targets['area:ak'].outputs as Record<string, { digest: string }>)['areas/ak.txt']!.digest;
    rmSync(join(cache, 'cas', areaBlob.slice(0, 2), areaBlob), { force: true });
    const missingBlob = ok(await build());
    expect(summary(missingBlob).replayedFrom).toBeUndefined();
    expect(built(missingBlob)).toEqual(['area:ak']);

    const manifestKey = meta(missingBlob).targets.manifest.key as string;
    rmSync(join(cache, 'actions', manifestKey.slice(0, 2), `${manifestKey}.json`));
    const missingEntry = ok(await build());
    expect(summary(missingEntry).replayedFrom).toBeUndefined();
    expect(built(missingEntry)).toEqual(['manifest']);

    // A run that failed records no inputs key; the next build walks the graph.
    writeDeclaration('exit 3');
    const failed = await build();
    expect(failed.code).toBe(1);
    expect(meta(failed).status).toBe('failed');
    expect(meta(failed).inputsKey).toBeUndefined();
    writeDeclaration(MANIFEST);
    const walked = ok(await build());
    expect(summary(walked).replayedFrom).toBeUndefined();
    expect(built(walked)).toEqual([]);
  });
});

/**
 * The import closure of a target's Python modules is part of its sources, fixed by the SHA once
 * the declared `pythonModules` are: the inputs key covers the declaration, the SHA covers the files.
 */
describe('replay and the Python import closure', () => {
  const PY_DECLARATION = `
export function makePipeline() {
  return {
    defaultGoals: ['py'],
    nodes: [{ kind: 'target', target: { name: 'py', deps: [], sources: [], vars: [], pythonModules: PYTHON_MODULES,
      command: () => ['python3', '-m', 'pkg.run', '{run}/artifacts/out.txt'], outputs: ['artifacts/out.txt'] } }],
  };
}
`;
  let root: string;
  let repo: string;
  let tasks: string;
  let cache: string;
  const declare = (modules: string[]) => writeFileSync(tasks, PY_DECLARATION.replace('PYTHON_MODULES', JSON.stringify(modules)));
  const build = async () => {
    const r = await cli(['pipeline', `REPO=${repo}`, '--json'], { cache, env: { BUILD_TASKS: tasks } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return r;
  };

  beforeAll(() => {
    root = tempDir('replay-python');
    repo = join(root, 'repo');
    tasks = join(root, 'tasks.mjs');
    cache = join(root, 'cache');
    git(root, 'init', '-q', '-b', 'main', repo);
    git(repo, 'config', 'user.email', 'test@example.com');
    git(repo, 'config', 'user.name', 'Test');
    mkdirSync(join(repo, 'pkg'));
    writeFileSync(join(repo, 'pkg', '__init__.py'), '');
    writeFileSync(join(repo, 'pkg', 'run.py'), 'import sys\n\n\ndef main():\n    from pkg import helper\n    open(sys.argv[1], "w").write(helper.TEXT)\n\n\nif __name__ == "__main__":\n    main()\n');
    writeFileSync(join(repo, 'pkg', 'helper.py'), 'TEXT = "one"\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'init');
  });
  afterAll(() => cleanup(root));

  it('declaring pythonModules is a new key, never a replay; an imported file changed by a commit rebuilds', async () => {
    declare([]);
    expect(built(await build())).toEqual(['py']);
    expect(summary(await build()).replayedFrom).toBeDefined();

    declare(['pkg.run']);
    const declared = await build();
    expect(summary(declared).replayedFrom).toBeUndefined();
    // Same bytes out, but the key now hashes pkg/__init__.py, pkg/run.py and pkg/helper.py.
    expect(built(declared)).toEqual(['py']);
    expect(summary(await build()).replayedFrom).toBe(summary(declared).runId);

    commitChange(repo, 'pkg/helper.py', 'TEXT = "two"\n');
    const edited = await build();
    expect(summary(edited).replayedFrom).toBeUndefined();
    expect(built(edited)).toEqual(['py']);
    expect(readFileSync(join(cache, 'runs', summary(edited).runId as string, 'artifacts', 'out.txt'), 'utf8')).toBe('two');
  });
});
