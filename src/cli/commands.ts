import type { Argv } from './argv.ts';
import type { Logger } from '../report/logger.ts';

/** Commands other than building, each in its own module, loaded on demand. */
export async function runCommand(name: string, words: string[], argv: Argv, logger: Logger): Promise<number> {
  switch (name) {
    case 'status':
      return (await import('./status-command.ts')).statusCommand(argv);
    case 'logs':
      return (await import('./logs-command.ts')).logsCommand(argv);
    case 'explain':
      return (await import('./explain-command.ts')).explainCommand(words, argv);
    case 'graph':
      return (await import('./graph-command.ts')).graphCommand(argv);
    case 'cache':
      return (await import('./cache-command.ts')).cacheCommand(words, argv);
    case 'vars':
      return (await import('./vars-command.ts')).varsCommand();
    case 'report':
    case 'diff':
      return reviewCommand(name, words, argv);
    default:
      return (await import('./publish-commands.ts')).publishCommand(name, words, argv, logger);
  }
}

/** `report` and `diff` (src/review/): argv and the environment read here, the work done there. */
async function reviewCommand(name: 'report' | 'diff', words: string[], argv: Argv): Promise<number> {
  const { UsageError } = await import('../report/failures.ts');
  const { parseVariables } = await import('../variables.ts');
  const { VARIABLES } = await import('../../tasks/index.ts');
  const { cacheDir } = await import('./settings.ts');
  const { checkRunId } = await import('../run.ts');
  const { openPublishStores, publishConfig } = await import('../publish/config.ts');
  if (words.length) throw new UsageError('unexpected-argument', `${name} takes no argument '${words[0]}'; pass RUN_ID=<run id> [AGAINST=<version or run id>]`);
  const vars = parseVariables(argv.assignments, VARIABLES);
  if (!vars.RUN_ID) throw new UsageError('missing-run-id', `${name} needs RUN_ID=<run id>; list runs with ./build.ts status`);
  const runId = checkRunId(vars.RUN_ID);
  const stores = await openPublishStores(publishConfig(vars, process.env, cacheDir()), { action: `${name} of run ${runId}`, write: false });
  const options = { cacheDir: cacheDir(), runId, stores, threshold: Number(vars.WORSE_BY) / 100, ...(vars.AGAINST && { against: vars.AGAINST }) };
  const refused = (failure: { reason: string; message: string }): number => {
    if (['run-not-found', 'unknown-version'].includes(failure.reason)) throw new UsageError(failure.reason, failure.message);
    process.stderr.write(`error: ${name} failed (${failure.reason}): ${failure.message}\n`);
    return 1;
  };
  if (name === 'diff') {
    const result = await (await import('../review/diff.ts')).diffRun(options);
    if (!result.ok) return refused(result.failure);
    process.stdout.write(argv.flags.json ? `${JSON.stringify({ event: 'diff', ...result.value.numbers })}\n` : `${result.value.lines.join('\n')}\n`);
    return 0;
  }
  const result = await (await import('../review/report.ts')).writeReport(options);
  if (!result.ok) return refused(result.failure);
  const { path, bytes } = result.value;
  process.stdout.write(argv.flags.json ? `${JSON.stringify({ event: 'report', path, bytes })}\n` : `review page of run ${runId}: ${path} (${(bytes / 1000).toFixed(0)} kB)\n`);
  return 0;
}
