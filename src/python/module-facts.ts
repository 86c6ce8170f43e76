import { logicalLines, type LogicalLine, type Token } from './tokenizer.ts';

/**
 * What a static reader learns from one Python file, without importing it: the imports (every
 * one, at module level, in functions, in `if`/`try` blocks), whether `python -m` would do
 * anything (a `__main__` guard or module-level calls), and its argparse surface. Plain data, so a
 * pinned tree's facts can be memoised as JSON (python-index.ts).
 *
 * It does not see: imports by string (`importlib.import_module("x")`, `__import__`), except a
 * package's lazy `__getattr__` exports, over-approximated by every module name its strings hold
 * (`lazyModules`); a statement after `:` on its header's line
 * (`if x: import y`), flags built at run time (`add_argument(*names)`, a flag in a variable),
 * subparsers, and calls to a parser helper through an alias of an alias.
 */
export interface ModuleFacts {
  imports: ImportStatement[];
  /** `if __name__ == "__main__":` at module level. */
  mainGuard: boolean;
  /** A module-level call or loop (a script without a guard, like download_private_prerequisites). */
  moduleCode: boolean;
  argparse: ArgparseFacts;
  /** String literals that look like file names (`x.h5`, `policy_data.db`), f-strings as patterns with `\0` per field. */
  fileNames: string[];
  /**
   * For a module with a module-level `__getattr__` (a package's lazy exports, as
   * policyengine_us_data/utils/__init__.py), the dotted module names its string literals hold:
   * `from pkg import name` of a name that is no submodule may import any of them.
   */
  lazyModules?: string[];
}

/** `import a.b` (names empty, level 0) or `from ..a import b, c` (level 2, module `a`). */
export interface ImportStatement {
  level: number;
  /** The dotted module after `from`, or after `import`; empty for `from . import x`. */
  module: string;
  /** For `from` imports, the imported names (`*` for a star import); each may be a submodule. */
  names: string[];
  /** Local names bound to something else than themselves: `import a.b as c` {c: ''}, `from m import f as g` {g: 'f'}. */
  aliases?: Record<string, string>;
  from: boolean;
  line: number;
}

export interface ArgparseFacts {
  /** Option strings of every `add_argument` call in the file (groups included), with `--no-x` for BooleanOptionalAction. */
  flags: string[];
  /** Positional arguments (`add_argument("path")`): their count only matters for a check. */
  positionals: number;
  /** `parse_args()` somewhere in the file. */
  parsesArgs: boolean;
  /** `parse_known_args()`: unknown flags are tolerated (and ignored). */
  parsesKnownArgs: boolean;
  /** `sys.argv` read by hand. */
  readsSysArgv: boolean;
  /** Called names, dotted as written (`etl_argparser`, `db_utils.etl_argparser`). */
  calls: string[];
  /**
   * Top-level functions that add arguments (shared parsers such as utils/db.py's
   * `etl_argparser`): a module calling one takes its flags too.
   */
  parserFunctions: Record<string, { flags: string[]; parsesArgs: boolean; parsesKnownArgs: boolean; calls: string[] }>;
}

const FILE_NAME = /[\w\0-]\.[A-Za-z][A-Za-z0-9]{0,5}$/;

