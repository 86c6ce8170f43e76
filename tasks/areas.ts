import { z } from 'zod';
import type { FanOut, Target } from '../src/target.ts';

/** One entry of artifacts/areas.json, written by the area catalogue from the database. */
export const areaSchema = z.object({
  type: z.enum(['state', 'district', 'city', 'national']),
  id: z.string().regex(/^[A-Za-z0-9-]+$/),
  path: z.string().regex(/^(states|districts|cities|national)\/[A-Za-z0-9-]+\.h5$/),
  weight: z.number().positive(),
});
export type Area = z.infer<typeof areaSchema>;

const art = (file: string) => `{run}/artifacts/${file}`;

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
  };
}

export function areaTarget(area: Area): Target {
  const national = area.type === 'national';
  const prefix = national ? 'national_' : '';
  return {
    name: `h5:${area.path.replace(/\.h5$/, '')}`,
    description: `${area.type} ${area.id}`,
    deps: ['python-env', 'database', 'source-imputed-cps', national ? 'fit-national' : 'fit-regional'],
    sources: ['pyproject.toml', 'policyengine_us_data/__init__.py', 'policyengine_us_data/utils/**/*.py', 'modal_app/**/*.py'],
    vars: ['N_CLONES', 'SEED'],
    command: (v) => [
      '{python}', '-m', 'modal_app.worker_script',
      '--work-items', JSON.stringify([{ type: area.type, id: area.id }]),
      '--weights-path', art(`${prefix}calibration_weights.npy`),
      '--geography-path', art(`${prefix}geography_assignment.npz`),
      '--dataset-path', art('source_imputed_stratified_extended_cps_2024.h5'),
      '--db-path', art('policy_data.db'),
      '--output-dir', '{run}/h5s',
      '--n-clones', v.N_CLONES!,
      '--seed', v.SEED!,
    ],
    outputs: [`h5s/${area.path}`],
    executor: 'modal',
    resources: () => ({ class: 'cpu', weight: area.weight }),
  };
}
