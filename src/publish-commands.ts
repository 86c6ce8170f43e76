import type { Argv } from './argv.ts';
import { UsageError } from './errors.ts';
import type { Logger } from './logger.ts';

/** Publishing commands (promote, versions, rollback, gc, fetch), each loaded on demand. */
export async function publishCommand(name: string, _words: string[], _argv: Argv, _logger: Logger): Promise<number> {
  throw new UsageError('unknown-command', `unknown command '${name}'; see ./build.ts --help`);
}
