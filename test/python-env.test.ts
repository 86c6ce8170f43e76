import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { interpreters, type InterpreterSearch } from '../src/python-env/interpreters.ts';
import { planPython } from '../src/python-env/python-env.ts';
import { parseSpecifiers, satisfies } from '../src/python-env/requires-python.ts';
import { cli, exampleRepo, git, scratchDirs, SHARED_ENVS, summary } from './helpers.ts';

/**
 * The pipeline's Python environment: the interpreter found for the pinned project's
 * requires-python (on PATH, among pyenv's versions, among uv's), its exact version in the
 * environment's key, a missing interpreter or an unserved pin reported in one line, explicit
 * substitutions. Real interpreters of this machine, real pip installs.
 */
const scratch = scratchDirs('python-env');

const spec = (text: string) => {
  const parsed = parseSpecifiers(text, 'pyproject.toml');
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
};

describe('requires-python', () => {
  it('reads PEP 440 specifier sets as the packaging tools do', () => {
    const cases: [string, string, boolean][] = [
      ['>=3.12, <3.15', '3.13.0', true],
      ['>=3.12, <3.15', '3.11.7', false],
      ['>=3.12, <3.15', '3.15.0', false],
      ['~=3.11', '3.13.1', true],
      ['~=3.11', '4.0.0', false],
      ['~=3.11.2', '3.11.9', true],
      ['~=3.11.2', '3.12.0', false],
      ['==3.13.*', '3.13.4', true],
      ['==3.13.*', '3.12.4', false],
      ['!=3.12.0, >=3.12', '3.12.0', false],
      ['!=3.12.0, >=3.12', '3.12.1', true],
      ['>3.11', '3.11.0', false],
      ['<=3.12', '3.12.0', true],
    ];
    for (const [text, version, expected] of cases) expect(satisfies(version, spec(text)), `${version} ${text}`).toBe(expected);
    expect(parseSpecifiers('>=3.12; python', 'pyproject.toml')).toMatch(/is not a PEP 440 version specifier/);
  });
});

/** This machine's pyenv interpreters by minor version (`3.12` -> .../versions/3.12.1/bin/python3.12). */
function pyenvInterpreters(): Map<string, string> {
  const root = process.env.PYENV_ROOT ?? join(homedir(), '.pyenv');
  const found = new Map<string, string>();
  for (const v of existsSync(join(root, 'versions')) ? readdirSync(join(root, 'versions')) : []) {
    const minor = /^(3\.\d+)\.\d+$/.exec(v)?.[1];
    const exe = minor && join(root, 'versions', v, 'bin', `python${minor}`);
    if (exe && existsSync(exe)) found.set(minor, exe);
  }
  return found;
}

const machine = pyenvInterpreters();
const haveThree = ['3.11', '3.12', '3.13'].every((m) => machine.has(m));
if (!haveThree) console.warn('python-env discovery tests skipped: they need pyenv Pythons 3.11, 3.12 and 3.13 (this machine image has them)');

/** A fake machine: PATH dirs, a pyenv root and a uv dir, whose entries link to real interpreters. */
function fakeMachine(): { search: (o?: Partial<InterpreterSearch>) => InterpreterSearch; dir: string } {
  const dir = scratch();
  const link = (target: string, path: string) => {
    mkdirSync(join(path, '..'), { recursive: true });
    symlinkSync(target, path);
  };
  link(machine.get('3.11')!, join(dir, 'bin', 'python3'));
  link(machine.get('3.12')!, join(dir, 'bin', 'python3.12'));
  link(machine.get('3.13')!, join(dir, 'pyenv', 'versions', '3.13.0', 'bin', 'python3'));
  link(machine.get('3.12')!, join(dir, 'uv', 'cpython-3.12.1-linux-x86_64-gnu', 'bin', 'python3'));
  // A pyenv shim: a script that must never be run (it would fail).
  mkdirSync(join(dir, 'pyenv', 'shims'));
  writeFileSync(join(dir, 'pyenv', 'shims', 'python3'), '#!/bin/sh\necho shim-was-run >&2\nexit 99\n');
  chmodSync(join(dir, 'pyenv', 'shims', 'python3'), 0o755);
  return {
    dir,
    search: (o = {}) => ({ pathDirs: [join(dir, 'bin')], pyenvRoot: join(dir, 'pyenv'), cwd: dir, uvPythonDir: join(dir, 'uv'), memoFile: join(dir, 'memo.json'), ...o }),
  };
}

