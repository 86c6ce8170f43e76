import type { Node, Target } from '../src/target.ts';
import { adapter, areaFanOut, art, CALIBRATION, COMMON, SOURCE_IMPUTED, TARGET_CONFIG } from './areas.ts';

/**
 * The calibration half of the pipeline, one command per target for the built-in twin and a real
 * policyengine-us-data checkout alike: the commands the real Modal wrappers run (file:line in
 * each comment), wrapped by small adapters of this repository (tasks/adapters/) where the real
 * pipeline does a step in code that has no command line.
 */
const UNIFIED = 'policyengine_us_data.calibration.unified_calibration';

/**
 * The real pipeline's `num_workers` (modal_app/pipeline.py:678), passed to the package build as
 * `--workers` (RCR:400-401). Fixed rather than NUM_WORKERS: a value in a command is in the key,
 * and a batching knob must not rebuild a 14-hour package.
 */
export const PACKAGE_WORKERS = '50';

/**
 * `--log-freq` of both fits is the variable LOG_FREQ: a real checkout defaults to what the real
 * pipeline passes (PL:867, 888: 100, so 10 rows per target in calibration_log.csv at 1000 epochs
 * and a checkpoint every 100 epochs: a preempted fit loses at most 100). It is in the fits' keys:
 * the real fit trains in chunks of this length and turns its weight jitter off after the first
 * chunk (UC:897), so the value can change the weights. The twin defaults to 10 (20 points at its
 * 200 epochs), so the review page's curves show convergence.
 */

/** Files the matrix builder reads from storage (placeholders in the fixture; absent in the twin). */
const MATRIX_DATA = ['block_cd_distributions.csv.gz', 'block_crosswalk.csv.gz', 'county_cd_distributions.csv', 'national_and_district_rents_2023.csv'].map(
  (f) => `policyengine_us_data/storage/${f}`,
);
const CALIBRATION_CODE = [...COMMON, `${CALIBRATION}/**/*.py`, TARGET_CONFIG];

const py = (module: string, ...args: string[]) => ['{python}', '-m', module, ...args];

/**
 * The package build as RCR::_build_package_impl runs it (RCR:383-403; the pipeline passes
 * workers and n_clones, no target config: the default applies), then the sidecar
 * `calibration_package_meta.json` as RCR::_write_package_sidecar writes it; stdout (validate_package's
 * report, UC:1398-1412) is kept for the diagnostics.
 */
function calibrationPackage(): Target {
  return {
    name: 'calibration-package',
    description: 'calibration_package.pkl: the target matrix over cloned households, its sidecar and validation report',
    deps: ['python-env', 'database', 'source-imputed-cps'],
    sources: [...CALIBRATION_CODE, ...MATRIX_DATA],
    pythonModules: [UNIFIED],
    vars: ['N_CLONES'],
    command: (v) =>
      adapter('package_sidecar.py', '--report', art('calibration_package_validation.txt'), '--',
        ...py(UNIFIED, '--device', 'cpu', '--epochs', '0', '--db-path', art('policy_data.db'), '--dataset', art(SOURCE_IMPUTED),
          '--build-only', '--package-output', art('calibration_package.pkl'), '--workers', PACKAGE_WORKERS, '--n-clones', v.N_CLONES!)),
    outputs: ['artifacts/calibration_package.pkl', 'artifacts/calibration_package_meta.json', 'artifacts/calibration_package_validation.txt'],
    executor: 'modal',
    resources: () => ({ class: 'cpu' }),
  };
}

/** What each fit leaves in the run's artifacts (with `national_` for the national fit). */
export const FIT_FILES = [
  'calibration_weights.npy',
  'geography_assignment.npz',
  'stacked_blocks.npy',
  'geo_labels.json',
  'unified_run_config.json',
  'unified_diagnostics.csv',
  'calibration_log.csv',
];

/**
 * A fit with the real pipeline's flags (PL:853-889 -> RCR:271-283): the national one differs only
 * by its hyper-parameters. We add `--n-clones` (the fit writes it into the geography, and the
 * worker rejects a mismatch; the default is 430) and `--output` in `{checkpoint}`, a directory
 * private to this action key that survives failures, so the checkpoint and the epoch log stay
 * together for a resumed fit to append. The adapter passes the remaining epochs (`--epochs` is
 * additional on resume) and collects the files the markers name, prefixed.
 */
