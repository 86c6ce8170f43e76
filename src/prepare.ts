import { mkdir, rm } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cache } from './caching/cache.ts';
import { DigestMemo } from './caching/digest-memo.ts';
import { digestBytes } from './caching/hash.ts';
import { UsageError } from './report/failures.ts';
import { currentBranch, dirtySnapshot, materialiseTree, repoRoot, resolveRef, uncommittedPaths, type GitSha } from './git.ts';
import { Graph } from './graph.ts';
import type { Environment, Layout, Pipeline, Profile, Vars } from './target.ts';
import { parseVariables, type VarSpec } from './variables.ts';
import { importModule } from './util/dynamic-import.ts';
import { loadPythonIndex, type PythonIndex } from './python/python-index.ts';
import { toolDiskError } from './util/tool-disk-error.ts';

/** What tasks/ (or BUILD_TASKS) exports as `makePipeline`. */
export type PipelineFactory = (profile: Profile, vars?: Vars) => Pipeline;

/**
 * What the CLI hands the engine from the pipeline declaration (tasks/, or BUILD_TASKS): the
 * engine imports none of it itself.
 */
export interface PipelineDeclaration {
  /** The variables the command line may set. */
  variables: VarSpec[];
  /** Which profile a pinned tree holds, and where its project lives. */
  detectLayout: (tree: string) => Layout;
  /**
   * Loads the pipeline factory (a pure function of the profile and the build's variables, which
   * may shape dependencies and default goals: BUILD_DB=0 takes the database without its ETL
   * chain). prepare() calls it once the git questions are asked, so the git processes run while
   * the declaration compiles. Without variables it declares the defaults (`graph`).
   */
  loadPipeline: () => Promise<PipelineFactory>;
}

/** What the build takes from the CLI's settings (cli/settings.ts), which read the environment once. */
export interface BuildSettings {
  /** This build system's directory: the default REPO, and tasks/adapters/. */
  root: string;
  cacheDir: string;
  /** Where Python environments are built (BUILD_ENVS_DIR). */
  envsDir: string;
  /** Set by `--detach` for its background child: build this SHA, dirty or not, without asking git. */
  pinned: { sha?: GitSha; dirty: boolean };
  /** Whether large files may be hashed in worker threads (not BUILD_HASH_WORKERS=0). */
  hashWorkers: boolean;
  /** The environment the targets' declared variables (Target.env) are read from. */
  env: Environment;
}

export interface PrepareOptions {
  /** The command line's `VAR=value` words. */
  assignments: string[];
  goals: string[] | 'default';
  declaration: PipelineDeclaration;
  settings: BuildSettings;
}

/** Everything a build needs, validated, with the ref resolved to one SHA. */
export interface Prepared {
  vars: Vars;
  cacheDir: string;
  envsDir: string;
  /** This build system's directory (tasks/adapters/ is under it). */
  root: string;
  /** The environment the targets' declared variables are read from. */
  env: Environment;
  repo: string;
  branch: string;
  sha: GitSha;
  dirty: boolean;
  /** The shared pinned tree at `sha` (read-only by convention; hashed, never executed in). */
  tree: string;
  layout: Layout;
  pipeline: Pipeline;
  graph: Graph;
  goals: string[];
  version: string;
  memo: DigestMemo;
  /**
   * A digest of this build system's adapter scripts (tasks/adapters/): they are not part of the
   * pinned SHA, so a replay compares them too (action keys hash each adapter a command names).
   */
  adaptersDigest: string;
}

/**
 * Validates the command line, then pins the SHA. Bad input fails here, before anything is
 * written: variables, target names and the ref are checked first.
 */
