import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { exists } from './util/fs-atomic.ts';

/**
 * Command templates keep machine-specific paths as placeholders, so an action key never depends
 * on where a run lives: `{run}` the run directory, `{python}` the pipeline's interpreter,
 * `{checkpoint}` a directory private to the action key, `{out}` an environment being built,
 * `{interpreter}` the base interpreter that environment is made from (found for the project's
 * requires-python; its version, not its path, is in the key), `{adapters}` this build system's tasks/adapters/, and
 * `{resume-from:<file>}`, which becomes `--resume-from <file>` only when that checkpoint exists.
 */
/** The fingerprint an environment was built for, kept inside it (environments have no cache entry). */
export const ENV_FINGERPRINT = '.fingerprint.json';

/**
 * Where the environment built for action `key` lives in `envsDir` (BUILD_ENVS_DIR: caches may share
 * one, since environments are keyed by their requirements and interpreter version alone); it is
 * usable once its `.complete` marker exists.
 */
export function envDirOf(envsDir: string, key: string): { dir: string; complete: boolean } {
  const dir = join(envsDir, key);
  return { dir, complete: existsSync(join(dir, '.complete')) };
}

/** Resolves the placeholders of an argv template for this machine and run. */
export async function resolveArgv(command: string[], values: Record<string, string>): Promise<string[]> {
  const fill = (token: string) => token.replace(/\{(run|python|checkpoint|out|adapters|interpreter)\}/g, (_, name: string) => values[name]!);
  const argv: string[] = [];
  for (const token of command) {
    const resume = /^\{resume-from:(.+)\}$/.exec(token);
    if (resume) {
      const file = fill(resume[1]!);
      if (await exists(file)) argv.push('--resume-from', file);
      continue;
    }
    argv.push(fill(token));
  }
  return argv;
}


/** The adapter files a command template names (`{adapters}/<file>` anywhere in a token). */
export function adaptersNamed(command: string[]): string[] {
  const names = new Set<string>();
  for (const token of command) for (const m of token.matchAll(/\{adapters\}\/([A-Za-z0-9_./-]+)/g)) names.add(m[1]!);
  return [...names].sort();
}
