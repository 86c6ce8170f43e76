/** POSIX single-quoting, as the action launcher quotes (shell-launcher.ts), so a printed command pastes into sh. */
export function shQuote(arg: string): string {
  return /^[\w/.,:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A resolved command as one copy-pasteable line, run where the action ran. */
export function shellCommand(argv: string[], cwd?: string): string {
  const command = argv.map(shQuote).join(' ');
  return cwd ? `cd ${shQuote(cwd)} && ${command}` : command;
}

/**
 * Paths inside a run's pinned tree (where the action ran) shown as paths of the repository the
 * user edits: a traceback then points at the file to open. `trees` are the pinned-tree roots.
 */
export function toRepoPaths(text: string, trees: string[], repo: string): string {
  let out = text;
  for (const tree of trees) out = out.split(`${tree}/`).join(`${repo}/`);
  return out;
}
