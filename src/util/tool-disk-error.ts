/**
 * A file tool's failure (`cp -R` of a run's tree, `tar -x` of a pinned tree) as one error: those
 * tools print a line per file, so a full disk gave one `cp: error` line per file of the tree. The
 * error carries the errno code its messages show (no space, read-only, permission denied) and the
 * directory it wrote into, which report/environment-failure.ts turns into one line naming that
 * directory and the fix; any other failure keeps the tool's first line.
 */
export function toolDiskError(what: string, stderr: string, dir: string): Error {
  const lines = stderr.trim().split('\n');
  const code = /No space left/.test(stderr) ? 'ENOSPC' : /Disk quota exceeded/.test(stderr) ? 'EDQUOT' : /Read-only file system/.test(stderr) ? 'EROFS' : /Permission denied/.test(stderr) ? 'EACCES' : undefined;
  const more = lines.length > 1 ? ` (and ${lines.length - 1} more line(s))` : '';
  // environment-failure.ts names the directory of `path`: a file inside `dir` names `dir`.
  return Object.assign(new Error(`${what}: ${lines[0] ?? ''}${more}`), code ? { code, path: `${dir}/x` } : {});
}
