import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { emitAll, shellLine } from '../bench/emit.ts';
import { allSteps, stripRun, trivialWorkload } from '../bench/workload.ts';
import type { FanOut, Pipeline, Target } from '../src/target.ts';

/**
 * Smoke test of the benchmark generator (no timing): the four declarations it emits for the
 * workload (our BUILD_TASKS module, the Makefile, dvc.yaml, the Snakefile) declare the same
 * targets, with the same output files and the same commands.
 */
const w = trivialWorkload();
const emitted = emitAll(w);
const expectedOutputs = new Set(allSteps(w).flatMap((s) => s.outputs.map(stripRun)));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function makeOutputs(makefile: string): Set<string> {
  const out = new Set<string>();
  for (const line of makefile.split('\n')) {
    const m = /^([^\s#.][^:=]*?)\s*&?:\s/.exec(line);
    if (!m || m[1] === 'all' || line.startsWith('SHELL')) continue;
    for (const f of m[1]!.split(/\s+/)) out.add(f);
  }
  return out;
}

function dvcOutputs(yaml: string): Set<string> {
  const out = new Set<string>();
  let inOuts = false;
  for (const line of yaml.split('\n')) {
    if (/^ {4}outs:$/.test(line)) inOuts = true;
    else if (inOuts && /^ {6}- /.test(line)) out.add(JSON.parse(line.replace(/^ {6}- /, '')) as string);
    else inOuts = false;
  }
  return out;
}

function snakeOutputs(snakefile: string): Set<string> {
  const out = new Set<string>();
  for (const line of snakefile.split('\n')) {
    const m = /^ {4}output: (.*)$/.exec(line);
    if (m && !m[1]!.includes('{area}')) for (const f of m[1]!.matchAll(/"([^"]+)"/g)) out.add(f[1]!);
  }
  const areas = JSON.parse(/^AREAS = (.*)$/m.exec(snakefile)![1]!) as string[];
  for (const a of areas) out.add(`h5s/${a}.h5`);
  return out;
}

async function oursTargets(): Promise<Target[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-gen-'));
  dirs.push(dir);
  const file = join(dir, 'tasks.mjs');
  await writeFile(file, emitted.tasks);
  const { makePipeline } = (await import(pathToFileURL(file).href)) as { makePipeline: (p: string) => Pipeline };
  const targets: Target[] = [];
  for (const node of makePipeline('example').nodes) {
    if (node.kind === 'target') targets.push(node.target);
    else targets.push(...(node.fanout as FanOut).expand({ readJson: () => w.areas, vars: {} }));
  }
  return targets;
}

describe('bench workload generator', () => {
  it('has the example pipeline shape: ~505 targets, 489 areas', () => {
    expect(w.areas).toHaveLength(489);
    expect(allSteps(w)).toHaveLength(505);
    expect(new Set(allSteps(w).map((s) => s.name)).size).toBe(505);
  });

  it('declares the same outputs in all four forms', async () => {
    const ours = new Set((await oursTargets()).flatMap((t) => t.outputs));
    expect(ours).toEqual(expectedOutputs);
    expect(makeOutputs(emitted.makefile)).toEqual(expectedOutputs);
    expect(dvcOutputs(emitted.dvcYaml)).toEqual(expectedOutputs);
    expect(snakeOutputs(emitted.snakefile)).toEqual(expectedOutputs);
  });

  it('runs the same command in every form', async () => {
    const ours = new Map((await oursTargets()).map((t) => [t.name, t.command({})]));
    for (const step of allSteps(w)) {
      const line = shellLine(step.command);
      expect(shellLine(ours.get(step.name)!)).toBe(line);
      expect(emitted.makefile).toContain(`\t${line}\n`);
      expect(emitted.dvcYaml).toContain(`cmd: ${JSON.stringify(line)}`);
    }
  });
});
