import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Explicit version substitutions (`PY_SUBSTITUTE="policyengine-us==1.691.1 policyengine-core==3.26.0"`):
 * where the package index no longer serves a version the lock pins, the user names the version to
 * take instead. Never implicit: the environment's key and the run's meta.json hold the variable,
 * and each substituted package must be one the lock (or requirements file) pins.
 */
export interface Substitution {
  /** PEP 503 normalised: lower case, runs of `-_.` as one `-`. */
  name: string;
  version: string;
}

/** The variable's value: words `name==version` separated by spaces. */
export const SUBSTITUTION_PATTERN = /^\s*[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+(\s+[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+)*\s*$/;

export const normaliseName = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');

export function parseSubstitutions(value: string | undefined): Substitution[] {
  if (!value?.trim()) return [];
  return value
    .trim()
    .split(/\s+/)
    .map((word) => {
      const [name, version] = word.split('==') as [string, string];
      return { name: normaliseName(name), version };
    });
}

/**
 * The packages a project's pins name, from `uv.lock` (`name = "..."` of each `[[package]]`) or,
 * for a requirements project, `requirements.txt` (`name==version` lines).
 */
function pinnedNames(projectDir: string): { file: string; names: Set<string> } | null {
  const lock = join(projectDir, 'uv.lock');
  if (existsSync(lock)) {
    const names = new Set<string>();
    for (const m of readFileSync(lock, 'utf8').matchAll(/^\[\[package\]\]\s*\nname\s*=\s*"([^"]+)"/gm)) names.add(normaliseName(m[1]!));
    return { file: 'uv.lock', names };
  }
  const requirements = join(projectDir, 'requirements.txt');
  if (existsSync(requirements)) {
    const names = new Set<string>();
    for (const m of readFileSync(requirements, 'utf8').matchAll(/^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==/gm)) names.add(normaliseName(m[1]!));
    return { file: 'requirements.txt', names };
  }
  return null;
}

/** A one-line problem when a substitution names a package the project does not pin, else null. */
export function unpinnedSubstitution(projectDir: string, subs: Substitution[]): string | null {
  if (subs.length === 0) return null;
  const pinned = pinnedNames(projectDir);
  if (!pinned) return `PY_SUBSTITUTE is set, but the project has neither uv.lock nor requirements.txt to substitute in; unset PY_SUBSTITUTE`;
  const missing = subs.find((s) => !pinned.names.has(s.name));
  return missing ? `PY_SUBSTITUTE names ${missing.name}, which ${pinned.file} does not pin; substitute only packages the lock pins (check the spelling)` : null;
}

/**
 * POSIX sh lines that rewrite the pins of `file` (a requirements file as `uv export` or a person
 * writes it): `name==old` becomes `name==new`, environment markers kept. A name is matched
 * whatever its separators (`policyengine_us` or `policyengine-us`); uv exports names in lower case. Each line fails the script if
 * the pin is not there.
 */
export function substitutionScript(subs: Substitution[], file: string): string[] {
  return subs.map((s) => {
    const pattern = s.name.split('-').map(escapeRegex).join('[-_.]+');
    const sed = `s/^${pattern}==[^ ;]+/${s.name}==${s.version}/`;
    return (
      `grep -qE '^${pattern}==' "${file}" || { echo "python-env: PY_SUBSTITUTE names ${s.name}, which the exported lock does not pin" >&2; exit 2; }\n` +
      `sed -E '${sed}' "${file}" > "${file}.new" && mv "${file}.new" "${file}"`
    );
  });
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
