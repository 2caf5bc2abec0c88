/**
 * A backup on disk for tests of the ops loaders and the CLI without an HSM: a bundle (the real
 * format, MAC and dealer signatures, as test/unit/fixtures.ts builds it) whose custodians are fresh
 * age identities made here, their identity files, and each custodian's share file, age-encrypted.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { BundleBody } from '../../src/core/bundle.js';
import { EMPTY_CONFIG } from '../../src/core/config.js';
import { freshSigner } from '../../src/crypto/ed25519.js';
import { encryptToRecipient, newIdentity } from '../../src/crypto/age.js';
import { Output } from '../../src/io/output.js';
import type { Context } from '../../src/ops/context.js';
import { makeBody, sealBody, type Backup } from './fixtures.js';

export { sealBody };

/** An Output that keeps what was written, as a terminal would receive it. */
export function capturingOutput(tty = false): {
  out: Output;
  stdout: () => string;
  stderr: () => string;
} {
  const sink = () => {
    let text = '';
    const w = {
      isTTY: tty,
      write: (s: string) => {
        text += s;
        return true;
      },
    } as unknown as Writable & { isTTY?: boolean };
    return { w, text: () => text };
  };
  const o = sink();
  const e = sink();
  return { out: new Output(o.w, e.w, {}), stdout: o.text, stderr: e.text };
}

export function testContext(dir: string, out = capturingOutput().out): Context {
  return {
    cwd: dir,
    env: {},
    config: EMPTY_CONFIG,
    out,
    auditLog: join(dir, '.custos', 'audit.jsonl'),
    actor: 'tester',
  };
}

export interface BackupOnDisk {
  dir: string;
  ctx: Context;
  backup: Backup;
  bundlePath: string;
  sharePaths: string[];
  identityPaths: string[];
  /** Each custodian's age identity (secret), in custodian order. */
  identities: string[];
}

export async function backupOnDisk(
  opts: { threshold?: number; total?: number; edit?: (body: BundleBody) => void } = {},
): Promise<BackupOnDisk> {
  const dir = mkdtempSync(join(tmpdir(), 'custos-unit-'));
  const total = opts.total ?? 3;
  const kek = randomBytes(32);
  const dealer = freshSigner();
  const body = makeBody(kek, dealer, { threshold: opts.threshold ?? 2, total: 2 });
  const people = await Promise.all(Array.from({ length: total }, () => newIdentity()));
  body.escrow = {
    ...body.escrow,
    total,
    custodians: people.map((p, i) => ({
      id: `c${i + 1}-llp`,
      name: `Custodian ${i + 1}`,
      recipient: p.recipient,
      index: i + 1,
    })),
  };
  opts.edit?.(body);
  const backup = sealBody(body, kek, dealer);
  const bundlePath = join(dir, 'b.bundle');
  writeFileSync(bundlePath, backup.file);
  const sharePaths: string[] = [];
  const identityPaths: string[] = [];
  for (const [i, c] of body.escrow.custodians.entries()) {
    const share = join(dir, `${c.id}.share`);
    writeFileSync(share, await encryptToRecipient(c.recipient, backup.shareTexts[i] as string), {
      mode: 0o600,
    });
    const key = join(dir, `${c.id}.key`);
    writeFileSync(key, `# test identity\n${people[i]?.secret}\n`, { mode: 0o600 });
    sharePaths.push(share);
    identityPaths.push(key);
  }
  return {
    dir,
    ctx: testContext(dir),
    backup,
    bundlePath,
    sharePaths,
    identityPaths,
    identities: people.map((p) => p.secret),
  };
}
