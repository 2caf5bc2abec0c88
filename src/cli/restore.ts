/** custos restore: a quorum of shares, then every key back into the token, each proved. */
import { restore, type RestoreResult } from '../ops/restore.js';
import type { Applied, RestoredKey } from '../ops/apply.js';
import type { Context } from '../ops/context.js';
import { count, proofText } from './render.js';
import { fitLines } from '../core/layout.js';
import { keyList } from './long-list.js';

export async function run(
  ctx: Context,
  o: {
    bundle: string;
    hsm: string;
    share: string[];
    identity: string[];
    json?: boolean;
    full?: boolean;
  },
): Promise<void> {
  const r = await restore(ctx, {
    bundlePath: o.bundle,
    hsm: o.hsm,
    shares: o.share,
    identities: o.identity,
  });
  renderRestore(ctx, r, o.json, o.full);
}

/**
 * The restore's result: a table of keys and how each was proved, or JSON; shared with a ceremony's
 * close.
 */
export function renderRestore(
  ctx: Context,
  r: RestoreResult,
  json?: boolean,
  full?: boolean,
): void {
  const head = { bundleId: r.bundleId, token: r.token, custodians: r.custodians };
  if (appliedOut(ctx, r.token, r, json, { ...head, rejected: r.rejected })) return;
  const restored = r.keys.filter((k) => k.status === 'restored').length;
  const unproven = r.keys.filter((k) => k.proof === 'none');
  for (const k of unproven)
    ctx.out.warn(
      `${k.record.label}: nothing could be checked for this key on the target HSM; it was restored but not proved`,
    );
  appliedKeyList(ctx, r.keys, (k) => k.status, full);
  ctx.out.data(
    fitLines(
      [
        `token "${r.token}": ${count(restored, 'key')} restored, ${r.keys.length - restored} already present, ${count(r.publicObjects, 'public key')} and ${count(r.certificates, 'certificate')} recreated`,
        unproven.length === 0
          ? `every key matches bundle ${r.bundleId}; quorum: ${r.custodians.join(', ')}`
          : `${count(r.keys.length - unproven.length, 'key')} proved to match bundle ${r.bundleId}, ${unproven.length} restored without proof (see warnings); quorum: ${r.custodians.join(', ')}`,
      ],
      ctx.out.width,
    ),
  );
}

/**
 * Key objects with no label and no id on the target: said on stderr in every output mode, since it
 * needs a person to look.
 */
export function warnUnnamedKeys(ctx: Context, token: string, unnamed: number): void {
  if (unnamed === 0) return;
  ctx.out.warn(
    `token "${token}" holds ${count(unnamed, 'key object')} with no label and no id, such as a process killed while creating a key leaves behind; check and delete ${unnamed === 1 ? 'it' : 'them'} (pkcs11-tool --list-objects)`,
  );
}

/**
 * What a restore and a copy both say first: unnamed keys on the target (in every output mode), then
 * either the JSON (`head` and the keys; true) or the attributes the target set otherwise (false).
 */
export function appliedOut(
  ctx: Context,
  token: string,
  r: Applied,
  json: boolean | undefined,
  head: Record<string, unknown>,
): boolean {
  warnUnnamedKeys(ctx, token, r.unnamedKeys);
  if (json) ctx.out.json({ ...head, ...appliedJson(r) });
  else noteCorrections(ctx, token, r.corrected);
  return !!json;
}

/** What a restore and a copy both give as JSON of the keys and objects they put on a token. */
export function appliedJson(r: Applied) {
  return {
    keys: r.keys.map((k) => ({
      label: k.record.label,
      id: k.record.id,
      class: k.record.class,
      keyType: k.record.keyType,
      status: k.status,
      proof: k.proof,
      checkValue: k.checkValue,
    })),
    publicObjects: r.publicObjects,
    certificates: r.certificates,
    unnamedKeys: r.unnamedKeys,
    corrected: r.corrected,
  };
}

/** The keys put on a token and how each was proved, one row (or group) a key. */
export function appliedKeyList(
  ctx: Context,
  keys: readonly RestoredKey[],
  status: (k: RestoredKey) => string,
  full?: boolean,
): void {
  keyList(
    ctx,
    ['label', 'id', 'class', 'type', 'status', 'proved by', 'check value'],
    keys.map((k) => [
      k.record.label,
      k.record.id || '-',
      k.record.class,
      k.record.keyType,
      status(k),
      proofText(k.proof),
      k.checkValue || '-',
    ]),
    { full, groupBy: [2, 3, 4, 5], noun: 'key' },
  );
}

/**
 * Says, once, which attributes the target set otherwise than asked and custos put back (NSS
 * softoken turns on usage flags of unwrapped private keys): a fact about the module worth knowing.
 */
export function noteCorrections(
  ctx: Context,
  token: string,
  corrected: readonly { what: string; attributes: string[] }[],
): void {
  if (corrected.length === 0) return;
  const attributes = [...new Set(corrected.flatMap((c) => c.attributes))].sort();
  const keys = corrected.length <= 3 ? ` (${corrected.map((c) => c.what).join(', ')})` : '';
  ctx.out.note(
    `token "${token}" set ${attributes.join(', ')} otherwise than recorded on ${count(corrected.length, 'key')} it created${keys}; custos set them as recorded and read them back`,
  );
}
