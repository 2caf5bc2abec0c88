/**
 * Putting recorded keys into a token: plan against what it already holds (present, or a conflict
 * that stops everything before a write), unwrap each missing key, recreate its public key and
 * certificates, and prove every key. On any failure every object the run created is destroyed,
 * including what a module wrote while refusing a create.
 *
 * The caller holds the token (io/token-lock.ts, ops/run-marker.ts) from before the plan to the end.
 * An object that an interrupted custos run planned to create (its run marker names it) and that
 * cannot be proved to be the recorded one is that run's half-written leftover: it is removed and
 * made again. Any other clash is a conflict, named with the command that removes it.
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
import { objectHandles, removeCreateLeftovers } from '../hsm/objects.js';
import type { KeyObject, Token, TokenContents } from '../hsm/token.js';
import { shellQuote } from '../io/token-lock.js';
import { proveRestored, type Proof, type Proved } from './check-values.js';
import { plannedKey, type PlannedObject } from './run-marker.js';

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

export interface ApplyOptions {
  /**
   * Called with every object the run will create once the plan is made, before the first write
   * (the run marker records them).
   */
  onPlan?: (objects: PlannedObject[]) => void;
  /** Objects interrupted custos runs planned to create (plannedKey), and which run it was. */
  leftovers?: ReadonlyMap<string, string>;
  warn?: (line: string) => void;
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
  options: ApplyOptions = {},
): Applied {
  const contents = token.contents();
  const { unnamedKeys } = contents;
  const steps = plan(token, wrappingKey, records, contents, source, options.leftovers);
  options.onPlan?.(plannedObjects(steps));
  const run: RunState = {
    created: [],
    known: new Set(),
    before: undefined,
    warn: options.warn ?? (() => undefined),
  };
  const counts = { publicObjects: 0, certificates: 0 };
  const corrected: Applied['corrected'] = [];
  try {
    const keys = steps.map((step, i) => {
      if (i % 16 === 0) progress(i, steps.length);
      return restoreOne(token, wrappingKey, step, run, counts, corrected, source);
    });
    return { keys, corrected, ...counts, unnamedKeys };
  } catch (e) {
    rollback(token, run.created);
    throw e;
  }
}

interface Step {
  record: KeyRecord;
  /** The key is already on the token and proved to be this one. */
  present?: { key: KeyObject; proved: Proved };
  createPublicKey: boolean;
  certificatesToCreate: CertificateRecord[];
  /**
   * Half-written leftovers of an interrupted run, removed before this step creates its objects:
   * the handles, what each is, and which run left it.
   */
  leftovers: { handle: Handle; what: string; who: string }[];
}

/** What the objects of this run are, for its marker. */
function plannedObjects(steps: readonly Step[]): PlannedObject[] {
  const out: PlannedObject[] = [];
  for (const s of steps) {
    const r = s.record;
    if (!s.present) out.push({ class: r.class, label: r.label, id: r.id });
    if (s.createPublicKey && r.publicKey)
      out.push({ class: 'public', label: r.publicKey.label, id: r.id });
    for (const c of s.certificatesToCreate)
      out.push({ class: 'certificate', label: c.label, id: r.id });
  }
  return out;
}

/** pkcs11-tool's --type for each class. */
const P11TOOL_TYPE = {
  secret: 'secrkey',
  private: 'privkey',
  public: 'pubkey',
  certificate: 'cert',
} as const;

