/**
 * Parses YAML text into plain values while keeping the line of every node, for line-numbered
 * errors. The text is measured before the YAML engine builds anything: its size, how many entries
 * it has and how deep it nests are capped, so no file can exhaust the stack, take quadratic time or
 * hold the engine for long.
 */
import {
  Composer,
  CST,
  Lexer,
  LineCounter,
  Parser,
  isMap,
  isSeq,
  isScalar,
  type Document,
  type Node,
} from 'yaml';
import { CustosError, type ErrorCode } from './errors.js';

/** A policy of 255 custodians with every optional field is about 100 KiB. */
export const MAX_YAML_BYTES = 1024 * 1024;
/** Mapping entries, list items and flow entries, all told. */
export const MAX_YAML_ENTRIES = 20_000;
/** Nesting of mappings and lists; a custos file needs about 5. */
export const MAX_YAML_DEPTH = 32;

/**
 * Why the text is too large or nests too deep for a custos YAML file, with the line, or null.
 * One pass over the engine's lexer (linear, builds nothing): flow brackets give their depth
 * exactly; indicators on one line (`- - - x`) bound the compact nesting a line can add; the
 * entry count bounds the work that follows. The exact depth is measured on the syntax tree next.
 */
function measure(text: string): { line: number; problem: string } | null {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_YAML_BYTES)
    return {
      line: 1,
      problem: `is ${bytes} bytes, more than a custos YAML file can be (${MAX_YAML_BYTES})`,
    };
  let line = 1;
  let flow = 0;
  let onLine = 0;
  let entries = 0;
  let afterScalarMark = false;
  for (const token of new Lexer().lex(text)) {
    if (afterScalarMark) {
      afterScalarMark = false;
      line += countNewlines(token);
      continue;
    }
    const type = CST.tokenType(token);
    switch (type) {
      case 'scalar':
        afterScalarMark = true;
        break;
      case 'newline':
        line++;
        onLine = 0;
        break;
      case 'flow-map-end':
      case 'flow-seq-end':
        flow = Math.max(0, flow - 1);
        break;
      case 'flow-map-start':
      case 'flow-seq-start':
      case 'seq-item-ind':
      case 'explicit-key-ind':
      case 'map-value-ind':
        // A bracket opens a flow level; an indicator adds a compact level to this line.
        if ((type.startsWith('flow') ? ++flow : ++onLine) > MAX_YAML_DEPTH)
          return { line, problem: `nests deeper than ${MAX_YAML_DEPTH} levels` };
        entries++;
        break;
      case 'comma':
        entries++;
        break;
      default:
        line += countNewlines(token);
    }
    if (entries > MAX_YAML_ENTRIES)
      return {
        line,
        problem: `has more than ${MAX_YAML_ENTRIES} entries, more than a custos YAML file can have`,
      };
  }
  return null;
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * The deepest nesting of collections in a syntax tree, walked without recursion; the offset where
 * it is too deep, if it is.
 */
function tooDeep(root: CST.Token | undefined): number | null {
  const stack: { token: CST.Token; depth: number }[] = root ? [{ token: root, depth: 0 }] : [];
  while (stack.length > 0) {
    const { token, depth } = stack.pop() as { token: CST.Token; depth: number };
    if (!('items' in token)) continue;
    if (depth + 1 > MAX_YAML_DEPTH) return token.offset;
    for (const item of token.items) {
      if ('key' in item && item.key) stack.push({ token: item.key, depth: depth + 1 });
      if ('value' in item && item.value) stack.push({ token: item.value, depth: depth + 1 });
    }
  }
  return null;
}

export class YamlSource {
  private readonly lines = new LineCounter();
  readonly root: Node | null;

  constructor(
    readonly name: string,
    text: string,
    private readonly code: ErrorCode,
    private readonly hint: string,
  ) {
    const measured = measure(text);
    if (measured) throw this.fail(measured.line, measured.problem);
    const tokens = [...new Parser(this.lines.addNewLine).parse(text)];
    const documents = tokens.filter((t) => t.type === 'document');
    for (const d of documents) {
      const deep = tooDeep(d.value);
      if (deep !== null)
        throw this.fail(
          this.lines.linePos(deep).line,
          `nests deeper than ${MAX_YAML_DEPTH} levels`,
        );
    }
    if (documents.length > 1)
      throw this.fail(
        this.lines.linePos(documents[1]?.offset ?? 0).line,
        'holds more than one YAML document (a line "---" starts another)',
      );
    // Duplicate keys are found by map() below, in linear time; the engine's own check is quadratic.
    const docs: Document.Parsed[] = [
      ...new Composer({ uniqueKeys: false }).compose(tokens, true, text.length),
    ];
    const doc = docs[0] as Document.Parsed;
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

  /**
   * The map at `node`, with each key checked against `allowed` so a typo is reported, not ignored.
   */
  map(node: Node | null | undefined, what: string, allowed: readonly string[]): Map<string, Node> {
    if (!isMap(node)) throw this.fail(this.lineOf(node), `${what} must be a mapping`);
    const out = new Map<string, Node>();
    const seen = new Set<string>();
    const known = new Set(allowed);
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!known.has(key)) {
        throw this.fail(
          this.lineOf(pair.key as Node),
          `unknown field "${key}" in ${what} (allowed: ${allowed.join(', ')})`,
        );
      }
      if (seen.has(key))
        throw this.fail(this.lineOf(pair.key as Node), `"${key}" appears twice in ${what}`);
      seen.add(key);
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

  string(
    node: Node | null | undefined,
    what: string,
    pattern?: RegExp,
    patternText?: string,
  ): string {
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
      throw this.fail(
        this.lineOf(node),
        `${what} must be between ${min} and ${max}, not ${node.value}`,
      );
    }
    return node.value;
  }

  required(
    fields: Map<string, Node>,
    key: string,
    parent: Node | null | undefined,
    what: string,
  ): Node {
    const node = fields.get(key);
    if (node === undefined || node === null)
      throw this.fail(this.lineOf(parent), `${what} is missing "${key}"`);
    return node;
  }
}
