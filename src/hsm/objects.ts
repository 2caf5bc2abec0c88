/**
 * The objects on a token: finding them, reading their attributes into custos's neutral
 * description, creating public keys and certificates, destroying, and checking every key custos
 * creates against its record (and putting right what a module changed, where it lets custos).
 */
import { isUtf8 } from 'node:buffer';
import { CustosError } from '../core/errors.js';
import {
  describeKey,
  type CertificateRecord,
  type KeyRecord,
  type PublicKeyRecord,
  type Usage,
  type UsageFlag,
} from '../core/keys.js';
import { curveBits } from '../core/der.js';
import { PRIVATE_USAGE_FLAGS, PUBLIC_USAGE_FLAGS, SECRET_USAGE_FLAGS } from '../core/keys.js';
import { ABSENT_ATTRIBUTE, P, Refused, attempt, call, type Handle, type Pkcs11 } from './call.js';
import {
  USAGE_ATTRIBUTE,
  bool,
  certificateTemplate,
  keyTypeName,
  publicKeyTemplate,
  ulong,
  type Attr,
} from './attributes.js';

interface ObjectBase {
  handle: Handle;
  label: string;
  /** CKA_ID, hex. */
  id: string;
}

export interface KeyObject extends ObjectBase {
  class: 'secret' | 'private' | 'public';
  /** CKA_CLASS as the module reports it (checked against `class` for keys custos creates). */
  objectClass: number;
  keyType: string;
  bits: number;
  usage: Usage;
  private: boolean;
  sensitive: boolean;
  extractable: boolean;
  /** False when CKA_LABEL is not valid UTF-8 (then `label` is a lossy rendering). */
  labelIsText: boolean;
  /** CKA_TOKEN: false for session objects (custos's own transient keys among them). */
  onToken: boolean;
  /** The module's CKA_CHECK_VALUE, when it keeps one. */
  tokenCheckValue?: string;
  modulus?: string;
  publicExponent?: string;
  ecParams?: string;
  ecPoint?: string;
}

export interface CertificateObject extends ObjectBase {
  value: Buffer;
  subject?: string;
  issuer?: string;
  serialNumber?: string;
}

export interface TokenContents {
  keys: KeyObject[];
  certificates: CertificateObject[];
  /**
   * Key objects with neither label nor id. SoftHSM writes an object to its store before setting
   * its attributes, so a process killed mid-creation leaves such a shell (not even CKA_TOKEN set).
   */
  unnamedKeys: number;
}

/** What the object functions need of a token. */
export interface ObjectSession {
  lib: Pkcs11;
  session: Handle;
  identity: { label: string };
  /**
   * Key types this module keeps no CKA_CHECK_VALUE for (CKR_ATTRIBUTE_TYPE_INVALID once): not asked
   * for again.
   */
  noCheckValue: Set<string>;
}

const CLASS_CODE = {
  secret: P.CKO_SECRET_KEY,
  private: P.CKO_PRIVATE_KEY,
  public: P.CKO_PUBLIC_KEY,
} as const;

export function usageFlagsOf(cls: KeyObject['class']): readonly UsageFlag[] {
  return cls === 'secret'
    ? SECRET_USAGE_FLAGS
    : cls === 'private'
      ? PRIVATE_USAGE_FLAGS
      : PUBLIC_USAGE_FLAGS;
}

export function findObjects(t: ObjectSession, template: Attr[]): Handle[] {
  return call(`search token "${t.identity.label}" for objects`, () => {
    const out: Handle[] = [];
    t.lib.C_FindObjectsInit(t.session, template);
    try {
      for (;;) {
        const batch = t.lib.C_FindObjects(t.session, 1024);
        if (batch.length === 0) break;
        for (const h of batch) out.push(h);
      }
    } finally {
      t.lib.C_FindObjectsFinal(t.session);
    }
    return out;
  });
}

/**
 * Reads attributes in one call; if the module will not give one of them (no such attribute, or
 * sensitive), reads the rest one by one and leaves that one out. Any other failure is an error.
 * The values come in the order of `types`.
 */
