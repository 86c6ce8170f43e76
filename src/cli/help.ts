import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLAGS, type FlagName, type FlagSpec } from './argv.ts';
import type { Command } from './command.ts';
import type { Event } from '../report/events.ts';
import { projectRoot } from './settings.ts';
import { UsageError } from '../report/failures.ts';
import { didYouMean } from '../util/did-you-mean.ts';

/**
 * What the CLI says about itself, generated from the command table (commands.ts) and the option
 * table (argv.ts), so a new command or flag documents itself: `./build.ts --help` lists the
 * commands, `./build.ts <command> --help` gives one command's usage and options.
 */
export function globalHelp(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 3;
  return [
    'usage: ./build.ts <command> [VAR=value ...] [options]',
    '       ./build.ts <target>... [VAR=value ...] [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'options:',
    ...flagLines(['help', 'version']),
    '',
    "A command's usage and options: ./build.ts <command> --help. Variables: ./build.ts vars.",
    'Exit codes: 0 success, 1 a target or an operation failed, 2 bad usage or configuration, 130 interrupted.',
  ].join('\n');
}

export function commandHelp(command: Command): string {
  const options = command.flags.length ? ' [options]' : '';
  return [
    ...command.usage.map((form, i) => `${i === 0 ? 'usage: ' : '       '}./build.ts ${form}${options}`),
    '',
    command.summary,
    '',
    'options:',
    ...flagLines([...command.flags, 'help']),
    '',
    'Variables (VAR=value): ./build.ts vars.',
  ].join('\n');
}

/** `--help --json`: the same as events, one per command (every command, or the one asked about). */
export function helpEvents(commands: readonly Command[]): Extract<Event, { event: 'command' }>[] {
  return commands.map((c) => ({
    event: 'command',
    name: c.name,
    usage: c.usage.map((form) => `./build.ts ${form}`),
    summary: c.summary,
    options: [...c.flags, 'help' as const].map((name) => {
      const spec: FlagSpec = FLAGS[name];
      return { flag: `--${name}`, ...(spec.short && { short: `-${spec.short}` }), ...(spec.value && { value: spec.value }), help: spec.help };
    }),
  }));
}

/** `-n, --dry-run      show what...`, aligned. */
function flagLines(names: FlagName[]): string[] {
  const spelled = names.map((name) => {
    const spec: FlagSpec = FLAGS[name];
    const long = `--${name}${spec.value ? ` ${spec.value}` : ''}`;
    return spec.short ? `-${spec.short}, ${long}` : `    ${long}`;
  });
  const width = Math.max(...spelled.map((s) => s.length)) + 3;
  return names.map((name, i) => `  ${spelled[i]!.padEnd(width)}${FLAGS[name].help}`);
}

/** `./build.ts help [<command>]`. */
export function helpCommand(commands: readonly Command[], words: string[]): number {
  const [name, ...extra] = words;
  if (extra.length) throw new UsageError('unexpected-argument', `help takes one command, not '${extra[0]}'; see ./build.ts --help`);
  if (name === undefined) {
    process.stdout.write(`${globalHelp(commands)}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const hint = didYouMean(name, commands.map((c) => c.name));
    throw new UsageError('unknown-command', `unknown command '${name}'; ${hint ?? 'see ./build.ts --help'}`);
  }
  process.stdout.write(`${commandHelp(command)}\n`);
  return 0;
}

/** `./build.ts version` and `--version`: the version in build.ts's own package.json. */
export function versionCommand(): number {
  const { version } = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string };
  process.stdout.write(`${version}\n`);
  return 0;
}
