import { FILE_KINDS, isAreaFile, kindOf } from '../publish/layout.ts';

/**
 * What promote would publish, from staging manifests: files and bytes by kind, and which files
 * are added, removed or changed against the manifest production was released with
 * (`releases/<version>/manifest.json`). Files are compared by sha256, so an unchanged area file
 * is recognised whatever its name's history.
 */

/** `files` of a staging manifest: staged path -> sha256 and size. */
export type ManifestFiles = Readonly<Record<string, { sha256: string; size_bytes: number }>>;

/** Files and bytes of one kind. */
export interface KindTotals {
  kind: string;
  files: number;
  bytes: number;
}

/** Totals by kind, in the manifest's kind order (unknown kinds last). */
export function totalsByKind(files: ManifestFiles): KindTotals[] {
  const totals = new Map<string, KindTotals>(FILE_KINDS.map((kind) => [kind, { kind, files: 0, bytes: 0 }]));
  for (const [rel, f] of Object.entries(files)) {
    const kind = kindOf(rel) ?? 'other';
    const t = totals.get(kind) ?? { kind, files: 0, bytes: 0 };
    totals.set(kind, { kind, files: t.files + 1, bytes: t.bytes + f.size_bytes });
  }
  return [...totals.values()].filter((t) => t.files > 0);
}

/** One file that differs between the run and the base. */
export interface FileChange {
  rel: string;
  size: number;
  /** Size in the base; absent when added. */
  baseSize?: number;
}

/** The run's files against the base's. */
export interface FileChanges {
  added: FileChange[];
  removed: FileChange[];
  changed: FileChange[];
  unchanged: number;
  /** Total bytes of the run minus total bytes of the base. */
  bytesDelta: number;
}

/** Compares two manifests' files by path and sha256. */
export function compareFiles(run: ManifestFiles, base: ManifestFiles): FileChanges {
  const out: FileChanges = { added: [], removed: [], changed: [], unchanged: 0, bytesDelta: 0 };
  for (const [rel, f] of Object.entries(run)) {
    const b = base[rel];
    out.bytesDelta += f.size_bytes - (b?.size_bytes ?? 0);
    if (!b) out.added.push({ rel, size: f.size_bytes });
    else if (b.sha256 !== f.sha256) out.changed.push({ rel, size: f.size_bytes, baseSize: b.size_bytes });
    else out.unchanged++;
  }
  for (const [rel, b] of Object.entries(base)) {
    if (!(rel in run)) {
      out.removed.push({ rel, size: b.size_bytes });
      out.bytesDelta -= b.size_bytes;
    }
  }
  return out;
}

/** One area file: its area id (`CA`, `CA-01`, `NYC`, `US`), size, and the base's size. */
export interface AreaFile {
  area: string;
  kind: string;
  size: number;
  baseSize?: number;
  changed: boolean;
}

/** Every area H5 of the run with its size against the base (the tile grid's file column). */
export function areaFiles(run: ManifestFiles, base: ManifestFiles | null): AreaFile[] {
  return Object.entries(run)
    .filter(([rel]) => isAreaFile(rel))
    .map(([rel, f]) => {
      const b = base?.[rel];
      return {
        area: rel.slice(rel.indexOf('/') + 1).replace(/\.h5$/, ''),
        kind: kindOf(rel)!,
        size: f.size_bytes,
        ...(b && { baseSize: b.size_bytes }),
        changed: !b || b.sha256 !== f.sha256,
      };
    });
}
