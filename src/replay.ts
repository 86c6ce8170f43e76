import { join } from 'node:path';
import type { Cache } from './caching/cache.ts';
import type { Emit } from './report/events.ts';
import { declaredParts, FINGERPRINT_SCHEMA } from './fingerprint.ts';
import { digestBytes, type Digest } from './caching/hash.ts';
import { expandFanout, type Graph } from './graph.ts';
import type { OutputRecord } from './output-record.ts';
import { envDirOf } from './placeholders.ts';
import { PYTHON_INDEX_SCHEMA } from './python/python-index.ts';
import { listRunIds, makeRunId, readMeta, type RunMeta, type TargetOutcome } from './run.ts';
import type { SchedulerReport } from './scheduler.ts';
import type { Environment, Target, Vars } from './target.ts';

/**
 * Whole-run replay: a build whose inputs equal the previous completed run's takes that run's keys
 * and outputs instead of fingerprinting and looking up every target (~0.3 ms each, most of a no-op
 * of ~500 targets).
 *
 * Why it is the same build: a target's action key hashes its declared parts (command, variables,
 * declared environment, outputs), its sources and its upstream outputs' digests. Its sources are
 * the files its patterns match in the pinned tree, plus the import closure of its Python modules
 * and adapters (src/python/); both are fixed by the SHA once the patterns, the declared
 * `pythonModules`, the adapters' bytes (adaptersDigest) and the Python reader's schema are fixed,
 * so the inputs key hashes those, never the files. It does so for every target, fan-out children
 * included (expanded from the recorded outputs, as the scheduler would).
 * With equal inputs keys, the recorded upstream outputs give the recorded keys, target by target,
 * in dependency order. A replay still requires every entry to exist and every blob to be one the
 * digest memo knows by its stat; anything else (a missing, changed or collected blob) falls back
 * to the normal walk, which verifies, reports and rebuilds.
 */

/** Bump when the inputs key's meaning changes: runs recorded under another schema never replay. */
const REPLAY_SCHEMA = 2;

/** What a build is asked to do, as prepare() resolved it. */
export interface BuildInputs {
  version: string;
  sha: string;
  goals: string[];
  graph: Graph;
  vars: Vars;
  /** The build system's adapter scripts (prepare.ts): not fixed by the SHA, so compared here. */
  adaptersDigest: string;
  /** The environment the CLI read: the targets' declared env values are part of their keys. */
  env: Environment;
  /** Where Python environments are built (a replay checks the pipeline's is still there). */
  envsDir: string;
}

/** A fan-out and the children it expanded to. */
type Expansion = { name: string; children: Target[]; childPrefix: string };

export interface Replay {
  from: string;
  inputsKey: string;
  fanouts: Expansion[];
  /** The release store that run was staged to (publish.staging.store in its meta.json), if it was. */
  stagedTo: string | null;
  /** In the recorded run's order. */
  targets: { target: Target; outcome: TargetOutcome & { key: string; outputs: Record<string, OutputRecord> } }[];
}

/**
 * The targets a completed run built for `inputs`, fan-outs expanded from the run's recorded
 * outputs; null when the record cannot say (an output missing from it or from the store).
 */
function selectedTargets(inputs: BuildInputs, meta: RunMeta, cache: Cache): { targets: Target[]; fanouts: Expansion[] } | null {
  const { names, onlyChildren } = inputs.graph.select(inputs.goals);
  const targets: Target[] = [];
  const fanouts: Expansion[] = [];
  const groups = new Map<string, Record<string, OutputRecord>>();
  const outputsOf = (dep: string) => meta.targets[dep]?.outputs ?? groups.get(dep);
  for (const name of names) {
    const node = inputs.graph.get(name);
    if (node.kind === 'target') {
      targets.push(node.target);
      continue;
    }
    let children: Target[];
    try {
      children = expandFanout(node.fanout, outputsOf, (d) => cache.blobPath(d), inputs.vars, onlyChildren.get(name));
    } catch {
      return null;
    }
    const union: Record<string, OutputRecord> = {};
    for (const child of children) Object.assign(union, meta.targets[child.name]?.outputs);
    groups.set(name, union);
    targets.push(...children);
    fanouts.push({ name, children, childPrefix: node.fanout.childPrefix });
  }
  return { targets, fanouts };
}

