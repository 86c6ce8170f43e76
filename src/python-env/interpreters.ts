import { execFileSync } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync, readSync, closeSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomicSync } from '../util/fs-atomic.ts';
import { parseRelease } from './requires-python.ts';

/**
 * Finding Python interpreters on this machine: on PATH (`python3`, `python3.N`), among pyenv's
 * versions (`<pyenv root>/versions/<v>/bin/python3`) and among uv's managed Pythons
 * (`<uv python dir>/<cpython-3.13.0-...>/bin/python3`). Each candidate's exact version comes from
 * running it once; the answer is memoised by the executable's real path and stat, so a build that
 * finds the same interpreter again runs nothing.
 *
 * pyenv's shims are shell scripts whose answer depends on pyenv's version selection, so a shim is
 * never run or memoised: it stands for the version pyenv would select (PYENV_VERSION, a
 * `.python-version` above the working directory, else `<root>/version`), looked up directly.
 */

/** Where the machine keeps its interpreters, as the CLI reads it from the environment. */
export interface InterpreterSearch {
  /** PATH, split. */
  pathDirs: string[];
  /** pyenv's root (PYENV_ROOT, else ~/.pyenv when it exists). */
  pyenvRoot?: string;
  /** PYENV_VERSION, when set. */
  pyenvVersion?: string;
  /** Where a `.python-version` is looked for (the user's working directory, then its parents). */
  cwd: string;
  /** uv's managed Pythons (UV_PYTHON_INSTALL_DIR, else $XDG_DATA_HOME/uv/python, else ~/.local/share/uv/python). */
  uvPythonDir?: string;
  /** The memo of probed versions (in the cache directory). */
  memoFile: string;
  /** PYTHON=...: the one interpreter to consider (a path, or a command looked up on PATH). */
  explicit?: string;
}

/** One interpreter found, with where it was found (for messages). */
export interface Interpreter {
  /** The executable's real path (symlinks resolved): a venv's python stands for its base interpreter. */
  path: string;
  /** Implementation and exact version, as the environment's key holds it: `cpython-3.13.0`. */
  version: string;
  /** `python3 on PATH`, `pyenv 3.13.0`, `uv cpython-3.13.0-linux-x86_64-gnu`. */
  where: string;
}

interface Candidate {
  path: string;
  where: string;
}

/** The memo: real path -> [size, mtimeMs, ino, version]. */
type Memo = Record<string, [number, number, number, string]>;

const PROBE = "import platform; print(platform.python_implementation().lower() + '-' + platform.python_version())";

/**
 * The interpreters in preference order, each probed only when the caller asks for the next one:
 * PATH first (`python3`, then `python3.N` newest first), then pyenv's versions and uv's Pythons,
 * newest first. A candidate that does not run is skipped.
 */
export function* interpreters(search: InterpreterSearch): Generator<Interpreter> {
  const memo = readMemo(search.memoFile);
  const seen = new Set<string>();
  for (const candidate of candidates(search)) {
    let real: string;
    try {
      real = realpathSync(candidate.path);
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    const st = statSync(real, { throwIfNoEntry: false });
    if (!st?.isFile()) continue;
    const known = memo[real];
    let version = known && known[0] === st.size && known[1] === st.mtimeMs && known[2] === st.ino ? known[3] : null;
    if (!version) {
      version = probe(real);
      if (!version) continue;
      memo[real] = [st.size, st.mtimeMs, st.ino, version];
      saveMemo(search.memoFile, memo);
    }
    yield { path: real, version, where: candidate.where };
  }
}

/** Saved at once (the caller may stop at the first interpreter that fits); a first discovery probes a handful. */
function saveMemo(file: string, memo: Memo): void {
  try {
    writeFileAtomicSync(file, JSON.stringify(memo));
  } catch {
    // Only an optimisation: the next build probes again.
  }
}

function readMemo(file: string): Memo {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Memo) : {};
  } catch {
    return {};
  }
}

