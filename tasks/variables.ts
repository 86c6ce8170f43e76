import { z } from 'zod';
import { flag, nonNegativeInt, positiveInt, type VarSpec } from '../src/variables.ts';
import { SUBSTITUTION_PATTERN } from '../src/python-env/substitutions.ts';

/** GPU types the real Modal app defines fit functions for (GPU_FUNCTIONS in remote_calibration_runner.py). */
export const GPU_TYPES = ['T4', 'A10', 'A100-40GB', 'A100-80GB', 'H100'] as const;

const gpu = z.enum(GPU_TYPES);
const text = z.string().min(1, 'must not be empty');
const percent = z.string().regex(/^[0-9]+(\.[0-9]+)?$/, 'must be a non-negative number');

/**
 * Every variable `./build.ts` accepts. Which of them change a target's outputs (and so its key)
 * is declared per target in tasks/pipeline.ts; run-level ones (BRANCH, REPO, NUM_WORKERS...) are
 * never in a key.
 */
export const VARIABLES: VarSpec[] = [
  { name: 'BRANCH', description: 'branch, tag or commit to build (resolved once to a SHA)', schema: text, hint: 'pass an existing branch, tag or SHA' },
  { name: 'REPO', description: 'git checkout to build (default: this repository, whose examples/us-data is the built-in example)', schema: text, hint: 'pass the path of a git checkout' },
  { name: 'ALLOW_DIRTY', description: 'build uncommitted changes to tracked files (recorded as dirty)', default: '0', schema: flag, hint: 'use 0 or 1' },
  { name: 'YEAR', description: 'tax year of the targets database', default: '2024', schema: z.string().regex(/^20[0-9]{2}$/, 'must be a year like 2024'), hint: 'use a year like 2024' },
  { name: 'HOUSEHOLDS', description: "households in the example twin's microdata (its EXAMPLE_HOUSEHOLDS; no effect on a real checkout)", default: '2000', schema: positiveInt, hint: 'use a positive whole number, e.g. 2000' },
  // A real checkout gets the real pipeline's defaults (Makefile:9-14; num_workers in modal_app/pipeline.py:678).
  { name: 'N_CLONES', description: 'clones per household in the calibration package', default: '3', profileDefaults: { real: '430' }, schema: positiveInt, hint: 'use a positive whole number, e.g. 3 (430 in production)' },
  { name: 'EPOCHS', description: 'total epochs of the state (regional) fit', default: '200', profileDefaults: { real: '1000' }, schema: positiveInt, hint: 'use a positive whole number of epochs, e.g. 200' },
  { name: 'NATIONAL_EPOCHS', description: 'total epochs of the national fit', default: '200', profileDefaults: { real: '1000' }, schema: positiveInt, hint: 'use a positive whole number of epochs, e.g. 200' },
  { name: 'LOG_FREQ', description: 'epochs between the fits\' log rows and checkpoints (--log-freq)', default: '10', profileDefaults: { real: '100' }, schema: positiveInt, hint: 'use a positive whole number of epochs, e.g. 100 (the real pipeline)' },
  { name: 'GPU', description: `GPU of the regional fit on Modal (${GPU_TYPES.join(', ')})`, default: 'T4', schema: gpu, hint: `use one of ${GPU_TYPES.join(', ')}` },
  { name: 'NATIONAL_GPU', description: 'GPU of the national fit on Modal', default: 'T4', schema: gpu, hint: `use one of ${GPU_TYPES.join(', ')}` },
  { name: 'SEED', description: "random seed of the example twin's data (its EXAMPLE_SEED) and of the fits", default: '42', schema: nonNegativeInt, hint: 'use a whole number' },
  { name: 'NUM_WORKERS', description: 'Modal workers for the area fan-out (not in any key)', default: '8', profileDefaults: { real: '50' }, schema: positiveInt, hint: 'use a positive whole number, e.g. 8' },
  { name: 'EXECUTOR', description: 'where heavy targets run: local or modal (the data build, package, fits and areas; never changes a key)', default: 'local', schema: z.enum(['local', 'modal']), hint: 'use local or modal' },
  { name: 'MODAL_TARGETS', description: 'more targets to run on Modal, whatever EXECUTOR is: names or * globs, comma-separated, e.g. db-*,acs (never changes a key)', schema: z.string().regex(/^[\w.:/*-]+(,[\w.:/*-]+)*$/, 'expected target names or globs separated by commas'), hint: 'write it as MODAL_TARGETS=db-*,acs (see ./build.ts targets)' },
  { name: 'BUILD_DB', description: '1 builds policy_data.db with the ETL chain of `make database` (the real pipeline always does); 0 takes it from the current registered version', default: '1', schema: flag, hint: 'use 0 or 1' },
  { name: 'UNIT_TESTS', description: "1 runs the repository's unit tests (pytest tests/unit/) as a goal of `pipeline`, so a failure stops staging; 0 skips them", default: '1', schema: flag, hint: 'use 0 or 1' },
  { name: 'PYTHON', description: 'the interpreter the Python environment is made from (default: found for requires-python on PATH, in pyenv, in uv; its version is in the key)', schema: text, hint: 'pass the path of an interpreter, e.g. /usr/bin/python3.13' },
  { name: 'PY_SUBSTITUTE', description: 'explicit version substitutions for pins the package index does not serve, e.g. "policyengine-us==1.691.1 policyengine-core==3.26.0" (in the environment key and meta.json)', schema: z.string().regex(SUBSTITUTION_PATTERN, 'expected name==version words separated by spaces'), hint: 'write it as PY_SUBSTITUTE="name==version name==version"' },
  { name: 'VERSION', description: 'release version (default: the project version in pyproject.toml at the pinned SHA)', schema: z.string().regex(/^[0-9A-Za-z.+-]+$/, 'letters, digits, . + - only'), hint: 'use a version like 1.72.3' },
  { name: 'RUN_ID', description: 'a run, for status, logs, promote', schema: text, hint: 'pass a run id listed by ./build.ts status' },
  { name: 'RESUME', description: 'a run whose remote calls to reattach to', schema: text, hint: 'pass a run id listed by ./build.ts status' },
  // Publishing (src/publish-config.ts). Tokens are never variables: HF_TOKEN / HUGGING_FACE_TOKEN and
  // GOOGLE_APPLICATION_CREDENTIALS come from the environment only, so they never reach meta.json.
  { name: 'HF_REPO', description: 'Hugging Face repo (namespace/name) for diagnostics, staging, production and the registry (default: the local store)', schema: z.string().regex(/^[\w.-]+\/[\w.-]+$/, 'expected namespace/name'), hint: 'use namespace/name, e.g. policyengine/policyengine-us-data' },
  { name: 'HF_REPO_TYPE', description: 'type of HF_REPO: model (as the real repo), dataset or space', default: 'model', schema: z.enum(['model', 'dataset', 'space']), hint: 'use model, dataset or space' },
  { name: 'GCS_BUCKET', description: 'GCS bucket mirroring production and holding the authoritative registry (optional)', schema: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, 'expected a GCS bucket name'), hint: 'use a bucket name like policyengine-us-data' },
  { name: 'STORE_DIR', description: 'local store directory used when HF_REPO is unset (default: <cache>/store)', schema: text, hint: 'pass a directory path' },
  { name: 'PUBLISH', description: '1 publishes diagnostics and staging at the end of `pipeline`; 0 skips it', default: '1', schema: flag, hint: 'use 0 or 1' },
  { name: 'NEW_VERSION', description: 'the version a rollback is published as', schema: z.string().regex(/^[0-9A-Za-z.+-]+$/, 'letters, digits, . + - only'), hint: 'use a version like 1.72.5' },
  // Review (src/review/): what `report` and `diff` compare with, and promote's quality gates.
  { name: 'AGAINST', description: 'what report and diff compare a run with: a registered version or another run id (default: the current version)', schema: z.string().regex(/^[0-9A-Za-z._+-]+$/, 'letters, digits, . _ + - only'), hint: 'pass a version listed by ./build.ts versions or a run id' },
  { name: 'WORSE_BY', description: 'a target counts as worse when its |relative error| grew by more than this many percentage points (report, diff, promote)', default: '5', schema: percent, hint: 'use a number of percentage points, e.g. 5' },
  { name: 'MAX_MEAN_ERROR', description: "promote refuses when a fit's mean |relative error| is above this percentage (off unless set)", schema: percent, hint: 'use a percentage, e.g. 25' },
  { name: 'MAX_REGRESSION', description: "promote refuses when a fit's mean |relative error| rose by more than this many points against the current version (off unless set)", schema: percent, hint: 'use a number of percentage points, e.g. 2' },
  { name: 'FORCE', description: 'promote despite failed quality gates; the failures are recorded in the registry entry', default: '0', schema: flag, hint: 'use 0 or 1' },
  { name: 'KEEP', description: 'unpromoted runs kept by gc and --clean-old-runs (newest first)', default: '5', schema: nonNegativeInt, hint: 'use a whole number, e.g. 5' },
];
