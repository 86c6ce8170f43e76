import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { restoredCaEnv } from './network.ts';

/**
 * Where things live. The project root is the directory holding build.ts: the CLI runs from
 * dist/cli.cjs (the bundle) or src/ (tsx, tests), so it is found by walking up.
 * The cache defaults to `<root>/cache`; BUILD_CACHE_DIR moves it (tests give every case its own).
 * Python environments may be shared between caches with BUILD_ENVS_DIR, since they are keyed by
 * their requirements and interpreter version alone.
 */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'build.ts'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no build.ts above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

export function cacheDir(): string {
  return resolve(process.env.BUILD_CACHE_DIR ?? join(projectRoot(), 'cache'));
}

/** The project version from pyproject.toml (Python) or package.json at the pinned tree. */
export function projectVersion(projectDir: string): string {
  const pyproject = join(projectDir, 'pyproject.toml');
  if (existsSync(pyproject)) {
    const match = /^\s*version\s*=\s*"([^"]+)"/m.exec(readFileSync(pyproject, 'utf8'));
    if (match) return match[1]!;
  }
  const pkg = join(projectDir, 'package.json');
  if (existsSync(pkg)) {
    const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: unknown }).version;
    if (typeof version === 'string') return version;
  }
  return '0.0.0';
}

/**
 * The environment an action sees: enough to find tools and reach package indexes, plus fixed
 * Python settings for reproducible bytes, and unbuffered output so a Python step's log keeps its
 * prints and its traceback in order (the failure shows the log's tail). Declared env (per target)
 * is added on top and hashed.
 */
export function baseActionEnv(): Record<string, string> {
  const env: Record<string, string> = { PYTHONHASHSEED: '0', PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', LC_ALL: 'C.UTF-8' };
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && isMachineEnv(name)) env[name] = value;
  }
  return { ...env, ...restoredCaEnv() };
}

/**
 * Provenance for the run's actions, as the real code reads it: `get_git_provenance`
 * (unified_calibration.py:69-119) asks git in its working directory and falls back to GIT_COMMIT
 * and GIT_BRANCH. The run's tree has no .git, but it lives in the cache, which may sit inside a
 * checkout (this one's `cache/`): GIT_CEILING_DIRECTORIES stops git's search at the run
 * directory, so git finds no repository and the pinned SHA is recorded. Per run, never in a key
 * (the SHA is already in every key through the sources; the branch must not be).
 */
export function provenanceEnv(o: { sha: string; branch: string; runDir: string }): Record<string, string> {
  return { GIT_COMMIT: o.sha, GIT_BRANCH: o.branch, GIT_CEILING_DIRECTORIES: o.runDir };
}

/**
 * The machine's own variables that an action inherits (tools, home, package-index and proxy
 * settings). Remote executors never ship them: the remote machine has its own.
 */
export function isMachineEnv(name: string): boolean {
  return /^(PATH|HOME|TMPDIR|USER|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE)$|^(PIP|UV)_|_PROXY$|_proxy$/.test(name);
}
