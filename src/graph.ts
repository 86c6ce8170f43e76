import { readFileSync } from 'node:fs';
import { UsageError } from './report/failures.ts';
import { didYouMean } from './util/did-you-mean.ts';
import type { OutputRecord } from './output-record.ts';
import type { FanOut, Node, Pipeline, Target, Vars } from './target.ts';

/**
 * The target graph: checks the pipeline declaration (unique names, every dependency declared, no
 * cycle) and selects the part of the graph that some goals need. A declaration mistake is a
 * UsageError naming the targets (exit 2), found before any work. Fan-outs stay single nodes here;
 * the scheduler expands them once their inputs exist.
 */
export class Graph {
  readonly nodes: Map<string, Node>;

  constructor(pipeline: Pipeline) {
    this.nodes = new Map();
    for (const node of pipeline.nodes) {
      const name = nodeName(node);
      if (this.nodes.has(name)) throw new UsageError('duplicate-target', `the pipeline declares target ${name} twice; give each target its own name`);
      this.nodes.set(name, node);
    }
    for (const [name, node] of this.nodes) {
      for (const dep of nodeDeps(node)) {
        if (this.nodes.has(dep)) continue;
        const hint = didYouMean(dep, this.nodes.keys());
        throw new UsageError('unknown-dependency', `the pipeline's target ${name} depends on ${dep}, which is not declared; ${hint ?? 'declare it or remove the dependency'}`);
      }
    }
    this.order();
  }

  /** Topological order (dependencies first); a cycle is a UsageError naming its path, a -> b -> a. */
  order(names: Iterable<string> = this.nodes.keys()): string[] {
    const out: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (name: string, path: string[]) => {
      const s = state.get(name);
      if (s === 'done') return;
      if (s === 'visiting') {
        const cycle = [...path.slice(path.indexOf(name)), name].join(' -> ');
        throw new UsageError('dependency-cycle', `the pipeline declares a dependency cycle ${cycle}; remove one of these dependencies`);
      }
      state.set(name, 'visiting');
      for (const dep of nodeDeps(this.get(name))) visit(dep, [...path, name]);
      state.set(name, 'done');
      out.push(name);
    };
    for (const name of names) visit(name, []);
    return out;
  }

  get(name: string): Node {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`unknown node ${name}`);
    return node;
  }

  /** The fan-out whose children are named with this prefix, for goals like `h5:states/AL`. */
  fanoutFor(goal: string): FanOut | undefined {
    for (const node of this.nodes.values()) {
      if (node.kind === 'fanout' && goal.startsWith(node.fanout.childPrefix) && goal.length > node.fanout.childPrefix.length) {
        return node.fanout;
      }
    }
    return undefined;
  }

  /**
   * The nodes needed for `goals`, in dependency order. A goal naming one fan-out child selects the
   * fan-out restricted to that child (returned in `onlyChildren`).
   */
  select(goals: string[]): { names: string[]; onlyChildren: Map<string, Set<string>> } {
    const roots: string[] = [];
    const onlyChildren = new Map<string, Set<string>>();
    const whole = new Set<string>();
    for (const goal of goals) {
      if (this.nodes.has(goal)) {
        roots.push(goal);
        whole.add(goal);
        continue;
      }
      const fanout = this.fanoutFor(goal);
      if (!fanout) {
        // Nearest by spelling (`datbase`), else names containing it or contained in it (`fit`).
        const containing = [...this.nodes.keys()].filter((n) => n.includes(goal) || goal.includes(n)).slice(0, 5);
        const hint = didYouMean(goal, this.nodes.keys()) ?? (containing.length ? `did you mean ${containing.join(', ')}?` : null);
        throw new UsageError('unknown-target', `unknown target '${goal}'; ${hint ? `${hint} ` : ''}list targets with ./build.ts targets`);
      }
      roots.push(fanout.name);
      const set = onlyChildren.get(fanout.name) ?? new Set<string>();
      set.add(goal);
      onlyChildren.set(fanout.name, set);
    }
    // A fan-out needed in full (as a goal or by another node) is not restricted.
    const names = this.order(roots);
    for (const name of names) {
      for (const dep of nodeDeps(this.get(name))) if (onlyChildren.has(dep)) whole.add(dep);
    }
    for (const name of whole) onlyChildren.delete(name);
    return { names, onlyChildren };
  }
}

export function nodeName(node: Node): string {
  return node.kind === 'target' ? node.target.name : node.fanout.name;
}

export function nodeDeps(node: Node): string[] {
  return node.kind === 'target' ? node.target.deps : node.fanout.deps;
}

/**
 * A fan-out's children, from its inputs' bytes: `outputsOf(dep)` gives a built dependency's outputs
 * and `blobPath` where their bytes are. `only` (from Graph.select) keeps the children a goal named.
 * The scheduler expands from the outputs it just built or restored, a replay from a run's record.
 */
export function expandFanout(
  fanout: FanOut,
  outputsOf: (dep: string) => Record<string, OutputRecord> | undefined,
  blobPath: (digest: string) => string,
  vars: Vars,
  only?: Set<string>,
): Target[] {
  // Small JSON outputs (the area list) only; read synchronously to keep expand() simple.
  const readJson = (runPath: string): unknown => {
    for (const dep of fanout.deps) {
      const record = outputsOf(dep)?.[runPath];
      if (record) return JSON.parse(readFileSync(blobPath(record.digest), 'utf8'));
    }
    throw new Error(`${fanout.name}: no upstream output ${runPath}`);
  };
  const targets = fanout.expand({ readJson, vars });
  if (!only) return targets;
  const missing = [...only].filter((name) => !targets.some((t) => t.name === name));
  if (missing.length) {
    const hint = didYouMean(missing[0]!, targets.map((t) => t.name));
    throw new UsageError('unknown-target', `unknown target '${missing[0]}': not an item of ${fanout.name}${hint ? `; ${hint}` : ''}`);
  }
  return targets.filter((t) => only.has(t.name));
}

export type { Target };
