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
import { P, hsmError, pkcs11Code, type Handle } from '../hsm/module.js';
import type { Token } from '../hsm/token.js';
import {
  CKM_RSA_AES_KEY_WRAP, TRANSPORT_MECHANISMS, generateEphemeralKey, generateTransportKeyPair, importTransportPublicKey, offers,
  unwrapEphemeral, wrapEphemeral, type TransportMechanism,
} from '../hsm/transport.js';
import { readInputFile } from '../io/files.js';
import { applyRecords, rollback, type Applied } from './apply.js';
import { labelFilter, recordKeys, selectKeys } from './records.js';
import { openHsm } from './hsm.js';
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
  /** Set when both tokens offer CKM_RSA_AES_KEY_WRAP, which custos cannot drive through pkcs11js. */
  note?: string;
  skipped: SkippedKey[];
}

const EVERY_KEY: KeySelection = { include: ['*'], exclude: [] };
const PARAMETER_REFUSALS = new Set([P.CKR_MECHANISM_INVALID, P.CKR_MECHANISM_PARAM_INVALID, P.CKR_ARGUMENTS_BAD, P.CKR_FUNCTION_NOT_SUPPORTED]);

/**
 * Agrees on how the ephemeral key travels: each candidate is tried for real (wrap in the source,
 * unwrap in the target), because C_GetMechanismInfo cannot say which OAEP hashes a token accepts.
 */
function negotiate(source: Token, target: Token, transport: { publicKey: Handle; privateKey: Handle }, ephemeral: Handle, targetObjects: Handle[]):
  { mechanism: TransportMechanism; targetKey: Handle } {
  const tried: string[] = [];
  if (offers(source, P.CKM_RSA_PKCS_OAEP, P.CKF_WRAP) && offers(target, P.CKM_RSA_PKCS_OAEP, P.CKF_UNWRAP)) {
    for (const mechanism of TRANSPORT_MECHANISMS) {
      tried.push(mechanism.name);
      try {
        const blob = wrapEphemeral(source, mechanism, transport.publicKey, ephemeral);
        const targetKey = unwrapEphemeral(target, mechanism, transport.privateKey, blob);
        targetObjects.push(targetKey);
        return { mechanism, targetKey };
      } catch (e) {
        if (!PARAMETER_REFUSALS.has(pkcs11Code(e) ?? -1)) throw hsmError(e, `pass the transport key from "${source.identity.label}" to "${target.identity.label}" (${mechanism.name})`);
      }
    }
  }
  throw new CustosError('E_MECHANISM', `tokens "${source.identity.label}" and "${target.identity.label}" share no transport mechanism`,
    `custos needs RSA-OAEP (wrap in the source, unwrap in the target) and AES key wrap with padding in both; tried: ${tried.join(', ') || 'none (RSA-OAEP is not offered by both)'}`);
}

export async function copyKeys(ctx: Context, req: CopyRequest): Promise<CopyResult> {
  const selection = req.policyPath
    ? parseKeySelection(req.policyPath, readInputFile(resolve(ctx.cwd, req.policyPath), 'policy file').toString('utf8'))
    : EVERY_KEY;
  const source = await openHsm(ctx, req.from, false);
  let target: Token | undefined;
  // Session objects this run makes on each token; destroyed whatever happens.
  const sourceObjects: Handle[] = [];
  const targetObjects: Handle[] = [];
  try {
    target = await openHsm(ctx, req.to, true);
    if (target.identity.serial === source.identity.serial && target.identity.label === source.identity.label) {
      throw new CustosError('E_USAGE', `the source and the target of the copy are the same token ("${source.identity.label}")`, 'name two different tokens');
    }
    source.requireWrapMechanism('wrap');
    target.requireWrapMechanism('unwrap');
    const contents = source.contents(labelFilter(selection));
    const chosen = selectKeys(contents.keys, selection);
    if (chosen.chosen.length === 0) {
      throw new CustosError('E_USAGE', `no extractable key on token "${source.identity.label}" is selected`, 'check the policy\'s keys.include patterns');
    }
    const transport = generateTransportKeyPair(target);
    targetObjects.push(transport.privateKey, transport.publicKey);
    sourceObjects.push(importTransportPublicKey(source, transport));
    const ephemeral = generateEphemeralKey(source);
    sourceObjects.push(ephemeral);
    const { mechanism, targetKey } = negotiate(source, target, transport, ephemeral, targetObjects);
    ctx.out.note(`transport: ${mechanism.name}`);
    const both = offers(source, CKM_RSA_AES_KEY_WRAP, P.CKF_WRAP) && offers(target, CKM_RSA_AES_KEY_WRAP, P.CKF_UNWRAP);

    const total = chosen.chosen.length;
    const records = recordKeys(source, ephemeral, chosen, contents, (n) => ctx.out.progress(`wrapping keys in "${source.identity.label}": ${n}/${total}`));
    const applied = applyRecords(target, targetKey, records, `token "${source.identity.label}"`,
      (done, all) => ctx.out.progress(`copying keys into "${(target as Token).identity.label}": ${done}/${all}`));
    return {
      source: source.identity,
      target: target.identity,
      mechanism: mechanism.name,
      note: both ? 'both tokens offer CKM_RSA_AES_KEY_WRAP, which custos cannot drive through pkcs11js; it used the next choice' : undefined,
      skipped: chosen.skipped,
      ...applied,
    };
  } finally {
    ctx.out.progressDone();
    rollback(source, sourceObjects);
    source.close();
    if (target) {
      rollback(target, targetObjects);
      target.close();
    }
  }
}
