import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { detectLayout, makePipeline as makeExamplePipeline, VARIABLES } from '../../tasks/index.ts';
import type { Argv } from './argv.ts';
import type { Settings } from './settings.ts';
import { resolveBuildDb } from './pipeline-publish.ts';
import { prepare, type PipelineDeclaration, type PipelineFactory, type Prepared } from '../prepare.ts';
import type { PublishedDb } from '../publish/published-db.ts';
import { UsageError } from '../report/failures.ts';
import { importModule } from '../util/dynamic-import.ts';

/** A prepared build with BUILD_DB decided, as `build`, `--detach` and `explain` use it. */
export interface PreparedBuild extends Prepared {
  /** BUILD_DB=0: the registered database to download instead of running the ETL. */
  published: PublishedDb | null;
}

/**
 * prepare() with the pipeline declaration, then BUILD_DB: the engine knows neither tasks/ nor
 * publishing, so the CLI brings both (pipeline-publish.ts resolves the registered database).
 * With `preflight` (every build, dry runs included), a real checkout's plan, with the variables
 * the build will use, is then checked against its pinned tree (check-command.ts) before anything
 * runs or is dispatched.
 */
export async function prepareBuild(argv: Argv, goals: string[] | 'default', settings: Settings, o: { preflight?: boolean } = {}): Promise<PreparedBuild> {
  const p = await prepare({ assignments: argv.assignments, goals, declaration: pipelineDeclaration(settings.tasksFile), settings });
  const { vars, published } = await resolveBuildDb(p.vars, settings);
  const prepared = { ...p, vars, published };
  // BUILD_TASKS declarations (benchmarks, tests) are harnesses, not the pipeline: `check` still reads them.
  if (o.preflight && p.layout.profile === 'real' && !settings.tasksFile) (await import('./check-command.ts')).preflight(prepared);
  return prepared;
}

/** tasks/: its variables and layout detection, and its targets (or those of `tasksFile`, BUILD_TASKS). */
export function pipelineDeclaration(tasksFile: string | undefined): PipelineDeclaration {
  return { variables: VARIABLES, detectLayout, loadPipeline: () => pipelineFactory(tasksFile) };
}

/**
 * tasks/ by default. BUILD_TASKS=<file.mjs> loads another pipeline declaration exporting the same
 * `makePipeline(profile, vars?)`: the benchmarks use it for a graph of trivial commands.
 */
export async function pipelineFactory(file: string | undefined): Promise<PipelineFactory> {
  if (!file) return makeExamplePipeline;
  const loaded = await importModule<{ makePipeline?: unknown }>(pathToFileURL(resolve(file)).href);
  if (typeof loaded.makePipeline !== 'function') throw new UsageError('bad-tasks', `BUILD_TASKS=${file} does not export makePipeline(profile)`);
  return loaded.makePipeline as PipelineFactory;
}
