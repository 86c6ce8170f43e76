/**
 * `import(specifier)` for the packages and files loaded at run time (zx, the HF and GCS clients,
 * a BUILD_TASKS module). The bundled CLI runs inside vm.Script (for its V8 code cache), where a
 * native `import()` has no loader once the script comes from the cache; the bundle's loader
 * (scripts/cli-loader.mjs) lends its own. From source (tests, tsx) the native one is used.
 */
export function importModule<T>(specifier: string): Promise<T> {
  const lent = (globalThis as Record<symbol, unknown>)[Symbol.for('build.import')];
  return (typeof lent === 'function' ? lent(specifier) : import(specifier)) as Promise<T>;
}