export function readValues(
  t: ObjectSession,
  handle: Handle,
  types: readonly number[],
): (Buffer | undefined)[] {
  const doing = () => `read object attributes on token "${t.identity.label}"`;
  const template = new Array<{ type: number }>(types.length);
  for (let i = 0; i < types.length; i++) template[i] = { type: types[i] as number };
  const all = attempt(doing, ABSENT_ATTRIBUTE, () =>
    t.lib.C_GetAttributeValue(t.session, handle, template),
  );
  if (!(all instanceof Refused)) return all.map((a) => a.value as Buffer);
  return types.map((type) => {
    const one = attempt(doing, ABSENT_ATTRIBUTE, () =>
      t.lib.C_GetAttributeValue(t.session, handle, [{ type }]),
    );
    return one instanceof Refused ? undefined : (one[0]?.value as Buffer | undefined);
  });
}

/** As readValues, by attribute type. */
export function readAttributes(
  t: ObjectSession,
  handle: Handle,
  types: readonly number[],
): Map<number, Buffer> {
  const values = readValues(t, handle, types);
  const out = new Map<number, Buffer>();
  types.forEach((type, i) => {
    const v = values[i];
    if (v) out.set(type, v);
  });
  return out;
}

/**
 * What describeObject reads of each class of key, in one call: the list, and each attribute's place
 * in it.
 */
interface ReadPlan {
  types: number[];
  at: Map<number, number>;
}
const plans = new Map<string, ReadPlan>();

function readPlan(cls: KeyObject['class'], checkValue: boolean): ReadPlan {
  const key = `${cls}/${checkValue}`;
  let plan = plans.get(key);
  if (!plan) {
    const types = [
      P.CKA_CLASS,
      P.CKA_KEY_TYPE,
      P.CKA_LABEL,
      P.CKA_ID,
      P.CKA_TOKEN,
      P.CKA_PRIVATE,
      ...usageFlagsOf(cls).map((f) => USAGE_ATTRIBUTE[f]),
    ];
    if (cls !== 'public') types.push(P.CKA_SENSITIVE, P.CKA_EXTRACTABLE);
    if (cls === 'secret') types.push(P.CKA_VALUE_LEN);
    if (checkValue) types.push(P.CKA_CHECK_VALUE);
    if (cls !== 'secret') types.push(P.CKA_MODULUS, P.CKA_PUBLIC_EXPONENT, P.CKA_EC_PARAMS);
    if (cls === 'public') types.push(P.CKA_EC_POINT);
    plan = { types, at: new Map(types.map((type, i) => [type, i])) };
    plans.set(key, plan);
  }
  return plan;
}

/**
 * Reads a key object's attributes into custos's neutral description, in one C_GetAttributeValue
 * where the module allows.
 */
