/**
 * Fitting screens to an 80-column terminal: widths, wrapping, and tables that shrink or turn into
 * lists.
 */
import { describe, expect, test } from 'vitest';
import {
  DEFAULT_WIDTH,
  displayWidth,
  fitLines,
  hangingLines,
  layoutTable,
  layoutWidth,
  wrapText,
} from '../../src/core/layout.js';
import { Output } from '../../src/io/output.js';
import { groupedDigest, describeCeremony } from '../../src/cli/ceremony-view.js';
import type { LoadedCeremony } from '../../src/ops/ceremony/host.js';
import { Writable } from 'node:stream';

const widest = (lines: readonly string[]) => Math.max(0, ...lines.map(displayWidth));

describe('displayWidth', () => {
  test('counts what a terminal shows: colour escapes none, combining marks none, wide characters two', () => {
    expect(displayWidth('abc')).toBe(3);
    expect(displayWidth('\u001b[32maccepted\u001b[39m')).toBe(8);
    expect(displayWidth('Lindqvist Advokatbyrå')).toBe(21);
    expect(displayWidth('e\u0301')).toBe(1);
    expect(displayWidth('東京')).toBe(4);
    expect(displayWidth('┌─┐ ✔ ✘ …')).toBe(9);
  });
});

describe('layoutWidth', () => {
  test("a terminal's own width; else COLUMNS; else 80; never below 40", () => {
    expect(layoutWidth(120, { COLUMNS: '200' })).toBe(120);
    expect(layoutWidth(undefined, { COLUMNS: '100' })).toBe(100);
    expect(layoutWidth(undefined, {})).toBe(DEFAULT_WIDTH);
    expect(layoutWidth(undefined, { COLUMNS: 'wide' })).toBe(80);
    expect(layoutWidth(undefined, { COLUMNS: '12' })).toBe(40);
  });
});

describe('wrapText and hangingLines', () => {
  test('breaks at blanks, never wider than asked, and keeps every word', () => {
    const text =
      'none of the identities given opens it (wrong identity file, or not an age share file)';
    const lines = wrapText(text, 30);
    expect(widest(lines)).toBeLessThanOrEqual(30);
    expect(lines.join(' ')).toBe(text);
    expect(lines.length).toBeGreaterThan(2);
  });

  test('a word wider than the line is cut, not lost; a text that fits is left as it is', () => {
    const digest = 'a'.repeat(64);
    const lines = wrapText(`sha256 ${digest}`, 40);
    expect(widest(lines)).toBeLessThanOrEqual(40);
    expect(lines.join('').replace(/ /g, '')).toBe(`sha256${digest}`);
    expect(wrapText('short', 80)).toEqual(['short']);
  });

  test('an indented text keeps its indent on every line', () => {
    const lines = wrapText(`    ${'word '.repeat(30).trim()}`, 40);
    expect(lines.every((l) => l.startsWith('    ') && !l.startsWith('     '))).toBe(true);
    expect(widest(lines)).toBeLessThanOrEqual(40);
  });

  test('hangingLines indents what follows under the text, not under the label', () => {
    const lines = hangingLines(
      'purpose:   ',
      'drill — a drill: restore into a scratch token, compare every key, destroy the scratch token',
      60,
    );
    expect(lines[0]).toMatch(/^purpose: {3}drill/);
    expect(lines.slice(1).every((l) => l.startsWith(' '.repeat(11)) && l[11] !== ' ')).toBe(true);
    expect(widest(lines)).toBeLessThanOrEqual(60);
  });

  test('fitLines wraps only the lines too wide, continuing them indented', () => {
    const out = fitLines(['ok', `next: ${'x '.repeat(50).trim()}`], 40, 6);
    expect(out[0]).toBe('ok');
    expect(widest(out)).toBeLessThanOrEqual(40);
    expect(out.slice(2).every((l) => l.startsWith('      '))).toBe(true);
  });
});

const INVENTORY_HEAD = [
  'label',
  'id',
  'class',
  'type',
  'bits',
  'extractable',
  'sensitive',
  'check value',
];
const inventoryRows = [
  ['api-hmac', '20', 'secret', 'GENERIC_SECRET', '256', 'yes', 'yes', 'HMAC 5ca95e'],
  ['payments-aes-01', '11', 'secret', 'AES', '256', 'yes', 'yes', 'KCV 799664'],
  ['signing-rsa', '30', 'private', 'RSA', '2048', 'yes', 'yes', 'pubkey-sha256 b4d103560daf8a8d'],
];

