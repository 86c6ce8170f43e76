import { parseVariables } from '../variables.ts';
import { VARIABLES } from '../../tasks/index.ts';
import { UsageError, type UsageReason } from '../report/failures.ts';
import { checkRunId } from '../run.ts';
import { openPublishStores, publishConfig } from '../publish/config.ts';
import type { CommandContext } from './command.ts';
import { mirroredRun } from './run-source.ts';

/** `report` and `diff` (src/review/): argv and the environment read here, the work done there. */
export async function reviewCommand(name: 'report' | 'diff', { words, argv, settings, logger }: CommandContext): Promise<number> {
  if (words.length) throw new UsageError('unexpected-argument', `${name} takes no argument '${words[0]}'; pass RUN_ID=<run id> [AGAINST=<version or run id>]`);
  const vars = parseVariables(argv.assignments, VARIABLES);
  if (!vars.RUN_ID) throw new UsageError('missing-run-id', `${name} needs RUN_ID=<run id>; list runs with ./build.ts status`);
  const runId = checkRunId(vars.RUN_ID);
  const stores = await openPublishStores(publishConfig(vars, settings.publish, settings.cacheDir), { action: `${name} of run ${runId}`, write: false }, { env: settings.publish });
  // A run another machine made (on the Modal volume) is read from its local mirror.
  const source = await mirroredRun(runId, settings);
  const options = { cacheDir: source.cacheDir, runId, stores, threshold: Number(vars.WORSE_BY) / 100, ...(vars.AGAINST && { against: vars.AGAINST }) };
  const refused = (failure: { reason: string; message: string }): number => {
    if (failure.reason === 'run-not-found' || failure.reason === 'unknown-version') throw new UsageError(failure.reason as UsageReason, failure.message);
    process.stderr.write(`error: ${name} failed (${failure.reason}): ${failure.message}\n`);
    return 1;
  };
  if (name === 'diff') {
    const result = await (await import('../review/diff.ts')).diffRun(options);
    if (!result.ok) return refused(result.failure);
    const { base, threshold, fits, files, notes } = result.value.numbers;
    if (argv.flags.json) logger.emit({ event: 'diff', runId, against: base, threshold, fits: fits as unknown as Record<string, unknown>[], files: files as unknown as Record<string, unknown>, notes });
    else process.stdout.write(`${result.value.lines.join('\n')}\n`);
    return 0;
  }
  const result = await (await import('../review/report.ts')).writeReport(options);
  if (!result.ok) return refused(result.failure);
  const { path, bytes } = result.value;
  if (argv.flags.json) logger.emit({ event: 'report', runId, path, bytes });
  else process.stdout.write(`review page of run ${runId}: ${path} (${(bytes / 1000).toFixed(0)} kB)\n`);
  return 0;
}
