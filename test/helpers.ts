import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

/** The project root (this repository). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = join(ROOT, 'dist', 'cli.mjs');

/** Small sizes: the whole suite must stay within minutes on two cores. */
export const SMALL = ['HOUSEHOLDS=300', 'N_CLONES=2', 'EPOCHS=30', 'NATIONAL_EPOCHS=30'];

/** Python environments are shared by every test cache (keyed by requirements.txt alone). */
export const SHARED_ENVS = join(tmpdir(), 'build-ts-test-envs');

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-`));
}

/** A maker of temporary directories for one test file, all removed after its tests. */
export function scratchDirs(prefix: string): () => string {
  const made: string[] = [];
  afterAll(() => cleanup(...made));
  return () => {
    const dir = tempDir(prefix);
    made.push(dir);
    return dir;
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns something other than undefined or false; throws after `timeoutMs` (generous: CI machines are loaded, and a wait only ever ends early). */
export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export function git(repo: string, ...args: string[]): string {
  return execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).trim();
}

/**
 * A real git repository holding a copy of the built-in example at its root, as a checkout of
 * policyengine-us-data would be laid out; one commit on branch main.
 */
export function exampleRepo(): string {
  const repo = tempDir('example-repo');
  cpSync(join(ROOT, 'examples', 'us-data'), repo, { recursive: true, filter: (src) => !src.includes('__pycache__') });
  git(repo, 'init', '-q', '-b', 'main');
  git(repo, 'config', 'user.email', 'test@example.com');
  git(repo, 'config', 'user.name', 'Test');
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', 'example');
  return repo;
}

/** Appends a line to a file in the repo and commits it. */
export function commitChange(repo: string, file: string, content: string, message = 'change'): void {
  writeFileSync(join(repo, file), content);
  git(repo, 'add', file);
  git(repo, 'commit', '-q', '-m', message);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Parsed NDJSON lines of stdout (with --json). */
  events: Record<string, unknown>[];
}

export function cliEnv(cache: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, CI: 'true', BUILD_CACHE_DIR: cache, BUILD_ENVS_DIR: SHARED_ENVS, ...extra };
}

/** Runs the bundled CLI as a real process. */
export function cli(args: string[], opts: { cache: string; env?: Record<string, string>; cwd?: string }): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? ROOT, env: cliEnv(opts.cache, opts.env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolvePromise({ code, stdout, stderr, events: parseEvents(stdout) }));
  });
}

/** Starts the CLI without waiting, for kill and concurrency tests. */
export function startCli(args: string[], opts: { cache: string; env?: Record<string, string> }): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: cliEnv(opts.cache, opts.env) });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return Object.assign(child, { output: () => out });
}

export function parseEvents(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** target -> outcome, from a --json run. */
export function outcomes(result: CliResult): Map<string, string> {
  const map = new Map<string, string>();
  for (const e of result.events) if (e.event === 'target') map.set(e.target as string, e.outcome as string);
  return map;
}

export function summary(result: CliResult): Record<string, unknown> {
  const s = result.events.find((e) => e.event === 'summary');
  if (!s) throw new Error(`no summary event in output:\n${result.stdout}\n${result.stderr}`);
  return s;
}

export function built(result: CliResult): string[] {
  return [...outcomes(result)].filter(([, o]) => o === 'built').map(([t]) => t).sort();
}

export function cleanup(...dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/**
 * The real policyengine-us-data at e01a0384, as a git bundle beside the project (`shared/fixtures`
 * in a parent directory: CI has it at ../shared; a worktree may sit one level deeper), or null.
 */
export function realFixtureBundle(): string | null {
  for (const up of ['..', '../..']) {
    const bundle = resolve(ROOT, up, 'shared', 'fixtures', 'policyengine-us-data-e01a0384.bundle');
    if (existsSync(bundle)) return bundle;
  }
  return null;
}

/** A fresh clone of the real fixture (a git repository of its own, so tests may commit mutations). */
export function cloneRealFixture(bundle: string): string {
  const repo = join(tempDir('real-fixture'), 'pe');
  execFileSync('git', ['clone', '-q', bundle, repo]);
  git(repo, 'config', 'user.email', 'test@example.com');
  git(repo, 'config', 'user.name', 'Test');
  return repo;
}
