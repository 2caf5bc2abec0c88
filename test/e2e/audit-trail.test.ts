/**
 * The audit trail of ordinary operations: a backup, a refused restore and a restore each leave
 * one entry (outcome and error code included), chained so that `audit verify` passes; the entries
 * carry the digests of the files involved, computed here independently, and never a secret.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AUDIT_LOG,
  TIMEOUT,
  auditEntries,
  cleanup,
  combineKek,
  custos,
  expectNoSecrets,
  expectOk,
  expectUserError,
  openShare,
  quorumArgs,
  shareValue,
  type Custodian,
  type Workspace,
} from './helpers.js';
import { backupArgs, sourceAndTarget } from './scenarios.js';

vi.setConfig({ testTimeout: TIMEOUT, hookTimeout: TIMEOUT });

let ws: Workspace;
let custodians: Custodian[];
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

beforeAll(() => {
  ({ ws, custodians } = sourceAndTarget({
    workspace: 'audit-trail',
    source: { label: 'audit-source', profile: 'primary' },
    target: { label: 'audit-target', profile: 'dr' },
    custodians: ['alice', 'bob', 'carol'],
    threshold: 2,
  }));
});

afterAll(() => cleanup(ws));

/** A restore of p.bundle into the dr profile from these custodians' shares. */
const restoreDr = (quorum: Custodian[], globalOptions: string[] = []) =>
  custos(ws, [
    ...globalOptions,
    'restore',
    '--hsm',
    'dr',
    '--bundle',
    'p.bundle',
    ...quorumArgs('p.bundle', quorum),
  ]);

describe('every operation leaves one audit entry', () => {
  it('backup: an ok entry naming the bundle, with the digests of the bundle and of each share file', () => {
    expectOk(custos(ws, ['--actor', 'ops-alice', ...backupArgs('primary', 'p.bundle')]));
    const [entry] = auditEntries(ws);
    expect(entry).toMatchObject({ seq: 1, op: 'backup', actor: 'ops-alice', outcome: 'ok' });
    expect(entry?.artifacts.bundle).toBe(sha256(join(ws.dir, 'p.bundle')));
    for (const c of custodians)
      expect(entry?.artifacts[`share:${c.id}`], c.id).toBe(
        sha256(join(ws.dir, 'p.bundle.shares', `${c.id}.share`)),
      );
    expect(entry?.prev).toBe('0'.repeat(64));
  });

  it('a refused restore: a refused entry with its error code, chained to the one before', () => {
    const c = custodians[0] as Custodian;
    expectUserError(restoreDr([c]), 5, /E_QUORUM/);
    const entries = auditEntries(ws);
    expect(entries).toHaveLength(2);
    expect(entries[1]).toMatchObject({
      seq: 2,
      op: 'restore',
      outcome: 'refused',
      code: 'E_QUORUM',
    });
    const firstLine = readFileSync(join(ws.dir, AUDIT_LOG), 'utf8').split('\n')[0] as string;
    expect(entries[1]?.prev).toBe(createHash('sha256').update(firstLine).digest('hex'));
  });

  it('a restore with a quorum: an ok entry with the quorum and the counts, and audit verify passes over the three', () => {
    const [a, b] = custodians as [Custodian, Custodian];
    expectOk(restoreDr([a, b]));
    const entry = auditEntries(ws)[2];
    expect(entry).toMatchObject({
      seq: 3,
      op: 'restore',
      outcome: 'ok',
      detail: { quorum: [a.id, b.id], token: 'audit-target' },
    });
    const v = expectOk(custos(ws, ['audit', 'verify', AUDIT_LOG]));
    expect(v.stdout).toContain('3 entries, chain intact');
    const lastLine = readFileSync(join(ws.dir, AUDIT_LOG), 'utf8')
      .trimEnd()
      .split('\n')
      .pop() as string;
    expect(v.stdout).toContain(createHash('sha256').update(lastLine).digest('hex'));
  });

  it('--audit-log sends the entry to another log', () => {
    expectOk(restoreDr(custodians.slice(1, 3), ['--audit-log', 'elsewhere.jsonl']));
    expect(auditEntries(ws)).toHaveLength(3);
    const other = readFileSync(join(ws.dir, 'elsewhere.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(other).toMatchObject([{ seq: 1, op: 'restore', outcome: 'ok' }]);
  });

  it('the log holds no share value, KEK, identity or PIN', () => {
    const plaintexts = custodians.map((c) =>
      openShare(ws, join('p.bundle.shares', `${c.id}.share`), c.identity),
    );
    const kek = combineKek(ws, plaintexts.slice(0, 2)).toString('hex');
    const log = readFileSync(join(ws.dir, AUDIT_LOG), 'utf8');
    const secretValues = [
      ...ws.secrets,
      ...plaintexts.map(shareValue),
      kek,
      ...custodians.map((c) => c.secret),
    ];
    for (const s of secretValues)
      expect(log.includes(s), 'a secret is in the audit log').toBe(false);
    expectNoSecrets(ws, [kek]);
  });
});
