/**
 * The real policyengine-us-data scripts take no path flags: each reads its inputs from, and writes
 * its outputs to, fixed paths under `policyengine_us_data/storage/` (`STORAGE_FOLDER`), relative
 * to the repository root, which is the action's working directory (the run's own copy of the
 * pinned tree). A storage step turns such a script into an action with declared inputs and
 * outputs: it removes stale copies of the outputs (scripts that open a file in "a" mode would
 * otherwise depend on what an earlier action left there), copies the upstream artifacts the script
 * reads into storage (copies, never links: a script that appends would write into the cache's
 * read-only blobs), runs the command, then copies the outputs into the run's artifacts.
 *
 * Every action of a run shares the run's tree, so an input is placed under a temporary name and
 * renamed into place: two steps placing the same input at once never truncate the file the
 * other is reading.
 *
 * The command is passed to `sh` as positional arguments (`"$@"`), so no token is ever re-quoted.
 */
export const STORAGE = 'policyengine_us_data/storage';

/** A run artifact, as commands name it (`{run}` is resolved at execution, kept literal in the key). */
export const art = (file: string) => `{run}/artifacts/${file}`;

/**
 * A file a storage step reads or writes: its path relative to STORAGE, or an object naming its
 * artifact in the run when the basename would clash (the database of each ETL step is
 * `calibration/policy_data.db`), and `fromRoot` for a file a script writes relative to the
 * repository root instead (enhanced_cps's `calibration_log.csv`).
 */
export type StorageFile = string | { path: string; artifact?: string; fromRoot?: boolean };

export interface StorageFiles {
  /** Files the script reads that an upstream target built (taken from the run's artifacts/). */
  inputs?: StorageFile[];
  /** Files the script writes; each becomes `artifacts/<artifact or basename>`. */
  outputs: StorageFile[];
}

const base = (path: string) => path.slice(path.lastIndexOf('/') + 1);
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Where the file is in the tree, relative to the working directory (the repository root). */
function treePath(f: StorageFile): string {
  if (typeof f === 'string') return `${STORAGE}/${f}`;
  return f.fromRoot ? f.path : `${STORAGE}/${f.path}`;
}

/** Its name under the run's artifacts/. */
function artifactName(f: StorageFile): string {
  return typeof f === 'string' ? base(f) : (f.artifact ?? base(f.path));
}

/** `sh -c` around `command`, placing `inputs` into storage first and collecting `outputs` after. */
export function storageStep(files: StorageFiles, command: string[]): string[] {
  const inputs = files.inputs ?? [];
  const place = (f: StorageFile) => {
    const dest = treePath(f);
    const dir = dest.includes('/') ? `mkdir -p ${q(dest.replace(/\/[^/]*$/, ''))} && ` : '';
    return `${dir}cp -f ${q(art(artifactName(f)))} ${q(`${dest}.placing`)}.$$ && mv -f ${q(`${dest}.placing`)}.$$ ${q(dest)}`;
  };
  const script = [
    'set -e',
    ...files.outputs.map((o) => `rm -f ${q(treePath(o))}`),
    ...inputs.map(place),
    '"$@"',
    ...files.outputs.map((o) => `cp -f ${q(treePath(o))} ${q(art(artifactName(o)))}`),
  ].join('\n');
  return ['sh', '-c', script, 'sh', ...command];
}

/** The run-relative outputs a storage step declares (for the target's `outputs`). */
export function storageOutputs(files: StorageFiles): string[] {
  return files.outputs.map((o) => `artifacts/${artifactName(o)}`);
}
