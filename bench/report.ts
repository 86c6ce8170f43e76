import type { ScenarioResult } from './builds.ts';
import type { HashResult } from './hashing.ts';
import { summarise } from './stats.ts';
import { TOOLS } from './tools.ts';

/** The raw results (bench/results.json) and their rendering as bench/RESULTS.md. */
export interface Results {
  date: string;
  machine: Record<string, string | number>;
  versions: Record<string, string>;
  options: Record<string, unknown>;
  workloads: Record<string, { targets: number; areas: number; note?: string }>;
  builds: ScenarioResult[];
  outputsAgree: Record<string, Record<string, Record<string, string>>>;
  hashing: HashResult[];
  durationSeconds: number;
  loadavgAtEnd: string;
}

const f3 = (x: number) => x.toFixed(3);
const ratio = (x: number) => (x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2));

export interface Verdict {
  target: string;
  measured: string;
  met: boolean | null;
}

function median(cell: { seconds: number[] } | undefined): number | null {
  return cell ? (summarise(cell.seconds)?.median ?? null) : null;
}

export function verdicts(r: Results): Verdict[] {
  const out: Verdict[] = [];
  const get = (id: string, workload = 'trivial') => r.builds.find((b) => b.id === id && b.workload === workload);
  const noop = get('noop');
  const ourNoop = median(noop?.tools.ours);
  if (ourNoop !== null) out.push({ target: `no-op rerun, full graph (${r.workloads.trivial?.targets ?? '?'} targets): <= 0.25 s median`, measured: `${f3(ourNoop)} s`, met: ourNoop <= 0.25 });
  // DVC's no-op: on the full graph when it was measured there, else on the smaller one (both tools on it).
  const dvcGraph = noop?.tools.dvc ? noop : get('noop', 'trivial-dvc-scale');
  const dvcNoop = median(dvcGraph?.tools.dvc);
  const ourNoopThere = median(dvcGraph?.tools.ours);
  if (ourNoopThere !== null && dvcNoop !== null) {
    out.push({
      target: `no-op rerun: >= 8x faster than \`dvc repro\` (${dvcGraph!.workload}, ${r.workloads[dvcGraph!.workload]?.targets ?? '?'} targets)`,
      measured: `${ratio(dvcNoop / ourNoopThere)}x (${f3(ourNoopThere)} s vs ${f3(dvcNoop)} s)`,
      met: dvcNoop / ourNoopThere >= 8,
    });
  }
  const cold = get('cold');
  const ourCold = median(cold?.tools.ours);
  const makeCold = median(cold?.tools.make);
  if (ourCold !== null && makeCold !== null) {
    out.push({ target: `cold build (trivial commands, -j${cold!.jobs}): <= 1.5x \`make -j${cold!.jobs}\``, measured: `${ratio(ourCold / makeCold)}x (${f3(ourCold)} s vs ${f3(makeCold)} s)`, met: ourCold / makeCold <= 1.5 });
  }
  for (const [id, workload] of (['leaf', 'root', 'area'] as const).flatMap((i) => ['trivial', 'trivial-dvc-scale'].map((w) => [i, w] as const))) {
    const s = get(id, workload);
    const ours = s?.tools.ours;
    if (!s || !ours) continue;
    const mine = Math.max(...ours.executed);
    const peers = Object.entries(s.tools).filter(([t]) => t !== 'ours');
    const worse = peers.filter(([, c]) => Math.min(...c!.executed) < mine).map(([t]) => t);
    const exact = s.expected ? mine === s.expected.length && Math.min(...ours.executed) === s.expected.length : null;
    out.push({
      target: `scenario ${s.number} (${id}, ${workload}): re-execute exactly the stale targets, never more than a peer`,
      measured: `ours ${mine} (minimum ${s.expected?.length ?? '?'}); ${peers.map(([t, c]) => `${t} ${Math.max(...c!.executed)}`).join(', ')}`,
      met: worse.length === 0 && exact !== false,
    });
  }
  for (const h of r.hashing) {
    const ours = h.tools.ours;
    const xx = h.tools.xxhsum;
    const dvc = h.tools.dvc;
    if (!ours) continue;
    if (xx && h.id !== 'many') out.push({ target: `hashing ${h.title}: >= 50% of \`xxhsum -H2\` throughput`, measured: `${Math.round((100 * ours.gbps) / xx.gbps)}% (${ours.gbps.toFixed(2)} vs ${xx.gbps.toFixed(2)} GB/s)`, met: ours.gbps >= 0.5 * xx.gbps });
    if (dvc && h.id !== 'many') out.push({ target: `hashing ${h.title}: >= 4x DVC's hashing throughput`, measured: `${ratio(ours.gbps / dvc.gbps)}x (${ours.gbps.toFixed(2)} vs ${dvc.gbps.toFixed(2)} GB/s)`, met: ours.gbps >= 4 * dvc.gbps });
    if (h.id === '4GiB') out.push({ target: 'peak RSS while hashing 4 GiB: < 200 MB', measured: `${(ours.maxRssKb / 1024).toFixed(0)} MiB`, met: ours.maxRssKb * 1024 < 200e6 });
    const single = h.tools['ours-1-thread'];
    // "Many files hash in parallel on both cores": measured as the cores the hashing keeps busy (CPU
    // seconds of all threads / seconds). One overlapped stream reads on libuv's pool while it hashes;
    // worker threads add streams where there are cores for them (src/hash-pool.ts, defaultWorkers).
    if (h.id === 'many' && ours.coresBusy !== null) {
      const vsOne = single ? `; ${ratio(single.wall.median / ours.wall.median)}x the BUILD_HASH_WORKERS=0 run (${single.gbps.toFixed(2)} GB/s)` : '';
      out.push({ target: 'many files hash in parallel on both cores (CPU time / wall time while hashing >= 1.5 of 2)', measured: `${ours.coresBusy.toFixed(2)} cores busy, ${ours.gbps.toFixed(2)} GB/s${vsOne}`, met: ours.coresBusy >= 1.5 });
    }
  }
  return out;
}