describe('layoutTable', () => {
  test('a table that fits is drawn as a box, every row on one line, as wide as its content', () => {
    const t = layoutTable(
      ['custodian', 'state'],
      [
        ['hale-llp', 'accepted'],
        ['ciso', 'waiting'],
      ],
      80,
    );
    expect(t.shape).toBe('box');
    expect(t.lines).toEqual([
      '┌───────────┬──────────┐',
      '│ custodian │ state    │',
      '├───────────┼──────────┤',
      '│ hale-llp  │ accepted │',
      '│ ciso      │ waiting  │',
      '└───────────┴──────────┘',
    ]);
  });

  test('too wide: its columns of words are wrapped, no line passes the width, no word is cut, and rows are ruled apart', () => {
    const rows = [
      ['hale-llp', 'Hale & Partners LLP', '1 of 5', 'primary.bundle.shares/hale-llp.share'],
      ['ciso', 'Chief Information Security Officer', '5 of 5', 'primary.bundle.shares/ciso.share'],
    ];
    const wide = layoutTable(['custodian', 'name', 'share', 'file'], rows, 200);
    expect(widest(wide.lines)).toBeGreaterThan(80);
    const t = layoutTable(['custodian', 'name', 'share', 'file'], rows, 80);
    expect(t.shape).toBe('wrapped');
    expect(widest(t.lines)).toBeLessThanOrEqual(80);
    const text = t.lines.join('\n');
    for (const word of [
      'primary.bundle.shares/hale-llp.share',
      'Information',
      'Security',
      'Partners',
    ])
      expect(text).toContain(word);
    // a rule between rows once a row takes more than one line
    expect(t.lines.filter((l) => l.startsWith('├')).length).toBe(2);
  });

  test('a cell that would be squeezed into more than three lines makes it a list instead', () => {
    const rows = [
      [
        'ciso',
        'Chief Information Security Officer of the Whole Banking Group',
        '5 of 5',
        'primary.bundle.shares/ciso.share',
      ],
    ];
    // it would fit as a box, the name wrapped onto five lines
    expect(layoutTable(['custodian', 'name', 'share', 'file'], rows, 200).shape).toBe('box');
    const t = layoutTable(['custodian', 'name', 'share', 'file'], rows, 80);
    expect(t.shape).toBe('list');
    expect(t.lines).toEqual([
      'ciso',
      '  name: Chief Information Security Officer of the Whole Banking Group',
      '  share: 5 of 5   file: primary.bundle.shares/ciso.share',
    ]);
  });

  test('still too wide: each row becomes a block, its first cell alone, then "heading: value" pairs', () => {
    const t = layoutTable(INVENTORY_HEAD, inventoryRows, 80);
    expect(t.shape).toBe('list');
    expect(widest(t.lines)).toBeLessThanOrEqual(80);
    expect(t.lines[0]).toBe('api-hmac');
    expect(t.lines[1]).toMatch(/^ {2}id: 20 {3}class: secret {3}type: GENERIC_SECRET/);
    const block = t.lines.slice(t.lines.indexOf('signing-rsa')).join('\n');
    expect(block).toContain('check value: pubkey-sha256 b4d103560daf8a8d');
    // every cell is still there
    for (const row of inventoryRows)
      for (const cell of row) expect(t.lines.join('\n')).toContain(cell);
  });

  test('at every width from 40 to 200, no line is wider than the width', () => {
    const head = ['seq', 'time', 'op', 'actor', 'outcome', 'detail'];
    const rows = [
      [
        '10',
        '2026-12-02T09:48:32Z',
        'ceremony-open',
        'j.smith',
        'ok',
        `custodians=${'hale-llp,'.repeat(12)}x expires=2026-12-05T09:48:32Z`,
      ],
    ];
    for (let w = 40; w <= 200; w += 7) {
      for (const [h, r] of [
        [INVENTORY_HEAD, inventoryRows],
        [head, rows],
      ] as const) {
        const t = layoutTable(h, r, w);
        expect(widest(t.lines), `${h[0]} at ${w}: ${t.shape}`).toBeLessThanOrEqual(w);
      }
    }
  });
});

