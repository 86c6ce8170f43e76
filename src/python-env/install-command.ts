import { substitutionScript, type Substitution } from './substitutions.ts';

/**
 * The commands that build a pipeline environment into `{out}` from `{interpreter}` (the
 * interpreter found for the project's requires-python, resolved at execution: the key holds its
 * version, never its path). Each is one `sh -c` script, portable to any POSIX shell, that runs in
 * the project directory of the run's tree. The exact requirements installed are kept in the
 * environment as `requirements.lock.txt`.
 */

/** Where the requirements installed are recorded inside the environment. */
export const INSTALLED_REQUIREMENTS = 'requirements.lock.txt';

/**
 * From a uv project (pyproject.toml + uv.lock), as the real Modal image does (`uv sync --frozen`):
 * the lock exported with the given extras and the default groups (dev: pytest), the project
 * itself not installed (modules run from the tree as `python -m`), explicit substitutions
 * applied, then installed with uv into a venv of `{interpreter}`, bytecode compiled (actions run
 * with PYTHONDONTWRITEBYTECODE, so an uncompiled package would be recompiled by every action).
 * uv is taken from PATH (or ~/.local/bin, ~/.cargo/bin); without it, uv is installed from PyPI
 * into a bootstrap venv inside the environment, removed at the end.
 */
export function uvLockInstall(o: { extras: string[]; substitutions: Substitution[] }): string[] {
  const req = `{out}/${INSTALLED_REQUIREMENTS}`;
  const extras = o.extras.map((e) => ` --extra ${e}`).join('');
  const script = [
    'set -e',
    'mkdir -p "{out}"',
    'uv=$(command -v uv || true)',
    'for c in "$HOME/.local/bin/uv" "$HOME/.cargo/bin/uv"; do if [ -z "$uv" ] && [ -x "$c" ]; then uv=$c; fi; done',
    'if [ -z "$uv" ]; then',
    '  echo "python-env: uv is not on PATH; installing it from PyPI into a bootstrap venv"',
    '  "{interpreter}" -m venv "{out}/.bootstrap"',
    '  "{out}/.bootstrap/bin/python" -m pip install --quiet --disable-pip-version-check uv || { echo "python-env: uv is not on PATH and pip could not install it from PyPI (above); install uv (https://docs.astral.sh/uv/) and rerun" >&2; exit 1; }',
    '  uv="{out}/.bootstrap/bin/uv"',
    'fi',
    `"$uv" export --quiet --frozen --no-hashes --no-emit-project${extras} -o "${req}"`,
    ...substitutionScript(o.substitutions, req),
    '"$uv" venv --quiet --allow-existing --python "{interpreter}" "{out}"',
    `"$uv" pip install --compile-bytecode --python "{out}/bin/python" -r "${req}"`,
    'rm -rf "{out}/.bootstrap"',
  ].join('\n');
  return ['sh', '-c', script];
}

/**
 * From a pinned requirements file (the built-in twin): a venv of `{interpreter}` with pip, the
 * substitutions applied to a copy of the file.
 */
export function requirementsInstall(o: { file: string; substitutions: Substitution[] }): string[] {
  const req = `{out}/${INSTALLED_REQUIREMENTS}`;
  const script = [
    'set -e',
    '"{interpreter}" -m venv "{out}"',
    `cp "${o.file}" "${req}"`,
    ...substitutionScript(o.substitutions, req),
    `"{out}/bin/pip" install --disable-pip-version-check --no-input -q -r "${req}"`,
  ].join('\n');
  return ['sh', '-c', script];
}
