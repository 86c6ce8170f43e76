/** A target glob (`h5:states/*`), as `status` and `cache ls` filter by: `*` any run of characters, `?` one. */
export function targetGlob(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}