export function describeObject(
  t: ObjectSession,
  handle: Handle,
  cls: KeyObject['class'],
): KeyObject {
  const flags = usageFlagsOf(cls);
  // The module's check value (secret keys): asked for with the rest until a key type turns out to
  // have none.
  const askCheckValue = cls === 'secret' && t.noCheckValue.size === 0;
  const plan = readPlan(cls, askCheckValue);
  const values = readValues(t, handle, plan.types);
  const get = (type: number): Buffer | undefined => {
    const i = plan.at.get(type);
    return i === undefined ? undefined : values[i];
  };
  const keyType = keyTypeName(ulong(get(P.CKA_KEY_TYPE)));
  let checkValue = get(P.CKA_CHECK_VALUE);
  if (cls === 'secret' && !checkValue && !t.noCheckValue.has(keyType)) {
    // Asked on its own, even when it was asked with the rest: only the module's own answer tells a
    // key type with no check value (TYPE_INVALID) from one key that hides its value (SENSITIVE).
    const cv = attempt(
      () => `read object attributes on token "${t.identity.label}"`,
      ABSENT_ATTRIBUTE,
      () => t.lib.C_GetAttributeValue(t.session, handle, [{ type: P.CKA_CHECK_VALUE }]),
    );
    if (cv instanceof Refused) {
      if (cv.code === P.CKR_ATTRIBUTE_TYPE_INVALID) t.noCheckValue.add(keyType);
    } else {
      checkValue = cv[0]?.value as Buffer | undefined;
    }
  }
  const usage: Usage = {};
  for (const f of flags) usage[f] = bool(get(USAGE_ATTRIBUTE[f]));
  const hex = (v: Buffer | undefined) => (v && v.length > 0 ? v.toString('hex') : undefined);
  const modulus = hex(get(P.CKA_MODULUS));
  const ecParams = hex(get(P.CKA_EC_PARAMS));
  const bits =
    cls === 'secret'
      ? ulong(get(P.CKA_VALUE_LEN)) * 8
      : modulus
        ? modulus.replace(/^(00)+/, '').length * 4
        : ecParams
          ? curveBits(Buffer.from(ecParams, 'hex'))
          : 0;
  const label = get(P.CKA_LABEL);
  return {
    handle,
    objectClass: ulong(get(P.CKA_CLASS)),
    class: cls,
    keyType,
    label: label?.toString('utf8') ?? '',
    labelIsText: !label || isUtf8(label),
    onToken: bool(get(P.CKA_TOKEN)),
    id: hex(get(P.CKA_ID)) ?? '',
    bits,
    usage,
    private: bool(get(P.CKA_PRIVATE)),
    sensitive: bool(get(P.CKA_SENSITIVE)),
    extractable: bool(get(P.CKA_EXTRACTABLE)),
    tokenCheckValue: hex(checkValue),
    modulus,
    publicExponent: hex(get(P.CKA_PUBLIC_EXPONENT)),
    ecParams,
    ecPoint: hex(get(P.CKA_EC_POINT)),
  };
}

/**
 * Calls `visit` with each key object of a class that is on the token (session objects are
 * transient), one at a time, so that a caller that keeps only what it needs of each never holds
 * them all. `wantsLabel` leaves out keys whose label it rejects, at the cost of one attribute read.
 */
export function forEachKey(
  t: ObjectSession,
  cls: KeyObject['class'],
  visit: (key: KeyObject) => void,
  wantsLabel?: (label: string) => boolean,
): void {
  for (const h of findObjects(t, [{ type: P.CKA_CLASS, value: CLASS_CODE[cls] }])) {
    if (
      wantsLabel &&
      !wantsLabel(readAttributes(t, h, [P.CKA_LABEL]).get(P.CKA_LABEL)?.toString('utf8') ?? '')
    )
      continue;
    const key = describeObject(t, h, cls);
    if (key.onToken) visit(key);
  }
}

/** Every certificate on the token. */
export function tokenCertificates(t: ObjectSession): CertificateObject[] {
  return findObjects(t, [
    { type: P.CKA_CLASS, value: P.CKO_CERTIFICATE },
    { type: P.CKA_TOKEN, value: true },
  ]).map((handle): CertificateObject => {
    const a = readAttributes(t, handle, [
      P.CKA_LABEL,
      P.CKA_ID,
      P.CKA_VALUE,
      P.CKA_SUBJECT,
      P.CKA_ISSUER,
      P.CKA_SERIAL_NUMBER,
    ]);
    const hex = (type: number) => a.get(type)?.toString('hex') || undefined;
    return {
      handle,
      label: a.get(P.CKA_LABEL)?.toString('utf8') ?? '',
      id: hex(P.CKA_ID) ?? '',
      value: a.get(P.CKA_VALUE) ?? Buffer.alloc(0),
      subject: hex(P.CKA_SUBJECT),
      issuer: hex(P.CKA_ISSUER),
      serialNumber: hex(P.CKA_SERIAL_NUMBER),
    };
  });
}

/**
 * Every key and certificate token object the logged-in user can see (session objects are
 * transient), and the count of unnamed shells. `wantsLabel` leaves out secret and private keys
 * whose label it rejects (public keys and certificates are always read: they pair by id).
 */