export async function prepare(o: PrepareOptions): Promise<Prepared> {
  const { goals, declaration, settings } = o;
  const vars = parseVariables(o.assignments, declaration.variables);
  // The four git questions are asked at once, and before the pipeline declaration is loaded, so
  // the git processes run while it compiles (a no-op build waits for them). They only read; the
  // repository check decides which error, if any, is reported.
  const requested = vars.REPO ?? settings.root;
  const pinned = settings.pinned.sha;
  const checkDirty = !pinned && !vars.BRANCH;
  const answers = Promise.allSettled([
    repoRoot(requested),
    vars.BRANCH ?? currentBranch(requested),
    pinned ?? resolveRef(requested, vars.BRANCH ?? 'HEAD'),
    checkDirty ? uncommittedPaths(requested) : [],
  ]);
  const makePipeline = await declaration.loadPipeline();
  // Target names are the same in every profile: check them before touching the cache.
  const example = makePipeline('example', vars);
  const staticGraph = new Graph(example);
  const wanted = goals === 'default' ? example.defaultGoals : goals;
  staticGraph.select(wanted);

  const [repoAnswer, branchAnswer, shaAnswer, changedAnswer] = await answers;
  const repo = settled(repoAnswer);
  const branch = settled(branchAnswer);
  let sha = settled(shaAnswer);
  let dirty = settings.pinned.dirty;
  if (checkDirty) {
    const changed = settled(changedAnswer);
    if (changed.length > 0) {
      if (vars.ALLOW_DIRTY !== '1') {
        const shown = changed.slice(0, 3).join(', ') + (changed.length > 3 ? ` and ${changed.length - 3} more` : '');
        throw new UsageError('dirty-tree', `${repo} has uncommitted changes (${shown}); commit them, or pass ALLOW_DIRTY=1 to build them as a dirty run`);
      }
      sha = (await dirtySnapshot(repo)) ?? sha;
      dirty = true;
    }
  }
  const dir = settings.cacheDir;
  await mkdir(dir, { recursive: true });
  const tree = await materialiseTree(repo, sha, join(dir, 'trees'));
  const layout = declaration.detectLayout(tree);
  // Defaults can differ by profile (a real checkout: 430 clones, 1000 epochs); the words were valid above.
  const profileVars = parseVariables(o.assignments, declaration.variables, layout.profile);
  // makePipeline is a pure factory: the example profile reuses the graph checked above.
  const pipeline = layout.profile === 'example' ? example : makePipeline(layout.profile, vars);
  const graph = pipeline === example ? staticGraph : new Graph(pipeline);
  const memo = new DigestMemo(join(dir, 'digests.json'), { workers: settings.hashWorkers });
  await memo.load();
  return {
    vars: profileVars,
    cacheDir: dir,
    envsDir: settings.envsDir,
    root: settings.root,
    env: settings.env,
    repo,
    branch,
    sha,
    dirty,
    tree,
    layout,
    pipeline,
    graph,
    goals: wanted,
    version: profileVars.VERSION ?? projectVersion(join(tree, layout.projectDir)),
    memo,
    adaptersDigest: adaptersDigest(adaptersDir(settings.root)),
  };
}

/** The scheduler options that follow from a prepared build (shared by build, dry run and explain). */
export function schedulerInputs(p: Prepared & { interpreter?: string }, cache: Cache) {
  return {
    graph: p.graph, goals: p.goals, vars: p.vars, cache, memo: p.memo, sourceRoot: join(p.tree, p.layout.projectDir), adaptersDir: adaptersDir(p.root),
    cacheDir: p.cacheDir, envsDir: p.envsDir, env: p.env, pythonIndex: lazyPythonIndex(p),
    hdf5DigestScript: join(p.root, 'src', 'python-env', 'hdf5_digest.py'),
    ...(p.interpreter ? { interpreter: p.interpreter } : {}),
  };
}

/**
 * The pinned tree's Python index, read on first use (a replay never needs it) and memoised
 * beside the tree, as `cache/trees/<sha>.python-index.json`: the tree at a SHA never changes.
 */
export function lazyPythonIndex(p: Prepared): () => PythonIndex {
  let index: PythonIndex | undefined;
  return () =>
    (index ??= loadPythonIndex({
      projectDir: join(p.tree, p.layout.projectDir),
      memoFile: join(p.cacheDir, 'trees', `${p.sha}.python-index.json`),
      adaptersDir: adaptersDir(p.root),
    }).index);
}

/** This build system's adapter scripts, run by commands as `{adapters}/<file>`. */
export function adaptersDir(root: string): string {
  return join(root, 'tasks', 'adapters');
}

/** The project version from pyproject.toml (Python) or package.json at the pinned tree. */
function projectVersion(projectDir: string): string {
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

/** Names and bytes of every adapter file, in one digest (a handful of small files: read each start). */
function adaptersDigest(dir: string): string {
  if (!existsSync(dir)) return digestBytes('no adapters');
  const files = readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.parentPath.includes('__pycache__'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
  return digestBytes(files.map((f) => `${f.slice(dir.length)}\0${digestBytes(readFileSync(f))}`).join('\n'));
}

/** The value of a settled promise, or its error thrown (usage errors first reach the CLI). */
function settled<T>(answer: PromiseSettledResult<T>): T {
  if (answer.status === 'rejected') throw answer.reason;
  return answer.value;
}

/**
 * Copies the pinned tree into the run on first use: actions may write in their tree, never in the
 * shared one. `cp -R` (through zx): Node's fs.cp took ~280 ms for the benchmark's 507 files,
 * coreutils ~50 ms, and every run that executes anything pays it before its first action.
 */
export function lazyRunTree(p: Prepared, runDir: string): () => Promise<string> {
  let ready: Promise<string> | undefined;
  return () =>
    (ready ??= (async () => {
      const dest = join(runDir, 'tree');
      const { $ } = await importModule<typeof import('zx/core')>('zx/core');
      const copied = await $({ quiet: true, nothrow: true })`cp -R ${p.tree} ${dest}`;
      if (copied.exitCode !== 0) {
        // The partial copy goes: on a full disk it holds the space the run's failed record needs.
        await rm(dest, { recursive: true, force: true }).catch(() => undefined);
        throw toolDiskError('could not copy the pinned tree into the run', copied.stderr, dest);
      }
      return join(dest, p.layout.projectDir);
    })());
}

