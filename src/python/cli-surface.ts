import type { ModuleFacts } from './module-facts.ts';
import type { PyFile, PythonIndex } from './python-index.ts';

/**
 * What a Python script accepts on its command line, read statically:
 * - `argparse`: the option strings of its own `add_argument` calls (argument groups and mutually
 *   exclusive groups included) plus those of the parser helpers it calls from other project
 *   modules (utils/db.py's `etl_argparser`, which adds `--year`, and whatever the helper calls in
 *   turn). `tolerant` when it parses with `parse_known_args`, which ignores unknown flags.
 * - `sys-argv`: no argparse, but it reads `sys.argv` by hand (create_stratified_cps): its flags
 *   cannot be checked.
 * - `none`: no parser at all: every argument is silently ignored.
 * Flags of imported modules that the script does not call into are not its flags.
 */
export type CliSurface =
  | { kind: 'argparse'; flags: Set<string>; tolerant: boolean; positionals: number; from: string[] }
  | { kind: 'sys-argv' }
  | { kind: 'none' };

/** The command-line surface of one file of the index. */
export function cliSurface(index: PythonIndex, file: PyFile): CliSurface {
  const facts = index.facts(file);
  if (!facts) return { kind: 'none' };
  const a = facts.argparse;
  const flags = new Set(a.flags);
  const from = new Set<string>();
  let parses = a.parsesArgs;
  let tolerant = a.parsesKnownArgs;
  const seen = new Set<string>();
  const visit = (caller: PyFile, callerFacts: ModuleFacts, calls: string[]) => {
    for (const call of calls) {
      const target = resolveCall(index, caller, callerFacts, call);
      if (!target) continue;
      const key = `${target.file.root}:${target.file.path}:${target.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const targetFacts = index.facts(target.file)!;
      const fn = targetFacts.argparse.parserFunctions[target.name];
      if (!fn) continue;
      for (const f of fn.flags) flags.add(f);
      from.add(`${target.file.path}:${target.name}`);
      parses ||= fn.parsesArgs;
      tolerant ||= fn.parsesKnownArgs;
      visit(target.file, targetFacts, fn.calls);
    }
  };
  visit(file, facts, a.calls);
  if (parses || tolerant) return { kind: 'argparse', flags, tolerant: tolerant && !parses, positionals: a.positionals, from: [...from].sort() };
  if (a.readsSysArgv) return { kind: 'sys-argv' };
  return { kind: 'none' };
}

/**
 * The project function a call names, through the caller's imports: `etl_argparser(` after
 * `from policyengine_us_data.utils.db import etl_argparser`, `db.etl_argparser(` after
 * `from policyengine_us_data.utils import db` or `import policyengine_us_data.utils.db as db`.
 */
function resolveCall(index: PythonIndex, caller: PyFile, facts: ModuleFacts, call: string): { file: PyFile; name: string } | null {
  const parts = call.split('.');
  const head = parts[0]!;
  for (const stmt of facts.imports) {
    const base = index.resolveBase(caller, stmt);
    if (!base) continue;
    let dotted: string | null = null;
    if (stmt.from) {
      const original = stmt.aliases?.[head] ?? (stmt.names.includes(head) ? head : null);
      if (original === null) continue;
      if (parts.length === 1) {
        const file = index.moduleFile(base.root, base.dotted);
        return file ? { file, name: original } : null;
      }
      dotted = `${base.dotted}.${original}`;
    } else {
      const alias = stmt.aliases && Object.keys(stmt.aliases)[0];
      if (alias) {
        if (alias !== head) continue;
        dotted = base.dotted;
      } else if (base.dotted.split('.')[0] === head) {
        dotted = head;
      } else continue;
    }
    // Walk the remaining attributes down submodules; the last one is the function.
    let rest = parts.slice(1);
    while (rest.length > 1 && index.moduleFile(base.root, `${dotted}.${rest[0]}`)) {
      dotted = `${dotted}.${rest[0]}`;
      rest = rest.slice(1);
    }
    if (rest.length !== 1) continue;
    const file = index.moduleFile(base.root, dotted);
    if (file) return { file, name: rest[0]! };
  }
  return null;
}
