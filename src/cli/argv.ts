import { UsageError } from '../report/failures.ts';
import { isAssignment } from '../variables.ts';

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
    help: boolean;
  };
}

const BOOLEAN_FLAGS: Record<string, keyof Argv['flags']> = {
  '-n': 'dryRun',
  '--dry-run': 'dryRun',
  '-k': 'keepGoing',
  '--keep-going': 'keepGoing',
  '--json': 'json',
  '--detach': 'detach',
  '--dot': 'dot',
  '--yes': 'yes',
  '-y': 'yes',
  '-f': 'follow',
  '--follow': 'follow',
  '--clean-old-runs': 'cleanOldRuns',
  '-h': 'help',
  '--help': 'help',
};

export function parseArgv(args: string[], defaultJobs: number): Argv {
  const out: Argv = {
    words: [],
    assignments: [],
    flags: { dryRun: false, jobs: defaultJobs, keepGoing: false, json: false, detach: false, dot: false, yes: false, follow: false, cleanOldRuns: false, help: false },
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const jobs = /^(?:-j|--jobs=?)(.*)$/.exec(arg);
    if (jobs) {
      const value = jobs[1] || args[++i];
      if (!value || !/^[1-9][0-9]*$/.test(value)) throw new UsageError('bad-flag', `${arg} needs a positive number of parallel actions, e.g. -j 2`);
      out.flags.jobs = Number(value);
    } else if (arg in BOOLEAN_FLAGS) {
      out.flags[BOOLEAN_FLAGS[arg]!] = true as never;
    } else if (arg.startsWith('-')) {
      throw new UsageError('unknown-flag', `unknown option ${arg}; see ./build.ts --help`);
    } else if (isAssignment(arg)) {
      out.assignments.push(arg);
    } else if (arg.includes('=')) {
      throw new UsageError('bad-assignment', `malformed variable '${arg}'; write it as NAME=value`);
    } else {
      out.words.push(arg);
    }
  }
  return out;
}