/** Reads one Python file's facts from its source text. */
export function moduleFacts(source: string): ModuleFacts {
  const lines = logicalLines(source).flatMap(splitSemicolons);
  const imports: ImportStatement[] = [];
  let mainGuard = false;
  let moduleCode = false;
  for (const l of lines) {
    imports.push(...importsOf(l));
    if (l.indent !== 0) continue;
    if (isMainGuard(l.tokens)) mainGuard = true;
    else if (isModuleCode(l.tokens)) moduleCode = true;
  }
  const all = lines.flatMap((l) => l.tokens);
  const fileNames = new Set<string>();
  for (const t of all) {
    if (t.kind !== 'string') continue;
    const text = t.fstring ? t.pattern : t.value;
    if (text.length < 200 && !/\s/.test(text) && FILE_NAME.test(text)) fileNames.add(text);
    // Literals inside an f-string's fields: f"sqlite:///{STORAGE_FOLDER / 'policy_data.db'}".
    if (t.fstring) for (const m of t.value.matchAll(/(['"])([^'"\s]{1,200})\1/g)) if (FILE_NAME.test(m[2]!)) fileNames.add(m[2]!);
  }
  const facts: ModuleFacts = { imports, mainGuard, moduleCode, argparse: argparseFacts(lines, all), fileNames: [...fileNames].sort() };
  if (lines.some((l) => l.indent === 0 && isName(l.tokens[0], 'def') && isName(l.tokens[1], '__getattr__'))) {
    const dottedNames = all.filter((t) => t.kind === 'string' && !t.fstring && /^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$/.test(t.value)).map((t) => (t as { value: string }).value);
    if (dottedNames.length) facts.lazyModules = [...new Set(dottedNames)].sort();
  }
  return facts;
}

/** `a; b` is two statements with the line's indent (their imports count, and so does a call). */
function splitSemicolons(l: LogicalLine): LogicalLine[] {
  if (!l.tokens.some((t) => t.kind === 'op' && t.value === ';')) return [l];
  const out: LogicalLine[] = [];
  let tokens: Token[] = [];
  for (const t of [...l.tokens, { kind: 'op', value: ';', line: l.line } as Token]) {
    if (t.kind === 'op' && t.value === ';') {
      if (tokens.length) out.push({ indent: l.indent, line: tokens[0]!.line, tokens });
      tokens = [];
    } else tokens.push(t);
  }
  return out;
}

const isName = (t: Token | undefined, value?: string) => t?.kind === 'name' && (value === undefined || t.value === value);
const isOp = (t: Token | undefined, value: string) => t?.kind === 'op' && t.value === value;

/** Reads a dotted name at `i`; returns it and the index after it. */
function dotted(tokens: Token[], i: number): { name: string; next: number } {
  let name = '';
  while (isName(tokens[i])) {
    name += (tokens[i] as { value: string }).value;
    i++;
    if (!isOp(tokens[i], '.')) break;
    name += '.';
    i++;
  }
  return { name, next: i };
}

/** The imports of one statement: `import a.b as c, d` is two, `from x import y, z` one. */
function importsOf(l: LogicalLine): ImportStatement[] {
  const t = l.tokens;
  if (isName(t[0], 'import')) {
    const out: ImportStatement[] = [];
    let i = 1;
    while (i < t.length) {
      const { name, next } = dotted(t, i);
      i = next;
      const stmt: ImportStatement = { level: 0, module: name, names: [], from: false, line: l.line };
      if (isName(t[i], 'as') && isName(t[i + 1])) {
        stmt.aliases = { [(t[i + 1] as { value: string }).value]: '' };
        i += 2;
      }
      if (name) out.push(stmt);
      if (!isOp(t[i], ',')) break;
      i++;
    }
    return out;
  }
  if (!isName(t[0], 'from')) return [];
  let i = 1;
  let level = 0;
  while (isOp(t[i], '.') || isOp(t[i], '...')) {
    level += (t[i] as { value: string }).value.length;
    i++;
  }
  const { name: module, next } = dotted(t, i);
  i = next;
  if (!isName(t[i], 'import')) return [];
  i++;
  const names: string[] = [];
  const aliases: Record<string, string> = {};
  for (; i < t.length; i++) {
    const tok = t[i]!;
    if (isOp(tok, '*')) names.push('*');
    else if (tok.kind === 'name' && tok.value !== 'as' && !isName(t[i - 1], 'as')) {
      names.push(tok.value);
      if (isName(t[i + 1], 'as') && isName(t[i + 2])) aliases[(t[i + 2] as { value: string }).value] = tok.value;
    }
  }
  return [{ level, module, names, ...(Object.keys(aliases).length ? { aliases } : {}), from: true, line: l.line }];
}

function isMainGuard(t: Token[]): boolean {
  if (!isName(t[0], 'if') || !isOp(t[t.length - 1], ':')) return false;
  const hasName = t.some((x) => isName(x, '__name__'));
  const hasMain = t.some((x) => x.kind === 'string' && x.value === '__main__');
  return hasName && hasMain && t.some((x) => isOp(x, '=='));
}

const KEYWORDS = new Set(['def', 'class', 'import', 'from', 'if', 'elif', 'else', 'try', 'except', 'finally', 'return', 'pass', 'raise', 'assert', 'del', 'global', 'nonlocal', 'async', 'lambda', 'yield', 'await', 'break', 'continue', 'match', 'case', 'type']);

/** A module-level expression statement that calls something, or a module-level loop or `with`. */
function isModuleCode(t: Token[]): boolean {
  const first = t[0];
  if (isName(first, 'for') || isName(first, 'while') || isName(first, 'with')) return true;
  if (!isName(first) || KEYWORDS.has((first as { value: string }).value)) return false;
  let depth = 0;
  let call = false;
  for (const tok of t) {
    if (tok.kind !== 'op') continue;
    if (tok.value === '(' || tok.value === '[' || tok.value === '{') {
      if (tok.value === '(' && depth === 0) call = true;
      depth++;
    } else if (tok.value === ')' || tok.value === ']' || tok.value === '}') depth--;
    else if (depth === 0 && (tok.value === '=' || tok.value === ':' || (tok.value.endsWith('=') && !['==', '!=', '<=', '>='].includes(tok.value)))) return false;
  }
  return call;
}

/** The argparse surface of the file, and of each top-level function that adds arguments. */
function argparseFacts(lines: LogicalLine[], all: Token[]): ArgparseFacts {
  const own = scanArgparse(all);
  const parserFunctions: ArgparseFacts['parserFunctions'] = {};
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const t = l.tokens;
    if (l.indent !== 0) continue;
    const def = isName(t[0], 'def') ? 1 : isName(t[0], 'async') && isName(t[1], 'def') ? 2 : 0;
    if (!def || !isName(t[def])) continue;
    const body: Token[] = [];
    for (let j = i + 1; j < lines.length && lines[j]!.indent > 0; j++) body.push(...lines[j]!.tokens);
    const scanned = scanArgparse(body);
    if (scanned.flags.length === 0 && scanned.positionals === 0) continue;
    parserFunctions[(t[def] as { value: string }).value] = { flags: scanned.flags, parsesArgs: scanned.parsesArgs, parsesKnownArgs: scanned.parsesKnownArgs, calls: scanned.calls };
  }
  return { ...own, parserFunctions };
}

function scanArgparse(t: Token[]): Omit<ArgparseFacts, 'parserFunctions'> {
  const flags = new Set<string>();
  const calls = new Set<string>();
  let positionals = 0;
  let parsesArgs = false;
  let parsesKnownArgs = false;
  let readsSysArgv = false;
  for (let i = 0; i < t.length; i++) {
    const tok = t[i]!;
    if (tok.kind !== 'name') continue;
    const attribute = isOp(t[i - 1], '.');
    if (isName(tok, 'argv') && ((attribute && isName(t[i - 2], 'sys')) || (isName(t[i - 1], 'import') && isName(t[i - 2], 'sys')))) readsSysArgv = true;
    if (!isOp(t[i + 1], '(')) continue;
    if (attribute && tok.value === 'parse_args') parsesArgs = true;
    if (attribute && tok.value === 'parse_known_args') parsesKnownArgs = true;
    if (attribute && tok.value === 'add_argument') {
      const args = callArguments(t, i + 1);
      const names = args.positional.filter((a): a is Extract<Token, { kind: 'string' }> => a.kind === 'string' && !a.fstring).map((a) => a.value);
      const options = names.filter((n) => n.startsWith('-'));
      if (options.length === 0 && names.length > 0) positionals++;
      const boolOptional = args.keywords.get('action')?.some((x) => isName(x, 'BooleanOptionalAction')) ?? false;
      for (const o of options) {
        flags.add(o);
        if (boolOptional && o.startsWith('--')) flags.add(`--no-${o.slice(2)}`);
      }
      continue;
    }
    // A call `f(` or `a.b.f(`, named as written.
    let name = tok.value;
    for (let j = i - 1; isOp(t[j], '.') && isName(t[j - 1]); j -= 2) name = `${(t[j - 1] as { value: string }).value}.${name}`;
    calls.add(name);
  }
  return { flags: [...flags].sort(), positionals, parsesArgs, parsesKnownArgs, readsSysArgv, calls: [...calls].sort() };
}

/** The arguments of the call whose `(` is at `open`: positional tokens (first of each) and keyword values. */
function callArguments(t: Token[], open: number): { positional: Token[]; keywords: Map<string, Token[]> } {
  const positional: Token[] = [];
  const keywords = new Map<string, Token[]>();
  let depth = 0;
  let start = open + 1;
  const take = (end: number) => {
    const arg = t.slice(start, end);
    if (arg.length === 0) return;
    if (isName(arg[0]) && isOp(arg[1], '=')) keywords.set((arg[0] as { value: string }).value, arg.slice(2));
    else if (arg.length === 1) positional.push(arg[0]!);
    else if (arg.every((x) => x.kind === 'string')) positional.push({ ...(arg[0] as Extract<Token, { kind: 'string' }>), value: arg.map((x) => (x as { value: string }).value).join('') });
    else positional.push({ kind: 'op', value: '<expr>', line: arg[0]!.line });
  };
  for (let i = open; i < t.length; i++) {
    const tok = t[i]!;
    if (tok.kind !== 'op') continue;
    if (tok.value === '(' || tok.value === '[' || tok.value === '{') depth++;
    else if (tok.value === ')' || tok.value === ']' || tok.value === '}') {
      depth--;
      if (depth === 0) {
        take(i);
        break;
      }
    } else if (tok.value === ',' && depth === 1) {
      take(i);
      start = i + 1;
    }
  }
  return { positional, keywords };
}