function buildTable(s: ScenarioResult): string[] {
  const ourMedian = median(s.tools.ours);
  const lines = [
    `| tool | median (s) | spread min–max (s) | n | ratio to ours | re-executed | peak RSS (MiB) |`,
    `|---|---:|---:|---:|---:|---:|---:|`,
  ];
  const notes: string[] = [];
  for (const tool of TOOLS) {
    const c = s.tools[tool];
    if (!c) continue;
    const sum = summarise(c.seconds)!;
    const ex = [...new Set(c.executed)].sort((a, b) => a - b).join(' / ');
    const rss = Math.max(...c.maxRssKb.map((x) => x ?? 0));
    const rel = ourMedian ? ratio(sum.median / ourMedian) : '–';
    lines.push(`| ${tool} | ${f3(sum.median)} | ${f3(sum.min)}–${f3(sum.max)} | ${sum.n} | ${tool === 'ours' ? '1.00' : `${rel}x`} | ${ex} | ${rss ? (rss / 1024).toFixed(0) : '?'} |`);
    if (c.note) notes.push(`${tool}: ${c.note}`);
    if (s.expected && c.executed.some((n) => n !== s.expected!.length)) notes.push(`${tool} re-executed: ${c.executedExample.join(', ')}`);
  }
  if (s.expected) lines.push('', `Minimal set (${s.expected.length}): ${s.expected.join(', ')}.`);
  for (const n of notes) lines.push('', `- ${n}`);
  return lines;
}

