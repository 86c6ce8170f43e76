import type { Argv, FlagName } from './argv.ts';
import type { Logger } from '../report/logger.ts';
import type { Settings } from './settings.ts';

/** What a command's implementation is given. */
export interface CommandContext {
  /** The words after the command's name (for a build of bare targets, all of them). */
  words: string[];
  /** True when the first word named no command and is taken as a target: `./build.ts database`. */
  bare: boolean;
  argv: Argv;
  /** The raw arguments, for commands that re-execute the CLI (`--detach`). */
  args: string[];
  logger: Logger;
  signal: AbortSignal;
  /** The environment, read once (settings.ts). */
  settings: Settings;
}

/** One command of `./build.ts`, as the table in commands.ts declares it. */
export interface Command {
  name: string;
  /** The forms of the command line, each after `./build.ts `. */
  usage: string[];
  /** One line for the help screens. */
  summary: string;
  /** The options it takes (every command also takes --help). */
  flags: FlagName[];
  /**
   * Whether it may open TLS connections: `if-remote` when only a remote configuration makes it
   * (EXECUTOR=modal, HF_REPO, GCS_BUCKET, BUILD_DB=0).
   */
  network: boolean | 'if-remote';
  run(c: CommandContext): Promise<number>;
}
