import type { CommandContext } from './command.ts';
import { pipelineFactory } from './pipeline-declaration.ts';
import { fetchRunOutputs } from '../executors/modal/fetch.ts';
import { UsageError } from '../report/failures.ts';
import { checkRunId, listRunIds, readMeta, runDir, type RunMeta } from '../run.ts';
import { findRun, type RunSource } from './run-source.ts';
import { parseVariables } from '../variables.ts';
import { VARIABLES } from '../../tasks/index.ts';

/**
 * `./build.ts fetch <target|group>... [RUN_ID=...]`: downloads the remote-resident outputs of
 * those targets (left on the Modal volume by EXECUTOR=modal) into the local cache, verified by
 * digest, and links them into the run directory (default: the newest run that built them), e.g.
 * `./build.ts fetch h5:states/CA` or `./build.ts fetch areas` for every area file. Outputs that
 * are already local are just linked. Each output's record names the transport it lives on
 * (`modal:<volume>` or `standin:<dir>`), so no EXECUTOR setting is needed. RUN_ID may name a
 * run another machine made, on the volume (run-source.ts): its outputs come into this cache and
 * are linked into its local mirror (`<cache>/remote/<transport>/runs/<id>/`).
 */
export async function fetchCommand({ words, argv, settings, logger }: Pick<CommandContext, 'words' | 'argv' | 'settings' | 'logger'>): Promise<number> {
  const vars = parseVariables(argv.assignments, VARIABLES);
  if (words.length === 0) throw new UsageError('missing-target', 'fetch needs a target, e.g. ./build.ts fetch h5:states/CA (or a group: areas)');
  const dir = settings.cacheDir;
  // RUN_ID of a run another machine made: its record comes from the volume, its files go to its mirror.
  const found = vars.RUN_ID ? await findRun(checkRunId(vars.RUN_ID), settings) : { source: { where: 'local', cacheDir: dir } as RunSource, meta: await pickRun(dir, words, settings.tasksFile) };
  const { meta, source } = found;
  const targets = await expandNames(words, meta, settings.tasksFile);
  const into = runDir(source.cacheDir, meta.runId);
  const remoteRun = source.remote ? { remoteRun: { meta, dir: into, transport: source.remote.transport } } : {};
  const got = await fetchRunOutputs({ cacheDir: dir, runId: meta.runId, targets, modal: settings.modal, hashWorkers: settings.hashWorkers, ...remoteRun });
  if (argv.flags.json) logger.emit({ event: 'fetched', runId: meta.runId, where: source.where, files: got.files.length, bytes: got.bytes, downloaded: got.downloaded });
  else {
    for (const f of got.files) process.stdout.write(`${f}\n`);
    process.stderr.write(`fetched ${got.files.length} file(s), ${got.bytes} bytes (${got.downloaded} downloaded), into ${into}\n`);
  }
  return 0;
}

/** The newest local run whose meta records any of the wanted targets (or their group's items). */
async function pickRun(dir: string, words: string[], tasksFile: string | undefined): Promise<RunMeta> {
  const prefixes = await groupPrefixes(tasksFile);
  for (const id of await listRunIds(dir)) {
    const read = await readMeta(dir, id);
    if (!read.ok) continue;
    const names = Object.keys(read.value.targets);
    if (words.some((w) => names.includes(w) || (prefixes.has(w) && names.some((n) => n.startsWith(prefixes.get(w)!))))) return read.value;
  }
  throw new UsageError('not-built', `no run has built ${words.join(', ')}; build it first (list runs with ./build.ts status)`);
}

async function expandNames(words: string[], meta: RunMeta, tasksFile: string | undefined): Promise<string[]> {
  const prefixes = await groupPrefixes(tasksFile);
  const names: string[] = [];
  for (const w of words) {
    const prefix = prefixes.get(w);
    const matched = prefix ? Object.keys(meta.targets).filter((n) => n.startsWith(prefix)).sort() : meta.targets[w] ? [w] : [];
    if (matched.length === 0) throw new UsageError('unknown-target', `run ${meta.runId} has no target ${w}`);
    names.push(...matched);
  }
  return names;
}

/** Fan-out group name -> its children's prefix (`areas` -> `h5:`). */
async function groupPrefixes(tasksFile: string | undefined): Promise<Map<string, string>> {
  const make = await pipelineFactory(tasksFile);
  const out = new Map<string, string>();
  for (const node of make('example').nodes) if (node.kind === 'fanout') out.set(node.fanout.name, node.fanout.childPrefix);
  return out;
}
