/**
 * Mutations of good files, as fast-check arbitraries: bit flips, byte edits, truncation, splices
 * from another seed, duplicated and swapped lines, deep nesting, huge numbers, odd Unicode and
 * invalid UTF-8, and, for files with a JSON body or JSON lines, a JSON value replaced by a value of
 * another type, re-serialised so the file still reaches the field checks behind the envelope.
 */
import fc from 'fast-check';

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'token'; at: number; token: string; replace: number }
  | { kind: 'nest'; at: number; depth: number; open: string }
  | { kind: 'splice'; at: number; donor: number; from: number; length: number }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'lines'; a: number; b: number; op: 'swap' | 'repeat' | 'drop' | 'crlf' }
  | { kind: 'json'; pick: number; value: unknown; asKey: boolean };

/**
 * Text that parsers treat specially: structure, numbers at the edges, bidi and separator marks,
 * encodings.
 */
export const TOKENS: readonly string[] = [
  '\u202e',
  '\u2028',
  '\u2029',
  '\u2066',
  '\u200f',
  '\ufeff',
  '\u0000',
  '\u001b[2J',
  '\u0085',
  '\r\n',
  '\r',
  '\t',
  ' ',
  '\n',
  '"',
  '\\',
  '\\u0000',
  '\\ud800',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  ': ',
  '---',
  '--- ',
  '\n--- ',
  '\n--- hmac-sha256 ',
  '\n--- ed25519 ',
  '\n--- approval {}',
  '...',
  'null',
  'true',
  'false',
  '-0',
  '0',
  '-1',
  '1e999',
  '1e-400',
  '1.5',
  '2.0',
  '0x10',
  '9007199254740993',
  '9'.repeat(400),
  '-'.repeat(3),
  '😀',
  'é',
  'ǅ',
  '𝔘',
  'Ω',
  '\u0301',
  '&a ',
  '*a',
  '!!binary ',
  '!!str ',
  '%YAML 1.1\n',
  '? ',
  '- ',
  '|\n',
  '>-\n',
  '#',
  "'",
  '=',
  '==',
  '+/',
  'AGE-SECRET-KEY-1',
  '-----BEGIN AGE ENCRYPTED FILE-----\n',
  '-----END AGE ENCRYPTED FILE-----\n',
  'age-encryption.org/v1\n',
  '-> X25519 ',
  '-> scrypt AAAAAAAAAAAAAAAAAAAAAA 22\n',
  '__proto__',
  'constructor',
  'toString',
  '2026-13-45T99:99:99Z',
  '0000-00-00T00:00:00.000Z',
  '+275760-09-13T00:00:00.000Z',
  'T',
  'Z',
  'custos-bundle/2\n',
  'custos-share/1\n',
  'custos-domain-share/1\n',
];

/**
 * Invalid or unusual UTF-8: a lone 0xff, an overlong '/', an encoded surrogate, a cut-off sequence,
 * code points above U+10FFFF.
 */
const RAW_BYTES: readonly number[][] = [
  [0xff],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xe2, 0x82],
  [0xf4, 0x90, 0x80, 0x80],
  [0x80],
  [0xfe, 0xff],
];