export function tokenContents(
  t: ObjectSession,
  wantsLabel?: (label: string) => boolean,
): TokenContents {
  const keys: KeyObject[] = [];
  let unnamedKeys = 0;
  for (const cls of ['secret', 'private', 'public'] as const) {
    // Unnamed shells are counted whatever CKA_TOKEN says: a shell may not have it set.
    for (const h of findObjects(t, [{ type: P.CKA_CLASS, value: CLASS_CODE[cls] }])) {
      if (
        wantsLabel &&
        cls !== 'public' &&
        !wantsLabel(readAttributes(t, h, [P.CKA_LABEL]).get(P.CKA_LABEL)?.toString('utf8') ?? '')
      )
        continue;
      const key = describeObject(t, h, cls);
      if (key.label === '' && key.id === '') unnamedKeys++;
      if (key.onToken) keys.push(key);
    }
  }
  return { keys, certificates: tokenCertificates(t), unnamedKeys };
}

export function createPublicKey(t: ObjectSession, pub: PublicKeyRecord, id: string): Handle {
  return call(`create public key "${pub.label}" on token "${t.identity.label}"`, () =>
    t.lib.C_CreateObject(t.session, publicKeyTemplate(pub, id)),
  );
}

export function createCertificate(t: ObjectSession, cert: CertificateRecord, id: string): Handle {
  return call(`create certificate "${cert.label}" on token "${t.identity.label}"`, () =>
    t.lib.C_CreateObject(t.session, certificateTemplate(cert, id)),
  );
}

export function destroyObject(t: ObjectSession, handle: Handle): void {
  call(`destroy an object on token "${t.identity.label}"`, () =>
    t.lib.C_DestroyObject(t.session, handle),
  );
}

// ------------------------------------------------------------------ every created key, checked

/** What a key custos creates must have, as custos set it in the template. */
export interface Expected {
  class: KeyObject['class'];
  keyType: string;
  label: string;
  id: string;
  usage: Usage;
  /**
   * Secret and private keys: always sensitive and private on the target; extractable as recorded.
   */
  extractable?: boolean;
  what: string;
}

export function expectedOfRecord(record: KeyRecord): Expected {
  return {
    class: record.class,
    keyType: record.keyType,
    label: record.label,
    id: record.id,
    usage: record.usage,
    extractable: record.extractable,
    what: describeKey(record),
  };
}

export function expectedOfPublic(pub: PublicKeyRecord, id: string): Expected {
  return {
    class: 'public',
    keyType: pub.keyType,
    label: pub.label,
    id,
    usage: pub.usage,
    what: `public key "${pub.label}"`,
  };
}

const ATTRIBUTE_NAME: Record<UsageFlag, string> = {
  encrypt: 'CKA_ENCRYPT',
  decrypt: 'CKA_DECRYPT',
  sign: 'CKA_SIGN',
  verify: 'CKA_VERIFY',
  signRecover: 'CKA_SIGN_RECOVER',
  verifyRecover: 'CKA_VERIFY_RECOVER',
  wrap: 'CKA_WRAP',
  unwrap: 'CKA_UNWRAP',
  derive: 'CKA_DERIVE',
};

/**
 * Boolean attributes that differ from what was asked for: attribute code, name, and the wanted
 * value.
 */
function booleanDifferences(
  key: KeyObject,
  want: Expected,
): { type: number; name: string; value: boolean }[] {
  const out: { type: number; name: string; value: boolean }[] = [];
  for (const f of usageFlagsOf(want.class)) {
    if (key.usage[f] !== (want.usage[f] === true))
      out.push({
        type: USAGE_ATTRIBUTE[f],
        name: ATTRIBUTE_NAME[f],
        value: want.usage[f] === true,
      });
  }
  if (want.class !== 'public') {
    if (!key.sensitive) out.push({ type: P.CKA_SENSITIVE, name: 'CKA_SENSITIVE', value: true });
    if (!key.private) out.push({ type: P.CKA_PRIVATE, name: 'CKA_PRIVATE', value: true });
    if (key.extractable !== want.extractable)
      out.push({
        type: P.CKA_EXTRACTABLE,
        name: 'CKA_EXTRACTABLE',
        value: want.extractable === true,
      });
  }
  if (!key.onToken) out.push({ type: P.CKA_TOKEN, name: 'CKA_TOKEN', value: true });
  return out;
}

export interface Checked {
  key: KeyObject;
  /** Attributes the module set otherwise and custos put right (e.g. "CKA_DERIVE"). */
  corrected: string[];
}

