import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pipelineDeclaration } from './pipeline-declaration.ts';
import type { Argv } from './argv.ts';
import type { Settings } from './settings.ts';
import type { Environment } from '../target.ts';
import { resolveBuildDb } from './pipeline-publish.ts';
import { prepare, type Prepared } from '../prepare.ts';
import type { PublishedDb } from '../publish/published-db.ts';
import { planPython, PYTHON_VERSION_VAR } from '../python-env/python-env.ts';

/** A prepared build with BUILD_DB and the Python interpreter decided, as `build`, `--detach` and `explain` use it. */
export interface PreparedBuild extends Prepared {
  /** BUILD_DB=0: the registered database to download instead of running the ETL. */
  published: PublishedDb | null;
  /** The interpreter the pipeline's Python environment is made from (absent when no target builds one). */
  interpreter?: string;
}

/**
 * prepare() with the pipeline declaration, then BUILD_DB: the engine knows neither tasks/ nor
 * publishing, so the CLI brings both (pipeline-publish.ts resolves the registered database).
 * With `preflight` (every build, dry runs included), a real checkout's plan, with the variables
 * the build will use, is then checked against its pinned tree (plan-preflight.ts) before anything
 * runs or is dispatched.
 */
export async function prepareBuild(argv: Argv, goals: string[] | 'default', settings: Settings, o: { preflight?: boolean } = {}): Promise<PreparedBuild> {
  const p = await prepare({ assignments: argv.assignments, goals, declaration: pipelineDeclaration(settings.tasksFile), settings });
  const decided = await resolveBuildDb(p.vars, settings);
  const python = resolvePython({ ...p, vars: decided.vars }, settings.env);
  const prepared = { ...p, vars: python ? { ...decided.vars, [PYTHON_VERSION_VAR]: python.version } : decided.vars, published: decided.published, ...(python ? { interpreter: python.path } : {}) };
  // BUILD_TASKS declarations (benchmarks, tests) are harnesses, not the pipeline: `check` still reads them.
  if (o.preflight && p.layout.profile === 'real' && !settings.tasksFile) (await import('./plan-preflight.ts')).preflight(prepared);
  return prepared;
}

/**
 * When the build selects a Python environment target: the interpreter satisfying the pinned
 * project's requires-python, found on this machine (a UsageError, before any work, when there is none).
 */
function resolvePython(p: Prepared, env: Environment): { path: string; version: string } | null {
  const selected = p.graph.select(p.goals).names;
  const wantsEnv = selected.some((name) => {
    const node = p.graph.get(name);
    return node.kind === 'target' && node.target.environment;
  });
  if (!wantsEnv) return null;
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