/** JSON values of every type and at the edges, to put where a field was. */
export const jsonValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    false,
    0,
    -0,
    -1,
    1.5,
    2 ** 53 + 2,
    1e308,
    -1e308,
    256,
    255,
    1048577,
    '',
    ' ',
    'x',
    'é\u202e\u2028',
    '0'.repeat(64),
    'f'.repeat(32),
    'not a time',
    '2026-02-30T25:61:00Z',
    '1970-01-01T00:00:00.000Z',
    '+275760-09-13T00:00:00.000Z',
    '-271821-04-20T00:00:00.000Z',
    'AES-256',
    'Ed25519',
    'shamir-gf256',
    'secret',
    'private',
    'public',
    'RSA',
    'EC',
    '06082a8648ce3d030107',
    '0441' + '04'.repeat(65),
    '30',
    'AAAA',
    '====',
    'A'.repeat(86) + '==',
    [],
    {},
    [[]],
    { a: {} },
    ['x'],
    [1, 2],
    'x'.repeat(70_000),
  ),
  fc.json({ depthSize: 'small' }).map((s) => JSON.parse(s) as unknown),
  fc
    .record({ depth: fc.integer({ min: 33, max: 20_000 }), open: fc.constantFrom('[', '{"a":') })
    .map(({ depth, open }) => ({
      rawJson: `${open.repeat(depth)}${open === '[' ? '1' : '1'}${(open === '[' ? ']' : '}').repeat(depth)}`,
    })),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.double(),
);

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('flip' as const),
      at: fc.nat(),
      bit: fc.integer({ min: 0, max: 7 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      at: fc.nat(),
      value: fc.integer({ min: 0, max: 255 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('delete' as const),
      at: fc.nat(),
      length: fc.integer({ min: 1, max: 80 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 12 }),
        fc.constantFrom(...RAW_BYTES).map((b) => Uint8Array.from(b)),
      ),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('token' as const),
      at: fc.nat(),
      token: fc.constantFrom(...TOKENS),
      replace: fc.integer({ min: 0, max: 8 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('nest' as const),
      at: fc.nat(),
      depth: fc.integer({ min: 30, max: 20_000 }),
      open: fc.constantFrom('[', '{"a":', '- ', '[{"b":', 'a:\n ', '{'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('splice' as const),
      at: fc.nat(),
      donor: fc.nat(),
      from: fc.nat(),
      length: fc.integer({ min: 1, max: 400 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('duplicate' as const),
      at: fc.nat(),
      length: fc.integer({ min: 1, max: 200 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('lines' as const),
      a: fc.nat(),
      b: fc.nat(),
      op: fc.constantFrom('swap' as const, 'repeat' as const, 'drop' as const, 'crlf' as const),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('json' as const),
      pick: fc.nat(),
      value: jsonValue,
      asKey: fc.boolean(),
    }),
  },
);

/**
 * How a target's JSON is laid out, for the json mutation: an envelope body, JSON lines, or none.
 */
export type JsonLayout = 'envelope' | 'lines' | 'none';

export interface Mutant {
  seed: number;
  mutations: Mutation[];
}

export function mutant(seedCount: number, maxMutations = 3): fc.Arbitrary<Mutant> {
  return fc.record({
    seed: fc.integer({ min: 0, max: Math.max(0, seedCount - 1) }),
    mutations: fc.array(mutation, { minLength: 1, maxLength: maxMutations }),
  });
}

const enc = (s: string) => Buffer.from(s, 'utf8');

export function apply(seeds: readonly Buffer[], m: Mutant, layout: JsonLayout): Buffer {
  let b: Buffer = Buffer.from(seeds[m.seed] as Buffer);
  for (const x of m.mutations) b = applyOne(b, x, seeds, layout);
  return b;
}

function applyOne(b: Buffer, m: Mutation, seeds: readonly Buffer[], layout: JsonLayout): Buffer {
  const at = (n: number) => (b.length === 0 ? 0 : n % (b.length + 1));
  switch (m.kind) {
    case 'flip': {
      if (b.length === 0) return b;
      const c = Buffer.from(b);
      const i = m.at % c.length;
      c[i] = (c[i] as number) ^ (1 << m.bit);
      return c;
    }
    case 'set': {
      if (b.length === 0) return b;
      const c = Buffer.from(b);
      c[m.at % c.length] = m.value;
      return c;
    }
    case 'truncate':
      return b.subarray(0, at(m.at));
    case 'delete': {
      const i = at(m.at);
      return Buffer.concat([b.subarray(0, i), b.subarray(i + m.length)]);
    }
    case 'insert': {
      const i = at(m.at);
      return Buffer.concat([b.subarray(0, i), Buffer.from(m.bytes), b.subarray(i)]);
    }
    case 'token': {
      const i = at(m.at);
      return Buffer.concat([b.subarray(0, i), enc(m.token), b.subarray(i + m.replace)]);
    }
    case 'nest': {
      const i = at(m.at);
      return Buffer.concat([b.subarray(0, i), enc(m.open.repeat(m.depth)), b.subarray(i)]);
    }
    case 'splice': {
      const donor = seeds[m.donor % seeds.length] as Buffer;
      const from = donor.length === 0 ? 0 : m.from % donor.length;
      const i = at(m.at);
      return Buffer.concat([
        b.subarray(0, i),
        donor.subarray(from, from + m.length),
        b.subarray(i),
      ]);
    }
    case 'duplicate': {
      const i = at(m.at);
      return Buffer.concat([b.subarray(0, i + m.length), b.subarray(i)]);
    }
    case 'lines': {
      const lines = b.toString('latin1').split('\n');
      const a = m.a % lines.length;
      const c = m.b % lines.length;
      if (m.op === 'swap') [lines[a], lines[c]] = [lines[c] as string, lines[a] as string];
      else if (m.op === 'repeat') lines.splice(a, 0, lines[a] as string);
      else if (m.op === 'drop') lines.splice(a, 1);
      else lines[a] = `${lines[a]}\r`;
      return Buffer.from(lines.join('\n'), 'latin1');
    }
    case 'json':
      return layout === 'none' ? b : mutateJson(b, m, layout);
  }
}

/** Every place in a JSON value, as a path of keys and indexes (breadth-first, capped). */
function paths(root: unknown): (string | number)[][] {
  const out: (string | number)[][] = [[]];
  const queue: { v: unknown; p: (string | number)[] }[] = [{ v: root, p: [] }];
  while (queue.length > 0 && out.length < 5000) {
    const { v, p } = queue.shift() as { v: unknown; p: (string | number)[] };
    if (Array.isArray(v))
      v.forEach((x, i) => {
        out.push([...p, i]);
        queue.push({ v: x, p: [...p, i] });
      });
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        out.push([...p, k]);
        queue.push({ v: x, p: [...p, k] });
      }
  }
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown, asKey: boolean): unknown {
  if (path.length === 0) return value;
  let parent = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (asKey && !Array.isArray(parent)) {
    // Rename the member: a key of another spelling, or one the format does not know.
    const key = typeof value === 'string' ? value : JSON.stringify(value).slice(0, 20);
    const v = parent[last];
    delete parent[last];
    parent[key] = v;
  } else {
    parent[last] = value;
  }
  return root;
}

/** JSON.stringify recurses: a body an earlier mutation nested deeply is left as it is. */
function tooDeep(text: string): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > 200) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * A value given as JSON text (deep nesting), kept as text so no tool recurses into it before the
 * reader does.
 */
const RAW = '\u0000raw-json\u0000';
function valueOf(v: unknown): unknown {
  return v && typeof v === 'object' && 'rawJson' in v ? RAW : structuredClone(v);
}
function stringify(v: unknown, m: Extract<Mutation, { kind: 'json' }>, indent?: number): string {
  const text = JSON.stringify(v, null, indent);
  const raw =
    m.value && typeof m.value === 'object' && 'rawJson' in m.value
      ? (m.value as { rawJson: string }).rawJson
      : null;
  return raw === null ? text : text.replace(JSON.stringify(RAW), raw);
}

function mutateJson(b: Buffer, m: Extract<Mutation, { kind: 'json' }>, layout: JsonLayout): Buffer {
  const text = b.toString('utf8');
  if (layout === 'envelope') {
    const nl = text.indexOf('\n');
    const end = text.indexOf('\n--- ', nl);
    const bodyEnd = end < 0 ? text.length : end + 1;
    let body: unknown;
    if (tooDeep(text.slice(nl + 1, bodyEnd))) return b;
    try {
      body = JSON.parse(text.slice(nl + 1, bodyEnd));
    } catch {
      return b;
    }
    const all = paths(body);
    const changed = setAt(
      body,
      all[m.pick % all.length] as (string | number)[],
      valueOf(m.value),
      m.asKey,
    );
    return enc(`${text.slice(0, nl + 1)}${stringify(changed, m, 1)}\n${text.slice(bodyEnd)}`);
  }
  const lines = text.split('\n');
  const candidates = lines.flatMap((l, i) => (l.startsWith('{') ? [i] : []));
  if (candidates.length === 0) return b;
  const i = candidates[m.pick % candidates.length] as number;
  let v: unknown;
  if (tooDeep(lines[i] as string)) return b;
  try {
    v = JSON.parse(lines[i] as string);
  } catch {
    return b;
  }
  const all = paths(v);
  lines[i] = stringify(
    setAt(
      v,
      all[Math.floor(m.pick / candidates.length) % all.length] as (string | number)[],
      valueOf(m.value),
      m.asKey,
    ),
    m,
  );
  return enc(lines.join('\n'));
}
