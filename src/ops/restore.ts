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
import { checkValueOf, matchingPublicKey, proveRestored, type Proof } from './check-values.js';
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

type Plan = { record: KeyRecord; present?: KeyObject }[];

/**
 * Matches each bundle key against the token by class, label and id (how applications find keys).
 * One with the same check value is already restored; a different one stops the restore before any
 * write, naming every clash.
 */
function plan(token: Token, records: readonly KeyRecord[], contents: TokenContents): Plan {
  const conflicts: string[] = [];
  const steps: Plan = records.map((record) => {
    const same = contents.keys.filter((k) => k.class === record.class && k.label === record.label && k.id === record.id);
    const match = same.find((k) => {
      const cv = k.keyType === record.keyType ? checkValueOf(token, k, matchingPublicKey(contents.keys, k), record.checkValue.method) : null;
      return cv !== null && cv.method !== 'none' && cv.method === record.checkValue.method && cv.value === record.checkValue.value;
    });
    if (match) return { record, present: match };
    if (same.length > 0) {
      conflicts.push(`${describeKey(record)}: the token already has a ${record.class} key with this label and id, and it is not the same key (type or check value differs)`);
    }
    return { record };
  });
  if (conflicts.length) {
    throw new CustosError('E_CONFLICT', `${conflicts.length} key${conflicts.length === 1 ? '' : 's'} on token "${token.identity.label}" conflict with the bundle; nothing was written`,
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

  const token = await openHsm(ctx, req.hsm, true);
  const created: Handle[] = [];
  let kekHandle: Handle | undefined;
  try {
    token.requireWrapMechanism('unwrap');
    const before = token.contents();
    const steps = plan(token, bundle.body.keys, before);
    kekHandle = token.importKek(kek);
    kek.fill(0);
    const results: RestoredKey[] = [];
    let publicObjects = 0;
    let certificates = 0;
    const total = steps.length;
    steps.forEach(({ record, present }, i) => {
      if (i % 16 === 0) ctx.out.progress(`restoring keys: ${i}/${total}`);
      let status: RestoredKey['status'] = 'present';
      let target = present;
      if (!target) {
        const handle = token.unwrap(kekHandle as Handle, record);
        created.push(handle);
        target = token.describe(handle, record.class);
        status = 'restored';
      }
      if (record.publicKey && !hasPublic(before.keys, record)) {
        created.push(token.createPublicKey(record.publicKey, record.id));
        publicObjects++;
      }
      for (const cert of record.certificates) {
        if (hasCertificate(before.certificates, record.id, cert.value)) continue;
        created.push(token.createCertificate(cert, record.id));
        certificates++;
      }
      const proof = status === 'restored'
        ? proveRestored(token, target, record)
        : { ok: true, proof: 'check value' as Proof, checkValue: checkValueOf(token, target, matchingPublicKey(before.keys, target), record.checkValue.method) };
      if (!proof.ok) {
        throw new CustosError('E_VERIFY', `restored key ${describeKey(record)} does not match the bundle (${proof.proof} differs)`,
          'every key this run created has been removed; the bundle or the target HSM is faulty');
      }
      results.push({ record, status, proof: proof.proof, checkValue: proof.checkValue.value });
    });
    ctx.out.progressDone();
    created.length = 0;
    return {
      bundleId: bundle.body.bundleId,
      token: token.identity.label,
      custodians: state.accepted.map((a) => a.custodian),
      rejected: rejectionLines(state),
      keys: results,
      publicObjects,
      certificates,
    };
  } finally {
    kek.fill(0);
    ctx.out.progressDone();
    rollback(token, kekHandle ? [kekHandle, ...created] : created);
    token.close();
  }
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