const project = (requires: string | null) => {
  const dir = scratch();
  writeFileSync(join(dir, 'pyproject.toml'), `[project]\nname = "x"\nversion = "1.0.0"\n${requires === null ? '' : `requires-python = "${requires}"\n`}`);
  writeFileSync(join(dir, 'requirements.txt'), 'numpy==2.2.6\n');
  return dir;
};

describe.skipIf(!haveThree)('interpreter discovery', () => {
  it('takes the first interpreter satisfying requires-python: PATH (python3, then python3.N), pyenv, uv', () => {
    const m = fakeMachine();
    const pick = (requires: string | null, o: Partial<InterpreterSearch> = {}) => planPython({ projectDir: project(requires), search: m.search(o) }).interpreter;
    expect(pick(null)).toMatchObject({ version: expect.stringMatching(/^cpython-3\.11\./), where: 'python3 on PATH' });
    expect(pick('>=3.12')).toMatchObject({ version: expect.stringMatching(/^cpython-3\.12\./), where: 'python3.12 on PATH' });
    expect(pick('>=3.13, <3.15')).toMatchObject({ version: expect.stringMatching(/^cpython-3\.13\./), where: 'pyenv 3.13.0', path: realpathSync(machine.get('3.13')!) });
    expect(pick('>=3.12', { pathDirs: [], pyenvRoot: join(m.dir, 'none') })).toMatchObject({ where: 'uv cpython-3.12.1-linux-x86_64-gnu' });
  });

  it('a pyenv shim stands for the version pyenv selects, and is never run', () => {
    const m = fakeMachine();
    const found = [...interpreters(m.search({ pathDirs: [join(m.dir, 'pyenv', 'shims')], pyenvVersion: '3.13.0', uvPythonDir: join(m.dir, 'none') }))];
    expect(found[0]).toMatchObject({ where: 'python3 on PATH (pyenv shim)', version: expect.stringMatching(/^cpython-3\.13\./) });
    writeFileSync(join(m.dir, '.python-version'), '3.13.0\n');
    const viaFile = [...interpreters(m.search({ pathDirs: [join(m.dir, 'pyenv', 'shims')], uvPythonDir: join(m.dir, 'none') }))];
    expect(viaFile[0]?.where).toBe('python3 on PATH (pyenv shim)');
  });

  it('remembers each probed version by the executable and its stat', () => {
    // An "interpreter" that answers like one and counts how often it is run.
    const dir = scratch();
    const exe = join(dir, 'bin', 'python3');
    mkdirSync(join(dir, 'bin'));
    writeFileSync(exe, `#!/bin/sh\necho run >> ${join(dir, 'runs.txt')}\necho cpython-3.14.2\n`);
    chmodSync(exe, 0o755);
    const search: InterpreterSearch = { pathDirs: [join(dir, 'bin')], cwd: dir, memoFile: join(dir, 'memo.json') };
    const runs = () => readFileSync(join(dir, 'runs.txt'), 'utf8').split('\n').filter(Boolean).length;
    expect(interpreters(search).next().value).toMatchObject({ path: exe, version: 'cpython-3.14.2' });
    expect(interpreters(search).next().value).toMatchObject({ version: 'cpython-3.14.2' });
    expect(runs()).toBe(1);
    utimesSync(exe, new Date(), new Date(Date.now() + 5000));
    interpreters(search).next();
    expect(runs()).toBe(2);
  });

  it('none satisfying: one line naming what is needed, what was found and how to get it', () => {
    const m = fakeMachine();
    expect(() => planPython({ projectDir: project('>=3.99'), search: m.search() })).toThrow(
      /^no Python interpreter satisfies requires-python ">=3.99" \(pyproject.toml\): looked on PATH, in pyenv's versions and in uv's Pythons and found only 3\.11\.\d+ \(python3 on PATH\), 3\.12\.\d+ \(python3.12 on PATH\), 3\.13\.\d+ \(pyenv 3.13.0\); install one \(pyenv install 3, or uv python install 3\) or pass PYTHON=\/path\/to\/python3$/,
    );
    expect(() => planPython({ projectDir: project('>=3.12'), search: m.search({ explicit: join(m.dir, 'bin', 'python3') }) })).toThrow(
      /^PYTHON=.*\/bin\/python3 is cpython-3\.11\.\d+, which does not satisfy requires-python ">=3.12" \(pyproject.toml\); pass one that does, or unset PYTHON$/,
    );
  });
});

