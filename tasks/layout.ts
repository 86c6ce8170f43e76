import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Layout, Profile } from '../src/target.ts';

export type { Layout, Profile };

export const EXAMPLE_MARKER = 'pipeline-example.toml';

/**
 * Which flavour of policyengine-us-data a pinned tree holds. The built-in example is a twin of the
 * real repository with the same module names; it is marked by `pipeline-example.toml` and lives
 * either at `examples/us-data/` (this repository) or at the root (a copy, as the tests make).
 */
export function detectLayout(tree: string): Layout {
  if (existsSync(join(tree, 'examples/us-data', EXAMPLE_MARKER))) return { profile: 'example', projectDir: 'examples/us-data' };
  if (existsSync(join(tree, EXAMPLE_MARKER))) return { profile: 'example', projectDir: '.' };
  return { profile: 'real', projectDir: '.' };
}
