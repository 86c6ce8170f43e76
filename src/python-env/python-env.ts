import { UsageError } from '../report/failures.ts';
import { interpreters, type Interpreter, type InterpreterSearch } from './interpreters.ts';
import { readRequiresPython, satisfies, suggestedMinor, type RequiresPython } from './requires-python.ts';
import { parseSubstitutions, unpinnedSubstitution } from './substitutions.ts';

/**
 * The pipeline's Python environment, decided before any work: the interpreter that satisfies the
 * pinned project's `requires-python`, and the substitutions the user asked for. The interpreter's
 * exact version becomes the resolved variable PYTHON_VERSION, which the environment target
 * declares, so a different interpreter is a different environment (and a different key for every
 * target that runs in it); its path reaches the environment's command as `{interpreter}` at
 * execution and is never in a key.
 */
export interface PythonPlan {
  interpreter: Interpreter;
  /** null when the project declares no requires-python (any Python 3 satisfies it). */
  requires: RequiresPython | null;
}

/** The resolved variable holding the interpreter's implementation and version (`cpython-3.13.0`). */
export const PYTHON_VERSION_VAR = 'PYTHON_VERSION';

export interface PlanPythonOptions {
  /** The project directory in the pinned tree (pyproject.toml, uv.lock or requirements.txt). */
  projectDir: string;
  search: InterpreterSearch;
  /** PY_SUBSTITUTE, checked against the lock here (before any work). */
  substitute?: string;
}

const numeric = (version: string) => version.replace(/^[a-z]+-/, '');
const ANY_PYTHON3: RequiresPython = { text: '>=3', file: 'pyproject.toml', clauses: [{ op: '>=', release: [3], wildcard: false }] };

/** Finds the interpreter and checks the substitutions; a UsageError (exit 2, one line) when it cannot. */
export function planPython(o: PlanPythonOptions): PythonPlan {
  const read = readRequiresPython(o.projectDir);
  if (typeof read === 'string') throw new UsageError('bad-requires-python', `${read}; fix requires-python at the pinned commit`);
  const spec = read ?? ANY_PYTHON3;
  const problem = unpinnedSubstitution(o.projectDir, parseSubstitutions(o.substitute));
  if (problem) throw new UsageError('bad-substitution', problem);
  const seen: Interpreter[] = [];
  for (const found of interpreters(o.search)) {
    if (satisfies(numeric(found.version), spec)) return { interpreter: found, requires: read };
    seen.push(found);
  }
  throw new UsageError('python-missing', missingMessage(o, spec, read, seen));
}

function missingMessage(o: PlanPythonOptions, spec: RequiresPython, read: RequiresPython | null, seen: Interpreter[]): string {
  const wanted = read ? `requires-python "${spec.text}" (${spec.file})` : 'Python 3';
  if (o.search.explicit !== undefined) {
    return seen.length === 0
      ? `PYTHON=${o.search.explicit} does not run as a Python interpreter; pass the path of one that satisfies ${wanted}`
      : `PYTHON=${o.search.explicit} is ${seen[0]!.version}, which does not satisfy ${wanted}; pass one that does, or unset PYTHON`;
  }
  const found = seen.length === 0 ? 'found none' : `found only ${seen.map((i) => `${numeric(i.version)} (${i.where})`).join(', ')}`;
  const minor = suggestedMinor(spec) ?? '3';
  return (
    `no Python interpreter satisfies ${wanted}: looked on PATH, in pyenv's versions and in uv's Pythons and ${found}; ` +
    `install one (pyenv install ${minor}, or uv python install ${minor}) or pass PYTHON=/path/to/python${minor}`
  );
}