/**
 * Reads a key custos just created and compares it with what it asked for: class, key type, label,
 * id, every usage flag of its class, sensitive, private, extractable, on the token. Booleans a
 * module turned on or off are set back with C_SetAttributeValue; if the module refuses, or the
 * object still differs, the run stops naming the attribute (the caller rolls back).
 */
export function checkCreated(t: ObjectSession, handle: Handle, want: Expected): Checked {
  const seen = describeObject(t, handle, want.class);
  const fixed: string[] = [];
  const fail = (what: string, hint: string) =>
    new CustosError(
      'E_VERIFY',
      `token "${t.identity.label}" created ${want.what} with ${what}`,
      hint,
    );
  const identityHint =
    'the module did not keep what custos asked for; every object this run created has been removed';
  if (seen.objectClass !== CLASS_CODE[want.class])
    throw fail(
      `CKA_CLASS 0x${seen.objectClass.toString(16)}, not a ${want.class} key`,
      identityHint,
    );
  if (seen.keyType !== want.keyType)
    throw fail(`CKA_KEY_TYPE ${seen.keyType}, not ${want.keyType}`, identityHint);
  if (seen.label !== want.label) throw fail(`another CKA_LABEL ("${seen.label}")`, identityHint);
  if (seen.id !== want.id)
    throw fail(`another CKA_ID (${seen.id || 'none'}, not ${want.id || 'none'})`, identityHint);
  const diff = booleanDifferences(seen, want);
  if (diff.length === 0) return { key: seen, corrected: fixed };
  const names = diff.map((d) => `${d.name} ${d.value ? 'false' : 'true'}`).join(', ');
  const set = attempt(
    `correct ${want.what} on token "${t.identity.label}"`,
    [P.CKR_ATTRIBUTE_READ_ONLY, P.CKR_ATTRIBUTE_VALUE_INVALID, P.CKR_TEMPLATE_INCONSISTENT, 0x1b],
    () =>
      t.lib.C_SetAttributeValue(
        t.session,
        handle,
        diff.map((d) => ({ type: d.type, value: d.value })),
      ),
  );
  if (set instanceof Refused) {
    throw fail(
      `${names}, against the record, and refused to change ${diff.length === 1 ? 'it' : 'them'} (${set.name})`,
      'every object this run created has been removed; this module cannot hold the key with the recorded attributes',
    );
  }
  const again = describeObject(t, handle, want.class);
  const left = booleanDifferences(again, want);
  if (left.length) {
    throw fail(
      `${left.map((d) => `${d.name} ${d.value ? 'false' : 'true'}`).join(', ')}, against the record, and kept ${left.length === 1 ? 'it' : 'them'} after custos set ${left.length === 1 ? 'it' : 'them'}`,
      'every object this run created has been removed; this module cannot hold the key with the recorded attributes',
    );
  }
  for (const d of diff) fixed.push(d.name);
  return { key: again, corrected: fixed };
}

// ------------------------------------------------------------------ data objects (run markers)

export interface DataObject {
  handle: Handle;
  label: string;
  value: Buffer;
}

/**
 * Creates a private token data object (CKO_DATA) of `application` with this label and value; the
 * refusal codes of a module that keeps no data objects come back as Refused.
 */
export function createDataObject(
  t: ObjectSession,
  application: string,
  label: string,
  value: Buffer,
): Handle | Refused {
  return attempt(
    `create a data object on token "${t.identity.label}"`,
    [
      P.CKR_ATTRIBUTE_TYPE_INVALID,
      P.CKR_ATTRIBUTE_VALUE_INVALID,
      P.CKR_TEMPLATE_INCONSISTENT,
      P.CKR_TEMPLATE_INCOMPLETE,
      P.CKR_FUNCTION_NOT_SUPPORTED,
      0x1b,
    ],
    () =>
      t.lib.C_CreateObject(t.session, [
        { type: P.CKA_CLASS, value: P.CKO_DATA },
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_APPLICATION, value: application },
        { type: P.CKA_LABEL, value: label },
        { type: P.CKA_VALUE, value },
      ]),
  );
}

