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
    default:
      return (await import('./publish-commands.ts')).publishCommand(name, words, argv, logger);
  }
}
