import { setMaxListeners } from 'node:events';
import { parseArgv, type Argv } from './argv.ts';
import { checkFlags, COMMANDS, needsNetwork, resolveCommand } from './commands.ts';
import { exitCode, UsageError } from '../report/failures.ts';
import { environmentFailure } from '../report/environment-failure.ts';
import { jsonLogger, plainLogger, ttyLogger, type Logger } from '../report/logger.ts';
import { sourceMappedStack } from '../util/source-mapped-stack.ts';
import { readSettings, type Settings } from './settings.ts';

function makeLogger(argv: Argv, settings: Settings, command: string): Logger {
  if (argv.flags.json) return jsonLogger(command);
  if (process.stdout.isTTY && !settings.ci) return ttyLogger();
  return plainLogger();
}

/**
 * The CLI: argv -> validated options -> one command of the table (commands.ts) -> exit code
 * (0 ok, 1 a target failed or the machine refused a write, 2 bad usage or configuration, 70 internal error, 130 interrupted; README lists them). Each command's module
 * is imported only when it runs, so a no-op build does not pay for the publishing clients.
 */
export async function main(args: string[]): Promise<number> {
  // `./build.ts ... | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  let argv: Argv;
  let invocation: ReturnType<typeof resolveCommand> = null;
  try {
    argv = parseArgv(args, 2);
    invocation = resolveCommand(argv.words);
    if (invocation && !argv.flags.help) checkFlags(invocation.command, argv, invocation.bare);
  } catch (error) {
    return usageFailure(error, args.includes('--json') ? jsonLogger(invocation?.command.name ?? null) : null);
  }
  if (argv.flags.help) {
    const { commandHelp, globalHelp, helpEvents } = await import('./help.ts');
    if (argv.flags.json) {
      const logger = jsonLogger(invocation?.command.name ?? null);
      for (const e of helpEvents(invocation ? [invocation.command] : COMMANDS)) logger.emit(e);
      return 0;
    }
    process.stdout.write(`${invocation ? commandHelp(invocation.command) : globalHelp(COMMANDS)}\n`);
    return 0;
  }
  if (!invocation) {
    if (argv.flags.version) return (await import('./help.ts')).versionCommand();
    return usageFailure(new UsageError('no-command', 'nothing to do; run ./build.ts pipeline, or ./build.ts --help'), argv.flags.json ? jsonLogger(null) : null);
  }
  const { command, words, bare } = invocation;
  const early = () => (argv.flags.json ? jsonLogger(command.name) : null);
  let settings: Settings;
  try {
    settings = readSettings();
  } catch (error) {
    return usageFailure(error, early());
  }
  if (needsNetwork(command, argv, settings)) {
    try {
      (await import('./network.ts')).loadExtraCaCerts(settings);
    } catch (error) {
      return usageFailure(error, early());
    }
  }
  const controller = new AbortController();
  // Every running action listens on this signal, and a Modal run waits on hundreds of area calls
  // at once: past 10 listeners Node printed MaxListenersExceededWarning, which is not a leak here.
  setMaxListeners(0, controller.signal);
  let interrupts = 0;
  // The first SIGINT/SIGTERM cancels (a build stops its actions and records the run as cancelled);
  // a second one, or a command still running 20 s later, ends the process at once: a signal
  // always ends it.
  const onSignal = () => {
    if (++interrupts > 1) process.exit(130);
    controller.abort();
    setTimeout(() => process.exit(130), 20_000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const logger = makeLogger(argv, settings, command.name);
  try {
    return await command.run({ words, bare, argv, args, logger, signal: controller.signal, settings });
  } catch (error) {
    return usageFailure(error, argv.flags.json ? logger : null);
  } finally {
    logger.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * The one place where thrown errors become output: usage errors exit 2, a full disk or an
 * unwritable directory exits 1 with one line naming it, bugs exit 70 with a stack. With --json,
 * `json` is the command's JSON view: the error is also an `error` event there.
 */
function usageFailure(error: unknown, json: Logger | null): number {
  const environment = environmentFailure(error);
  if (environment) {
    json?.emit({ event: 'error', ...environment });
    process.stderr.write(`error: ${environment.message}\n`);
    return 1;
  }
  if (error instanceof UsageError) {
    json?.emit({ event: 'error', reason: error.reason, message: error.message });
    process.stderr.write(`error: ${error.message}\n`);
    return exitCode('usage');
  }
  process.stderr.write(`internal error: ${sourceMappedStack(error)}\n`);
  return 70;
}