function fit(national: boolean): Target {
  const prefix = national ? 'national_' : '';
  const epochs = national ? 'NATIONAL_EPOCHS' : 'EPOCHS';
  const gpu = national ? 'NATIONAL_GPU' : 'GPU';
  return {
    name: national ? 'fit-national' : 'fit-regional',
    description: `${national ? 'national' : 'state'} weight fit (GPU on Modal)`,
    deps: ['python-env', 'calibration-package'],
    sources: CALIBRATION_CODE,
    pythonModules: [UNIFIED],
    vars: [epochs, gpu, 'N_CLONES', 'LOG_FREQ'],
    env: ['EXAMPLE_FIT_SLEEP_MS', 'EXAMPLE_FIT_FAIL_AT_EPOCH'],
    command: (v) =>
      adapter('fit.py', '--total-epochs', v[epochs]!, ...(national ? ['--prefix', prefix] : []), '--collect-into', '{run}/artifacts', '--',
        ...py(UNIFIED, '--device', 'cuda', '--package-path', art('calibration_package.pkl'), '--target-config', TARGET_CONFIG,
          '--beta', '0.65', '--lambda-l0', national ? '2e-2' : '1e-7', '--lambda-l2', national ? '1e-12' : '1e-8', '--log-freq', v.LOG_FREQ!,
          '--n-clones', v.N_CLONES!, '--output', '{checkpoint}/calibration_weights.npy', '--checkpoint-output', '{checkpoint}/calibration_weights.checkpoint.pt')),
    outputs: FIT_FILES.map((f) => `artifacts/${prefix}${f}`),
    executor: 'modal',
    resources: (v) => ({ class: v[gpu]! }),
  };
}

/** The area list: the inline code of the real coordinator (LA:884-929), run against the database. */
function areaList(): Target {
  return {
    name: 'area-list',
    description: 'the areas to build, enumerated from the database',
    deps: ['python-env', 'database'],
    sources: [...COMMON, `${CALIBRATION}/calibration_utils.py`, `${CALIBRATION}/publish_local_area.py`],
    pythonModules: ['policyengine_us_data.calibration.calibration_utils', 'policyengine_us_data.calibration.publish_local_area'],
    vars: [],
    command: () => adapter('area_list.py', '--db-path', art('policy_data.db'), '--output', art('areas.json')),
    outputs: ['artifacts/areas.json'],
  };
}

/** National H5 validation (LA:1166-1187): warn-only, its stdout kept as in PL:647-652. */
function nationalValidation(): Target {
  return {
    name: 'national-validation',
    description: 'validate_national_h5 on national/US.h5 (warn-only), its report kept',
    deps: ['python-env', 'areas'],
    sources: [...COMMON, `${CALIBRATION}/**/*.py`],
    pythonModules: ['policyengine_us_data.calibration.validate_national_h5'],
    vars: [],
    command: () =>
      adapter('national_validation.py', '--output', '{run}/diagnostics/national_validation.txt', '--',
        ...py('policyengine_us_data.calibration.validate_national_h5', '--h5-path', '{run}/h5s/national/US.h5')),
    outputs: ['diagnostics/national_validation.txt'],
  };
}

/** Every area's validation rows in the real validation_results.csv (PL:516-654). */
function validationResults(): Target {
  return {
    name: 'validation-results',
    description: 'validation_results.csv: every area against its database targets',
    deps: ['python-env', 'area-list', 'areas'],
    sources: [],
    vars: [],
    command: () => adapter('validation_results.py', '--areas', art('areas.json'), '--rows-dir', '{run}/validation', '--output', '{run}/diagnostics/validation_results.csv'),
    outputs: ['diagnostics/validation_results.csv'],
  };
}

/** The local-area manifest as validate_staging writes it (LA:574-590): regions only. */
function manifest(): Target {
  return {
    name: 'manifest',
    description: 'manifest.json: sha256 and size of every state, district and city file',
    deps: ['python-env', 'areas'],
    sources: [...COMMON],
    pythonModules: ['policyengine_us_data.utils.manifest'],
    vars: ['VERSION'],
    command: (v) => adapter('manifest.py', '--staging-dir', '{run}', '--subdir', 'h5s', ...(v.VERSION ? ['--version', v.VERSION] : [])),
    outputs: ['h5s/manifest.json'],
  };
}

/** The fit diagnostics the real run archives (PL:186-210) and the package report. */
const DIAGNOSTICS = [
  ...['unified_run_config.json', 'unified_diagnostics.csv', 'calibration_log.csv'].flatMap((f) => [f, `national_${f}`]),
  'calibration_package_validation.txt',
];

function diagnostics(): Target {
  return {
    name: 'diagnostics',
    description: 'fit diagnostics and the package report gathered for review',
    deps: ['calibration-package', 'fit-regional', 'fit-national'],
    sources: [],
    vars: [],
    command: () => ['cp', ...DIAGNOSTICS.map((f) => art(f)), '{run}/diagnostics/'],
    outputs: DIAGNOSTICS.map((f) => `diagnostics/${f}`),
  };
}

/** The goals of the calibration half that `./build.ts pipeline` builds. */
export const CALIBRATION_GOALS = ['manifest', 'diagnostics', 'national-validation', 'validation-results'];

/** The calibration nodes, in pipeline order. */
export function calibrationNodes(): Node[] {
  const targets = [calibrationPackage(), fit(false), fit(true), areaList()];
  return [
    ...targets.map((target): Node => ({ kind: 'target', target })),
    { kind: 'fanout', fanout: areaFanOut() },
    ...[nationalValidation(), validationResults(), manifest(), diagnostics()].map((target): Node => ({ kind: 'target', target })),
  ];
}
