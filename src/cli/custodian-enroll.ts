/**
 * custos custodian enroll: a custodian makes (or picks) the RSA key on their token that their
 * shares will be encrypted to. The key is held to a decrypt-only policy before anything is
 * written, proved by a test decryption on the token, and named in a token identity file that holds
 * no secret. The recipient line printed goes into the policy.
 */
import { randomBytes } from 'node:crypto';
import { relative, resolve } from 'node:path';
import { CustosError } from '../core/errors.js';
import { serialiseTokenStub, type TokenStub } from '../core/token-stub.js';
import { SshRsaRecipient } from '../crypto/ssh-rsa.js';
import {
  DECRYPT_WAY_WORDS,
  decryptStanza,
  generateCustodianKey,
  inspectCustodianKey,
  keysLabelled,
} from '../hsm/custodian-key.js';
import { createFilesAtomically, refuseExisting } from '../io/files.js';
import { hsmTarget, type Context } from '../ops/context.js';
import { openHsm } from '../ops/hsm.js';
import { wipe } from '../crypto/wipe.js';

export async function run(
  ctx: Context,
  o: { hsm: string; label: string; out?: string; json?: boolean },
): Promise<void> {
  const target = hsmTarget(ctx, o.hsm);
  if (!target.module) {
    throw new CustosError(
      'E_USAGE',
      `"${o.hsm}" is not a profile in custos.yaml`,
      "a custodian's token is named by a custos.yaml profile (module, token label, pin: prompt); docs/custodian-tokens.md shows one",
    );
  }
  if (o.label === '' || o.label.length > 64 || /[^\x20-\x7e]/.test(o.label)) {
    throw new CustosError(
      'E_USAGE',
      '--label must be 1 to 64 printable ASCII characters',
      'give the key a short name, e.g. --label custos-custodian',
    );
  }
  const out = resolve(ctx.cwd, o.out ?? `${o.label}.token-identity`);
  refuseExisting([out]);
  const token = await openHsm(ctx, o.hsm, true);
  try {
    const found = keysLabelled(token, o.label);
    if (found.length > 1) {
      throw new CustosError(
        'E_CUSTODIAN_KEY',
        `token "${token.identity.label}" holds ${found.length} private keys labelled "${o.label}"`,
        'give a label no other key on the token has, and custos makes a new key under it',
      );
    }
    const made = found.length === 0;
    const handle = made ? generateCustodianKey(token, o.label) : (found[0] as Buffer);
    const facts = inspectCustodianKey(token, handle);
    if (facts.problems.length > 0) {
      throw new CustosError(
        'E_CUSTODIAN_KEY',
        `key "${o.label}" on token "${token.identity.label}" cannot hold a custodian's shares: ${facts.problems[0]}`,
        'a custodian key must never leave the token and only decrypt: give a new --label and custos makes such a key',
        facts.problems.slice(1),
      );
    }
    // Prove the key before naming it: a test file key, wrapped as a share's would be, opened on
    // the token.
    const fileKey = randomBytes(16);
    const [stanza] = new SshRsaRecipient(facts.key).wrapFileKey(fileKey);
    const opened = decryptStanza(token, handle, facts.key, Buffer.from(stanza?.body ?? []));
    if (!opened.fileKey || !opened.fileKey.equals(fileKey)) {
      throw new CustosError(
        'E_VERIFY',
        `a test decryption with key "${o.label}" on token "${token.identity.label}" did not give back what was encrypted`,
        'the token or its module misbehaves: do not use this key; nothing was written',
      );
    }
    wipe(fileKey);
    wipe(opened.fileKey);
    const stub: TokenStub = {
      module: target.module,
      ...(target.libraryParameters !== undefined
        ? { libraryParameters: target.libraryParameters }
        : {}),
      profile: o.hsm,
      token: { label: token.identity.label, serial: token.identity.serial },
      key: { id: facts.id.toString('hex'), label: facts.label },
      recipient: facts.key.line,
      created: new Date().toISOString(),
    };
    createFilesAtomically([{ path: out, data: serialiseTokenStub(stub), mode: 0o644 }]);
    const file = relative(ctx.cwd, out) || out;
    if (o.json) {
      return ctx.out.json({
        identity: file,
        token: stub.token,
        key: { ...stub.key, bits: facts.key.bits, made },
        decryption: opened.way,
        notes: facts.notes,
        recipient: stub.recipient,
      });
    }
    for (const note of facts.notes) ctx.out.warn(note);
    ctx.out.data([
      `${made ? 'made' : 'picked'} key "${facts.label}" (RSA-${facts.key.bits}, id ${stub.key.id})`,
      `  on token "${stub.token.label}" (serial ${stub.token.serial || 'none'})`,
      '  it decrypts and does nothing else; it never leaves the token',
      `  proved by a test decryption: ${DECRYPT_WAY_WORDS[opened.way]}`,
      `identity file: ${file} (no secret in it: pass it as --identity)`,
      "the custodian's recipient, for the policy (one line):",
      stub.recipient,
    ]);
  } finally {
    token.close();
  }
}