/** An Output writing into strings, as if to a terminal of `columns`, or to a pipe. */
function capture(columns?: number, env: NodeJS.ProcessEnv = { NO_COLOR: '1' }) {
  const text = { out: '', err: '' };
  const sink = (key: 'out' | 'err') =>
    Object.assign(
      new Writable({
        write(chunk, _e, done) {
          text[key] += String(chunk);
          done();
        },
      }),
      columns ? { isTTY: true, columns } : {},
    );
  return { out: new Output(sink('out'), sink('err'), env), text };
}

describe('Output', () => {
  test("its width is the terminal's, else COLUMNS, else 80", () => {
    expect(capture(100).out.width).toBe(100);
    expect(capture(undefined, { COLUMNS: '132' }).out.width).toBe(132);
    expect(capture().out.width).toBe(80);
  });

  test('table() fits the width, and still escapes what it prints', () => {
    const { out, text } = capture();
    out.table(INVENTORY_HEAD, [
      ...inventoryRows,
      ['evil\u001b[2Jlabel', '1', 'secret', 'AES', '256', 'yes', 'yes', 'KCV 000000'],
    ]);
    expect(widest(text.out.split('\n'))).toBeLessThanOrEqual(80);
    expect(text.out).toContain('evil\\x1b[2Jlabel');
    expect(text.out).not.toContain('\u001b');
  });

  test('errors, hints and notes wrap under their prefix, each line starting custos:', () => {
    const { out, text } = capture(60);
    out.error(
      Object.assign(new Error('x'), {
        code: 'E_PIN_INCORRECT',
        message: 'the PIN was not accepted (log in to token "dr-site") and this message is long',
        hint: 'the PIN typed was wrong: find the right PIN before trying again (each wrong PIN counts towards locking the token)',
        details: ['a detail line that is long enough to need wrapping at sixty columns, surely'],
      }) as never,
    );
    const lines = text.err.trimEnd().split('\n');
    expect(widest(lines)).toBeLessThanOrEqual(60);
    expect(lines.every((l) => l.startsWith('custos:'))).toBe(true);
    expect(lines[0]).toMatch(/^custos: error: the PIN/);
    expect(lines.find((l) => l.startsWith('custos: hint: '))).toBeDefined();
    expect(text.err).toContain('[E_PIN_INCORRECT]');
  });
});

test('Output: to a log or a pipe, each diagnostic stays on one line, however long', () => {
  const { out, text } = capture();
  const long = `the PIN was not accepted ${'and this goes on '.repeat(10)}`;
  out.warn(long);
  expect(text.err).toBe(`custos: warning: ${long}\n`);
});

describe('the ceremony digest', () => {
  const digest = '8469d037ce1a522ecdb5f205dc8607c4efe6a8e486ad200c0dd6aa03c13a3215';

  test('is read out in sixteen groups of four, one line of 79 columns', () => {
    const g = groupedDigest(digest);
    expect(g).toBe(
      '8469 d037 ce1a 522e cdb5 f205 dc86 07c4 efe6 a8e4 86ad 200c 0dd6 aa03 c13a 3215',
    );
    expect(g.length).toBe(79);
  });

  test('describeCeremony keeps every line within 80 columns, and ends with the digest alone on its line', () => {
    const c = {
      path: 'dr.ceremony',
      file: Buffer.alloc(0),
      digest,
      body: {
        nonce: 'b81411729c0f5e03d2856ddf1d491dde',
        purpose: 'drill',
        created: '2026-12-02T09:48:32.251Z',
        expires: '2126-12-05T09:48:32.251Z',
        openedBy: 'j.smith',
        threshold: 3,
        total: 5,
        custodians: [],
        dealer: '',
        recipient: '',
        signingKey: '',
        subject: {
          kind: 'bundle',
          file: 'primary.bundle',
          bundleId: '0e029a1530776e9a18544624fd40029c',
          bundleDigest: 'f'.repeat(64),
          source: { label: 'primary', serial: '4cb774a39765c413' },
          keys: Array.from({ length: 13 }, (_, i) => ({
            class: 'secret',
            keyType: 'AES',
            label: `payments-aes-${String(i).padStart(2, '0')}`,
            id: String(i),
          })),
        },
      },
    } as unknown as LoadedCeremony;
    const lines = describeCeremony(c, 80, new Date('2026-12-02T09:48:33Z'));
    expect(widest(lines)).toBeLessThanOrEqual(80);
    expect(lines.at(-1)).toBe(groupedDigest(digest));
    expect(lines).toContain('quorum:    3 of the 5 custodians must give their share');
    expect(lines.join('\n')).not.toMatch(/sha256 [0-9a-f]{64}/);
  });
});