function hashTable(h: HashResult): string[] {
  const ours = h.tools.ours!;
  const lines = [
    `| tool | median wall (s) | spread min–max (s) | n | throughput (GB/s) | ratio to ours (time) | in-process (s) | peak RSS (MiB) | digest = xxhsum -H2 |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---|`,
  ];
  for (const [tool, c] of Object.entries(h.tools)) {
    lines.push(
      `| ${tool} | ${f3(c.wall.median)} | ${f3(c.wall.min)}–${f3(c.wall.max)} | ${c.wall.n} | ${c.gbps.toFixed(2)} | ${tool === 'ours' ? '1.00' : `${ratio(c.wall.median / ours.wall.median)}x`} | ${c.inProcess ? f3(c.inProcess.median) : '–'} | ${(c.maxRssKb / 1024).toFixed(0)} | ${c.digestOk === null ? 'n/a (md5)' : c.digestOk ? 'yes' : '**no**'} |`,
    );
  }
  return lines;
}

export function renderMarkdown(r: Results, profileNotes: string): string {
  const out: string[] = [
    '# Benchmarks: ours vs make, DVC and Snakemake',
    '',
    `Generated by \`npm run bench\` (bench/run.mjs) on ${r.date} in ${(r.durationSeconds / 60).toFixed(1)} min. Raw samples: [results.json](results.json).`,
    '',
    '## Machine and versions',
    '',
    '| | |',
    '|---|---|',
    ...Object.entries(r.machine).map(([k, v]) => `| ${k} | ${v} |`),
    `| loadavg at end | ${r.loadavgAtEnd} |`,
    ...Object.entries(r.versions).map(([k, v]) => `| ${k} | ${v} |`),
    '',
    `Options: \`${JSON.stringify(r.options)}\``,
    '',
    'Times are wall seconds of the whole process as a user runs it (`./build.ts pipeline REPO=... -j 2`, `make -j2`, `dvc repro`, `snakemake --cores 2`), start-up included. "ratio to ours" is the tool\'s median divided by ours: above 1, we are faster. Tools run in alternation, the order rotating each repetition. "re-executed" is the number of targets whose command ran (each distinct count seen is listed).',
    '',
    '## Targets',
    '',
    '| target | measured | met |',
    '|---|---|---|',
    ...verdicts(r).map((v) => `| ${v.target} | ${v.measured} | ${v.met === null ? '?' : v.met ? 'yes' : '**no**'} |`),
    '',
  ];
  for (const [name, w] of Object.entries(r.workloads)) {
    out.push(`## Workload \`${name}\` (${w.targets} targets, ${w.areas} areas)`, '');
    if (w.note) out.push(w.note, '');
    for (const s of r.builds.filter((b) => b.workload === name)) {
      out.push(`### ${s.number}. ${s.title} (${name}, ${s.flavour} commands, -j ${s.jobs})`, '', ...buildTable(s), '');
    }
    const agree = r.outputsAgree[name];
    if (agree) {
      for (const [when, byTool] of Object.entries(agree)) {
        const distinct = new Set(Object.values(byTool));
        out.push(`Goal outputs ${when}: ${distinct.size === 1 ? 'byte-identical across tools' : `**differ**: ${JSON.stringify(byTool)}`}.`, '');
      }
    }
  }
  if (r.hashing.length) {
    out.push('## 6. Hashing page-cached files', '', 'ours = src/hash.ts (XXH3-128, what the digest memo calls); xxhsum = `xxhsum -H2` (XXH3-128, native); dvc = dvc_data `file_md5` (MD5, what `dvc add`/`dvc repro` hash with). ours-1-thread = ours with the worker pool off (BUILD_HASH_WORKERS=0).', '');
    for (const h of r.hashing) out.push(`### ${h.title} (${(h.bytes / 2 ** 30).toFixed(2)} GiB)`, '', ...hashTable(h), '');
    const four = r.hashing.find((h) => h.id === '4GiB');
    if (four) {
      out.push('## 7. Peak memory while hashing the 4 GiB file', '', '| tool | peak RSS (MiB) |', '|---|---:|');
      for (const [tool, c] of Object.entries(four.tools)) out.push(`| ${tool} | ${(c.maxRssKb / 1024).toFixed(0)} |`);
      out.push('');
    }
  }
  if (profileNotes) out.push('## Where the time goes (profiles)', '', profileNotes, '');
  return `${out.join('\n')}\n`;
}
