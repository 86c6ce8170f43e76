import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { ROOT } from './helpers.ts';

/**
 * A BUILD_TASKS pipeline written in TypeScript that imports this project's tasks/ helpers (the
 * real `python-env` declaration, storageStep...), bundled into the plain ES module the CLI loads.
 * `source` may import `@tasks/<file>.ts` and `@src/<file>.ts`.
 */
export async function bundleTasksModule(dir: string, source: string): Promise<string> {
  const entry = join(dir, 'tasks.ts');
  const out = join(dir, 'tasks.mjs');
  writeFileSync(entry, source);
  await build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    alias: { '@tasks': join(ROOT, 'tasks'), '@src': join(ROOT, 'src') },
    logLevel: 'warning',
  });
  return out;
}
