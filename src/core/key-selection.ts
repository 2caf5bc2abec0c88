/** Which keys a policy covers: label patterns to include and to exclude. */
import type { Node } from 'yaml';
import type { YamlSource } from './yaml-source.js';
import { matchesAny } from './glob.js';

export interface KeySelection {
  include: string[];
  exclude: string[];
}

export function readKeySelection(src: YamlSource, keysNode: Node | undefined): KeySelection {
  const keys: KeySelection = { include: ['*'], exclude: [] };
  if (keysNode === undefined) return keys;
  const k = src.map(keysNode, 'keys', ['include', 'exclude']);
  const list = (n: Node | undefined, what: string) =>
    src.seq(n, what).map((item) => src.string(item, `a ${what} pattern`));
  if (k.has('include')) keys.include = list(k.get('include'), 'keys.include');
  if (k.has('exclude')) keys.exclude = list(k.get('exclude'), 'keys.exclude');
  if (keys.include.length === 0)
    throw src.fail(src.lineOf(k.get('include')), 'keys.include selects nothing');
  return keys;
}

export function isSelected(label: string, selection: KeySelection): boolean {
  return matchesAny(label, selection.include) && !matchesAny(label, selection.exclude);
}
