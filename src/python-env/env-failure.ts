import { readFile } from 'node:fs/promises';

/**
 * One line for the commonest way an environment build fails on a pinned project: the package
 * index does not serve a version the lock pins (yanked, deleted, or a mirror that lacks it). The
 * installers say so in several forms; each names the package and the version.
 */
const UNSERVED: RegExp[] = [
  // uv pip install: "Because there is no version of policyengine-us==1.637.0 and you require ..."
  /there is no version of ([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s,]+)/,
  // uv sync from a lock: "Failed to download `policyengine-us==1.637.0`"
  /Failed to download `([A-Za-z0-9][A-Za-z0-9._-]*)==([^`\s]+)`/,
  // pip: "No matching distribution found for policyengine-us==1.637.0"
  /No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)/,
];

/** The problem line (what is unserved, and how to substitute), or null when the log shows something else. */
export function unservedPinLine(log: string, currentSubstitute: string | undefined): string | null {
  for (const pattern of UNSERVED) {
    const m = pattern.exec(log);
    if (!m) continue;
    const [, name, version] = m as unknown as [string, string, string];
    const suggested = `${currentSubstitute?.trim() ? `${currentSubstitute.trim()} ` : ''}${name}==<served version>`;
    return (
      `the package index does not serve ${name}==${version}, which the lock pins; ` +
      `substitute a served version explicitly with PY_SUBSTITUTE="${suggested}" (recorded in the environment's key and the run's meta.json)`
    );
  }
  return null;
}

/** unservedPinLine over an action's log file (unreadable: null). */
export async function unservedPinInLog(logFile: string, currentSubstitute: string | undefined): Promise<string | null> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  return unservedPinLine(text, currentSubstitute);
}
