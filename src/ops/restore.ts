/**
 * Restore from a bundle into a token: authenticate a quorum of shares, reassemble the KEK, plan
 * against what the token already holds, then unwrap every missing key and prove each one. On any
 * failure every object this run created is destroyed, so the token is left as it was.
 */
import { CustosError } from '../core/errors.js';
import { describeKey, type KeyRecord } from '../core/keys.js';
import { spkiCheckValue, spkiOf } from '../crypto/check-values.js';
import type { Handle } from '../hsm/module.js';
import type { KeyObject, CertificateObject, Token, TokenContents } from '../hsm/token.js';
import { proveRestored, type Proof, type Proved } from './check-values.js';
import { openHsm } from './hsm.js';
import { assembleKek, judgeShares, loadBundle, loadIdentities, openShares, rejectionLines } from './shares.js';
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

type Plan = { record: KeyRecord; present?: { key: KeyObject; proved: Proved } }[];

/**
 * Matches each bundle key against the token by class, label and id (how applications find keys).
 * One with the same check value is already restored; a different one stops the restore before any
 * write, naming every clash.
 */
function plan(token: Token, kek: Handle, records: readonly KeyRecord[], contents: TokenContents): Plan {
  const conflicts: string[] = [];
  const steps: Plan = records.map((record) => {
    const same = contents.keys.filter((k) => k.class === record.class && k.label === record.label && k.id === record.id);
    for (const key of same) {
      // The same proof a fresh restore gets; a key that cannot be proved is never taken as present.
      const proved = key.keyType === record.keyType ? proveRestored(token, key, record, kek) : null;
      if (proved?.ok && proved.proof !== 'none') return { record, present: { key, proved } };
    }
    if (same.length > 0) {
      conflicts.push(`${describeKey(record)}: the token already has a ${record.class} key with this label and id, and custos cannot show it is the same key`);
    }
    return { record };
  });
  if (conflicts.length) {
    const n = conflicts.length;
    const what = n === 1 ? '1 key on token' : `${n} keys on token`;
    throw new CustosError('E_CONFLICT', `${what} "${token.identity.label}" ${n === 1 ? 'conflicts' : 'conflict'} with the bundle; nothing was written`,
      'restore into an empty token, or remove or relabel the conflicting keys after checking what they are', conflicts);
  }
  return steps;
}

function hasPublic(keys: readonly KeyObject[], record: KeyRecord): boolean {
  const pub = record.publicKey;
  if (!pub) return true;
  const want = spkiOf(pub);
  return keys.some((k) => k.class === 'public' && k.label === pub.label && k.id === record.id && (!want || spkiCheckValue(want) === spkiCheckValue(spkiOf(k) ?? Buffer.alloc(0))));
}

function hasCertificate(certs: readonly CertificateObject[], id: string, value: string): boolean {
  return certs.some((c) => c.id === id && c.value.toString('base64') === value);
}

export async function restore(ctx: Context, req: RestoreRequest): Promise<RestoreResult> {
  const bundle = loadBundle(ctx, req.bundlePath);
  const identities = await loadIdentities(ctx, req.identities);
  const state = judgeShares(bundle, await openShares(ctx, req.shares, identities));
  const kek = assembleKek(bundle, state);
  for (const line of rejectionLines(state)) ctx.out.warn(line);

  const created: Handle[] = [];
  let token: Token | undefined;
  try {
    token = await openHsm(ctx, req.hsm, true);
    token.requireWrapMechanism('unwrap');
    const before = token.contents();
    const kekHandle = token.importKek(kek);
    created.push(kekHandle);
    kek.fill(0);
    const steps = plan(token, kekHandle, bundle.body.keys, before);
    const counts = { publicObjects: 0, certificates: 0 };
    const keys = steps.map((step, i) => {
      if (i % 16 === 0) ctx.out.progress(`restoring keys: ${i}/${steps.length}`);
      return restoreOne(token as Token, kekHandle, step, before, created, counts);
    });
    ctx.out.progressDone();
    created.splice(1); // success: keep what was restored; only the session KEK goes
    return {
      bundleId: bundle.body.bundleId,
      token: token.identity.label,
      custodians: state.accepted.map((a) => a.custodian),
      rejected: rejectionLines(state),
      keys,
      ...counts,
    };
  } finally {
    kek.fill(0);
    ctx.out.progressDone();
    if (token) {
      rollback(token, created);
      token.close();
    }
  }
}

/** Unwraps one key (unless present), adds its public key and certificates, and proves it. */
function restoreOne(token: Token, kek: Handle, { record, present }: Plan[number], before: TokenContents, created: Handle[],
  counts: { publicObjects: number; certificates: number }): RestoredKey {
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
      'every object this run created has been removed; the bundle or the target HSM is faulty');
  }
  if (record.publicKey && !hasPublic(before.keys, record)) {
    created.push(token.createPublicKey(record.publicKey, record.id));
    counts.publicObjects++;
  }
  for (const cert of record.certificates) {
    if (hasCertificate(before.certificates, record.id, cert.value)) continue;
    created.push(token.createCertificate(cert, record.id));
    counts.certificates++;
  }
  return { record, status: present ? 'present' : 'restored', proof: proved.proof, checkValue: proved.checkValue.value };
}

/** Destroys, newest first, every object a failed run created. */
function rollback(token: Token, created: Handle[]): void {
  for (const handle of created.reverse()) {
    try {
      token.destroy(handle);
    } catch {
      // keep removing the rest; a leftover is reported by the next run's conflict check
    }
  }
}
