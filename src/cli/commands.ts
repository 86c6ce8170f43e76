import type { Argv } from './argv.ts';
import type { Command } from './command.ts';
import type { Settings } from './settings.ts';
import { UsageError } from '../report/failures.ts';
import { didYouMean } from '../util/did-you-mean.ts';

/**
 * Every command of `./build.ts`, in the order of the help screen. This table is all the CLI knows
 * about its commands: main.ts routes with it, rejects the flags a command does not take and decides
 * whether to restore the TLS certificates (network.ts); help.ts generates the help screens from it.
 * It stays cheap to load: each implementation is imported only when its command runs.
 */
export const COMMANDS: readonly Command[] = [
  {
    name: 'pipeline',
    usage: ['pipeline [<target>...] [VAR=value ...]', '<target>... [VAR=value ...]'],
    summary: 'build the default goals, or the named targets and what they need, at one pinned SHA',
    flags: ['dry-run', 'jobs', 'keep-going', 'json', 'detach', 'clean-old-runs', 'new-run'],
    network: 'if-remote',
    run: async (c) => {
      if (c.bare) await refuseMisspeltCommand(c.words[0]!, c.settings);
      const goals = c.words.length ? c.words : 'default';
      if (c.argv.flags.detach) return (await import('./detach.ts')).detach(c, goals);
      return (await import('./build-command.ts')).buildFromCli(c, goals);
    },
  },
  {
    name: 'status',
    usage: ['status [RUN_ID=<run> [<target glob>] [--failed]]'],
    summary: 'list runs, or show one run (its variables, then target by target; filter by a glob or --failed)',
    flags: ['json', 'failed'],
    network: false,
    run: async (c) => (await import('./status-command.ts')).statusCommand(c),
  },
  {
    name: 'logs',
    usage: ['logs RUN_ID=<run> [<target>] [-f]'],
    summary: "print a run's log, or one target's (with -f, follow it until the run ends and exit with its result)",
    flags: ['follow'],
    network: false,
    run: async (c) => (await import('./logs-command.ts')).logsCommand(c.argv, c.settings, c.words),
  },
  {
    name: 'cancel',
    usage: ['cancel RUN_ID=<run>'],
    summary: "stop a detached run (on Modal: its coordinator and its calls) and mark it cancelled",
    flags: ['json'],
    network: true,
    run: async (c) => (await import('./cancel-command.ts')).cancelCommand(c),
  },
  {
    name: 'explain',
    usage: ['explain <target> [RUN_ID=<run>] [VAR=value ...]'],
    summary: "name what changed (source, variable, env value, upstream output) since a target's cached entry",
    flags: ['json'],
    network: 'if-remote',
    run: async (c) => (await import('./explain-command.ts')).explainCommand(c),
  },
  {
    name: 'check',
    usage: ['check [<target>...] [REPO=<checkout>] [VAR=value ...]'],
    summary: 'verify the plan against the pinned tree, statically: modules, flags, Make targets, paths, outputs',
    flags: ['json'],
    network: false,
    run: async (c) => (await import('./check-command.ts')).checkCommand(c),
  },
  {
    name: 'graph',
    usage: ['graph [--dot]'],
    summary: 'print the target graph as Mermaid (or DOT); a fan-out is one node',
    flags: ['dot'],
    network: false,
    run: async (c) => (await import('./graph-command.ts')).graphCommand(c.argv, c.settings),
  },
  {
    name: 'cache',
    usage: ['cache ls [<target glob>]', 'cache du', 'cache verify [-n] [MAX_GB=<n>]', 'cache gc [-n]'],
    summary: 'list, measure, check (resumable) or trim the local cache (-n: say what verify or gc would remove, remove nothing)',
    flags: ['json', 'dry-run'],
    network: false,
    run: async (c) => (await import('./cache-command.ts')).cacheCommand(c),
  },
  {
    name: 'stage',
    usage: ['stage RUN_ID=<run>'],
    summary: "retry publishing a completed run's diagnostics and staging",
    flags: ['json'],
    network: true,
    run: async (c) => (await import('./publish-commands.ts')).publishCommand('stage', c),
  },
  {
    name: 'promote',
    usage: ['promote RUN_ID=<run> [VERSION=<version>]'],
    summary: 'publish a reviewed, staged run to production and register it as a version',
    flags: ['dry-run', 'yes', 'json'],
    network: true,
    run: async (c) => (await import('./publish-commands.ts')).publishCommand('promote', c),
  },
  {
    name: 'versions',
    usage: ['versions'],
    summary: 'list the version registry, newest first, the current version marked',
    flags: ['json'],
    network: true,
    run: async (c) => (await import('./publish-commands.ts')).publishCommand('versions', c),
  },
  {
    name: 'rollback',
    usage: ['rollback VERSION=<registered version> NEW_VERSION=<version>'],
    summary: "republish a registered version's files as a new current version",
    flags: ['dry-run', 'yes', 'json'],
    network: true,
    run: async (c) => (await import('./publish-commands.ts')).publishCommand('rollback', c),
  },
  {
    name: 'gc',
    usage: ['gc [KEEP=<n>]'],
    summary: 'remove old unpromoted runs, locally and on the store (also: pipeline --clean-old-runs)',
    flags: ['dry-run', 'json'],
    network: true,
    run: async (c) => (await import('./publish-commands.ts')).publishCommand('gc', c),
  },
  {
    name: 'fetch',
    usage: ['fetch <target|group>... [RUN_ID=<run>]'],
    summary: 'download outputs left on the Modal volume (EXECUTOR=modal) into the local cache and the run',
    flags: ['json'],
    network: true,
    run: async (c) => (await import('./fetch-command.ts')).fetchCommand(c),
  },
  {
    name: 'report',
    usage: ['report RUN_ID=<run> [AGAINST=<version|run>] [WORSE_BY=<points>]'],
    summary: "write the run's review page (one self-contained HTML file) against production, and print its path",
    flags: ['json'],
    network: true,
    run: async (c) => (await import('./review-command.ts')).reviewCommand('report', c),
  },
  {
    name: 'diff',
    usage: ['diff RUN_ID=<run> [AGAINST=<version|run>] [WORSE_BY=<points>]'],
    summary: "the review's key numbers against production (or another run) as a table",
    flags: ['json'],
    network: true,
    run: async (c) => (await import('./review-command.ts')).reviewCommand('diff', c),
  },
  {
    name: 'targets',
    usage: ['targets'],
    summary: 'list every target with its description, dependencies and executor (fan-out items when known)',
    flags: ['json'],
    network: false,
    run: async (c) => (await import('./targets-command.ts')).targetsCommand(c),
  },
  {
    name: 'vars',
    usage: ['vars'],
    summary: 'list every variable with its default and meaning, and every environment setting',
    flags: [],
    network: false,
    run: async () => (await import('./vars-command.ts')).varsCommand(),
  },
  {
    name: 'help',
    usage: ['help [<command>]'],
    summary: "show the commands, or one command's usage and options",
    flags: [],
    network: false,
    run: async (c) => (await import('./help.ts')).helpCommand(COMMANDS, c.words),
  },
  {
    name: 'version',
    usage: ['version'],
    summary: 'print the version of build.ts (also: --version)',
    flags: [],
    network: false,
    run: async () => (await import('./help.ts')).versionCommand(),
  },
];

