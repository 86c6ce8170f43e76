import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Where published things live in a store, in the real pipeline's layout (reference §2.3), and
 * which files of a run are published. One module, so staging, promote, rollback, gc and BUILD_DB=0
 * cannot disagree about a path.
 *
 * Paths relative to a run's staging prefix (`rel`) are the production paths, except base datasets,
 * which are staged under `datasets/` and released at the root (as `cps_2024.h5` is on HF today).
 */

/** The registry, at the root of the registry's stores (real: GCS root and HF root). */
export const REGISTRY_PATH = 'version_manifest.json';

/** The lease that serialises promote, rollback and gc (see promote-lock.ts). */
export const LOCK_PATH = 'promote.lock.json';

/** `staging/{run_id}/`: everything a run stages, never read by consumers. */
export const stagingPrefix = (runId: string): string => `staging/${runId}/`;

/** The staging manifest's name inside the staging prefix. */
export const MANIFEST_NAME = 'manifest.json';

/** A store path as users can open it: the store's location (`file:/...`, `hf://...`, `gs://...`) joined to it. */
export const storeUrl = (location: string, path: string): string => `${location.replace(/\/$/, '')}/${path.replace(/^\//, '')}`;

/** `calibration/runs/{run_id}/diagnostics/`: append-only run diagnostics (real prefix, not `runs/`). */
export const diagnosticsPrefix = (runId: string): string => `calibration/runs/${runId}/diagnostics/`;

/** The run's review page, published among its diagnostics (`calibration/runs/{run_id}/diagnostics/report.html`). */
export const REVIEW_PAGE = 'report.html';

/** A release's manifest, committed with its production files so a version can be re-read at its pin. */
export const releaseManifestPath = (version: string): string => `releases/${version}/${MANIFEST_NAME}`;

/** What a staged file is; the manifest counts files by kind. */
export type FileKind = 'national' | 'states' | 'districts' | 'cities' | 'calibration' | 'datasets';
/** Every kind, in the order totals list them. */
export const FILE_KINDS: readonly FileKind[] = ['national', 'states', 'districts', 'cities', 'calibration', 'datasets'];

/** Area counts a complete US release has (1 + 51 + 436 + 1 = 489 H5s, reference §3.6). */
export const EXPECTED_AREA_COUNTS: Readonly<Partial<Record<FileKind, number>>> = { national: 1, states: 51, districts: 436, cities: 1 };

/** The kind of a staged path (`states/AL.h5` -> states). */
export function kindOf(rel: string): FileKind | undefined {
  const first = rel.split('/')[0] ?? '';
  return (FILE_KINDS as readonly string[]).includes(first) ? (first as FileKind) : undefined;
}

/** Production path of a staged file: `datasets/X` is released at the root, everything else in place. */
export function productionPath(rel: string): string {
  return rel.startsWith('datasets/') ? rel.slice('datasets/'.length) : rel;
}

/** One run file to publish: where it is on disk and where it goes under the prefix. */
export interface RunFile {
  localPath: string;
  rel: string;
}

/** Run artifacts staged under `calibration/` (run-relative source -> staged name). */
const CALIBRATION_FILES: ReadonlyArray<[string, string]> = [
  ['artifacts/policy_data.db', 'calibration/policy_data.db'],
  // The yearless alias the real build_datasets writes and promote_run publishes.
  ['artifacts/source_imputed_stratified_extended_cps_2024.h5', 'calibration/source_imputed_stratified_extended_cps.h5'],
  ...['calibration_weights.npy', 'geography_assignment.npz', 'unified_run_config.json'].flatMap((f): Array<[string, string]> => [
    [`artifacts/${f}`, `calibration/${f}`],
    [`artifacts/national_${f}`, `calibration/national_${f}`],
  ]),
];

/**
 * Base datasets released at the root when the run built them. Intermediate datasets (acs, the
 * IRS PUF and its derivatives) are deliberately not published: the PUF is licensed data.
 */
const RELEASED_DATASETS = ['cps_2024.h5', 'enhanced_cps_2024.h5', 'small_enhanced_cps_2024.h5'];

/** Area directories of a run (`h5s/{kind}/*.h5`). */
const AREA_DIRS: readonly FileKind[] = ['national', 'states', 'districts', 'cities'];

/** Whether a staged path is one of the area H5s (`states/AL.h5`), not a dataset or diagnostic. */
export function isAreaFile(rel: string): boolean {
  const kind = kindOf(rel);
  return kind !== undefined && AREA_DIRS.includes(kind);
}

/** The files a completed run stages, or the first required one that is missing. */
export async function stagedRunFiles(runDir: string): Promise<{ ok: true; files: RunFile[] } | { ok: false; missing: string }> {
  const files: RunFile[] = [];
  for (const kind of AREA_DIRS) {
    const names = await readdir(join(runDir, 'h5s', kind)).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.endsWith('.h5')).sort()) files.push({ localPath: join(runDir, 'h5s', kind, name), rel: `${kind}/${name}` });
  }
  for (const [from, rel] of CALIBRATION_FILES) {
    if (!existsSync(join(runDir, from))) return { ok: false, missing: from };
    files.push({ localPath: join(runDir, from), rel });
  }
  for (const name of RELEASED_DATASETS) {
    if (existsSync(join(runDir, 'artifacts', name))) files.push({ localPath: join(runDir, 'artifacts', name), rel: `datasets/${name}` });
  }
  return { ok: true, files };
}

/** The diagnostics a run publishes for review: everything its `diagnostics/` target gathered. */
export async function diagnosticsRunFiles(runDir: string): Promise<RunFile[]> {
  const names = await readdir(join(runDir, 'diagnostics'), { withFileTypes: true }).catch(() => []);
  return names
    .filter((d) => d.isFile())
    .map((d) => d.name)
    .sort()
    .map((name) => ({ localPath: join(runDir, 'diagnostics', name), rel: name }));
}
