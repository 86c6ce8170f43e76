import { readFile } from 'node:fs/promises';

/**
 * One line for the two ways an environment build of a pinned project fails on the pins
 * themselves: the package index does not serve a version the lock pins (yanked, deleted, or a
 * mirror that lacks it), or the pins, once substituted, cannot be installed together (a
 * substituted package needs a newer version of another pin). The installers say so in several
 * forms; each names the package and the version.
 */
const UNSERVED: RegExp[] = [
  // uv pip install: "Because there is no version of policyengine-us==1.637.0 and you require ..."
  /there is no version of ([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s,]+)/,
  // uv sync from a lock: "Failed to download `policyengine-us==1.637.0`"
  /Failed to download `([A-Za-z0-9][A-Za-z0-9._-]*)==([^`\s]+)`/,
  // pip: "No matching distribution found for policyengine-us==1.637.0"
  /No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)/,
];

/** uv: "cause: Because policyengine-us<=1.691.1 depends on policyengine-core>=3.26.0 and you require policyengine-core==3.23.6, we can conclude ..." */
const CONFLICT = /Because (\S+ depends on \S+) and you require (\S+), we can conclude/;

export interface EnvFailure {
  reason: 'unserved-pin' | 'conflicting-pins';
  line: string;
}

/** What the log shows went wrong with the pins, or null when it shows something else. */
export function pinFailure(log: string, currentSubstitute: string | undefined): EnvFailure | null {
  const current = currentSubstitute?.trim() ? `${currentSubstitute.trim()} ` : '';
  for (const pattern of UNSERVED) {
    const m = pattern.exec(log);
    if (!m) continue;
    const [, name, version] = m as unknown as [string, string, string];
    return {
      reason: 'unserved-pin',
      line:
        `the package index does not serve ${name}==${version}, which the lock pins; ` +
        `substitute a served version explicitly with PY_SUBSTITUTE="${current}${name}==<served version>" (recorded in the environment's key and the run's meta.json)`,
    };
  }
  const conflict = CONFLICT.exec(log);
  if (conflict) {
    const [, needs, pinned] = conflict as unknown as [string, string, string];
    const name = pinned.split('==')[0]!;
    return {
      reason: 'conflicting-pins',
      line: `the pins cannot be installed together: ${needs}, but the lock pins ${pinned}; substitute that one too, e.g. PY_SUBSTITUTE="${current}${name}==<a version that fits>"`,
    };
  }
  return null;
}

/** pinFailure over an action's log file (unreadable: null). */
export async function pinFailureInLog(logFile: string, currentSubstitute: string | undefined): Promise<EnvFailure | null> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  return pinFailure(text, currentSubstitute);
}
