import type { CommandContext } from './command.ts';
import type { Event } from '../report/events.ts';
import { parseVariables } from '../variables.ts';
import { VARIABLES } from '../../tasks/index.ts';
import { pipelineFactory } from './pipeline-declaration.ts';
import { Graph, nodeDeps } from '../graph.ts';
import { listRunIds, readMeta } from '../run.ts';

/**
 * `./build.ts targets`: every target with its description, dependencies and executor. A fan-out's
 * items are known once its list has been built: they are taken from the newest run that expanded it.
 */
export async function targetsCommand({ argv, settings, logger }: CommandContext): Promise<number> {
  parseVariables(argv.assignments, VARIABLES);
  const graph = new Graph((await pipelineFactory(settings.tasksFile))('example'));
  const itemsOf = await fanoutItems(graph, settings.cacheDir);
  const rows: Extract<Event, { event: 'target-info' }>[] = [];
  const lines: string[] = [];
  for (const name of graph.order()) {
    const node = graph.get(name);
    const deps = nodeDeps(node);
    const description = (node.kind === 'target' ? node.target.description : node.fanout.description) ?? '';
    if (node.kind === 'target') {
      const executor = node.target.executor ?? 'local';
      rows.push({ event: 'target-info', target: name, kind: 'target', description, deps, executor });
      lines.push(`${name.padEnd(24)} ${executor.padEnd(6)} ${description}${deps.length ? `\n${''.padEnd(31)} needs ${deps.join(', ')}` : ''}`);
      continue;
    }
    const found = itemsOf.get(name);
    rows.push({ event: 'target-info', target: name, kind: 'fanout', description, deps, childPrefix: node.fanout.childPrefix, items: found?.items ?? null, ...(found ? { itemsFrom: found.runId } : {}) });
    const items = found
      ? `${found.items.length} items (as run ${found.runId} listed them): ${found.items.slice(0, 5).join(', ')}${found.items.length > 5 ? ', ...' : ''}`
      : `items ${node.fanout.childPrefix}... not known yet: they are listed once its inputs are built`;
    lines.push(`${name.padEnd(24)} ${'fan-out'.padEnd(6)} ${description}\n${''.padEnd(31)} needs ${deps.join(', ')}\n${''.padEnd(31)} ${items}`);
  }
  if (argv.flags.json) for (const row of rows) logger.emit(row);
  else process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** Each fan-out's items as the newest run that expanded it recorded them. */
async function fanoutItems(graph: Graph, dir: string): Promise<Map<string, { runId: string; items: string[] }>> {
  const fanouts = [...graph.nodes.values()].flatMap((n) => (n.kind === 'fanout' ? [n.fanout] : []));
  const out = new Map<string, { runId: string; items: string[] }>();
  for (const id of await listRunIds(dir)) {
    if (out.size === fanouts.length) break;
    const read = await readMeta(dir, id);
    if (!read.ok) continue;
    for (const f of fanouts) {
      if (out.has(f.name) || read.value.goals.some((g) => g.startsWith(f.childPrefix))) continue;
      const items = Object.keys(read.value.targets).filter((t) => t.startsWith(f.childPrefix)).sort();
      if (items.length) out.set(f.name, { runId: id, items });
    }
  }
  return out;
}
