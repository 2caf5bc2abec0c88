/** Parses YAML text into plain values while keeping the line of every node, for line-numbered errors. */
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node } from 'yaml';
import { CustosError, type ErrorCode } from './errors.js';

export class YamlSource {
  private readonly lines = new LineCounter();
  readonly root: Node | null;

  constructor(
    readonly name: string,
    text: string,
    private readonly code: ErrorCode,
    private readonly hint: string,
  ) {
    const doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    const first = doc.errors[0];
    if (first) {
      const line = this.lines.linePos(first.pos[0]).line;
      throw this.fail(line, `not valid YAML: ${first.message.split('\n')[0]}`);
    }
    this.root = (doc.contents as Node | null) ?? null;
  }

  lineOf(node: Node | null | undefined): number {
    const start = node?.range?.[0];
    return start === undefined ? 1 : this.lines.linePos(start).line;
  }

  fail(line: number, message: string): CustosError {
    return new CustosError(this.code, `${this.name}:${line}: ${message}`, this.hint);
  }

  /** The map at `node`, with each key checked against `allowed` so a typo is reported, not ignored. */
  map(node: Node | null | undefined, what: string, allowed: readonly string[]): Map<string, Node> {
    if (!isMap(node)) throw this.fail(this.lineOf(node), `${what} must be a mapping`);
    const out = new Map<string, Node>();
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!allowed.includes(key)) {
        throw this.fail(this.lineOf(pair.key as Node), `unknown field "${key}" in ${what} (allowed: ${allowed.join(', ')})`);
      }
      // An empty value (`keys:` with nothing after it) counts as absent, so defaults apply.
      const value = pair.value as Node | null;
      if (value !== null && !(isScalar(value) && value.value === null)) out.set(key, value);
    }
    return out;
  }

  seq(node: Node | null | undefined, what: string): Node[] {
    if (!isSeq(node)) throw this.fail(this.lineOf(node), `${what} must be a list`);
    return node.items as Node[];
  }

  string(node: Node | null | undefined, what: string, pattern?: RegExp, patternText?: string): string {
    if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') {
      throw this.fail(this.lineOf(node), `${what} must be a non-empty string`);
    }
    if (pattern && !pattern.test(node.value)) {
      throw this.fail(this.lineOf(node), `${what} ${patternText ?? 'has an invalid format'}`);
    }
    return node.value;
  }

  integer(node: Node | null | undefined, what: string, min: number, max: number): number {
    if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value)) {
      throw this.fail(this.lineOf(node), `${what} must be a whole number`);
    }
    if (node.value < min || node.value > max) {
      throw this.fail(this.lineOf(node), `${what} must be between ${min} and ${max}, not ${node.value}`);
    }
    return node.value;
  }

  required(fields: Map<string, Node>, key: string, parent: Node | null | undefined, what: string): Node {
    const node = fields.get(key);
    if (node === undefined || node === null) throw this.fail(this.lineOf(parent), `${what} is missing "${key}"`);
    return node;
  }
}
