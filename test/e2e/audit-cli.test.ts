/**
 * `custos audit verify` and `custos audit show`, run through the real launcher on a log written
 * with appendAudit. The head hash is recomputed here with node:crypto; tampered copies are made
 * by editing the file's lines directly.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeEntry } from '../../src/core/audit/entry.js';
import { freshSigner } from '../../src/crypto/ed25519.js';
import { appendAudit } from '../../src/io/audit-log.js';
import {
  TIMEOUT,
  cleanup,
  custos,
  describeRun,
  expectOk,
  expectUserError,
  workspace,
  type Workspace,
} from './helpers.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

const sha256 = (data: string) =>
  createHash('sha256').update(Buffer.from(data, 'utf8')).digest('hex');
const NONCE_A = 'aaaa1111'.repeat(4);
const NONCE_B = 'bbbb2222'.repeat(4);

let ws: Workspace;
let log: string;
let lines: string[];

/**
 * Writes a copy of the log with its lines changed, and returns its name (relative to the
 * workspace).
 */
function tampered(name: string, change: (ls: string[]) => string[]): string {
  writeFileSync(
    join(ws.dir, name),
    change([...lines])
      .map((l) => `${l}\n`)
      .join(''),
  );
  return name;
}

/** The data rows of a cli-table3 table: the cells of each line whose first cell is a number. */
function tableRows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .map((l) =>
      l
        .split('│')
        .slice(1, -1)
        .map((c) => c.trim()),
    )
    .filter((cells) => /^\d+$/.test(cells[0] ?? ''));
}

beforeAll(() => {
  ws = workspace('audit');
  log = join(ws.dir, 'audit.jsonl');
  const a = freshSigner();
  const b = freshSigner();
  const digest = sha256('bundle');
  appendAudit(log, { op: 'hsm-init', actor: 'alice', outcome: 'ok', detail: { token: 'primary' } });
  appendAudit(log, {
    op: 'backup',
    actor: 'alice',
    outcome: 'ok',
    bundle: 'c0ffee00'.repeat(4),
    artifacts: { bundle: digest },
  });
  appendAudit(
    log,
    {
      op: 'ceremony-open',
      actor: 'bob',
      outcome: 'ok',
      ceremony: NONCE_A,
      detail: { signingKey: a.publicKey.toString('base64'), purpose: 'drill' },
    },
    a,
  );
  appendAudit(
    log,
    {
      op: 'ceremony-submit',
      actor: 'hale-llp',
      outcome: 'ok',
      ceremony: NONCE_A,
      detail: { custodian: 'hale-llp' },
    },
    a,
  );
  appendAudit(
    log,
    {
      op: 'ceremony-submit',
      actor: 'ross-llp',
      outcome: 'refused',
      code: 'E_SUBMISSION_REJECTED',
      ceremony: NONCE_A,
    },
    a,
  );
  appendAudit(log, {
    op: 'inventory',
    actor: 'carol',
    outcome: 'ok',
    detail: { keys: 5, labels: ['aes-key', 'rsa-key'] },
  });
  appendAudit(
    log,
    {
      op: 'ceremony-open',
      actor: 'bob',
      outcome: 'ok',
      ceremony: NONCE_B,
      detail: { signingKey: b.publicKey.toString('base64'), purpose: 'restore' },
    },
    b,
  );
  appendAudit(
    log,
    {
      op: 'ceremony-close',
      actor: 'bob',
      outcome: 'ok',
      ceremony: NONCE_A,
      detail: { restored: 4 },
    },
    a,
  );
  appendAudit(log, {
    op: 'restore',
    actor: 'dave',
    outcome: 'failed',
    code: 'E_HSM',
    detail: { note: 'x'.repeat(100) },
  });
  appendAudit(
    log,
    { op: 'ceremony-submit', actor: 'hale-llp', outcome: 'ok', ceremony: NONCE_B },
    b,
  );
  appendAudit(log, { op: 'inventory', actor: 'carol', outcome: 'ok' });
  appendAudit(log, { op: 'inventory', actor: 'carol', outcome: 'ok' });
  lines = readFileSync(log, 'utf8').split('\n').slice(0, -1);
  expect(lines).toHaveLength(12);
});

afterAll(() => cleanup(ws));

