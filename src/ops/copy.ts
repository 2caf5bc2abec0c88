/**
 * HSM-to-HSM copy: keys travel from one token to another under a transport key, never in the
 * clear on the host. The receiving token makes an RSA pair; the sending token makes an ephemeral
 * AES key, wraps it to the transport public key and wraps each key with it (AES-KWP); the
 * receiving token unwraps, recreates and proves each key. Used for backup to a backup HSM and
 * for restore from it.
 */
import { resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import { parseKeySelection, type KeySelection } from '../core/policy.js';
import type { TokenIdentity } from '../core/bundle.js';
import type { SkippedKey } from '../core/keys.js';
import type { Handle } from '../hsm/module.js';
import type { Token } from '../hsm/token.js';
import {
  generateEphemeralKey,
  generateTransportKeyPair,
  importTransportPublicKey,
  negotiateTransport,
} from '../hsm/transport.js';
import { readInputFile } from '../io/files.js';
import { applyRecords, rollback, type Applied } from './apply.js';
import { labelFilter, recordKeys, selectKeys } from './records.js';
import { lookForHsms, openHsm } from './hsm.js';
import { holdToken, type HeldToken } from './run-marker.js';
import type { Context } from './context.js';

export interface CopyRequest {
  from: string;
  to: string;
  policyPath?: string;
}

export interface CopyResult extends Applied {
  source: TokenIdentity;
  target: TokenIdentity;
  mechanism: string;
  /** The RFC 5649 mechanism each token used for the keys (they need not be the same). */
  wrap: { source: string; target: string };
  /**
   * Set when both tokens offer CKM_RSA_AES_KEY_WRAP, which custos cannot drive through pkcs11js.
   */
  note?: string;
  skipped: SkippedKey[];
}

const EVERY_KEY: KeySelection = { include: ['*'], exclude: [] };

export async function copyKeys(ctx: Context, req: CopyRequest): Promise<CopyResult> {
  const selection = req.policyPath
    ? parseKeySelection(
        req.policyPath,
        readInputFile(resolve(ctx.cwd, req.policyPath), 'policy file').toString('utf8'),
      )
    : EVERY_KEY;
  lookForHsms(ctx, [req.from, req.to]);
  const source = await openHsm(ctx, req.from, false);
  let target: Token | undefined;
  // Session objects this run makes on each token; destroyed whatever happens.
  const sourceObjects: Handle[] = [];
  const targetObjects: Handle[] = [];
  let held: HeldToken | undefined;
  let completed = false;
  try {
    target = await openHsm(ctx, req.to, true);
    if (target.sameTokenAs(source)) {
      throw new CustosError(
        'E_USAGE',
        `the source and the target of the copy are the same token ("${source.identity.label}")`,
        'name two different tokens',
      );
    }
    // One writer per target token: held from before the plan (in applyRecords) to the end.
    held = holdToken(ctx, target, 'copy');
    const marker = held.marker;
    // Each token proves its own RFC 5649 mechanism (wrapping.ts); they need not be the same one.
    const wrap = {
      source: source.requireWrapMechanism('wrap').name,
      target: target.requireWrapMechanism('unwrap').name,
    };
    const contents = source.contents(labelFilter(selection));
    const chosen = selectKeys(contents.keys, selection);
    if (chosen.chosen.length === 0) {
      throw new CustosError(
        'E_USAGE',
        `no extractable key on token "${source.identity.label}" is selected`,
        "check the policy's keys.include patterns",
      );
    }
    const transport = generateTransportKeyPair(target);
    targetObjects.push(transport.privateKey, transport.publicKey);
    // The source wraps with its own copy of the transport public key, never with the target's
    // handle.
    const sourcePublic = importTransportPublicKey(source, transport);
    sourceObjects.push(sourcePublic);
    const ephemeral = generateEphemeralKey(source);
    sourceObjects.push(ephemeral);
    const { mechanism, targetKey, note } = negotiateTransport(
      source,
      target,
      sourcePublic,
      transport.privateKey,
      ephemeral,
    );
    targetObjects.push(targetKey);
    ctx.out.note(`transport: ${mechanism.name}`);

    const total = chosen.chosen.length;
    const records = recordKeys(source, ephemeral, chosen, contents, (n) =>
      ctx.out.progress(`wrapping keys in "${source.identity.label}": ${n}/${total}`),
    );
    const applied = applyRecords(
      target,
      targetKey,
      records,
      `token "${source.identity.label}"`,
      (done, all) =>
        ctx.out.progress(`copying keys into "${(target as Token).identity.label}": ${done}/${all}`),
      {
        onPlan: (objects) => marker.planned(objects),
        leftovers: marker.leftovers,
        warn: (line) => ctx.out.warn(line),
      },
    );
    completed = true;
    return {
      source: source.identity,
      target: target.identity,
      mechanism: mechanism.name,
      wrap,
      note,
      skipped: chosen.skipped,
      ...applied,
    };
  } finally {
    ctx.out.progressDone();
    rollback(source, sourceObjects);
    source.close();
    if (target) {
      rollback(target, targetObjects);
      try {
        held?.release(completed);
      } finally {
        target.close();
      }
    }
  }
}
