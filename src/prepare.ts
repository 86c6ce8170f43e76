import { mkdir } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cache } from './caching/cache.ts';
import { cacheDir, projectRoot, projectVersion } from './cli/settings.ts';
import { DigestMemo } from './caching/digest-memo.ts';
import { digestBytes } from './caching/hash.ts';
import { UsageError } from './report/failures.ts';
import { currentBranch, dirtySnapshot, materialiseTree, repoRoot, resolveRef, uncommittedPaths, type GitSha } from './git.ts';
import { Graph } from './graph.ts';
import type { Layout, Pipeline, Profile, Vars } from './target.ts';
import { parseVariables, type VarSpec } from './variables.ts';
import { importModule } from './util/dynamic-import.ts';

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
   * Loads the pipeline factory (a pure function of the profile). prepare() calls it once the git
   * questions are asked, so the git processes run while the declaration compiles.
   */
  loadPipeline: () => Promise<(profile: Profile) => Pipeline>;
}

export interface PrepareOptions {
  /** The command line's `VAR=value` words. */
  assignments: string[];
  goals: string[] | 'default';
  declaration: PipelineDeclaration;
}

/** Everything a build needs, validated, with the ref resolved to one SHA. */
export interface Prepared {
  vars: Vars;
  cacheDir: string;
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
  const { goals, declaration } = o;
  const vars = parseVariables(o.assignments, declaration.variables);
  // The four git questions are asked at once, and before the pipeline declaration is loaded, so
  // the git processes run while it compiles (a no-op build waits for them). They only read; the
  // repository check decides which error, if any, is reported.
  const requested = vars.REPO ?? projectRoot();
  const pinned = process.env.BUILD_PINNED_SHA as GitSha | undefined;
  const checkDirty = !pinned && !vars.BRANCH;
  const answers = Promise.allSettled([
    repoRoot(requested),
    vars.BRANCH ?? currentBranch(requested),
    pinned ?? resolveRef(requested, vars.BRANCH ?? 'HEAD'),
    checkDirty ? uncommittedPaths(requested) : [],
  ]);
  const makePipeline = await declaration.loadPipeline();
  // Target names are the same in every profile: check them before touching the cache.
  const example = makePipeline('example');
  const staticGraph = new Graph(example);
  const wanted = goals === 'default' ? example.defaultGoals : goals;
  staticGraph.select(wanted);

  const [repoAnswer, branchAnswer, shaAnswer, changedAnswer] = await answers;
  const repo = settled(repoAnswer);
  const branch = settled(branchAnswer);
  let sha = settled(shaAnswer);
  let dirty = process.env.BUILD_PINNED_DIRTY === '1';
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
  const dir = cacheDir();
  await mkdir(dir, { recursive: true });
  const tree = await materialiseTree(repo, sha, join(dir, 'trees'));
  const layout = declaration.detectLayout(tree);
  // makePipeline is a pure factory: the example profile reuses the graph checked above.
  const pipeline = layout.profile === 'example' ? example : makePipeline(layout.profile);
  const graph = pipeline === example ? staticGraph : new Graph(pipeline);
  const memo = new DigestMemo(join(dir, 'digests.json'));
  await memo.load();
  return {
    vars,
    cacheDir: dir,
    repo,
    branch,
    sha,
    dirty,
    tree,
    layout,
    pipeline,
    graph,
    goals: wanted,
    version: vars.VERSION ?? projectVersion(join(tree, layout.projectDir)),
    memo,
    adaptersDigest: adaptersDigest(adaptersDir()),
  };
}

/** The scheduler options that follow from a prepared build (shared by build, dry run and explain). */
export function schedulerInputs(p: Prepared, cache: Cache) {
  return { graph: p.graph, goals: p.goals, vars: p.vars, cache, memo: p.memo, sourceRoot: join(p.tree, p.layout.projectDir), adaptersDir: adaptersDir(), cacheDir: p.cacheDir };
}

/** This build system's adapter scripts, run by commands as `{adapters}/<file>`. */
function adaptersDir(): string {
  return join(projectRoot(), 'tasks', 'adapters');
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
        // One line, not cp's line per file; a full or read-only disk is the machine's problem (environment-failure.ts).
        const first = copied.stderr.trim().split('\n')[0] ?? '';
        const code = /No space left/.test(first) ? 'ENOSPC' : /Read-only file system/.test(first) ? 'EROFS' : /Permission denied/.test(first) ? 'EACCES' : undefined;
        throw Object.assign(new Error(`could not copy the pinned tree into the run: ${first}`), code ? { code, path: join(dest, 'x') } : {});
      }
      return join(dest, p.layout.projectDir);
    })());
}

