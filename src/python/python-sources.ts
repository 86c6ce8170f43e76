import { join } from 'node:path';
import type { Target } from '../target.ts';
import type { PyFile, PythonIndex } from './python-index.ts';

/**
 * A Python step's sources are what runs: the static import closure of its entry modules inside
 * the pinned tree (Target.pythonModules, and the adapters its command names), function-level
 * imports included. Tree files are named by their project-relative path, as the globbed sources
 * are (one file matched both ways is one source); adapter files as `{adapters}/<file>`.
 */
export function pythonSourceFiles(index: PythonIndex, entries: string[], roots: { sourceRoot: string; adaptersDir: string }): { id: string; path: string }[] {
  const seen = new Map<string, string>();
  for (const entry of entries) {
    for (const f of index.closureOf(entry)) seen.set(sourceId(f), f.root === 'tree' ? join(roots.sourceRoot, f.path) : join(roots.adaptersDir, f.path));
  }
  return [...seen].map(([id, path]) => ({ id, path }));
}

/** What a target's Python closure starts from: its declared modules and the Python adapters its command names. */
export function pythonEntries(target: Pick<Target, 'pythonModules'>, adapters: string[]): string[] {
  return [...(target.pythonModules ?? []), ...adapters.filter((a) => a.endsWith('.py')).map((a) => `{adapters}/${a}`)];
}

/** How a source file is named in a fingerprint. */
export function sourceId(f: PyFile): string {
  return f.root === 'tree' ? f.path : `{adapters}/${f.path}`;
}

/**
 * Why a source is one: the import chain from an entry to it (`modal_app.worker_script ->
 * modal_app/worker_script.py -> policyengine_us_data/calibration/publish_local_area.py`), for
 * `explain`; null when no entry imports it (a globbed source).
 */
export function importChain(index: PythonIndex, entries: string[], id: string): string[] | null {
  for (const entry of entries) {
    const starts = index.entryFiles(entry);
    const parent = new Map<string, string | null>();
    const queue: PyFile[] = [];
    for (const s of starts) {
      parent.set(sourceId(s), null);
      queue.push(s);
    }
    for (let i = 0; i < queue.length; i++) {
      const f = queue[i]!;
      const fid = sourceId(f);
      if (fid === id) {
        const chain: string[] = [];
        for (let at: string | null = fid; at !== null; at = parent.get(at) ?? null) chain.unshift(at);
        return [entry, ...chain.filter((c) => c !== entry)];
      }
      for (const next of index.importsOf(f)) {
        const nid = sourceId(next);
        if (parent.has(nid)) continue;
        parent.set(nid, fid);
        queue.push(next);
      }
    }
  }
  return null;
}
