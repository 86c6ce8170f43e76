import type { Profile, Target } from '../src/target.ts';
import { requirementsInstall, uvLockInstall } from '../src/python-env/install-command.ts';
import { PYTHON_VERSION_VAR } from '../src/python-env/python-env.ts';
import { parseSubstitutions } from '../src/python-env/substitutions.ts';

/**
 * `python-env`: the one Python environment every Python step runs in (`{python}`, and its bin
 * first on PATH for every action that depends on it). Keyed by what it is made of: the pins
 * (pyproject.toml + uv.lock for a real checkout, requirements.txt for the twin), the exact
 * interpreter version found for requires-python (PYTHON_VERSION, resolved before any work), and
 * any explicit substitution of unserved pins (PY_SUBSTITUTE).
 *
 * A real checkout gets what the real Modal image installs (modal_app/images.py: `uv sync --frozen`
 * with the `l0` extra the fits import, and the default dev group, so the repository's pytest
 * runs), minus the project itself (modules run from the tree).
 */
export function pythonEnvTarget(profile: Profile): Target {
  const real = profile === 'real';
  return {
    name: 'python-env',
    description: real ? 'the pipeline Python environment: uv.lock with extra l0 and the dev group' : 'the pipeline Python environment, from requirements.txt',
    deps: [],
    sources: real ? ['pyproject.toml', 'uv.lock'] : ['pyproject.toml', 'requirements.txt'],
    vars: [PYTHON_VERSION_VAR, 'PY_SUBSTITUTE'],
    command: (v) => {
      const substitutions = parseSubstitutions(v.PY_SUBSTITUTE);
      return real ? uvLockInstall({ extras: ['l0'], substitutions }) : requirementsInstall({ file: 'requirements.txt', substitutions });
    },
    outputs: [],
    environment: true,
  };
}
