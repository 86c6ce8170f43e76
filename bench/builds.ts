import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { goalFiles } from './emit.ts';
import { makeTool, type Env, type Tool, type ToolName } from './tools.ts';
import type { Workload } from './workload.ts';

/**
 * Scenarios 1-5 on one workload: every tool measured in alternation (the order rotates each
 * repetition, so no tool always runs first or last), several repetitions each.
 *
 * 1 cold    fresh workspace (and, for us, a fresh cache), build everything with -j N
 * 2 noop    rebuild with nothing changed
 * 3 leaf    the input of a sink target (`diagnostics`) changed: exactly 1 target is stale
 * 4 root    a comment added to the database's input: the input changed, its output does not,
 *           so only `database` needs to run again (early cutoff); mtime-based tools rerun all below it
 * 5 area    one area's input changed: that area and the manifest are stale (minimality)
 */
export type ScenarioId = 'cold' | 'noop' | 'leaf' | 'root' | 'area';

export const SCENARIOS: { id: ScenarioId; number: number; title: string }[] = [
  { id: 'cold', number: 1, title: 'cold build' },
  { id: 'noop', number: 2, title: 'no-op rerun' },
  { id: 'leaf', number: 3, title: 'one leaf input changed (input of the `diagnostics` sink)' },
  { id: 'root', number: 4, title: 'root input changed, output identical (comment added to the database input): early cutoff' },
  { id: 'area', number: 5, title: "one area's input changed (h5:states/AL): minimality" },
];

export interface Cell {
  seconds: number[];
  maxRssKb: (number | null)[];
  executed: number[];
  /** Names re-executed in the first repetition (for the report when counts differ from the minimum). */
  executedExample: string[];
  /** Why fewer repetitions than asked (a time budget), if so. */
  note?: string;
}

export interface ScenarioResult {
  /** Which workload (trivial, trivial-dvc-scale, real). */
  workload: string;
  id: ScenarioId;
  number: number;
  title: string;
  flavour: Workload['flavour'];
  jobs: number;
  /** The minimal set of targets that must re-execute (scenarios 3-5). */
  expected: string[] | null;
  tools: Partial<Record<ToolName, Cell>>;
}

export interface BuildOptions {
  tools: ToolName[];
  scenarios: ScenarioId[];
  reps: number;
  /** After one cold build longer than this (seconds), a tool's cold build is not repeated. */
  coldBudget: number;
  /** After one measurement longer than this, a tool gets at most `slowReps` of that scenario. */
  slowAfter: number;
  slowReps: number;
  workRoot: string;
  workload: string;
  log: (line: string) => void;
}

const rotate = <T>(xs: T[], by: number): T[] => xs.map((_, i) => xs[(i + by) % xs.length]!);

export async function runBuildScenarios(w: Workload, env: Env, o: BuildOptions): Promise<{ scenarios: ScenarioResult[]; outputsAgree: Record<string, Record<string, string>> }> {
  const tools = new Map<ToolName, Tool>();
  let workspaceRound = 0;
  const fresh = (name: ToolName): Tool => makeTool(name, join(o.workRoot, `${name}-${workspaceRound}`), w, env);
  const results: ScenarioResult[] = [];
  const cell = (r: ScenarioResult, t: ToolName): Cell => (r.tools[t] ??= { seconds: [], maxRssKb: [], executed: [], executedExample: [] });
  const edits: Record<'leaf' | 'root' | 'area', [string, (rep: number) => string]> = {
    leaf: [w.edits.leaf, (rep) => `leaf change ${rep}\n`],
    root: [w.edits.root, (rep) => `# a comment only: the output stays the same (${rep})\n`],
    area: [w.edits.area, (rep) => `area change ${rep}\n`],
  };

  const record = (r: ScenarioResult, t: ToolName, res: { seconds: number; maxRssKb: number | null; executed: string[] }) => {
    const c = cell(r, t);
    c.seconds.push(res.seconds);
    c.maxRssKb.push(res.maxRssKb);
    c.executed.push(res.executed.length);
    if (c.executed.length === 1) c.executedExample = res.executed.slice(0, 12).concat(res.executed.length > 12 ? [`... ${res.executed.length - 12} more`] : []);
    o.log(`  ${r.id.padEnd(5)} ${t.padEnd(10)} ${res.seconds.toFixed(3).padStart(9)} s  re-executed ${res.executed.length}`);
  };

  // 1: cold builds (each repetition in fresh workspaces); the last ones are kept for 2-5.
  const cold: ScenarioResult = { workload: o.workload, ...scenario('cold'), flavour: w.flavour, jobs: env.jobs, expected: null, tools: {} };
  const noMoreCold = new Set<ToolName>();
  const coldReps = o.scenarios.includes('cold') ? o.reps : 1;
  for (let rep = 0; rep < coldReps; rep++) {
    workspaceRound = rep;
    for (const name of rotate(o.tools, rep)) {
      if (noMoreCold.has(name)) continue;
      const tool = fresh(name);
      await tool.create();
      const res = await tool.build('cold');
      tools.set(name, tool);
      if (o.scenarios.includes('cold')) record(cold, name, res);
      if (res.seconds > o.coldBudget) {
        noMoreCold.add(name);
        if (o.reps > 1) cell(cold, name).note = `one cold build took ${res.seconds.toFixed(0)} s (> ${o.coldBudget} s budget): not repeated`;
      }
    }
  }
  if (o.scenarios.includes('cold')) results.push(cold);
  const outputsAgree: Record<string, Record<string, string>> = { afterCold: await goalDigests(w, tools) };

  const repeat = async (id: ScenarioId, before?: (tool: Tool, rep: number) => Promise<void>, expected: string[] | null = null) => {
    const r: ScenarioResult = { workload: o.workload, ...scenario(id), flavour: w.flavour, jobs: env.jobs, expected, tools: {} };
    const cap = new Map<ToolName, number>();
    for (let rep = 0; rep < o.reps; rep++) {
      for (const name of rotate(o.tools, rep)) {
        if (rep >= (cap.get(name) ?? o.reps)) continue;
        const tool = tools.get(name)!;
        await before?.(tool, rep);
        const res = await tool.build(id);
        record(r, name, res);
        if (rep === 0 && res.seconds > o.slowAfter && o.slowReps < o.reps) {
          cap.set(name, o.slowReps);
          cell(r, name).note = `slow (${res.seconds.toFixed(0)} s > ${o.slowAfter} s): ${o.slowReps} repetitions`;
        }
      }
    }
    results.push(r);
  };

  if (o.scenarios.includes('noop')) await repeat('noop', undefined, []);
  for (const id of ['leaf', 'root', 'area'] as const) {
    if (!o.scenarios.includes(id) || !edits[id][0]) continue;
    const [file, text] = edits[id];
    await repeat(id, (tool, rep) => tool.edit(file, text(rep)), w.expected[id]);
  }
  outputsAgree.atEnd = await goalDigests(w, tools);
  return { scenarios: results, outputsAgree };
}

function scenario(id: ScenarioId): { id: ScenarioId; number: number; title: string } {
  return SCENARIOS.find((s) => s.id === id)!;
}

/** sha256 (first 16 hex) of each goal output, per tool: identical commands must give identical bytes. */
async function goalDigests(w: Workload, tools: Map<ToolName, Tool>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, tool] of tools) {
    const h = createHash('sha256');
    for (const f of goalFiles(w)) h.update(await readFile(await tool.outputPath(f)).catch(() => Buffer.from('missing')));
    out[name] = h.digest('hex').slice(0, 16);
  }
  return out;
}