/** The command that removes one object from the token (for a person, after checking what it is). */
export function removeCommand(token: Token, o: PlannedObject): string {
  return [
    'pkcs11-tool --module',
    shellQuote(token.module),
    '--token-label',
    shellQuote(token.identity.label),
    '--login --delete-object --type',
    P11TOOL_TYPE[o.class],
    '--label',
    shellQuote(o.label),
    ...(o.id ? ['--id', o.id] : []),
  ].join(' ');
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
  leftovers: ReadonlyMap<string, string> = new Map(),
): Step[] {
  const conflicts: string[] = [];
  const clash = (line: string, o: PlannedObject) =>
    conflicts.push(line, `  to remove it, once checked: ${removeCommand(token, o)}`);
  const steps = records.map((record): Step => {
    const step: Step = { record, createPublicKey: false, certificatesToCreate: [], leftovers: [] };
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
      const o: PlannedObject = { class: record.class, label: record.label, id: record.id };
      const who = leftovers.get(plannedKey(o));
      if (who) {
        for (const k of same)
          step.leftovers.push({ handle: k.handle, what: `key ${describeKey(record)}`, who });
      } else {
        clash(
          `${describeKey(record)}: the token already has a ${record.class} key with this label and id, and custos cannot show it is the same key with the same attributes`,
          o,
        );
      }
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
      const o: PlannedObject = { class: 'public', label: pub.label, id: record.id };
      const who = leftovers.get(plannedKey(o));
      const wrong = there.filter(differs);
      if (wrong.length && who) {
        for (const k of wrong)
          step.leftovers.push({ handle: k.handle, what: `public key "${pub.label}"`, who });
      } else if (wrong.length) {
        clash(
          `${describeKey(record)}: the token already has a different public key with this label and id`,
          o,
        );
      }
      step.createPublicKey = there.length === wrong.length;
    }
    for (const cert of record.certificates) {
      const there = contents.certificates.filter(
        (c) => c.label === cert.label && c.id === record.id,
      );
      const o: PlannedObject = { class: 'certificate', label: cert.label, id: record.id };
      const who = leftovers.get(plannedKey(o));
      const wrong = there.filter((c) => c.value.toString('base64') !== cert.value);
      if (wrong.length && who) {
        for (const c of wrong)
          step.leftovers.push({ handle: c.handle, what: `certificate "${cert.label}"`, who });
      } else if (wrong.length) {
        clash(
          `${describeKey(record)}: the token already has a different certificate labelled "${cert.label}" with this id`,
          o,
        );
      }
      if (there.length === wrong.length) step.certificatesToCreate.push(cert);
    }
    return step;
  });
  if (conflicts.length) {
    const n = conflicts.length / 2;
    const what = n === 1 ? '1 object on token' : `${n} objects on token`;
    throw new CustosError(
      'E_CONFLICT',
      `${what} "${token.identity.label}" ${n === 1 ? 'conflicts' : 'conflict'} with ${source}; nothing was written`,
      'restore into an empty token, or remove or relabel the conflicting objects after checking what they are (each line below says how to remove one)',
      conflicts,
    );
  }
  return steps;
}

/** What a run keeps track of while it writes. */
interface RunState {
  /** Every object this run created, oldest first (rolled back on failure). */
  created: Handle[];
  /** The same, as hex, and the leftovers it removed. */
  known: Set<string>;
  /** Every object handle on the token before the first create (taken then). */
  before: Set<string> | undefined;
  warn: (line: string) => void;
}

/**
 * One create (unwrap, public key, certificate), tracked from the moment the module may have
 * written something: if the module fails it, whatever it wrote anyway is found and removed, and
 * the run says so.
 */
function tracked(
  token: Token,
  run: RunState,
  what: string,
  name: { label: string; id: string },
  create: () => Handle,
): Handle {
  run.before ??= objectHandles(token);
  let handle: Handle;
  try {
    handle = create();
  } catch (e) {
    let found = { removed: 0, left: 0 };
    try {
      found = removeCreateLeftovers(token, run.before, run.known, name);
    } catch {
      // the token is failing: the error below says what happened
    }
    if (found.removed)
      run.warn(
        `token "${token.identity.label}" refused ${what} but had written ${found.removed === 1 ? 'an object' : `${found.removed} objects`} for it; custos removed ${found.removed === 1 ? 'it' : 'them'}`,
      );
    if (found.left)
      run.warn(
        `token "${token.identity.label}" refused ${what} and left ${found.left === 1 ? 'an object' : `${found.left} objects`} custos could not remove; check with pkcs11-tool --list-objects`,
      );
    throw e;
  }
  run.created.push(handle);
  run.known.add(handle.toString('hex'));
  return handle;
}

/** Unwraps one key (unless present), adds its public key and certificates, and proves it. */
function restoreOne(
  token: Token,
  kek: Handle,
  step: Step,
  run: RunState,
  counts: { publicObjects: number; certificates: number },
  corrected: Applied['corrected'],
  source: string,
): RestoredKey {
  const { record, present } = step;
  for (const l of step.leftovers) {
    token.destroy(l.handle);
    run.warn(
      `removed ${l.what} from token "${token.identity.label}": half-written by ${l.who}, which planned to create it; making it again`,
    );
  }
  let proved: Proved;
  if (present) {
    proved = present.proved;
  } else {
    const handle = tracked(token, run, `key ${describeKey(record)}`, record, () =>
      token.unwrap(kek, record),
    );
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
    const pub = record.publicKey;
    const handle = tracked(
      token,
      run,
      `public key "${pub.label}"`,
      { label: pub.label, id: record.id },
      () => token.createPublicKey(pub, record.id),
    );
    const checked = token.checkPublic(handle, record.publicKey, record.id);
    if (checked.corrected.length)
      corrected.push({
        what: `public key "${record.publicKey.label}"`,
        attributes: checked.corrected,
      });
    counts.publicObjects++;
  }
  for (const cert of step.certificatesToCreate) {
    tracked(token, run, `certificate "${cert.label}"`, { label: cert.label, id: record.id }, () =>
      token.createCertificate(cert, record.id),
    );
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
