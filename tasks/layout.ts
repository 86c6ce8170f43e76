import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Which flavour of policyengine-us-data a pinned tree holds. The built-in example is a twin of the
 * real repository with the same module names; it is marked by `pipeline-example.toml` and lives
 * either at `examples/us-data/` (this repository) or at the root (a copy, as the tests make).
 */
export type Profile = 'example' | 'real';

export interface Layout {
  profile: Profile;
  /** The project directory inside the tree: commands run there, source globs are relative to it. */
  projectDir: string;
}

export const EXAMPLE_MARKER = 'pipeline-example.toml';

export function detectLayout(tree: string): Layout {
  if (existsSync(join(tree, 'examples/us-data', EXAMPLE_MARKER))) return { profile: 'example', projectDir: 'examples/us-data' };
  if (existsSync(join(tree, EXAMPLE_MARKER))) return { profile: 'example', projectDir: '.' };
  return { profile: 'real', projectDir: '.' };
}
