import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What `cache du` measures: the disk each area of the cache holds (blobs, action entries, runs,
 * pinned trees, Python environments, checkpoints, the local store, the rest), so a user sees what
 * `gc` or `cache gc` would free. Bytes are the sizes of regular files (symbolic links are neither
 * followed nor counted), and a hard-linked file is counted once, in the first area that holds it:
 * a run's outputs are hard links to blobs, so the runs area shows them as `linkedBytes` (freed only
 * when `cache gc` drops the blob too) and the total is what the disk really holds.
 */
export interface UsageArea {
  area: string;
  path: string;
  /** What `count` counts: regular files, the area's top-level directories, or action entries. */
  counts: 'files' | 'dirs' | 'entries';
}

export interface AreaUsage extends UsageArea {
  /** Bytes of files first seen in this area. */
  bytes: number;
  /** Bytes of files hard-linked to a file an earlier area counted. */
  linkedBytes: number;
  /** Regular files in the area (linked ones included). */
  files: number;
  count: number;
}

/**
 * Measures each area in order (earlier areas own shared inodes), skipping inside an area the
 * paths of the other areas (an envs directory inside the cache is its own area, not "other").
 */
export function measureAreas(areas: readonly UsageArea[]): AreaUsage[] {
  const seen = new Set<string>();
  const roots = new Set(areas.map((a) => a.path));
  return areas.map((a) => {
    const usage: AreaUsage = { ...a, bytes: 0, linkedBytes: 0, files: 0, count: 0 };
    walk(a.path, roots, (path, size, inode, links) => {
      usage.files++;
      if (a.counts === 'entries' && isActionEntry(path)) usage.count++;
      if (links > 1) {
        if (seen.has(inode)) {
          usage.linkedBytes += size;
          return;
        }
        seen.add(inode);
      }
      usage.bytes += size;
    });
    if (a.counts === 'files') usage.count = usage.files;
    if (a.counts === 'dirs') usage.count = topDirs(a.path, roots);
    return usage;
  });
}

/** `actions/<aa>/<key>.json`, not an older layout's `.fp.json` nor a write in progress. */
function isActionEntry(path: string): boolean {
  return path.endsWith('.json') && !path.endsWith('.fp.json') && !path.includes('.tmp-');
}

/** The area's directories (one per run, tree, env or checkpoint), not temporary extractions. */
function topDirs(dir: string, roots: ReadonlySet<string>): number {
  return list(dir).filter((e) => e.isDirectory() && !e.name.includes('.tmp-') && !roots.has(join(dir, e.name))).length;
}

function list(dir: string) {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function walk(dir: string, skip: ReadonlySet<string>, onFile: (path: string, size: number, inode: string, links: number) => void): void {
  for (const entry of list(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!skip.has(path)) walk(path, skip, onFile);
    } else if (entry.isFile()) {
      let st;
      try {
        st = lstatSync(path);
      } catch {
        continue; // removed meanwhile
      }
      onFile(path, st.size, `${st.dev}:${st.ino}`, st.nlink);
    }
  }
}