/** Runs the interpreter once (isolated from PYTHON* variables); null if it does not answer. */
function probe(path: string): string | null {
  try {
    const out = execFileSync(path, ['-I', '-c', PROBE], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return /^[a-z]+-[0-9]+(\.[0-9]+)*\S*$/.test(out) ? out : null;
  } catch {
    return null;
  }
}

function* candidates(search: InterpreterSearch): Generator<Candidate> {
  if (search.explicit !== undefined) {
    const e = search.explicit;
    const dir = e.includes('/') ? undefined : search.pathDirs.find((d) => isExecutableFile(join(d, e)));
    const path = e.includes('/') ? e : dir ? join(dir, e) : undefined;
    if (path && isShim(path)) for (const c of pyenvSelected(search, basename(path))) yield { path: c, where: `PYTHON=${e} (pyenv shim)` };
    else if (path) yield { path, where: `PYTHON=${e}` };
    return;
  }
  yield* onPath(search);
  if (search.pyenvRoot) {
    for (const v of newestFirst(listDir(join(search.pyenvRoot, 'versions')))) {
      yield { path: join(search.pyenvRoot, 'versions', v, 'bin', 'python3'), where: `pyenv ${v}` };
    }
  }
  if (search.uvPythonDir) {
    const dirs = listDir(search.uvPythonDir).filter((d) => !d.startsWith('.'));
    for (const d of newestFirst(dirs, (name) => name.replace(/^[a-z]+-/, ''))) {
      yield { path: join(search.uvPythonDir, d, 'bin', 'python3'), where: `uv ${d}` };
    }
  }
}

/** `python3`, then every `python3.N` on PATH (newest first), each resolved as a shell would. */
function* onPath(search: InterpreterSearch): Generator<Candidate> {
  yield* onPathNamed(search, 'python3');
  // Listed only when python3 did not do: PATH directories such as /usr/bin are long.
  const minors = new Set<string>();
  for (const dir of search.pathDirs) for (const name of listDir(dir)) if (/^python3\.[0-9]+$/.test(name)) minors.add(name);
  for (const name of newestFirst([...minors], (n) => n.slice('python'.length))) yield* onPathNamed(search, name);
}

function* onPathNamed(search: InterpreterSearch, name: string): Generator<Candidate> {
  const dir = search.pathDirs.find((d) => isExecutableFile(join(d, name)));
  if (!dir) return;
  const file = join(dir, name);
  if (isShim(file)) {
    for (const c of pyenvSelected(search, name)) yield { path: c, where: `${name} on PATH (pyenv shim)` };
  } else {
    yield { path: file, where: `${name} on PATH` };
  }
}

/** A pyenv shim: a script in a `shims` directory (it would run `pyenv exec`). */
function isShim(file: string): boolean {
  if (basename(dirname(file)) !== 'shims') return false;
  try {
    const fd = openSync(file, 'r');
    const head = Buffer.alloc(2);
    readSync(fd, head, 0, 2, 0);
    closeSync(fd);
    return head.toString() === '#!';
  } catch {
    return false;
  }
}

/** The executables a pyenv shim named `name` would run: pyenv's selected versions, in order. */
function pyenvSelected(search: InterpreterSearch, name: string): string[] {
  if (!search.pyenvRoot) return [];
  const selected = search.pyenvVersion?.split(':') ?? versionFile(search.cwd) ?? versionLines(join(search.pyenvRoot, 'version')) ?? [];
  return selected.filter((v) => v && v !== 'system').map((v) => join(search.pyenvRoot!, 'versions', v, 'bin', name)).filter(existsSync);
}

function versionFile(cwd: string): string[] | null {
  for (let dir = cwd; ; dir = dirname(dir)) {
    const lines = versionLines(join(dir, '.python-version'));
    if (lines) return lines;
    if (dirname(dir) === dir) return null;
  }
}

function versionLines(file: string): string[] | null {
  try {
    return readFileSync(file, 'utf8').split(/\s+/).filter((l) => l && !l.startsWith('#'));
  } catch {
    return null;
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function isExecutableFile(file: string): boolean {
  try {
    const st = statSync(file);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Names sorted by the version they carry, newest first (names without one last). */
function newestFirst(names: string[], version: (name: string) => string = (n) => n): string[] {
  const key = (n: string) => parseRelease(version(n)) ?? [];
  return [...names].sort((a, b) => {
    const x = key(a);
    const y = key(b);
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      const d = (y[i] ?? -1) - (x[i] ?? -1);
      if (d !== 0) return d;
    }
    return a < b ? -1 : a > b ? 1 : 0;
  });
}
