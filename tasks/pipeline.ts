import type { Pipeline, Target, Vars } from '../src/target.ts';
import type { Profile } from './layout.ts';
import { areaFanOut, art, COMMON } from './areas.ts';
import { dataGoals, dataNodes } from './data.ts';

/**
 * The PolicyEngine US data pipeline, declared once. The same targets drive the built-in example
 * (examples/us-data, default) and a real policyengine-us-data checkout (REPO=...): the example
 * mirrors the real module names and flags. The data side (prerequisites, the database's ETL
 * chain, the datasets, their validation, the unit tests) is tasks/data.ts.
 */
const py = (module: string, ...args: string[]) => ['{python}', '-m', module, ...args];

export function makePipeline(profile: Profile, vars: Vars = {}): Pipeline {
  const real = profile === 'real';
  /** The calibration target config (the twin keeps it at its root; the real one lives in the package). */
  const targetConfig = real ? 'policyengine_us_data/calibration/target_config.yaml' : 'calibration/target_config.yaml';
  const fit = (national: boolean): Target => {
    const prefix = national ? 'national_' : '';
    const files = ['calibration_weights.npy', 'geography_assignment.npz', 'unified_run_config.json', 'unified_diagnostics.csv', 'calibration_log.csv'];
    const epochs = national ? 'NATIONAL_EPOCHS' : 'EPOCHS';
    const gpu = national ? 'NATIONAL_GPU' : 'GPU';
    const checkpoint = `{checkpoint}/${prefix}calibration_weights.checkpoint.npz`;
    return {
      name: national ? 'fit-national' : 'fit-regional',
      description: `${national ? 'national' : 'state'} weight fit (GPU on Modal)`,
      deps: ['python-env', 'calibration-package'],
      sources: [...COMMON, 'policyengine_us_data/calibration/**/*.py', targetConfig],
      pythonModules: ['policyengine_us_data.calibration.unified_calibration'],
      vars: [epochs, gpu, 'SEED'],
      env: ['EXAMPLE_FIT_SLEEP_MS'],
      command: (v) => [
        ...py('policyengine_us_data.calibration.unified_calibration'),
        '--device', real ? 'cuda' : 'cpu',
        '--epochs', v[epochs]!,
        '--package-path', art('calibration_package.pkl'),
        '--target-config', targetConfig,
        '--beta', '0.65',
        '--lambda-l0', national ? '2e-2' : '1e-7',
        '--lambda-l2', national ? '1e-12' : '1e-8',
        '--learning-rate', '0.15',
        // The real pipeline logs every 100 epochs (modal_app/pipeline.py: 10 points at its default
        // 1,000 epochs, each a full per-target log and checkpoint); the example logs 20 times per fit
        // whatever EPOCHS is, so the review's loss curves have enough points to judge convergence.
        '--log-freq', real ? '100' : String(Math.max(1, Math.floor(Number(v[epochs]) / 20))),
        '--seed', v.SEED!,
        '--output-dir', '{run}/artifacts',
        '--checkpoint-output', checkpoint,
        `{resume-from:${checkpoint}}`,
        ...(national ? ['--national'] : []),
      ],
      outputs: files.map((f) => `artifacts/${prefix}${f}`),
      executor: 'modal',
      resources: (v) => ({ class: v[gpu]! }),
    };
  };

  const diagnosticsFiles = ['unified_run_config.json', 'unified_diagnostics.csv', 'calibration_log.csv'].flatMap((f) => [f, `national_${f}`]);

  return {
    defaultGoals: ['manifest', 'diagnostics', ...dataGoals(vars)],
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
      {
        kind: 'target',
        target: {
          name: 'calibration-package',
          description: 'calibration_package.pkl: the target matrix over cloned households',
          deps: ['python-env', 'database', 'source-imputed-cps'],
          sources: [...COMMON, 'policyengine_us_data/calibration/**/*.py', targetConfig],
          pythonModules: ['policyengine_us_data.calibration.unified_calibration'],
          vars: ['N_CLONES', 'SEED'],
          command: (v) => [
            ...py('policyengine_us_data.calibration.unified_calibration'),
            '--device', 'cpu', '--epochs', '0', '--build-only',
            '--db-path', art('policy_data.db'),
            '--dataset', art('source_imputed_stratified_extended_cps_2024.h5'),
            '--package-output', art('calibration_package.pkl'),
            '--n-clones', v.N_CLONES!,
            '--target-config', targetConfig,
            '--seed', v.SEED!,
          ],
          outputs: ['artifacts/calibration_package.pkl', 'artifacts/calibration_package_meta.json'],
          executor: 'modal',
          resources: () => ({ class: 'cpu' }),
        },
      },
      { kind: 'target', target: fit(false) },
      { kind: 'target', target: fit(true) },
      {
        kind: 'target',
        target: {
          name: 'area-list',
          description: 'the areas to build, enumerated from the database',
          deps: ['python-env', 'database'],
          sources: [...COMMON, 'policyengine_us_data/calibration/area_catalog.py'],
          pythonModules: ['policyengine_us_data.calibration.area_catalog'],
          vars: [],
          command: () => py('policyengine_us_data.calibration.area_catalog', '--db-path', art('policy_data.db'), '--output', art('areas.json')),
          outputs: ['artifacts/areas.json'],
        },
      },
      { kind: 'fanout', fanout: areaFanOut() },
      {
        kind: 'target',
        target: {
          name: 'manifest',
          description: 'manifest.json: sha256 and size of every area file',
          deps: ['python-env', 'areas'],
          sources: [...COMMON],
          pythonModules: ['policyengine_us_data.utils.manifest'],
          vars: [],
          command: () => py('policyengine_us_data.utils.manifest', '--h5-dir', '{run}/h5s', '--output', '{run}/h5s/manifest.json'),
          outputs: ['h5s/manifest.json'],
        },
      },
      {
        kind: 'target',
        target: {
          name: 'diagnostics',
          description: 'fit diagnostics gathered for review',
          deps: ['fit-regional', 'fit-national'],
          sources: [],
          vars: [],
          command: () => ['cp', ...diagnosticsFiles.map((f) => art(f)), '{run}/diagnostics/'],
          outputs: diagnosticsFiles.map((f) => `diagnostics/${f}`),
        },
      },
    ],
  };
}
