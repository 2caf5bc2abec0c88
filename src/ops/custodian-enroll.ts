/**
 * `custos custodian enroll`: a custodian's key made (or picked) on their own token, proved by a
 * test decryption on the token, and named in a token identity file that holds no secret; recorded
 * in the audit log whether it succeeds or fails.
 */
import { randomBytes } from 'node:crypto';
import { relative, resolve } from 'node:path';
import type { Detail } from '../core/audit/entry.js';
import { CustosError } from '../core/errors.js';
import { serialiseTokenStub, type TokenStub } from '../core/token-stub.js';
import { SshRsaRecipient } from '../crypto/ssh-rsa.js';
import { wipe } from '../crypto/wipe.js';
import {
  decryptStanza,
  generateCustodianKey,
  inspectCustodianKey,
  keysLabelled,
  type DecryptWay,
} from '../hsm/custodian-key.js';
import { createFilesAtomically, refuseExisting } from '../io/files.js';
import { audited, fileDigest } from './audit.js';
import { hsmTarget, type Context } from './context.js';
import { openHsm } from './hsm.js';

export interface EnrollRequest {
  /** The custos.yaml profile that names the custodian's token. */
  hsm: string;
  /** The key's label: picked if the token has it, else made. */
  label: string;
  out?: string;
}

export interface EnrollResult {
  stub: TokenStub;
  /** The identity file written, relative to the working directory. */
  file: string;
  bits: number;
  made: boolean;
  way: DecryptWay;
  /** What is worth knowing of a picked key (imported, or once readable), not refused. */
  notes: string[];
}

/**
 * A custodian's key made or picked on their token and named in a token identity file, recorded in
 * the audit log (`custodian-enroll`) whether it succeeds or fails. The entry names the token, the
 * key and the file; the PIN is never in it.
 */
export function enrollCustodian(ctx: Context, req: EnrollRequest): Promise<EnrollResult> {
  return audited(ctx, 'custodian-enroll', async (note) => {
    note.detail = { hsm: req.hsm, label: req.label };
    const done = await enroll(ctx, req, (facts) => Object.assign(note.detail, facts));
    note.artifacts.identity = done.digest;
    Object.assign(note.detail, {
      identity: done.file,
      recipient: done.stub.recipient,
      decryption: done.way,
    });
    return done;
  });
}

async function enroll(
  ctx: Context,
  req: EnrollRequest,
  learnt: (facts: Detail) => void,
): Promise<EnrollResult & { digest: string }> {
  const target = hsmTarget(ctx, req.hsm);
  if (!target.module) {
    throw new CustosError(
      'E_USAGE',
      `"${req.hsm}" is not a profile in custos.yaml`,
      "a custodian's token is named by a custos.yaml profile (module, token label, pin: prompt); docs/custodian-tokens.md shows one",
    );
  }
  if (req.label === '' || req.label.length > 64 || /[^\x20-\x7e]/.test(req.label)) {
    throw new CustosError(
      'E_USAGE',
      '--label must be 1 to 64 printable ASCII characters',
      'give the key a short name, e.g. --label custos-custodian',
    );
  }
  const out = resolve(ctx.cwd, req.out ?? `${req.label}.token-identity`);
  refuseExisting([out]);
  const token = await openHsm(ctx, req.hsm, true);
  try {
    const { label, serial, model, manufacturer } = token.identity;
    learnt({ token: label, serial, model, manufacturer });
    const found = keysLabelled(token, req.label);
    if (found.length > 1) {
      throw new CustosError(
        'E_CUSTODIAN_KEY',
        `token "${label}" holds ${found.length} private keys labelled "${req.label}"`,
        'give a label no other key on the token has, and custos makes a new key under it',
      );
    }
    const made = found.length === 0;
    const handle = made ? generateCustodianKey(token, req.label) : (found[0] as Buffer);
    learnt({ made });
    const facts = inspectCustodianKey(token, handle);
    learnt({
      keyId: facts.id.toString('hex'),
      bits: facts.key.bits,
      imported: facts.notes.length > 0,
      ...(facts.notes.length > 0 ? { warnings: facts.notes } : {}),
    });
    if (facts.problems.length > 0) {
      throw new CustosError(
        'E_CUSTODIAN_KEY',
        `key "${req.label}" on token "${label}" cannot hold a custodian's shares: ${facts.problems[0]}`,
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
        `a test decryption with key "${req.label}" on token "${label}" did not give back what was encrypted`,
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
      profile: req.hsm,
      token: { label, serial },
      key: { id: facts.id.toString('hex'), label: facts.label },
      recipient: facts.key.line,
      created: new Date().toISOString(),
    };
    createFilesAtomically([{ path: out, data: serialiseTokenStub(stub), mode: 0o644 }]);
    return {
      stub,
      file: relative(ctx.cwd, out) || out,
      bits: facts.key.bits,
      made,
      way: opened.way,
      notes: facts.notes,
      digest: fileDigest(out),
    };
  } finally {
    token.close();
  }
}
