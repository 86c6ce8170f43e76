import { parseArgs } from 'node:util';
import { UsageError } from '../report/failures.ts';
import { didYouMean } from '../util/did-you-mean.ts';
import { isAssignment } from '../variables.ts';

/** One option of the CLI. Which commands take it is declared in commands.ts. */
export interface FlagSpec {
  short?: string;
  /** `string` options take a value (`-j 2`, `-j2`, `--jobs=2`); the others are switches. */
  type: 'boolean' | 'string';
  /** The value's placeholder in help, for `string` options. */
  value?: string;
  /** One line for the help screens. */
  help: string;
}

/** Every option, declared once. */
export const FLAGS = {
  help: { short: 'h', type: 'boolean', help: 'show this help' },
  version: { type: 'boolean', help: 'print the version of build.ts' },
  'dry-run': { short: 'n', type: 'boolean', help: 'show what would be done and why; change nothing' },
  jobs: { short: 'j', type: 'string', value: 'N', help: 'run up to N local actions at once (default 2)' },
  'keep-going': { short: 'k', type: 'boolean', help: 'keep building what does not depend on a failed target' },
  json: { type: 'boolean', help: 'machine-readable output: one JSON object per line' },
  detach: { type: 'boolean', help: 'run in the background; print the run id (follow with ./build.ts logs RUN_ID=... -f)' },
  'clean-old-runs': { type: 'boolean', help: 'after a completed run, remove old unpromoted runs (keeps KEEP=N)' },
  dot: { type: 'boolean', help: 'print Graphviz DOT instead of Mermaid' },
  yes: { short: 'y', type: 'boolean', help: 'do not ask for confirmation' },
  follow: { short: 'f', type: 'boolean', help: 'keep printing until the run ends' },
  failed: { type: 'boolean', help: 'only the targets that failed or were cancelled' },
  'new-run': { type: 'boolean', help: 'record a new run even when an identical one exists (and stage it)' },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;

/** The command line split into words, `VAR=value` assignments and flags, before any validation of values. */
export interface Argv {
  words: string[];
  assignments: string[];
  flags: {
    dryRun: boolean;
    jobs: number;
    keepGoing: boolean;
    json: boolean;
    detach: boolean;
    dot: boolean;
    yes: boolean;
    follow: boolean;
    cleanOldRuns: boolean;
    newRun: boolean;
    failed: boolean;
    help: boolean;
    version: boolean;
  };
  /** Each option as it was typed (`-n` or `--dry-run`), for the check that the command takes it. */
  given: { flag: FlagName; as: string }[];
}

const SWITCHES: Record<Exclude<FlagName, 'jobs'>, Exclude<keyof Argv['flags'], 'jobs'>> = {
  help: 'help',
  version: 'version',
  'dry-run': 'dryRun',
  'keep-going': 'keepGoing',
  json: 'json',
  detach: 'detach',
  'clean-old-runs': 'cleanOldRuns',
  dot: 'dot',
  yes: 'yes',
  follow: 'follow',
  'new-run': 'newRun',
  failed: 'failed',
};

const isFlag = (name: string): name is FlagName => Object.hasOwn(FLAGS, name);

/**
 * Parses with node:util's parseArgs, which handles `-kn`, `-j2`, `-j 2`, `--jobs=2` and `--`
 * (every word after it is a word, even `-x` or `A=b`: a target named like a flag). It runs
 * non-strict with tokens so that this function, not parseArgs, words each mistake: an unknown
 * option, a switch given a value and a missing count are still errors, each one line of ours.
 * Make-style `VAR=value` words are kept apart for src/variables.ts to validate.
 */
export function parseArgv(args: string[], defaultJobs: number): Argv {
  const out: Argv = {
    words: [],
    assignments: [],
    flags: { dryRun: false, jobs: defaultJobs, keepGoing: false, json: false, detach: false, dot: false, yes: false, follow: false, cleanOldRuns: false, newRun: false, failed: false, help: false, version: false },
    given: [],
  };
  const { tokens } = parseArgs({ args, options: FLAGS, strict: false, allowPositionals: true, tokens: true });
  let terminated = false;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') {
      terminated = true;
    } else if (token.kind === 'positional') {
      const word = token.value;
      if (terminated) out.words.push(word);
      else if (isAssignment(word)) out.assignments.push(word);
      else if (word.includes('=')) throw new UsageError('bad-assignment', `malformed variable '${word}'; write it as NAME=value`);
      else out.words.push(word);
    } else if (!isFlag(token.name)) {
      throw unknownOption(token.rawName);
    } else if (token.name === 'jobs') {
      if (!token.value || !/^[1-9][0-9]*$/.test(token.value)) throw new UsageError('bad-flag', `${token.rawName} needs a positive number of parallel actions, e.g. -j 2`);
      out.flags.jobs = Number(token.value);
      out.given.push({ flag: 'jobs', as: token.rawName });
    } else {
      if (token.value !== undefined) throw new UsageError('bad-flag', `${token.rawName} takes no value; write ${token.rawName} alone`);
      out.flags[SWITCHES[token.name]] = true;
      out.given.push({ flag: token.name, as: token.rawName });
    }
  }
  return out;
}

function unknownOption(raw: string): UsageError {
  const hint = raw.startsWith('--') ? didYouMean(raw, Object.keys(FLAGS).map((name) => `--${name}`)) : undefined;
  return new UsageError('unknown-flag', `unknown option ${raw}; ${hint ?? 'see ./build.ts --help'}`);
}
