/** custos restore: a quorum of shares, then every key back into the token, each proved. */
import { restore, type RestoreResult } from '../ops/restore.js';
import { audited } from '../ops/audit.js';
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
  const r = await audited(ctx, 'restore', async (note) => {
    note.detail = { hsm: o.hsm };
    const done = await restore(ctx, {
      bundlePath: o.bundle,
      hsm: o.hsm,
      shares: o.share,
      identities: o.identity,
    });
    note.bundle = done.bundleId;
    note.artifacts.bundle = done.bundleFileDigest;
    Object.assign(note.detail, {
      ...(done.domain ?? {}),
      token: done.token,
      quorum: done.custodians,
      restored: done.keys.filter((k) => k.status === 'restored').length,
      present: done.keys.filter((k) => k.status === 'present').length,
    });
    return done;
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
  const restored = r.keys.filter((k) => k.status === 'restored').length;
  // Said on stderr in every output mode: it needs a person to look.
  if (r.unnamedKeys > 0) {
    ctx.out.warn(
      `token "${r.token}" holds ${count(r.unnamedKeys, 'key object')} with no label and no id, such as a process killed while creating a key leaves behind; check and delete ${r.unnamedKeys === 1 ? 'it' : 'them'} (pkcs11-tool --list-objects)`,
    );
  }
  if (json) {
    return ctx.out.json({
      bundleId: r.bundleId,
      token: r.token,
      custodians: r.custodians,
      rejected: r.rejected,
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
    });
  }
  noteCorrections(ctx, r.token, r.corrected);
  const unproven = r.keys.filter((k) => k.proof === 'none');
  for (const k of unproven)
    ctx.out.warn(
      `${k.record.label}: nothing could be checked for this key on the target HSM; it was restored but not proved`,
    );
  keyList(
    ctx,
    ['label', 'id', 'class', 'type', 'status', 'proved by', 'check value'],
    r.keys.map((k) => [
      k.record.label,
      k.record.id || '-',
      k.record.class,
      k.record.keyType,
      k.status,
      proofText(k.proof),
      k.checkValue || '-',
    ]),
    { full, groupBy: [2, 3, 4, 5], noun: 'key' },
  );
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
