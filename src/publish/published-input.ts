import type { Vars } from '../target.ts';

/**
 * BUILD_DB=0 (issue "Published inputs"): the `database` target takes `policy_data.db` from the
 * current registered version instead of running the ETL. The target keeps its name, outputs and
 * dependants; only its command changes, to a download *action* that the build's executor performs
 * in-process (published-db.ts). Its fingerprint holds the pin (store, registered version, commit
 * or generation, sha256), so a newly registered version is a new key and the same pin is a hit.
 *
 * This module is what tasks/ needs to declare that command: plain data, no store code, so the
 * no-op path does not load the publishing clients.
 */
export const DOWNLOAD_PUBLISHED = 'download-published';

/** Where promote publishes the database (the real promote_run's `calibration/policy_data.db`). */
export const PUBLISHED_DB_PATH = 'calibration/policy_data.db';

/** Internal variables build-command sets when BUILD_DB=0 (not user-settable: not in tasks/variables.ts). */
export const PIN_VARS = {
  store: 'PUBLISHED_DB_STORE',
  version: 'PUBLISHED_DB_PIN',
  sha256: 'PUBLISHED_DB_SHA256',
  release: 'PUBLISHED_DB_RELEASE',
} as const;

/** `download-published <store> <path> <pin> <sha256|-> <release> <output>`. */
export function publishedInputCommand(path: string, v: Vars, output: string): string[] {
  return [DOWNLOAD_PUBLISHED, v[PIN_VARS.store] ?? '(unresolved)', path, v[PIN_VARS.version] ?? '(unresolved)', v[PIN_VARS.sha256] ?? '-', v[PIN_VARS.release] ?? '(unresolved)', output];
}

/** The download a resolved argv asks for, or null when it is not one. */
export function parsePublishedCommand(argv: readonly string[]): { store: string; path: string; version: string; sha256: string | null; release: string; output: string } | null {
  if (argv[0] !== DOWNLOAD_PUBLISHED || argv.length !== 7) return null;
  const [, store, path, version, sha256, release, output] = argv as [string, string, string, string, string, string, string];
  return { store, path, version, sha256: sha256 === '-' ? null : sha256, release, output };
}
