import { shellWords } from './shell-words.ts';

/**
 * What `check` needs of a Makefile, read statically: its rule targets with their recipe lines,
 * and the variables it references. It does not evaluate make: no includes, no conditionals
 * (`ifeq` blocks are read as if all branches held), no pattern rules, no variables in target
 * names. A recipe line is split into shell words roughly (see shell-words.ts).
 */
export interface Makefile {
  /** Rule target -> its recipe lines (line numbers are 1-based). */
  rules: Map<string, { line: number; recipe: { line: number; text: string }[] }>;
  /** Variables referenced as `$(NAME)` or `${NAME}` anywhere. */
  referenced: Set<string>;
}

export function readMakefile(text: string): Makefile {
  const rules: Makefile['rules'] = new Map();
  const referenced = new Set<string>();
  for (const m of text.matchAll(/\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]/g)) referenced.add(m[1]!);
  const physical = text.split(/\r?\n/);
  let current: { line: number; recipe: { line: number; text: string }[] }[] = [];
  for (let i = 0; i < physical.length; i++) {
    const line = i + 1;
    let raw = physical[i]!;
    while (raw.endsWith('\\') && i + 1 < physical.length) raw = `${raw.slice(0, -1)} ${physical[++i]!.trimStart()}`;
    if (raw.startsWith('\t')) {
      for (const rule of current) rule.recipe.push({ line, text: raw.slice(1) });
      continue;
    }
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    const rule = /^([^\s:#=][^:#=]*?)\s*::?(?!=)(.*)$/.exec(raw);
    if (!rule || /^\s*(?:[?:+!]?=)/.test(rule[2]!)) {
      current = [];
      continue;
    }
    current = [];
    for (const name of rule[1]!.split(/\s+/)) {
      if (!name || name.startsWith('.')) continue;
      const entry = rules.get(name) ?? { line, recipe: [] };
      rules.set(name, entry);
      current.push(entry);
    }
  }
  return { rules, referenced };
}

/** The `python -m <module> args...` invocations of a recipe, in order (`python`, `python3`, `$(PYTHON)`). */
export function recipeModules(recipe: { line: number; text: string }[]): { line: number; module: string; args: string[] }[] {
  const out: { line: number; module: string; args: string[] }[] = [];
  for (const { line, text } of recipe) {
    for (const words of shellWords(text.replace(/^[@+-]+/, ''))) {
      const at = words.findIndex((w) => /^(python3?(\.\d+)?|\$[({]PYTHON[)}])$/.test(w));
      if (at < 0) continue;
      const m = words.indexOf('-m', at);
      if (m < 0 || !words[m + 1]) continue;
      out.push({ line, module: words[m + 1]!, args: words.slice(m + 2) });
    }
  }
  return out;
}