/** The token data objects of `application`, with their labels and values. */
export function findDataObjects(t: ObjectSession, application: string): DataObject[] {
  const found: DataObject[] = [];
  for (const handle of findObjects(t, [
    { type: P.CKA_CLASS, value: P.CKO_DATA },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_APPLICATION, value: application },
  ])) {
    const a = readUnlessGone(t, handle, [P.CKA_LABEL, P.CKA_VALUE]);
    if (a instanceof Refused) continue;
    found.push({
      handle,
      label: a.get(P.CKA_LABEL)?.toString('utf8') ?? '',
      value: a.get(P.CKA_VALUE) ?? Buffer.alloc(0),
    });
  }
  return found;
}

/**
 * An object's attributes, or Refused when the object is gone: another process (another run's
 * marker, taken away) may destroy an object between this one's search and its read.
 */
function readUnlessGone(
  t: ObjectSession,
  handle: Handle,
  types: readonly number[],
): Map<number, Buffer> | Refused {
  return attempt(
    `read an object of token "${t.identity.label}"`,
    [P.CKR_OBJECT_HANDLE_INVALID],
    () => readAttributes(t, handle, types),
  );
}

/**
 * Objects other than keys with no label and no id: what SoftHSM leaves of an object whose creation
 * was killed before it set its attributes (a key shell with its class set is counted in
 * TokenContents.unnamedKeys instead; one without even CKA_CLASS, or a data object's, is here).
 */
export function unnamedOtherObjects(t: ObjectSession): number {
  const keyClasses: number[] = [P.CKO_SECRET_KEY, P.CKO_PRIVATE_KEY, P.CKO_PUBLIC_KEY];
  let n = 0;
  for (const h of findObjects(t, [])) {
    let a: Map<number, Buffer> | Refused;
    try {
      a = readUnlessGone(t, h, [P.CKA_CLASS, P.CKA_LABEL, P.CKA_ID]);
    } catch {
      n++; // not even its class can be read: a shell (SoftHSM says CKR_ATTRIBUTE_VALUE_INVALID)
      continue;
    }
    if (a instanceof Refused) continue;
    const cls = a.get(P.CKA_CLASS);
    if (cls?.length && keyClasses.includes(ulong(cls))) continue;
    if (!a.get(P.CKA_LABEL)?.length && !a.get(P.CKA_ID)?.length) n++;
  }
  return n;
}

// ------------------------------------------------------------------ what a refused create left

/** Every object handle the session can see (hex), for telling what a failed call left behind. */
export function objectHandles(t: ObjectSession): Set<string> {
  return new Set(findObjects(t, []).map((h) => h.toString('hex')));
}

/**
 * Objects that appeared since `before` and that nothing this run knows of made (`known`), which
 * carry no label and no id or the label and id of what was being created: what a module wrote
 * while refusing a create (SoftHSM 2.6 writes the object to its store before it checks the
 * template). Each is destroyed; returns how many, and how many such objects could not be.
 */
export function removeCreateLeftovers(
  t: ObjectSession,
  before: ReadonlySet<string>,
  known: ReadonlySet<string>,
  wanted: { label: string; id: string },
): { removed: number; left: number } {
  let removed = 0;
  let left = 0;
  for (const h of findObjects(t, [])) {
    const hex = h.toString('hex');
    if (before.has(hex) || known.has(hex)) continue;
    let label = '';
    let id = '';
    try {
      const a = readAttributes(t, h, [P.CKA_LABEL, P.CKA_ID]);
      label = a.get(P.CKA_LABEL)?.toString('utf8') ?? '';
      id = a.get(P.CKA_ID)?.toString('hex') ?? '';
    } catch {
      // nothing readable: a shell the refused create left
    }
    const ours = (label === '' && id === '') || (label === wanted.label && id === wanted.id);
    if (!ours) continue;
    const gone = attempt(
      `destroy an object on token "${t.identity.label}"`,
      [P.CKR_OBJECT_HANDLE_INVALID, 0x1b],
      () => t.lib.C_DestroyObject(t.session, h),
    );
    if (gone instanceof Refused) left++;
    else removed++;
  }
  return { removed, left };
}
