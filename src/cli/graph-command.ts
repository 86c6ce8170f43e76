import type { Argv } from './argv.ts';
import type { Settings } from './settings.ts';
import { parseVariables } from '../variables.ts';
import { VARIABLES } from '../../tasks/index.ts';
import { pipelineFactory } from './pipeline-declaration.ts';
import { Graph, nodeDeps, nodeName } from '../graph.ts';

/** `./build.ts graph [--dot]`: the static graph; a fan-out shows as one node. */
export async function graphCommand(argv: Argv, settings: Settings): Promise<number> {
  parseVariables(argv.assignments, VARIABLES);
  const graph = new Graph((await pipelineFactory(settings.tasksFile))('example'));
  const id = (name: string) => name.replace(/[^A-Za-z0-9_]/g, '_');
  const label = (name: string) => (graph.get(name).kind === 'fanout' ? `${name} (fan-out)` : name);
  const lines: string[] = [];
  if (argv.flags.dot) {
    lines.push('digraph pipeline {', '  rankdir=LR;');
    for (const node of graph.nodes.values()) {
      const name = nodeName(node);
      lines.push(`  ${id(name)} [label="${label(name)}"${node.kind === 'fanout' ? ' shape=box3d' : ''}];`);
      for (const dep of nodeDeps(node)) lines.push(`  ${id(dep)} -> ${id(name)};`);
    }
    lines.push('}');
  } else {
    lines.push('flowchart LR');
    for (const node of graph.nodes.values()) {
      const name = nodeName(node);
      lines.push(`  ${id(name)}[${JSON.stringify(label(name))}]`);
      for (const dep of nodeDeps(node)) lines.push(`  ${id(dep)} --> ${id(name)}`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
