/**
 * Restore from a bundle into a token: authenticate a quorum of shares, reassemble the KEK, plan
 * against what the token already holds, then unwrap every missing key and prove each one. On any
 * failure every object this run created is destroyed, so the token is left as it was.
 */
import { CustosError } from '../core/errors.js';
import { describeKey, type CertificateRecord, type KeyRecord } from '../core/keys.js';
import { spkiCheckValue, spkiOf } from '../crypto/check-values.js';
import type { Handle } from '../hsm/module.js';
import type { KeyObject, Token, TokenContents } from '../hsm/token.js';
import { PRIVATE_USAGE_FLAGS, SECRET_USAGE_FLAGS } from '../core/keys.js';
import { proveRestored, type Proof, type Proved } from './check-values.js';
import { openHsm } from './hsm.js';
import { assembleKek, judgeShares, loadBundle, loadIdentities, openShares, rejectionLines, requireQuorum } from './shares.js';
import type { Context } from './context.js';

export interface RestoreRequest {
  bundlePath: string;
  hsm: string;
  shares: string[];
  identities: string[];
}

export interface RestoredKey {
  record: KeyRecord;
  status: 'restored' | 'present';
  proof: Proof;
  checkValue: string;
}

export interface RestoreResult {
  bundleId: string;
  token: string;
  custodians: string[];
  rejected: string[];
  keys: RestoredKey[];
  publicObjects: number;
  certificates: number;
}

interface Step {
  record: KeyRecord;
  /** The key is already on the token and proved to be this one. */
  present?: { key: KeyObject; proved: Proved };
  createPublicKey: boolean;
  certificatesToCreate: CertificateRecord[];
}

/**
 * What counts as "already restored". A 3-byte check value is public (it is in the bundle) and
 * can be matched by a planted key in seconds, so a present secret key must re-wrap to the
 * recorded blob, and a present private key must sign for the recorded public key (or, for RSA,
 * carry the recorded modulus); and its attributes must be the recorded ones.
 */
function provedPresent(key: KeyObject, record: KeyRecord, proved: Proved): boolean {
  if (!proved.ok) return false;
  const strong = record.class === 'secret'
    ? proved.proof === 'rewrap' || proved.proof === 'check value + rewrap'
    : proved.proof === 'signature' || proved.proof === 'check value + signature' || (record.keyType === 'RSA' && proved.proof === 'check value');
  const flags = record.class === 'secret' ? SECRET_USAGE_FLAGS : PRIVATE_USAGE_FLAGS;
  const sameAttributes = key.sensitive && key.extractable === record.extractable && flags.every((f) => !!key.usage[f] === !!record.usage[f]);
  return strong && sameAttributes;
}

/**
 * Matches the bundle against the token by class, label and id (how applications find keys): a key,
 * public key or certificate already there is either proved to be the recorded one or a conflict,
 * and any conflict stops the restore before a single write, naming every clash.
 */
function plan(token: Token, kek: Handle, records: readonly KeyRecord[], contents: TokenContents): Step[] {
  const conflicts: string[] = [];
  const steps = records.map((record): Step => {
    const step: Step = { record, createPublicKey: false, certificatesToCreate: [] };
    const same = contents.keys.filter((k) => k.class === record.class && k.label === record.label && k.id === record.id);
    for (const key of same) {
      const proved = key.keyType === record.keyType ? proveRestored(token, key, record, kek) : null;
      if (proved && provedPresent(key, record, proved)) step.present = { key, proved };
    }
    if (same.length > 0 && !step.present) {
      conflicts.push(`${describeKey(record)}: the token already has a ${record.class} key with this label and id, and custos cannot show it is the same key with the same attributes`);
    }
    const pub = record.publicKey;
    if (pub) {
      const want = spkiCheckValue(spkiOf(pub) ?? Buffer.alloc(0));
      const there = contents.keys.filter((k) => k.class === 'public' && k.label === pub.label && k.id === record.id);
      if (there.some((k) => spkiCheckValue(spkiOf(k) ?? Buffer.alloc(0)) !== want)) {
        conflicts.push(`${describeKey(record)}: the token already has a different public key with this label and id`);
      }
      step.createPublicKey = there.length === 0;
    }
    for (const cert of record.certificates) {
      const there = contents.certificates.filter((c) => c.label === cert.label && c.id === record.id);
      if (there.some((c) => c.value.toString('base64') !== cert.value)) {
        conflicts.push(`${describeKey(record)}: the token already has a different certificate labelled "${cert.label}" with this id`);
      }
      if (there.length === 0) step.certificatesToCreate.push(cert);
    }
    return step;
  });
  if (conflicts.length) {
    const n = conflicts.length;
    const what = n === 1 ? '1 object on token' : `${n} objects on token`;
    throw new CustosError('E_CONFLICT', `${what} "${token.identity.label}" ${n === 1 ? 'conflicts' : 'conflict'} with the bundle; nothing was written`,
      'restore into an empty token, or remove or relabel the conflicting objects after checking what they are', conflicts);
  }
  return steps;
}

