/**
 * The reader of spec/vectors/token-identity/ (SPEC.md, "Token identity files"): the file as custos
 * reads an identity file that is a token's, T1-T2 by the file's reader and T3 by the recipient's.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CustosError } from '../../src/core/errors.js';
import { parseTokenStub } from '../../src/core/token-stub.js';
import { parseSshRsa } from '../../src/crypto/ssh-rsa.js';

const DIR = fileURLToPath(new URL('../../spec/vectors/', import.meta.url));

export async function tokenIdentityOutcome(v: {
  file: string;
}): Promise<{ code: string; message?: string }> {
  try {
    const stub = parseTokenStub(v.file, readFileSync(join(DIR, v.file)));
    parseSshRsa(stub.recipient, `the recipient in ${v.file}`);
    return { code: 'ok' };
  } catch (e) {
    if (e instanceof CustosError) return { code: e.code, message: e.message };
    throw e;
  }
}