describe('audit verify', () => {
  it('passes an intact log and prints the SHA-256 of its last line as the head', () => {
    const r = expectOk(custos(ws, ['audit', 'verify', 'audit.jsonl']));
    const out = r.stdout.split('\n');
    expect(out[0]).toBe(
      'audit log audit.jsonl: 12 entries, chain intact, 6 signed entries verified',
    );
    expect(out[1]).toBe(`head: ${sha256(lines[11] as string)}`);
    expect(r.stderr).toBe('');
  });

  it('--json gives the counts, the head and no problems', () => {
    const r = expectOk(custos(ws, ['audit', 'verify', 'audit.jsonl', '--json']));
    expect(JSON.parse(r.stdout)).toEqual({
      entries: 12,
      signed: 6,
      unanchored: 0,
      head: sha256(lines[11] as string),
      problems: [],
    });
  });

  it('an empty log is intact, with the genesis value as its head', () => {
    writeFileSync(join(ws.dir, 'empty.jsonl'), '');
    const r = expectOk(custos(ws, ['audit', 'verify', 'empty.jsonl']));
    expect(r.stdout).toBe(
      `audit log empty.jsonl: 0 entries, chain intact, 0 signed entries verified\nhead: ${'0'.repeat(64)}\n`,
    );
  });

  const cases: [string, (ls: string[]) => string[], RegExp][] = [
    [
      'edited',
      (ls) => {
        ls[4 - 1] = (ls[4 - 1] as string).replace('"hale-llp","outcome"', '"mallory","outcome"');
        return ls;
      },
      /^custos: {3}line 4 \(entry 4\): edited — entry 4 was changed after it was written/m,
    ],
    [
      'edited-unsigned',
      (ls) => {
        ls[6 - 1] = (ls[6 - 1] as string).replace('"keys":5', '"keys":6');
        return ls;
      },
      /^custos: {3}line 6 \(entry 6\): edited — /m,
    ],
    [
      'deleted',
      (ls) => ls.filter((_, i) => i !== 5),
      /^custos: {3}line 6 \(entry 7\): deleted — entry 6 is missing after entry 5 \(line 5\)/m,
    ],
    [
      'inserted',
      (ls) => {
        const prev = JSON.parse(ls[2] as string).prev as string;
        const forged = makeEntry(
          { op: 'restore', actor: 'mallory', outcome: 'ok' },
          3,
          '2025-01-01T00:00:00.000Z',
          prev,
        ).line;
        return [...ls.slice(0, 3), forged, ...ls.slice(3)];
      },
      /^custos: {3}line 4 \(entry 3\): inserted — /m,
    ],
    [
      'reordered',
      (ls) => [ls[0] as string, ...ls.slice(2), ls[1] as string],
      /^custos: {3}line 12 \(entry 2\): reordered — entry 2 is out of order: it belongs after entry 1 \(line 1\)/m,
    ],
  ];
  it.each(cases)(
    'a log with an %s entry fails with E_AUDIT_TAMPERED, naming the line',
    (kind, change, detail) => {
      const name = tampered(`${kind}.jsonl`, change);
      const r = custos(ws, ['audit', 'verify', name]);
      expectUserError(
        r,
        4,
        /\[E_AUDIT_TAMPERED\]/,
        new RegExp(
          `^custos: error: audit log ${name.replace('.', '\\.')} fails verification: \\d+ problems?`,
          'm',
        ),
        detail,
        /^custos: hint: the log was changed after it was written; compare it with a copy kept elsewhere/m,
      );
    },
  );

  it('an edited signed entry fails its signature as well as the chain', () => {
    const name = tampered('signed.jsonl', (ls) => {
      ls[7] = (ls[7] as string).replace('"restored":4', '"restored":5');
      return ls;
    });
    const r = custos(ws, ['audit', 'verify', name]);
    expectUserError(
      r,
      4,
      /fails verification: 2 problems/,
      /^custos: {3}line 8 \(entry 8\): edited — /m,
      /^custos: {3}line 8 \(entry 8\): bad-signature — entry 8's signature does not verify/m,
    );
  });

  it('--json still prints the problems, then fails', () => {
    const name = tampered('json.jsonl', (ls) => ls.filter((_, i) => i !== 0));
    const r = custos(ws, ['audit', 'verify', name, '--json']);
    expect(r.status, describeRun(r)).toBe(4);
    const result = JSON.parse(r.stdout);
    expect(result.entries).toBe(11);
    expect(result.problems).toEqual([
      expect.objectContaining({ line: 1, seq: 2, kind: 'deleted' }),
    ]);
    expect(r.stderr).toMatch(/\[E_AUDIT_TAMPERED\]/);
  });

  it('a missing log is E_FILE', () => {
    expectUserError(
      custos(ws, ['audit', 'verify', 'nope.jsonl']),
      3,
      /audit log .*nope\.jsonl does not exist \[E_FILE\]/,
    );
  });
});

