import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { detectLayout, makePipeline as makeExamplePipeline, VARIABLES } from '../../tasks/index.ts';
import type { Argv } from './argv.ts';
import { resolveBuildDb } from './pipeline-publish.ts';
import { prepare, type PipelineDeclaration, type Prepared } from '../prepare.ts';
import type { PublishedDb } from '../publish/published-db.ts';
import { UsageError } from '../report/failures.ts';
import type { Pipeline, Profile } from '../target.ts';
import { importModule } from '../util/dynamic-import.ts';
import { planPython, PYTHON_VERSION_VAR } from '../python-env/python-env.ts';

/** A prepared build with BUILD_DB and the Python interpreter decided, as `build`, `--detach` and `explain` use it. */
export interface PreparedBuild extends Prepared {
  /** BUILD_DB=0: the registered database to download instead of running the ETL. */
  published: PublishedDb | null;
  /** The interpreter the pipeline's Python environment is made from (absent when no target builds one). */
  interpreter?: string;
}

/**
 * prepare() with the pipeline declaration, then BUILD_DB and the Python interpreter: the engine
 * knows neither tasks/ nor publishing nor this machine's environment, so the CLI brings them
 * (pipeline-publish.ts resolves the registered database, python-env/ the interpreter).
 */
export async function prepareBuild(argv: Argv, goals: string[] | 'default'): Promise<PreparedBuild> {
  const p = await prepare({ assignments: argv.assignments, goals, declaration: pipelineDeclaration() });
  const decided = await resolveBuildDb(p.vars, p.layout.profile);
  const python = resolvePython({ ...p, vars: decided.vars });
  return { ...p, vars: python ? { ...decided.vars, [PYTHON_VERSION_VAR]: python.version } : decided.vars, published: decided.published, ...(python ? { interpreter: python.path } : {}) };
}

/**
 * When the build selects a Python environment target: the interpreter satisfying the pinned
 * project's requires-python, found on this machine (a UsageError, before any work, when there is none).
 */
function resolvePython(p: Prepared): { path: string; version: string } | null {
  const selected = p.graph.select(p.goals).names;
  const wantsEnv = selected.some((name) => {
    const node = p.graph.get(name);
    return node.kind === 'target' && node.target.environment;
  });
  if (!wantsEnv) return null;
  const env = process.env;
  const home = env.HOME ?? homedir();
  const pyenvRoot = env.PYENV_ROOT ?? (existsSync(join(home, '.pyenv')) ? join(home, '.pyenv') : undefined);
  const plan = planPython({
    projectDir: join(p.tree, p.layout.projectDir),
    substitute: p.vars.PY_SUBSTITUTE,
    search: {
      pathDirs: (env.PATH ?? '').split(':').filter(Boolean),
      ...(pyenvRoot ? { pyenvRoot } : {}),
      ...(env.PYENV_VERSION ? { pyenvVersion: env.PYENV_VERSION } : {}),
      cwd: process.cwd(),
      uvPythonDir: env.UV_PYTHON_INSTALL_DIR ?? join(env.XDG_DATA_HOME ?? join(home, '.local', 'share'), 'uv', 'python'),
      memoFile: join(p.cacheDir, 'interpreters.json'),
      ...(p.vars.PYTHON ? { explicit: p.vars.PYTHON } : {}),
    },
  });
  return plan.interpreter;
}

/** tasks/: its variables and layout detection, and its targets (or BUILD_TASKS's). */
export function pipelineDeclaration(): PipelineDeclaration {
  return { variables: VARIABLES, detectLayout, loadPipeline: pipelineFactory };
}

/**
 * tasks/ by default. BUILD_TASKS=<file.mjs> loads another pipeline declaration exporting the same
 * `makePipeline(profile)`: the benchmarks use it for a graph of trivial commands.
 */
export async function pipelineFactory(): Promise<(profile: Profile) => Pipeline> {
  const file = process.env.BUILD_TASKS;
  if (!file) return makeExamplePipeline;
  const loaded = await importModule<{ makePipeline?: unknown }>(pathToFileURL(resolve(file)).href);
  if (typeof loaded.makePipeline !== 'function') throw new UsageError('bad-tasks', `BUILD_TASKS=${file} does not export makePipeline(profile)`);
  return loaded.makePipeline as (profile: Profile) => Pipeline;
}
