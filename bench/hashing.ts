import { open, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { capture, timed } from './proc.ts';
import { summarise, type Summary } from './stats.ts';

/**
 * Scenarios 6 and 7: hashing page-cached files, ours (src/hash.ts: XXH3-128) against the native
 * `xxhsum -H2` (the same algorithm, same digest) and DVC's own file hashing (dvc_data's
 * `file_md5`, what `dvc add` and `dvc repro` call), each as a process on the same file, in
 * alternation. Throughput is bytes / wall seconds of the whole process (start-up included, as a
 * user sees it); in-process seconds are kept too. Peak RSS comes from GNU time (`%M`).
 */
export interface HashCase {
  id: string;
  title: string;
  bytes: number;
  files: string[];
}

export interface HashToolCell {
  wall: Summary;
  inProcess: Summary | null;
  maxRssKb: number;
  gbps: number;
  digestOk: boolean | null;
  /** Median of CPU seconds (all threads) / in-process seconds: the cores the hashing kept busy. */
  coresBusy: number | null;
}

export interface HashResult {
  id: string;
  title: string;
  bytes: number;
  tools: Record<string, HashToolCell>;
}

const MiB = 1024 * 1024;

/** Deterministic content: xorshift32 blocks, each 16 MiB block salted with its index. */
export async function makeFile(path: string, bytes: number, seed: number): Promise<void> {
  const existing = await stat(path).catch(() => null);
  if (existing?.size === bytes) return;
  const block = Buffer.allocUnsafe(16 * MiB);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < block.length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    block.writeUInt32LE(x, i);
  }
  const handle = await open(`${path}.tmp`, 'w');
  try {
    for (let off = 0, n = 0; off < bytes; off += block.length, n++) {
      block.writeUInt32LE(n, 0);
      await handle.write(block, 0, Math.min(block.length, bytes - off));
    }
  } finally {
    await handle.close();
  }
  const { rename } = await import('node:fs/promises');
  await rename(`${path}.tmp`, path);
}

export async function prepareHashFiles(dir: string, sizes: { big: number[]; many: { count: number; bytes: number } }): Promise<HashCase[]> {
  await mkdir(dir, { recursive: true });
  const cases: HashCase[] = [];
  for (const gib of sizes.big) {
    const path = join(dir, `file-${gib}GiB.bin`);
    await makeFile(path, gib * 1024 * MiB, 0x9e3779b9 + gib);
    cases.push({ id: `${gib}GiB`, title: `one ${gib} GiB file`, bytes: gib * 1024 * MiB, files: [path] });
  }
  if (sizes.many.count > 0) {
    const files: string[] = [];
    for (let i = 0; i < sizes.many.count; i++) {
      const path = join(dir, `part-${String(i).padStart(2, '0')}.bin`);
      await makeFile(path, sizes.many.bytes, 0x1234567 + i);
      files.push(path);
    }
    cases.push({ id: 'many', title: `${sizes.many.count} files of ${sizes.many.bytes / MiB} MiB at once`, bytes: sizes.many.count * sizes.many.bytes, files });
  }
  return cases;
}

const DVC_HASH = `
import sys, time, json
from dvc_data.hashfile.hash import file_md5
t = time.perf_counter()
out = [file_md5(p) for p in sys.argv[1:]]
print(json.dumps({"seconds": time.perf_counter() - t, "digests": out}))
`;

export interface HashToolsEnv {
  node: string;
  hashCli: string;
  xxhsum: string;
  python: string;
  scratch: string;
}

interface Sample {
  wall: number;
  inProcess: number | null;
  cpu: number | null;
  rss: number | null;
  digests: string[] | null;
}

async function runOne(tool: string, c: HashCase, env: HashToolsEnv, rep: number): Promise<Sample> {
  const log = join(env.scratch, `${c.id}-${tool}-${rep}.log`);
  await writeFile(log, '');
  let argv: string[];
  const procEnv: NodeJS.ProcessEnv = { ...process.env };
  if (tool === 'ours' || tool === 'ours-1-thread') {
    argv = [env.node, env.hashCli, ...c.files];
    // As ./build.ts runs the engine: its launcher keeps NODE_EXTRA_CA_CERTS (~0.1 s of start-up) off
    // every command that does not talk to the network, hashing included.
    delete procEnv.NODE_EXTRA_CA_CERTS;
    if (tool === 'ours-1-thread') procEnv.BUILD_HASH_WORKERS = '0';
  } else if (tool === 'xxhsum') argv = [env.xxhsum, '-H2', ...c.files];
  else argv = [env.python, '-c', DVC_HASH, ...c.files];
  const t = await timed(argv, { cwd: env.scratch, env: procEnv, log });
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(log, 'utf8');
  if (tool === 'xxhsum') {
    const digests = text.trim().split('\n').map((l) => l.split(/\s+/)[0]!);
    return { wall: t.seconds, inProcess: null, cpu: null, rss: t.maxRssKb, digests };
  }
  const parsed = JSON.parse(text.trim().split('\n').pop()!) as { seconds: number; cpuSeconds?: number; files?: { digest: string }[]; digests?: string[] };
  return { wall: t.seconds, inProcess: parsed.seconds, cpu: parsed.cpuSeconds ?? null, rss: t.maxRssKb, digests: parsed.files?.map((f) => f.digest) ?? null };
}

export async function runHashing(cases: HashCase[], env: HashToolsEnv, reps: number, log: (l: string) => void): Promise<HashResult[]> {
  await mkdir(env.scratch, { recursive: true });
  const results: HashResult[] = [];
  for (const c of cases) {
    // Page-cache the files before measuring (every tool then reads from memory).
    for (const f of c.files) await capture(['sh', '-c', 'cat "$0" > /dev/null', f]);
    const tools = c.id === 'many' ? ['ours', 'ours-1-thread', 'xxhsum', 'dvc'] : ['ours', 'xxhsum', 'dvc'];
    const samples = new Map<string, Sample[]>(tools.map((t) => [t, []]));
    for (let rep = 0; rep < reps; rep++) {
      for (const tool of tools.map((_, i) => tools[(i + rep) % tools.length]!)) {
        const s = await runOne(tool, c, env, rep);
        samples.get(tool)!.push(s);
        log(`  hash ${c.id.padEnd(5)} ${tool.padEnd(14)} ${s.wall.toFixed(3).padStart(8)} s  ${(c.bytes / s.wall / 1e9).toFixed(2)} GB/s  rss ${s.rss ?? '?'} KiB`);
      }
    }
    const reference = samples.get('xxhsum')![0]!.digests;
    const cells: Record<string, HashToolCell> = {};
    for (const [tool, list] of samples) {
      const wall = summarise(list.map((s) => s.wall))!;
      const inProc = list.every((s) => s.inProcess !== null) ? summarise(list.map((s) => s.inProcess!)) : null;
      cells[tool] = {
        wall,
        inProcess: inProc,
        maxRssKb: Math.max(...list.map((s) => s.rss ?? 0)),
        gbps: c.bytes / wall.median / 1e9,
        digestOk: tool === 'dvc' ? null : JSON.stringify(list[0]!.digests) === JSON.stringify(reference),
        coresBusy: list.every((s) => s.cpu !== null && s.inProcess) ? summarise(list.map((s) => s.cpu! / s.inProcess!))!.median : null,
      };
    }
    results.push({ id: c.id, title: c.title, bytes: c.bytes, tools: cells });
  }
  return results;
}
