import type { Pipeline, Vars } from '../src/target.ts';
import type { Profile } from './layout.ts';
import { dataGoals, dataNodes } from './data.ts';
import { CALIBRATION_GOALS, calibrationNodes } from './calibration.ts';

/**
 * The PolicyEngine US data pipeline, declared once. The same targets drive the built-in example
 * (examples/us-data, default) and a real policyengine-us-data checkout (REPO=...): the example
 * mirrors the real module names and flags. The data side (prerequisites, the database's ETL
 * chain, the datasets, their validation, the unit tests) is tasks/data.ts.
 */

export function makePipeline(profile: Profile, vars: Vars = {}): Pipeline {
  const real = profile === 'real';
  return {
    defaultGoals: [...CALIBRATION_GOALS, ...dataGoals(vars)],
    nodes: [
      {
        kind: 'target',
        target: {
          name: 'python-env',
          description: 'the pipeline Python environment, keyed by its requirements',
          deps: [],
          sources: real ? ['pyproject.toml', 'uv.lock'] : ['requirements.txt'],
          vars: [],
          command: () =>
            real
              ? ['sh', '-c', 'uv export --frozen --no-emit-project -o {out}.req && uv venv {out} && uv pip install --python {out}/bin/python -r {out}.req']
              : ['sh', '-c', 'python3 -m venv {out} && {out}/bin/pip install --disable-pip-version-check --no-input -q -r requirements.txt'],
          outputs: [],
          environment: true,
        },
      },
      ...dataNodes(profile, vars),
      ...calibrationNodes(),
    ],
  };
}
