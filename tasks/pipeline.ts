import type { Pipeline, Vars } from '../src/target.ts';
import type { Profile } from './layout.ts';
import { DB_STEPS, dataGoals, dataNodes } from './data.ts';
import { CALIBRATION_GOALS, calibrationNodes } from './calibration.ts';
import { pythonEnvTarget } from './python-env.ts';

/**
 * The PolicyEngine US data pipeline, declared once. The same targets drive the built-in example
 * (examples/us-data, default) and a real policyengine-us-data checkout (REPO=...): the example
 * mirrors the real module names and flags. The data side (prerequisites, the database's ETL
 * chain, the datasets, their validation, the unit tests) is tasks/data.ts.
 */

export function makePipeline(profile: Profile, vars: Vars = {}): Pipeline {
  return {
    defaultGoals: [...CALIBRATION_GOALS, ...dataGoals(vars)],
    nodes: [
      { kind: 'target', target: pythonEnvTarget(profile) },
      ...dataNodes(profile, vars),
      ...calibrationNodes(),
    ],
    // The ETL chain is the Makefile's `database` recipe, module by module: `check` compares them.
    ...(vars.BUILD_DB === '0' ? {} : { mirrorsMakefile: [{ makeTarget: 'database', targets: DB_STEPS.map((step) => step.target) }] }),
  };
}