/** The digest of everything but bytes that the run's action keys depend on (see the module note). */
function inputsKeyOf(inputs: BuildInputs, targets: Target[]): string {
  const declared = targets.map((t) => ({ name: t.name, deps: t.deps, sources: t.sources, pythonModules: t.pythonModules ?? [], outputs: t.outputs, ...declaredParts(t, inputs.vars, inputs.env) }));
  return digestBytes(
    JSON.stringify({ schema: REPLAY_SCHEMA, fingerprint: FINGERPRINT_SCHEMA, python: PYTHON_INDEX_SCHEMA, sha: inputs.sha, goals: inputs.goals, adapters: inputs.adaptersDigest, targets: declared }),
  );
}

/** The inputs key of a run that just completed, to record in its meta.json (null if it cannot be replayed). */
export function recordedInputsKey(inputs: BuildInputs, meta: RunMeta, cache: Cache): string | null {
  const selected = selectedTargets(inputs, meta, cache);
  return selected ? inputsKeyOf(inputs, selected.targets) : null;
}

/**
 * The replay of the newest run of the same version and SHA (other than `exclude`, the run being
 * started), or null when that run is not a completed build of the same inputs whose entries and
 * blobs are all still in place. Only runs of one SHA are compared: their ids are allocated in
 * order (run.ts), while runs of different SHAs started in the same second have no order.
 */
export async function findReplay(inputs: BuildInputs, cache: Cache, exclude?: string): Promise<Replay | null> {
  const prefix = makeRunId(inputs.version, inputs.sha, new Date(0)).slice(0, -15);
  const newest = (await listRunIds(cache.dir)).find((id) => id !== exclude && id.startsWith(prefix));
  if (!newest) return null;
  const read = await readMeta(cache.dir, newest);
  if (!read.ok) return null;
  const meta = read.value;
  // The inputs key covers the SHA and the goals too.
  if (!meta.inputsKey || (meta.status !== 'completed' && meta.status !== 'promoted')) return null;
  const selected = selectedTargets(inputs, meta, cache);
  if (!selected || inputsKeyOf(inputs, selected.targets) !== meta.inputsKey) return null;
  // An always-run target reads what no inputs key covers (Target.alwaysRun).
  if (selected.targets.some((t) => t.alwaysRun)) return null;
  if (Object.keys(meta.targets).length !== selected.targets.length) return null;

  const byName = new Map(selected.targets.map((t) => [t.name, t]));
  const targets: Replay['targets'] = [];
  for (const [name, outcome] of Object.entries(meta.targets)) {
    const target = byName.get(name);
    const { key, outputs } = outcome;
    if (!target || !key || !outputs || (outcome.outcome !== 'built' && outcome.outcome !== 'cached')) return null;
    const present = target.environment ? envDirOf(inputs.envsDir, key).complete : cache.holds(key, outputs);
    if (!present) return null;
    targets.push({ target, outcome: { ...outcome, key, outputs } });
  }
  return { from: newest, inputsKey: meta.inputsKey, fanouts: selected.fanouts, targets, stagedTo: stagedStore(meta) };
}

function stagedStore(meta: RunMeta): string | null {
  const staging = meta.publish?.staging as { store?: unknown } | undefined;
  return typeof staging?.store === 'string' ? staging.store : null;
}

/**
 * Links a replay's outputs into the new run and reports each target as cached, with the events
 * and records the scheduler would have written for a fully cached build.
 */
export async function applyReplay(
  replay: Replay,
  cache: Cache,
  runDir: string,
  emit: Emit,
  record: (target: string, outcome: TargetOutcome) => void,
): Promise<SchedulerReport> {
  // Expansions first, as the scheduler reports each before its children.
  for (const f of replay.fanouts) emit({ event: 'expand', target: f.name, children: f.children.length, childPrefix: f.childPrefix });
  for (const { target, outcome } of replay.targets) {
    if (!target.environment) {
      for (const [path, output] of Object.entries(outcome.outputs)) {
        if (!output.remote) await cache.placeBlob(output.digest as Digest, join(runDir, path));
      }
    }
    const executor = outcome.executor ?? 'local';
    emit({ event: 'target', target: target.name, outcome: 'cached', key: outcome.key, executor });
    record(target.name, {
      outcome: 'cached',
      key: outcome.key,
      executor,
      ...(outcome.remote ? { remote: { ...outcome.remote, saved: true } } : {}),
      outputs: outcome.outputs,
    });
  }
  return { built: 0, cached: replay.targets.length, failed: 0, cancelled: 0, skipped: 0, aborted: false };
}
