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
 * The command is passed to `sh` as positional arguments (`"$@"`), so no token is ever re-quoted.
 */
export const STORAGE = 'policyengine_us_data/storage';

/** A run artifact, as commands name it (`{run}` is resolved at execution, kept literal in the key). */
export const art = (file: string) => `{run}/artifacts/${file}`;

export interface StorageFiles {
  /** Paths relative to STORAGE that the script reads and an upstream target built (taken from the run's artifacts/ by basename). */
  inputs?: string[];
  /** Paths relative to STORAGE that the script writes; each becomes `artifacts/<basename>`. */
  outputs: string[];
}

const base = (path: string) => path.slice(path.lastIndexOf('/') + 1);
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** `sh -c` around `command`, placing `inputs` into storage first and collecting `outputs` after. */
export function storageStep(files: StorageFiles, command: string[]): string[] {
  const inputs = files.inputs ?? [];
  const script = [
    'set -e',
    ...files.outputs.map((o) => `rm -f ${q(`${STORAGE}/${o}`)}`),
    ...inputs.map((i) => `mkdir -p ${q(`${STORAGE}/${i}`.replace(/\/[^/]*$/, ''))} && cp -f ${q(art(base(i)))} ${q(`${STORAGE}/${i}`)}`),
    '"$@"',
    ...files.outputs.map((o) => `cp -f ${q(`${STORAGE}/${o}`)} ${q(art(base(o)))}`),
  ].join('\n');
  return ['sh', '-c', script, 'sh', ...command];
}

/** The run-relative outputs a storage step declares (for the target's `outputs`). */
export function storageOutputs(files: StorageFiles): string[] {
  return files.outputs.map((o) => `artifacts/${base(o)}`);
}
