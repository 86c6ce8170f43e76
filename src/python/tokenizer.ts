/**
 * A tokenizer for Python source, careful where a static reader of imports and argparse calls can
 * go wrong: comments, string literals of every kind (single, triple-quoted, raw, bytes, f-strings
 * with nested quotes and replacement fields as Python 3.12 allows), bracket depth (a newline
 * inside brackets does not end a statement) and backslash continuations. It groups tokens into
 * logical lines with the indentation of their first token, which is all module-facts.ts needs.
 *
 * It does not handle: tab indentation beyond "a tab counts as one column" (only the order of
 * indents matters here), source encodings other than UTF-8, and the lexical errors CPython would
 * reject (an unterminated string ends at the end of the file).
 */

export type Token =
  | { kind: 'name'; value: string; line: number }
  | { kind: 'op'; value: string; line: number }
  | { kind: 'number'; value: string; line: number }
  /**
   * `value`: the literal's text between its quotes, escapes left as written (enough for flags and
   * file names). `pattern`: for an f-string, the text with each replacement field as `\0`.
   */
  | { kind: 'string'; value: string; fstring: boolean; pattern: string; line: number };

/** A logical line: one statement's tokens (or a compound statement's header), with its indent. */
export interface LogicalLine {
  indent: number;
  line: number;
  tokens: Token[];
}

/** An identifier, matched in one step where the scanner stands (sticky). */
const NAME = /[\p{L}\p{Nl}_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}_]*/uy;
/** Longest first, so `**=` is one operator. */
const OPERATORS = ['**=', '//=', '>>=', '<<=', '...', '->', ':=', '==', '!=', '<=', '>=', '**', '//', '<<', '>>', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '@='];
const MULTI_START = new Set(OPERATORS.map((o) => o[0]!));
const STRING_PREFIX = /^(?:[rRbBuUfFtT]{1,2})?$/;

/** Splits Python source into logical lines of tokens. */
export function logicalLines(source: string): LogicalLine[] {
  const s = new Scanner(source);
  const lines: LogicalLine[] = [];
  let current: LogicalLine | null = null;
  let depth = 0;
  let lineStart = true;
  let column = 0;
  const push = (token: Token) => {
    if (!current) {
      current = { indent: column, line: token.line, tokens: [] };
      lines.push(current);
    }
    current.tokens.push(token);
  };
  while (!s.done()) {
    const c = s.peek();
    if (lineStart) {
      column = 0;
      while (s.peek() === ' ' || s.peek() === '\t' || s.peek() === '\f') {
        s.next();
        column++;
      }
      lineStart = false;
      continue;
    }
    if (c === '\n' || c === '\r') {
      s.next();
      if (c === '\r' && s.peek() === '\n') s.next();
      s.line++;
      if (depth === 0) {
        current = null;
        lineStart = true;
      }
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\f') {
      s.next();
      continue;
    }
    if (c === '#') {
      while (!s.done() && s.peek() !== '\n' && s.peek() !== '\r') s.next();
      continue;
    }
    if (c === '\\' && (s.peek(1) === '\n' || s.peek(1) === '\r')) {
      s.next();
      s.next();
      if (s.peek() === '\n') s.next();
      s.line++;
      continue;
    }
    const word = s.matchName();
    if (word !== null) {
      const quote = s.peek();
      if ((quote === '"' || quote === "'") && STRING_PREFIX.test(word)) {
        push(s.string(word));
      } else {
        push({ kind: 'name', value: word, line: s.line });
      }
      continue;
    }
    if (c === '"' || c === "'") {
      push(s.string(''));
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(s.peek(1)))) {
      push({ kind: 'number', value: s.number(), line: s.line });
      continue;
    }
    const op = (MULTI_START.has(c) && OPERATORS.find((o) => s.startsWith(o))) || c;
    for (let i = 0; i < op.length; i++) s.next();
    if (op === '(' || op === '[' || op === '{') depth++;
    else if ((op === ')' || op === ']' || op === '}') && depth > 0) depth--;
    push({ kind: 'op', value: op, line: s.line });
  }
  return lines;
}

class Scanner {
  private readonly src: string;
  private pos = 0;
  line = 1;

  constructor(src: string) {
    this.src = src;
  }

  done(): boolean {
    return this.pos >= this.src.length;
  }

  peek(ahead = 0): string {
    return this.src[this.pos + ahead] ?? '';
  }

  next(): string {
    return this.src[this.pos++] ?? '';
  }

  startsWith(text: string): boolean {
    return this.src.startsWith(text, this.pos);
  }

  matchName(): string | null {
    const c = this.src.charCodeAt(this.pos);
    // Fast rejection of ASCII that cannot start a name (digits, operators, spaces, quotes).
    if (c < 128 && !((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95)) return null;
    NAME.lastIndex = this.pos;
    const m = NAME.exec(this.src);
    if (!m) return null;
    this.pos += m[0].length;
    return m[0];
  }

  number(): string {
    const start = this.pos;
    while (!this.done() && /[0-9a-zA-Z_.]/.test(this.peek())) {
      const c = this.next();
      if ((c === 'e' || c === 'E') && (this.peek() === '+' || this.peek() === '-')) this.next();
    }
    return this.src.slice(start, this.pos);
  }

  /** A string literal whose prefix has been read; the scanner is at its opening quote. */
  string(prefix: string): Token {
    const line = this.line;
    const fstring = /[fFtT]/.test(prefix);
    const q = this.peek();
    const triple = this.startsWith(q.repeat(3));
    const close = triple ? q.repeat(3) : q;
    for (let i = 0; i < close.length; i++) this.next();
    let value = '';
    let pattern = '';
    while (!this.done()) {
      if (this.startsWith(close)) {
        for (let i = 0; i < close.length; i++) this.next();
        break;
      }
      const c = this.peek();
      if (!triple && (c === '\n' || c === '\r')) break; // unterminated: CPython would reject it
      if (c === '\\') {
        const escaped = this.next() + this.next();
        if (escaped.endsWith('\n')) this.line++;
        value += escaped;
        pattern += escaped;
        continue;
      }
      if (fstring && c === '{') {
        if (this.peek(1) === '{') {
          this.next();
          this.next();
          value += '{';
          pattern += '{';
          continue;
        }
        value += this.replacementField();
        pattern += '\0';
        continue;
      }
      if (fstring && c === '}' && this.peek(1) === '}') {
        this.next();
        this.next();
        value += '}';
        pattern += '}';
        continue;
      }
      if (c === '\n') this.line++;
      this.next();
      value += c;
      pattern += c;
    }
    return { kind: 'string', value, fstring, pattern, line };
  }

  /**
   * An f-string's `{expression!conversion:format}`, returned as written: brackets nest, strings
   * inside it are scanned as strings (so a quote or a brace in them ends nothing), and a format
   * spec's own `{...}` fields nest too.
   */
  private replacementField(): string {
    const start = this.pos;
    let depth = 0;
    while (!this.done()) {
      const c = this.peek();
      if (c === '"' || c === "'") {
        this.string('');
        continue;
      }
      const word = this.matchName();
      if (word !== null) {
        if ((this.peek() === '"' || this.peek() === "'") && STRING_PREFIX.test(word)) this.string(word);
        continue;
      }
      this.next();
      if (c === '\n') this.line++;
      if (c === '{' || c === '(' || c === '[') depth++;
      else if (c === '}' || c === ')' || c === ']') {
        depth--;
        if (depth === 0 && c === '}') break;
      }
    }
    return this.src.slice(start, this.pos);
  }
}
