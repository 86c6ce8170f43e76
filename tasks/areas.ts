import { z } from 'zod';
import type { FanOut, Target, Vars } from '../src/target.ts';

/** One entry of artifacts/areas.json, written by the area catalogue from the database. */
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

/** Code every area worker runs (in this order: it is part of every area's key). */
const AREA_CODE = [...COMMON, 'modal_app/**/*.py'];

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

export function areaTarget(area: Area): Target {
  const national = area.type === 'national';
  const prefix = national ? 'national_' : '';
  const worker = (items: unknown[], v: Vars) => [
    '{python}', '-m', 'modal_app.worker_script',
    '--work-items', JSON.stringify(items),
    '--weights-path', art(`${prefix}calibration_weights.npy`),
    '--geography-path', art(`${prefix}geography_assignment.npz`),
    '--dataset-path', art('source_imputed_stratified_extended_cps_2024.h5'),
    '--db-path', art('policy_data.db'),
    '--output-dir', '{run}/h5s',
    '--overrides-dir', 'calibration/area_overrides',
    '--n-clones', v.N_CLONES!,
    '--seed', v.SEED!,
  ];
  const item = { type: area.type, id: area.id };
  return {
    name: `h5:${area.path.replace(/\.h5$/, '')}`,
    description: `${area.type} ${area.id}`,
    deps: ['python-env', 'database', 'source-imputed-cps', national ? 'fit-national' : 'fit-regional'],
    // The override file is this area's own input: editing it rebuilds this area alone.
    sources: [...AREA_CODE, `calibration/area_overrides/${area.path.replace(/\.h5$/, '')}.json`],
    pythonModules: ['modal_app.worker_script'],
    vars: ['N_CLONES', 'SEED'],
    command: (v) => worker([item], v),
    // Locally, areas that miss together run as a few worker processes (the worker takes many items).
    batch: { group: national ? 'area-national' : 'area-regional', weight: area.weight, item, command: worker },
    outputs: [`h5s/${area.path}`],
    executor: 'modal',
    resources: () => ({ class: 'cpu', weight: area.weight }),
  };
}