/** The command a name denotes, if any. */
export function commandNamed(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** The command a command line runs: its first word names one, or the words are targets to build. */
export function resolveCommand(words: string[]): { command: Command; words: string[]; bare: boolean } | null {
  const [first, ...rest] = words;
  if (first === undefined) return null;
  const named = commandNamed(first);
  return named ? { command: named, words: rest, bare: false } : { command: commandNamed('pipeline')!, words, bare: true };
}

/** A flag the command does not take is a usage error naming the command and where to look. */
export function checkFlags(command: Command, argv: Argv, bare: boolean): void {
  for (const { flag, as } of argv.given) {
    if (flag === 'help' || command.flags.includes(flag)) continue;
    const who = bare ? 'a build of targets' : command.name;
    throw new UsageError('flag-not-taken', `${who} does not take ${as}; see ./build.ts ${command.name} --help`);
  }
}

/** Whether this command line may open TLS connections (see Command.network). */
export function needsNetwork(command: Command, argv: Argv, settings: Settings): boolean {
  if (command.network !== 'if-remote') return command.network;
  const remote = /^(EXECUTOR=modal|MODAL_TARGETS=.|HF_REPO=|GCS_BUCKET=|BUILD_DB=0)/;
  return argv.assignments.some((a) => remote.test(a)) || Boolean(settings.publish.HF_REPO || settings.publish.GCS_BUCKET);
}

/**
 * A first word close to a command's name is a misspelt command (`pipline`), unless the pipeline
 * declares a target of that name. Only such words pay for loading the declaration here.
 */
async function refuseMisspeltCommand(word: string, settings: Settings): Promise<void> {
  const hint = didYouMean(word, COMMANDS.map((c) => c.name));
  if (!hint) return;
  const [{ pipelineFactory }, { Graph }] = await Promise.all([import('./pipeline-declaration.ts'), import('../graph.ts')]);
  const graph = new Graph((await pipelineFactory(settings.tasksFile))('example'));
  if (graph.nodes.has(word) || graph.fanoutFor(word)) return;
  throw new UsageError('unknown-command', `unknown command '${word}'; ${hint}`);
}
