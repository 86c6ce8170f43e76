import { shellWords } from './shell-words.ts';

/**
 * The programs a target's command runs, as `check` reads them: through `env A=B ...`, through
 * `sh -c '<script>' sh args...` (the script's commands, with `"$@"` standing for the args, as
 * tasks/storage.ts writes a storage step: its inputs are copied to `<file>.placing.$$` and renamed,
 * read here as a copy to `<file>`), through `&&` chains, and through an adapter's `-- <command>`
 * (tasks/adapters/ wrap the real CLI: the command after `--` is checked too). Placeholders
 * (`{run}`, `{python}`, `{adapters}`) stay as written.
 */
export type Invocation =
  | { kind: 'python-module'; module: string; args: string[] }
  | { kind: 'python-script'; script: string; args: string[] }
  | { kind: 'make'; targets: string[]; assignments: string[]; args: string[] }
  | { kind: 'copy'; from: string[]; to: string }
  | { kind: 'other'; argv: string[] };

const PYTHON = /^(\{python\}|(?:.*\/)?python3?(?:\.\d+)?)$/;

export function invocations(argv: string[]): Invocation[] {
  const words = [...argv];
  const first = () => words[0] ?? '';
  if (first() === 'env') {
    words.shift();
    while (first() === '-i' || first() === '-u') words.splice(0, first() === '-u' ? 2 : 1);
  }
  while (/^[A-Za-z_][A-Za-z0-9_]*=/.test(first())) words.shift();
  const [program, ...args] = words;
  if (program === undefined) return [];
  if ((program === 'sh' || program === 'bash') && args[0] === '-c' && args[1] !== undefined) {
    const positional = args.slice(3);
    return shellWords(args[1]).flatMap((command) => invocations(command.flatMap((w) => (w === '$@' ? positional : [w]))));
  }
  if (PYTHON.test(program)) {
    const run = python(args);
    if (run.kind !== 'python-script' || !run.script.startsWith('{adapters}/')) return [run];
    const dashes = run.args.indexOf('--');
    return dashes < 0 ? [run] : [{ ...run, args: run.args.slice(0, dashes) }, ...invocations(run.args.slice(dashes + 1))];
  }
  if (program === 'make' || program === '$(MAKE)') return [make(args)];
  if (program === 'cp') {
    const paths = args.filter((a) => !a.startsWith('-'));
    if (paths.length >= 2) return [{ kind: 'copy', from: paths.slice(0, -1), to: paths[paths.length - 1]!.replace(/\.placing\.\$\$$/, '') }];
  }
  return [{ kind: 'other', argv: words }];
}

function python(args: string[]): Invocation {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-') || a === '-') return { kind: 'python-script', script: a, args: args.slice(i + 1) };
    if (/^-[A-Za-z]*m$/.test(a)) return args[i + 1] ? { kind: 'python-module', module: args[i + 1]!, args: args.slice(i + 2) } : { kind: 'other', argv: args };
    if (/^-[A-Za-z]*c$/.test(a)) return { kind: 'other', argv: ['python', ...args] };
    if (a === '-W' || a === '-X') i++;
  }
  return { kind: 'other', argv: ['python', ...args] };
}

function make(args: string[]): Invocation {
  const targets: string[] = [];
  const assignments: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-C' || a === '-f' || a === '-j' || a === '-I' || a === '-o' || a === '-W') i++;
    else if (a.startsWith('-')) continue;
    else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) assignments.push(a);
    else targets.push(a);
  }
  return { kind: 'make', targets, assignments, args };
}
