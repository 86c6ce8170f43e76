import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `requires-python` (PEP 621) and the PEP 440 version specifiers it holds (`>=3.12, <3.15`,
 * `~=3.11`, `==3.13.*`, `!=3.12.0`), restricted to what interpreter versions need: release
 * numbers only (an interpreter reports `3.13.0`, never a pre-release tag that matters here).
 */

/** A specifier set as written, and the clauses it parsed into. */
export interface RequiresPython {
  text: string;
  /** The file it came from, relative to the project directory (for messages). */
  file: string;
  clauses: Clause[];
}

interface Clause {
  op: '~=' | '==' | '!=' | '<=' | '>=' | '<' | '>' | '===';
  release: number[];
  /** `==3.13.*` / `!=3.12.*`: compares the given prefix only. */
  wildcard: boolean;
}

const CLAUSE = /^\s*(~=|===|==|!=|<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)*)(\.\*)?\s*$/;

/** The release numbers of a version such as `3.13.0` (`3.13.0rc1` -> [3, 13, 0]), or null. */
export function parseRelease(version: string): number[] | null {
  const m = /^\s*v?([0-9]+(?:\.[0-9]+)*)/.exec(version);
  return m ? m[1]!.split('.').map(Number) : null;
}

/** Parses a specifier set; an error message when a clause is not one this understands. */
export function parseSpecifiers(text: string, file: string): RequiresPython | string {
  const clauses: Clause[] = [];
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const m = CLAUSE.exec(part);
    if (!m) return `${file}: requires-python "${text}" has a clause "${part.trim()}" that is not a PEP 440 version specifier`;
    const op = m[1] as Clause['op'];
    const wildcard = m[3] !== undefined;
    if (wildcard && op !== '==' && op !== '!=') return `${file}: requires-python "${text}": ".*" is only allowed after == or !=`;
    clauses.push({ op, release: m[2]!.split('.').map(Number), wildcard });
  }
  return { text: text.trim(), file, clauses };
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const prefixEquals = (version: number[], prefix: number[]) => prefix.every((n, i) => (version[i] ?? 0) === n);

function matches(version: number[], c: Clause): boolean {
  const cmp = compare(version, c.release);
  switch (c.op) {
    case '==':
    case '===':
      return c.wildcard ? prefixEquals(version, c.release) : cmp === 0;
    case '!=':
      return c.wildcard ? !prefixEquals(version, c.release) : cmp !== 0;
    case '<=':
      return cmp <= 0;
    case '>=':
      return cmp >= 0;
    case '<':
      return cmp < 0;
    case '>':
      return cmp > 0;
    case '~=':
      // ~=3.11 means >=3.11, ==3.*; ~=3.11.2 means >=3.11.2, ==3.11.*
      return cmp >= 0 && prefixEquals(version, c.release.slice(0, Math.max(1, c.release.length - 1)));
  }
}

/** Whether an interpreter version satisfies every clause (an empty set allows any). */
export function satisfies(version: string, spec: RequiresPython): boolean {
  const release = parseRelease(version);
  return release !== null && spec.clauses.every((c) => matches(release, c));
}

/** The newest `3.N` (N from 14 down to 8) a spec allows: what a failure suggests installing. */
export function suggestedMinor(spec: RequiresPython): string | null {
  for (let minor = 14; minor >= 8; minor--) if (satisfies(`3.${minor}.0`, spec) || satisfies(`3.${minor}.99`, spec)) return `3.${minor}`;
  return null;
}

/**
 * The project's `requires-python`, from `[project]` in pyproject.toml (a minimal TOML reading: a
 * quoted string on one line, as every packaging tool writes it); null when the project declares
 * none (then any Python 3 will do). An error message when the value cannot be parsed.
 */
export function readRequiresPython(projectDir: string): RequiresPython | null | string {
  const file = join(projectDir, 'pyproject.toml');
  if (!existsSync(file)) return null;
  let table = '';
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const header = /^\s*\[([^\]]+)\]\s*(#.*)?$/.exec(line);
    if (header) {
      table = header[1]!.trim();
      continue;
    }
    if (table !== 'project') continue;
    const m = /^\s*requires-python\s*=\s*(?:"([^"]*)"|'([^']*)')/.exec(line);
    if (m) return parseSpecifiers(m[1] ?? m[2]!, 'pyproject.toml');
  }
  return null;
}
