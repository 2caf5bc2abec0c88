/**
 * Putting recorded keys into a token: plan against what it already holds (present, or a conflict
 * that stops everything before a write), unwrap each missing key, recreate its public key and
 * certificates, and prove every key. On any failure every object the run created is destroyed.
 */
import { CustosError } from '../core/errors.js';
import {
  describeKey,
  PRIVATE_USAGE_FLAGS,
  SECRET_USAGE_FLAGS,
  type CertificateRecord,
  type KeyRecord,
} from '../core/keys.js';
import { spkiOf } from '../crypto/check-values.js';
import type { Handle } from '../hsm/module.js';
import type { KeyObject, Token, TokenContents } from '../hsm/token.js';
import { proveRestored, type Proof, type Proved } from './check-values.js';

export interface RestoredKey {
  record: KeyRecord;
  status: 'restored' | 'present';
  proof: Proof;
  checkValue: string;
}

export interface Applied {
  keys: RestoredKey[];
  /**
   * Keys the target created with attributes other than those asked for, which custos put right
   * (NSS softoken, for one, turns on usage flags of unwrapped private keys): `what` names the key.
   */
  corrected: { what: string; attributes: string[] }[];
  publicObjects: number;
  certificates: number;
  /**
   * Key objects on the token with neither label nor id (see TokenContents); custos cannot tell
   * whose.
   */
  unnamedKeys: number;
}

/**
 * Applies `records` to the token, their blobs unwrapped with `wrappingKey` (a session key on this
 * token); `source` names where they came from in messages ("the bundle"). All or nothing: on any
 * failure the objects created so far are destroyed.
 */
export function applyRecords(
  token: Token,
  wrappingKey: Handle,
  records: readonly KeyRecord[],
  source: string,
  progress: (done: number, total: number) => void,
): Applied {
  const contents = token.contents();
  const { unnamedKeys } = contents;
  const steps = plan(token, wrappingKey, records, contents, source);
  const created: Handle[] = [];
  const counts = { publicObjects: 0, certificates: 0 };
  const corrected: Applied['corrected'] = [];
  try {
    const keys = steps.map((step, i) => {
      if (i % 16 === 0) progress(i, steps.length);
      return restoreOne(token, wrappingKey, step, created, counts, corrected, source);
    });
    return { keys, corrected, ...counts, unnamedKeys };
  } catch (e) {
    rollback(token, created);
    throw e;
  }
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
  const strong =
    record.class === 'secret'
      ? proved.proof === 'rewrap' || proved.proof === 'check value + rewrap'
      : proved.proof === 'signature' ||
        proved.proof === 'check value + signature' ||
        (record.keyType === 'RSA' && proved.proof === 'check value');
  const flags = record.class === 'secret' ? SECRET_USAGE_FLAGS : PRIVATE_USAGE_FLAGS;
  const sameAttributes =
    key.sensitive &&
    key.extractable === record.extractable &&
    flags.every((f) => !!key.usage[f] === !!record.usage[f]);
  return strong && sameAttributes;
}

/**
 * Matches the bundle against the token by class, label and id (how applications find keys): a key,
 * public key or certificate already there is either proved to be the recorded one or a conflict,
 * and any conflict stops the restore before a single write, naming every clash.
 */
function plan(
  token: Token,
  kek: Handle,
  records: readonly KeyRecord[],
  contents: TokenContents,
  source: string,
): Step[] {
  const conflicts: string[] = [];
  const steps = records.map((record): Step => {
    const step: Step = { record, createPublicKey: false, certificatesToCreate: [] };
    const same = contents.keys.filter(
      (k) => k.class === record.class && k.label === record.label && k.id === record.id,
    );
    for (const key of same) {
      const proved = key.keyType === record.keyType ? proveRestored(token, key, record, kek) : null;
      if (proved && provedPresent(key, record, proved)) {
        step.present = { key, proved };
        break;
      }
    }
    if (same.length > 0 && !step.present) {
      conflicts.push(
        `${describeKey(record)}: the token already has a ${record.class} key with this label and id, and custos cannot show it is the same key with the same attributes`,
      );
    }
    const pub = record.publicKey;
    if (pub) {
      const want = spkiOf(pub);
      const there = contents.keys.filter(
        (k) => k.class === 'public' && k.label === pub.label && k.id === record.id,
      );
      const differs = (k: KeyObject) => {
        const have = spkiOf(k);
        return want ? !have?.equals(want) : have !== null;
      };
      if (there.some(differs)) {
        conflicts.push(
          `${describeKey(record)}: the token already has a different public key with this label and id`,
        );
      }
      step.createPublicKey = there.length === 0;
    }
    for (const cert of record.certificates) {
      const there = contents.certificates.filter(
        (c) => c.label === cert.label && c.id === record.id,
      );
      if (there.some((c) => c.value.toString('base64') !== cert.value)) {
        conflicts.push(
          `${describeKey(record)}: the token already has a different certificate labelled "${cert.label}" with this id`,
        );
      }
      if (there.length === 0) step.certificatesToCreate.push(cert);
    }
    return step;
  });
  if (conflicts.length) {
    const n = conflicts.length;
    const what = n === 1 ? '1 object on token' : `${n} objects on token`;
    throw new CustosError(
      'E_CONFLICT',
      `${what} "${token.identity.label}" ${n === 1 ? 'conflicts' : 'conflict'} with ${source}; nothing was written`,
      'restore into an empty token, or remove or relabel the conflicting objects after checking what they are',
      conflicts,
    );
  }
  return steps;
}

/** Unwraps one key (unless present), adds its public key and certificates, and proves it. */
function restoreOne(
  token: Token,
  kek: Handle,
  step: Step,
  created: Handle[],
  counts: { publicObjects: number; certificates: number },
  corrected: Applied['corrected'],
  source: string,
): RestoredKey {
  const { record, present } = step;
  let proved: Proved;
  if (present) {
    proved = present.proved;
  } else {
    const handle = token.unwrap(kek, record);
    created.push(handle);
    // Read back and held to the record: class, type, label, id, every usage flag, sensitive,
    // extractable.
    const checked = token.checkRestored(handle, record);
    if (checked.corrected.length)
      corrected.push({ what: describeKey(record), attributes: checked.corrected });
    proved = proveRestored(token, checked.key, record, kek);
  }
  if (!proved.ok) {
    throw new CustosError(
      'E_VERIFY',
      `restored key ${describeKey(record)} does not match ${source} (its ${proved.proof} differs)`,
      `the objects this run created have been removed; ${source} or the target HSM is faulty`,
    );
  }
  if (step.createPublicKey && record.publicKey) {
    const handle = token.createPublicKey(record.publicKey, record.id);
    created.push(handle);
    const checked = token.checkPublic(handle, record.publicKey, record.id);
    if (checked.corrected.length)
      corrected.push({
        what: `public key "${record.publicKey.label}"`,
        attributes: checked.corrected,
      });
    counts.publicObjects++;
  }
  for (const cert of step.certificatesToCreate) {
    created.push(token.createCertificate(cert, record.id));
    counts.certificates++;
  }
  return {
    record,
    status: present ? 'present' : 'restored',
    proof: proved.proof,
    checkValue: proved.checkValue.value,
  };
}

/** Destroys, newest first, every object a failed run created. */
export function rollback(token: Token, created: readonly Handle[]): void {
  for (const handle of [...created].reverse()) {
    try {
      token.destroy(handle);
    } catch {
      // keep removing the rest; a leftover is reported by the next run's conflict check
    }
  }
}