describe('audit show', () => {
  it('renders every entry as a table row', () => {
    const r = expectOk(custos(ws, ['audit', 'show', 'audit.jsonl']));
    expect(r.stdout).toMatch(/seq.*time.*op.*actor.*outcome.*ceremony.*bundle.*detail.*signed/);
    const rows = tableRows(r.stdout);
    expect(rows.map((c) => c[0])).toEqual(lines.map((_, i) => String(i + 1)));
    const entries = lines.map((l) => JSON.parse(l));
    rows.forEach((cells, i) => {
      const e = entries[i];
      expect(cells[1]).toBe(`${(e.time as string).slice(0, 19)}Z`);
      expect(cells[2]).toBe(e.op);
      expect(cells[3]).toBe(e.actor);
      expect(cells[5]).toBe(e.ceremony ? (e.ceremony as string).slice(0, 8) : '-');
      expect(cells[8]).toBe(e.sig ? 'yes' : '-');
    });
    expect(rows[4]?.[4]).toBe('refused (E_SUBMISSION_REJECTED)');
    expect(rows[1]?.[6]).toBe('c0ffee00');
    expect(rows[5]?.[7]).toBe('keys=5 labels=aes-key,rsa-key');
    expect((rows[8]?.[7] as string).length).toBeLessThanOrEqual(60);
    expect(r.stderr).toBe('');
  });

  it("--ceremony keeps only that ceremony's entries", () => {
    const rows = tableRows(
      expectOk(custos(ws, ['audit', 'show', 'audit.jsonl', '--ceremony', NONCE_A])).stdout,
    );
    expect(rows.map((c) => c[0])).toEqual(['3', '4', '5', '8']);
    const b = tableRows(
      expectOk(custos(ws, ['audit', 'show', 'audit.jsonl', '--ceremony', NONCE_B])).stdout,
    );
    expect(b.map((c) => c[0])).toEqual(['7', '10']);
  });

  it('--ceremony with no entries is a usage error', () => {
    expectUserError(
      custos(ws, ['audit', 'show', 'audit.jsonl', '--ceremony', 'f'.repeat(32)]),
      2,
      new RegExp(
        `no entry of the audit log audit\\.jsonl belongs to ceremony ${'f'.repeat(32)} \\[E_USAGE\\]`,
      ),
    );
    expectUserError(
      custos(ws, ['audit', 'show', 'audit.jsonl', '--ceremony', NONCE_A.slice(0, 8)]),
      2,
      new RegExp(`hint: give the whole nonce: ${NONCE_A}`),
    );
  });

  it('--json gives the entries as written', () => {
    const r = expectOk(
      custos(ws, ['audit', 'show', 'audit.jsonl', '--json', '--ceremony', NONCE_B]),
    );
    expect(JSON.parse(r.stdout)).toEqual([
      JSON.parse(lines[6] as string),
      JSON.parse(lines[9] as string),
    ]);
  });

  it('still renders a log that fails verification, with a warning', () => {
    const name = tampered('show-deleted.jsonl', (ls) => ls.filter((_, i) => i !== 5));
    const r = custos(ws, ['audit', 'show', name]);
    expect(r.status, describeRun(r)).toBe(0);
    expect(r.stderr).toBe(
      `custos: warning: the log fails verification (1 problem): run custos audit verify ${name}\n`,
    );
    expect(tableRows(r.stdout).map((c) => c[0])).toEqual([
      '1',
      '2',
      '3',
      '4',
      '5',
      '7',
      '8',
      '9',
      '10',
      '11',
      '12',
    ]);
  });
});
