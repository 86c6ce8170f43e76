import { readFile, writeFile } from 'node:fs/promises';
import type { ExecOutcome } from './executors/executor.ts';
import type { Graph } from './graph.ts';
import { UsageError } from './report/failures.ts';
import { scrubSecrets } from './stores/store.ts';
import type { Target } from './target.ts';

/**
 * Secret environment (Target.secretEnv, e.g. HUGGING_FACE_TOKEN for the private prerequisites):
 * the values reach the target's action and nothing else. They are never hashed (what they
 * fetch is pinned by something that is in the key), never recorded, never in a remote request (on
 * Modal the action gets them from a Modal secret attached to its call only); a build that needs one that is not set stops before any work; and should an action
 * print one, it is scrubbed (`***`, as the stores scrub their tokens) from its log and from the
 * failure that quotes the log.
 */

/**
 * The first secret a selected target that runs here needs and `env` lacks, as the usage error to
 * stop with; null when none is missing. A target sent to Modal gets its secret from a Modal
 * secret instead, which the Modal executor checks before any work (executors/modal/secrets.ts).
 */
export function missingSecret(graph: Graph, goals: string[], env: NodeJS.ProcessEnv, runsHere: (target: Target) => boolean = () => true): UsageError | null {
  for (const name of graph.select(goals).names) {
    const node = graph.get(name);
    if (node.kind !== 'target' || !runsHere(node.target)) continue;
    for (const variable of node.target.secretEnv ?? []) {
      if (env[variable]) continue;
      return new UsageError(
        'missing-secret',
        `target ${name} needs ${variable} in the environment, which is not set; export it (it reaches that action only and is never recorded), or build goals that do not need ${name}`,
      );
    }
  }
  return null;
}

/** The secret variables of a target that are set, with their values (for the action's environment). */
export function secretsOf(target: Target, env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of target.secretEnv ?? []) if (env[name]) out[name] = env[name];
  return out;
}

/** Scrubs an action's log file and its failure text of the secrets it was given. */
export async function scrubOutcome(outcome: ExecOutcome, logFile: string, secrets: string[]): Promise<ExecOutcome> {
  const log = await readFile(logFile, 'utf8').catch(() => null);
  if (log !== null) {
    const clean = scrubSecrets(log, secrets);
    if (clean !== log) await writeFile(logFile, clean);
  }
  if (outcome.ok) return outcome;
  const { failure } = outcome;
  return { ...outcome, failure: { ...failure, message: scrubSecrets(failure.message, secrets), logTail: scrubSecrets(failure.logTail, secrets) } };
}