/** A git repository laid out as a real checkout (no example marker) requiring a Python no machine has. */
function realLayoutRepo(requires: string): string {
  const repo = scratch();
  writeFileSync(join(repo, 'pyproject.toml'), `[project]\nname = "policyengine-us-data"\nversion = "1.73.0"\nrequires-python = "${requires}"\n`);
  writeFileSync(join(repo, 'uv.lock'), 'version = 1\n\n[[package]]\nname = "numpy"\nversion = "2.4.3"\n');
  git(repo, 'init', '-q', '-b', 'main');
  git(repo, 'add', '-A');
  git(repo, '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '-m', 'real layout');
  return repo;
}

describe('python-env through the CLI', () => {
  it('no interpreter satisfies requires-python: exit 2 before any work, one line', async () => {
    const cache = join(scratch(), 'cache');
    const r = await cli(['python-env', `REPO=${realLayoutRepo('>=3.99')}`, 'BUILD_DB=1'], { cache });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no Python interpreter satisfies requires-python ">=3.99" \(pyproject.toml\): looked on PATH/);
    expect(existsSync(join(cache, 'runs'))).toBe(false);
  });

  it('a substitution of a package the lock does not pin: exit 2, one line', async () => {
    const cache = join(scratch(), 'cache');
    const r = await cli(['python-env', `REPO=${realLayoutRepo('>=3.8')}`, 'BUILD_DB=1', 'PY_SUBSTITUTE=nunpy==2.4.4'], { cache });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('error: PY_SUBSTITUTE names nunpy, which uv.lock does not pin; substitute only packages the lock pins (check the spelling)');
  });

  it('an unserved pin fails in one line naming it; an explicit substitution installs, is keyed and recorded; another interpreter is another env', async () => {
    const repo = exampleRepo();
    writeFileSync(join(repo, 'requirements.txt'), 'numpy==0.0.999\n');
    git(repo, 'commit', '-q', '-am', 'a pin no index serves');
    const cache = join(scratch(), 'cache');
    // Shared with later test runs: the substituted environment's key is the same each time.
    const envs = SHARED_ENVS;
    const build = (...words: string[]) => cli(['python-env', `REPO=${repo}`, '--json', ...words], { cache });

    const unserved = await build();
    expect(unserved.code).toBe(1);
    const failed = unserved.events.find((e) => e.event === 'target' && e.target === 'python-env')!;
    expect(failed.reason).toBe('unserved-pin');
    expect(failed.error).toMatch(
      /^python-env: the package index does not serve numpy==0\.0\.999, which the lock pins; substitute a served version explicitly with PY_SUBSTITUTE="numpy==<served version>" \(recorded in the environment's key and the run's meta.json\); full log: \S+$/,
    );

    const substituted = await build('PY_SUBSTITUTE=numpy==2.2.6');
    expect(substituted.code, substituted.stdout + substituted.stderr).toBe(0);
    const key = substituted.events.find((e) => e.event === 'target' && e.target === 'python-env')!.key as string;
    expect(readFileSync(join(envs, key, 'requirements.lock.txt'), 'utf8')).toBe('numpy==2.2.6\n');
    expect(execFileSync(join(envs, key, 'bin', 'python'), ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' }).trim()).toBe('2.2.6');
    const meta = JSON.parse(readFileSync(join(cache, 'runs', summary(substituted).runId as string, 'meta.json'), 'utf8')) as { variables: Record<string, string> };
    expect(meta.variables.PY_SUBSTITUTE).toBe('numpy==2.2.6');
    expect(meta.variables.PYTHON_VERSION).toMatch(/^cpython-3\.\d+\.\d+$/);

    // The same build again changes nothing: no new run, the substituted one is named as identical.
    const again = summary(await build('PY_SUBSTITUTE=numpy==2.2.6'));
    expect([again.status, again.replayedFrom]).toEqual(['unchanged', summary(substituted).runId]);
    // The interpreter's version is in the key: another interpreter would build another environment.
    const other = [...machine].find(([minor]) => Number(minor.split('.')[1]) >= 11 && !meta.variables.PYTHON_VERSION!.startsWith(`cpython-${minor}.`))?.[1];
    if (other) {
      const plan = await build('PY_SUBSTITUTE=numpy==2.2.6', `PYTHON=${other}`, '-n');
      const why = plan.events.find((e) => e.event === 'plan' && e.target === 'python-env')?.why;
      expect(why).toMatch(new RegExp(`^var PYTHON_VERSION: ${meta.variables.PYTHON_VERSION!.replaceAll('.', '\\.')} -> cpython-3\\.\\d+\\.\\d+$`));
    }
  });
});
