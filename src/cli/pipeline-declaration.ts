import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { detectLayout, makePipeline as makeExamplePipeline, VARIABLES } from '../../tasks/index.ts';
import type { PipelineDeclaration, PipelineFactory } from '../prepare.ts';
import { UsageError } from '../report/failures.ts';
import { importModule } from '../util/dynamic-import.ts';

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
