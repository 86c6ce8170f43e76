/**
 * Splits a shell script (`sh -c` text, a Makefile recipe line) into simple commands, each a list
 * of words with quotes removed: `'...'` is literal, `"..."` keeps `\"`/`\\` escapes, a backslash
 * outside quotes escapes the next character. Commands end at a newline, `;`, `&`, `&&`, `||` and
 * `|`; `#` at the start of a word comments out the rest of the line. Enough to find the commands
 * a storage step or a recipe runs; it does not expand variables, `$(...)`, globs or redirections
 * (a `>` stays a word).
 */
export function shellWords(script: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length) commands.push(words);
    words = [];
  };
  for (let i = 0; i < script.length; i++) {
    const c = script[i]!;
    if (c === "'") {
      const end = script.indexOf("'", i + 1);
      word += script.slice(i + 1, end < 0 ? script.length : end);
      inWord = true;
      i = end < 0 ? script.length : end;
    } else if (c === '"') {
      inWord = true;
      for (i++; i < script.length && script[i] !== '"'; i++) {
        if (script[i] === '\\' && /["\\$`]/.test(script[i + 1] ?? '')) i++;
        word += script[i];
      }
    } else if (c === '\\') {
      if (script[i + 1] === '\n') i++;
      else {
        word += script[i + 1] ?? '';
        inWord = true;
        i++;
      }
    } else if (c === '#' && !inWord) {
      while (i < script.length && script[i] !== '\n') i++;
      endCommand();
    } else if (c === '\n' || c === ';' || c === '&' || c === '|') {
      if ((c === '&' || c === '|') && script[i + 1] === c) i++;
      endCommand();
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else {
      word += c;
      inWord = true;
    }
  }
  endCommand();
  return commands;
}
