/** Label globs for key selection: `*` matches any run of characters, `?` exactly one. */

export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 'su');
}

export function matchesAny(label: string, globs: readonly string[]): boolean {
  return globs.some((g) => globToRegExp(g).test(label));
}
