import { parseArgv, type Argv } from './argv.ts';
import { UsageError } from '../report/failures.ts';
import { jsonLogger, plainLogger, ttyLogger, type Logger } from '../report/logger.ts';

/**
 * The CLI: argv -> validated options -> one command -> exit code (0 ok, 1 a target failed,
 * 2 bad usage or configuration, 130 interrupted). Each command's module is imported only when it
 * runs, so a no-op build does not pay for the publishing clients.
 */
const HELP = `usage: ./build.ts <command|target...> [VAR=value ...] [options]

commands:
  pipeline                 build the whole pipeline (default goals) at one pinned SHA
  <target> ...             build those targets and whatever they need that is stale
  status [RUN_ID=...]      list runs, or show one run target by target
  logs RUN_ID=... [-f]     print (and follow) a run's log
  explain <target>         say exactly what changed since the cached entry
  graph [--dot]            print the target graph (Mermaid, or DOT)
  cache ls|du|verify|gc    inspect the local cache
  stage RUN_ID=...         retry publishing a run's diagnostics and staging
  promote RUN_ID=...       publish a reviewed run to production and register it
  versions                 list the version registry
  rollback VERSION=x NEW_VERSION=y
  gc KEEP=N                remove old unpromoted runs (also: pipeline --clean-old-runs)
  fetch <target>           download remote-resident outputs
  report RUN_ID=... [AGAINST=<version|run>]   write the run's review page (one HTML file)
  diff RUN_ID=... [AGAINST=<version|run>]     the review's key numbers in the terminal (--json)

options:
  -n, --dry-run   print what would run and why      -j N        parallel actions
  -k              keep going after a failure          --json      NDJSON events only
  --detach        run in the background, print the run id
  variables: ./build.ts vars`;

const COMMANDS = new Set(['status', 'logs', 'explain', 'graph', 'cache', 'stage', 'promote', 'versions', 'rollback', 'gc', 'fetch', 'vars', 'help', 'report', 'diff']);

/** Commands that may open TLS connections (publishing clients, Modal). */
function needsNetwork(command: string | undefined, argv: Argv): boolean {
  if (command && ['stage', 'promote', 'versions', 'rollback', 'gc', 'fetch', 'report', 'diff'].includes(command)) return true;
  const remote = /^(EXECUTOR=modal|HF_REPO=|GCS_BUCKET=|BUILD_DB=0)/;
  return argv.assignments.some((a) => remote.test(a)) || Boolean(process.env.HF_REPO || process.env.GCS_BUCKET);
}

function makeLogger(argv: Argv): Logger {
  if (argv.flags.json) return jsonLogger();
  if (process.stdout.isTTY && !process.env.CI) return ttyLogger();
  return plainLogger();
}

export async function main(args: string[]): Promise<number> {
  // `./build.ts ... | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  let argv: Argv;
  try {
    argv = parseArgv(args, 2);
  } catch (error) {
    return usageFailure(error, args.includes('--json'));
  }
  if (argv.flags.help || argv.words[0] === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const [first, ...rest] = argv.words;
  if (needsNetwork(first, argv)) {
    const code = await (await import('./network.ts')).withExtraCaCerts(args);
    if (code !== null) return code;
  }
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const logger = makeLogger(argv);
  try {
    if (first === undefined) throw new UsageError('no-command', 'nothing to do; run ./build.ts pipeline, or ./build.ts --help');
    if (!COMMANDS.has(first)) {
      const goals = first === 'pipeline' ? (rest.length ? rest : 'default') : argv.words;
      if (argv.flags.detach) return await (await import('./detach.ts')).detach(args, argv, goals);
      const { buildCommand } = await import('./build-command.ts');
      const runId = process.env.BUILD_RUN_ID;
      const { code, replayed } = await buildCommand({ argv, goals, logger, signal: controller.signal, ...(runId ? { runId: (await import('../run.ts')).checkRunId(runId) } : {}) });
      saveCodeCache(replayed ? 'replay' : 'walk');
      return code;
    }
    const { runCommand } = await import('./commands.ts');
    return await runCommand(first, rest, argv, logger);
  } catch (error) {
    return usageFailure(error, argv.flags.json);
  } finally {
    logger.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * Asks the bundle's loader (scripts/cli-loader.mjs) to save its V8 code cache unless it already
 * holds what this build path compiles. Absent when run from source.
 */
function saveCodeCache(path: 'replay' | 'walk'): void {
  const save = (globalThis as Record<symbol, unknown>)[Symbol.for('build.saveCodeCache')];
  if (typeof save === 'function') save(path);
}

/** The one place where thrown errors become output: usage errors exit 2, bugs exit 70 with a stack. */
function usageFailure(error: unknown, json: boolean): number {
  if (error instanceof UsageError) {
    if (json) process.stdout.write(`${JSON.stringify({ event: 'error', reason: error.reason, message: error.message })}\n`);
    process.stderr.write(`error: ${error.message}\n`);
    return 2;
  }
  process.stderr.write(`internal error: ${(error as Error)?.stack ?? String(error)}\n`);
  return 70;
}