export async function restore(ctx: Context, req: RestoreRequest): Promise<RestoreResult> {
  const bundle = loadBundle(ctx, req.bundlePath);
  const identities = await loadIdentities(ctx, req.identities);
  const state = judgeShares(bundle, await openShares(ctx, req.shares, identities));
  requireQuorum(bundle, state);
  for (const line of rejectionLines(state)) ctx.out.warn(line);

  // Log in and check the token before the KEK exists, so it is never in memory while a PIN is typed.
  const token = await openHsm(ctx, req.hsm, true);
  const created: Handle[] = [];
  let kekHandle: Handle | undefined;
  let finished = false;
  try {
    token.requireWrapMechanism('unwrap');
    const before = token.contents();
    const kek = assembleKek(bundle, state);
    try {
      kekHandle = token.importKek(kek);
    } finally {
      kek.fill(0);
    }
    const steps = plan(token, kekHandle, bundle.body.keys, before);
    const counts = { publicObjects: 0, certificates: 0 };
    const keys = steps.map((step, i) => {
      if (i % 16 === 0) ctx.out.progress(`restoring keys: ${i}/${steps.length}`);
      return restoreOne(token, kekHandle as Handle, step, created, counts);
    });
    finished = true;
    return {
      bundleId: bundle.body.bundleId,
      token: token.identity.label,
      custodians: state.accepted.map((a) => a.custodian),
      rejected: rejectionLines(state),
      keys,
      ...counts,
    };
  } finally {
    ctx.out.progressDone();
    if (!finished) rollback(token, created);
    if (kekHandle) rollback(token, [kekHandle]);
    token.close();
  }
}

/** Unwraps one key (unless present), adds its public key and certificates, and proves it. */
function restoreOne(token: Token, kek: Handle, step: Step, created: Handle[], counts: { publicObjects: number; certificates: number }): RestoredKey {
  const { record, present } = step;
  let proved: Proved;
  if (present) {
    proved = present.proved;
  } else {
    const handle = token.unwrap(kek, record);
    created.push(handle);
    proved = proveRestored(token, token.describe(handle, record.class), record, kek);
  }
  if (!proved.ok) {
    throw new CustosError('E_VERIFY', `restored key ${describeKey(record)} does not match the bundle (its ${proved.proof} differs)`,
      'the objects this run created have been removed; the bundle or the target HSM is faulty');
  }
  if (step.createPublicKey && record.publicKey) {
    created.push(token.createPublicKey(record.publicKey, record.id));
    counts.publicObjects++;
  }
  for (const cert of step.certificatesToCreate) {
    created.push(token.createCertificate(cert, record.id));
    counts.certificates++;
  }
  return { record, status: present ? 'present' : 'restored', proof: proved.proof, checkValue: proved.checkValue.value };
}

/** Destroys, newest first, every object a failed run created. */
function rollback(token: Token, created: readonly Handle[]): void {
  for (const handle of [...created].reverse()) {
    try {
      token.destroy(handle);
    } catch {
      // keep removing the rest; a leftover is reported by the next run's conflict check
    }
  }
}
