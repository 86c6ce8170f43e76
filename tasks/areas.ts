import { z } from 'zod';
import type { FanOut, Target, Vars } from '../src/target.ts';

/** One entry of artifacts/areas.json, written by tasks/adapters/area_list.py from the database. */
export const areaSchema = z.object({
  type: z.enum(['state', 'district', 'city', 'national']),
  id: z.string().regex(/^[A-Za-z0-9-]+$/),
  path: z.string().regex(/^(states|districts|cities|national)\/[A-Za-z0-9-]+\.h5$/),
  weight: z.number().positive(),
});
export type Area = z.infer<typeof areaSchema>;

/** A run artifact, as commands name it. */
export const art = (file: string) => `{run}/artifacts/${file}`;

/** Source globs shared by every Python stage: the package's helpers. */
export const COMMON = ['pyproject.toml', 'policyengine_us_data/__init__.py', 'policyengine_us_data/utils/**/*.py'];

export const CALIBRATION = 'policyengine_us_data/calibration';
/** The training target config (the fits and the workers' `in_training` flag). */
export const TARGET_CONFIG = `${CALIBRATION}/target_config.yaml`;
/** The validation target config of the area workers. */
export const VALIDATION_CONFIG = `${CALIBRATION}/target_config_full.yaml`;
/** The source-imputed dataset, as target `source-imputed-cps` names it (the real Modal volume keeps a yearless alias). */
export const SOURCE_IMPUTED = 'source_imputed_stratified_extended_cps_2024.h5';

/** An adapter of this repository (tasks/adapters/), hashed into the key of every target that runs it. */
export const adapter = (name: string, ...args: string[]) => ['{python}', `{adapters}/${name}`, ...args];

/**
 * Code and data every area worker reads: the worker imports the calibration package's
 * publish_local_area, validate_staging and unified_calibration, both target configs, and the
 * real block crosswalk (this order is part of every area's key).
 */
const AREA_SOURCES = [...COMMON, 'modal_app/**/*.py', `${CALIBRATION}/**/*.py`, TARGET_CONFIG, VALIDATION_CONFIG, 'policyengine_us_data/storage/block_crosswalk.csv.gz'];

const AREA_DIRS = { state: 'states', district: 'districts', city: 'cities', national: 'national' } as const;

/**
 * The dynamic fan-out: one target per area, each its own cache entry, so a rerun rebuilds only
 * the stale areas. The national file uses the national fit; every other area the state fit.
 */
export function areaFanOut(): FanOut {
  return {
    name: 'areas',
    description: 'one H5 per area (51 states, 436 districts, NYC, national)',
    deps: ['python-env', 'area-list', 'database', 'source-imputed-cps', 'fit-regional', 'fit-national'],
    childPrefix: 'h5:',
    expand: ({ readJson }) => z.array(areaSchema).parse(readJson('artifacts/areas.json')).map(areaTarget),
    sample: () => areaTarget({ type: 'state', id: 'AL', path: 'states/AL.h5', weight: 7 }),
  };
}

/**
 * One area: the real worker as the Modal wrapper runs it (modal_app/local_area.py:481-522), with
 * both target configs (relative to the repository root, the worker's cwd; the wrapper passes the
 * same files by absolute path), wrapped by tasks/adapters/run_areas.py, which fails the target when
 * its item failed (the worker exits 0 then) and keeps the item's validation rows.
 */
export function areaTarget(area: Area): Target {
  const national = area.type === 'national';
  const prefix = national ? 'national_' : '';
  const worker = (items: unknown[], v: Vars) =>
    adapter('run_areas.py', '--rows-dir', '{run}/validation', '--',
      '{python}', '-m', 'modal_app.worker_script',
      '--work-items', JSON.stringify(items),
      '--weights-path', art(`${prefix}calibration_weights.npy`),
      '--dataset-path', art(SOURCE_IMPUTED),
      '--db-path', art('policy_data.db'),
      '--output-dir', '{run}/h5s',
      '--geography-path', art(`${prefix}geography_assignment.npz`),
      '--n-clones', v.N_CLONES!,
      '--seed', v.SEED!,
      '--target-config', TARGET_CONFIG,
      '--validation-config', VALIDATION_CONFIG);
  const item = { type: area.type, id: area.id };
  return {
    name: `h5:${area.path.replace(/\.h5$/, '')}`,
    description: `${area.type} ${area.id}`,
    deps: ['python-env', 'database', 'source-imputed-cps', national ? 'fit-national' : 'fit-regional'],
    sources: AREA_SOURCES,
    pythonModules: ['modal_app.worker_script'],
    vars: ['N_CLONES', 'SEED'],
    env: ['EXAMPLE_WORKER_FAIL_ITEMS'],
    command: (v) => worker([item], v),
    // Locally, areas that miss together run as a few worker processes (the worker takes many items).
    batch: { group: national ? 'area-national' : 'area-regional', weight: area.weight, item, command: worker },
    outputs: [`h5s/${area.path}`, `validation/${AREA_DIRS[area.type]}/${area.id}.json`],
    executor: 'modal',
    resources: () => ({ class: 'cpu', weight: area.weight }),
  };
}
